from mmtrace.steps import evaluate, run

run(snakemake, evaluate.model_accuracy)
