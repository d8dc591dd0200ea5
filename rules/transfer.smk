# Information transfer (docs/method.md §5) and visual-token ablation (§6): per model and shard (one
# job takes its shard of every analysed split, the model loaded once), then one summary each; the
# figures draw the summaries.


rule attention_shard:
    input:
        csvs=lambda wc: csvs_of(wc.model, ANALYSED_SPLITS),
        scores=rules.evaluate_model.output.scores,
        checkpoint=lambda wc: trained(wc.model),
    output:
        contributions=expand(
            ATTENTION / "{{model}}" / "{split}_shard{{shard}}.json",
            split=ANALYSED_SPLITS,
        ),
    log:
        LOGS / "attention" / "{model}_shard{shard}.log",
    benchmark:
        BENCH / "attention_{model}_shard{shard}.tsv"
    wildcard_constraints:
        model="|".join(m for m in MODELS if m not in HARD_MODELS) or "^$",
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


# The same job for a model that answers the hard split (F3b/F4's evaluation set): its shard of
# the hard split too, in the same job (one model load).
use rule attention_shard as attention_shard_hard with:
    input:
        csvs=lambda wc: csvs_of(wc.model, ANALYSED_SPLITS) + hard_csvs(wc.model),
        scores=rules.evaluate_model.output.scores,
        checkpoint=lambda wc: trained(wc.model),
    output:
        contributions=expand(
            ATTENTION / "{{model}}" / "{split}_shard{{shard}}.json",
            split=ANALYSED_SPLITS + [HARD_SPLIT],
        ),
    log:
        LOGS / "attention" / "{model}_shard{shard}.log",
    benchmark:
        BENCH / "attention_{model}_shard{shard}.tsv"
    wildcard_constraints:
        model="|".join(HARD_MODELS) or "^$",
        shard=r"\d+",


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
        csvs=lambda wc: csvs_of(wc.model, ANALYSED_SPLITS),
        scores=rules.evaluate_model.output.scores,
        checkpoint=lambda wc: trained(wc.model),
    output:
        knockouts=expand(
            ABLATION / "{{model}}" / "{split}_shard{{shard}}.json",
            split=ANALYSED_SPLITS,
        ),
    log:
        LOGS / "ablation" / "{model}_shard{shard}.log",
    benchmark:
        BENCH / "ablation_{model}_shard{shard}.tsv"
    wildcard_constraints:
        model="|".join(MLLM_MODELS) if MLLM_MODELS else "^$",
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


rule fig_transfer_mllm:
    input:
        attention=ATTENTION / "summary.json",
        ablation=ABLATION / "summary.json",
        # Fig. 5's example per split: the first question of its first attention shard, drawn
        # over its image
        examples=lambda wc: [
            ATTENTION / wc.model / f"{s}_shard0.json" for s in ANALYSED_SPLITS
        ],
        csvs=lambda wc: csvs_of(wc.model, ANALYSED_SPLITS),
    output:
        visual=FIGURES / "fig5_visual_to_constraint_{model}.pdf",
        constraint=FIGURES / "fig15_16_constraint_to_last_{model}.pdf",
        roc=FIGURES / "fig17_roc_{model}.pdf",
        knockouts=FIGURES / "ablation_{model}.pdf",
        png=[transfer_png(p) for p in TRANSFER_FIGURES],
    log:
        LOGS / "figures" / "transfer_{model}.log",
    benchmark:
        BENCH / "figures" / "transfer_{model}.tsv"
    wildcard_constraints:
        model="|".join(MLLM_MODELS) if MLLM_MODELS else "^$",
    conda:
        ENV
    params:
        alpha=config["claims"]["alpha"],
    script:
        "scripts/fig_transfer_mllm.py"


rule fig_transfer_llm:
    input:
        attention=ATTENTION / "summary.json",
    output:
        constraint=FIGURES / "fig15_16_constraint_to_last_{model}.pdf",
        roc=FIGURES / "fig17_roc_{model}.pdf",
        png=[transfer_png(p) for p in LLM_TRANSFER_FIGURES],
    log:
        LOGS / "figures" / "transfer_{model}.log",
    benchmark:
        BENCH / "figures" / "transfer_{model}.tsv"
    wildcard_constraints:
        model="|".join(LLM_MODELS) if LLM_MODELS else "^$",
    conda:
        ENV
    params:
        alpha=config["claims"]["alpha"],
    script:
        "scripts/fig_transfer_llm.py"


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
