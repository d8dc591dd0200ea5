# Verdicts (mmtrace.verdicts): every claim of the paper decided per model by the rules of config
# `claims`, and `verify`, the reproduction check of a run against a committed reference.


rule claims:
    input:
        accuracy=METRICS / "model_accuracy.json",
        trace_summary=TRACE / "summary.json",
        attention_summary=ATTENTION / "summary.json",
        ablation_summary=ABLATION / "summary.json",
        edit_summary=EDITING / "summary.json",
        validation_summary=[RESULTS / "validation" / "summary.json"] if CONTROLS else [],
        # the committed multi-seed verdicts (robustness.reference): seed-unstable rows marked
        robustness=(
            [config["robustness"]["reference"]]
            if config["robustness"]["reference"] and WORLD == "toy"
            else []
        ),
    output:
        claims=RESULTS / "claims.json",
        markdown=RESULTS / "claims.md",
    log:
        LOGS / "claims.log",
    benchmark:
        BENCH / "claims.tsv"
    conda:
        ENV
    params:
        roles={m: s["role"] for m, s in config["models"].items()},
        controls=CONTROLS,
        rules=config["claims"],
        seed=config["seed"],
    script:
        "scripts/claims.py"


# The claim rules run on the controls, as if they were studied models: each verdict against what
# the control's construction implies (config validation.expect; negatives: never `supported`).
rule claims_on_controls:
    input:
        accuracy=METRICS / "model_accuracy.json",
        trace_summary=TRACE / "summary.json",
        attention_summary=ATTENTION / "summary.json",
        ablation_summary=ABLATION / "summary.json",
        edit_summary=EDITING / "summary.json",
    output:
        result=RESULTS / "validation" / "claims_on_controls.json",
        markdown=RESULTS / "validation" / "claims_on_controls.md",
    log:
        LOGS / "claims_on_controls.log",
    conda:
        ENV
    params:
        roles={m: s["role"] for m, s in config["models"].items()},
        controls=CONTROLS,
        rules=config["claims"],
        expect=config["validation"]["expect"],
    script:
        "scripts/claims_on_controls.py"


rule table_claims:
    input:
        claims=rules.claims.output.claims,
    output:
        table=report(
            TABLES / "claims.tex",
            caption="../report/table_claims.rst",
            category=REPORT_CLAIMS,
            labels={"table": "claims"},
        ),
    log:
        LOGS / "table_claims.log",
    benchmark:
        BENCH / "table_claims.tsv"
    conda:
        ENV
    script:
        "scripts/table_claims.py"


# `snakemake verify`: not part of `all`; fails naming every number beyond tolerance.
rule verify:
    input:
        claims=rules.claims.output.claims,
        reference=config["verify"]["reference"],
    output:
        reproduction=RESULTS / "reproduction.md",
    log:
        LOGS / "verify.log",
    conda:
        ENV
    params:
        settings=config["verify"],
    script:
        "scripts/verify.py"


# `snakemake robustness`: the whole workflow once per seed of config `robustness.seeds` (nested
# runs under results/robustness/seed_<s>/), then the claims pooled. Not part of `all`.
rule robustness_seed:
    output:
        claims=RESULTS / "robustness" / "seed_{seed}" / "results" / "claims.json",
    log:
        LOGS / "robustness" / "seed_{seed}.log",
    # the driver of a nested run: it stays on this machine (whose cores it may use, scaled
    # down to --cores), and its nested workflow runs the model jobs
    localrule: True
    conda:
        ENV
    threads: 4
    params:
        workflow_config={k: v for k, v in config.items()},
    script:
        "scripts/robustness_seed.py"


rule robustness:
    input:
        # the run's own seed is this run (its claims); every other seed, a nested run
        seed_claims=[
            (
                rules.claims.output.claims
                if int(s) == int(config["seed"])
                else expand(rules.robustness_seed.output.claims, seed=s)[0]
            )
            for s in config["robustness"]["seeds"]
        ],
    output:
        pooled=RESULTS / "robustness.json",
        markdown=RESULTS / "robustness.md",
    log:
        LOGS / "robustness.log",
    conda:
        ENV
    params:
        seeds=config["robustness"]["seeds"],
    script:
        "scripts/robustness.py"
