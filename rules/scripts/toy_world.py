from mmtrace.steps import run, world

run(snakemake, world.toy_world)
