"""Datasets: any Arrow-exporting frame in (pyarrow, pandas, polars, an mlops Table), versions
out as Arrow tables any of them read — by number, by time, projected."""

from __future__ import annotations

import datetime
import time

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import mlops


def test_pyarrow_pandas_and_polars_frames_write_versions(store: str) -> None:
    datasets = mlops.get_datasets()
    v1 = datasets.write("events", pa.table({"id": [1, 2, 3], "kind": ["a", "b", "a"]}))
    v2 = datasets.write("events", pd.DataFrame({"id": [4, 5], "kind": ["c", "d"]}))
    v3 = datasets.write(
        "events", pl.DataFrame({"id": [6], "kind": ["e"], "score": [0.5]}), metadata={"source": "polars"}
    )
    assert [v.version for v in (v1, v2, v3)] == [1, 2, 3]
    assert v3.metadata == {"source": "polars"}
    assert v3.reference() == "events@3"
    assert [v.version for v in datasets.log("events")] == [1, 2, 3]
    assert [v.name for v in datasets.list()] == ["events"]
    assert datasets.version("events").version == 3
    diff = datasets.diff("events", 2, 3)
    assert [f["name"] for f in diff["added"]] == ["score"]
    stats = v1.statistics()
    assert stats["id"]["min"] == 1 and stats["id"]["max"] == 3 and stats["id"]["null_count"] == 0


def test_reads_are_arrow_for_every_library(store: str) -> None:
    frame = pd.DataFrame({"x": np.arange(1000, dtype="float64"), "tag": ["t"] * 1000})
    mlops.write_dataset("big", frame, message="first")
    table = mlops.read_dataset("big")
    assert table.num_rows == 1000 and len(table) == 1000
    assert table.column_names == ["x", "tag"]
    pd.testing.assert_frame_equal(table.to_pandas(), frame)
    assert pa.table(table).column("x").to_pylist()[:3] == [0.0, 1.0, 2.0]
    assert pl.DataFrame(table.to_pyarrow()).shape == (1000, 2)
    assert table.to_polars()["x"].sum() == frame["x"].sum()
    projected = mlops.read_dataset("big@1", columns=["tag"])
    assert projected.column_names == ["tag"]
    # An mlops Table is itself a valid input.
    assert mlops.write_dataset("copy", table).rows == 1000


def test_reads_travel_in_time(store: str) -> None:
    mlops.write_dataset("t", pa.table({"v": [1]}))
    between = datetime.datetime.now()
    time.sleep(0.02)
    mlops.write_dataset("t", pa.table({"v": [2]}))
    assert mlops.read_dataset("t").to_pyarrow().column("v").to_pylist() == [2]
    assert mlops.read_dataset("t", as_of=between).to_pyarrow().column("v").to_pylist() == [1]
    ms = int(between.timestamp() * 1000)
    assert mlops.get_datasets().version("t", as_of=ms).version == 1
    with pytest.raises(mlops.InvalidArgument, match="as_of"):
        mlops.read_dataset("t@1", as_of=ms)
    with pytest.raises(mlops.NotFound):
        mlops.get_datasets().version("t", as_of=0)


def test_schema_checks_and_conditional_writes(store: str) -> None:
    datasets = mlops.get_datasets()
    datasets.write("s", pa.table({"a": [1]}))
    with pytest.raises(mlops.InvalidArgument):
        datasets.write("s", pa.table({"b": ["x"]}), schema_must_match=True)
    with pytest.raises(mlops.Conflict):
        datasets.write("s", pa.table({"a": [2]}), if_latest=7)
    assert datasets.write("s", pa.table({"a": [2]}), if_latest=1).version == 2
    with pytest.raises(mlops.NotFound):
        mlops.read_dataset("missing")
    with pytest.raises(mlops.InvalidArgument):
        mlops.read_dataset("s@0")
    with pytest.raises(mlops.InvalidArgument):
        mlops.read_dataset("s", columns=["nope"])
