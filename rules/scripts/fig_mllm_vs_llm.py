from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.fig_mllm_vs_llm(
        [Path(p) for p in snakemake.input.mllm],
        [Path(p) for p in snakemake.input.llm],
        snakemake.wildcards.model,
        snakemake.params.llm,
        snakemake.params.window,
        Path(snakemake.output.pdf),
    )
