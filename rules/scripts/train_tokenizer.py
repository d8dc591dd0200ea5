from mmtrace.steps import toy_models, run

run(snakemake, toy_models.train_tokenizer)
