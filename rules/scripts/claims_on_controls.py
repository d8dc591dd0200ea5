from mmtrace.steps import claims, run

run(snakemake, claims.claims_on_controls)
