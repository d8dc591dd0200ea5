from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.fig_trace_examples(
        [Path(p) for p in snakemake.input],
        snakemake.wildcards.model,
        snakemake.params.window,
        snakemake.params.kinds,
        snakemake.params.k,
        Path(snakemake.output.pdf),
    )
