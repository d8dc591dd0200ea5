from mmtrace.steps import trace, run

run(snakemake, trace.fig_mllm_vs_llm)
