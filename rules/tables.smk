# LaTeX tables (booktabs) laid out like the paper's, from jinja2 templates.


rule table_dataset_stats:
    input:
        csvs=split_csvs(),
    output:
        table=TABLES / "dataset_stats.tex",
    log:
        LOGS / "table_dataset_stats.log",
    conda:
        ENV
    script:
        "scripts/table_dataset_stats.py"


rule table_model_accuracy:
    input:
        accuracy=METRICS / "model_accuracy.json",
    output:
        table=TABLES / "model_accuracy.tex",
    log:
        LOGS / "table_model_accuracy.log",
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
