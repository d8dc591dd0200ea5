"""The Movies split: the release's multimodal_movies.csv joined to the Movies table of
Yuksekgonul et al. (`movies.pkl`, a plain-data pickle read without running code).

A row's answers are every movie of its director, most popular first (ties alphabetically), so
that `answers[0]` is the likeliest answer. Images: the folder rule of `rows`.
"""

from __future__ import annotations

import io
import pickle
from collections import defaultdict
from pathlib import Path

from mmtrace.paperworld.report import Report
from mmtrace.paperworld.rows import RELEASE_COLUMNS, RealRow, base_row, folder_image, read_rows


class _PlainData(pickle.Unpickler):
    """Unpickles plain data only: any class or function reference is refused, so loading a
    tampered pickle cannot import or run code."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: plain data only")


def load_plain_pickle(path: str | Path):
    with open(path, "rb") as fh:
        return _PlainData(io.BytesIO(fh.read())).load()


def load_movies(
    csv_path: str | Path,
    movies_pkl: str | Path,
    images_dir: Path | None = None,
    data_dir: Path | None = None,
) -> tuple[list[RealRow], Report]:
    table = load_plain_pickle(movies_pkl)
    popularity: dict[str, dict[str, float]] = defaultdict(dict)
    for m in table:
        pop = float(m.get("popularity") or 0.0)
        films = popularity[m["director_name"]]
        films[m["movie_name"]] = max(pop, films.get(m["movie_name"], pop))
    report, out = Report(str(csv_path)), []
    for i, row in enumerate(read_rows(Path(csv_path), RELEASE_COLUMNS + ("director",))):
        r = base_row("movies", report, row, i, "director")
        if r is None:
            continue
        films = popularity.get(r.subject)
        if not films:
            report.drop(r.index, "director not in the Movies table")
            continue
        image, reason = folder_image(r.image, images_dir, data_dir)
        if image is None:
            report.drop(r.index, reason)
            continue
        r.image = image
        r.answers = sorted(films, key=lambda t: (-films[t], t))
        r.relation = "directed"
        out.append(r)
        report.kept += 1
    report.log()
    return out, report
