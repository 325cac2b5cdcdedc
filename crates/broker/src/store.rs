//! Storage behind the broker: what must outlive the process. The broker keeps
//! its working state in memory and writes through to a [`Store`]; at start it
//! loads what the store kept. The durable embedded store comes with the
//! durability work; [`MemoryStore`] keeps everything in the process (the
//! `durability = "none"` choice) and is what tests restart a broker on.

use std::collections::HashMap;
use std::sync::Mutex;

use bulwark_codec::{Properties, QoS, SubscriptionOptions};
use bytes::Bytes;

/// A retained message as stored. The expiry is absolute wall-clock seconds
/// since the Unix epoch, so it survives a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub properties: Properties,
    pub expires_at_unix: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    pub filter: String,
    pub options: SubscriptionOptions,
    pub identifier: Option<u32>,
}

/// A persistent session as stored: enough to resume its subscriptions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredSession {
    pub expiry_interval: u32,
    pub subscriptions: Vec<StoredSubscription>,
}

/// Errors are reported to the caller, which decides whether to refuse the
/// operation; a store never fails silently.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

pub trait Store: Send + Sync + 'static {
    fn put_retained(&self, message: &StoredMessage) -> Result<(), StoreError>;
    fn remove_retained(&self, topic: &str) -> Result<(), StoreError>;
    fn load_retained(&self) -> Result<Vec<StoredMessage>, StoreError>;
    fn put_session(&self, client_id: &str, session: &StoredSession) -> Result<(), StoreError>;
    fn remove_session(&self, client_id: &str) -> Result<(), StoreError>;
    fn load_sessions(&self) -> Result<Vec<(String, StoredSession)>, StoreError>;
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    retained: Mutex<HashMap<String, StoredMessage>>,
    sessions: Mutex<HashMap<String, StoredSession>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("memory store lock poisoned".into())
}

impl Store for MemoryStore {
    fn put_retained(&self, message: &StoredMessage) -> Result<(), StoreError> {
        self.retained
            .lock()
            .map_err(poisoned)?
            .insert(message.topic.clone(), message.clone());
        Ok(())
    }

    fn remove_retained(&self, topic: &str) -> Result<(), StoreError> {
        self.retained.lock().map_err(poisoned)?.remove(topic);
        Ok(())
    }

    fn load_retained(&self) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(self
            .retained
            .lock()
            .map_err(poisoned)?
            .values()
            .cloned()
            .collect())
    }

    fn put_session(&self, client_id: &str, session: &StoredSession) -> Result<(), StoreError> {
        self.sessions
            .lock()
            .map_err(poisoned)?
            .insert(client_id.to_owned(), session.clone());
        Ok(())
    }

    fn remove_session(&self, client_id: &str) -> Result<(), StoreError> {
        self.sessions.lock().map_err(poisoned)?.remove(client_id);
        Ok(())
    }

    fn load_sessions(&self) -> Result<Vec<(String, StoredSession)>, StoreError> {
        Ok(self
            .sessions
            .lock()
            .map_err(poisoned)?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}
