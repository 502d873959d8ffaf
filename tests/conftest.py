"""Shared test helpers.

`need_binary` / `need`: a test that needs a real server binary (PostgreSQL, Prometheus,
Chromium) skips locally with a reason when it is missing, but fails under CI=true, where
`.ci/run` must have installed it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
SHARED = Path(__file__).resolve().parents[2] / "shared"
TRACES = SHARED / "traces"


def need(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (in CI) when a required external piece is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def need_binary(*candidates: str) -> str:
    """Path of the first binary found among `candidates` (names or absolute paths)."""
    for name in candidates:
        found = shutil.which(name) or (
            name if os.path.isabs(name) and os.access(name, os.X_OK) else None
        )
        if found:
            return found
    need(False, f"none of {', '.join(candidates)} is installed")
    raise AssertionError("unreachable")


def trace_path(name: str) -> Path:
    """A shared recorded trace (never copied into the repository)."""
    path = TRACES / name
    need(path.exists(), f"shared trace {path} not found")
    return path
