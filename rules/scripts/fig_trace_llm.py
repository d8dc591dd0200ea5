from mmtrace.steps import run, trace

run(snakemake, trace.fig_trace_llm)
