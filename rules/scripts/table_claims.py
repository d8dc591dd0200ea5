from mmtrace.steps import claims, run

run(snakemake, claims.table_claims)
