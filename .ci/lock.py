"""The locked Python environment: write requirements.lock, and check a venv against it.

    python .ci/lock.py compile --uv UV --torch "torch==2.13.0" --python 3.11.5 [-- UV_ARGS]
        (`make lock`) resolves pyproject.toml's [project.dependencies], its `dev` extra and its
        [build-system].requires with uv, universally (every platform, Python >= --python, one
        version of each package where one fits all), with the sha256 hashes of every file, from
        PyPI alone, and writes requirements.lock. The versions already in requirements.lock are
        kept where they still fit (uv's preferences); UV_ARGS such as --upgrade or
        --upgrade-package NAME move them.
    python .ci/lock.py check-python
        (`make venv`, first) fails unless this interpreter is one the lock was resolved for.
    python .ci/lock.py check-venv --torch "torch==2.13.0"
        (`make venv`, last) fails unless this interpreter's environment holds exactly the lock's
        versions (the entries whose markers apply here), a torch satisfying --torch with what that
        torch build requires, the package itself and pip, and nothing else.

torch is resolved with but left out of the lock: `make venv` installs it on its own, right after
the lock (TORCH_SPEC), because its build (a local CPU wheel, a CUDA build from PyPI or another
index) differs per machine, and so do its files and hashes. The lock records the version it was
resolved with in a header line, `# torch==X (installed on its own by make venv: TORCH_SPEC)`.
Also left out are the packages that only torch's CUDA build needs (nvidia-*, triton, ...): what
torch requires on Windows, where PyPI's torch is a CPU build, stays in the lock (sympy,
networkx, ...); what only torch requires beyond that comes with the build that needs it.

compile needs Python >= 3.11 (tomllib); check-venv needs `packaging` (in the lock).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
INDEX_URL = "https://pypi.org/simple"
# PyPI's torch for this platform is a CPU build: what it requires is what every build requires.
CPU_TORCH_PLATFORM = "x86_64-pc-windows-msvc"
# The header line that records torch's version (tests/test_environment.py reads it too).
TORCH_LINE = re.compile(r"^# torch==(\S+) \(installed on its own by make venv: TORCH_SPEC\)$", re.M)
PYTHON_LINE = re.compile(r"^# Python >= (\d+(?:\.\d+)*)", re.M)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]*?))?\s*\\?\s*$")


def norm(name: str) -> str:
    """PEP 503 normalised name."""
    return re.sub(r"[-_.]+", "-", name).lower()


class Entry:
    """One pinned requirement of a uv-compiled requirements file, with its lines."""

    def __init__(self, lines: list[str]):
        match = _PIN.match(lines[0])
        if not match:
            raise ValueError(f"not a pinned requirement: {lines[0]!r}")
        self.lines = lines
        self.name = norm(match.group(1))
        self.version = match.group(2)
        self.marker = match.group(3) or None
        self.hashes = [
            h for line in lines for h in re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
        ]
        self.via = _via(lines)


def _via(lines: list[str]) -> list[str]:
    """The `# via` annotation's entries: package names, `-r FILE`, `NAME (pyproject.toml)`..."""
    out: list[str] = []
    inside = False
    for line in lines[1:]:
        text = line.strip()
        if text.startswith("# via"):
            rest = text[len("# via") :].strip()
            inside = not rest
            if rest:
                out.append(rest)
        elif inside and text.startswith("#   "):
            out.append(text[4:].strip())
        elif not text.startswith("--hash"):
            inside = False
    return out


def parse(text: str) -> tuple[list[str], list[Entry]]:
    """Split a uv-compiled requirements file into its leading comment lines and its entries."""
    header: list[str] = []
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if blocks:
            if line and not line[0].isspace() and not line.startswith("#"):
                blocks.append([line])
            else:
                blocks[-1].append(line)
        elif line.startswith("#") or not line.strip():
            header.append(line)
        else:
            blocks.append([line])
    for block in blocks:
        if block[0].startswith("-"):
            raise ValueError(f"unexpected option line in a lock: {block[0]!r}")
    return header, [Entry(block) for block in blocks]


def torch_only(entries: list[Entry], keep: set[str]) -> set[str]:
    """torch, plus every entry required only through torch (and only through such entries),
    except those in `keep` (what a CPU build of torch requires)."""
    dropped = {"torch"}
    changed = True
    while changed:
        changed = False
        for entry in entries:
            if entry.name in dropped or entry.name in keep or not entry.via:
                continue
            # a non-package via entry (pyproject.toml, -r FILE, -c FILE) is a root: keep
            parents = {norm(v) if _is_name(v) else None for v in entry.via}
            if parents <= dropped:
                dropped.add(entry.name)
                changed = True
    return dropped


