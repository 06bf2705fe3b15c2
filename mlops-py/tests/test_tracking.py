"""Tracking with MLflow's names: the fluent API (per-thread active runs, a context manager that
ends runs FINISHED or FAILED) and the client (`Tracker`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import mlops


def test_a_run_logs_params_metrics_tags_and_ends_finished(store: str) -> None:
    mlops.set_experiment("fluent")
    with mlops.start_run(run_name="first", tags={"team": "growth"}) as run:
        assert mlops.active_run() is run
        mlops.log_param("lr", 0.1)
        mlops.log_params({"epochs": 10, "optimizer": "adamw", "early": True})
        mlops.log_metric("loss", 0.9, step=0)
        mlops.log_metric("loss", 0.5, step=1)
        mlops.log_metrics({"acc": 0.8, "f1": 0.7}, step=1)
        mlops.set_tags({"stage": "dev"})
    assert mlops.active_run() is None
    got = mlops.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "first"
    assert got.info.end_time is not None
    assert got.data.params == {"lr": "0.1", "epochs": "10", "optimizer": "adamw", "early": "True"}
    assert got.data.metrics == {"loss": 0.5, "acc": 0.8, "f1": 0.7}
    assert got.data.tags["team"] == "growth"
    assert got.data.tags["stage"] == "dev"
    history = mlops.get_tracker().get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.5)]
    last = mlops.last_active_run()
    assert last is not None and last.info.run_id == run.info.run_id


def test_an_exception_ends_the_run_failed_and_propagates(store: str) -> None:
    with pytest.raises(ZeroDivisionError):
        with mlops.start_run() as run:
            mlops.log_metric("x", 1.0)
            1 / 0
    assert mlops.get_run(run.info.run_id).info.status == "FAILED"
    assert mlops.active_run() is None


def test_nested_runs_record_their_parent(store: str) -> None:
    with mlops.start_run() as parent:
        with pytest.raises(mlops.InvalidArgument, match="nested=True"):
            mlops.start_run()
        with mlops.start_run(nested=True) as child:
            mlops.log_metric("inner", 1.0)
        assert mlops.active_run() is parent
    tags = mlops.get_run(child.info.run_id).data.tags
    assert tags["mlflow.parentRunId"] == parent.info.run_id


def test_logging_without_a_run_starts_one(store: str) -> None:
    mlops.log_metric("auto", 1.0)
    run = mlops.active_run()
    assert run is not None
    mlops.end_run("KILLED")
    assert mlops.get_run(run.info.run_id).info.status == "KILLED"


def test_search_runs_filters_orders_and_exports_arrow(store: str) -> None:
    mlops.set_experiment("search")
    for i, f1 in enumerate([0.7, 0.9, 0.8]):
        with mlops.start_run(run_name=f"r{i}"):
            mlops.log_metric("f1", f1)
            mlops.log_param("model", "mlp" if i % 2 else "logistic")
    table = mlops.search_runs(filter_string="metrics.f1 > 0.75", order_by=["metrics.f1 DESC"])
    assert table.num_rows == 2
    frame = table.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["metrics.f1"]) == [0.9, 0.8]
    assert list(frame["run_name"]) == ["r1", "r2"]
    assert pa.table(table).column("params.model").to_pylist() == ["mlp", "logistic"]
    polars_frame = pl.DataFrame(table)
    assert polars_frame["metrics.f1"].to_list() == [0.9, 0.8]
    by_name = mlops.search_runs(experiment_names=["search"], max_results=1)
    assert by_name.num_rows == 1
    with pytest.raises(mlops.InvalidArgument):
        mlops.search_runs(filter_string="metrics.f1 >>> 1")


def test_artifacts_round_trip(store: str, tmp_path: Path) -> None:
    (tmp_path / "report.txt").write_text("hello")
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    with mlops.start_run() as run:
        mlops.log_artifact(tmp_path / "report.txt")
        mlops.log_artifact(tmp_path / "report.txt", artifact_path="docs")
        mlops.log_artifacts(folder, artifact_path="plots")
    tracker = mlops.get_tracker()
    listed = tracker.list_artifacts(run.info.run_id)
    assert {"report.txt", "docs/report.txt", "plots/a.txt", "plots/sub/b.txt"} <= set(listed)
    assert tracker.download_artifact(run.info.run_id, "plots/sub/b.txt") == b"b"
    with pytest.raises(mlops.NotFound):
        tracker.download_artifact(run.info.run_id, "missing.txt")


def test_log_input_records_the_dataset_version(store: str, churn: pd.DataFrame) -> None:
    version = mlops.write_dataset("churn", churn)
    with mlops.start_run() as run:
        mlops.log_input(version, context="training")
        mlops.log_input("churn@1", context="evaluation")
    assert mlops.get_run(run.info.run_id).inputs == ["datasets/churn@1", "datasets/churn@1"]


def test_the_client_style_works_on_any_store(tmp_path: Path) -> None:
    tracker = mlops.Tracker(str(tmp_path / "client"))
    experiment = tracker.create_experiment("client", tags={"owner": "me"})
    run = tracker.create_run(experiment, run_name="c1")
    tracker.log_batch(run.info.run_id, metrics={"m": 1.5}, params={"p": 3}, tags={"t": "x"}, step=2)
    tracker.set_terminated(run.info.run_id, "FINISHED")
    again = mlops.Tracker(mlops.Store(str(tmp_path / "client"))).get_run(run.info.run_id)
    assert again.data.metrics == {"m": 1.5}
    assert again.data.params == {"p": "3"}
    assert again.info.status == "FINISHED"
    assert tracker.get_experiment(experiment).tags == {"owner": "me"}
    memory = mlops.Tracker("memory://")
    in_memory = memory.create_run(run_name="m")
    assert memory.get_run(in_memory.info.run_id).info.run_name == "m"
    with pytest.raises(mlops.NotFound):
        mlops.Tracker("memory://").get_run(in_memory.info.run_id)


def test_an_ended_run_resumes_as_in_mlflow(store: str) -> None:
    with mlops.start_run(run_name="first") as run:
        mlops.log_metric("loss", 0.5)
    assert mlops.get_run(run.info.run_id).info.status == "FINISHED"
    with mlops.start_run(run_id=run.info.run_id, tags={"later": "yes"}) as again:
        assert again.info.status == "RUNNING"
        mlops.log_metric("eval", 0.9)
    got = mlops.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.metrics == {"loss": 0.5, "eval": 0.9}
    assert got.data.tags["later"] == "yes"


def test_runs_experiments_delete_restore_and_search(store: str) -> None:
    tracker = mlops.get_tracker()
    kept = tracker.create_experiment("kept")
    gone = tracker.create_experiment("gone")
    run = tracker.create_run(kept, run_name="r")
    tracker.update_run(run.info.run_id, name="renamed")
    assert tracker.get_run(run.info.run_id).info.run_name == "renamed"
    tracker.delete_run(run.info.run_id)
    assert tracker.search_runs([kept]).num_rows == 0
    tracker.restore_run(run.info.run_id)
    assert tracker.search_runs([kept]).num_rows == 1
    tracker.delete_experiment(gone)
    names = {e.name for e in tracker.search_experiments()}
    assert "kept" in names and "gone" not in names
    assert [e.name for e in tracker.search_experiments(view_type="DELETED_ONLY")] == ["gone"]
    tracker.restore_experiment(gone)
    assert [e.name for e in tracker.search_experiments("name = 'gone'")] == ["gone"]
    with pytest.raises(mlops.InvalidArgument):
        tracker.search_experiments(view_type="SOME")


def test_switching_stores_with_a_run_active_is_refused(store: str, tmp_path: Path) -> None:
    with mlops.start_run():
        with pytest.raises(mlops.InvalidArgument, match="active"):
            mlops.set_store(str(tmp_path / "other"))
    mlops.set_store(str(tmp_path / "other"))
    assert mlops.get_store().url.endswith("other")


def test_what_a_script_logs_survives_its_exit(store: str) -> None:
    # No end_run, no flush: the interpreter's exit ends the run and makes it durable, as
    # MLflow's does; a client-style tracker's writes are flushed too.
    script = textwrap.dedent(
        f"""
        import mlops
        mlops.set_store({store!r})
        mlops.set_experiment("exit")
        mlops.log_metric("fluent", 1.0)
        client = mlops.Tracker({store!r})
        run = client.create_run(run_name="client")
        client.log_metric(run.info.run_id, "client", 2.0)
        print(mlops.active_run().info.run_id, run.info.run_id)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    fluent_run, client_run = done.stdout.split()
    tracker = mlops.Tracker(store)
    fluent = tracker.get_run(fluent_run)
    assert fluent.info.status == "FINISHED" and fluent.data.metrics == {"fluent": 1.0}
    assert tracker.get_run(client_run).data.metrics == {"client": 2.0}
