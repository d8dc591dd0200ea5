"""The paper world end to end on stand-ins: `snakemake --config world=paper` downloads a small
copy of every public file from a loopback HTTP server (pinned ones verified, unpinned ones
recorded in the lock file), extracts the archives, fetches the OK-VQA COCO images and the
landmark images one by one, and annotates the four splits; with tiny checkpoints of the three
real architectures in a local Hugging Face cache (offline), it then runs the analyses through
figures and tables. The same rules and code run at paper scale; only the URLs, the checkpoints
and the sizes differ."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from support import paper_release
from support.workflow import snakemake

from mmtrace.dataset import load_split

pytestmark = pytest.mark.slow

PINNED = ("known_csv", "movies_csv", "okvqa_csv", "known_1000", "movies_table")


def _overlay(out: Path, server: paper_release.Server, files: dict[str, bytes]) -> dict:
    sources = paper_release.sources(server.url, files, PINNED)
    return {
        "world": "paper",
        "paper": {
            "paths": {k: str(out / k) for k in ("data", "results", "figures", "tables", "logs")},
            "use_gpu": False,
            "downloads": {
                "sources": sources,
                "coco_url": server.url + "/val2014/{name}",
                "workers": 2,
                "retries": 2,
            },
            "heldout": {"n": 10},
        },
    }


@pytest.fixture(scope="module")
def release():
    with paper_release.Server() as server:
        server.files.update(paper_release.build(server.url))
        yield server


@pytest.fixture(scope="module")
def data_run(repo_root, release, tmp_path_factory):
    out = tmp_path_factory.mktemp("paper")
    cfg = _overlay(out, release, release.files)
    cfg_file = out / "overlay.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    proc = snakemake(repo_root, "paper_data", "--configfile", str(cfg_file))
    assert proc.returncode == 0, proc.stderr[-6000:]
    return out, cfg_file


def test_every_split_is_downloaded_annotated_and_valid(data_run):
    out, _ = data_run
    data = out / "data"
    counts = {s: len(load_split(data / f"{s}.csv")) for s in paper_release.SPLITS}
    # Known: 5 facts kept (+ multi-constraint variants where a subject has two facts: none
    # here), the subject missing from known_1000 reported; Movies: 3 directors; OK-VQA: 4;
    # heldout: the landmark questions whose image could be fetched (the iNaturalist row is
    # outside the subset; one landmark's image URL is dead: dropped, counted, not fatal).
    assert counts["known"] == len(paper_release.KNOWN)
    assert counts["movies"] >= len(paper_release.DIRECTORS)
    assert counts["okvqa"] == len(paper_release.OKVQA)
    assert counts["heldout"] == len(paper_release.LANDMARKS) - paper_release.DEAD_LANDMARKS
    heldout = json.loads((data / "reports" / "heldout.json").read_text())
    assert (
        sum(heldout["load"]["dropped"].values()) == paper_release.DEAD_LANDMARKS + 1
    )  # + iNaturalist
    fetched = json.loads((data / "images" / "landmarks.json").read_text())
    assert len(fetched["failed"]) == paper_release.DEAD_LANDMARKS
    report = json.loads((data / "reports" / "known.json").read_text())
    assert report["load"]["kept"] == len(paper_release.KNOWN)
    assert report["load"]["dropped"] == {"subject not in known_1000": 1}
    # every image a question names exists under the data folder
    for split in paper_release.SPLITS:
        for rec in load_split(data / f"{split}.csv"):
            assert (data / rec.image_url).is_file(), (split, rec.image_url)
    human = json.loads((data / "human_answers" / "okvqa.json").read_text())
    assert json.loads((data / "human_answers" / "known.json").read_text()) == {}
    assert sorted(len(v) for v in human.values()) == [10] * len(paper_release.OKVQA)


def test_unpinned_downloads_are_recorded_and_pinned_ones_verified(data_run, release):
    out, _ = data_run
    lock = json.loads((out / "data" / "raw" / "downloads.lock.json").read_text())
    unpinned = {
        release.url + paper_release.SOURCE_PATHS[n]
        for n in paper_release.SOURCE_PATHS
        if n not in PINNED
    }
    assert set(lock) == unpinned  # pinned sources are checked against the config instead
    coco = json.loads((out / "data" / "images" / "coco.lock.json").read_text())
    assert len(coco) == len(paper_release.OKVQA)


def test_a_tampered_source_is_rejected_and_nothing_is_lost(repo_root, release, tmp_path):
    """A pinned file whose bytes changed on the server fails the run with both digests named;
    the previous results stay."""
    files = dict(release.files)
    cfg = _overlay(tmp_path, release, files)
    tampered = files["/known.csv"].replace(b"Space Needle", b"Space Noodle")  # same length
    assert tampered != files["/known.csv"]
    release.files["/tampered_known.csv"] = tampered
    cfg["paper"]["downloads"]["sources"]["known_csv"]["url"] = release.url + "/tampered_known.csv"
    cfg_file = tmp_path / "overlay.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    proc = snakemake(repo_root, "paper_data", "--configfile", str(cfg_file))
    assert proc.returncode != 0
    log = (tmp_path / "logs" / "download" / "multimodal_known.csv.log").read_text()
    assert (
        "as recorded in the config" in log
        and cfg["paper"]["downloads"]["sources"]["known_csv"]["sha256"] in log
    )
    assert not (tmp_path / "data" / "raw" / "multimodal_known.csv").exists()


COMMIT = {  # the revision each stand-in checkpoint is pinned at (any 40-hex commit id)
    "llava-1.5-7b": "1" * 40,
    "bunny-phi2-3b": "2" * 40,
    "vicuna-7b": "3" * 40,
}
SMALL = {  # the paper's settings at stand-in size (the models have 2-4 layers, 4 visual tokens)
    "evaluation": {"batch_size": 8},
    "tracing": {
        "windows": [1],
        "multi_window": 1,
        "llm_window": 1,
        "shards": 2,
        "batch_size": 16,
        "only_correct": False,  # random weights answer nothing right
        "min_drop": None,
        "max_questions": 3,
        "examples": 1,
    },
    # one job per model and split (config.yaml's paper settings shard attention and ablation
    # 4 ways: 60 more jobs, each a model load, here; the sharded path runs in tracing above and
    # in tests/test_workflow.py's attention)
    "attention": {"top_share": 0.25, "n_perm": 20, "n_boot": 20, "min_per_class": 2, "shards": 1},
    "ablation": {
        "fractions": [0.25, 0.5],
        "block_layers": 1,
        "random_draws": 1,
        "mean_images": 4,
        "only_correct": False,
        "max_questions": 2,
        "shards": 1,
    },
    "editing": {
        "layer": 0,
        "steps": 2,
        "finetune_steps": 2,
        "max_edits": 2,
        "sweep_layers": [0, 1],
        "sweep_edits": 2,
        "tuning": {
            "edits": 1,
            "multedit": [{"clamp": 4.0}],
            "finetune": [{"finetune_lr": 0.001}],
            "finetune_constrained": [{"finetune_norm": 0.001}],
        },
        "unrelated": 4,
        "shards": 1,
    },
}


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory) -> Path:
    """The three checkpoints as a Hugging Face cache holds them after `fetch_model` ran on a
    node with internet: tiny weights under the real checkpoints' module and tensor names."""
    import torch
    from support import tiny_checkpoints, tiny_models

    root = tmp_path_factory.mktemp("hf")
    cache = root / "hub"
    tiny_checkpoints.hf_cache_put(
        cache,
        "tiny/llava-1.5-7b-hf",
        tiny_checkpoints.write_llava_hf(tiny_models.llava("llama"), root / "llava"),
        COMMIT["llava-1.5-7b"],
    )
    tiny_checkpoints.hf_cache_put(
        cache,
        "tiny/Bunny-v1_0-3B",
        tiny_checkpoints.write_bunny_checkpoint(root / "bunny"),
        COMMIT["bunny-phi2-3b"],
    )
    vicuna = root / "vicuna"  # as lmsys/vicuna-7b-v1.5: pickled weights only (config opts in)
    llama = tiny_models.llama()
    llama.config.save_pretrained(vicuna)
    torch.save(llama.state_dict(), vicuna / "pytorch_model.bin")
    tiny_checkpoints.word_tokenizer(tiny_checkpoints.WORDS, image_token=False).save_pretrained(
        vicuna
    )
    tiny_checkpoints.hf_cache_put(cache, "tiny/vicuna-7b-v1.5", vicuna, COMMIT["vicuna-7b"])
    return cache


