import copy

import pytest
import yaml

from mmtrace.config import ConfigError, validate


@pytest.fixture()
def raw(repo_root):
    return yaml.safe_load((repo_root / "config.yaml").read_text())


def test_default_config_is_valid_and_explicit(raw):
    cfg = validate(raw)
    assert cfg["world"] == "toy"
    # config.yaml sets every toy_world key explicitly, so users see the defaults
    assert set(raw["toy_world"]) == set(cfg["toy_world"])


def test_unknown_key_is_named(raw):
    bad = copy.deepcopy(raw)
    bad["toy_world"]["n_entities"] = 3
    with pytest.raises(ConfigError, match=r"toy_world\.n_entities: unknown key"):
        validate(bad, "config.yaml")


def test_bad_value_is_named(raw):
    bad = copy.deepcopy(raw)
    bad["toy_training"]["text_models"]["toy-llm"]["arch"] = "gpt"
    with pytest.raises(ConfigError, match=r"toy_training\.text_models\.toy-llm\.arch"):
        validate(bad)


def test_mllm_needs_known_text_model(raw):
    bad = copy.deepcopy(raw)
    bad["toy_training"]["mllms"]["toy-phi"]["text_model"] = "nope"
    with pytest.raises(ConfigError, match="nope"):
        validate(bad)


def test_prompt_needs_placeholders(raw):
    bad = copy.deepcopy(raw)
    bad["prompts"]["mllm"] = "USER: {question}"
    with pytest.raises(ConfigError, match="<image>"):
        validate(bad)


def test_ci_config_merges_into_a_valid_config(raw, repo_root):
    def merge(a, b):
        for k, v in b.items():
            a[k] = merge(a.get(k, {}), v) if isinstance(v, dict) else v
        return a

    ci = yaml.safe_load((repo_root / "tests" / "ci_config.yaml").read_text())
    cfg = validate(merge(copy.deepcopy(raw), ci))
    assert all(p.startswith("ci_out/") for p in cfg["paths"].values())
