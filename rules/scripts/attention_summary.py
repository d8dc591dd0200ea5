from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.attention_summary(
        [Path(p) for p in snakemake.input],
        snakemake.params.attention,
        snakemake.params.seed,
        Path(snakemake.output[0]),
    )
