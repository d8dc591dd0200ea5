# The embedded default data: the toy world (entities, drawn images, facts, annotated questions).


rule toy_world:
    output:
        csvs=split_csvs(),
        world=DATA / "world.json",
        images=directory(DATA / "images"),
    log:
        LOGS / "toy_world.log",
    benchmark:
        BENCH / "toy_world.tsv"
    conda:
        ENV
    params:
        seed=config["seed"],
        settings=config["toy_world"],
    script:
        "scripts/toy_world.py"
