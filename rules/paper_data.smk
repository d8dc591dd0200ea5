# The paper world's data (`world: paper`): verified downloads, run as local rules on the node
# that has internet, then one annotated question table per split (the same schema as the toy
# world's, so every later rule is shared). Steps: mmtrace.steps.paper_data.
import re


include: "paper_common.smk"


localrules:
    download,
    extract,
    coco_images,
    landmark_images,


rule download:
    output:
        dest=RAW / "{file}",
    log:
        LOGS / "download" / "{file}.log",
    wildcard_constraints:
        file="|".join(re.escape(f) for f in SOURCE_OF_FILE),
    retries: 2
    conda:
        ENV
    params:
        name=lambda wc: SOURCE_OF_FILE[wc.file],
        source=lambda wc: SOURCES[SOURCE_OF_FILE[wc.file]],
        downloads=config["paper"]["downloads"],
        lock=RAW / "downloads.lock.json",
    script:
        "scripts/download.py"


rule extract:
    input:
        archive=lambda wc: RAW / SOURCES[wc.name]["file"],
    output:
        marker=RAW / "{name}" / "extracted.json",
    log:
        LOGS / "download" / "extract_{name}.log",
    wildcard_constraints:
        name="|".join(ARCHIVES),
    conda:
        ENV
    params:
        members=lambda wc: SOURCES[wc.name]["members"],
    script:
        "scripts/extract.py"


rule coco_images:
    input:
        okvqa_csv=raw("okvqa_csv"),
    output:
        marker=IMAGES / "coco.json",
    log:
        LOGS / "download" / "coco_images.log",
    retries: 2
    conda:
        ENV
    params:
        downloads=config["paper"]["downloads"],
        lock=IMAGES / "coco.lock.json",
    script:
        "scripts/coco_images.py"


rule landmark_images:
    input:
        evqa_csv=raw("evqa_csv"),
        index_csv=raw("gldv2_index"),
    output:
        marker=IMAGES / "landmarks.json",
    log:
        LOGS / "download" / "landmark_images.log",
    retries: 2
    conda:
        ENV
    params:
        downloads=config["paper"]["downloads"],
        heldout=config["paper"]["heldout"],
        seed=config["seed"],
        lock=IMAGES / "landmarks.lock.json",
    script:
        "scripts/landmark_images.py"


rule annotate_split:
    input:
        unpack(lambda wc: split_inputs(wc.split)),
    output:
        csv=DATA / "{split}.csv",
        report=DATA / "reports" / "{split}.json",
        human=DATA / "human_answers" / "{split}.json",
    log:
        LOGS / "annotate_{split}.log",
    wildcard_constraints:
        split="|".join(SPLITS),
    conda:
        ENV
    params:
        seed=config["seed"],
        heldout=config["paper"]["heldout"],
    script:
        "scripts/annotate_split.py"


rule paper_data:
    input:
        split_csvs(),
