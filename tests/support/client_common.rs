// The rumqttc wrapper shared by v3.rs and v5.rs, which `include!` it after
// importing their version's types: the two rumqttc clients have the same API
// over different types, so the code is written once.

pub struct Client {
    pub client: AsyncClient,
    pub events: mpsc::UnboundedReceiver<Result<Event, ConnectionError>>,
    task: JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Options for a loopback client: 30 s keep-alive, so no ping interferes.
pub fn options(port: u16, client_id: &str) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

/// Connects and returns once the CONNACK arrived (panics if refused).
pub async fn connect(options: MqttOptions) -> (Client, ConnAck) {
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    let (tx, events) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let ev = eventloop.poll().await;
            let stop = ev.is_err();
            if tx.send(ev).is_err() || stop {
                // Polling again would reconnect; a test that wants a new
                // connection makes a new client.
                return;
            }
        }
    });
    let mut c = Client {
        client,
        events,
        task,
    };
    let ack = c
        .until(Duration::from_secs(3), |p| match p {
            Packet::ConnAck(a) => Some(a.clone()),
            _ => None,
        })
        .await
        .expect("CONNACK within 3 s");
    (c, ack)
}

/// Connects with `options` as given and defaults for everything else.
pub async fn connected(port: u16, client_id: &str) -> Client {
    connect(options(port, client_id)).await.0
}

impl Client {
    /// Waits for an incoming packet `f` picks; `None` on timeout or when
    /// the connection fails.
    pub async fn until<T>(
        &mut self,
        wait: Duration,
        mut f: impl FnMut(&Packet) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Ok(Event::Incoming(p)))) => {
                    if let Some(t) = f(&p) {
                        return Some(t);
                    }
                }
                Ok(Some(Ok(Event::Outgoing(_)))) => {}
                Ok(Some(Err(_))) | Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The error that ended the connection, waiting up to `wait`.
    pub async fn error(&mut self, wait: Duration) -> Option<ConnectionError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => return Some(e),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    pub async fn publish_msg(&mut self, wait: Duration) -> Option<Publish> {
        self.until(wait, |p| match p {
            Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await
    }

    /// Every PUBLISH that arrives within `wait`.
    pub async fn publishes_for(&mut self, wait: Duration) -> Vec<Publish> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut all = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.publish_msg(left).await {
                Some(p) => all.push(p),
                None => return all,
            }
        }
    }

    /// Subscribes and waits for the SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.client.subscribe(filter, qos).await.expect("subscribe");
        self.suback().await;
    }

    pub async fn suback(&mut self) {
        self.until(Duration::from_secs(3), |p| match p {
            Packet::SubAck(s) => Some(s.clone()),
            _ => None,
        })
        .await
        .expect("SUBACK within 3 s");
    }

    /// Publishes and, for QoS 1 and 2, waits for the broker's PUBACK or
    /// PUBCOMP, so the message has been routed when this returns.
    pub async fn publish(&mut self, topic: &str, qos: QoS, retain: bool, payload: &[u8]) {
        self.client
            .publish(topic, qos, retain, payload.to_vec())
            .await
            .expect("publish");
        self.wait_acked(qos).await;
    }

    pub async fn wait_acked(&mut self, qos: QoS) {
        let acked = match qos {
            QoS::AtMostOnce => return,
            QoS::AtLeastOnce => {
                self.until(Duration::from_secs(3), |p| {
                    matches!(p, Packet::PubAck(_)).then_some(())
                })
                .await
            }
            QoS::ExactlyOnce => {
                self.until(Duration::from_secs(3), |p| {
                    matches!(p, Packet::PubComp(_)).then_some(())
                })
                .await
            }
        };
        acked.expect("acknowledged within 3 s");
    }

    /// Sends DISCONNECT and waits for the event loop to finish with it.
    pub async fn disconnect(mut self) {
        self.client.disconnect().await.expect("disconnect");
        let _ = self.error(Duration::from_secs(2)).await;
    }
}

/// The payload as text, for assertions.
pub fn text(p: &Publish) -> String {
    String::from_utf8_lossy(&p.payload).into_owned()
}
