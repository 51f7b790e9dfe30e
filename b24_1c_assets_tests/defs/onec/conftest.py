"""Fixtures for exchange-folder tests: the product pointed at a folder of sandbox-written files, no OData."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest


def age(paths) -> None:
    """Make files look finished (older than the reader's min_age_seconds)."""
    past = time.time() - 60
    for path in paths:
        os.utime(path, (past, past))


@pytest.fixture
def exchange_dir(sandbox, monkeypatch) -> Path:
    """ONEC_EXCHANGE_DIR of the sandbox fixture with ONEC_ODATA_URL unset: 1C is read from files only."""
    monkeypatch.delenv("ONEC_ODATA_URL", raising=False)
    folder = Path(os.environ["ONEC_EXCHANGE_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder
