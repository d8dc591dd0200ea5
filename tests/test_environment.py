"""environment.yml must mirror pyproject.toml (runtime dependencies and dev extra)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]

# conda-forge name -> PyPI name, where they differ.
CONDA_TO_PIP = {"pytorch": "torch"}

_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*?)\s*$")


def _norm_name(name: str) -> str:
    name = re.sub(r"[-_.]+", "-", name.strip().lower())
    return CONDA_TO_PIP.get(name, name)


def _parse(requirement: str) -> tuple[str, frozenset[str]]:
    """``"pytorch >=2.4,<2.14"`` or ``"torch>=2.4,<2.14"`` -> ``("torch", {">=2.4", "<2.14"})``."""
    requirement = requirement.split(";", 1)[0].split("#", 1)[0]
    match = _REQ.match(requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    name, spec = match.groups()
    clauses = frozenset(c.replace(" ", "") for c in spec.split(",") if c.strip())
    return _norm_name(name), clauses


def _pyproject() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)


def _environment() -> dict:
    with (ROOT / "environment.yml").open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _env_requirements(env: dict) -> dict[str, frozenset[str]]:
    """All conda and pip entries except python, pip and the package itself."""
    entries: list[str] = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            assert set(dep) == {"pip"}, f"unexpected entry in environment.yml: {dep}"
            entries += [d for d in dep["pip"] if not d.strip().startswith("-")]
        else:
            entries.append(dep)
    parsed: dict[str, frozenset[str]] = {}
    for entry in entries:
        name, spec = _parse(entry)
        if name in {"python", "pip"}:
            continue
        assert name not in parsed, f"{name} listed twice in environment.yml"
        parsed[name] = spec
    return parsed


def _pyproject_requirements(project: dict) -> dict[str, frozenset[str]]:
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    parsed: dict[str, frozenset[str]] = {}
    for req in reqs:
        name, spec = _parse(req)
        assert name not in parsed, f"{name} listed twice in pyproject.toml"
        parsed[name] = spec
    return parsed


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


def test_environment_mirrors_pyproject():
    env = _env_requirements(_environment())
    pyproject = _pyproject_requirements(_pyproject()["project"])
    assert set(env) == set(pyproject), (
        f"only in environment.yml: {sorted(set(env) - set(pyproject))}; "
        f"only in pyproject.toml: {sorted(set(pyproject) - set(env))}"
    )
    mismatched = {
        name: (env[name], pyproject[name]) for name in env if env[name] != pyproject[name]
    }
    assert not mismatched, f"version bounds differ (environment.yml, pyproject.toml): {mismatched}"


def test_environment_declares_python_and_installs_package():
    env = _environment()
    deps = env["dependencies"]
    pythons = [
        d for d in deps if isinstance(d, str) and _norm_name(_REQ.match(d).group(1)) == "python"
    ]
    assert len(pythons) == 1, "environment.yml must declare exactly one python version"
    declared = _version(pythons[0])
    assert len(declared) == 2, f"python version not pinned to major.minor: {pythons[0]!r}"
    minimum = _version(_pyproject()["project"]["requires-python"])
    assert declared >= minimum, f"{pythons[0]!r} below requires-python {minimum}"
    pip_entries = [e.strip() for d in deps if isinstance(d, dict) for e in d.get("pip", [])]
    assert "-e ." in pip_entries, "environment.yml must install the package (pip: -e .)"
    assert env["name"] == "mmtrace"
    assert "conda-forge" in env["channels"]
