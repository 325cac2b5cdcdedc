//! MQTT 5 re-authentication (AUTH 0x19) on a connection that authenticated
//! with SCRAM-SHA-256: the same exchange as at CONNECT, run packet by
//! packet inside the connection's event loop, for the same identity.
//!
//! A failed re-authentication closes the connection with the reason code
//! of the failure [MQTT-4.12.1-2]; the identity may not change.

use std::net::SocketAddr;
use std::sync::Arc;

use bulwark_codec::{Auth, Packet, Properties, ReasonCode};
use bulwark_security::auth::{authorize_scram_identity, Decision, ScramDecision, TotpChallenge};
use bulwark_security::factor::FactorSet;
use bulwark_security::scram::{with_totp_request, ScramServer};
use bulwark_security::store::Store;

use crate::auth::Verdict;
use crate::connection::{violation, Conn, End};

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
