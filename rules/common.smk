# Shared helpers: the validated config, the paths every rule uses, and the model lists.
import signal
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from mmtrace import numerics
from mmtrace.models.shipped import ShippedError, check_config, read_manifest
from mmtrace.models.shipped import fingerprint as shipped_fingerprint
from mmtrace.models.shipped import marker as shipped_marker
from mmtrace.models.shipped import names as shipped_names
from mmtrace.config import command_line_values, gpu_request, job_resources, validate
from mmtrace.config.cluster import placeholder_message, placeholder_problems

# --config values arrive as strings ("true"): typed as YAML scalars, config.yaml stays strict
config.update(
    validate(
        command_line_values(config, dict(workflow.config_settings.config)),
        source="the workflow config (config.yaml and --config)",
    )
)

# Pinned numerical code paths (mmtrace.numerics): set here, in the Snakemake process, so every
# job inherits them (locally, and on SLURM, where each job's own Snakemake reads this file).
if config["numerics"]["pin"]:
    for _key, _old in numerics.apply(config["numerics"]["env"]).items():
        print(
            f"numerics: {_key}={_old} in the environment replaced by the pinned "
            f"{config['numerics']['env'][_key]} (config numerics.env)",
            file=sys.stderr,
        )

DATA = Path(config["paths"]["data"])
RESULTS = Path(config["paths"]["results"])
FIGURES = Path(config["paths"]["figures"])
TABLES = Path(config["paths"]["tables"])
LOGS = Path(config["paths"]["logs"])
MODEL_DIR = RESULTS / "models"
METRICS = RESULTS / "metrics"
BENCH = LOGS / "benchmarks"
TRACE = RESULTS / "trace"
ATTENTION = RESULTS / "attention"
ABLATION = RESULTS / "ablation"
EDITING = RESULTS / "editing"

WORLD = config["world"]
# The toy world's trained models: the shipped checkpoints (installed into MODEL_DIR after their
# checksums are verified) or trained in this run. Training writes to TRAIN_DIR: MODEL_DIR when
# the run trains its models, else results/retrained/ (`snakemake train`: retrain and compare).
TOY_MODELS = config["toy_models"] if WORLD == "toy" else None
SHIPPED = Path(config["paths"]["checkpoints"])
TRAIN_DIR = MODEL_DIR if TOY_MODELS == "train" else RESULTS / "retrained"
if TOY_MODELS == "shipped":
    # said at once; the analyses stop at `install_checkpoint` (`snakemake train` may go on:
    # it retrains for this config and says how far the result is from the shipped models)
    try:
        check_config(read_manifest(SHIPPED), config, SHIPPED)
    except ShippedError as exc:
        print(f"WARNING: {exc}", file=sys.stderr)
# The HTML report's categories (`snakemake --report report.html`), by the paper's sections. Each
# report() labels its figure first: the report turns a later label with two values into a toggle.
REPORT_DATA = "1. Data and models"
REPORT_TRACING = "2. Causal tracing (§4)"
REPORT_TRANSFER = "3. Information transfer and ablation (§5-6)"
REPORT_EDITING = "4. Model editing (§7)"
REPORT_VALIDATION = "5. Does the method work? (controls)"
REPORT_CLAIMS = "6. Does the paper hold? (claims)"
SPLITS = ["known", "movies", "okvqa", "heldout"]
ANALYSED_SPLITS = ["known", "movies", "okvqa"]
TEXT_MODELS = list(config["toy_training"]["text_models"])
MLLMS = list(config["toy_training"]["mllms"])
COMPILED = list(config["toy_training"]["compiled"])
RANDOM = list(config["toy_training"]["random"])
MODELS = list(config["models"])
MLLM_MODELS = [m for m, s in config["models"].items() if s["role"] == "mllm"]
LLM_MODELS = [m for m, s in config["models"].items() if s["role"] == "llm"]
# the MLLMs that are edited (a model's `settings: {editing: null}` opts out)
EDIT_MODELS = [
    m
    for m in MLLM_MODELS
    if config["models"][m]["settings"].get("editing", {}) is not None
]
# method-validation controls: model -> positive | negative
CONTROLS = {
    m: s["control"] for m, s in config["models"].items() if s["control"] != "none"
}
# The hard split (config toy_world.hard; docs/method.md §10): F3b/F4's
# evaluation set, the analysed splits' questions on hard renderings. The toy world's trained
# MLLMs answer it; not the controls (their claims read the analysed splits) nor the text LLM
# (its textual questions are the copied ones, unchanged, so it would add nothing).
HARD_SPLIT = "hard"
HARD_CSVS = (
    [DATA / f"{HARD_SPLIT}.csv"]
    if WORLD == "toy" and config["toy_world"]["hard"]["n"]
    else []
)
HARD_MODELS = (
    [
        m
        for m in MLLM_MODELS
        if m not in CONTROLS and config["models"][m]["data"] == "default"
    ]
    if HARD_CSVS
    else []
)
# route diagnostics: the toy world's MLLMs that are not negative controls (attributes known)
ROUTE_MODELS = (
    [m for m in MLLM_MODELS if CONTROLS.get(m) not in ("negative", "sanity")]
    if WORLD == "toy"
    else []
)
# the planted world (same questions, the entity only in the bottom patch row) for the controls
PLANTED = DATA.parent / f"{DATA.name}_planted"
ENV = "../environment.yml"
# The GPU request of every model job (gpu, and gpu_model when set), from the config alone: the local
# default profile runs at most one gpu=1 job at a time.
GPU = gpu_request(config)


