from mmtrace.steps import run, validation

run(snakemake, validation.validation)
