"""mlops: the whole MLOps loop in process — version data, track experiments, train, register,
gate with policy-as-code, serve, monitor drift — on open formats and any storage.

The fluent API follows MLflow's names (``set_experiment``, ``start_run``, ``log_metric``,
``search_runs``, ``register_model``…) over one store per process (``set_store``; default
``$MLOPS_STORE`` or ``./mlops-data``). The classes (``Tracker``, ``Registry``, ``Datasets``,
``Server``, ``PolicyEngine``…) take a store URL or an ``mlops.Store`` for the client style.

Tables go in as any object exporting the Arrow PyCapsule interface (pyarrow, pandas ≥ 2.2,
polars, duckdb) and come out as ``mlops.Table``, which exports it too (``.to_pandas()``,
``.to_polars()``, ``.to_pyarrow()``). Arrays are NumPy's.
"""

from __future__ import annotations

import datetime
import os
from typing import Mapping, Optional, Union

from . import errors
from ._native import (
    DatasetVersion,
    Datasets,
    Decision,
    DriftReport,
    Experiment,
    HttpServer,
    MetricValue,
    Model,
    ModelVersion,
    PipelineReport,
    PolicyEngine,
    Profile,
    QualitySuite,
    RegisteredModel,
    Registry,
    Run,
    RunData,
    RunInfo,
    Server,
    Store,
    Table,
    Tracker,
    __version__,
    current_git_commit,
    detect,
    profile,
    verify_decision_log,
)
from .client import InferenceClient
from .errors import (
    AlreadyExists,
    BackendError,
    Conflict,
    Corrupt,
    InvalidArgument,
    MlopsError,
    NotFound,
    NotSupported,
    PermissionDenied,
    PolicyDenied,
    TimedOut,
    Unavailable,
)
from .fluent import (
    ActiveRun,
    active_run,
    end_run,
    get_datasets,
    get_registry,
    get_run,
    get_store,
    get_tracker,
    last_active_run,
    log_artifact,
    log_artifacts,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    register_model,
    search_runs,
    set_experiment,
    set_registry,
    set_store,
    set_tag,
    set_tags,
    start_run,
)
from . import fluent as _fluent
from . import _native

__all__ = [
    "ActiveRun",
    "AlreadyExists",
    "BackendError",
    "Conflict",
    "Corrupt",
    "DatasetVersion",
    "Datasets",
    "Decision",
    "DriftReport",
    "Experiment",
    "HttpServer",
    "InferenceClient",
    "InvalidArgument",
    "MetricValue",
    "MlopsError",
    "Model",
    "ModelVersion",
    "NotFound",
    "NotSupported",
    "PermissionDenied",
    "PipelineReport",
    "PolicyDenied",
    "PolicyEngine",
    "Profile",
    "QualitySuite",
    "RegisteredModel",
    "Registry",
    "Run",
    "RunData",
    "RunInfo",
    "Server",
    "Store",
    "Table",
    "TimedOut",
    "Tracker",
    "Unavailable",
    "__version__",
    "active_run",
    "current_git_commit",
    "detect",
    "end_run",
    "errors",
    "get_datasets",
    "get_registry",
    "get_run",
    "get_store",
    "get_tracker",
    "last_active_run",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "profile",
    "read_dataset",
    "register_model",
    "run_pipeline",
    "search_runs",
    "set_experiment",
    "set_registry",
    "set_store",
    "set_tag",
    "set_tags",
    "start_run",
    "train",
    "tune",
    "verify_decision_log",
    "write_dataset",
]

#: A training parameter: a number, a string, a list (``hidden=[64, 32]``) or None.
Param = Union[str, int, float, bool, list[int], tuple[int, ...], None]


def _experiment_name(experiment: Optional[str], default: str = "Default") -> str:
    """The experiment to work in: ``experiment``, else the active run's, else the one
    ``set_experiment`` chose, else ``default``."""
    if experiment is not None:
        return experiment
    current = active_run()
    experiment_id = current.info.experiment_id if current else _fluent._current_experiment_id()
    if experiment_id is None:
        return default
    return get_tracker().get_experiment(experiment_id).name


