from mmtrace.steps import run, trace

run(snakemake, trace.trace_shard)
