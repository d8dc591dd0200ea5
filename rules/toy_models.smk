# Toy models of the real architectures, trained the way the real ones were (see
# mmtrace.models.train): tokenizer -> vision tower -> text models -> MLLMs.


rule train_tokenizer:
    input:
        csvs=split_csvs(ANALYSED_SPLITS),
        world=DATA / "world.json",
    output:
        tokenizer=MODEL_DIR / "tokenizer" / "tokenizer.json",
    log:
        LOGS / "train_tokenizer.log",
    benchmark:
        BENCH / "train_tokenizer.tsv"
    conda:
        ENV
    params:
        settings=config["toy_training"]["tokenizer"],
        prompts=config["prompts"],
    script:
        "scripts/train_tokenizer.py"


rule train_vision:
    output:
        vision=MODEL_DIR / "toy-vision{variant}" / "training_log.json",
    log:
        LOGS / "train_vision{variant}.log",
    benchmark:
        BENCH / "train_vision{variant}.tsv"
    wildcard_constraints:
        variant="|-planted",
    conda:
        ENV
    threads: config["threads"]
    resources:
        **GPU,
    params:
        settings=config["toy_training"]["vision"],
        image_size=config["toy_world"]["image_size"],
        seed=config["seed"],
        world=lambda wc: "planted" if wc.variant else "default",
    script:
        "scripts/train_vision.py"


rule train_text_model:
    input:
        csvs=split_csvs(ANALYSED_SPLITS),
        tokenizer=rules.train_tokenizer.output.tokenizer,
    output:
        checkpoint=trained("{name}"),
    log:
        LOGS / "train_text_model_{name}.log",
    benchmark:
        BENCH / "train_text_model_{name}.tsv"
    wildcard_constraints:
        name="|".join(TEXT_MODELS),
    # training is the run's critical path (text model -> MLLM -> its analyses): start it
    # before any ready analysis job (measured: toy-phi waited 309 s behind control jobs)
    priority: 10
    conda:
        ENV
    threads: config["threads"]
    resources:
        **GPU,
    params:
        settings=lambda wc: config["toy_training"]["text_models"][wc.name],
        prompts=config["prompts"],
        seed=config["seed"],
    script:
        "scripts/train_text_model.py"


rule train_mllm:
    input:
        csvs=lambda wc: split_csvs(ANALYSED_SPLITS, training_data(wc.name)),
        world=lambda wc: training_data(wc.name) / "world.json",
        vision=lambda wc: vision_tower(wc.name),
        text_model=lambda wc: trained(
            config["toy_training"]["mllms"][wc.name]["text_model"]
        ),
    output:
        checkpoint=trained("{name}"),
    log:
        LOGS / "train_mllm_{name}.log",
    benchmark:
        BENCH / "train_mllm_{name}.tsv"
    wildcard_constraints:
        name="|".join(MLLMS),
    # training is the run's critical path (text model -> MLLM -> its analyses): start it
    # before any ready analysis job (measured: toy-phi waited 309 s behind control jobs)
    priority: 10
    conda:
        ENV
    threads: config["threads"]
    resources:
        **GPU,
    params:
        settings=lambda wc: config["toy_training"]["mllms"][wc.name],
        prompts=config["prompts"],
        seed=config["seed"],
    script:
        "scripts/train_mllm.py"


rule toy_models:
    input:
        [trained(m) for m in TEXT_MODELS + MLLMS + COMPILED + RANDOM],


rule compile_mllm:
    input:
        csvs=split_csvs(data=PLANTED),
        world=PLANTED / "world.json",
        tokenizer=rules.train_tokenizer.output.tokenizer,
    output:
        truth=MODEL_DIR / "{name}" / "ground_truth.json",
    log:
        LOGS / "compile_mllm_{name}.log",
    benchmark:
        BENCH / "compile_mllm_{name}.tsv"
    wildcard_constraints:
        name="|".join(COMPILED) if COMPILED else "^$",
    conda:
        ENV
    params:
        prompts=config["prompts"],
        image_size=config["toy_world"]["image_size"],
        patch=config["toy_training"]["vision"]["patch_size"],
        seed=config["seed"],
        settings=lambda wc: config["toy_training"]["compiled"][wc.name],
    script:
        "scripts/compile_mllm.py"


rule randomize_mllm:
    input:
        source=lambda wc: trained(config["toy_training"]["random"][wc.name]["of"]),
    output:
        checkpoint=MODEL_DIR / "{name}" / "training_log.json",
    log:
        LOGS / "randomize_mllm_{name}.log",
    benchmark:
        BENCH / "randomize_mllm_{name}.tsv"
    wildcard_constraints:
        name="|".join(RANDOM) if RANDOM else "^$",
    conda:
        ENV
    params:
        seed=config["seed"],
    script:
        "scripts/randomize_mllm.py"
