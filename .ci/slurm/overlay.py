"""Print the command-line options that put CI's site settings (.ci/slurm/overlay.yaml) over
profiles/slurm, one per line (for bash's `mapfile`).

Snakemake replaces a profile's whole `default-resources` / `set-resources` list with one given
on the command line, so both lists are restated from the profile itself, with its placeholders
replaced and the overlay's values changed: the profile's own entries are what CI tests.

Usage: python .ci/slurm/overlay.py [PROFILE_YAML [OVERLAY_YAML]]
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _value(v, placeholders: dict) -> str:
    v = placeholders.get(v, v) if isinstance(v, str) else v
    if isinstance(v, str) and v.startswith("your_"):
        raise SystemExit(f"overlay.yaml: no value for the profile's placeholder {v!r}")
    return str(v)


def options(profile: dict, overlay: dict) -> list[str]:
    ph = overlay.get("placeholders", {})
    default = {**profile.get("default-resources", {}), **overlay.get("default-resources", {})}
    out = ["--default-resources", *(f"{k}={_value(v, ph)}" for k, v in default.items())]
    sets = [
        f"{rule}:{k}={_value(v, ph)}"
        for rule, res in profile.get("set-resources", {}).items()
        for k, v in res.items()
    ]
    if sets:
        out += ["--set-resources", *sets]
    for key, value in overlay.get("options", {}).items():
        out += [f"--{key}", *([str(v) for v in value] if isinstance(value, list) else [str(value)])]
    return out


def main(argv: list[str]) -> int:
    profile = Path(argv[1]) if len(argv) > 1 else ROOT / "profiles" / "slurm" / "config.yaml"
    overlay = Path(argv[2]) if len(argv) > 2 else ROOT / ".ci" / "slurm" / "overlay.yaml"
    for option in options(yaml.safe_load(profile.read_text()), yaml.safe_load(overlay.read_text())):
        print(option)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
