//! # mlops-testkit
//!
//! Conformance suites for the I/O traits of [`mlops_core`]. Every implementation — in-memory,
//! object-store backed, MLflow over REST — and every decorator or `Arc`/`Box` wrapper calls the
//! suite's `run_all` in its tests, so all of them share one set of semantics.
//!
//! Each module has one `pub async fn` per contract clause, taking `&dyn Trait`, and a `run_all`
//! that runs them in order. The checks assert with messages that name the clause; a failure is
//! a test failure.
//!
//! | module | trait | extra input |
//! |---|---|---|
//! | [`store`] | [`Store`](mlops_core::Store) | a tamper hook that corrupts a stored blob |
//! | [`tracker`] | [`Tracker`](mlops_core::Tracker) | — |
//! | [`registry`] | [`Registry`](mlops_core::Registry) | — |
//! | [`online`] | [`OnlineStore`](mlops_core::OnlineStore) | — |
//!
//! [`rng`] is a deterministic generator for test data; [`python`] finds and runs the Python
//! reference tools (`MLOPS_TEST_PYTHON`) that tests compare numbers against.
//!
//! The clauses that exercise concurrency run real OS threads, each driving its futures on the
//! caller's tokio runtime, so the suites must be called from a multi-threaded runtime
//! (`#[tokio::test(flavor = "multi_thread")]`).
//!
//! ```ignore
//! // In a test of mlops-storage (which depends on this crate):
//! # async fn example() {
//! use std::sync::Arc;
//! use mlops_storage::MemoryStore;
//!
//! let store = Arc::new(MemoryStore::new());
//! let hook = store.clone();
//! let tamper = move |d| { let s = hook.clone(); Box::pin(async move { s.tamper_with(&d) }) as _ };
//! mlops_testkit::store::run_all(store.as_ref(), &tamper).await;
//! # }
//! ```

// A conformance suite exists to assert: panicking with a message is how it reports a failure.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod online;
pub mod python;
pub mod registry;
pub mod rng;
pub mod store;
pub mod tracker;

use std::future::Future;

/// A name no other clause or run of the suite uses: `<prefix>-<32 hex>`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", mlops_core::RunId::generate())
}

/// Runs `f(0)`, …, `f(n - 1)` on `n` OS threads at once, each driving its future on the current
/// tokio runtime, and returns the results in index order.
///
/// # Panics
///
/// Outside a multi-threaded tokio runtime, or when a task panics.
pub fn in_parallel<T, F, Fut>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut + Sync,
    Fut: Future<Output = T>,
    T: Send,
{
    let handle =
        tokio::runtime::Handle::try_current().expect("the conformance suites need a tokio runtime");
    assert_eq!(
        handle.runtime_flavor(),
        tokio::runtime::RuntimeFlavor::MultiThread,
        "run the conformance suites under #[tokio::test(flavor = \"multi_thread\")]"
    );
    let barrier = std::sync::Barrier::new(n);
    let run = || {
        std::thread::scope(|s| {
            let threads: Vec<_> = (0..n)
                .map(|i| {
                    let (f, handle, barrier) = (&f, handle.clone(), &barrier);
                    s.spawn(move || {
                        let fut = f(i);
                        // Line the threads up so their first calls really race.
                        barrier.wait();
                        handle.block_on(fut)
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    tokio::task::block_in_place(run)
}
