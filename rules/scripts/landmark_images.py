from pathlib import Path

from mmtrace import logs, paperdata

with logs.to_file(snakemake.log[0]):
    paperdata.landmark_images(
        Path(snakemake.input.evqa),
        Path(snakemake.input.index),
        snakemake.params.heldout,
        snakemake.params.seed,
        snakemake.params.downloads,
        Path(snakemake.params.lock),
        Path(snakemake.output[0]),
    )
