//! `mlops ui`: the web UI over the store, until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use mlops::storage::{StoreRegistry, StoreTracker};
use mlops::{Result, Store};

/// `mlops ui` arguments.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// Address to listen on (127.0.0.1: only this machine; the UI has no accounts)
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0 picks a free one; the address is printed)
    #[arg(long, default_value_t = 5000)]
    port: u16,
    /// Require the token in this file: browsers log in once (a cookie), API clients send
    /// `Authorization: Bearer <token>`
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Without a token, the UI answers only requests addressed to localhost, 127.0.0.1, [::1]
    /// or --host (a defence against DNS rebinding); name other host names here. Repeatable
    #[arg(long = "allowed-host", value_name = "NAME")]
    allowed_hosts: Vec<String>,
}

/// Serves the UI until Ctrl-C or SIGTERM, then drains requests in flight.
pub async fn ui(args: &UiArgs, store: Arc<dyn Store>) -> Result<bool> {
    // Every request reads; replaying other writers at most once a second keeps a page from
    // listing the store's logs each time (what they log shows within a second).
    let options = crate::quiet().with_refresh_interval(std::time::Duration::from_secs(1));
    let tracker = Arc::new(StoreTracker::open(store.clone(), options).await?);
    let registry = Arc::new(StoreRegistry::new(store.clone()));
    let mut ui = mlops_ui::Ui::new(tracker, registry).with_store(store);
    match &args.token_file {
        Some(file) => ui = ui.with_token(crate::server::read_token(file)?),
        None => {
            let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
                .into_iter()
                .map(String::from)
                .collect();
            let bound = args.host.trim_start_matches('[').trim_end_matches(']');
            if !matches!(bound, "0.0.0.0" | "::") {
                hosts.push(if bound.contains(':') {
                    format!("[{bound}]")
                } else {
                    bound.to_string()
                });
            }
            hosts.extend(args.allowed_hosts.iter().cloned());
            ui = ui.with_allowed_hosts(hosts);
        }
    }
    let (listener, addr) = crate::listen(&args.host, args.port).await?;
    let stop = crate::stop_signal();
    println!("mlops UI on http://{addr}/ (Ctrl-C or SIGTERM stops)");
    mlops::serve::http::serve(listener, ui.router(), async {
        let why = stop.await;
        println!("{why}: shutting down");
    })
    .await?;
    Ok(true)
}