def split_csvs(splits=SPLITS, data=DATA):
    return [data / f"{s}.csv" for s in splits]


def data_of(model):
    """The data folder a model is analysed on: the world's, or the planted world's."""
    return PLANTED if config["models"][model]["data"] == "planted" else DATA


def training_data(name):
    """The data folder a toy MLLM learns from: the world's, or the planted world's."""
    planted = config["toy_training"]["mllms"][name]["data"] == "planted"
    return PLANTED if planted else DATA


def vision_tower(name):
    """The vision tower a toy MLLM starts from: pre-trained on the renderings it learns from."""
    planted = config["toy_training"]["mllms"][name]["data"] == "planted"
    return (
        TRAIN_DIR / f"toy-vision{'-planted' if planted else ''}" / "training_log.json"
    )


# Some toy MLLM learns from the planted world (its checkpoints were trained on both worlds).
PLANTED_TRAINING = any(
    spec["data"] == "planted" for spec in config["toy_training"]["mllms"].values()
)


def checkpoint_marker(name, folder=MODEL_DIR):
    """The file that marks a trained toy checkpoint (the tokenizer included) as ready."""
    return folder / name / shipped_marker(name)


def shipped_files(name):
    """A shipped checkpoint's files as its manifest lists them (inputs of its installation, so
    a changed file reinstalls it); none when the manifest is missing (the rule then says so).
    """
    if not (SHIPPED / "manifest.json").is_file():
        return []
    entry = read_manifest(SHIPPED)["checkpoints"].get(name, {"files": {}})
    return [SHIPPED / name / f for f in sorted(entry["files"])]


def csvs_of(model, splits=SPLITS):
    return split_csvs(splits, data_of(model))


def hard_csvs(model):
    """The hard split's CSV for a model that answers it (HARD_MODELS), else nothing."""
    return HARD_CSVS if model in HARD_MODELS else []


def settings_of(model, section):
    """An analysis section for one model: the top-level section with the model's overrides
    (None where the model opts out of it: `editing: null`)."""
    over = config["models"][model]["settings"].get(section, {})
    return None if over is None else {**config[section], **over}


def trained(name, folder=MODEL_DIR):
    """The file that marks a model as ready (in MODEL_DIR, where the analyses load it; in
    TRAIN_DIR for the training rules): a toy model's training or installation writes it last,
    a compiled control's builder its ground truth; a hub model's `fetch_model` writes its pinned
    snapshot's location."""
    if config["models"].get(name, {}).get("source") == "hub":
        return folder / name / "snapshot.json"
    if name in COMPILED:
        return folder / name / "ground_truth.json"
    return folder / name / "training_log.json"


def gpu_job(rule_name):
    """A model job's resources (gpu, and memory and runtime growing with each attempt)."""
    return job_resources(config, rule_name)


def prompts_for(model):
    """The prompt templates a model job uses: `prompts`, with the model's own `prompt` (if its
    config entry has one) for its role."""
    spec = config["models"][model]
    out = dict(config["prompts"])
    if spec["prompt"]:
        out[spec["role"]] = spec["prompt"]
    return out


def shard_files(stage, models, groups, section):
    """Every job output of a sharded stage: one per model, group (split or editing scenario)
    and shard (each model's `section.shards`), under `stage`'s results folder."""
    return [
        stage / m / f"{g}_shard{i}.json"
        for m in models
        for g in groups
        for i in range(settings_of(m, section)["shards"])
    ]


def trace_shards(models=MODELS):
    """Every tracing output: one per model, split and shard (a job writes every split's)."""
    return shard_files(TRACE, models, ANALYSED_SPLITS, "tracing")


# The averaged traces' panels: MLP and attention (hidden only where neither is traced).
AVERAGE_KINDS = [
    k for k in ("mlp", "attn") if k in config["tracing"]["kinds"]
] or config["tracing"]["kinds"]


def trace_png(stem, caption):
    """One trace figure's PNG twin in the HTML report (`stem` may hold {model})."""
    return report(
        FIGURES / f"{stem}.png",
        caption=f"../report/{caption}.rst",
        category=REPORT_TRACING,
        subcategory="{model}",
        labels={"figure": stem.replace("_{model}", ""), "model": "{model}"},
    )


def fig1_window():
    """Fig. 1 shows the MLLM with window 1 (the paper's), or the smallest configured window."""
    windows = config["tracing"]["windows"]
    return 1 if 1 in windows else min(windows)


