//! End-to-end examples of the mlops SDK. Each opens with the command that runs it.
//!
//! | example | what it shows | command |
//! |---|---|---|
//! | `quickstart` | the main job: track a training run, register the model, promote it with an alias, resolve `models:/…@champion` and predict | `cargo run --release --example quickstart` |
