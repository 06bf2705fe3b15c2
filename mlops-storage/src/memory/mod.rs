//! In-memory reference implementations.

mod registry;
mod store;
mod tracker;

pub use registry::MemoryRegistry;
pub use store::MemoryStore;
pub use tracker::MemoryTracker;

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, recovering the data if a panicking thread poisoned it: every critical section
/// validates before it mutates, so the state is consistent even then.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
