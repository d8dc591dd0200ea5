# Figures, written as PDF and PNG with fixed metadata so reruns are byte-identical.


if WORLD == "toy":

    rule toy_world_examples:
        input:
            csvs=split_csvs(),
            images=rules.toy_world.output.images,
        output:
            pdf=FIGURES / "toy_world_examples.pdf",
            png=report(
                FIGURES / "toy_world_examples.png",
                caption="../report/toy_world_examples.rst",
                category=REPORT_DATA,
                labels={"figure": "toy world examples"},
            ),
        log:
            LOGS / "figure_toy_world_examples.log",
        benchmark:
            BENCH / "figure_toy_world_examples.tsv"
        conda:
            ENV
        params:
            seed=config["seed"],
        script:
            "scripts/toy_world_examples.py"


rule figures:
    input:
        [FIGURES / "toy_world_examples.pdf"] if WORLD == "toy" else [],
        trace_figures(),
        transfer_figures(),
        editing_figures(),
        [FIGURES / "validation.pdf"] if CONTROLS else [],
