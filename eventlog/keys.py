"""Short fixed-width keys for ids, so indexes over millions of events stay small arrays."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt


def key64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def keys64(texts: Iterable[str]) -> npt.NDArray[np.uint64]:
    return np.fromiter((key64(t) for t in texts), dtype=np.uint64)
