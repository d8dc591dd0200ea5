from mmtrace.steps import trace, run

run(snakemake, trace.fig_trace_average)
