from pathlib import Path

from mmtrace import logs, pipeline

with logs.to_file(snakemake.log[0]):
    pipeline.evaluate_model(
        snakemake.wildcards.model,
        Path(snakemake.input.model).parent,
        snakemake.params.spec,
        [Path(p) for p in snakemake.input.csvs],
        Path(snakemake.input.csvs[0]).parent,
        snakemake.params.prompts,
        snakemake.params.batch_size,
        snakemake.threads,
        Path(snakemake.output.scores),
        Path(snakemake.output.summary),
        [Path(p) for p in snakemake.input.human],
    )
