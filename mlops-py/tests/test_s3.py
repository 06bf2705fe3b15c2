"""The package on S3: the test command's moto server (MLOPS_TEST_S3_URL, AWS_* in the
environment), and the endpoint given as a store option instead."""

from __future__ import annotations

import os
import uuid

import pyarrow as pa
import pytest

import mlops

S3 = os.environ.get("MLOPS_TEST_S3_URL")
needs_s3 = pytest.mark.skipif(S3 is None, reason="./scripts/test starts the S3 server")


@needs_s3
def test_tracking_datasets_and_models_on_s3() -> None:
    url = f"{S3}/python-{uuid.uuid4().hex}"
    mlops.set_store(url)
    try:
        with mlops.start_run() as run:
            mlops.log_metric("loss", 0.25)
        mlops.write_dataset("d", pa.table({"x": [0.0, 1.0, 2.0, 3.0] * 10, "y": [False, True] * 20}))
        model = mlops.train("d", "y", epochs=2, register="m")
        assert model.version is not None
        # Another store object on the same URL reads it all back.
        again = mlops.Store(url)
        assert mlops.Tracker(again).get_run(run.info.run_id).data.metrics == {"loss": 0.25}
        assert mlops.Datasets(again).read("d@1").num_rows == 40
        assert mlops.load_model("models:/m/1", registry=mlops.Registry(again)).flavor == "candle"
    finally:
        mlops.set_store("memory://")


@needs_s3
def test_store_options_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = os.environ["AWS_ENDPOINT"]
    monkeypatch.setenv("AWS_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    url = f"{S3}/python-options-{uuid.uuid4().hex}"
    store = mlops.Store(url, options={"aws_endpoint": endpoint, "aws_allow_http": "true"})
    mlops.Datasets(store).write("d", pa.table({"a": [1]}))
    assert mlops.Datasets(store).read("d").num_rows == 1
