from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.fig_editing(
        Path(snakemake.input.summary),
        Path(snakemake.input.trace),
        snakemake.params.figure,
        snakemake.wildcards.model,
        Path(snakemake.output.pdf),
    )
