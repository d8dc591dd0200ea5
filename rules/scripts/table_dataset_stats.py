from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.table_dataset_stats([Path(p) for p in snakemake.input.csvs], Path(snakemake.output[0]))
