from mmtrace.steps import run, transfer

run(snakemake, transfer.ablation_shard)
