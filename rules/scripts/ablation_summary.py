from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.ablation_summary([Path(p) for p in snakemake.input], Path(snakemake.output[0]))
