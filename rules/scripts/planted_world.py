from mmtrace.steps import run, world

run(snakemake, world.planted_world)
