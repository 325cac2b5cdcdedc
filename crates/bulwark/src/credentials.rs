//! The credential file at run time: loaded at start (a file that cannot be
//! read or parsed stops the broker: never allow-all), reloaded on SIGHUP
//! and when it changes, keeping the previous store if the new file is bad.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bulwark_broker::Broker;
use bulwark_security::store::Store;
use bulwark_transport::reload::file_stamp;
use bulwark_transport::ReloadTrigger;

/// Loads `path`, with the error an operator needs to fix it.
pub fn load(path: &Path) -> Result<Arc<Store>, String> {
    Store::load(path)
        .map(Arc::new)
        .map_err(|e| format!("credential file: {e}"))
}

/// Watches `path` and listens for the reload trigger; swaps the broker's
/// store on success.
pub async fn watch(broker: Broker, path: PathBuf, trigger: ReloadTrigger, interval: Duration) {
    let mut hup = trigger.subscribe();
    let mut last = file_stamp(&path);
    loop {
        let forced = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            r = hup.recv() => !matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)),
        };
        let now = file_stamp(&path);
        if !forced && now == last {
            continue;
        }
        last = now;
        let p = path.clone();
        // argon2 parameters are checked, files read: off the async threads.
        let loaded = tokio::task::spawn_blocking(move || load(&p)).await;
        match loaded {
            Ok(Ok(store)) => {
                let n = store.len();
                broker.auth().set_store(Some(store));
                tracing::info!(
                    target: "bulwark::security",
                    event = "credentials_reloaded",
                    path = %path.display(),
                    identities = n,
                    "credential file reloaded"
                );
            }
            Ok(Err(e)) => tracing::error!(
                target: "bulwark::security",
                event = "credentials_reload_failed",
                path = %path.display(),
                error = %e,
                "credential file not reloaded; the previous credentials stay in force"
            ),
            Err(e) => tracing::error!(error = %e, "credential reload task failed"),
        }
    }
}
