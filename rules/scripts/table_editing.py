from mmtrace.steps import editing, run

run(snakemake, editing.table_editing)
