from mmtrace.steps import claims, run

run(snakemake, claims.robustness_seed)
