"""The shipped toy checkpoints: installed only after every file matches the manifest's
checksum, refused with a one-line error naming the file or setting otherwise; the committed set
itself verifies and matches config.yaml."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import yaml

from mmtrace.config import validate
from mmtrace.models import shipped

ROOT = Path(__file__).resolve().parents[2]
CFG = validate(yaml.safe_load((ROOT / "config.yaml").read_text()))


def fake_set(tmp_path: Path) -> tuple[Path, Path, dict]:
    """A trained-models folder with every checkpoint of config.yaml (tiny stand-in files), a
    toy world folder, and the shipped set written from them."""
    models = tmp_path / "models"
    for name in shipped.names(CFG):
        folder = models / name
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"name": name}))
        (folder / "model.safetensors").write_bytes(name.encode() * 100)
        marker = folder / shipped.marker(name)
        if name != shipped.TOKENIZER:
            marker.write_text(json.dumps({"seconds": 1.5, "accuracy": {"known": 0.9}}))
        else:
            marker.write_text("{}")
    world = tmp_path / "world"
    (world / "images").mkdir(parents=True)
    (world / "known.csv").write_text("qid,question\n1,a\n")
    (world / "world.json").write_text("{}")
    (world / "images" / "a.png").write_bytes(b"png")
    out = tmp_path / "shipped"
    manifest = shipped.write(models, out, CFG, {"default": world})
    return out, world, manifest


def test_a_written_set_verifies_and_installs_with_its_marker(tmp_path):
    out, _, manifest = fake_set(tmp_path)
    assert manifest["fingerprint"] == shipped.fingerprint(CFG)
    assert manifest["checkpoints"]["toy-llava"]["accuracy"] == {"accuracy/known": 0.9}
    dest = tmp_path / "results" / "toy-llava"
    shipped.install(out, "toy-llava", dest)
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        manifest["checkpoints"]["toy-llava"]["files"]
    )
    assert (dest / "model.safetensors").read_bytes() == (
        out / "toy-llava" / "model.safetensors"
    ).read_bytes()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: f.write_bytes(f.read_bytes()[:-1] + b"X"), "checksum mismatch"),
        (lambda f: f.unlink(), "missing"),
        (lambda f: f.with_name("extra.bin").write_bytes(b"x"), "not in the manifest"),
    ],
)
def test_a_changed_missing_or_extra_file_is_refused_naming_it(tmp_path, damage, message):
    out, _, _ = fake_set(tmp_path)
    weights = out / "toy-phi" / "model.safetensors"
    damage(weights)
    with pytest.raises(shipped.ShippedError, match=message) as err:
        shipped.install(out, "toy-phi", tmp_path / "dest")
    assert "toy-phi" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "dest").exists()  # nothing half-installed


def test_another_config_is_refused_naming_the_setting(tmp_path):
    out, _, manifest = fake_set(tmp_path)
    other = copy.deepcopy(CFG)
    other["seed"] = 7
    other["toy_training"]["mllms"]["toy-phi"]["finetune_steps"] = 10
    with pytest.raises(shipped.ShippedError) as err:
        shipped.check_config(manifest, other, out)
    text = str(err.value)
    assert "seed" in text and "toy_training.mllms.toy-phi.finetune_steps" in text
    assert "toy_models=train" in text
    shipped.check_config(manifest, CFG, out)  # the config it was written for passes


def test_a_toy_world_generated_differently_is_refused_naming_the_file(tmp_path):
    out, world, manifest = fake_set(tmp_path)
    shipped.check_world(manifest, {"default": world}, out)
    (world / "images" / "a.png").write_bytes(b"other renderer")
    with pytest.raises(shipped.ShippedError, match="images/"):
        shipped.check_world(manifest, {"default": world}, out)


def test_compare_tells_identical_from_retrained_with_accuracy_differences(tmp_path):
    out, _, _ = fake_set(tmp_path)
    retrained = tmp_path / "retrained"
    shutil.copytree(tmp_path / "models", retrained)
    log = retrained / "toy-llava" / shipped.LOG
    log.write_text(json.dumps({"seconds": 99.0, "accuracy": {"known": 0.9}}))  # timing only
    (retrained / "toy-phi" / "model.safetensors").write_bytes(b"other weights")
    (retrained / "toy-phi" / shipped.LOG).write_text(json.dumps({"accuracy": {"known": 0.85}}))
    result = shipped.compare(retrained, out, ["toy-llava", "toy-phi"])
    rows = result["checkpoints"]
    assert rows["toy-llava"]["identical"]
    assert not rows["toy-phi"]["identical"]
    assert rows["toy-phi"]["differing_files"] == ["model.safetensors", shipped.LOG]
    assert rows["toy-phi"]["numbers"]["accuracy/known"]["difference"] == pytest.approx(-0.05)
    assert "| toy-phi | **no** |" in shipped.markdown(result)


def test_the_committed_checkpoints_verify_and_match_config_yaml():
    """checkpoints/toy: every file matches its manifest, and the manifest is config.yaml's."""
    folder = ROOT / CFG["paths"]["checkpoints"]
    manifest = shipped.read_manifest(folder)
    shipped.check_config(manifest, CFG, folder)
    for name in shipped.names(CFG):
        files = shipped.verify(folder, name, manifest)
        assert any(f.suffix == ".safetensors" for f in files) or name == shipped.TOKENIZER