def trace_figures():
    """Every causal-trace figure (PDF; each has a PNG twin): Figs. 1, 3 and 4/12 per model."""
    t = config["tracing"]
    out = []
    for m, spec in config["models"].items():
        if spec["role"] == "mllm":
            out += [FIGURES / f"trace_avg_single_{m}_w{w}.pdf" for w in t["windows"]]
            out.append(FIGURES / f"trace_avg_multi_{m}_w{t['multi_window']}.pdf")
            out.append(FIGURES / f"trace_examples_{m}.pdf")
            if spec["llm"]:
                out.append(FIGURES / f"fig1_mllm_vs_llm_{m}.pdf")
        else:
            out.append(FIGURES / f"trace_avg_llm_{m}_w{t['llm_window']}.pdf")
    return out


def attention_shards(models=MODELS):
    """Every attention output: one per model, split and shard (a job writes every split's),
    and the hard split's for the models that answer it."""
    hard = [m for m in models if m in HARD_MODELS]
    return shard_files(ATTENTION, models, ANALYSED_SPLITS, "attention") + shard_files(
        ATTENTION, hard, [HARD_SPLIT], "attention"
    )


def ablation_shards(models=MLLM_MODELS):
    """Every visual-token ablation job's output (MLLMs only)."""
    return shard_files(ABLATION, models, ANALYSED_SPLITS, "ablation")


# The information-transfer figures' file-name prefixes: an MLLM's, and an LLM's (no image).
TRANSFER_FIGURES = [
    "fig5_visual_to_constraint",
    "fig15_16_constraint_to_last",
    "fig17_roc",
    "ablation",
]
LLM_TRANSFER_FIGURES = ["fig15_16_constraint_to_last", "fig17_roc"]


def transfer_png(prefix):
    """One transfer figure's PNG twin in the HTML report, with its own caption."""
    return report(
        FIGURES / f"{prefix}_{{model}}.png",
        caption=f"../report/{prefix}.rst",
        category=REPORT_TRANSFER,
        subcategory="{model}",
        labels={"figure": prefix, "model": "{model}"},
    )


def transfer_figures():
    """Figs. 5 (MLLMs), 15-16 and 17 (every model), the ablation curves (MLLMs) and the route
    diagnostics (toy MLLMs)."""
    out = [FIGURES / f"routes_{m}.pdf" for m in ROUTE_MODELS]
    for m in MODELS:
        out.append(FIGURES / f"fig15_16_constraint_to_last_{m}.pdf")
        out.append(FIGURES / f"fig17_roc_{m}.pdf")
    for m in MLLM_MODELS:
        out.append(FIGURES / f"fig5_visual_to_constraint_{m}.pdf")
        out.append(FIGURES / f"ablation_{m}.pdf")
    return out


def edit_shards():
    """Every editing job's output: one per MLLM, scenario (each model's) and shard."""
    return [
        f
        for m in EDIT_MODELS
        for f in shard_files(
            EDITING, [m], settings_of(m, "editing")["scenarios"], "editing"
        )
    ]


def editing_figures():
    """Figs. 6 and 14 and the tuning fronts per MLLM."""
    return [
        FIGURES / f"{prefix}_{m}.pdf"
        for m in EDIT_MODELS
        for prefix in ("fig6_editing", "fig14_layer_sweep", "edit_fronts")
    ]


def on_cluster_start():
    """Before the first submission of a SLURM run (not a dry-run, not inside a job): stop if
    the profile's placeholders are still in the jobs' resources, and make SIGTERM cancel the
    submitted jobs. Snakemake's own SIGTERM handler waits for running jobs to finish; SIGINT's
    (KeyboardInterrupt) cancels them with scancel, so SIGTERM is routed to it."""
    plugin = workflow.executor_plugin
    if plugin is None or plugin.name != "slurm":
        return
    problems = placeholder_problems(
        (job.rule.name, job.resources) for job in workflow.dag.needrun_jobs()
    )
    if problems:
        raise WorkflowError(placeholder_message(problems))
    signal.signal(signal.SIGTERM, signal.default_int_handler)


onstart:
    on_cluster_start()


def where_results_are():
    """What a finished run wrote and where, and how to see it (the Snakefile's onsuccess)."""
    lines = ["", "mmtrace: finished."]
    for label, path in (
        ("claims table:", RESULTS / "claims.md"),
        ("method validation:", RESULTS / "validation" / "claims_on_controls.md"),
        ("reproduction check:", RESULTS / "reproduction.md"),
    ):
        if path.exists():
            lines.append(f"  {label:20s}{path}")
    lines += [
        f"  {'figures:':20s}{FIGURES}/",
        f"  {'LaTeX tables:':20s}{TABLES}/",
        f"  {'logs:':20s}{LOGS}/",
        f"  {'HTML report:':20s}make report (REPORT=report.html; give this run's --config or "
        "--configfile in SMK_ARGS)",
        "",
    ]
    return "\n".join(lines)
