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


def test_a_trained_mllm_is_analysed_on_the_data_it_learnt_from(raw):
    bad = copy.deepcopy(raw)
    bad["toy_training"]["mllms"]["toy-phi"]["data"] = "planted"
    with pytest.raises(ConfigError, match=r"models\.toy-phi\.data: 'default'.*'planted'"):
        validate(bad)
    bad["models"]["toy-phi"]["data"] = "planted"
    assert validate(bad)["toy_training"]["mllms"]["toy-phi"]["data"] == "planted"


def test_a_compiled_control_names_its_variant(raw):
    """`toy_training.compiled.<name>.variant` picks the build; the old `cut` flag, an unknown
    variant, a `control` the variant is not, and a compiled control off the planted world are
    refused."""
    cfg = validate(raw)
    variants = {n: c["variant"] for n, c in cfg["toy_training"]["compiled"].items()}
    assert variants == {
        "toy-llava-compiled": "positive",
        "toy-llava-compiled-cut": "cut",
        "toy-llava-decoy": "decoy",
        "toy-llava-elsewhere": "elsewhere",
    }
    for name, variant in variants.items():
        control = {"positive": "positive", "cut": "sanity"}.get(variant, "negative")
        assert cfg["models"][name]["control"] == control
    for settings, match in (
        ({"cut": True}, r"compiled\.toy-llava-compiled-cut\.cut"),
        ({"variant": "nope"}, "variant"),
    ):
        bad = copy.deepcopy(raw)
        bad["toy_training"]["compiled"]["toy-llava-compiled-cut"] = settings
        with pytest.raises(ConfigError, match=match):
            validate(bad)
    bad = copy.deepcopy(raw)
    bad["models"]["toy-llava-decoy"]["control"] = "positive"
    with pytest.raises(ConfigError, match=r"models\.toy-llava-decoy\.control.*negative"):
        validate(bad)
    bad = copy.deepcopy(raw)
    bad["models"]["toy-llava-decoy"]["data"] = "default"
    with pytest.raises(ConfigError, match=r"models\.toy-llava-decoy\.data.*planted"):
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
    # every output under ci_out/; the models are the shipped ones
    assert all(p.startswith("ci_out/") for k, p in cfg["paths"].items() if k != "checkpoints")
    assert cfg["paths"]["checkpoints"] == raw["paths"]["checkpoints"]
    assert cfg["toy_models"] == "shipped"
    train = yaml.safe_load((repo_root / "tests" / "ci_train_config.yaml").read_text())
    trained = validate(merge(merge(copy.deepcopy(raw), ci), train))
    assert trained["toy_models"] == "train"


def test_paper_world_is_one_switch(raw):
    """`world: paper` swaps in the paper section's paths, models, GPU use and resources, and
    its settings override the analysis sections; nothing else changes."""
    cfg = validate({**raw, "world": "paper"})
    paper = raw["paper"]
    assert set(cfg["models"]) == set(paper["models"])
    roles = sorted(s["role"] for s in cfg["models"].values())
    assert roles == ["llm", "mllm", "mllm"]
    assert all(s["source"] == "hub" and s["revision"] for s in cfg["models"].values())
    assert cfg["paths"]["data"] == paper["paths"]["data"] != raw["paths"]["data"]
    assert cfg["use_gpu"] is True
    assert cfg["tracing"]["windows"] == paper["settings"]["tracing"]["windows"]
    assert cfg["tracing"]["multi_window"] == paper["settings"]["tracing"]["multi_window"]
    # keys the paper settings leave alone keep their top-level values
    assert cfg["tracing"]["kinds"] == raw["tracing"]["kinds"]
    assert cfg["editing"]["layer"] == paper["settings"]["editing"]["layer"]
    assert cfg["resources"]["trace_shard"] == paper["resources"]["trace_shard"]
    assert cfg["seed"] == raw["seed"]
    # the toy world is unaffected by the paper section
    toy = validate(raw)
    assert set(toy["models"]) == set(raw["models"])
    assert toy["tracing"]["windows"] == raw["tracing"]["windows"]


