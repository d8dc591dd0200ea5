"""The package's structure, enforced: the analyses are siblings, one layer touches model
internals, no private names cross modules, no file grows far past a screenful of screens."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mmtrace"
ANALYSES = ("tracing", "transfer", "editing")
# Only mmtrace.models may register hooks or switch the attention implementation.
INTERNALS = (
    "register_forward_hook",
    "register_forward_pre_hook",
    "register_full_backward_hook",
    "register_full_backward_pre_hook",
    "_attn_implementation",
)
MAX_LINES = 450
# Modules that are data (word lists), not code, may be longer.
DATA_MODULES = {"toyworld/vocab.py"}


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _name(path: Path) -> str:
    parts = ["mmtrace", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(imported module, names imported from it) for every import in the file, including
    imports inside functions; relative imports are resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out.append((base, [a.name for a in node.names]))
    return out


def test_the_analyses_never_import_each_other():
    edges = []
    for path in _modules():
        me = _name(path).split(".")
        if len(me) < 2 or me[1] not in ANALYSES:
            continue
        for module, names in _imports(path):
            targets = [module] + [f"{module}.{n}" for n in names]
            for t in targets:
                parts = t.split(".")
                if (
                    parts[0] == "mmtrace"
                    and len(parts) > 1
                    and parts[1] in ANALYSES
                    and parts[1] != me[1]
                ):
                    edges.append(f"{_name(path)} -> {t}")
    assert not edges, "analysis packages import each other:\n" + "\n".join(sorted(set(edges)))


@pytest.mark.parametrize("needle", INTERNALS)
def test_only_the_models_layer_touches_internals(needle):
    offenders = [
        str(p.relative_to(SRC))
        for p in _modules()
        if p.relative_to(SRC).parts[0] != "models" and needle in p.read_text(encoding="utf-8")
    ]
    assert not offenders, f"{needle} outside mmtrace.models: {offenders}"


def test_no_private_name_crosses_modules():
    own = {_name(p) for p in _modules()}
    offenders = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}
        for module, names in _imports(path):
            if not module.startswith("mmtrace"):
                continue
            if module == _name(path):
                continue
            offenders += [f"{_name(path)}: from {module} import {n}" for n in names if _private(n)]
            for n in names:
                if f"{module}.{n}" in own:
                    aliases[n] = f"{module}.{n}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("mmtrace"):
                        aliases[a.asname or a.name] = a.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and _private(node.attr)
            ):
                offenders.append(f"{_name(path)}: {node.value.id}.{node.attr}")
    assert not offenders, "private names used across modules:\n" + "\n".join(offenders)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_code_file_is_far_above_400_lines():
    long = {
        str(p.relative_to(SRC)): n
        for p in _modules()
        if str(p.relative_to(SRC)) not in DATA_MODULES
        and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"files over {MAX_LINES} lines: {long}"


def test_the_verdicts_read_results_and_import_no_analysis():
    """mmtrace.verdicts decides claims from the analyses' summary files; it must not borrow
    their code (nor the validation package's), so a claim reads what a run wrote."""
    edges = []
    for path in _modules():
        if _name(path).split(".")[:2] != ["mmtrace", "verdicts"]:
            continue
        for module, names in _imports(path):
            for t in [module] + [f"{module}.{n}" for n in names]:
                parts = t.split(".")
                if (
                    parts[0] == "mmtrace"
                    and len(parts) > 1
                    and parts[1]
                    in (
                        *ANALYSES,
                        "validation",
                        "models",
                    )
                ):
                    edges.append(f"{_name(path)} -> {t}")
    assert not edges, "\n".join(sorted(set(edges)))
