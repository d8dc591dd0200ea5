from mmtrace.steps import run, validation

run(snakemake, validation.table_validation)