def test_paper_sources_are_pinned_or_explicitly_recorded(raw):
    cfg = validate({**raw, "world": "paper"})
    sources = cfg["paper"]["downloads"]["sources"]
    pinned = [n for n, s in sources.items() if s["sha256"]]
    # the release CSVs, known_1000 and the Movies table are pinned by digest and size
    for name in ("known_csv", "movies_csv", "okvqa_csv", "known_1000", "movies_table"):
        assert name in pinned and sources[name]["size"]
    for s in sources.values():
        if s["url"] and "github" in s["url"]:
            assert len(s["url"].split("/")[5]) == 40  # raw URLs at a commit, not a branch


def test_hub_model_needs_a_revision(raw):
    bad = copy.deepcopy(raw)
    del bad["paper"]["models"]["vicuna-7b"]["revision"]
    with pytest.raises(ConfigError, match=r"paper\.models\.vicuna-7b: .*revision"):
        validate(bad)


def test_source_needs_one_origin(raw):
    bad = copy.deepcopy(raw)
    bad["paper"]["downloads"]["sources"]["known_csv"]["gdrive"] = "abc"
    with pytest.raises(ConfigError, match=r"sources\.known_csv: .*exactly one"):
        validate(bad)


def test_bad_checksum_is_named(raw):
    bad = copy.deepcopy(raw)
    bad["paper"]["downloads"]["sources"]["known_1000"]["sha256"] = "abc"
    with pytest.raises(ConfigError, match=r"sources\.known_1000\.sha256"):
        validate(bad)


def test_model_prompt_is_checked(raw):
    bad = copy.deepcopy(raw)
    bad["paper"]["models"]["bunny-phi2-3b"]["prompt"] = "USER: {question} ASSISTANT:"
    with pytest.raises(ConfigError, match="<image>"):
        validate({**bad, "world": "paper"})


def test_unknown_resource_rule_is_named(raw):
    bad = copy.deepcopy(raw)
    bad["resources"]["trace"] = {"mem_mb": 1000, "runtime": 5}
    with pytest.raises(ConfigError, match="unknown rules"):
        validate(bad)


def test_paper_run_selects_models(raw):
    sel = copy.deepcopy(raw)
    sel["world"] = "paper"
    sel["paper"]["run"] = ["bunny-phi2-3b"]
    assert list(validate(sel)["models"]) == ["bunny-phi2-3b"]
    sel["paper"]["run"] = ["llava-1.5-7b"]  # its `llm` counterpart is not selected
    with pytest.raises(ConfigError, match="vicuna-7b"):
        validate(sel)
    sel["paper"]["run"] = ["gpt-4"]
    with pytest.raises(ConfigError, match="gpt-4"):
        validate(sel)


