from mmtrace.steps import run, trace

run(snakemake, trace.fig_mllm_vs_llm)
