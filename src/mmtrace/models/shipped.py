"""The shipped toy checkpoints: versioned inputs of the embedded default, like the paper world's.

The paper's world downloads fixed checkpoints; training them inside every run would make each
machine analyse other models (floating-point rounding differs between CPUs and a training run
amplifies it), so two machines would publish two claims tables. The toy world works the same way
as the paper's: its trained models are committed under `checkpoints/toy/` with a manifest
(`manifest.json`) holding every file's SHA-256 and size, the configuration they were trained
with (`fingerprint`), digests of the toy world they learnt from, and the machine, pins and
library versions of the training run. A run installs each one into `results/models/<name>/` only
after checking its files against the manifest, and refuses, naming the file or the setting,
when a file was changed, the configuration asks for other models, or the toy world generated
here is not the one they were trained on.

`snakemake train` retrains them from the toy world (`results/retrained/`) and compares each with
the shipped one (`compare`): byte-identical, or how far its recorded accuracies are.
`make checkpoints` makes a retrained set the shipped one (`write`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from mmtrace.io import read_json, write_json

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = 1
TOKENIZER = "tokenizer"
LOG = "training_log.json"
# training_log.json keys that differ between identical trainings (timing, the machine)
VOLATILE = ("seconds", "versions", "environment")


class ShippedError(ValueError):
    """A shipped checkpoint cannot be used as asked; the message names the file or setting."""


def marker(name: str) -> str:
    """The file whose presence marks a checkpoint as installed (the workflow's output)."""
    return "tokenizer.json" if name == TOKENIZER else LOG


def names(cfg: Mapping) -> list[str]:
    """Every trained toy checkpoint of a config, in training order: the tokenizer, the vision
    towers its MLLMs start from, the text models, the MLLMs."""
    toy = cfg["toy_training"]
    towers = sorted(
        {
            "toy-vision-planted" if spec.get("data") == "planted" else "toy-vision"
            for spec in toy["mllms"].values()
        }
    )
    return [TOKENIZER, *towers, *toy["text_models"], *toy["mllms"]]


def fingerprint(cfg: Mapping) -> dict:
    """The settings the trained checkpoints depend on: the seed, the prompts, the toy world and
    the training schedules (not the compiled or random controls, built in every run)."""
    toy = cfg["toy_training"]
    return json.loads(
        json.dumps(
            {
                "seed": cfg["seed"],
                "prompts": cfg["prompts"],
                "toy_world": cfg["toy_world"],
                "toy_training": {
                    k: toy[k] for k in ("tokenizer", "vision", "text_models", "mllms")
                },
            },
            sort_keys=True,
        )
    )


def differences(a, b, prefix: str = "") -> list[str]:
    """The dotted keys where two JSON-like values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            key = f"{prefix}.{k}" if prefix else str(k)
            if k not in a or k not in b:
                out.append(key)
            else:
                out += differences(a[k], b[k], key)
        return out
    return [] if a == b else [prefix or "<top level>"]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(folder: Path) -> str:
    """One SHA-256 over a folder's files (relative names and contents, in sorted order)."""
    h = hashlib.sha256()
    for p in sorted(q for q in Path(folder).rglob("*") if q.is_file()):
        h.update(p.relative_to(folder).as_posix().encode() + b"\0")
        h.update(sha256(p).encode() + b"\n")
    return h.hexdigest()


def world_digests(worlds: Mapping[str, Path]) -> dict[str, dict[str, str]]:
    """Per toy world folder (`default`, `planted`): the digest of each CSV, world.json and the
    images folder, which the checkpoints were trained on and the run must regenerate alike."""
    out = {}
    for label, folder in worlds.items():
        folder = Path(folder)
        files = {p.name: sha256(p) for p in sorted(folder.glob("*.csv"))}
        files["world.json"] = sha256(folder / "world.json")
        files["images/"] = tree_digest(folder / "images")
        out[label] = files
    return out


def read_manifest(shipped: Path) -> dict:
    path = Path(shipped) / MANIFEST
    if not path.is_file():
        raise ShippedError(
            f"{path}: no manifest of shipped checkpoints; restore it (git checkout -- {path}) "
            "or train the toy models in the run (--config toy_models=train)"
        )
    manifest = read_json(path)
    if manifest.get("format") != FORMAT:
        raise ShippedError(f"{path}: manifest format {manifest.get('format')!r}, expected {FORMAT}")
    return manifest


def check_config(manifest: dict, cfg: Mapping, shipped: Path) -> None:
    """The config asks for the shipped models: same seed, prompts, world and schedules, and no
    checkpoint the manifest lacks. `cfg`: a workflow config, or its `fingerprint` with the
    checkpoint `names` added."""
    fp = cfg if "names" in cfg else {**fingerprint(cfg), "names": names(cfg)}
    diff = differences(manifest["fingerprint"], {k: v for k, v in fp.items() if k != "names"})
    if diff:
        shown = ", ".join(diff[:6]) + (f" and {len(diff) - 6} more" if len(diff) > 6 else "")
        raise ShippedError(
            f"config differs from the shipped checkpoints' ({Path(shipped) / MANIFEST}) in "
            f"{shown}: train models for it with --config toy_models=train"
        )
    missing = [n for n in fp["names"] if n not in manifest["checkpoints"]]
    if missing:
        raise ShippedError(
            f"{Path(shipped) / MANIFEST}: no shipped checkpoint {', '.join(missing)}: train "
            "it with --config toy_models=train"
        )


def check_world(manifest: dict, worlds: Mapping[str, Path], shipped: Path) -> None:
    """The toy world generated here is the one the checkpoints learnt from."""
    here = world_digests(worlds)
    for label, files in here.items():
        for name, digest in files.items():
            want = manifest["world"].get(label, {}).get(name)
            if want != digest:
                raise ShippedError(
                    f"{Path(worlds[label])}/{name}: the toy world generated here differs from "
                    f"the one the shipped checkpoints were trained on ({Path(shipped) / MANIFEST}"
                    f", sha256 {want} vs {digest}): check the installed library versions against "
                    "requirements.lock, or train the models with --config toy_models=train"
                )


def verify(shipped: Path, name: str, manifest: dict | None = None) -> list[Path]:
    """Every file of checkpoint `name` as the manifest lists it (SHA-256 and size), and no other
    file beside them; returns the files. A mismatch raises ShippedError naming the file."""
    shipped = Path(shipped)
    manifest = manifest if manifest is not None else read_manifest(shipped)
    entry = manifest["checkpoints"].get(name)
    if entry is None:
        raise ShippedError(f"{shipped / MANIFEST}: lists no checkpoint {name!r}")
    folder = shipped / name
    listed = entry["files"]
    present = {p.name for p in folder.iterdir() if p.is_file()} if folder.is_dir() else set()
    extra = sorted(present - set(listed))
    if extra:
        raise ShippedError(
            f"{folder / extra[0]}: not in the manifest of the shipped checkpoints; remove it "
            "(a checkpoint holds exactly the files its manifest lists)"
        )
    out = []
    for fname, want in sorted(listed.items()):
        path = folder / fname
        if not path.is_file():
            raise ShippedError(f"{path}: missing (listed in {shipped / MANIFEST}); git checkout it")
        size = path.stat().st_size
        digest = sha256(path)
        if size != want["bytes"] or digest != want["sha256"]:
            hint = (
                " (a Git LFS pointer? fetch the real file)"
                if size < 1024 and fname.endswith(".safetensors")
                else ""
            )
            raise ShippedError(
                f"{path}: checksum mismatch (sha256 {digest[:16]}..., {size} bytes; the manifest "
                f"says {want['sha256'][:16]}..., {want['bytes']} bytes){hint}: the file is damaged "
                f"or was changed; restore it (git checkout -- {path}) or retrain with --config "
                "toy_models=train"
            )
        out.append(path)
    return out


def install(shipped: Path, name: str, dest: Path, manifest: dict | None = None) -> None:
    """Verify checkpoint `name` and copy it to `dest` (a folder, replaced whole); the marker
    file is written last, so an interrupted install is never taken for a finished one."""
    files = verify(shipped, name, manifest)
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    tmp = dest.with_name(f".{dest.name}.installing")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    last = marker(name)
    for path in files:
        if path.name != last:
            shutil.copyfile(path, tmp / path.name)
    shutil.copyfile(Path(shipped) / name / last, tmp / last)
    tmp.rename(dest)
    log.info("installed %s from %s (%d files verified)", name, shipped, len(files))


def _accuracies(info: dict, prefix: str = "") -> dict[str, float]:
    """The accuracy numbers of a training log, flattened (`attribute_accuracy/shape`, ...)."""
    out = {}
    for k, v in info.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= _accuracies(v, key + "/")
        elif isinstance(v, int | float) and not isinstance(v, bool) and "accuracy" in key:
            out[key] = float(v)
        elif isinstance(v, list) and k.startswith("losses") and v:
            out[f"final_{key}"] = float(v[-1])  # no accuracy recorded: the last loss
    return out


def write(models: Path, shipped: Path, cfg: Mapping, worlds: Mapping[str, Path]) -> dict:
    """Make the trained checkpoints under `models` (one folder per name) the shipped set:
    copy their files into `shipped` and write the manifest. Returns the manifest."""
    models, shipped = Path(models), Path(shipped)
    entries = {}
    trained_with = None
    for name in names(cfg):
        src = models / name
        if not (src / marker(name)).is_file():
            raise ShippedError(f"{src / marker(name)}: missing; train the models first")
        dest = shipped / name
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        files = {}
        for path in sorted(p for p in src.iterdir() if p.is_file()):
            shutil.copyfile(path, dest / path.name)
            files[path.name] = {"sha256": sha256(path), "bytes": path.stat().st_size}
        entry: dict = {"files": files}
        if (src / LOG).is_file():
            info = read_json(src / LOG)
            entry["accuracy"] = _accuracies(info)
            trained_with = trained_with or {
                k: info[k] for k in ("versions", "environment") if k in info
            }
        entries[name] = entry
    manifest = {
        "format": FORMAT,
        "fingerprint": fingerprint(cfg),
        "world": world_digests(worlds),
        "trained_with": trained_with or {},
        "checkpoints": entries,
    }
    write_json(shipped / MANIFEST, manifest)
    return manifest


def compare(retrained: Path, shipped: Path, checkpoints: Iterable[str]) -> dict:
    """Each retrained checkpoint against the shipped one: `identical` when every file but the
    training log is byte-identical and the log agrees but for its timing and versions;
    otherwise the files that differ and each recorded accuracy, shipped vs retrained."""
    manifest = read_manifest(shipped)
    rows = {}
    for name in checkpoints:
        want = manifest["checkpoints"].get(name, {"files": {}})
        folder = Path(retrained) / name
        have = {p.name: sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}
        differ = sorted(
            f
            for f in set(have) | set(want["files"])
            if f != LOG and have.get(f) != want["files"].get(f, {}).get("sha256")
        )
        shipped_acc = want.get("accuracy", {})
        new_acc = _accuracies(read_json(folder / LOG)) if (folder / LOG).is_file() else {}
        if LOG in have and LOG in want["files"]:
            a = {k: v for k, v in read_json(folder / LOG).items() if k not in VOLATILE}
            b = {
                k: v for k, v in read_json(Path(shipped) / name / LOG).items() if k not in VOLATILE
            }
            if a != b:
                differ.append(LOG)
        rows[name] = {
            "identical": not differ,
            "differing_files": differ,
            # the training log's accuracies (or, without any, its final losses), and for a
            # model that differs its accuracy per split (evaluation/<split>), shipped vs retrained
            "numbers": {
                k: {
                    "shipped": shipped_acc.get(k),
                    "retrained": new_acc.get(k),
                    "difference": (
                        None
                        if shipped_acc.get(k) is None or new_acc.get(k) is None
                        else round(new_acc[k] - shipped_acc[k], 6)
                    ),
                }
                for k in sorted(set(shipped_acc) | set(new_acc))
            },
        }
    return {"shipped": str(shipped), "retrained": str(retrained), "checkpoints": rows}


def markdown(result: dict) -> str:
    """The comparison as a short report (results/retrained/comparison.md)."""
    lines = [
        "# Retrained toy checkpoints against the shipped ones",
        "",
        f"Shipped: `{result['shipped']}`; retrained: `{result['retrained']}`.",
        "",
        *(
            [
                "The retrained models follow another config than the shipped ones ("
                + ", ".join(result["config_differences"])
                + "): `make checkpoints` makes them the shipped set.",
                "",
            ]
            if result.get("config_differences")
            else []
        ),
        "| checkpoint | byte-identical | differing files | largest difference (accuracy, loss) |",
        "|---|---|---|---|",
    ]
    for name, r in result["checkpoints"].items():
        diffs = [abs(a["difference"]) for a in r["numbers"].values() if a["difference"]]
        lines.append(
            f"| {name} | {'yes' if r['identical'] else '**no**'} | "
            f"{', '.join(r['differing_files']) or '-'} | "
            f"{max(diffs) if diffs else 0:.4f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`python -m mmtrace.models.shipped` (`make checkpoints`): make the checkpoints of a
    training run (`snakemake train`: results/retrained/) the shipped set, for config.yaml."""
    import argparse

    import yaml

    from mmtrace.config import validate

    p = argparse.ArgumentParser(prog="python -m mmtrace.models.shipped", description=main.__doc__)
    p.add_argument("--models", type=Path, default=Path("results/retrained"))
    p.add_argument("--config", type=Path, default=Path("config.yaml"))
    args = p.parse_args(argv)
    cfg = validate(yaml.safe_load(args.config.read_text(encoding="utf-8")), str(args.config))
    data = Path(cfg["paths"]["data"])
    worlds = {"default": data}
    if any(s["data"] == "planted" for s in cfg["toy_training"]["mllms"].values()):
        worlds["planted"] = data.parent / f"{data.name}_planted"
    out = Path(cfg["paths"]["checkpoints"])
    manifest = write(args.models, out, cfg, worlds)
    total = sum(f["bytes"] for c in manifest["checkpoints"].values() for f in c["files"].values())
    print(f"wrote {len(manifest['checkpoints'])} checkpoints ({total / 1e6:.1f} MB) to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
