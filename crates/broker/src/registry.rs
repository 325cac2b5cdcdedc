//! Session handles: the shared face of a session that publishers deliver to
//! and connections attach to.
//!
//! Lock order, wherever more than one is held: the broker's session map,
//! then a handle's `link`, then its `state`. The subscription index lock is
//! never taken while a `state` lock is held.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
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
    pub pending_will: Option<Box<PendingWill>>,
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
    /// Set when the queue passes its high-water mark: publishers routing
    /// to this session pause reading until it drains (back-pressure).
    pub(crate) congested: AtomicBool,
    /// Notified when a congested queue drains below its low-water mark.
    pub(crate) room: Notify,
    /// When the attached connection last moved messages out of the queue
    /// ([`now_ms`]). A session that makes no progress holds nobody back.
    pub(crate) last_progress: AtomicU64,
}

/// How long a congested session may go without draining before publishers
/// stop waiting for it and its own queue limit decides (drop and count).
pub(crate) const STALL_MS: u64 = 1000;

/// Milliseconds on a process-wide monotonic clock, cheap to store in an
/// atomic.
pub(crate) fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
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
            congested: AtomicBool::new(false),
            room: Notify::new(),
            last_progress: AtomicU64::new(now_ms()),
        }
    }

    /// Whether publishers should pause for this session: its queue is past
    /// the high-water mark, yet its client is connected and draining. A
    /// stalled client (not reading) never slows anyone else.
    pub fn holds_publishers(&self) -> bool {
        self.congested.load(Ordering::Acquire)
            && self.is_online()
            && now_ms().saturating_sub(self.last_progress.load(Ordering::Relaxed)) < STALL_MS
    }

    /// Called by the attached connection after it drained `sent` messages
    /// and `queued` remain.
    pub(crate) fn drained(&self, sent: u64, queued: usize, low_water: usize) {
        if sent > 0 {
            self.last_progress.store(now_ms(), Ordering::Relaxed);
        }
        if queued <= low_water && self.congested.swap(false, Ordering::AcqRel) {
            self.room.notify_waiters();
        }
    }

    pub(crate) fn release_publishers(&self) {
        self.congested.store(false, Ordering::Release);
        self.room.notify_waiters();
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
