from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.fig_trace_average(
        [Path(p) for p in snakemake.input],
        snakemake.wildcards.model,
        snakemake.wildcards.setting,
        int(snakemake.wildcards.window),
        snakemake.params.kinds,
        Path(snakemake.output.pdf),
    )
