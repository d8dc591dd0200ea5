# Reproducing "Understanding Information Storage and Transfer in Multi-modal Large Language
# Models" (Basu et al., NeurIPS 2024). `snakemake --cores all` regenerates every figure and table;
# named targets (toy_world, toy_models, evaluation, tracing, transfer,
# editing, figures, tables) rerun parts.


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/world.smk"
include: "rules/toy_models.smk"
include: "rules/evaluate.smk"
include: "rules/trace.smk"
include: "rules/transfer.smk"
include: "rules/editing.smk"
include: "rules/figures.smk"
include: "rules/tables.smk"


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
