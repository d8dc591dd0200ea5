"""Pinned numerical code paths: the same inputs give the same bits on any x86-64 CPU with AVX2.

torch picks its CPU kernels by the instruction sets it finds (ATen's own vectorised kernels,
MKL's BLAS, oneDNN's convolutions and matmuls), so one model run on an AVX-512 Xeon, an AVX2
EPYC and a laptop rounds differently, and a training run or an Adam-based edit amplifies the
difference. Three environment variables force one code path, each read once by its library
when it first runs:

- `ATEN_CPU_CAPABILITY`: ATen's vectorised kernels (`default` / `avx2` / `avx512`);
- `MKL_CBWR`: MKL's conditional numerical reproducibility branch (`AVX2,STRICT`: the AVX2
  kernels, bitwise independent of memory alignment);
- `ONEDNN_MAX_CPU_ISA`: the highest instruction set oneDNN may use.

They must be in the environment before torch computes anything, so the workflow sets them in
the Snakemake process (`rules/common.smk`, from config `numerics`) and every job inherits them,
locally and on a cluster; the command line sets them before it imports torch. Each job's log
records them with the library versions and the capability torch actually runs
(`describe`), and warns where the CPU cannot honour the pin (an ARM machine, or an x86 CPU
without AVX2): its numbers then agree with the reference within `verify`'s tolerances, not
bit for bit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import sys
from collections.abc import Iterator, Mapping
from importlib import metadata

log = logging.getLogger(__name__)

# The pinned code path (config `numerics.env` holds the same by default; one home: here).
PINS: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2,STRICT",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}
# Every variable `numerics.env` may set, with the values its library accepts (None: any).
KNOWN: dict[str, tuple[str, ...] | None] = {
    "ATEN_CPU_CAPABILITY": ("default", "avx2", "avx512", "avx512_vnni", "avx512_bf16"),
    "MKL_CBWR": None,  # AUTO, COMPATIBLE, SSE2, ..., AVX2, AVX512, each optionally ",STRICT"
    "ONEDNN_MAX_CPU_ISA": None,  # SSE41, AVX, AVX2, AVX512_CORE, ..., ALL
    "MKL_ENABLE_INSTRUCTIONS": None,
}
# The libraries whose versions decide a job's numbers (recorded in every job's log).
LIBRARIES = (
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "numpy",
    "scipy",
    "pandas",
    "pillow",
    "matplotlib",
    "snakemake",
)


def apply(env: Mapping[str, str], environ: dict[str, str] | None = None) -> dict[str, str]:
    """Set the pins in `environ` (the process's own by default); returns the variables whose
    earlier value was replaced, so the caller can say so. Must run before torch computes."""
    target = os.environ if environ is None else environ
    replaced = {}
    for key, value in env.items():
        old = target.get(key)
        if old is not None and old != value:
            replaced[key] = old
        target[key] = str(value)
    return replaced


def cpu_model() -> str:
    """The CPU's model name (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    """Python's and the numerical libraries' versions (installed distributions)."""
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def describe(torch_info: bool = True) -> dict:
    """What decides this process's numbers: library versions, the pin variables as set, the
    CPU, and (`torch_info`, which imports torch) the capability torch runs and its threads."""
    info = {
        "versions": versions(),
        "pins": {k: os.environ[k] for k in KNOWN if k in os.environ},
        "cpu": cpu_model(),
        "machine": platform.machine(),
    }
    if torch_info:
        import torch

        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        info["torch_threads"] = torch.get_num_threads()
    return info


def unhonoured(info: dict) -> str | None:
    """Why the pinned ATen capability is not what torch runs (the CPU lacks it), else None."""
    want = info["pins"].get("ATEN_CPU_CAPABILITY")
    have = str(info.get("torch_cpu_capability", "")).lower()
    if want and have and want.lower() != have:
        return (
            f"ATEN_CPU_CAPABILITY={want} is pinned but torch runs {have} on this CPU "
            f"({info['cpu']}): numbers agree with the reference within verify's tolerances, "
            "not bit for bit"
        )
    return None


@contextlib.contextmanager
def job_environment() -> Iterator[None]:
    """Log a job's library versions, pins and CPU at its start, and at its end (failed or not)
    the capability torch ran, where the job used torch, with a warning where the pin was not
    honoured. Importing torch only to log it would cost a figure job seconds, so it is not."""
    log.info("job environment: %s", describe(torch_info=False))
    try:
        yield
    finally:
        if "torch" in sys.modules:
            info = describe()
            log.info(
                "torch ran with capability %s on %d thread(s)",
                info["torch_cpu_capability"],
                info["torch_threads"],
            )
            problem = unhonoured(info)
            if problem:
                log.warning("%s", problem)
