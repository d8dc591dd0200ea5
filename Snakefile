# Reproducing "Understanding Information Storage and Transfer in Multi-modal Large Language
# Models" (Basu et al., NeurIPS 2024). `snakemake --cores all` regenerates every figure and table
# on the embedded toy world; `--config world=paper` runs the same analyses on the real data and
# checkpoints. Named targets (toy_world / paper_data, toy_models / paper_models, evaluation,
# tracing, transfer, editing, figures, tables) rerun parts.


from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


# `snakemake --report report.html` (make report): this text, then every figure and table by
# section, with its caption (report/*.rst).
report: "report/workflow.rst"


include: "rules/common.smk"


if WORLD == "paper":

    include: "rules/paper_data.smk"
    include: "rules/paper_models.smk"

else:

    include: "rules/world.smk"
    include: "rules/toy_models.smk"


include: "rules/evaluate.smk"
include: "rules/trace.smk"
include: "rules/transfer.smk"
include: "rules/editing.smk"


if CONTROLS:

    include: "rules/validation.smk"


include: "rules/figures.smk"
include: "rules/tables.smk"
include: "rules/claims.smk"


rule all:
    default_target: True
    input:
        rules.figures.input,
        rules.tables.input,
        METRICS / "model_accuracy.json",
        TRACE / "summary.json",
        ATTENTION / "summary.json",
        ABLATION / "summary.json",
        EDITING / "summary.json",
        (
            [
                RESULTS / "validation" / "summary.json",
                RESULTS / "validation" / "claims_on_controls.json",
            ]
            if CONTROLS
            else []
        ),
        rules.claims.output,
        rules.table_claims.output,


onsuccess:
    print(where_results_are())
