from mmtrace.steps import paper_models, run

run(snakemake, paper_models.fetch_model)
