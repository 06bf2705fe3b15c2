"""Training candle models as tracked runs, predicting from frames, dicts and NumPy arrays,
model directories and registry URIs, hyper-parameter search, and serving in process and over
the Open Inference Protocol (our client and Triton's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import mlops


def test_train_tracks_registers_and_predicts(store: str, churn: pd.DataFrame) -> None:
    mlops.write_dataset("churn", churn)
    mlops.set_experiment("churn")
    model = mlops.train(
        "churn", "churned", "logistic", register="churn", epochs=30, learning_rate=0.1, seed=3
    )
    assert model.flavor == "candle"
    assert model.input_names == ["tenure", "charges", "plan"]
    assert 0.6 < model.metrics["val_accuracy"] <= 1.0
    assert len(model.history) == 30
    version = model.version
    assert version is not None and version.version == 1
    assert version.source == model.source
    assert version.lineage["datasets"][0]["name"] == "churn"
    run = mlops.get_run(model.run_id or "")
    assert run.info.status == "FINISHED"
    assert run.data.params["learning_rate"] == "0.1"
    assert run.inputs == ["datasets/churn@1"]
    card = model.card
    assert card is not None and card["flavor"] == "candle"

    out = model.predict(churn.head(5))
    assert out["label"].dtype == np.bool_ and out["label"].shape == (5,)
    assert out["probabilities"].shape == (5, 2)
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, rtol=1e-9)
    # The same rows as pyarrow, polars (string views), a dict of arrays, a categorical frame.
    for data in (
        pa.Table.from_pandas(churn.head(5)),
        pl.from_pandas(churn.head(5)),
        {c: churn.head(5)[c].to_numpy() for c in ("tenure", "charges", "plan")},
        churn.head(5).astype({"plan": "category"}),
    ):
        np.testing.assert_array_equal(model.predict(data)["label"], out["label"])


def test_numpy_matrices_follow_the_signature(store: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(y=x @ [1.0, -2.0, 0.5] + 3.0)
    model = mlops.train(frame, "y", "linear", epochs=60, learning_rate=0.05)
    matrix = model.predict(x[:10])
    by_name = model.predict({"a": x[:10, 0], "b": x[:10, 1], "c": x[:10, 2]})
    np.testing.assert_array_equal(matrix["prediction"], by_name["prediction"])
    assert np.abs(matrix["prediction"] - (x[:10] @ [1.0, -2.0, 0.5] + 3.0)).max() < 0.5
    # Fortran order and float32 are converted, not misread.
    np.testing.assert_allclose(
        model.predict(np.asfortranarray(x[:10]).astype(np.float32))["prediction"],
        matrix["prediction"],
        rtol=1e-4,
    )
    with pytest.raises(mlops.InvalidArgument, match="3 inputs"):
        model.predict(x[:, :2])
    with pytest.raises(mlops.InvalidArgument):
        model.predict({"a": x[:3, 0]})
    with pytest.raises(TypeError, match="data must be"):
        model.predict("not data")


def test_models_save_load_and_resolve_by_uri(store: str, churn: pd.DataFrame, tmp_path: Path) -> None:
    model = mlops.train(churn, "churned", "mlp", register="churn", epochs=5, hidden=[16, 8])
    model.save(tmp_path / "model")
    assert (tmp_path / "model" / "FLAVOR").read_text().strip() == "candle"
    loaded = mlops.load_model(tmp_path / "model")
    expected = model.predict(churn.head(20))
    np.testing.assert_array_equal(loaded.predict(churn.head(20))["label"], expected["label"])
    mlops.get_registry().set_registered_model_alias("churn", "champion", 1)
    by_alias = mlops.load_model("models:/churn@champion")
    np.testing.assert_allclose(
        by_alias.predict(churn.head(20))["probabilities"], expected["probabilities"]
    )
    with pytest.raises(mlops.NotFound):
        mlops.load_model("models:/churn@nobody")
    with pytest.raises(mlops.MlopsError):
        mlops.load_model(tmp_path / "missing")


def test_tune_runs_a_child_run_per_trial(store: str, churn: pd.DataFrame) -> None:
    result = mlops.tune(
        churn,
        "churned",
        {"learning_rate": [0.001, 0.1], "epochs": [2, 8]},
        "logistic",
        metric="val_accuracy",
        parallelism=2,
    )
    trials = result["trials"]
    assert isinstance(trials, list) and len(trials) == 4
    best = result["best"]
    assert isinstance(best, dict)
    assert best["metrics"]["val_accuracy"] == max(t["metrics"]["val_accuracy"] for t in trials)
    parent = mlops.get_run(str(result["parent_run_id"]))
    assert parent.data.params["best_trial"] in {"0", "1", "2", "3"}
    with pytest.raises(mlops.InvalidArgument):
        mlops.tune(churn, "churned", {"learning_rate": "0.1..0.2"}, strategy="grid")


def test_the_server_infers_routes_and_serves_http(store: str, churn: pd.DataFrame) -> None:
    first = mlops.train(churn, "churned", register="churn", epochs=5)
    second = mlops.train(churn, "churned", register="churn", epochs=40, learning_rate=0.1)
    assert first.version is not None and second.version is not None
    server = mlops.Server(registry=mlops.get_registry())
    server.load("churn", "models:/churn/1")
    server.load("churn", "models:/churn/2")
    assert {(m["name"], m["version"]) for m in server.models()} == {("churn", 1), ("churn", 2)}
    row = {
        "tenure": np.array([2.0, 50.0]),
        "charges": np.array([80.0, 30.0]),
        "plan": np.array(["pro", "basic"]),
    }
    out = server.infer("churn", row)
    np.testing.assert_array_equal(out["label"], second.predict(row)["label"])
    old = server.infer("churn", row, version=1)
    np.testing.assert_allclose(old["probabilities"], first.predict(row)["probabilities"])
    # All traffic to the canary, then back to the default (the last loaded, version 2).
    server.set_routing("churn", 2, canary_version=1, canary_percent=100)
    np.testing.assert_allclose(server.infer("churn", row)["probabilities"], old["probabilities"])
    server.clear_routing("churn")
    np.testing.assert_allclose(server.infer("churn", row)["probabilities"], out["probabilities"])
    with pytest.raises(mlops.InvalidArgument, match="canary_percent"):
        server.set_routing("churn", 1, canary_version=2)
    with pytest.raises(mlops.InvalidArgument, match="canary_percent"):
        server.set_routing("churn", 1, canary_version=2, canary_percent=101)
    meta = server.metadata("churn")
    assert [i["name"] for i in meta["inputs"]] == ["tenure", "charges", "plan"]
    # The protocol checks exact datatypes: int64 tenure is refused with the input's name.
    with pytest.raises(mlops.InvalidArgument, match="tenure"):
        server.infer("churn", {**row, "tenure": np.array([2, 50])})
    with pytest.raises(mlops.NotFound):
        server.infer("nobody", row)

    with server.serve() as http:
        assert http.running and http.url.startswith("http://127.0.0.1:")
        client = mlops.InferenceClient(http.url)
        assert client.live() and client.ready()
        remote = client.infer("churn", row)
        np.testing.assert_array_equal(remote["label"], out["label"])
        np.testing.assert_allclose(remote["probabilities"], out["probabilities"])
        with pytest.raises(mlops.NotFound):
            client.infer("nobody", row)

        import tritonclient.http as triton

        with triton.InferenceServerClient(http.url.removeprefix("http://")) as tc:
            inputs = []
            for name, value in row.items():
                dtype = "BYTES" if value.dtype.kind == "U" else "FP64"
                tensor = triton.InferInput(name, list(value.shape), dtype)
                tensor.set_data_from_numpy(value.astype(object) if dtype == "BYTES" else value)
                inputs.append(tensor)
            answer = tc.infer("churn", inputs)
            np.testing.assert_allclose(answer.as_numpy("probabilities"), out["probabilities"])
        assert "mlops_" in server.metrics()
    assert not http.running
    http.stop()
    server.unload("churn")
    assert server.models() == []


def test_model_objects_and_directories_serve(store: str, churn: pd.DataFrame, tmp_path: Path) -> None:
    model = mlops.train(churn, "churned", epochs=3)
    model.save(tmp_path / "m")
    server = mlops.Server()
    server.load_model("a", model)
    server.load_dir("b", tmp_path / "m", version=7)
    row = {"tenure": np.array([1.0]), "charges": np.array([50.0]), "plan": np.array(["plus"])}
    np.testing.assert_allclose(
        server.infer("a", row)["probabilities"], server.infer("b", row)["probabilities"]
    )
    with pytest.raises(mlops.NotSupported):
        server.load("a", "models:/x/1")


def test_a_runs_model_registers_loads_and_serves(store: str, churn: pd.DataFrame) -> None:
    model = mlops.train(churn, "churned", epochs=3)
    uri = f"runs:/{model.run_id}/model"
    version = mlops.register_model(uri, "from-run")
    assert version.run_id == model.run_id and version.source == model.source
    expected = model.predict(churn.head(4))["probabilities"]
    np.testing.assert_allclose(mlops.load_model(uri).predict(churn.head(4))["probabilities"], expected)
    server = mlops.Server(registry=mlops.get_registry())
    server.load("from-run", "models:/from-run/1")
    row = {c: churn.head(4)[c].to_numpy() for c in ("tenure", "charges", "plan")}
    np.testing.assert_allclose(server.infer("from-run", row)["probabilities"], expected)
    with mlops.start_run() as plain:
        mlops.log_metric("x", 1.0)
    with pytest.raises(mlops.InvalidArgument, match="logged no model"):
        mlops.register_model(f"runs:/{plain.info.run_id}/model", "nothing")
    with pytest.raises(mlops.NotSupported):
        mlops.load_model(f"runs:/{model.run_id}/elsewhere")
