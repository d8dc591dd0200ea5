from mmtrace.steps import editing, run

run(snakemake, editing.edit_sweep)
