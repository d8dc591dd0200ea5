from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.make_toy_world(
        Path(snakemake.output.world).parent, snakemake.params.seed, snakemake.params.world
    )