def _is_name(via: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", via) is not None


def _torch_version(spec: str) -> str:
    match = re.fullmatch(r"\s*torch\s*==\s*([0-9][^\s;,+]*)(\+\S+)?\s*", spec)
    if not match:
        sys.exit(
            f"lock.py: TORCH_SPEC must pin one version (torch==X.Y.Z) to be locked, not {spec!r}"
        )
    return match.group(1)


def _uv(uv: str, args: list[str], **kwargs) -> subprocess.CompletedProcess:
    # uv reads no pip configuration; its own (uv.toml, UV_* variables) is kept out too, so that a
    # local or extra index never enters the lock.
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_") or k == "UV_CACHE_DIR"}
    cmd = [uv, "pip", "compile", "--no-config", "--index-url", INDEX_URL, *args]
    return subprocess.run(cmd, check=True, env=env, text=True, **kwargs)


def compile_lock(uv: str, torch_spec: str, python: str, uv_args: list[str], out: Path) -> None:
    import tomllib

    torch_version = _torch_version(torch_spec)
    with (ROOT / "pyproject.toml").open("rb") as fh:
        build_requires = tomllib.load(fh)["build-system"]["requires"]
    uv_version = subprocess.run([uv, "--version"], check=True, text=True, capture_output=True)
    common = ["--universal", "--fork-strategy", "fewest", "--python-version", python]
    with tempfile.TemporaryDirectory() as tmp:
        build_file = Path(tmp, "build-system.txt")
        build_file.write_text("\n".join(build_requires) + "\n")
        torch_file = Path(tmp, "torch.txt")
        torch_file.write_text(f"torch=={torch_version}\n")
        raw = Path(tmp, "requirements.lock")
        if out.exists():  # its versions are uv's preferences
            shutil.copyfile(out, raw)
        args = [
            "pyproject.toml",
            str(build_file),
            "--extra",
            "dev",
            "--constraint",
            str(torch_file),
            *common,
            "--generate-hashes",
            "--no-header",
            "--quiet",
            "--output-file",
            str(raw),
            *uv_args,
        ]
        _uv(uv, args, cwd=ROOT)
        text = raw.read_text()
        text = text.replace(f"-r {build_file}", "pyproject.toml [build-system]")
        text = text.replace(f"-c {torch_file}", "TORCH_SPEC")
        cpu = _uv(
            uv,
            [str(torch_file), "--python-version", python, "--python-platform", CPU_TORCH_PLATFORM]
            + ["--no-header", "--no-annotate", "--quiet"],
            capture_output=True,
        ).stdout
    _, entries = parse(text)
    if not any(e.name == "torch" and e.version == torch_version for e in entries):
        sys.exit(f"lock.py: torch=={torch_version} is not in the resolution")
    cpu_names = {e.name for e in parse(cpu)[1]} - {"torch"}
    dropped = torch_only(entries, keep=cpu_names)
    kept = [e for e in entries if e.name not in dropped]
    cuda_only = sorted(dropped - {"torch"})
    command = " ".join(
        ["uv pip compile pyproject.toml <[build-system].requires> --extra dev"]
        + [f"--constraint <torch=={torch_version}>", *common, "--generate-hashes"]
        + [f"--index-url {INDEX_URL}", *uv_args]
    )
    header = [
        "# requirements.lock: written by `make lock` (.ci/lock.py); do not edit by hand.",
        "#",
        "# Every Python package mmtrace needs except torch, transitive ones included: in",
        "# pyproject.toml, [project.dependencies], the `dev` extra and [build-system].requires;",
        "# each pinned to one version with the sha256 hashes of its files on PyPI. `make venv`",
        "# installs it with `pip install --require-hashes --no-deps -r requirements.lock`.",
        f"# Python >= {python}, every platform (uv's universal resolution: one version of each",
        "# package for all; markers pick the entries of one platform).",
        "#",
        f"# torch=={torch_version} (installed on its own by make venv: TORCH_SPEC)",
        "# torch was resolved with the rest but is not listed: its build, and so its hash, differs",
        "# per machine. Left out with it, and installed with the torch build that needs them: what",
        f"# only torch's CUDA build requires ({len(cuda_only)} packages: {_names(cuda_only)}).",
        "#",
        f"# {' '.join(uv_version.stdout.split()[:2])}: {command}",
    ]
    out.write_text(
        "\n".join(header) + "\n" + "\n".join(line for e in kept for line in e.lines) + "\n"
    )
    print(
        f"lock.py: wrote {out.name}: {len(kept)} packages; torch=={torch_version} and "
        f"{len(cuda_only)} CUDA-only packages left out"
    )


def _names(names: list[str]) -> str:
    groups: list[str] = []
    prefixes = sorted({n.split("-")[0] for n in names if n.count("-")})
    for prefix in prefixes:
        members = [n for n in names if n.startswith(prefix + "-")]
        if len(members) > 2:
            groups.append(f"{prefix}-* x{len(members)}")
            names = [n for n in names if n not in members]
    return ", ".join(groups + names) or "none"


def lock_header(path: Path = LOCK) -> tuple[str, str]:
    """(torch version, lowest Python) recorded in the lock's header."""
    text = path.read_text()
    torch = TORCH_LINE.search(text)
    python = PYTHON_LINE.search(text)
    if not torch or not python:
        sys.exit(f"lock.py: {path.name} lacks its torch or Python header line: run `make lock`")
    return torch.group(1), python.group(1)


def check_python(path: Path = LOCK) -> None:
    _, python = lock_header(path)
    lowest = tuple(int(p) for p in python.split("."))
    if sys.version_info[: len(lowest)] < lowest:
        sys.exit(
            f"lock.py: {path.name} is resolved for Python >= {python}; this is "
            f"{sys.version.split()[0]} ({sys.executable}): remove that venv and rerun make with "
            "PYTHON=<a newer python3>"
        )


def check_venv(torch_spec: str, path: Path = LOCK) -> list[str]:
    """Differences between this environment and the lock; empty when they agree."""
    from importlib import metadata

    from packaging.markers import Marker
    from packaging.requirements import Requirement

    installed: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        installed.setdefault(norm(dist.metadata["Name"]), dist)
    _, entries = parse(path.read_text())
    wanted = {e.name: e.version for e in entries if not e.marker or Marker(e.marker).evaluate()}
    problems = []
    for name, version in sorted(wanted.items()):
        if name not in installed:
            problems.append(f"{name}=={version} missing")
        elif installed[name].version != version:
            problems.append(f"{name}=={installed[name].version} installed, the lock has {version}")
    torch_req = Requirement(torch_spec)
    if "torch" not in installed:
        problems.append("torch missing")
    elif not torch_req.specifier.contains(installed["torch"].version, prereleases=True):
        problems.append(f"torch=={installed['torch'].version} does not satisfy {torch_spec!r}")
    # besides the lock: pip, the package itself, torch and what this torch build requires,
    # transitively (a CUDA build's nvidia-* packages)
    allowed = {"pip", "mmtrace"}
    todo = ["torch"]
    while todo:
        name = todo.pop()
        if name in allowed or name not in installed:
            continue
        allowed.add(name)
        for req in installed[name].requires or []:
            r = Requirement(req)
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(norm(r.name))
    extra = sorted(set(installed) - set(wanted) - allowed)
    problems += [f"{name}=={installed[name].version} installed, not in the lock" for name in extra]
    return problems


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    comp = sub.add_parser("compile", help="write requirements.lock (make lock)")
    comp.add_argument("--uv", default="uv")
    comp.add_argument("--torch", required=True, help="TORCH_SPEC, torch==X.Y.Z")
    comp.add_argument("--python", required=True, help="lowest Python to resolve for")
    comp.add_argument("--output", type=Path, default=LOCK)
    comp.add_argument("uv_args", nargs=argparse.REMAINDER, help="after --: more uv arguments")
    sub.add_parser("check-python", help="fail unless this Python is one the lock is for")
    chk = sub.add_parser("check-venv", help="fail unless this environment matches the lock")
    chk.add_argument("--torch", required=True, help="TORCH_SPEC")
    args = parser.parse_args(argv)
    if args.command == "compile":
        uv_args = args.uv_args[1:] if args.uv_args[:1] == ["--"] else args.uv_args
        compile_lock(args.uv, args.torch, args.python, uv_args, args.output)
    elif args.command == "check-python":
        check_python()
    else:
        problems = check_venv(args.torch)
        if problems:
            print(f"lock.py: {sys.prefix} differs from {LOCK.name}:", *problems, sep="\n  ")
            sys.exit(f"lock.py: recreate the venv: rm -rf {sys.prefix} && make venv")
        print(f"lock.py: {sys.prefix} holds exactly {LOCK.name}'s versions (+ torch)")


if __name__ == "__main__":
    main()
