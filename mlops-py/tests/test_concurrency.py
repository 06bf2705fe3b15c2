"""Threads and processes: the GIL is released around every call, so threads log in parallel and
lose nothing; a forked child (multiprocessing's default on Linux) rebuilds the runtime and the
tracker instead of deadlocking on the parent's."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import mlops

THREADS = 8
PER_THREAD = 10_000


def test_eight_threads_logging_ten_thousand_metrics_each_lose_nothing(store: str) -> None:
    tracker = mlops.get_tracker()
    run = tracker.create_run(run_name="threads")
    run_id = run.info.run_id
    errors: list[BaseException] = []

    def log(thread: int) -> None:
        try:
            for step in range(PER_THREAD):
                tracker.log_metric(run_id, f"thread{thread}", float(step * thread), step=step)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    workers = [threading.Thread(target=log, args=(t,)) for t in range(THREADS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    tracker.set_terminated(run_id)
    # A new tracker reads what the store holds, not the writer's memory.
    reread = mlops.Tracker(store)
    for t in range(THREADS):
        history = reread.get_metric_history(run_id, f"thread{t}")
        assert len(history) == PER_THREAD
        assert sorted(m.step for m in history) == list(range(PER_THREAD))
        assert all(m.value == float(m.step * t) for m in history)
    assert reread.get_run(run_id).data.metrics[f"thread{THREADS - 1}"] == float(
        (PER_THREAD - 1) * (THREADS - 1)
    )


def test_threads_making_the_first_call_together_do_not_deadlock(store: str) -> None:
    # Every thread's first call opens the same fresh tracker at once.
    tracker = mlops.Tracker(store)
    fresh = mlops.Tracker(store)
    start = threading.Barrier(THREADS)
    runs: list[str] = []
    errors: list[BaseException] = []

    def first_call() -> None:
        try:
            start.wait()
            run = fresh.create_run(run_name="t")
            fresh.log_metric(run.info.run_id, "x", 1.0)
            runs.append(run.info.run_id)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    workers = [threading.Thread(target=first_call) for _ in range(THREADS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert not any(w.is_alive() for w in workers), "threads deadlocked on first use"
    assert errors == []
    fresh.flush()
    assert all(tracker.get_run(r).data.metrics == {"x": 1.0} for r in runs)
    assert len(set(runs)) == THREADS


def _log_into_inherited_run(out: "multiprocessing.Queue[str]") -> None:
    # The parent's active run, store and tracker are inherited: logging must reach the run.
    run = mlops.active_run()
    assert run is not None
    mlops.log_metric("from_child", 3.0)
    mlops.get_tracker().flush()
    out.put(run.info.run_id)


def _run_to_completion(child: "multiprocessing.process.BaseProcess") -> None:
    """Starts a forked child and fails the test if it deadlocks or exits non-zero."""
    child.start()
    child.join(timeout=120)
    if child.is_alive():
        child.kill()
        raise AssertionError("the forked child deadlocked")
    assert child.exitcode == 0


def test_a_forked_child_logs_into_the_run_it_inherits(store: str) -> None:
    context = multiprocessing.get_context("fork")
    queue: "multiprocessing.Queue[str]" = context.Queue()
    with mlops.start_run(run_name="shared") as run:
        mlops.log_metric("from_parent", 1.0)
        child = context.Process(target=_log_into_inherited_run, args=(queue,))
        _run_to_completion(child)
        assert queue.get(timeout=5) == run.info.run_id
    metrics = mlops.Tracker(store).get_run(run.info.run_id).data.metrics
    assert metrics == {"from_parent": 1.0, "from_child": 3.0}


def _child(store: str, parent_run: str, out: "multiprocessing.Queue[str]") -> None:
    # The parent's runtime and tracker threads do not exist here: every call must still work.
    mlops.set_store(store)
    tracker = mlops.get_tracker()
    assert tracker.get_run(parent_run).info.status == "FINISHED"
    with mlops.start_run(run_name="child") as run:
        mlops.log_metric("from_child", 2.0)
    out.put(run.info.run_id)


def test_a_forked_child_uses_the_module_without_deadlock(store: str) -> None:
    # Start the runtime and the tracker's background flusher in the parent first.
    with mlops.start_run(run_name="parent") as parent:
        mlops.log_metric("from_parent", 1.0)
    context = multiprocessing.get_context("fork")
    queue: "multiprocessing.Queue[str]" = context.Queue()
    child = context.Process(target=_child, args=(store, parent.info.run_id, queue))
    _run_to_completion(child)
    child_run = queue.get(timeout=5)
    # The parent still works, and reads what the child wrote.
    assert mlops.Tracker(store).get_run(child_run).data.metrics == {"from_child": 2.0}
    with mlops.start_run(run_name="after-fork"):
        mlops.log_metric("still", 1.0)


def test_a_forked_child_can_serve_and_train(store: str, tmp_path: Path) -> None:
    import numpy as np
    import pyarrow as pa

    data = pa.table({"x": np.linspace(-1, 1, 50), "y": np.linspace(-1, 1, 50) > 0})
    model = mlops.train(data, "y", "logistic", epochs=5)
    model.save(tmp_path / "model")

    def work() -> None:
        server = mlops.Server()
        server.load_dir("m", tmp_path / "model")
        out = server.infer("m", {"x": np.array([0.5])})
        assert out["label"].tolist() in ([True], [False])
        mlops.train(data, "y", "logistic", epochs=2)

    context = multiprocessing.get_context("fork")
    child = context.Process(target=work)
    child.start()
    child.join(timeout=120)
    if child.is_alive():
        child.kill()
        raise AssertionError("the forked child deadlocked")
    assert child.exitcode == 0
