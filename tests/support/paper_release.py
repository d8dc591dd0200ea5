"""A stand-in for the paper's public data, small enough for a test: every file the paper world
downloads, in its real format (the release's CSVs with their columns and quirks, known_1000's
JSON, the Movies plain-data pickle, OK-VQA's zipped questions and annotations, image archives
with "A photo of <name>" folders, COCO image names, Encyclopedic-VQA's CSV and the Google
Landmarks v2 index), served by a loopback HTTP server. Nothing here imitates our own code."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import pickle
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image

SPLITS = ("known", "movies", "okvqa", "heldout")
KNOWN = [  # subject, constraint, relation_id, prompt template, attribute
    ("Space Needle", "This building", "P131", "{} is located in", "Seattle"),
    ("Vinson Massif", "This mountain", "P30", "{} is located in the continent of", "Antarctica"),
    ("Nintendo", "This company", "P17", "{} is based in the country of", "Japan"),
    ("Danube", "This river", "P17", "{} flows through the country of", "Germany"),
    ("Eiffel Tower", "This tower", "P131", "{} is located in the city of", "Paris"),
]
DIRECTORS = {
    "Ron Fricke": ["Baraka", "Samsara"],
    "Greta Gerwig": ["Lady Bird", "Little Women", "Barbie"],
    "Bong Joon-ho": ["Parasite", "Mother", "Okja"],
}
OKVQA = [  # image id, question, constraint, answers (10 per question, as annotators gave them)
    (297147, "What sport can you use this for?", "this", ["surfing"] * 7 + ["swimming"] * 3),
    (339761, "Name the type of plant this is?", "this plant", ["fern"] * 6 + ["ivy"] * 4),
    (357586, "What toy is this?", "this", ["kite"] * 10),
    (94922, "What is this animal eating?", "this animal", ["grass"] * 5 + ["hay"] * 5),
]
LANDMARKS = [  # GLDv2 id, question, answer
    ("0a1b2c3d4e5f6071", "In which country is this castle located?", "Germany"),
    ("1b2c3d4e5f607182", "Which country is this bridge in?", "Portugal"),
    ("2c3d4e5f60718293", "In which country is this temple located?", "Japan"),
    # its original image URL is dead (404), as some Landmarks v2 links are
    ("3d4e5f6071829304", "In which country is this palace located?", "Spain"),
]
DEAD_LANDMARKS = 1


def _image(seed: int, fmt: str = "JPEG") -> bytes:
    im = Image.new("RGB", (40, 40), ((seed * 53) % 256, (seed * 101) % 256, (seed * 29) % 256))
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def _csv(header: list[str], rows: list[list], crlf: bool = False) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n" if crlf else "\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in sorted(files.items()):
            z.writestr(name, data)
    return buf.getvalue()


def coco_name(image_id: int) -> str:
    return f"COCO_val2014_{image_id:012d}.jpg"


def build(base_url: str) -> dict[str, bytes]:
    """URL path -> bytes of every file the paper world downloads (and the images it fetches)."""
    files: dict[str, bytes] = {}
    known_rows = [
        [i, tpl.format(c), s, c, f"./A photo of {s}"] for i, (s, c, _, tpl, _) in enumerate(KNOWN)
    ]
    known_rows.append(
        [
            len(KNOWN),
            "This lake is located in",
            "Lake Nowhere",
            "This lake",
            "./A photo of Lake Nowhere",
        ]
    )  # not in known_1000: reported, not kept
    files["/known.csv"] = _csv(["", "question", "subject", "main_entity", "image_url"], known_rows)
    facts = [
        {
            "known_id": i,
            "subject": s,
            "attribute": a,
            "template": tpl,
            "prediction": f" {a}.",
            "prompt": tpl.format(s),
            "relation_id": rel,
        }
        for i, (s, _, rel, tpl, a) in enumerate(KNOWN)
    ]
    files["/known_1000.json"] = json.dumps(facts, indent=2).encode()
    files["/movies.csv"] = _csv(
        ["", "question", "director", "main_entity", "image_url"],
        [
            [i, "Name a movie directed by this director?", d, "this director", f"./A photo of {d}"]
            for i, d in enumerate(DIRECTORS)
        ],
    )
    table = [
        {"movie_name": m, "director_name": d, "popularity": 10 + j}
        for d, ms in DIRECTORS.items()
        for j, m in enumerate(ms)
    ]
    files["/movies.pkl"] = pickle.dumps(table, protocol=4)
    files["/okvqa.csv"] = _csv(
        ["", "question", "main_entity", "image_url"],
        [[i, q, c, f"./val2014/{coco_name(img)}"] for i, (img, q, c, _) in enumerate(OKVQA)],
        crlf=True,
    )
    questions = {
        "data_subtype": "val2014",
        "questions": [
            {"image_id": img, "question": q, "question_id": img * 10 + 5} for img, q, _, _ in OKVQA
        ],
    }
    annotations = {
        "annotations": [
            {
                "image_id": img,
                "question_id": img * 10 + 5,
                "question_type": "other",
                "answer_type": "other",
                "answers": [
                    {"answer": a, "raw_answer": a, "answer_confidence": "yes", "answer_id": k + 1}
                    for k, a in enumerate(answers)
                ],
            }
            for img, _, _, answers in OKVQA
        ]
    }
    files["/okvqa_questions.zip"] = _zip({QUESTIONS_JSON: json.dumps(questions).encode()})
    files["/okvqa_annotations.zip"] = _zip(
        {"mscoco_val2014_annotations.json": json.dumps(annotations).encode()}
    )
    files["/known_images.zip"] = _zip(
        {
            f"multimodal_known/A photo of {s}/{k}.jpg": _image(10 * i + k)
            for i, (s, *_rest) in enumerate(KNOWN)
            for k in (1, 0)
        }
    )
    files["/movies_images.zip"] = _zip(
        {f"A photo of {d}/0.png": _image(50 + i, "PNG") for i, d in enumerate(DIRECTORS)}
    )
    for i, (img, *_rest) in enumerate(OKVQA):
        files[f"/val2014/{coco_name(img)}"] = _image(100 + i)
    evqa_header = [
        "question",
        "answer",
        "dataset_image_ids",
        "dataset_name",
        "dataset_category_id",
        "question_type",
        "wikipedia_url",
        "wikipedia_title",
        "evidence",
        "encyclopedic_vqa_split",
        "question_original",
    ]
    evqa_rows = [
        [
            q,
            a,
            f"['{gid}']",
            "landmarks",
            str(n),
            "templated",
            f"https://en.wikipedia.org/wiki/L{n}",
            f"Landmark {n}",
            "",
            "val",
            q,
        ]
        for n, (gid, q, a) in enumerate(LANDMARKS)
    ]
    evqa_rows.append(
        [
            "What genus is this plant?",
            "Ficus",
            "['abc']",
            "inaturalist",
            "7",
            "templated",
            "https://en.wikipedia.org/wiki/Ficus",
            "Ficus",
            "",
            "val",
            "What genus is this plant?",
        ]
    )
    files["/evqa_val.csv"] = _csv(evqa_header, evqa_rows)
    files["/gldv2_train.csv"] = _csv(
        ["id", "url", "landmark_id"],
        [[gid, f"{base_url}/gld/{gid}.jpg", n] for n, (gid, _, _) in enumerate(LANDMARKS)],
    )
    for n, (gid, _, _) in enumerate(LANDMARKS[: len(LANDMARKS) - DEAD_LANDMARKS]):
        files[f"/gld/{gid}.jpg"] = _image(200 + n)
    return files


QUESTIONS_JSON = "OpenEnded_mscoco_val2014_questions.json"
SOURCE_PATHS = {  # config source name -> URL path
    "known_csv": "/known.csv",
    "movies_csv": "/movies.csv",
    "okvqa_csv": "/okvqa.csv",
    "known_1000": "/known_1000.json",
    "movies_table": "/movies.pkl",
    "okvqa_questions": "/okvqa_questions.zip",
    "okvqa_annotations": "/okvqa_annotations.zip",
    "known_images": "/known_images.zip",
    "movies_images": "/movies_images.zip",
    "evqa_csv": "/evqa_val.csv",
    "gldv2_index": "/gldv2_train.csv",
}


def sources(base_url: str, files: dict[str, bytes], pin: tuple[str, ...]) -> dict[str, dict]:
    """Config overrides pointing every source at the server; `pin` names the sources whose
    sha256 and size are pinned (the others are recorded on first download, as in config.yaml)."""
    out = {}
    for name, path in SOURCE_PATHS.items():
        data = files[path]
        out[name] = {
            "url": base_url + path,
            "gdrive": None,
            "sha256": hashlib.sha256(data).hexdigest() if name in pin else None,
            "size": len(data) if name in pin else None,
        }
    # the config pins the real questions file inside its zip: pin this stand-in's instead
    with zipfile.ZipFile(io.BytesIO(files["/okvqa_questions.zip"])) as z:
        member = hashlib.sha256(z.read(QUESTIONS_JSON)).hexdigest()
    out["okvqa_questions"]["members"] = {QUESTIONS_JSON: member}
    return out


class Server:
    """Serves `files` on 127.0.0.1 and counts requests per path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.calls: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                server.calls[self.path] = server.calls.get(self.path, 0) + 1
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()


def write_files(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
