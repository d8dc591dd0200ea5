# MultiModalCausalTrace (docs/method.md §4): per model and shard (one job traces its shard of every
# analysed split, the model loaded once), then one summary.


rule trace_shard:
    input:
        csvs=lambda wc: csvs_of(wc.model, ANALYSED_SPLITS),
        pool=lambda wc: csvs_of(wc.model),
        scores=rules.evaluate_model.output.scores,
        checkpoint=lambda wc: trained(wc.model),
    output:
        trace=expand(
            TRACE / "{{model}}" / "{split}_shard{{shard}}.json", split=ANALYSED_SPLITS
        ),
    log:
        LOGS / "trace" / "{model}_shard{shard}.log",
    benchmark:
        BENCH / "trace_{model}_shard{shard}.tsv"
    wildcard_constraints:
        model="|".join(MODELS),
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


rule fig_trace_mllm:
    input:
        shards=lambda wc: trace_shards([wc.model]),
    output:
        single=[
            FIGURES / f"trace_avg_single_{{model}}_w{w}.pdf"
            for w in config["tracing"]["windows"]
        ],
        multi=FIGURES
        / f"trace_avg_multi_{{model}}_w{config['tracing']['multi_window']}.pdf",
        examples=FIGURES / "trace_examples_{model}.pdf",
        png=[
            trace_png(f"trace_avg_single_{{model}}_w{w}", "trace_avg_single")
            for w in config["tracing"]["windows"]
        ]
        + [
            trace_png(
                f"trace_avg_multi_{{model}}_w{config['tracing']['multi_window']}",
                "trace_avg_multi",
            ),
            trace_png("trace_examples_{model}", "fig_trace_examples"),
        ],
    log:
        LOGS / "figures" / "traces_{model}.log",
    benchmark:
        BENCH / "figures" / "traces_{model}.tsv"
    wildcard_constraints:
        model="|".join(MLLM_MODELS) if MLLM_MODELS else "^$",
    conda:
        ENV
    params:
        windows=config["tracing"]["windows"],
        multi_window=config["tracing"]["multi_window"],
        kinds=AVERAGE_KINDS,
        example_window=max(config["tracing"]["windows"]),
        example_kinds=config["tracing"]["kinds"],
        k=config["tracing"]["examples"],
    script:
        "scripts/fig_trace_mllm.py"


rule fig_trace_llm:
    input:
        shards=lambda wc: trace_shards([wc.model]),
    output:
        average=FIGURES
        / f"trace_avg_llm_{{model}}_w{config['tracing']['llm_window']}.pdf",
        png=trace_png(
            f"trace_avg_llm_{{model}}_w{config['tracing']['llm_window']}",
            "trace_avg_llm",
        ),
    log:
        LOGS / "figures" / "traces_{model}.log",
    benchmark:
        BENCH / "figures" / "traces_{model}.tsv"
    wildcard_constraints:
        model="|".join(LLM_MODELS) if LLM_MODELS else "^$",
    conda:
        ENV
    params:
        window=config["tracing"]["llm_window"],
        kinds=AVERAGE_KINDS,
    script:
        "scripts/fig_trace_llm.py"


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
