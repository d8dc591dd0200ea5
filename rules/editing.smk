# MultEdit and its baselines (docs/method.md §7): per MLLM the layer sweep (Fig. 14) and each
# method's tuning front (its setting chosen on a tuning split), then per scenario and shard the
# held-out edits at the chosen settings, one summary, Figs. 6 and 14, the fronts and the table.


rule edit_shard:
    input:
        csvs=lambda wc: csvs_of(wc.model),
        scores=rules.evaluate_model.output.scores,
        sweep=EDITING / "{model}" / "sweep.json",
        checkpoint=lambda wc: trained(wc.model),
    output:
        edits=EDITING / "{model}" / "{scenario}_shard{shard}.json",
    log:
        LOGS / "editing" / "{model}_{scenario}_shard{shard}.log",
    benchmark:
        BENCH / "edit_{model}_{scenario}_shard{shard}.tsv"
    wildcard_constraints:
        model="|".join(EDIT_MODELS) if EDIT_MODELS else "^$",
        scenario="error_correction|long_tail",
        shard=r"\d+",
    conda:
        ENV
    threads: config["threads"]
    resources:
        **gpu_job("edit_shard"),
    params:
        spec=lambda wc: config["models"][wc.model],
        prompts=lambda wc: prompts_for(wc.model),
        editing=lambda wc: settings_of(wc.model, "editing"),
        seed=config["seed"],
    script:
        "scripts/edit_shard.py"


rule edit_sweep:
    input:
        csvs=lambda wc: csvs_of(wc.model),
        scores=rules.evaluate_model.output.scores,
        checkpoint=lambda wc: trained(wc.model),
    output:
        sweep=EDITING / "{model}" / "sweep.json",
    log:
        LOGS / "editing" / "{model}_sweep.log",
    benchmark:
        BENCH / "edit_sweep_{model}.tsv"
    wildcard_constraints:
        model="|".join(EDIT_MODELS) if EDIT_MODELS else "^$",
    conda:
        ENV
    threads: config["threads"]
    resources:
        **gpu_job("edit_sweep"),
    params:
        spec=lambda wc: config["models"][wc.model],
        prompts=lambda wc: prompts_for(wc.model),
        editing=lambda wc: settings_of(wc.model, "editing"),
        tracing=lambda wc: settings_of(wc.model, "tracing"),
        seed=config["seed"],
    script:
        "scripts/edit_sweep.py"


rule edit_summary:
    input:
        shards=edit_shards(),
        sweeps=[EDITING / m / "sweep.json" for m in EDIT_MODELS],
    output:
        summary=EDITING / "summary.json",
    log:
        LOGS / "edit_summary.log",
    benchmark:
        BENCH / "edit_summary.tsv"
    conda:
        ENV
    params:
        editing=config["editing"],
    script:
        "scripts/edit_summary.py"


rule editing:
    input:
        rules.edit_summary.output,


rule fig_editing:
    input:
        summary=EDITING / "summary.json",
        trace_summary=TRACE / "summary.json",
    output:
        methods=FIGURES / "fig6_editing_{model}.pdf",
        layers=FIGURES / "fig14_layer_sweep_{model}.pdf",
        fronts=FIGURES / "edit_fronts_{model}.pdf",
        methods_png=report(
            FIGURES / "fig6_editing_{model}.png",
            caption="../report/fig6_editing.rst",
            category=REPORT_EDITING,
            subcategory="{model}",
            labels={"figure": "fig6_editing", "model": "{model}"},
        ),
        layers_png=report(
            FIGURES / "fig14_layer_sweep_{model}.png",
            caption="../report/fig14_layer_sweep.rst",
            category=REPORT_EDITING,
            subcategory="{model}",
            labels={"figure": "fig14_layer_sweep", "model": "{model}"},
        ),
        fronts_png=report(
            FIGURES / "edit_fronts_{model}.png",
            caption="../report/fig_edit_fronts.rst",
            category=REPORT_EDITING,
            subcategory="{model}",
            labels={"figure": "edit_fronts", "model": "{model}"},
        ),
    log:
        LOGS / "figures" / "editing_{model}.log",
    benchmark:
        BENCH / "figures" / "editing_{model}.tsv"
    wildcard_constraints:
        model="|".join(EDIT_MODELS) if EDIT_MODELS else "^$",
    conda:
        ENV
    params:
        alpha=config["claims"]["alpha"],
    script:
        "scripts/fig_editing.py"


rule table_editing:
    input:
        summary=EDITING / "summary.json",
    output:
        table=report(
            TABLES / "editing.tex",
            caption="../report/table_editing.rst",
            category=REPORT_EDITING,
            labels={"table": "editing"},
        ),
    log:
        LOGS / "table_editing.log",
    benchmark:
        BENCH / "table_editing.tsv"
    conda:
        ENV
    script:
        "scripts/table_editing.py"
