from mmtrace.steps import run, transfer

run(snakemake, transfer.route_diagnostics)
