"""Exceptions: one base class, a subclass per category that is also the fitting builtin, the
Rust error's message, and TypeErrors naming the argument."""

from __future__ import annotations

import pytest

import mlops
from mlops import errors


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.NotFound, LookupError),
        (errors.AlreadyExists, ValueError),
        (errors.InvalidArgument, ValueError),
        (errors.Conflict, RuntimeError),
        (errors.PolicyDenied, PermissionError),
        (errors.PermissionDenied, PermissionError),
        (errors.NotSupported, NotImplementedError),
        (errors.Unavailable, ConnectionError),
        (errors.TimedOut, TimeoutError),
        (errors.Corrupt, RuntimeError),
        (errors.BackendError, OSError),
    ],
)
def test_every_category_is_an_mlops_error_and_its_builtin(
    cls: type[Exception], builtin: type[Exception]
) -> None:
    assert issubclass(cls, mlops.MlopsError)
    assert issubclass(cls, builtin)
    assert getattr(mlops, cls.__name__) is cls


def test_errors_carry_the_category_and_the_message(store: str) -> None:
    tracker = mlops.get_tracker()
    with pytest.raises(mlops.NotFound, match="no-such-experiment"):
        tracker.get_experiment_by_name("no-such-experiment")
    tracker.create_experiment("taken")
    with pytest.raises(mlops.AlreadyExists) as info:
        tracker.create_experiment("taken")
    assert info.value.kind == "already_exists"
    assert "taken" in str(info.value)
    with pytest.raises(ValueError, match="stage"):
        mlops.get_registry().transition_model_version_stage("m", 1, "Nowhere")


def test_wrong_python_types_are_type_errors_naming_the_argument(store: str) -> None:
    run = mlops.start_run()
    tracker = mlops.get_tracker()
    with pytest.raises(TypeError, match="value"):
        tracker.log_metric(run.info.run_id, "m", "high")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="metrics"):
        tracker.log_batch(run.info.run_id, metrics=[1.0])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data must be a table"):
        mlops.get_datasets().write("d", {"a": [1]})
    with pytest.raises(TypeError, match="store must be a store URL"):
        mlops.Tracker(42)  # type: ignore[arg-type]


def test_a_params_value_is_written_once(store: str) -> None:
    with mlops.start_run():
        mlops.log_param("lr", 0.1)
        mlops.log_param("lr", 0.1)
        with pytest.raises(mlops.InvalidArgument):
            mlops.log_param("lr", 0.2)


def test_param_and_tag_values_are_written_as_str_writes_them(store: str) -> None:
    import numpy as np

    with mlops.start_run() as run:
        mlops.log_params({"hidden": [64, 32], "n": np.int64(3), "on": np.bool_(True), "none": None})
        mlops.set_tag("ratio", np.float32(0.5))
    got = mlops.get_run(run.info.run_id).data
    assert got.params == {"hidden": "[64, 32]", "n": "3", "on": "True", "none": "None"}
    assert got.tags["ratio"] == "0.5"
