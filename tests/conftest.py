"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip the test when the data bundle is not beside the checkout."""
    if not (SHARED_DATA / "dev").is_dir():
        pytest.skip(f"data bundle not found at {SHARED_DATA}")
    return SHARED_DATA
