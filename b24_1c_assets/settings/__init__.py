"""Settings files shipped with the product (TOML). `B24_1C_SETTINGS_DIR` points at a customer's copies."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def settings_path(name: str) -> Path:
    """`<name>.toml` from B24_1C_SETTINGS_DIR when it has one, else the shipped default."""
    override = os.environ.get("B24_1C_SETTINGS_DIR")
    if override and (Path(override) / f"{name}.toml").exists():
        return Path(override) / f"{name}.toml"
    return PACKAGE_DIR / f"{name}.toml"


def load(name: str) -> dict:
    with open(settings_path(name), "rb") as handle:
        return tomllib.load(handle)
