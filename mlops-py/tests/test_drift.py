"""Drift and quality from Python: decisions equal to Evidently's on the same pandas frames,
saved profiles, reports as dicts, JSON and HTML, quality suites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

import mlops

# Evidently's method names -> (our test name, drift when score <= / < / >= threshold).
METHODS = {
    "K-S p_value": ("ks", "le"),
    "chi-square p_value": ("chisquare", "lt"),
    "Z-test p_value": ("z", "lt"),
    "Wasserstein distance (normed)": ("wasserstein", "ge"),
    "Jensen-Shannon distance": ("jensenshannon", "ge"),
    "PSI": ("psi", "ge"),
}


def frames(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame(
        {
            "normal": rng.normal(0, 1, rows),
            "shifted": rng.normal(0, 1, rows),
            "skewed": rng.exponential(1.0, rows),
            "rounded": np.round(rng.normal(50, 10, rows)),
            "few": rng.integers(0, 3, rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows),
            "flag": rng.choice(["yes", "no"], rows),
        }
    )
    cur = pd.DataFrame(
        {
            "normal": rng.normal(0, 1, rows),
            "shifted": rng.normal(0.4, 1, rows),
            "skewed": rng.exponential(1.3, rows),
            "rounded": np.round(rng.normal(50, 10, rows)),
            "few": rng.integers(0, 3, rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.2, 0.2, 0.6]),
            "flag": rng.choice(["yes", "no"], rows),
        }
    )
    return ref, cur


def evidently(ref: pd.DataFrame, cur: pd.DataFrame) -> tuple[bool, dict[str, tuple[str, bool]]]:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    result: dict[str, Any] = Report([DataDriftPreset()]).run(cur, ref).dict()
    decisions: dict[str, tuple[str, bool]] = {}
    dataset_drift = None
    for m in result["metrics"]:
        cfg = m["config"]
        kind = cfg.get("type", "")
        if kind.endswith("ValueDrift"):
            test, op = METHODS[cfg["method"]]
            score, threshold = m["value"], cfg["threshold"]
            drifted = {"le": score <= threshold, "lt": score < threshold, "ge": score >= threshold}[op]
            decisions[cfg["column"]] = (test, bool(drifted))
        elif kind.endswith("DriftedColumnsCount"):
            dataset_drift = m["value"]["share"] >= cfg.get("drift_share", 0.5)
    assert dataset_drift is not None
    return bool(dataset_drift), decisions


@pytest.mark.parametrize("rows", [600, 5000])
def test_decisions_equal_evidentlys_on_the_same_frames(rows: int) -> None:
    ref, cur = frames(rows, seed=rows)
    report = mlops.detect(ref, cur)
    theirs_dataset, theirs = evidently(ref, cur)
    ours = {name: (c["test"], c["drifted"]) for name, c in report.columns.items()}
    assert ours == theirs
    assert report.dataset_drift == theirs_dataset
    assert report.drifted_columns == sum(d for _, d in theirs.values())


def test_profiles_reports_and_overrides(tmp_path: Path) -> None:
    ref, cur = frames(2000, seed=3)
    profile = mlops.profile(ref)
    assert profile.rows == 2000
    assert profile.columns["plan"] == "categorical" and profile.columns["normal"] == "numerical"
    restored = mlops.Profile.from_json(profile.to_json())
    from_profile = mlops.detect(restored, pl.from_pandas(cur))
    from_frames = mlops.detect(ref, cur)
    assert from_profile.to_dict()["columns"] == from_frames.to_dict()["columns"]
    assert json.loads(from_frames.to_json())["schema"] == "mlops.drift.report/v1"
    custom = mlops.detect(ref, cur, tests={"normal": ("psi", 0.5), "shifted": "ks"}, drift_share=0.9)
    assert custom.columns["normal"]["test"] == "psi"
    assert custom.columns["shifted"]["test"] == "ks"
    assert custom.drift_share == 0.9
    path = tmp_path / "drift.html"
    custom.save_html(path)
    html = path.read_text()
    assert html.lower().startswith("<!doctype html>") and "shifted" in html
    assert custom._repr_html_() == html
    with pytest.raises(mlops.InvalidArgument):
        mlops.detect(ref, cur.drop(columns=["plan"]))
    with pytest.raises(mlops.InvalidArgument):
        mlops.detect(ref, cur, drift_share=2.0)
    with pytest.raises(mlops.InvalidArgument):
        mlops.Profile.from_json("{}")


def test_profiles_attach_to_model_versions(store: str) -> None:
    ref, _ = frames(300, seed=5)
    registry = mlops.get_registry()
    registry.create_registered_model("m")
    registry.create_model_version("m", "s3://x")
    digest = mlops.profile(ref).attach(registry, "m", 1)
    assert len(digest) == 64
    assert mlops.Profile.for_version(registry, "m", 1).rows == 300
    registry.create_model_version("m", "s3://y")
    with pytest.raises(mlops.NotFound):
        mlops.Profile.for_version(registry, "m", 2)


def test_quality_suites_validate_frames() -> None:
    suite = mlops.QualitySuite.from_dict(
        {
            "name": "customers",
            "expectations": [
                {"expectation_type": "expect_column_values_to_not_be_null", "column": "age"},
                {
                    "expectation_type": "expect_column_values_to_be_between",
                    "column": "age",
                    "min_value": 0,
                    "max_value": 120,
                },
                {
                    "expectation_type": "expect_column_values_to_be_in_set",
                    "column": "plan",
                    "value_set": ["basic", "pro"],
                },
            ],
        }
    )
    good = pd.DataFrame({"age": [30.0, 40.0], "plan": ["basic", "pro"]})
    bad = pd.DataFrame({"age": [30.0, 150.0], "plan": ["basic", "gold"]})
    assert suite.validate(good)["success"] is True
    result = suite.validate(bad)
    assert result["success"] is False
    assert [r["success"] for r in result["results"]] == [True, False, False]
    assert mlops.QualitySuite.from_yaml(suite.to_yaml()).name == "customers"
    with pytest.raises(mlops.InvalidArgument):
        mlops.QualitySuite.from_yaml("name: x\nexpectations: [{expectation_type: nope}]")
