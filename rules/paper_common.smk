# What the paper world's data rules (paper_data.smk) share: the configured download sources,
# where they land, and what each split's annotation reads. Paper world only: the toy world
# never includes this file.

SOURCES = config["paper"]["downloads"]["sources"]
RAW = DATA / "raw"
IMAGES = DATA / "images"
# file name under raw/ -> source name
SOURCE_OF_FILE = {s["file"]: name for name, s in SOURCES.items()}
ARCHIVES = [name for name, s in SOURCES.items() if s["extract"]]


def raw(name):
    """A source's downloaded file, or for an archive the marker its extraction writes."""
    if SOURCES[name]["extract"]:
        return RAW / name / "extracted.json"
    return RAW / SOURCES[name]["file"]


def split_inputs(split):
    """What a paper split's annotation reads (its images: a folder or image-list marker); the
    names are `annotate_split`'s parameters."""
    return {
        "known": dict(
            release_csv=raw("known_csv"),
            facts=raw("known_1000"),
            images=raw("known_images"),
        ),
        "movies": dict(
            release_csv=raw("movies_csv"),
            facts=raw("movies_table"),
            images=raw("movies_images"),
        ),
        "okvqa": dict(
            release_csv=raw("okvqa_csv"),
            questions=raw("okvqa_questions"),
            annotations=raw("okvqa_annotations"),
            images=IMAGES / "coco.json",
        ),
        "heldout": dict(release_csv=raw("evqa_csv"), images=IMAGES / "landmarks.json"),
    }[split]
