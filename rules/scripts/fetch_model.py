from pathlib import Path

from mmtrace import logs, paperdata

with logs.to_file(snakemake.log[0]):
    paperdata.fetch_model(
        snakemake.wildcards.model, snakemake.params.spec, Path(snakemake.output[0])
    )
