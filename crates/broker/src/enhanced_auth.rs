//! MQTT 5 enhanced authentication (SCRAM-SHA-256, with a TOTP step where
//! the identity needs one): the exchange over AUTH packets at CONNECT, and
//! re-authentication (AUTH 0x19) on a live connection, for the same
//! identity only. The decisions are `crate::auth`'s and
//! `bulwark_security`'s; this module moves the packets.
//!
//! A failed re-authentication closes the connection with 0x87
//! [MQTT-4.12.1-2]; the identity may not change.

use std::net::SocketAddr;
use std::sync::Arc;

use bulwark_codec::{Auth, Packet, Properties, ReasonCode};
use bulwark_security::auth::{authorize_scram_identity, Decision, ScramDecision, TotpChallenge};
use bulwark_security::factor::FactorSet;
use bulwark_security::scram::{with_totp_request, ScramServer};
use bulwark_security::store::Store;

use bulwark_codec::{decode, DecodeLimits, ProtocolVersion};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::auth::{ScramNext, Verdict};
use crate::broker::Broker;
use crate::connect::ListenerInfo;
use crate::connection::{packet_name, read_frame, violation, Conn, End};
use crate::outbound::Outbound;

/// What a SCRAM-authenticated connection keeps for re-authentication.
pub(crate) struct ReAuth {
    pub method: String,
    pub identity: Arc<str>,
    pub cert_identity: Option<Arc<str>>,
    pub min_factors: FactorSet,
    state: State,
}

enum State {
    Idle,
    Final(ScramServer, Arc<Store>),
    Totp(TotpChallenge, Arc<Store>),
}

impl ReAuth {
    pub fn new(
        method: String,
        identity: Arc<str>,
        cert_identity: Option<Arc<str>>,
        min_factors: FactorSet,
    ) -> Self {
        ReAuth {
            method,
            identity,
            cert_identity,
            min_factors,
            state: State::Idle,
        }
    }
}

fn auth_packet(reason: ReasonCode, method: &str, data: Option<Vec<u8>>) -> Packet {
    Packet::Auth(Auth {
        reason,
        properties: Properties {
            authentication_method: Some(method.to_owned()),
            authentication_data: data.map(bytes::Bytes::from),
            ..Properties::default()
        },
    })
}

/// DISCONNECT allows fewer reason codes than CONNACK (no 0x86): every
/// re-authentication failure closes with 0x87 Not authorized, the detail
/// goes to the log.
fn refused(v: Verdict) -> End {
    match v {
        Verdict::Refused { detail, .. } => violation(
            ReasonCode::NotAuthorized,
            format!("re-authentication failed: {detail}"),
        ),
        _ => violation(ReasonCode::NotAuthorized, "re-authentication failed"),
    }
}

impl Conn {
    pub(crate) fn on_auth(&mut self, a: Auth) -> Result<(), End> {
        let peer: SocketAddr = self.peer;
        let client_id = self.session.client_id.clone();
        let broker = self.broker.clone();
        let Some(re) = self.reauth.as_mut() else {
            return Err(violation(
                ReasonCode::ProtocolError,
                "AUTH on a connection that did not use enhanced authentication [MQTT-4.12.0-1]",
            ));
        };
        if a.properties.authentication_method.as_deref() != Some(re.method.as_str()) {
            return Err(violation(
                ReasonCode::ProtocolError,
                "AUTH with another authentication method [MQTT-4.12.1-1]",
            ));
        }
        let data = a
            .properties
            .authentication_data
            .map(|d| d.to_vec())
            .unwrap_or_default();
        let auth = broker.auth();
        let state = std::mem::replace(&mut re.state, State::Idle);
        let reply = match (a.reason, state) {
            (ReasonCode::ReAuthenticate, State::Idle) => {
                let (server, first, store) = auth.scram_begin(&data, peer).map_err(refused)?;
                if server.claimed_identity() != &*re.identity {
                    return Err(violation(
                        ReasonCode::NotAuthorized,
                        "re-authentication as another identity",
                    ));
                }
                re.state = State::Final(server, store);
                auth_packet(ReasonCode::ContinueAuthentication, &re.method, Some(first))
            }
            (ReasonCode::ContinueAuthentication, State::Final(server, store)) => {
                let (identity, server_final) = server.finish(&data).map_err(|e| {
                    auth.record_failure(peer, Some(&re.identity));
                    refused(Verdict::Refused {
                        reason: ReasonCode::NotAuthorized,
                        detail: e.to_string(),
                    })
                })?;
                match authorize_scram_identity(
                    &store,
                    &identity,
                    &client_id,
                    re.cert_identity.as_deref(),
                    re.min_factors,
                    crate::auth::unix_now(),
                ) {
                    ScramDecision::Allow { .. } => {
                        auth_packet(ReasonCode::Success, &re.method, Some(server_final))
                    }
                    ScramDecision::TotpRequired(challenge) => {
                        re.state = State::Totp(challenge, store);
                        auth_packet(
                            ReasonCode::ContinueAuthentication,
                            &re.method,
                            Some(with_totp_request(server_final)),
                        )
                    }
                    ScramDecision::Deny { reason } => {
                        auth.record_failure(peer, Some(&re.identity));
                        return Err(violation(
                            ReasonCode::NotAuthorized,
                            format!("re-authentication failed: {reason}"),
                        ));
                    }
                }
            }
            (ReasonCode::ContinueAuthentication, State::Totp(challenge, store)) => {
                match auth.complete_totp(challenge, &store, &data) {
                    Decision::Allow { .. } => auth_packet(ReasonCode::Success, &re.method, None),
                    Decision::Deny { reason } => {
                        auth.record_failure(peer, Some(&re.identity));
                        return Err(violation(
                            ReasonCode::NotAuthorized,
                            format!("re-authentication failed: {reason}"),
                        ));
                    }
                }
            }
            _ => {
                return Err(violation(
                    ReasonCode::ProtocolError,
                    "AUTH out of sequence [MQTT-4.12.1-1]",
                ))
            }
        };
        if let Packet::Auth(Auth {
            reason: ReasonCode::Success,
            ..
        }) = &reply
        {
            tracing::info!(
                target: "bulwark::security",
                event = "reauth_success",
                %peer,
                identity = %re.identity,
                client_id = %client_id,
                "re-authenticated"
            );
        }
        self.out.packet(&reply);
        Ok(())
    }
}

