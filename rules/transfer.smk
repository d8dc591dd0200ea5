# Information transfer (docs/method.md §5) and visual-token ablation (§6): per model, split and shard,
# then one summary each; the figures draw the summaries.


rule attention_shard:
    input:
        csv=lambda wc: data_of(wc.model) / f"{wc.split}.csv",
        scores=rules.evaluate_model.output.scores,
        checkpoint=lambda wc: trained(wc.model),
    output:
        contributions=ATTENTION / "{model}" / "{split}_shard{shard}.json",
    log:
        LOGS / "attention" / "{model}_{split}_shard{shard}.log",
    benchmark:
        BENCH / "attention_{model}_{split}_shard{shard}.tsv"
    wildcard_constraints:
        model="|".join(MODELS),
        split="|".join(ANALYSED_SPLITS),
        shard=r"\d+",
    conda:
        ENV
    threads: config["threads"]
    resources:
        **gpu_job("attention_shard"),
    params:
        spec=lambda wc: config["models"][wc.model],
        prompts=lambda wc: prompts_for(wc.model),
        attention=lambda wc: settings_of(wc.model, "attention"),
    script:
        "scripts/attention_shard.py"


rule attention_summary:
    input:
        shards=attention_shards(),
    output:
        summary=ATTENTION / "summary.json",
    log:
        LOGS / "attention_summary.log",
    benchmark:
        BENCH / "attention_summary.tsv"
    conda:
        ENV
    params:
        attention=config["attention"],
        seed=config["seed"],
    script:
        "scripts/attention_summary.py"


rule ablation_shard:
    input:
        csv=lambda wc: data_of(wc.model) / f"{wc.split}.csv",
        scores=rules.evaluate_model.output.scores,
        checkpoint=lambda wc: trained(wc.model),
    output:
        knockouts=ABLATION / "{model}" / "{split}_shard{shard}.json",
    log:
        LOGS / "ablation" / "{model}_{split}_shard{shard}.log",
    benchmark:
        BENCH / "ablation_{model}_{split}_shard{shard}.tsv"
    wildcard_constraints:
        model="|".join(MLLM_MODELS) if MLLM_MODELS else "^$",
        split="|".join(ANALYSED_SPLITS),
        shard=r"\d+",
    conda:
        ENV
    threads: config["threads"]
    resources:
        **gpu_job("ablation_shard"),
    params:
        spec=lambda wc: config["models"][wc.model],
        prompts=lambda wc: prompts_for(wc.model),
        attention=lambda wc: settings_of(wc.model, "attention"),
        ablation=lambda wc: settings_of(wc.model, "ablation"),
        seed=config["seed"],
    script:
        "scripts/ablation_shard.py"


rule ablation_summary:
    input:
        shards=ablation_shards(),
    output:
        summary=ABLATION / "summary.json",
    log:
        LOGS / "ablation_summary.log",
    benchmark:
        BENCH / "ablation_summary.tsv"
    conda:
        ENV
    script:
        "scripts/ablation_summary.py"


rule transfer:
    input:
        rules.attention_summary.output,
        rules.ablation_summary.output,
        [RESULTS / "routes" / f"{m}.json" for m in ROUTE_MODELS],


rule fig_transfer:
    input:
        summary=lambda wc: (
            ABLATION if TRANSFER_FIGURES[wc.prefix] == "ablation" else ATTENTION
        )
        / "summary.json",
    output:
        pdf=FIGURES / "{prefix}_{model}.pdf",
        png=report(
            FIGURES / "{prefix}_{model}.png",
            caption="../report/fig_transfer.rst",
            category=REPORT_TRANSFER,
            subcategory="{model}",
            labels={"figure": "{prefix}", "model": "{model}"},
        ),
    log:
        LOGS / "figures" / "{prefix}_{model}.log",
    benchmark:
        BENCH / "figures" / "{prefix}_{model}.tsv"
    wildcard_constraints:
        prefix="|".join(TRANSFER_FIGURES),
        model="|".join(MODELS),
    conda:
        ENV
    params:
        figure=lambda wc: TRANSFER_FIGURES[wc.prefix],
    script:
        "scripts/fig_transfer.py"


rule transfer_figures:
    input:
        transfer_figures(),


rule route_diagnostics:
    input:
        csvs=lambda wc: csvs_of(wc.model, ANALYSED_SPLITS),
        world=lambda wc: data_of(wc.model) / "world.json",
        scores=rules.evaluate_model.output.scores,
        checkpoint=lambda wc: trained(wc.model),
    output:
        diagnostics=RESULTS / "routes" / "{model}.json",
    log:
        LOGS / "routes" / "{model}.log",
    benchmark:
        BENCH / "routes_{model}.tsv"
    wildcard_constraints:
        model="|".join(ROUTE_MODELS) if ROUTE_MODELS else "^$",
    conda:
        ENV
    threads: config["threads"]
    resources:
        **gpu_job("route_diagnostics"),
    params:
        spec=lambda wc: config["models"][wc.model],
        prompts=lambda wc: prompts_for(wc.model),
        routes=config["routes"],
        seed=config["seed"],
    script:
        "scripts/route_diagnostics.py"


rule fig_routes:
    input:
        diagnostics=RESULTS / "routes" / "{model}.json",
    output:
        pdf=FIGURES / "routes_{model}.pdf",
        png=report(
            FIGURES / "routes_{model}.png",
            caption="../report/fig_routes.rst",
            category=REPORT_TRANSFER,
            subcategory="{model}",
            labels={"figure": "routes", "model": "{model}"},
        ),
    log:
        LOGS / "figures" / "routes_{model}.log",
    benchmark:
        BENCH / "figures" / "routes_{model}.tsv"
    wildcard_constraints:
        model="|".join(ROUTE_MODELS) if ROUTE_MODELS else "^$",
    conda:
        ENV
    script:
        "scripts/fig_routes.py"
