"""Measurements kept across ``edgekit tune`` runs, so a second run screens from memory.

One JSON file per candidate under ``$EDGEKIT_CACHE/tune/``, named by the sha256 of its key:
the model's sha256 (external data included), the runtime and its version, the configuration,
the digest of the inputs, the objective and this host (CPU model, cores, machine). What is kept
is what one successful measurement produced: p50, its CI, mean, peak RSS, the sample count and
the accuracy gate's raw numbers (judged again with the current tolerances when reused). Failures
are not kept: a crash is measured again next time. The search uses a cached entry in place of
its screening run only; every later round, and the confirmation of the winner, measures anew.

Example::

    key = entry_key(model, config, version="1.32.0", inputs_digest=d, objective="latency")
    save(key, {"p50_ms": 1.2, ...}); load(key)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.cache import atomic_path, cache_dir
from edgekit.models.formats import ModelFile
from edgekit.plan import Config, host_facts

__all__ = ["ENTRY_VERSION", "entry_key", "inputs_digest", "load", "save"]

ENTRY_VERSION = 1


def inputs_digest(samples: list[dict[str, np.ndarray]]) -> str:
    """sha256 of every sample's names, dtypes, shapes and bytes.

    >>> a = inputs_digest([{"x": np.zeros(2, np.float32)}])
    >>> a == inputs_digest([{"x": np.zeros(2, np.float32)}]), a == inputs_digest([{"x": np.ones(2, np.float32)}])
    (True, False)
    """
    h = hashlib.sha256()
    for sample in samples:
        for name, arr in sample.items():
            a = np.ascontiguousarray(arr)
            h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def entry_key(model: ModelFile, config: Config, *, version: str | None, inputs_digest: str, objective: str) -> str:
    """The hex key of a candidate's entry (see the module docstring for what it covers)."""
    c = asdict(config)
    c.pop("target", None)  # where it came from, not what runs
    parts = [ENTRY_VERSION, model.sha256(), config.runtime, version, c, inputs_digest, objective, list(host_facts())]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _path(key: str) -> Path:
    return cache_dir("tune") / f"{key}.json"


def load(key: str) -> dict[str, Any] | None:
    """The entry for ``key``, or None (missing, unreadable or of another layout)."""
    try:
        data = json.loads(_path(key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != ENTRY_VERSION or not isinstance(data.get("p50_ms"), float):
        return None
    return data


def save(key: str, entry: Mapping[str, Any]) -> None:
    """Keep ``entry`` for ``key`` (atomically; a cache that cannot be written is skipped)."""
    try:
        dest = _path(key)
        with atomic_path(dest) as tmp:
            tmp.write_text(json.dumps({"version": ENTRY_VERSION, **entry}, default=float), encoding="utf-8")
    except OSError:
        pass
