//! Handshake slots held only while a handshake computes.
//!
//! A TLS handshake alternates between waiting for the peer and bursts of
//! CPU (key exchange and signature on the ClientHello, chain verification
//! on the client's certificate). A slot held across the waits would let a
//! few hundred clients that send a ClientHello and then stall hold every
//! slot for the whole handshake timeout, locking out everyone else. Here a
//! slot is taken before each poll of the handshake future and given back
//! when the poll returns: stalled handshakes hold nothing, and at most
//! `max_handshakes` handshakes compute at once, leaving the other worker
//! threads to established connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

pub struct Gated<F> {
    inner: F,
    slots: Arc<Semaphore>,
    acquiring: Option<Acquire>,
}

/// Runs `inner` polling it only while holding one of `slots`.
pub fn gated<F: Future + Unpin>(inner: F, slots: Arc<Semaphore>) -> Gated<F> {
    Gated {
        inner,
        slots,
        acquiring: None,
    }
}

impl<F: Future + Unpin> Future for Gated<F> {
    type Output = Option<F::Output>;

    /// `None` when the semaphore was closed (the listener is going away).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let permit = match this.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let acquiring = this
                    .acquiring
                    .get_or_insert_with(|| Box::pin(this.slots.clone().acquire_owned()));
                match acquiring.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(_)) => return Poll::Ready(None),
                    Poll::Ready(Ok(p)) => {
                        this.acquiring = None;
                        p
                    }
                }
            }
        };
        let out = Pin::new(&mut this.inner).poll(cx);
        drop(permit);
        out.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_waiting_future_holds_no_slot() {
        let slots = Arc::new(Semaphore::new(1));
        // Waits a long time between polls, like a stalled handshake.
        let stalled = tokio::spawn(gated(
            Box::pin(tokio::time::sleep(Duration::from_secs(30))),
            slots.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let quick = gated(Box::pin(async { 7 }), slots.clone());
        let got = tokio::time::timeout(Duration::from_secs(1), quick).await;
        assert_eq!(got.expect("not blocked by the stalled one"), Some(7));
        assert_eq!(slots.available_permits(), 1);
        stalled.abort();
    }

    #[tokio::test]
    async fn a_closed_gate_ends_the_wait() {
        let slots = Arc::new(Semaphore::new(0));
        let waiting = tokio::spawn(gated(Box::pin(async { 1 }), slots.clone()));
        tokio::time::sleep(Duration::from_millis(20)).await;
        slots.close();
        assert_eq!(waiting.await.expect("join"), None);
    }
}
