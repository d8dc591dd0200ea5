from mmtrace.steps import tables, run

run(snakemake, tables.table_model_accuracy)
