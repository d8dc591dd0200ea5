from mmtrace.steps import run, transfer

run(snakemake, transfer.fig_transfer_llm)
