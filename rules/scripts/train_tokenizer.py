from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.train_tokenizer(
        [Path(p) for p in snakemake.input.csvs],
        Path(snakemake.input.world),
        snakemake.params.tokenizer,
        snakemake.params.prompts,
        Path(snakemake.output[0]),
    )
