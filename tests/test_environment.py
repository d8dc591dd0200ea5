"""The locked environment: requirements.lock against pyproject.toml, the Makefile and
environment.yml, and the helper that writes and checks it (.ci/lock.py)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
TORCH_HEADER = re.compile(
    r"^# torch==(\S+) \(installed on its own by make venv: TORCH_SPEC\)$", re.M
)
PYTHON_HEADER = re.compile(r"^# Python >= (\d+(?:\.\d+)*)", re.M)
# What only a CUDA build of torch needs: installed by TORCH_SPEC's step, never locked.
CUDA_ONLY = re.compile(r"^(nvidia-.*|cuda-.*|triton)$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock_entries(text: str) -> list[tuple[str, str, str | None, list[str]]]:
    """(name, version, marker, sha256 hashes) per entry; parsed here independently of
    .ci/lock.py. An entry's first line is the one that does not start with blank or '#'."""
    entries: list[list[str]] = []
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            entries.append([line])
        elif entries:
            entries[-1].append(line)
    out = []
    for lines in entries:
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)\s*(?:;\s*(.*?))?\s*\\?$", lines[0])
        assert match, f"requirements.lock: not an exact pin: {lines[0]!r}"
        hashes = [h for line in lines for h in re.findall(r"--hash=sha256:([0-9a-f]{64})\b", line)]
        out.append((_norm(match.group(1)), match.group(2), match.group(3), hashes))
    return out


def _lock() -> dict[str, list[tuple[str, str | None]]]:
    """name -> [(version, marker)] (one entry per name unless markers split it)."""
    out: dict[str, list[tuple[str, str | None]]] = {}
    for name, version, marker, _ in _lock_entries(LOCK.read_text()):
        out.setdefault(name, []).append((version, marker))
    return out


def _pyproject() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)


def _pyproject_requirements() -> list[Requirement]:
    project = _pyproject()["project"]
    return [
        Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]
    ]


def _lock_torch() -> str:
    match = TORCH_HEADER.search(LOCK.read_text())
    assert match, "requirements.lock lacks its '# torch==X (installed on its own ...)' header line"
    return match.group(1)


def _makefile() -> str:
    return (ROOT / "Makefile").read_text()


def _make_var(name: str) -> str:
    match = re.search(rf"^{name}\s*[:?]?=\s*(.*?)\s*$", _makefile(), re.M)
    assert match, f"Makefile does not set {name}"
    return match.group(1)


