# The embedded default data: the toy world (entities, drawn images, facts, annotated questions).


rule toy_world:
    output:
        # and the hard split's (HARD_CSVS: F3b/F4's evaluation set) when toy_world.hard.n > 0
        csvs=split_csvs() + HARD_CSVS,
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


rule planted_world:
    input:
        world=DATA / "world.json",
        csvs=split_csvs(),
    output:
        planted=PLANTED / "world.json",
        csvs=split_csvs(data=PLANTED),
        images=directory(PLANTED / "images"),
    log:
        LOGS / "planted_world.log",
    benchmark:
        BENCH / "planted_world.tsv"
    conda:
        ENV
    params:
        seed=config["seed"],
        patch=config["toy_training"]["vision"]["patch_size"],
    script:
        "scripts/planted_world.py"
