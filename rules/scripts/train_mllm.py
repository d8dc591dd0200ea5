from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.train_mllm(
        snakemake.wildcards.name,
        [Path(p) for p in snakemake.input.csvs],
        Path(snakemake.input.world),
        Path(snakemake.input.world).parent,
        Path(snakemake.input.vision),
        Path(snakemake.input.text_model),
        snakemake.params.model,
        snakemake.params.prompts,
        snakemake.params.seed,
        snakemake.threads,
        Path(snakemake.output[0]),
    )
