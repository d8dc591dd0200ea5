from mmtrace.steps import run, validation

run(snakemake, validation.fig_validation)
