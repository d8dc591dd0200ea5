from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.table_editing(Path(snakemake.input[0]), Path(snakemake.output[0]))
