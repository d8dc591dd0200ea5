from mmtrace.steps import figures, run

run(snakemake, figures.toy_world_examples)