def test_job_resources_grow_with_each_attempt(raw):
    from mmtrace.config import job_resources

    cfg = validate({**raw, "world": "paper"})
    res = job_resources(cfg, "trace_shard")
    base = raw["paper"]["resources"]["trace_shard"]
    assert res["gpu"] == 1
    for attempt in (1, 2, 3):
        assert res["mem_mb"](None, attempt) == base["mem_mb"] * attempt
        assert res["runtime"](None, attempt) == base["runtime"] * attempt
    toy = job_resources(validate(raw), "edit_sweep")  # not listed: the defaults, no GPU
    assert toy["gpu"] == 0 and toy["mem_mb"](None, 2) == 8000 and toy["runtime"](None, 1) == 60


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("use_gpu", 1, r"use_gpu: Input should be a valid boolean"),
        ("threads", True, r"threads: Input should be a valid integer"),
        ("toy_training.text_models.toy-llm.hidden_size", -96, r"hidden_size: .*greater than"),
        ("toy_training.text_models.toy-llm.num_heads", 5, r"num_heads \(5\) must divide"),
        ("toy_training.text_models.toy-llm.num_kv_heads", 3, r"num_kv_heads \(3\) must divide"),
        ("toy_training.vision.num_heads", 3, r"num_heads \(3\) must divide hidden_size"),
        ("toy_training.vision.patch_size", 10, r"patch_size \(10\) must divide .*image_size"),
        (
            "editing.tuning.multedit",
            [{"clamp": 1.0}, {"finetune_lr": 0.1}],
            r"tuning\.multedit\.1: \['finetune_lr'\] are not multedit's hyperparameters",
        ),
        ("editing.tuning.edits", 0, r"editing\.tuning\.edits"),
        (
            "editing.variants",
            {"release": {"finetune_lr": 0.1}},
            r"editing\.variants\.release: \['finetune_lr'\] are not MultEdit's",
        ),
        ("editing.variants", {"a b": {"lr": 0.1}}, r"editing\.variants: 'a b' is not a name"),
        ("editing.tuning.finetune", [], r"editing\.tuning\.finetune"),
        ("editing.sweep_layers", [-1], r"editing\.sweep_layers\.0"),
        ("evaluation.batch_size", 0, r"evaluation\.batch_size"),
        ("tracing.shards", 100_000, r"tracing\.shards: .*less than or equal to 256"),
        ("tracing.noise_scale", float("nan"), r"tracing\.noise_scale: .*finite"),
        ("tracing.windows", [0], r"tracing\.windows\.0"),
        ("attention.top_share", "0.1", r"attention\.top_share: Input should be a valid number"),
        ("models", {}, r"no model to analyse"),
    ],
)
def test_every_bound_a_method_needs_is_checked(raw, path, value, message):
    bad = copy.deepcopy(raw)
    *parents, key = path.split(".")
    node = bad
    for p in parents:
        node = node[p]
    node[key] = value
    with pytest.raises(ConfigError, match=message):
        validate(bad)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ({"use_gpu": "true"}, {"use_gpu": True}),
        ({"use_gpu": "false", "seed": "7"}, {"use_gpu": False, "seed": 7}),
        ({"gpu_model": "null"}, {"gpu_model": None}),
        ({"world": "paper"}, {"world": "paper"}),
        ({"numerics": {"pin": "false"}}, {"numerics": {"pin": False}}),
        ({"prompts": {"llm": "Q: {question}?"}}, {"prompts": {"llm": "Q: {question}?"}}),
        ({"robustness": {"seeds": ["1", "2"]}}, {"robustness": {"seeds": [1, 2]}}),
    ],
)
def test_command_line_values_are_read_as_yaml_scalars(raw, typed, expected):
    """Snakemake hands `--config use_gpu=true` over as the string "true": the command line's
    values are typed as YAML scalars (words and braces stay strings), merged into the file's
    nested sections without dropping their other keys; the file itself stays strict."""
    from mmtrace.config import command_line_values

    merged = command_line_values(copy.deepcopy(raw), typed)
    for key, value in expected.items():
        if isinstance(value, dict):
            for k, v in value.items():
                assert merged[key][k] == v
            assert set(merged[key]) >= set(raw.get(key) or {})  # siblings kept
        else:
            assert merged[key] == value
    validate(merged)
    bad = copy.deepcopy(raw)
    bad["use_gpu"] = "true"  # the same string in config.yaml is refused
    with pytest.raises(ConfigError, match="use_gpu"):
        validate(bad)


def test_only_an_mllms_editing_may_be_null(raw):
    """`settings: {editing: null}` opts an MLLM out of editing; a null elsewhere is refused."""
    ok = copy.deepcopy(raw)
    ok["models"]["toy-llava"]["settings"] = {"editing": None}
    validate(ok)
    for model, section in (("toy-llava", "tracing"), ("toy-llm", "editing")):
        bad = copy.deepcopy(raw)
        bad["models"][model]["settings"] = {section: None}
        with pytest.raises(ConfigError, match=f"models.{model}.settings"):
            validate(bad)
