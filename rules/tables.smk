# LaTeX tables (booktabs) laid out like the paper's, from jinja2 templates.


rule table_dataset_stats:
    input:
        csvs=split_csvs(),
    output:
        table=report(
            TABLES / "dataset_stats.tex",
            caption="../report/table_dataset_stats.rst",
            category=REPORT_DATA,
            labels={"table": "dataset statistics"},
        ),
    log:
        LOGS / "table_dataset_stats.log",
    benchmark:
        BENCH / "table_dataset_stats.tsv"
    conda:
        ENV
    script:
        "scripts/table_dataset_stats.py"


rule table_model_accuracy:
    input:
        accuracy=METRICS / "model_accuracy.json",
    output:
        table=report(
            TABLES / "model_accuracy.tex",
            caption="../report/table_model_accuracy.rst",
            category=REPORT_DATA,
            labels={"table": "model accuracy"},
        ),
    log:
        LOGS / "table_model_accuracy.log",
    benchmark:
        BENCH / "table_model_accuracy.tsv"
    conda:
        ENV
    script:
        "scripts/table_model_accuracy.py"


rule tables:
    input:
        rules.table_dataset_stats.output,
        rules.table_model_accuracy.output,
        rules.table_editing.output,
        [TABLES / "validation.tex"] if CONTROLS else [],
        TABLES / "claims.tex",
