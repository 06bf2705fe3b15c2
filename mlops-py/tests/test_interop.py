"""What Python writes, the Rust CLI reads, and the other way round; and a run logged from
Python, exported to MLflow's file layout, read by MLflow's own client."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mlops

from conftest import cli


def run_cli(store: str, *args: str) -> str:
    done = subprocess.run(
        [str(cli()), "--store", store, *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_cli_reads_what_python_wrote(store: str, churn: pd.DataFrame, tmp_path: Path) -> None:
    mlops.set_experiment("from-python")
    with mlops.start_run(run_name="py-run") as run:
        mlops.log_param("source", "python")
        mlops.log_metric("f1", 0.75, step=3)
    mlops.write_dataset("churn", churn, metadata={"owner": "py"})
    model = mlops.train("churn", "churned", register="churn", epochs=3)
    mlops.get_registry().set_registered_model_alias("churn", "champion", 1)

    runs: list[dict[str, Any]] = json.loads(
        run_cli(store, "runs", "list", "--experiment", "from-python", "--json")
    )
    [listed] = [r for r in runs if r["info"]["run_id"] == run.info.run_id]
    assert listed["data"]["params"]["source"] == "python"
    assert listed["data"]["metrics"]["f1"]["value"] == 0.75
    assert listed["data"]["metrics"]["f1"]["step"] == 3

    out = tmp_path / "churn.parquet"
    run_cli(store, "datasets", "get", "churn@1", "-o", str(out))
    pd.testing.assert_frame_equal(pq.read_table(out).to_pandas(), churn)

    shown: dict[str, Any] = json.loads(run_cli(store, "models", "show", "churn", "--json"))
    assert shown["model"]["aliases"] == {"champion": 1}
    assert model.version is not None
    assert shown["model"]["latest_versions"][0]["source"] == model.version.source


def test_python_reads_what_the_cli_wrote(store: str, churn: pd.DataFrame, tmp_path: Path) -> None:
    source = tmp_path / "churn.parquet"
    pq.write_table(pa.Table.from_pandas(churn, preserve_index=False), source)
    run_cli(store, "datasets", "put", "churn", str(source))
    run_cli(
        store, "train", "--data", "churn", "--target", "churned", "--model", "logistic",
        "--epochs", "3", "--experiment", "from-cli", "--register", "churn", "--no-assess",
    )
    table = mlops.read_dataset("churn@1")
    pd.testing.assert_frame_equal(table.to_pandas(), churn)
    version = mlops.get_registry().get_model_version("churn", 1)
    assert version.run_id is not None
    run = mlops.get_run(version.run_id)
    assert run.info.status == "FINISHED"
    assert run.inputs == ["datasets/churn@1"]
    assert mlops.search_runs(experiment_names=["from-cli"]).num_rows == 1
    model = mlops.load_model("models:/churn/1")
    assert model.predict(churn.head(3))["label"].shape == (3,)


def test_mlflows_client_reads_an_export_of_a_python_run(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlops.set_experiment("exported")
    with mlops.start_run(run_name="for-mlflow", tags={"team": "ml"}) as run:
        mlops.log_params({"lr": 0.01, "layers": 2})
        for step, loss in enumerate([0.9, 0.6, 0.4]):
            mlops.log_metric("loss", loss, step=step)
        (tmp_path / "notes.txt").write_text("exported")
        mlops.log_artifact(tmp_path / "notes.txt")
    out = tmp_path / "mlruns"
    run_cli(store, "export", "mlflow", "--out", str(out))

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=out.as_uri())
    experiment = client.get_experiment_by_name("exported")
    assert experiment is not None
    theirs = client.get_run(run.info.run_id)
    assert theirs.info.run_name == "for-mlflow"
    assert theirs.info.status == "FINISHED"
    assert theirs.data.params == {"lr": "0.01", "layers": "2"}
    assert theirs.data.tags["team"] == "ml"
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.6), (2, 0.4)]
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["notes.txt"]
    found = client.search_runs([experiment.experiment_id], "metrics.loss < 0.5")
    assert [r.info.run_id for r in found] == [run.info.run_id]
    assert np.isclose(found[0].data.metrics["loss"], 0.4)
