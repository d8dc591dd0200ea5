from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.edit_sweep(
        snakemake.wildcards.model,
        Path(snakemake.input.model).parent,
        snakemake.params.spec,
        [Path(p) for p in snakemake.input.csvs],
        Path(snakemake.input.scores),
        Path(snakemake.input.csvs[0]).parent,
        snakemake.params.prompts,
        snakemake.params.editing,
        snakemake.params.seed,
        snakemake.threads,
        Path(snakemake.output[0]),
    )
