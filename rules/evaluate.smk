# Model accuracy per split: which questions each model answers (top-1 first answer token).


rule evaluate_model:
    input:
        # the hard split (F3b/F4 only) is scored beside, and summarised apart from, the rest
        csvs=lambda wc: csvs_of(wc.model, ANALYSED_SPLITS) + hard_csvs(wc.model),
        checkpoint=lambda wc: trained(wc.model),
        # the paper world's annotator answers (OK-VQA): VQA accuracy of generated answers
        human=(
            [DATA / "human_answers" / f"{s}.json" for s in ANALYSED_SPLITS]
            if WORLD == "paper"
            else []
        ),
    output:
        scores=METRICS / "scores" / "{model}.jsonl",
        summary=METRICS / "accuracy" / "{model}.json",
    log:
        LOGS / "evaluate_model_{model}.log",
    benchmark:
        BENCH / "evaluate_model_{model}.tsv"
    wildcard_constraints:
        model="|".join(MODELS),
    conda:
        ENV
    threads: config["threads"]
    resources:
        **gpu_job("evaluate_model"),
    params:
        spec=lambda wc: config["models"][wc.model],
        prompts=lambda wc: prompts_for(wc.model),
        batch_size=config["evaluation"]["batch_size"],
    script:
        "scripts/evaluate_model.py"


rule model_accuracy:
    input:
        summaries=expand(rules.evaluate_model.output.summary, model=MODELS),
    output:
        accuracy=METRICS / "model_accuracy.json",
    log:
        LOGS / "model_accuracy.log",
    benchmark:
        BENCH / "model_accuracy.tsv"
    conda:
        ENV
    script:
        "scripts/model_accuracy.py"


rule evaluation:
    input:
        rules.model_accuracy.output,
