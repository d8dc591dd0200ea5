from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.ablation_shard(
        snakemake.wildcards.model,
        Path(snakemake.input.model).parent,
        snakemake.params.spec,
        Path(snakemake.input.csv),
        Path(snakemake.input.scores),
        Path(snakemake.input.csv).parent,
        snakemake.params.prompts,
        snakemake.params.attention,
        snakemake.params.ablation,
        snakemake.params.seed,
        int(snakemake.wildcards.shard),
        snakemake.threads,
        Path(snakemake.output[0]),
    )
