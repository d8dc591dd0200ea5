from mmtrace.steps import trace, run

run(snakemake, trace.trace_shard)
