from pathlib import Path

from mmtrace import logs, paperdata

with logs.to_file(snakemake.log[0]):
    paperdata.download_source(
        snakemake.params.name,
        snakemake.params.source,
        snakemake.params.downloads,
        Path(snakemake.params.lock),
        Path(snakemake.output[0]),
    )
