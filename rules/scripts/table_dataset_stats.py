from mmtrace.steps import run, tables

run(snakemake, tables.table_dataset_stats)
