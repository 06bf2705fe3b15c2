//! [`ObjectStoreStore`]: the durable [`Store`](mlops_core::Store) over any `object_store` backend.

mod gc;
mod open;
mod store;
mod tree;

pub use gc::{GcOptions, GcReport};
pub use open::{DEFAULT_STORE, StoreUrl};
pub use store::ObjectStoreStore;
