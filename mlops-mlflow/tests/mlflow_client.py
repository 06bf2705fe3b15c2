"""MLflow's own Python client against an mlops server: the fluent API and MlflowClient, as a
training script uses them, asserting what it reads back. Run by tests/server.rs with a case
file {"tracking_uri": ...}; prints the ids it created as JSON."""

import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor

from mlflow_case import start

case, answer = start()

import mlflow  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

client = MlflowClient()
experiment = mlflow.set_experiment("mlflow-client")
runs_logged = 0

with mlflow.start_run(run_name="parent-run") as parent:
    runs_logged += 1
    mlflow.log_params({"lr": 0.01, "layers": 3})
    mlflow.set_tag("team", "fraud")
    for step in range(10):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=0)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "readme.txt")
        with open(path, "w") as f:
            f.write("hello from mlflow\n")
        mlflow.log_artifact(path, artifact_path="notes")
    mlflow.log_dict({"auc": 0.93}, "report.json")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "churned": [0, 1, 0]})
    dataset = mlflow.data.from_pandas(frame, name="churn-train", targets="churned")
    mlflow.log_input(dataset, context="training")
    with mlflow.start_run(run_name="child-run", nested=True) as child:
        runs_logged += 1
        mlflow.log_metric("x", 1.5)
    assert mlflow.active_run().info.run_id == parent.info.run_id

# An exception inside the block ends the run FAILED.
try:
    with mlflow.start_run(run_name="fails") as failing:
        runs_logged += 1
        raise ValueError("boom")
except ValueError:
    pass
assert client.get_run(failing.info.run_id).info.status == "FAILED"

pid = parent.info.run_id
run = client.get_run(pid)
assert run.info.status == "FINISHED", run.info
assert run.info.run_name == "parent-run"
assert run.data.params == {"lr": "0.01", "layers": "3"}, run.data.params
assert run.data.metrics["loss"] == 0.1, run.data.metrics
assert run.data.metrics["acc"] == 0.9
assert run.data.tags["team"] == "fraud"
assert run.info.artifact_uri.startswith("mlflow-artifacts:/"), run.info.artifact_uri
assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["churn-train"]

history = client.get_metric_history(pid, "loss")
assert [m.step for m in history] == list(range(10)), history
assert [m.value for m in history] == [1.0 / (s + 1) for s in range(10)]

child_run = client.get_run(child.info.run_id)
assert child_run.data.tags["mlflow.parentRunId"] == pid

# search_runs: filters, ordering, paging; the pandas frame of the fluent API.
frame = mlflow.search_runs(
    experiment_names=["mlflow-client"], filter_string="params.lr = '0.01' AND metrics.loss < 0.5"
)
assert list(frame["run_id"]) == [pid], frame
ordered = client.search_runs(
    [experiment.experiment_id], order_by=["attributes.run_name ASC"], max_results=100
)
assert [r.info.run_name for r in ordered] == ["child-run", "fails", "parent-run"], ordered
first = client.search_runs([experiment.experiment_id], max_results=2)
assert len(first) == 2 and first.token, first.token
rest = client.search_runs([experiment.experiment_id], max_results=2, page_token=first.token)
assert len(rest) == 1 and not rest.token
assert {r.info.run_id for r in first} | {r.info.run_id for r in rest} == {
    pid,
    child.info.run_id,
    failing.info.run_id,
}
tagged = client.search_runs([experiment.experiment_id], filter_string="tags.team LIKE 'fr%'")
assert [r.info.run_id for r in tagged] == [pid]

# Artifacts through the proxy: list and download.
listed = sorted((a.path, a.is_dir) for a in client.list_artifacts(pid))
assert listed == [("notes", True), ("report.json", False)], listed
assert [a.path for a in client.list_artifacts(pid, "notes")] == ["notes/readme.txt"]
with tempfile.TemporaryDirectory() as d:
    local = client.download_artifacts(pid, "notes", d)
    with open(os.path.join(local, "readme.txt")) as f:
        assert f.read() == "hello from mlflow\n"
assert mlflow.artifacts.load_dict(f"runs:/{pid}/report.json") == {"auc": 0.93}

# The registry, through MlflowClient.
client.create_registered_model("fraud", description="fraud detector")
version = client.create_model_version(
    "fraud", source=f"runs:/{pid}/model", run_id=pid, tags={"framework": "sklearn"}
)
assert version.version == "1", version
client.set_registered_model_alias("fraud", "champion", version.version)
champion = client.get_model_version_by_alias("fraud", "champion")
assert champion.version == "1" and champion.run_id == pid
assert client.get_registered_model("fraud").aliases == {"champion": "1"}
found = client.search_model_versions("name = 'fraud'")
assert [v.version for v in found] == ["1"]
models = client.search_registered_models("name LIKE 'fr%'")
assert [m.name for m in models] == ["fraud"], models
assert client.get_model_version_download_uri("fraud", "1").endswith(f"/{pid}/artifacts/model")
client.set_model_version_tag("fraud", "1", "validated", "true")
assert client.get_model_version("fraud", "1").tags["validated"] == "true"

# A missing run is MLflow's RESOURCE_DOES_NOT_EXIST.
try:
    client.get_run("0" * 32)
    raise AssertionError("a missing run was found")
except MlflowException as e:
    assert e.error_code == "RESOURCE_DOES_NOT_EXIST", e.error_code

# 16 threads: each logs into a run of its own and into one shared run.
threads, per_thread = 16, 25
shared = client.create_run(experiment.experiment_id, run_name="shared")
runs_logged += 1


def work(t):
    own = client.create_run(experiment.experiment_id, run_name=f"thread-{t}")
    for i in range(per_thread):
        client.log_batch(
            own.info.run_id,
            metrics=[Metric(f"m{k}", float(i * k), 0, i) for k in range(10)],
        )
        client.log_metric(shared.info.run_id, f"t{t}", float(i), step=i)
    client.log_batch(shared.info.run_id, params=[Param(f"p{t}", str(t))])
    client.set_terminated(own.info.run_id)
    return own.info.run_id


with ThreadPoolExecutor(threads) as pool:
    own_runs = list(pool.map(work, range(threads)))
runs_logged += threads
for rid in own_runs:
    assert len(client.get_metric_history(rid, "m3")) == per_thread
for t in range(threads):
    assert len(client.get_metric_history(shared.info.run_id, f"t{t}")) == per_thread

result = {
    "parent_run_id": pid,
    "child_run_id": child.info.run_id,
    "shared_run_id": shared.info.run_id,
    "threads": threads,
    "per_thread": per_thread,
    "runs_logged": runs_logged,
}
print(json.dumps(result), file=answer)
