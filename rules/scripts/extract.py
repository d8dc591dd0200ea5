from pathlib import Path

from mmtrace import logs, paperdata

with logs.to_file(snakemake.log[0]):
    paperdata.extract_source(
        Path(snakemake.input[0]),
        snakemake.params.members,
        Path(snakemake.output[0]),
    )