def train(
    data: object,
    target: str,
    model: str = "logistic",
    *,
    register: Optional[str] = None,
    experiment: Optional[str] = None,
    run_name: Optional[str] = None,
    seed: int = 42,
    validation_fraction: float = 0.2,
    registry: Optional[Registry] = None,
    tags: Optional[Mapping[str, str]] = None,
    **params: Param,
) -> Model:
    """Trains a candle model (``linear``, ``logistic``, ``softmax``, ``mlp``) on ``data`` — a
    table or a dataset reference (``"churn@3"``, recorded as the run's input and the model's
    lineage) — as a tracked run in the active experiment (a child of the active run, if any),
    and returns the model. ``register`` registers it under that name (in ``registry``, else
    ``set_registry``'s, else the store's). ``params`` are training parameters: ``epochs=30, learning_rate=0.1,
    hidden=[64, 32]``…
    """
    parent = active_run()
    return _native.train(
        data,
        target,
        model,
        tracker=get_tracker(),
        registry=registry if registry is not None else get_registry(),
        register=register,
        experiment=_experiment_name(experiment),
        run_name=run_name,
        parent_run_id=parent.info.run_id if parent is not None else None,
        seed=seed,
        validation_fraction=validation_fraction,
        params=dict(params),
        tags=dict(tags) if tags else None,
    )


def tune(
    data: object,
    target: str,
    space: Mapping[str, Union[str, list[Union[str, int, float]]]],
    model: str = "logistic",
    *,
    metric: str = "val_accuracy",
    strategy: str = "grid",
    trials: int = 10,
    seed: int = 42,
    goal: Optional[str] = None,
    parallelism: Optional[int] = None,
    experiment: Optional[str] = None,
    run_name: Optional[str] = None,
    validation_fraction: float = 0.2,
    **params: Param,
) -> dict[str, object]:
    """Hyper-parameter search over ``space`` (``{"learning_rate": [0.01, 0.1]}`` for a
    choice, ``{"learning_rate": "0.001..0.1:log"}`` for a range with ``strategy="random"``):
    a parent run (a child of the active run, if any) with one child run per trial. Returns the
    parent run's id, the best trial and every trial."""
    parent = active_run()
    return _native.tune(
        data,
        target,
        dict(space),
        model,
        tracker=get_tracker(),
        metric=metric,
        strategy=strategy,
        trials=trials,
        seed=seed,
        goal=goal,
        parallelism=parallelism,
        experiment=_experiment_name(experiment),
        run_name=run_name,
        parent_run_id=parent.info.run_id if parent is not None else None,
        validation_fraction=validation_fraction,
        params=dict(params),
    )


def load_model(model_uri: Union[str, os.PathLike[str]], registry: Optional[Registry] = None) -> Model:
    """A model from a directory (``Model.save``), the registry (``models:/churn@champion``;
    ``registry``, else the one in use) or the run that trained it (``runs:/<run_id>/model``)."""
    uri = os.fspath(model_uri)
    if uri.startswith("models:/"):
        return _native.load_model(uri, registry if registry is not None else get_registry())
    if uri.startswith("runs:/"):
        return _native.load_model(uri, tracker=get_tracker())
    return _native.load_model(uri)


def run_pipeline(
    path: Union[str, os.PathLike[str]],
    params: Optional[Mapping[str, Mapping[str, object]]] = None,
    *,
    registry: Optional[Registry] = None,
    experiment: Optional[str] = None,
    force: bool = False,
    only: Optional[list[str]] = None,
) -> PipelineReport:
    """Runs a pipeline file over the store in use: steps tracked (in ``experiment``, else the
    active one, else ``pipelines``, as the CLI) and cached; ``params`` override steps'
    ``with:`` values (``{"train": {"epochs": 5}}``); a governed ``registry`` (else
    ``set_registry``'s) gates its promotions."""
    return _native.run_pipeline(
        os.fspath(path),
        tracker=get_tracker(),
        registry=registry if registry is not None else get_registry(),
        params={k: dict(v) for k, v in params.items()} if params else None,
        experiment=_experiment_name(experiment, "pipelines"),
        force=force,
        only=only,
    )


def write_dataset(
    name: str,
    data: object,
    metadata: Optional[Mapping[str, str]] = None,
    message: str = "",
) -> DatasetVersion:
    """Writes ``data`` (any Arrow-exporting table) as the next version of dataset ``name`` in
    the store in use."""
    return get_datasets().write(name, data, dict(metadata) if metadata else None, message)


def read_dataset(
    reference: str,
    columns: Optional[list[str]] = None,
    as_of: Union[int, datetime.datetime, None] = None,
) -> Table:
    """Reads a dataset version (``"churn"``, ``"churn@3"``, or the latest ``as_of`` a time)
    from the store in use."""
    return get_datasets().read(reference, columns, as_of)
