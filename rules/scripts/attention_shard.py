from mmtrace.steps import run, transfer

run(snakemake, transfer.attention_shard)
