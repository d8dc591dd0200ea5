# MultiModalCausalTrace (docs/method.md §4): per model, split and shard, then one summary.


rule trace_shard:
    input:
        csv=lambda wc: data_of(wc.model) / f"{wc.split}.csv",
        pool=lambda wc: csvs_of(wc.model),
        scores=rules.evaluate_model.output.scores,
        checkpoint=lambda wc: trained(wc.model),
    output:
        trace=TRACE / "{model}" / "{split}_shard{shard}.json",
    log:
        LOGS / "trace" / "{model}_{split}_shard{shard}.log",
    benchmark:
        BENCH / "trace_{model}_{split}_shard{shard}.tsv"
    wildcard_constraints:
        model="|".join(MODELS),
        split="|".join(ANALYSED_SPLITS),
        shard=r"\d+",
    conda:
        ENV
    threads: config["threads"]
    resources:
        **gpu_job("trace_shard"),
    params:
        spec=lambda wc: config["models"][wc.model],
        prompts=lambda wc: prompts_for(wc.model),
        tracing=lambda wc: settings_of(wc.model, "tracing"),
        seed=config["seed"],
    script:
        "scripts/trace_shard.py"


rule trace_summary:
    input:
        shards=trace_shards(),
    output:
        summary=TRACE / "summary.json",
    log:
        LOGS / "trace_summary.log",
    benchmark:
        BENCH / "trace_summary.tsv"
    conda:
        ENV
    script:
        "scripts/trace_summary.py"


rule tracing:
    input:
        rules.trace_summary.output,


rule fig_trace_average:
    input:
        shards=lambda wc: trace_shards([wc.model]),
    output:
        pdf=FIGURES / "trace_avg_{setting}_{model}_w{window}.pdf",
        png=report(
            FIGURES / "trace_avg_{setting}_{model}_w{window}.png",
            caption="../report/fig_trace_average.rst",
            category=REPORT_TRACING,
            subcategory="{model}",
            labels={"figure": "trace_avg_{setting}_w{window}", "model": "{model}"},
        ),
    log:
        LOGS / "figures" / "trace_avg_{setting}_{model}_w{window}.log",
    benchmark:
        BENCH / "figures" / "trace_avg_{setting}_{model}_w{window}.tsv"
    wildcard_constraints:
        setting="single|multi|llm",
        model="|".join(MODELS),
        window=r"\d+",
    conda:
        ENV
    params:
        kinds=[k for k in ("mlp", "attn") if k in config["tracing"]["kinds"]]
        or config["tracing"]["kinds"],
    script:
        "scripts/fig_trace_average.py"


rule fig_trace_examples:
    input:
        shards=lambda wc: trace_shards([wc.model]),
    output:
        pdf=FIGURES / "trace_examples_{model}.pdf",
        png=report(
            FIGURES / "trace_examples_{model}.png",
            caption="../report/fig_trace_examples.rst",
            category=REPORT_TRACING,
            subcategory="{model}",
            labels={"figure": "trace_examples", "model": "{model}"},
        ),
    log:
        LOGS / "figures" / "trace_examples_{model}.log",
    benchmark:
        BENCH / "figures" / "trace_examples_{model}.tsv"
    wildcard_constraints:
        model="|".join(MODELS),
    conda:
        ENV
    params:
        window=max(config["tracing"]["windows"]),
        kinds=config["tracing"]["kinds"],
        k=config["tracing"]["examples"],
    script:
        "scripts/fig_trace_examples.py"


rule fig_mllm_vs_llm:
    input:
        mllm_shards=lambda wc: trace_shards([wc.model]),
        llm_shards=lambda wc: trace_shards([config["models"][wc.model]["llm"]]),
    output:
        pdf=FIGURES / "fig1_mllm_vs_llm_{model}.pdf",
        png=report(
            FIGURES / "fig1_mllm_vs_llm_{model}.png",
            caption="../report/fig_mllm_vs_llm.rst",
            category=REPORT_TRACING,
            subcategory="{model}",
            labels={"figure": "fig1_mllm_vs_llm", "model": "{model}"},
        ),
    log:
        LOGS / "figures" / "fig1_mllm_vs_llm_{model}.log",
    benchmark:
        BENCH / "figures" / "fig1_mllm_vs_llm_{model}.tsv"
    wildcard_constraints:
        model="|".join(MODELS),
    conda:
        ENV
    params:
        llm=lambda wc: config["models"][wc.model]["llm"],
        window=fig1_window(),
    script:
        "scripts/fig_mllm_vs_llm.py"


rule trace_figures:
    input:
        trace_figures(),
