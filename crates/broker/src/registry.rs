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
use tokio::sync::Notify;

use crate::broker::PendingWill;
use crate::session::SessionState;

/// How a connection is attached to its session.
#[derive(Debug, Default)]
pub(crate) struct Link {
    /// Increments with every connection that attaches, so a connection that
    /// was taken over can tell that the session is no longer its own.
    pub generation: u64,
    /// Why connections below `SessionHandle::kick_below` must close.
    pub kick_reason: Option<ReasonCode>,
    pub expiry_interval: u32,
    pub disconnected_at: Option<Instant>,
    /// A will waiting out its delay after its connection ended.
    pub pending_will: Option<Box<PendingWill>>,
    /// The identity that created the session (`None`: anonymous). Only
    /// that identity may resume or take it over.
    pub owner: Option<Arc<str>>,
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
    /// When the attached connection last moved messages out of the queue
    /// ([`now_ms`]). A session that makes no progress holds nobody back.
    pub(crate) last_progress: AtomicU64,
    /// Connections whose generation is below this must close (takeover,
    /// session discarded). Checked by each connection on every wakeup after
    /// it has registered for `wake`, so a kick is never missed; cheaper per
    /// idle connection than a channel each.
    kick_below: AtomicU64,
}

/// How long a congested session may go without draining before publishers
/// stop waiting for it and its own queue limit decides (drop and count).
pub(crate) const STALL_MS: u64 = 1000;

/// Notified whenever any congested queue drains below its low-water mark.
/// One for the whole broker rather than one per session: congestion is
/// rare, every session would pay for its own, and a woken publisher simply
/// re-checks the sessions it waits for.
pub(crate) fn room() -> &'static Notify {
    static ROOM: Notify = Notify::const_new();
    &ROOM
}

/// Milliseconds on a process-wide monotonic clock, cheap to store in an
/// atomic.
pub(crate) fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl SessionHandle {
    pub(crate) fn new(
        client_id: Arc<str>,
        expiry_interval: u32,
        budget: Arc<std::sync::atomic::AtomicUsize>,
    ) -> Self {
        SessionHandle {
            client_id,
            state: Mutex::new(SessionState::with_budget(budget)),
            wake: Notify::new(),
            link: Mutex::new(Link {
                expiry_interval,
                ..Link::default()
            }),
            online: AtomicBool::new(false),
            congested: AtomicBool::new(false),
            last_progress: AtomicU64::new(now_ms()),
            kick_below: AtomicU64::new(0),
        }
    }

    /// Makes every connection attached with a generation below `below`
    /// close with `reason`. Takes the link the caller has locked.
    pub(crate) fn kick(&self, link: &mut Link, below: u64, reason: ReasonCode) {
        link.kick_reason = Some(reason);
        self.kick_below.fetch_max(below, Ordering::AcqRel);
        self.wake.notify_waiters();
        // A connection between its check and its wait would miss
        // notify_waiters; the stored permit reaches it.
        self.wake.notify_one();
    }

    /// The reason connection `generation` must close, if it must.
    pub(crate) fn kicked(&self, generation: u64) -> Option<ReasonCode> {
        (self.kick_below.load(Ordering::Acquire) > generation).then(|| {
            self.link()
                .kick_reason
                .unwrap_or(ReasonCode::SessionTakenOver)
        })
    }

    /// Whether publishers should pause for this session: its queue is past
    /// the high-water mark, yet its client is connected and draining. A
    /// stalled client (not reading) never slows anyone else.
    pub fn holds_publishers(&self) -> bool {
        self.congested.load(Ordering::Acquire)
            && self.is_online()
            && now_ms().saturating_sub(self.last_progress.load(Ordering::Relaxed)) < STALL_MS
    }

    /// Called by the attached connection after it drained `sent` messages;
    /// `below_low` when what remains is under both low-water marks.
    pub(crate) fn drained(&self, sent: u64, below_low: bool) {
        if sent > 0 {
            self.last_progress.store(now_ms(), Ordering::Relaxed);
        }
        if below_low && self.congested.swap(false, Ordering::AcqRel) {
            room().notify_waiters();
        }
    }

    pub(crate) fn release_publishers(&self) {
        self.congested.store(false, Ordering::Release);
        room().notify_waiters();
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
}
