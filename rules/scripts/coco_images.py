from pathlib import Path

from mmtrace import logs, paperdata

with logs.to_file(snakemake.log[0]):
    paperdata.coco_images(
        Path(snakemake.input[0]),
        snakemake.params.downloads,
        Path(snakemake.params.lock),
        Path(snakemake.output[0]),
    )
