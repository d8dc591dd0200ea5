from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.toy_world_examples(
        [Path(p) for p in snakemake.input.csvs],
        Path(snakemake.input.images).parent,
        snakemake.params.seed,
        Path(snakemake.output.pdf),
    )
