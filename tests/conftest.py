"""Shared fixtures. Tests run with a non-interactive matplotlib backend and no GPU."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

CASES = Path(__file__).parent / "cases"


@pytest.fixture
def cases_dir() -> Path:
    return CASES
