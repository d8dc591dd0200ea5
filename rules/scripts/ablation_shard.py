from mmtrace.steps import transfer, run

run(snakemake, transfer.ablation_shard)
