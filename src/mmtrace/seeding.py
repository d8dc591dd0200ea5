"""Seeds: one integer from config, derived per purpose so stages never share random streams."""

from __future__ import annotations

import hashlib
import random

import numpy as np


def derive(seed: int, *parts: object) -> int:
    """A stable 31-bit seed for (seed, parts); Python's hash() is salted per process."""
    key = ":".join([str(seed), *map(str, parts)]).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") & 0x7FFFFFFF


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
