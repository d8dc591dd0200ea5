from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.fig_transfer(
        Path(snakemake.input[0]),
        snakemake.params.figure,
        snakemake.wildcards.model,
        Path(snakemake.output.pdf),
    )
