//! One client connection: framing, the CONNECT handshake, the event loop
//! that interleaves reading, delivering and keep-alive, and teardown.
//!
//! Generic over the byte stream so TCP, TLS and WebSocket transports share
//! it. Malformed or hostile input ends this connection only: every decode
//! error becomes a clean close (with a v5 DISCONNECT or a CONNACK carrying
//! the reason), never a panic and never a stall of anything else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulwark_codec::{
    decode, frame_len, peek_connect_version, DecodeLimits, Disconnect, Packet, ProtocolVersion,
    ReasonCode,
};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::admission::Ticket;
use crate::auth::Verdict;
use crate::broker::{Broker, PendingWill};
pub use crate::connect::ListenerInfo;
use crate::connect::{self, Accepted};
use crate::limit_hits::LimitKind;
use crate::outbound::Outbound;
use crate::rate::{PublishLimitAction, PublishLimiter};
use crate::registry::SessionHandle;
use crate::stats::Stats;

/// Past this much unwritten output (acks the client does not read), stop
/// reading its input: a client that never reads cannot make us buffer
/// without bound.
const MAX_PENDING_WRITE: usize = 1024 * 1024;
/// A read buffer grows up to this when reads keep filling it.
const MAX_READ_CHUNK: usize = 64 * 1024;
/// How often a connection paused at the memory budget looks again.
const BUDGET_RECHECK: Duration = Duration::from_millis(20);
/// What an idle connection reserves for its next read: enough for a
/// PINGREQ or a small PUBLISH; busy connections grow it (doubling) at once.
const MIN_READ_CHUNK: usize = 16;
/// Reads of the CONNECT, which is larger and short-lived.
const CONNECT_READ_CHUNK: usize = 256;

/// Why the connection is ending.
#[derive(Debug)]
pub(crate) enum End {
    /// The client sent DISCONNECT. `keep_will` for v5 reason 0x04.
    ClientDisconnect { keep_will: bool },
    /// The peer closed the socket or it failed.
    Closed,
    /// We close it: protocol violation, timeout, takeover. The reason goes in
    /// a v5 DISCONNECT.
    Violation { reason: ReasonCode, detail: String },
}

pub(crate) fn violation(reason: ReasonCode, detail: impl Into<String>) -> End {
    End::Violation {
        reason,
        detail: detail.into(),
    }
}

pub(crate) struct Conn {
    pub broker: Broker,
    pub session: Arc<SessionHandle>,
    pub generation: u64,
    pub version: ProtocolVersion,
    pub out: Outbound,
    pub expiry_interval: u32,
    /// A v5 client whose CONNECT said expiry 0 may not raise it at
    /// DISCONNECT [MQTT-3.14.2-2].
    pub connect_expiry_zero: bool,
    pub will: Option<Box<PendingWill>>,
    pub keep_alive: Duration,
    /// Client-to-server topic aliases, index = alias - 1.
    pub in_aliases: Vec<Option<bulwark_topic::TopicName>>,
    pub peer: SocketAddr,
    /// PUBLISH packets handled since the last flush into the shared stats.
    pub received: u64,
    /// Sessions this connection published to that are congested: reading
    /// from this client pauses until they drain (see Broker::publish_from).
    pub pressure: Vec<Arc<SessionHandle>>,
    /// This connection's publish rate and bandwidth buckets, created at its
    /// first PUBLISH: boxed and lazy so that idle and subscribe-only
    /// connections (most of them) carry 8 bytes, not the buckets. Created
    /// full, which is what a bucket made at CONNECT would be by then.
    pub publish_limit: Option<Box<PublishLimiter>>,
    /// Set for connections that authenticated with SCRAM, which may
    /// re-authenticate (AUTH 0x19).
    pub reauth: Option<Box<crate::enhanced_auth::ReAuth>>,
}

