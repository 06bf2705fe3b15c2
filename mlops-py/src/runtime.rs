//! The tokio runtime the bindings block on, rebuilt in a forked child: threads do not survive
//! `fork()`, so a runtime made before it would never run anything in the child (multiprocessing
//! forks by default on Linux). Every call checks the process id.

use std::sync::{Arc, Mutex, PoisonError};

use pyo3::prelude::*;

struct Owned {
    pid: u32,
    runtime: Arc<tokio::runtime::Runtime>,
}

static RUNTIME: Mutex<Option<Owned>> = Mutex::new(None);

/// The runtime of this process, made on first use and again after a fork.
pub(crate) fn runtime() -> PyResult<Arc<tokio::runtime::Runtime>> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(owned) = slot.as_ref()
        && owned.pid == pid
    {
        return Ok(Arc::clone(&owned.runtime));
    }
    if let Some(stale) = slot.take() {
        // The parent's runtime: its threads are not in this process, so dropping it would wait
        // for them forever. Forget it (its memory is the parent's copy).
        std::mem::forget(stale);
    }
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mlops")
            .enable_all()
            .build()
            .map_err(|e| {
                pyo3::exceptions::PyRuntimeError::new_err(format!(
                    "mlops could not start its runtime: {e}"
                ))
            })?,
    );
    *slot = Some(Owned {
        pid,
        runtime: Arc::clone(&runtime),
    });
    Ok(runtime)
}

/// Runs `future` to completion without the GIL (other Python threads run meanwhile).
pub(crate) fn block_on<F>(py: Python<'_>, future: F) -> PyResult<F::Output>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    let runtime = runtime()?;
    Ok(py.detach(|| runtime.block_on(future)))
}

/// Runs `future` on the runtime without the GIL, checking for Python signals every 100 ms: on
/// Ctrl-C (or any signal handler raising), `cancel` is cancelled, the future is awaited to its
/// end (a cancelled training run ends KILLED), and the signal's exception is raised.
pub(crate) fn block_on_interruptible<F>(
    py: Python<'_>,
    cancel: &mlops::CancelToken,
    future: F,
) -> PyResult<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let runtime = runtime()?;
    let mut handle = runtime.spawn(future);
    loop {
        let done = py.detach(|| {
            runtime.block_on(async {
                tokio::time::timeout(std::time::Duration::from_millis(100), &mut handle).await
            })
        });
        match done {
            Ok(Ok(output)) => return Ok(output),
            // A panic is a bug: re-raised as itself, PyO3 reports it as a PanicException
            // rather than an ordinary error the caller might handle.
            Ok(Err(join)) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Ok(Err(join)) => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                    "mlops: the task was cancelled: {join}"
                )));
            }
            Err(_elapsed) => {
                if let Err(signal) = py.check_signals() {
                    cancel.cancel();
                    let _ = py.detach(|| runtime.block_on(&mut handle));
                    return Err(signal);
                }
            }
        }
    }
}
