"""Shared fixtures: every test gets its own store in a temporary directory, made the fluent
API's store, and no run left active."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest

import mlops

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[str]:
    """A fresh store directory, in use by the fluent API."""
    url = str(tmp_path / "store")
    mlops.set_store(url)
    yield url
    while mlops.active_run() is not None:
        mlops.end_run()


@pytest.fixture
def churn() -> pd.DataFrame:
    """Customers with a churn label that depends on tenure, charges and plan."""
    rng = np.random.default_rng(7)
    n = 800
    tenure = rng.uniform(0, 60, n).round()
    plan = rng.choice(["basic", "plus", "pro"], n)
    charges = 30 + 25 * (plan == "pro") + rng.normal(0, 8, n)
    z = -0.08 * tenure + 0.05 * (charges - 50) + 0.8
    churned = rng.uniform(size=n) < 1 / (1 + np.exp(-z))
    return pd.DataFrame(
        {"tenure": tenure, "charges": charges.round(2), "plan": plan, "churned": churned}
    )


def cli() -> Path:
    """The mlops CLI binary that `cargo build`/`cargo test --workspace` left in target/."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "debug" / "mlops"
    if not binary.exists():
        pytest.fail(f"{binary} is not built: run `cargo build -p mlops-cli` first")
    return binary
