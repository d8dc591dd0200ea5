from mmtrace.steps import tables, run

run(snakemake, tables.table_dataset_stats)
