from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.edit_summary(
        [Path(p) for p in snakemake.input.shards],
        [Path(p) for p in snakemake.input.sweeps],
        snakemake.params.editing,
        Path(snakemake.output[0]),
    )
