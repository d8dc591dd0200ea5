from pathlib import Path

from mmtrace import logs, paperdata

with logs.to_file(snakemake.log[0]):
    paperdata.annotate_split(
        snakemake.wildcards.split,
        {k: Path(v) for k, v in snakemake.input.items()},
        snakemake.params.heldout,
        snakemake.params.seed,
        Path(snakemake.output.csv),
        Path(snakemake.output.report),
        Path(snakemake.output.human),
    )
