from mmtrace.steps import paper_data, run

run(snakemake, paper_data.download)
