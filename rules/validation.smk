# Method validation (docs/method.md §4-§7): every method scored against the controls, a model
# whose mechanism is known (positive) and models where it is absent (negative).


rule validation:
    input:
        truths=[trained(m) for m in COMPILED if m in CONTROLS],
        trace_shards=trace_shards(list(CONTROLS)),
        attention_shards=attention_shards(list(CONTROLS)),
        ablation_shards=ablation_shards([m for m in CONTROLS if m in MLLM_MODELS]),
        edit_summary=EDITING / "summary.json",
    output:
        summary=RESULTS / "validation" / "summary.json",
    log:
        LOGS / "validation.log",
    benchmark:
        BENCH / "validation.tsv"
    conda:
        ENV
    params:
        controls=CONTROLS,
        rules=config["validation"],
        data={m: config["models"][m]["data"] for m in CONTROLS},
        image_size=config["toy_world"]["image_size"],
        patch=config["toy_training"]["vision"]["patch_size"],
    script:
        "scripts/validation.py"


rule fig_validation:
    input:
        summary=rules.validation.output.summary,
    output:
        pdf=FIGURES / "validation.pdf",
        png=report(
            FIGURES / "validation.png",
            caption="../report/fig_validation.rst",
            category=REPORT_VALIDATION,
            labels={"figure": "validation"},
        ),
    log:
        LOGS / "figures" / "validation.log",
    benchmark:
        BENCH / "figures" / "validation.tsv"
    conda:
        ENV
    script:
        "scripts/fig_validation.py"


rule table_validation:
    input:
        summary=rules.validation.output.summary,
    output:
        table=report(
            TABLES / "validation.tex",
            caption="../report/table_validation.rst",
            category=REPORT_VALIDATION,
            labels={"table": "validation table"},
        ),
    log:
        LOGS / "table_validation.log",
    benchmark:
        BENCH / "table_validation.tsv"
    conda:
        ENV
    script:
        "scripts/table_validation.py"
