from mmtrace.steps import run, tables

run(snakemake, tables.table_model_accuracy)
