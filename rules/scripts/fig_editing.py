from mmtrace.steps import editing, run

run(snakemake, editing.fig_editing)
