from mmtrace.steps import world, run

run(snakemake, world.toy_world)
