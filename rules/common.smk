# Shared helpers: the validated config, the paths every rule uses, and the model lists.
from pathlib import Path

from mmtrace.config import validate

config.update(validate(config, source="the workflow config (config.yaml and --config)"))

DATA = Path(config["paths"]["data"])
RESULTS = Path(config["paths"]["results"])
FIGURES = Path(config["paths"]["figures"])
TABLES = Path(config["paths"]["tables"])
LOGS = Path(config["paths"]["logs"])
MODEL_DIR = RESULTS / "models"
METRICS = RESULTS / "metrics"
BENCH = LOGS / "benchmarks"

SPLITS = ["known", "movies", "okvqa", "heldout"]
ANALYSED_SPLITS = ["known", "movies", "okvqa"]
TEXT_MODELS = list(config["toy_training"]["text_models"])
MLLMS = list(config["toy_training"]["mllms"])
MODELS = list(config["models"])
ENV = "../environment.yml"
# GPUs per model job: the local default profile runs at most one gpu=1 job at a time.
GPU = 1 if config["use_gpu"] else 0


def split_csvs(splits=SPLITS):
    return [DATA / f"{s}.csv" for s in splits]


def trained(name):
    """The file a toy model's training writes last: its presence means the model is complete."""
    return MODEL_DIR / name / "training_log.json"