@pytest.fixture(scope="module")
def full_run(repo_root, release, hub_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("paper_full")
    cfg = _overlay(out, release, release.files)
    cfg["paper"]["settings"] = SMALL
    cfg["paper"]["models"] = {
        name: {
            "repo": {
                "llava-1.5-7b": "tiny/llava-1.5-7b-hf",
                "bunny-phi2-3b": "tiny/Bunny-v1_0-3B",
                "vicuna-7b": "tiny/vicuna-7b-v1.5",
            }[name],
            "revision": commit,
            "dtype": "float32",
            "device": "cpu",
        }
        for name, commit in COMMIT.items()
    }
    cfg_file = out / "overlay.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1"}
    proc = snakemake(repo_root, "--configfile", str(cfg_file), env=env)
    assert proc.returncode == 0, proc.stderr[-8000:]
    return out, cfg_file, env


def test_the_whole_paper_dag_runs_on_stand_ins(full_run):
    """Downloads through figures and tables, for both MLLMs and the LLM, loaded offline from
    their pinned snapshots (Bunny through the wrapper, with its own prompt)."""
    out, _, _ = full_run
    for name, commit in COMMIT.items():
        marker = json.loads((out / "results" / "models" / name / "snapshot.json").read_text())
        assert marker["commit"] == commit
    converted = out / "results" / "models" / "vicuna-7b" / "safetensors"
    assert list(converted.glob("*.safetensors")) and not list(converted.glob("*.bin"))
    acc = json.loads((out / "results" / "metrics" / "model_accuracy.json").read_text())
    assert set(acc) >= set(COMMIT)
    for name in COMMIT:  # OK-VQA's generated answers scored against its 10 annotators
        okvqa = acc[name]["splits"]["okvqa"]
        assert okvqa["n_vqa"] == len(paper_release.OKVQA) and 0 <= okvqa["vqa_accuracy"] <= 1
    for rel in (
        "figures/fig1_mllm_vs_llm_llava-1.5-7b.pdf",
        "figures/trace_avg_single_bunny-phi2-3b_w1.pdf",
        "figures/trace_avg_llm_vicuna-7b_w1.pdf",
        "figures/fig5_visual_to_constraint_bunny-phi2-3b.pdf",
        "figures/fig17_roc_vicuna-7b.pdf",
        "figures/fig6_editing_llava-1.5-7b.pdf",
        "figures/fig14_layer_sweep_bunny-phi2-3b.pdf",
        "tables/dataset_stats.tex",
        "tables/model_accuracy.tex",
        "tables/editing.tex",
    ):
        assert (out / rel).stat().st_size > 0, rel
    assert not (out / "figures" / "toy_world_examples.pdf").exists()


def test_paper_rerun_does_nothing(repo_root, full_run):
    _, cfg_file, env = full_run
    proc = snakemake(repo_root, "--configfile", str(cfg_file), "-n", env=env)
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr
