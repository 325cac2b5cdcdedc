//! Live TLS material: what new handshakes use, swapped atomically when the
//! files change or on SIGHUP, and the registry of live certificate
//! connections that a new CA bundle or CRL is applied to.
//!
//! Invariant: a listener always has working material. A reload that fails
//! to read or parse anything keeps the old material and says why.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

use crate::live::Live;
use crate::tls::{load, Material, TlsError, TlsSettings};

pub struct TlsState {
    pub listener: Arc<str>,
    settings: TlsSettings,
    current: RwLock<Arc<Material>>,
    pub live: Arc<Live>,
}

/// Sends "reload now" to every TLS listener (the binary's SIGHUP handler).
#[derive(Clone)]
pub struct ReloadTrigger(broadcast::Sender<()>);

impl Default for ReloadTrigger {
    fn default() -> Self {
        Self(broadcast::channel(4).0)
    }
}

impl ReloadTrigger {
    pub fn trigger(&self) {
        // No receiver means no TLS listener: nothing to reload.
        let _ = self.0.send(());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<()> {
        self.0.subscribe()
    }
}

impl TlsState {
    /// Loads the material for the first time; a failure here stops the
    /// listener from starting.
    pub fn load(listener: Arc<str>, settings: TlsSettings) -> Result<Arc<Self>, TlsError> {
        let material = load(&settings)?;
        Ok(Arc::new(TlsState {
            listener,
            settings,
            current: RwLock::new(Arc::new(material)),
            live: Arc::new(Live::default()),
        }))
    }

    /// The config new handshakes use.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let m = self.current.read().unwrap_or_else(PoisonError::into_inner);
        m.server.clone()
    }

    pub fn has_verifier(&self) -> bool {
        let m = self.current.read().unwrap_or_else(PoisonError::into_inner);
        m.verifier.is_some()
    }

    /// Reads the files again and swaps the material in, then checks every
    /// live certificate connection against it. On error nothing changes.
    pub async fn reload(self: &Arc<Self>) -> Result<(), TlsError> {
        let this = self.clone();
        // Parsing files and verifying every live chain is blocking work.
        let outcome = tokio::task::spawn_blocking(move || {
            let material = Arc::new(load(&this.settings)?);
            *this.current.write().unwrap_or_else(PoisonError::into_inner) = material.clone();
            let sweep = material
                .verifier
                .as_deref()
                .map(|v| this.live.revalidate(&this.listener, v));
            Ok::<_, TlsError>(sweep)
        })
        .await
        .map_err(|e| TlsError::Config(format!("reload task failed: {e}")))?;
        let sweep = outcome?;
        tracing::info!(
            listener = %self.listener,
            live_checked = sweep.as_ref().map_or(0, |s| s.checked),
            live_cut = sweep.as_ref().map_or(0, |s| s.cut),
            "TLS material reloaded"
        );
        Ok(())
    }

    fn stamps(&self) -> Vec<Option<(SystemTime, u64)>> {
        self.settings
            .files()
            .iter()
            .map(|p| file_stamp(p))
            .collect()
    }

    /// Watches the files every `interval` and listens for `trigger`;
    /// reloads on either. Also cuts connections whose certificate expired.
    pub async fn watch(self: Arc<Self>, trigger: ReloadTrigger, interval: Duration) {
        let mut hup = trigger.subscribe();
        let mut last = self.stamps();
        loop {
            let forced = tokio::select! {
                _ = tokio::time::sleep(interval) => false,
                r = hup.recv() => !matches!(r, Err(broadcast::error::RecvError::Closed)),
            };
            let now = self.stamps();
            if !forced && now == last {
                let secs = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                self.live.cut_expired(&self.listener, secs);
                continue;
            }
            last = now;
            if let Err(e) = self.reload().await {
                tracing::error!(
                    listener = %self.listener,
                    error = %e,
                    "TLS reload failed; the listener keeps its previous certificates, keys, CA and CRLs"
                );
            }
        }
    }
}

/// What the watchers compare to see that a file changed: modification
/// time and length (`None`: unreadable, itself a change when it recovers).
pub fn file_stamp(p: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}