/// MQTT 5 enhanced authentication with SCRAM-SHA-256 (and a TOTP step
/// where the identity requires one) over AUTH packets, within
/// `connect_timeout`. Returns the verdict and, when proven, the
/// server-final message for the CONNACK.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn scram_exchange<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    broker: &Broker,
    connect: &bulwark_codec::Connect,
    client_id: &str,
    peer: SocketAddr,
    listener: &ListenerInfo,
    cert_identity: Option<Arc<str>>,
    (reader, rbuf): (&mut R, &mut BytesMut),
    writer: &mut W,
) -> (Verdict, Option<Vec<u8>>) {
    let auth = broker.auth();
    let method = connect.properties.authentication_method.clone();
    let limits = DecodeLimits {
        max_packet_size: broker.limits().max_packet_size,
    };
    let timeout = broker.limits().connect_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let verdict = async {
        let (server, server_first, store) = match auth.scram_start(connect, peer) {
            Ok(x) => x,
            Err(v) => return (v, None),
        };
        let client_final = match auth_step(
            &mut *reader,
            &mut *rbuf,
            &mut *writer,
            &method,
            server_first,
            deadline,
            &limits,
        )
        .await
        {
            Ok(d) => d,
            Err(e) => return (refused_protocol(e), None),
        };
        match auth
            .scram_finish(
                server,
                &store,
                &client_final,
                client_id,
                cert_identity.as_deref(),
                listener,
                peer,
            )
            .await
        {
            ScramNext::Allowed(id, last) => (Verdict::Identity(id), Some(last)),
            ScramNext::Refused(v) => (v, None),
            ScramNext::Totp(challenge, data) => {
                let code = match auth_step(
                    &mut *reader,
                    &mut *rbuf,
                    &mut *writer,
                    &method,
                    data,
                    deadline,
                    &limits,
                )
                .await
                {
                    Ok(d) => d,
                    Err(e) => return (refused_protocol(e), None),
                };
                (auth.scram_totp(challenge, &store, &code, peer).await, None)
            }
        }
    }
    .await;
    auth.log_scram(&verdict.0, connect, peer, listener);
    verdict
}

/// One AUTH 0x18 out, the client's AUTH 0x18 (same method) back; its data.
async fn auth_step<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    reader: &mut R,
    rbuf: &mut BytesMut,
    writer: &mut W,
    method: &Option<String>,
    data: Vec<u8>,
    deadline: tokio::time::Instant,
    limits: &DecodeLimits,
) -> Result<Vec<u8>, String> {
    let mut out = Outbound::new(ProtocolVersion::V5);
    out.packet(&Packet::Auth(bulwark_codec::Auth {
        reason: ReasonCode::ContinueAuthentication,
        properties: bulwark_codec::Properties {
            authentication_method: method.clone(),
            authentication_data: Some(bytes::Bytes::from(data)),
            ..bulwark_codec::Properties::default()
        },
    }));
    if writer.write_all(&out.buf).await.is_err() || writer.flush().await.is_err() {
        return Err("connection closed during authentication".to_string());
    }
    let frame = match tokio::time::timeout_at(deadline, read_frame(reader, rbuf, limits)).await {
        Ok(Ok(Some(f))) => f,
        Ok(Ok(None)) => return Err("connection closed during authentication".into()),
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err("authentication not completed within connect_timeout".into()),
    };
    match decode(frame, ProtocolVersion::V5) {
        Ok(Packet::Auth(a))
            if a.reason == ReasonCode::ContinueAuthentication
                && &a.properties.authentication_method == method =>
        {
            Ok(a.properties
                .authentication_data
                .map(|d| d.to_vec())
                .unwrap_or_default())
        }
        Ok(other) => Err(format!(
            "expected AUTH (continue, same method), got {}",
            packet_name(&other)
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn refused_protocol(detail: String) -> Verdict {
    Verdict::Refused {
        reason: ReasonCode::ProtocolError,
        detail,
    }
}