/// Serves one connection to its end. Spawn it as its own task: nothing in
/// here blocks another connection. For a socket that did not pass
/// admission (in-memory streams, tests); listeners use [`serve_admitted`].
// Plain functions returning the inner future, not `async fn` wrappers: a
// wrapper would keep its own copy of the arguments in every idle
// connection's task.
pub fn serve<R, W>(
    broker: Broker,
    reader: R,
    writer: W,
    peer: SocketAddr,
    listener: Arc<ListenerInfo>,
) -> impl std::future::Future<Output = ()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    serve_inner(broker, reader, writer, peer, listener, None, None)
}

/// [`serve`] for an admitted connection: its pending-connect slot is given
/// back when CONNECT completes, the rest of its share when it ends (the
/// ticket is dropped with this future, however it ends). `cert_identity` is
/// the identity the transport took from a verified client certificate.
pub fn serve_admitted<R, W>(
    broker: Broker,
    reader: R,
    writer: W,
    peer: SocketAddr,
    listener: Arc<ListenerInfo>,
    ticket: Ticket,
    cert_identity: Option<Arc<str>>,
) -> impl std::future::Future<Output = ()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    serve_inner(
        broker,
        reader,
        writer,
        peer,
        listener,
        Some(ticket),
        cert_identity,
    )
}