def _environment() -> dict:
    with (ROOT / "environment.yml").open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _lock_module():
    spec = importlib.util.spec_from_file_location("mmtrace_ci_lock", ROOT / ".ci" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the lock itself ------------------------------------------------------------------------


def test_lock_pins_every_pyproject_dependency_within_its_range():
    lock = _lock()
    requirements = _pyproject_requirements()
    requirements += [Requirement(r) for r in _pyproject()["build-system"]["requires"]]
    missing, outside = [], []
    for req in requirements:
        name = _norm(req.name)
        if name == "torch":  # recorded in the header, installed on its own
            continue
        if name not in lock:
            missing.append(name)
        outside += [f"{name}=={v} vs {req.specifier}" for v, _ in lock.get(name, [])
                    if not req.specifier.contains(v, prereleases=True)]  # fmt: skip
    assert not missing, f"pyproject dependencies missing from requirements.lock: {missing}"
    assert not outside, f"locked versions outside pyproject's ranges: {outside}"


def test_every_lock_entry_is_exact_and_hashed():
    text = LOCK.read_text()
    entries = _lock_entries(text)
    assert len(entries) > 50, "requirements.lock holds suspiciously few packages"
    unhashed = [f"{name}=={version}" for name, version, _, hashes in entries if not hashes]
    assert not unhashed, f"entries without a --hash=sha256: {unhashed}"
    seen: dict[str, set[str | None]] = {}
    for name, _, marker, _ in entries:
        assert marker not in seen.setdefault(name, set()), f"{name} locked twice"
        seen[name].add(marker)
    # nothing of this machine's pip configuration (local file:// indexes, find-links) baked in
    body = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    options = [line for line in body if line.lstrip().startswith("-") and "--hash=" not in line]
    assert not options, f"index or other options in requirements.lock: {options}"
    assert not [line for line in body if "://" in line or "/opt/" in line]


def test_lock_records_torch_and_leaves_its_builds_out():
    version = _lock_torch()
    torch_req = next(r for r in _pyproject_requirements() if _norm(r.name) == "torch")
    assert torch_req.specifier.contains(version), f"torch {version} outside {torch_req}"
    assert _make_var("TORCH_SPEC") == f"torch=={version}", (
        "the Makefile's default TORCH_SPEC differs from the torch version requirements.lock was "
        "resolved with (run `make lock` after changing TORCH_SPEC)"
    )
    lock = _lock()
    assert "torch" not in lock, "torch must not be in the hashed lock (its build differs)"
    cuda = sorted(n for n in lock if CUDA_ONLY.match(n))
    assert not cuda, f"CUDA-only packages of torch's build in requirements.lock: {cuda}"
    # what every torch build requires is locked (a CPU build's requirements)
    assert {"sympy", "networkx", "filelock", "fsspec", "jinja2", "typing-extensions"} <= set(lock)


def test_lock_python_matches_makefile_and_installed_python():
    match = PYTHON_HEADER.search(LOCK.read_text())
    assert match, "requirements.lock lacks its '# Python >= X' header line"
    assert _make_var("LOCK_PYTHON") == match.group(1)
    floor = Version(match.group(1))
    requires = SpecifierSet(_pyproject()["project"]["requires-python"])
    assert requires.contains(floor), f"lock's Python {floor} outside requires-python {requires}"


# --- make venv, make lock ---------------------------------------------------------------------


def _rule(target: str) -> tuple[str, list[str]]:
    """(prerequisites, recipe lines) of a Makefile rule."""
    match = re.search(rf"^{re.escape(target)}:(.*)\n((?:\t.*\n)+)", _makefile(), re.M)
    assert match, f"no rule for {target} in the Makefile"
    recipe = match.group(2).replace("\\\n", " ").splitlines()
    return match.group(1), [line.strip() for line in recipe]


def test_make_venv_installs_exactly_the_lock():
    assert _make_var("LOCK") == "requirements.lock"
    prerequisites, recipe = _rule("$(STAMP)")
    assert {"pyproject.toml", "$(LOCK)"} <= set(prerequisites.split())
    pip = [line for line in recipe if line.startswith("$(BIN)/pip install")]
    assert pip[0] == "$(BIN)/pip install --require-hashes --no-deps -r $(LOCK)", pip
    assert '"$(TORCH_SPEC)"' in pip[1], "torch is installed on its own, right after the lock"
    assert pip[2] == "$(BIN)/pip install --no-deps --no-build-isolation -e .", pip
    assert len(pip) == 3, f"unexpected pip installs: {pip[3:]}"
    tail = recipe[recipe.index(pip[2]) + 1 :]
    assert tail[0] == "$(BIN)/pip check"
    assert tail[1].startswith("$(BIN)/python .ci/lock.py check-venv --torch")
    assert tail[-1] == "touch $(STAMP)"


def test_make_lock_resolves_with_torch_spec_and_lock_python():
    _, recipe = _rule("lock")
    compile_line = next(line for line in recipe if ".ci/lock.py compile" in line)
    assert '--torch "$(TORCH_SPEC)"' in compile_line
    assert "--python $(LOCK_PYTHON)" in compile_line


# --- environment.yml ----------------------------------------------------------------------


def test_environment_yml_pins_torch_and_installs_the_lock():
    env = _environment()
    assert env["name"] == "mmtrace"
    assert "conda-forge" in env["channels"]
    conda = {}
    pip_sections = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            assert set(dep) == {"pip"}, f"unexpected entry in environment.yml: {dep}"
            pip_sections.append(dep["pip"])
        else:
            name, spec = re.match(r"^([A-Za-z0-9_.-]+)\s*(.*)$", dep).groups()
            conda[name] = spec.strip()
    # conda installs python, pip and torch; pip everything else, from the lock alone
    assert set(conda) == {"python", "pip", "pytorch"}, f"conda packages besides the lock: {conda}"
    assert conda["pytorch"] == f"=={_lock_torch()}"
    assert pip_sections == [["-r requirements.lock"]]
    assert re.fullmatch(r"=\d+\.\d+", conda["python"]), f"python={conda['python']}: pin X.Y"
    python = Version(conda["python"][1:])
    floor = Version(PYTHON_HEADER.search(LOCK.read_text()).group(1))
    assert python.release == floor.release[:2], f"python={python}, the lock is for >= {floor}"


# --- .ci/lock.py ----------------------------------------------------------------------------

_UV_OUTPUT = """\
annotated==1.0 \\
    --hash=sha256:{h}
    # via mmtrace (pyproject.toml)
cuda-x==1.0 ; sys_platform == 'linux' \\
    --hash=sha256:{h}
    # via nvidia-a
filelock==3.0 \\
    --hash=sha256:{h}
    # via
    #   annotated
    #   torch
mpmath==1.3.0 \\
    --hash=sha256:{h}
    # via sympy
nvidia-a==1.0 ; sys_platform == 'linux' \\
    --hash=sha256:{h}
    # via torch
sympy==1.14 \\
    --hash=sha256:{h}
    # via torch
torch==2.13.0 \\
    --hash=sha256:{h}
    --hash=sha256:{h}
    # via
    #   -c TORCH_SPEC
    #   mmtrace (pyproject.toml)
""".format(h="a" * 64)


def test_lock_py_drops_torch_and_what_only_its_cuda_build_needs():
    lock = _lock_module()
    _, entries = lock.parse(_UV_OUTPUT)
    assert [e.name for e in entries][:2] == ["annotated", "cuda-x"]
    assert entries[-1].via == ["-c TORCH_SPEC", "mmtrace (pyproject.toml)"]
    assert len(entries[-1].hashes) == 2
    # sympy is what a CPU torch needs too: kept, and mpmath through it; filelock has another user
    dropped = lock.torch_only(entries, keep={"sympy", "filelock", "mpmath"})
    assert dropped == {"torch", "nvidia-a", "cuda-x"}
    assert lock.torch_only(entries, keep=set()) == {
        "torch",
        "nvidia-a",
        "cuda-x",
        "sympy",
        "mpmath",
    }
    with pytest.raises(ValueError):
        lock.parse("--index-url file:///opt/pypi/simple\n")


class _Dist:
    def __init__(self, name: str, version: str, requires: list[str] | None = None):
        self.metadata = {"Name": name}
        self.version = version
        self.requires = requires


def test_lock_py_check_venv_reports_every_difference(tmp_path, monkeypatch):
    lock = _lock_module()
    path = tmp_path / "requirements.lock"
    path.write_text(_UV_OUTPUT.split("torch==")[0] + "win==1.0 ; sys_platform == 'nonesuch' \\\n")
    requires = ["sympy", "nvidia-b; sys_platform == 'linux'", "o; extra == 'x'"]
    exact = [
        _Dist("annotated", "1.0"),
        _Dist("cuda-x", "1.0"),
        _Dist("filelock", "3.0"),
        _Dist("mpmath", "1.3.0"),
        _Dist("nvidia-a", "1.0"),
        _Dist("sympy", "1.14"),
        _Dist("pip", "23.2.1"),
        _Dist("mmtrace", "0.1.0"),
        _Dist("torch", "2.13.0+cu130", requires),
        _Dist("nvidia-b", "2.0"),  # what this torch build requires: allowed
    ]
    monkeypatch.setattr("importlib.metadata.distributions", lambda: iter(exact))
    if sys.platform == "linux":
        assert lock.check_venv("torch==2.13.0", path) == []
    problems = lock.check_venv("torch==2.12.0", path)
    assert problems == ["torch==2.13.0+cu130 does not satisfy 'torch==2.12.0'"]
    wrong = [d for d in exact if d.metadata["Name"] not in {"sympy", "cuda-x"}]
    wrong += [_Dist("sympy", "1.13"), _Dist("o", "1.0"), _Dist("six", "1.17")]
    monkeypatch.setattr("importlib.metadata.distributions", lambda: iter(wrong))
    problems = lock.check_venv("torch==2.13.0", path)
    assert "sympy==1.13 installed, the lock has 1.14" in problems
    assert "o==1.0 installed, not in the lock" in problems
    assert "six==1.17 installed, not in the lock" in problems
    if sys.platform == "linux":
        assert "cuda-x==1.0 missing" in problems
        assert len(problems) == 4, problems


def test_lock_py_check_python_refuses_an_older_python(tmp_path):
    lock = _lock_module()
    path = tmp_path / "requirements.lock"
    path.write_text(
        "# torch==2.13.0 (installed on its own by make venv: TORCH_SPEC)\n# Python >= 99.1\n"
    )
    with pytest.raises(SystemExit, match="Python >= 99.1"):
        lock.check_python(path)
    path.write_text(
        "# torch==2.13.0 (installed on its own by make venv: TORCH_SPEC)\n# Python >= 3.0\n"
    )
    lock.check_python(path)
