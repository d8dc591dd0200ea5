from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.edit_shard(
        snakemake.wildcards.model,
        Path(snakemake.input.model).parent,
        snakemake.params.spec,
        [Path(p) for p in snakemake.input.csvs],
        Path(snakemake.input.scores),
        Path(snakemake.input.csvs[0]).parent,
        snakemake.params.prompts,
        snakemake.params.editing,
        snakemake.wildcards.scenario,
        snakemake.params.seed,
        int(snakemake.wildcards.shard),
        snakemake.threads,
        Path(snakemake.output[0]),
    )
