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
    output:
        claims=RESULTS / "claims.json",
        markdown=RESULTS / "claims.md",
    log:
        LOGS / "claims.log",
    conda:
        ENV
    params:
        roles={m: s["role"] for m, s in config["models"].items()},
        controls=CONTROLS,
        rules=config["claims"],
    script:
        "scripts/claims.py"


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
