//! Session handles: the shared face of a session that publishers deliver to
//! and connections attach to.
//!
//! Lock order, wherever more than one is held: the broker's session map,
//! then a handle's `link`, then its `state`. The subscription index lock is
//! never taken while a `state` lock is held.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bulwark_codec::ReasonCode;
use tokio::sync::{oneshot, Notify};

use crate::broker::PendingWill;
use crate::session::SessionState;

/// How a connection is attached to its session.
#[derive(Debug, Default)]
pub(crate) struct Link {
    /// Increments with every connection that attaches, so a connection that
    /// was taken over can tell that the session is no longer its own.
    pub generation: u64,
    /// Signals the attached connection to close with the given reason
    /// (takeover, session discarded).
    pub kick: Option<oneshot::Sender<ReasonCode>>,
    pub expiry_interval: u32,
    pub disconnected_at: Option<Instant>,
    /// A will waiting out its delay after its connection ended.
    pub pending_will: Option<PendingWill>,
}

#[derive(Debug)]
pub struct SessionHandle {
    pub client_id: Arc<str>,
    pub(crate) state: Mutex<SessionState>,
    /// Wakes the attached connection when its queue goes from empty to not.
    pub(crate) wake: Notify,
    pub(crate) link: Mutex<Link>,
    /// Mirrors "a connection is attached", readable without a lock on the
    /// delivery path.
    pub(crate) online: AtomicBool,
}

impl SessionHandle {
    pub(crate) fn new(client_id: Arc<str>, expiry_interval: u32) -> Self {
        SessionHandle {
            client_id,
            state: Mutex::new(SessionState::new()),
            wake: Notify::new(),
            link: Mutex::new(Link {
                expiry_interval,
                ..Link::default()
            }),
            online: AtomicBool::new(false),
        }
    }

    /// The session state. A poisoned lock means a thread panicked while
    /// holding it; the state itself is still consistent enough to serve, and
    /// refusing service to every later client would be worse.
    pub fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn link(&self) -> MutexGuard<'_, Link> {
        self.link.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    pub(crate) fn set_online(&self, online: bool) {
        self.online.store(online, Ordering::Release);
    }

    /// Waits until a delivery is queued for this session.
    pub async fn woken(&self) {
        self.wake.notified().await
    }
}
