from mmtrace.steps import transfer, run

run(snakemake, transfer.fig_transfer)
