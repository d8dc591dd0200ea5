from mmtrace.steps import run, toy_models

run(snakemake, toy_models.train)
