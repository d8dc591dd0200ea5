from mmtrace.steps import transfer, run

run(snakemake, transfer.attention_summary)
