"""MLflow's fluent tracking API over one process-wide store: ``set_store``, ``set_experiment``,
``start_run`` (a context manager), ``log_*``, ``end_run``, ``search_runs``.

Active runs are per thread, as in MLflow: a thread sees the runs it started. Threads that log
into a run started elsewhere pass ``run_id=``.
"""

from __future__ import annotations

import atexit
import os
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Mapping, Optional, Union

from . import _native
from .errors import InvalidArgument

if TYPE_CHECKING:
    from ._native import Datasets, Registry, Run, RunData, RunInfo, Store, Table, Tracker

__all__ = [
    "ActiveRun",
    "active_run",
    "end_run",
    "get_datasets",
    "get_registry",
    "get_run",
    "get_store",
    "get_tracker",
    "last_active_run",
    "log_artifact",
    "log_artifacts",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "register_model",
    "search_runs",
    "set_experiment",
    "set_registry",
    "set_store",
    "set_tag",
    "set_tags",
    "start_run",
]

#: The store used until ``set_store`` is called: ``$MLOPS_STORE``, else ``./mlops-data``.
DEFAULT_STORE = "./mlops-data"

#: Param and tag values: str, or anything else, written as ``str()`` writes it (as MLflow does).
Scalar = object


class _State:
    """The process-wide store and the objects over it, made on first use."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.url: Optional[str] = None
        self.store: Optional[Store] = None
        self.tracker: Optional[Tracker] = None
        self.registry: Optional[Registry] = None
        self.datasets: Optional[Datasets] = None
        self.experiment_id: Optional[str] = None
        self.last_run_id: Optional[str] = None


_state = _State()
_local = threading.local()


def _stack() -> list[ActiveRun]:
    stack: Optional[list[ActiveRun]] = getattr(_local, "stack", None)
    if stack is None:
        stack = []
        _local.stack = stack
    return stack


def set_store(url: Union[str, Store], options: Optional[Mapping[str, str]] = None) -> None:
    """Uses ``url`` (a directory, ``memory://``, ``s3://bucket/prefix``, ``az://…``,
    ``gs://…``; ``options`` for the backend, e.g. ``{"aws_endpoint": …}``) or an
    ``mlops.Store`` from now on; the active experiment is forgotten. (MLflow's
    ``set_tracking_uri``.) What was logged so far is made durable first; changing stores with
    a run active is ``InvalidArgument``."""
    if _stack():
        raise InvalidArgument(
            f"run {_stack()[-1].info.run_id} is active in the current store; end it first"
        )
    if isinstance(url, _native.Store):
        store = url
    else:
        store = _native.Store(url, dict(options) if options else None)
    _native.flush_all()
    with _state.lock:
        _state.url = store.url
        _state.store = store
        _state.tracker = None
        _state.registry = None
        _state.datasets = None
        _state.experiment_id = None
        _state.last_run_id = None


def get_store() -> Store:
    """The store in use, opened on first use (``$MLOPS_STORE``, else ``./mlops-data``)."""
    with _state.lock:
        if _state.store is None:
            _state.url = os.environ.get("MLOPS_STORE") or DEFAULT_STORE
            _state.store = _native.Store(_state.url)
        return _state.store


def get_tracker() -> Tracker:
    """The tracker over the store in use."""
    tracker = _state.tracker  # the common case, without the lock
    if tracker is not None:
        return tracker
    with _state.lock:
        if _state.tracker is None:
            _state.tracker = _native.Tracker(get_store())
        return _state.tracker


def set_registry(registry: Optional[Registry]) -> None:
    """Makes ``registry`` (say, one governed by a ``PolicyEngine``) the one ``register_model``,
    ``train(register=)`` and ``load_model`` use; ``None`` goes back to the store's own."""
    with _state.lock:
        _state.registry = registry


def get_registry() -> Registry:
    """The registry in use: ``set_registry``'s, else the store's own (ungoverned)."""
    with _state.lock:
        if _state.registry is None:
            _state.registry = _native.Registry(get_store())
        return _state.registry


def get_datasets() -> Datasets:
    """The datasets of the store in use."""
    with _state.lock:
        if _state.datasets is None:
            _state.datasets = _native.Datasets(get_store())
        return _state.datasets


def set_experiment(
    experiment_name: Optional[str] = None, experiment_id: Optional[str] = None
) -> _native.Experiment:
    """Makes an experiment the active one (created when the name is new) and returns it."""
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidArgument("give exactly one of experiment_name and experiment_id")
    tracker = get_tracker()
    if experiment_name is not None:
        experiment = tracker.get_experiment(tracker.get_or_create_experiment(experiment_name))
    else:
        assert experiment_id is not None
        experiment = tracker.get_experiment(experiment_id)
    with _state.lock:
        _state.experiment_id = experiment.experiment_id
    return experiment


class ActiveRun:
    """The run ``start_run`` started. As a context manager it ends the run on exit: FINISHED,
    or FAILED when an exception leaves the block (which still propagates)."""

    def __init__(self, run: Run) -> None:
        self._run = run

    @property
    def info(self) -> RunInfo:
        """Identity and state, as when the run started."""
        return self._run.info

    @property
    def data(self) -> RunData:
        """Metrics, params and tags, as when the run started (``get_run`` for the latest)."""
        return self._run.data

    @property
    def inputs(self) -> list[str]:
        """Dataset versions it read, as when it started."""
        return self._run.inputs

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        _end(self.info.run_id, "FINISHED" if exc_type is None else "FAILED")

    def __repr__(self) -> str:
        return f"<ActiveRun: run_id={self.info.run_id!r}, run_name={self.info.run_name!r}>"


def start_run(
    run_id: Optional[str] = None,
    experiment_id: Optional[str] = None,
    run_name: Optional[str] = None,
    nested: bool = False,
    tags: Optional[Mapping[str, Scalar]] = None,
    parent_run_id: Optional[str] = None,
) -> ActiveRun:
    """Starts a run (or resumes ``run_id``) and makes it this thread's active run.

    With an active run already, pass ``nested=True`` to start a child of it (its parent is
    recorded); otherwise that is ``InvalidArgument``, as in MLflow."""
    stack = _stack()
    if stack and not nested:
        raise InvalidArgument(
            f"run {stack[-1].info.run_id} is already active; end it with end_run() or start "
            "this one with nested=True"
        )
    tracker = get_tracker()
    if run_id is not None:
        # Resuming, as MLflow does: an ended run is RUNNING again; tags are added.
        if tracker.get_run(run_id).info.status != "RUNNING":
            tracker.update_run(run_id, status="RUNNING", name=run_name)
        elif run_name is not None:
            tracker.update_run(run_id, name=run_name)
        if tags:
            tracker.log_batch(run_id, tags=dict(tags))
        run = tracker.get_run(run_id)
    else:
        parent = parent_run_id or (stack[-1].info.run_id if stack else None)
        with _state.lock:
            experiment = experiment_id or _state.experiment_id
        run = tracker.create_run(
            experiment_id=experiment,
            run_name=run_name,
            tags=dict(tags) if tags else None,
            parent_run_id=parent,
        )
    active = ActiveRun(run)
    stack.append(active)
    return active


def active_run() -> Optional[ActiveRun]:
    """This thread's innermost active run, if any."""
    stack = _stack()
    return stack[-1] if stack else None


def last_active_run() -> Optional[Run]:
    """The active run, else the run this process ended last (re-read), if any."""
    current = active_run()
    if current is not None:
        return get_tracker().get_run(current.info.run_id)
    with _state.lock:
        last = _state.last_run_id
    return get_tracker().get_run(last) if last is not None else None


def end_run(status: str = "FINISHED") -> None:
    """Ends this thread's active run with ``status`` (FINISHED, FAILED, KILLED) and makes what
    it logged durable. Without an active run it does nothing."""
    stack = _stack()
    if stack:
        _end(stack[-1].info.run_id, status)


def _end(run_id: str, status: str) -> None:
    """Ends ``run_id`` and, first, any run started inside it that is still active (a context
    manager exiting out of order). A run this thread did not start is ended all the same."""
    stack = _stack()
    tracker = get_tracker()
    if all(r.info.run_id != run_id for r in stack):
        tracker.set_terminated(run_id, status)
    else:
        while stack:
            run = stack.pop()
            tracker.set_terminated(run.info.run_id, status)
            if run.info.run_id == run_id:
                break
    with _state.lock:
        _state.last_run_id = run_id


def _run(run_id: Optional[str]) -> str:
    """The run to log into: ``run_id``, else the active run, else a new one (MLflow's
    auto-start)."""
    if run_id is not None:
        return run_id
    current = active_run()
    if current is None:
        current = start_run()
    return current.info.run_id


def log_param(key: str, value: Scalar, *, run_id: Optional[str] = None) -> Scalar:
    """Logs a param (write-once); returns the value."""
    get_tracker().log_param(_run(run_id), key, value)
    return value


def log_params(params: Mapping[str, Scalar], *, run_id: Optional[str] = None) -> None:
    """Logs params at once."""
    get_tracker().log_batch(_run(run_id), params=dict(params))


def log_metric(
    key: str,
    value: float,
    step: Optional[int] = None,
    *,
    timestamp: Optional[int] = None,
    run_id: Optional[str] = None,
) -> None:
    """Appends a metric value at ``step`` (0 when omitted); ``timestamp`` in ms (now when
    omitted)."""
    get_tracker().log_metric(_run(run_id), key, value, timestamp, step)


def log_metrics(
    metrics: Mapping[str, float],
    step: Optional[int] = None,
    *,
    timestamp: Optional[int] = None,
    run_id: Optional[str] = None,
) -> None:
    """Appends several metric values at ``step``."""
    get_tracker().log_batch(_run(run_id), metrics=dict(metrics), step=step or 0, timestamp=timestamp)


def set_tag(key: str, value: Scalar, *, run_id: Optional[str] = None) -> None:
    """Sets a run tag (the last value wins)."""
    get_tracker().set_tag(_run(run_id), key, value)


def set_tags(tags: Mapping[str, Scalar], *, run_id: Optional[str] = None) -> None:
    """Sets several run tags."""
    get_tracker().log_batch(_run(run_id), tags=dict(tags))


def log_artifact(
    local_path: Union[str, os.PathLike[str]],
    artifact_path: Optional[str] = None,
    *,
    run_id: Optional[str] = None,
) -> None:
    """Stores a local file as an artifact of the run."""
    get_tracker().log_artifact(_run(run_id), os.fspath(local_path), artifact_path)


def log_artifacts(
    local_dir: Union[str, os.PathLike[str]],
    artifact_path: Optional[str] = None,
    *,
    run_id: Optional[str] = None,
) -> None:
    """Stores every file under a local folder as artifacts of the run."""
    get_tracker().log_artifacts(_run(run_id), os.fspath(local_dir), artifact_path)


def log_input(
    dataset: Union[str, _native.DatasetVersion],
    context: Optional[str] = None,
    *,
    run_id: Optional[str] = None,
) -> None:
    """Records that the run read a dataset version: a ``DatasetVersion`` or a reference
    (``"name"`` for the latest, ``"name@3"``)."""
    reference = dataset if isinstance(dataset, str) else dataset.reference()
    get_tracker().log_input(_run(run_id), reference, context)


def get_run(run_id: str) -> Run:
    """A run, as stored now."""
    return get_tracker().get_run(run_id)


def search_runs(
    experiment_ids: Optional[list[str]] = None,
    filter_string: str = "",
    *,
    order_by: Optional[list[str]] = None,
    max_results: int = 100_000,
    experiment_names: Optional[list[str]] = None,
) -> Table:
    """Runs matching MLflow's filter grammar as a table (``.to_pandas()``, ``.to_polars()``,
    or any Arrow consumer): in the active experiment unless ids or names are given."""
    tracker = get_tracker()
    ids = list(experiment_ids or [])
    for name in experiment_names or []:
        ids.append(tracker.get_experiment_by_name(name).experiment_id)
    if not ids:
        with _state.lock:
            current = _state.experiment_id
        ids = [current if current is not None else tracker.get_or_create_experiment("Default")]
    return tracker.search_runs(ids, filter_string, order_by, max_results)


def register_model(
    model_uri: str, name: str, tags: Optional[Mapping[str, Scalar]] = None
) -> _native.ModelVersion:
    """Registers ``model_uri`` as a new version of ``name`` (in ``set_registry``'s registry,
    else the store's), creating the registered model when needed. ``runs:/<run_id>/model`` is
    the model ``train`` logged in that run; any other URI is recorded as the version's source
    as it is."""
    return get_registry().register_model(
        model_uri, name, dict(tags) if tags else None, tracker=get_tracker()
    )



def _current_experiment_id() -> Optional[str]:
    """The experiment ``set_experiment`` made active, if any."""
    with _state.lock:
        return _state.experiment_id


def _at_exit() -> None:
    """At interpreter exit, as MLflow does: end this thread's active runs FINISHED, and make
    what every tracker logged durable."""
    try:
        while _stack():
            end_run()
    finally:
        _native.flush_all()


def _before_fork() -> None:
    """A forked child reopens the store: what the parent logged must be there to see (the run
    it inherits as active, above all)."""
    try:
        _native.flush_all()
    except Exception:  # noqa: BLE001 - a fork must not fail for it
        pass


atexit.register(_at_exit)
os.register_at_fork(before=_before_fork)