async fn serve_inner<R, W>(
    broker: Broker,
    mut reader: R,
    mut writer: W,
    peer: SocketAddr,
    listener: Arc<ListenerInfo>,
    mut ticket: Option<Ticket>,
    cert_identity: Option<Arc<str>>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let limits = DecodeLimits {
        max_packet_size: broker.limits().max_packet_size,
    };
    let mut rbuf = BytesMut::new();
    let timeout = broker.limits().connect_timeout;
    let first = match tokio::time::timeout(timeout, read_frame(&mut reader, &mut rbuf, &limits))
        .await
    {
        Ok(Ok(Some(frame))) => frame,
        Ok(Ok(None)) => return,
        Ok(Err(detail)) => {
            tracing::info!(%peer, listener = %listener.name, detail, "connection closed before CONNECT");
            return;
        }
        Err(_) => {
            broker
                .stats()
                .limits
                .hit(LimitKind::ConnectTimeout, Some(peer), None);
            tracing::info!(%peer, listener = %listener.name, "no CONNECT within connect_timeout");
            return;
        }
    };
    let Some(conn) = Box::pin(handshake(
        &broker,
        first,
        peer,
        &listener,
        cert_identity,
        (&mut reader, &mut rbuf),
        &mut writer,
    ))
    .await
    else {
        return;
    };
    if let Some(t) = ticket.as_mut() {
        t.connected();
    }
    Stats::add(&broker.stats().clients_connected, 1);
    if rbuf.is_empty() {
        // Most connections sit idle after CONNECT: hold no buffer until
        // there is something to read (the loop reserves a small one).
        rbuf = BytesMut::new();
    }
    let mut conn = conn;
    let end = match conn.run(&mut reader, &mut writer, rbuf).await {
        Err(end) => end,
        Ok(never) => match never {},
    };
    // Boxed: the handshake and teardown futures would otherwise be part of
    // every idle connection's task for its whole life.
    Box::pin(conn.finish(end, &mut reader, &mut writer)).await;
    broker
        .stats()
        .clients_connected
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

/// Reads until one whole packet is buffered. `Ok(None)` is a clean EOF.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    rbuf: &mut BytesMut,
    limits: &DecodeLimits,
) -> Result<Option<bytes::Bytes>, String> {
    loop {
        match frame_len(rbuf, limits) {
            Ok(Some(n)) => return Ok(Some(rbuf.split_to(n).freeze())),
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        rbuf.reserve(CONNECT_READ_CHUNK);
        match reader.read_buf(rbuf).await {
            Ok(0) if rbuf.is_empty() => return Ok(None),
            Ok(0) => return Err("connection closed inside a packet".into()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// CONNECT → CONNACK. On refusal the CONNACK (when the version is known) is
/// written here and `None` returned.
async fn handshake<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    broker: &Broker,
    frame: bytes::Bytes,
    peer: SocketAddr,
    listener: &ListenerInfo,
    // By value: a borrow would keep it alive in every idle connection's
    // task for the connection's whole life.
    cert_identity: Option<Arc<str>>,
    input: (&mut R, &mut BytesMut),
    writer: &mut W,
) -> Option<Conn> {
    let version_hint = peek_connect_version(&frame);
    let connect = match decode(frame, ProtocolVersion::V5) {
        Ok(Packet::Connect(c)) => c,
        Ok(other) => {
            // [MQTT-3.1.0-1]: the first packet must be CONNECT.
            tracing::info!(%peer, listener = %listener.name, packet = packet_name(&other), "first packet was not CONNECT; closing");
            Stats::add(&broker.stats().protocol_errors, 1);
            return None;
        }
        Err(e) => {
            Stats::add(&broker.stats().malformed_packets, 1);
            tracing::info!(%peer, listener = %listener.name, error = %e, "malformed CONNECT; closing");
            refuse_malformed_connect(&e, version_hint, writer).await;
            return None;
        }
    };
    let version = connect.protocol;
    let v5 = version == ProtocolVersion::V5;
    let mut out = Outbound::new(version);
    // An empty client ID will be assigned as IDENTITY-...; the identity's
    // client-ID pattern is checked against that prefix.
    let claimed = cert_identity.as_deref().or(connect.username.as_deref());
    let reauth_cert = cert_identity.clone();
    let id_for_check = match (connect.client_id.is_empty(), claimed) {
        (true, Some(name)) => format!("{name}-"),
        _ => connect.client_id.clone(),
    };
    let scram = v5
        && connect.properties.authentication_method.as_deref()
            == Some(bulwark_security::scram::MECHANISM);
    let mut server_final = None;
    let verdict = if scram {
        let (verdict, last) = Box::pin(crate::enhanced_auth::scram_exchange(
            broker,
            &connect,
            &id_for_check,
            peer,
            listener,
            cert_identity,
            input,
            writer,
        ))
        .await;
        server_final = last;
        verdict
    } else {
        broker
            .auth()
            .decide(&connect, &id_for_check, peer, listener, cert_identity)
            .await
    };
    let scram_identity = match (&verdict, scram) {
        (Verdict::Identity(id), true) => Some(id.clone()),
        _ => None,
    };
    let identity = match verdict {
        Verdict::Anonymous => None,
        Verdict::Identity(id) => Some(id),
        Verdict::Refused { reason, .. } => {
            Stats::add(&broker.stats().auth_failures, 1);
            out.packet(&Packet::ConnAck(connect::refusal_connack(reason)));
            write_best_effort(writer, &out.buf).await;
            return None;
        }
    };
    let accepted: Accepted = match connect::accept(&connect, broker.limits(), identity.as_deref()) {
        Ok(a) => a,
        Err(refusal) => {
            if let Some(kind) = refusal.limit {
                broker
                    .stats()
                    .limits
                    .hit(kind, Some(peer), Some(&connect.client_id));
            }
            tracing::info!(%peer, listener = %listener.name, client_id = %connect.client_id, reason = ?refusal.reason, detail = refusal.detail, "CONNECT refused");
            out.packet(&Packet::ConnAck(connect::refusal_connack(refusal.reason)));
            write_best_effort(writer, &out.buf).await;
            return None;
        }
    };
    let attached = match broker.attach(
        &accepted.client_id,
        accepted.clean_start,
        accepted.expiry_interval,
        identity,
    ) {
        Ok(a) => a,
        Err(owner) => {
            // Mosquitto #3553: a client ID is not a credential. A session
            // stays with the identity that created it.
            Stats::add(&broker.stats().auth_failures, 1);
            tracing::warn!(
                target: "bulwark::security",
                event = "takeover_refused",
                listener = %listener.name,
                %peer,
                client_id = %accepted.client_id,
                session_owner = owner.as_deref().unwrap_or("(anonymous)"),
                "CONNECT refused: the client ID's session belongs to another identity"
            );
            out.packet(&Packet::ConnAck(connect::refusal_connack(
                ReasonCode::NotAuthorized,
            )));
            write_best_effort(writer, &out.buf).await;
            return None;
        }
    };
    let limits = broker.limits();
    let mut ack = connect::connack(&accepted, attached.session_present, limits, v5);
    if let Some(data) = server_final {
        // [MQTT-4.12.0-?]: the CONNACK of an enhanced authentication names
        // the method and carries its last step.
        ack.properties.authentication_method = connect.properties.authentication_method.clone();
        ack.properties.authentication_data = Some(bytes::Bytes::from(data));
    }
    out.packet(&Packet::ConnAck(ack));
    out.inflight_limit = usize::from(accepted.receive_maximum.min(limits.max_inflight_out));
    out.max_packet_size = accepted.max_packet_size;
    out.alias_max = accepted.topic_alias_maximum;
    {
        let state = attached.session.state();
        out.resend_inflight(&state, Instant::now());
    }
    tracing::debug!(%peer, listener = %listener.name, client_id = %accepted.client_id, ?version, session_present = attached.session_present, "client connected");
    let reauth = scram_identity.map(|id| {
        Box::new(crate::enhanced_auth::ReAuth::new(
            bulwark_security::scram::MECHANISM.to_owned(),
            id,
            reauth_cert,
            listener.min_factors,
        ))
    });
    let conn = Conn {
        broker: broker.clone(),
        session: attached.session,
        generation: attached.generation,
        version,
        out,
        expiry_interval: accepted.expiry_interval,
        connect_expiry_zero: accepted.expiry_interval == 0,
        will: accepted.will,
        keep_alive: Duration::from_secs(u64::from(accepted.keep_alive)),
        in_aliases: Vec::new(),
        peer,
        received: 0,
        pressure: Vec::new(),
        publish_limit: None,
        reauth,
    };
    Some(conn)
}

/// A CONNACK for an undecodable CONNECT only where the spec asks for one:
/// an unsupported protocol level (3.1.1 return code 1) or a v5 CONNECT.
async fn refuse_malformed_connect<W: AsyncWrite + Unpin>(
    e: &bulwark_codec::DecodeError,
    version_hint: Option<ProtocolVersion>,
    writer: &mut W,
) {
    let reason = e.reason_code();
    let answer = match version_hint {
        Some(ProtocolVersion::V5) => Some(ProtocolVersion::V5),
        _ if reason == ReasonCode::UnsupportedProtocolVersion => Some(ProtocolVersion::V311),
        _ => None,
    };
    if let Some(v) = answer {
        let mut out = Outbound::new(v);
        out.packet(&Packet::ConnAck(connect::refusal_connack(reason)));
        write_best_effort(writer, &out.buf).await;
    }
}

async fn write_best_effort<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) {
    let write = async {
        writer.write_all(bytes).await?;
        writer.flush().await?;
        writer.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
}

/// Waits until some congested session signals room, or briefly: the
/// notification is not stored, so a short timeout covers one that fired
/// between the check and the wait. A publish-rate throttle waits for its
/// buckets to refill; both together wait for whichever comes first, and the
/// loop checks again.
async fn wait_for_room(
    pressure: &[Arc<SessionHandle>],
    publish_limit: Option<&PublishLimiter>,
    budget_paused: bool,
) {
    let throttled_until = publish_limit.and_then(PublishLimiter::pause);
    let refill = async {
        match throttled_until {
            Some(until) => tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await,
            None => std::future::pending().await,
        }
    };
    if pressure.is_empty() {
        if budget_paused {
            // Memory is freed by every subscriber's acknowledgements, with
            // no one to name: look again shortly.
            let _ = tokio::time::timeout(BUDGET_RECHECK, refill).await;
        } else {
            refill.await;
        }
        return;
    }
    let room = crate::registry::room().notified();
    tokio::select! {
        _ = tokio::time::timeout(Duration::from_millis(5), room) => {}
        _ = refill => {}
    }
}

/// After we close with a DISCONNECT, keep reading (and discarding) briefly:
/// closing a socket that still has unread input makes the kernel send a
/// reset, and the client may then lose our DISCONNECT and its reason code
/// before it reads them.
async fn linger<R: AsyncRead + Unpin>(reader: &mut R) {
    let drain = async {
        let mut sink = [0u8; 1024];
        while let Ok(n) = reader.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
}

pub(crate) fn packet_name(p: &Packet) -> &'static str {
    match p {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect(_) => "DISCONNECT",
        Packet::Auth(_) => "AUTH",
    }
}

/// The read side of the event loop.
struct Input {
    buf: BytesMut,
    /// How much to reserve before the next read.
    chunk: usize,
    last_read: Instant,
    /// Whole packets are buffered but processing paused for back-pressure.
    pending: bool,
}

impl Conn {
    /// The event loop. Only ever returns how the connection ended.
    async fn run<R, W>(
        &mut self,
        reader: &mut R,
        writer: &mut W,
        rbuf: BytesMut,
    ) -> Result<std::convert::Infallible, End>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let limits = DecodeLimits {
            max_packet_size: self.broker.limits().max_packet_size,
        };
        // Keep-alive 0 (allowed only where configured) means no timer; a
        // far-future deadline keeps the select simple.
        let grace = if self.keep_alive.is_zero() {
            Duration::from_secs(365 * 24 * 3600)
        } else {
            self.keep_alive + self.keep_alive / 2
        };
        let mut input = Input {
            buf: rbuf,
            chunk: MIN_READ_CHUNK,
            last_read: Instant::now(),
            pending: false,
        };
        let session = self.session.clone();
        self.drain();
        // One timer for the connection's life, re-armed only when it fires:
        // resetting it on every read would touch the timer wheel per packet.
        let keep_alive =
            tokio::time::sleep_until(tokio::time::Instant::from_std(input.last_read + grace));
        tokio::pin!(keep_alive);
        loop {
            self.pressure.retain(|s| s.holds_publishers());
            if self.budget_paused() && !self.broker.over_budget() {
                self.set_budget_paused(false);
            }
            if self.pressure.is_empty()
                && self.paused_until().is_none()
                && !self.budget_paused()
                && input.pending
            {
                input.pending = self.process(&mut input.buf, &limits)?;
                self.drain();
            }
            let throttled =
                !self.pressure.is_empty() || self.paused_until().is_some() || self.budget_paused();
            let can_read = self.out.buf.len() < MAX_PENDING_WRITE && !throttled;
            if can_read && input.buf.capacity() - input.buf.len() < input.chunk / 2 {
                input.buf.reserve(input.chunk);
            }
            // Registered before the kick check, so a kick between the two
            // still wakes us (see SessionHandle::kick).
            let wake = session.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            if let Some(reason) = session.kicked(self.generation) {
                // A delivery wake-up this connection consumed belongs to its
                // successor now.
                session.wake.notify_one();
                return Err(violation(
                    reason,
                    "session taken over or discarded by a new connection",
                ));
            }
            tokio::select! {
                res = writer.write(&self.out.buf), if !self.out.buf.is_empty() => {
                    self.on_written(res, writer).await?;
                }
                res = reader.read_buf(&mut input.buf), if can_read => {
                    self.on_read(res, &mut input, &limits)?;
                }
                _ = &mut wake => {}
                // Boxed on demand so that every idle connection's task does
                // not carry the timer this wait needs.
                _ = async { Box::pin(wait_for_room(&self.pressure, self.publish_limit.as_deref(), self.budget_paused())).await }, if throttled => {
                    // We chose not to read; the client is not silent.
                    input.last_read = Instant::now();
                }
                _ = &mut keep_alive => {
                    // A client we chose not to read is not silent.
                    if input.last_read.elapsed() >= grace && !throttled {
                        return Err(violation(ReasonCode::KeepAliveTimeout, "keep-alive timeout"));
                    }
                    keep_alive.as_mut().reset(tokio::time::Instant::from_std(input.last_read + grace));
                    input.chunk = MIN_READ_CHUNK;
                }
            }
            self.drain();
        }
    }

    async fn on_written<W: AsyncWrite + Unpin>(
        &mut self,
        res: std::io::Result<usize>,
        writer: &mut W,
    ) -> Result<(), End> {
        let n = match res {
            Ok(0) | Err(_) => return Err(End::Closed),
            Ok(n) => n,
        };
        Stats::add(&self.broker.stats().bytes_sent, n as u64);
        let _ = self.out.buf.split_to(n);
        if self.out.buf.is_empty() {
            writer.flush().await.map_err(|_| End::Closed)?;
            self.out.buf = BytesMut::new();
        }
        Ok(())
    }

    fn on_read(
        &mut self,
        res: std::io::Result<usize>,
        input: &mut Input,
        limits: &DecodeLimits,
    ) -> Result<(), End> {
        let n = match res {
            Ok(0) | Err(_) => return Err(End::Closed),
            Ok(n) => n,
        };
        Stats::add(&self.broker.stats().bytes_received, n as u64);
        input.last_read = Instant::now();
        // Reads that fill half the buffer mean traffic: read more per
        // syscall. The keep-alive tick shrinks it back when idle.
        if n >= input.chunk / 2 {
            input.chunk = (input.chunk * 2).min(MAX_READ_CHUNK);
        }
        input.pending = self.process(&mut input.buf, limits)?;
        if input.buf.is_empty() && input.chunk == MIN_READ_CHUNK {
            // Give idle connections their memory back.
            input.buf = BytesMut::new();
        }
        Ok(())
    }

    fn drain(&mut self) {
        let stats = self.broker.stats();
        let marks = self.broker.water_marks();
        let (sent, below_low) = {
            let mut state = self.session.state();
            let sent = self.out.drain(&mut state, stats, Instant::now());
            (sent, marks.below_low(state.queued(), state.held_bytes()))
        };
        self.session.drained(sent, below_low);
        if sent > 0 {
            Stats::add(&stats.messages_sent, sent);
        }
    }

    /// Decodes and handles every whole packet in `rbuf`.
    /// Returns true when it stopped early because a subscriber it published
    /// to is congested: the rest of `rbuf` waits for room.
    fn process(&mut self, rbuf: &mut BytesMut, limits: &DecodeLimits) -> Result<bool, End> {
        let result = self.process_frames(rbuf, limits);
        Stats::add(
            &self.broker.stats().messages_received,
            std::mem::take(&mut self.received),
        );
        result
    }

    fn process_frames(&mut self, rbuf: &mut BytesMut, limits: &DecodeLimits) -> Result<bool, End> {
        // One clock read per batch, not per packet: at a million PUBLISH a
        // second the clock is measurable, and a batch arrived at one time.
        let now = Instant::now();
        loop {
            // One read can carry thousands of PUBLISH packets: stop at the
            // first congested subscriber, not at the end of the batch.
            if !self.pressure.is_empty() {
                return Ok(true);
            }
            let n = match frame_len(rbuf, limits) {
                Ok(Some(n)) => n,
                Ok(None) => return Ok(false),
                Err(e) => return Err(self.malformed(e)),
            };
            // Packet type 3 is PUBLISH: spend its tokens before decoding, so
            // a throttled packet stays in `rbuf` untouched until it may go.
            if rbuf.first().is_some_and(|b| b >> 4 == 3) {
                // At the memory budget, PUBLISH waits in the socket rather
                // than in the broker's queues; acknowledgements and pings
                // from the same client still go through.
                if self.broker.over_budget() {
                    self.set_budget_paused(true);
                    self.broker.stats().limits.hit(
                        LimitKind::MemoryBudget,
                        Some(self.peer),
                        Some(&self.session.client_id),
                    );
                    return Ok(true);
                }
                if !self.admit_publish(n, now)? {
                    return Ok(true);
                }
            }
            let frame = rbuf.split_to(n).freeze();
            let packet = decode(frame, self.version).map_err(|e| self.malformed(e))?;
            tracing::trace!(client_id = %self.session.client_id, packet = packet_name(&packet), "received");
            self.handle(packet)?;
        }
    }

    fn budget_paused(&self) -> bool {
        self.publish_limit.as_ref().is_some_and(|l| l.budget_paused)
    }

    fn set_budget_paused(&mut self, paused: bool) {
        let limits = self.broker.limits();
        let now = Instant::now();
        self.publish_limit
            .get_or_insert_with(|| {
                Box::new(PublishLimiter::new(
                    limits.max_publish_rate,
                    limits.max_publish_bandwidth,
                    now,
                ))
            })
            .budget_paused = paused;
    }

    /// Spends a PUBLISH of `size` bytes from the buckets. `Ok(false)`:
    /// throttled, processing pauses until the limiter's pause ends; `Err`:
    /// over the limit under "disconnect".
    fn admit_publish(&mut self, size: usize, now: Instant) -> Result<bool, End> {
        let limits = self.broker.limits();
        let limiter = self.publish_limit.get_or_insert_with(|| {
            Box::new(PublishLimiter::new(
                limits.max_publish_rate,
                limits.max_publish_bandwidth,
                now,
            ))
        });
        if limiter.admit(size, now).is_ok() {
            return Ok(true);
        }
        let stats = self.broker.stats();
        stats.limits.hit(
            LimitKind::PublishRate,
            Some(self.peer),
            Some(&self.session.client_id),
        );
        let action = limits.publish_limit_action;
        if let Some(unlogged) = limiter.log_hit(now) {
            tracing::info!(peer = %self.peer, client_id = %self.session.client_id, ?action, max_publish_rate = limits.max_publish_rate, max_publish_bandwidth = limits.max_publish_bandwidth, unlogged, "publish rate limit reached");
        }
        match action {
            PublishLimitAction::Throttle => {
                // The limiter is paused now; the loop waits for it.
                Stats::add(&stats.publish_rate_limited, 1);
                Ok(false)
            }
            PublishLimitAction::Disconnect => {
                Stats::add(&stats.publish_rate_limited, 1);
                Stats::add(&stats.publish_rate_disconnects, 1);
                Err(violation(
                    ReasonCode::MessageRateTooHigh,
                    "publish rate or bandwidth limit exceeded",
                ))
            }
        }
    }

    /// Until when input is paused by the publish limits, if it is.
    fn paused_until(&mut self) -> Option<Instant> {
        let limiter = self.publish_limit.as_mut()?;
        limiter.paused_until(Instant::now())
    }

    fn malformed(&self, e: bulwark_codec::DecodeError) -> End {
        let stats = self.broker.stats();
        Stats::add(&stats.malformed_packets, 1);
        if matches!(e, bulwark_codec::DecodeError::PacketTooLarge { .. }) {
            stats.limits.hit(
                LimitKind::PacketSize,
                Some(self.peer),
                Some(&self.session.client_id),
            );
        }
        violation(e.reason_code(), e.to_string())
    }

    /// Sends the final DISCONNECT where one is due, decides the will, and
    /// detaches from the session.
    async fn finish<R, W>(&mut self, end: End, reader: &mut R, writer: &mut W)
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let lingers = matches!(end, End::Violation { .. });
        let keep_will = match &end {
            End::ClientDisconnect { keep_will } => *keep_will,
            End::Closed => true,
            End::Violation { reason, detail } => {
                tracing::info!(peer = %self.peer, client_id = %self.session.client_id, ?reason, detail, "closing connection");
                if self.version == ProtocolVersion::V5 {
                    self.out.packet(&Packet::Disconnect(Disconnect {
                        reason: *reason,
                        properties: Default::default(),
                    }));
                }
                true
            }
        };
        if !self.out.buf.is_empty() {
            write_best_effort(writer, &self.out.buf).await;
        } else {
            let _ = tokio::time::timeout(Duration::from_secs(1), writer.shutdown()).await;
        }
        if lingers {
            linger(reader).await;
        }
        let will = if keep_will { self.will.take() } else { None };
        self.broker
            .detach(&self.session, self.generation, self.expiry_interval, will);
        tracing::debug!(peer = %self.peer, client_id = %self.session.client_id, ?end, "client disconnected");
    }
}
