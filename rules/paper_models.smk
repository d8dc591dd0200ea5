# The paper world's checkpoints: pinned Hugging Face snapshots (safetensors only), fetched on the
# node that has internet into HF_HOME's cache; model jobs then load them offline. Step:
# mmtrace.steps.paper_models.

HUB_MODELS = [m for m, s in config["models"].items() if s["source"] == "hub"]


localrules:
    fetch_model,


rule fetch_model:
    output:
        marker=MODEL_DIR / "{model}" / "snapshot.json",
    log:
        LOGS / "fetch_model_{model}.log",
    wildcard_constraints:
        model="|".join(HUB_MODELS),
    retries: 2
    conda:
        ENV
    params:
        spec=lambda wc: config["models"][wc.model],
    script:
        "scripts/fetch_model.py"


rule paper_models:
    input:
        [trained(m) for m in HUB_MODELS],
