//! Connections that presented a client certificate, kept so that a
//! reloaded CRL or CA bundle reaches them: each is verified again against
//! the new material and cut if it no longer passes, and each is cut when
//! its certificate expires. Peers that close connections on revocation only
//! at the next handshake leave a revoked device connected for days.
//!
//! A connection is cut by shutting its socket down through a duplicate of
//! its descriptor: the connection task then sees end-of-stream and ends
//! through its normal path (will, session detach), with nothing shared
//! between the task and this registry but the kernel socket.

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::tls::describe_certificate_error;

struct Entry {
    peer: SocketAddr,
    identity: String,
    serial: String,
    not_after: i64,
    chain: Vec<CertificateDer<'static>>,
    ctl: TcpStream,
}

#[derive(Default)]
pub struct Live {
    next: AtomicU64,
    entries: Mutex<HashMap<u64, Entry>>,
}

/// Removes its connection from the registry when the connection ends.
pub struct Registration {
    live: Arc<Live>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.live.lock().remove(&self.id);
    }
}

/// What a sweep did, for the log and tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    pub checked: usize,
    pub cut: usize,
}

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        // A panic elsewhere while holding the lock leaves a map that is
        // still consistent: each operation is a single insert or remove.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[allow(clippy::too_many_arguments)]
    pub fn register(
        self: &Arc<Self>,
        peer: SocketAddr,
        identity: String,
        serial: String,
        not_after: i64,
        chain: Vec<CertificateDer<'static>>,
        ctl: TcpStream,
    ) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            id,
            Entry {
                peer,
                identity,
                serial,
                not_after,
                chain,
                ctl,
            },
        );
        Registration {
            live: self.clone(),
            id,
        }
    }

    /// Verifies every registered chain against `verifier` (the material
    /// just loaded) and cuts those that fail. CPU-bound: call it off the
    /// async threads.
    pub fn revalidate(&self, listener: &str, verifier: &dyn ClientCertVerifier) -> Sweep {
        let now = UnixTime::now();
        let mut sweep = Sweep::default();
        let map = self.lock();
        for e in map.values() {
            sweep.checked += 1;
            let Some((end, intermediates)) = e.chain.split_first() else {
                continue;
            };
            if let Err(err) = verifier.verify_client_cert(end, intermediates, now) {
                let reason = match &err {
                    rustls::Error::InvalidCertificate(c) => describe_certificate_error(c),
                    other => other.to_string(),
                };
                tracing::warn!(
                    listener,
                    peer = %e.peer,
                    identity = %e.identity,
                    serial = %e.serial,
                    reason,
                    "client certificate no longer passes after reload; closing its connection"
                );
                let _ = e.ctl.shutdown(Shutdown::Both);
                sweep.cut += 1;
            }
        }
        sweep
    }

    /// Cuts connections whose certificate has expired since the handshake.
    pub fn cut_expired(&self, listener: &str, now_secs: i64) -> usize {
        let map = self.lock();
        let mut cut = 0;
        for e in map.values().filter(|e| e.not_after < now_secs) {
            tracing::warn!(
                listener,
                peer = %e.peer,
                identity = %e.identity,
                serial = %e.serial,
                "client certificate expired during the connection; closing it"
            );
            let _ = e.ctl.shutdown(Shutdown::Both);
            cut += 1;
        }
        cut
    }
}
