from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.train_text_model(
        snakemake.wildcards.name,
        [Path(p) for p in snakemake.input.csvs],
        Path(snakemake.input.tokenizer),
        snakemake.params.model,
        snakemake.params.prompts,
        snakemake.params.seed,
        snakemake.threads,
        Path(snakemake.output[0]),
    )
