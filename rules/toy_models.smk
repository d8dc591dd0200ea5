# The toy models. By default the analyses run on the shipped checkpoints (`toy_models: shipped`):
# committed under paths.checkpoints with a checksum manifest, verified and installed into
# MODEL_DIR (mmtrace.models.shipped), so a run trains nothing and every machine analyses the same
# models. Training (mmtrace.models.train: tokenizer -> vision tower -> text models -> MLLMs)
# writes to TRAIN_DIR: MODEL_DIR with `--config toy_models=train`, else results/retrained/,
# where `snakemake train` retrains them and compares each with the shipped one.

TRAINED = shipped_names(config)

if TOY_MODELS == "shipped":

    rule install_checkpoint:
        input:
            files=lambda wc: shipped_files(wc.name),
            manifest=SHIPPED / "manifest.json",
            worlds=[DATA / "world.json"]
            + ([PLANTED / "world.json"] if PLANTED_TRAINING else []),
        output:
            marker=MODEL_DIR / "{name}" / "training_log.json",
        log:
            LOGS / "install_checkpoint_{name}.log",
        wildcard_constraints:
            name="|".join(m for m in TRAINED if m != "tokenizer"),
        localrule: True
        conda:
            ENV
        params:
            shipped=SHIPPED,
            wanted={**shipped_fingerprint(config), "names": TRAINED},
            planted=PLANTED_TRAINING,
        script:
            "scripts/install_checkpoint.py"

    # the tokenizer is a checkpoint without a training log: its marker is tokenizer.json
    use rule install_checkpoint as install_tokenizer with:
        input:
            files=shipped_files("tokenizer"),
            manifest=SHIPPED / "manifest.json",
            worlds=[DATA / "world.json"]
            + ([PLANTED / "world.json"] if PLANTED_TRAINING else []),
        output:
            marker=MODEL_DIR / "tokenizer" / "tokenizer.json",
        log:
            LOGS / "install_checkpoint_tokenizer.log",
        params:
            shipped=SHIPPED,
            wanted={**shipped_fingerprint(config), "names": TRAINED},
            planted=PLANTED_TRAINING,
            name="tokenizer",


rule train_tokenizer:
    input:
        csvs=split_csvs(ANALYSED_SPLITS),
        world=DATA / "world.json",
    output:
        tokenizer=TRAIN_DIR / "tokenizer" / "tokenizer.json",
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
        vision=TRAIN_DIR / "toy-vision{variant}" / "training_log.json",
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
        checkpoint=trained("{name}", TRAIN_DIR),
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
            config["toy_training"]["mllms"][wc.name]["text_model"], TRAIN_DIR
        ),
    output:
        checkpoint=trained("{name}", TRAIN_DIR),
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


# The models the analyses run on (shipped and installed, or trained), and the controls.
rule toy_models:
    input:
        [checkpoint_marker(m) for m in TRAINED],
        [trained(m) for m in COMPILED + RANDOM],


# `snakemake train`: train every toy model (into results/retrained/ unless the run trains its
# own) and compare each with the shipped checkpoint: byte-identical, or how far its accuracies
# are. `make checkpoints` then makes a retrained set the shipped one.
rule train:
    input:
        markers=[checkpoint_marker(m, TRAIN_DIR) for m in TRAINED],
        manifest=SHIPPED / "manifest.json",
        csvs=split_csvs(ANALYSED_SPLITS)
        + (split_csvs(ANALYSED_SPLITS, PLANTED) if PLANTED_TRAINING else []),
    output:
        comparison=TRAIN_DIR.parent / "retrained_vs_shipped.json",
        markdown=TRAIN_DIR.parent / "retrained_vs_shipped.md",
    log:
        LOGS / "train.log",
    conda:
        ENV
    threads: config["threads"]
    params:
        shipped=SHIPPED,
        names=TRAINED,
        wanted={**shipped_fingerprint(config), "names": TRAINED},
        # the text models and MLLMs, evaluated where a retrained one is not byte-identical
        roles={
            **{m: "llm" for m in TEXT_MODELS},
            **{m: "mllm" for m in MLLMS},
        },
        worlds={
            **{m: str(DATA) for m in TEXT_MODELS},
            **{m: str(training_data(m)) for m in MLLMS},
        },
        prompts=config["prompts"],
        batch_size=config["evaluation"]["batch_size"],
    script:
        "scripts/train.py"


rule compile_mllm:
    input:
        csvs=split_csvs(data=PLANTED),
        world=PLANTED / "world.json",
        tokenizer=checkpoint_marker("tokenizer"),
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
        # the traces whose expected cells the ground truth lists
        windows=config["validation"]["windows"],
        window_style=config["tracing"]["window_style"],
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
