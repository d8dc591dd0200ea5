from mmtrace.steps import evaluate, run

run(snakemake, evaluate.evaluate_model)
