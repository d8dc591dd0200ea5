from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.train_vision(
        snakemake.params.vision,
        snakemake.params.image_size,
        snakemake.params.seed,
        snakemake.threads,
        Path(snakemake.output[0]),
    )
