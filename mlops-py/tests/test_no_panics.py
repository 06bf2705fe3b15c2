"""Bad input to every entry point: each call returns or raises an ordinary exception (an
MlopsError, TypeError, ValueError…), never PyO3's PanicException — which derives from
BaseException, so it escapes the `except Exception` below and fails the test."""

from __future__ import annotations

import functools
import inspect
import math
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import pytest

import mlops

BAD: list[object] = [
    None,
    0,
    -1,
    2**70,
    math.nan,
    math.inf,
    "",
    "\x00",
    "../../etc",
    "models:/",
    "a" * 10_000,
    "ü/@:*?",
    b"\xff\xfe",
    [],
    [None],
    {},
    {"": None},
    {"k": object()},
    object(),
    np.array([]),
    np.array([[1.0, math.nan]]),
    np.array(["x"], dtype=object),
    pa.table({}),
]


def positional_arity(f: Callable[..., Any]) -> int:
    if isinstance(f, functools.partial):
        f = f.func
    try:
        parameters = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return 2
    return sum(
        1
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
    )


def calls(f: Callable[..., Any]) -> Iterator[tuple[Any, ...]]:
    arity = positional_arity(f)
    for value in BAD:
        for n in range(arity + 1):
            yield (value,) * n
        # One bad value among plausible ones.
        for i in range(arity):
            args: list[object] = ["m"] * arity
            args[i] = value
            yield tuple(args)


def exercise(f: Callable[..., Any]) -> int:
    count = 0
    for args in calls(f):
        try:
            result = f(*args)
        except Exception:  # noqa: BLE001 - any ordinary exception is a fine answer
            pass
        else:
            if isinstance(result, mlops.HttpServer):
                result.stop()
        count += 1
    return count


@pytest.fixture(autouse=True)
def inside_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative paths among the bad values land in the test's own folder."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


@pytest.fixture
def objects(store: str, tmp_path: Path) -> dict[str, object]:
    data = pa.table({"x": np.linspace(-1, 1, 40), "y": np.linspace(-1, 1, 40) > 0})
    model = mlops.train(data, "y", epochs=2, register="m")
    mlops.write_dataset("d", data)
    registry = mlops.get_registry()
    server = mlops.Server(registry=registry)
    server.load_model("m", model)
    with mlops.start_run() as run:
        mlops.log_metric("x", 1.0)
    return {
        "store": mlops.get_store(),
        "tracker": mlops.get_tracker(),
        "registry": registry,
        "datasets": mlops.get_datasets(),
        "model": model,
        "server": server,
        "engine": mlops.PolicyEngine(library=True),
        "profile": mlops.profile(data),
        "report": mlops.detect(data, data),
        "suite": mlops.QualitySuite.from_dict({"name": "s", "expectations": []}),
        "table": mlops.read_dataset("d"),
        "run": mlops.get_run(run.info.run_id),
        "version": registry.get_model_version("m", 1),
        "http": server.serve(),
    }


def public_methods(obj: object) -> Iterator[Callable[..., Any]]:
    for name in dir(obj):
        if name.startswith("_") and name not in ("__arrow_c_stream__",):
            continue
        attr = getattr(obj, name, None)
        if callable(attr) and not isinstance(attr, type):
            yield attr


def test_every_method_survives_bad_input(objects: dict[str, object]) -> None:
    total = 0
    for obj in objects.values():
        for method in public_methods(obj):
            if getattr(method, "__name__", "") in ("stop",):
                continue
            total += exercise(method)
    http = objects["http"]
    assert isinstance(http, mlops.HttpServer)
    http.stop()
    assert total > 5000


def test_every_function_and_constructor_survives_bad_input(store: str) -> None:
    native = mlops._native
    tracker = mlops.get_tracker()
    total = 0
    for name in native.__all__:
        f = getattr(native, name)
        if name in ("train", "tune", "run_pipeline"):
            # Their tracker is keyword-only: give it, so the bad values reach Rust.
            total += exercise(functools.partial(f, tracker=tracker))
        elif callable(f):
            total += exercise(f)
    for name in ("set_experiment", "start_run", "log_param", "log_params", "log_metric",
                 "log_metrics", "set_tag", "set_tags", "log_artifact", "log_artifacts",
                 "log_input", "search_runs", "register_model", "load_model", "write_dataset",
                 "read_dataset", "train", "tune", "run_pipeline", "detect", "profile"):
        total += exercise(getattr(mlops, name))
        while mlops.active_run() is not None:
            mlops.end_run()
    assert total > 1000
