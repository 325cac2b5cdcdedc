//! The client side of SCRAM-SHA-256: what tests, benchmarks and tools use
//! to talk to the server side. GS2 header "n,," only.

use data_encoding::BASE64;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::message::{check_nonce, encode_saslname};
use super::{
    hmac_sha256, salted_password, sha256, ScramError, KEY_LEN, MAX_ITERATIONS, MAX_MESSAGE_LEN,
    MIN_ITERATIONS, NONCE_LEN, TOTP_REQUEST,
};

const GS2_HEADER: &str = "n,,";

/// A client that has sent its first message.
pub struct ScramClient {
    gs2_header: &'static str,
    bare: String,
    nonce: String,
}

/// A client that has sent its final message and expects the server's.
pub struct ScramClientFinal {
    auth_message: String,
    server_key: Zeroizing<[u8; KEY_LEN]>,
}

/// What the server-final message said besides its valid signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFinal {
    /// The server asked for a TOTP code next (`t=totp`).
    pub totp_requested: bool,
}

impl ScramClient {
    /// Starts an exchange for `username`: the state and the client-first
    /// message.
    pub fn start(username: &str) -> Result<(ScramClient, Vec<u8>), ScramError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ScramError::Random)?;
        Ok(ScramClient::start_with_nonce(
            username,
            &BASE64.encode(&nonce),
        ))
    }

    /// [`ScramClient::start`] with a given nonce (for test vectors).
    pub fn start_with_nonce(username: &str, nonce: &str) -> (ScramClient, Vec<u8>) {
        ScramClient::start_with_header(username, nonce, GS2_HEADER)
    }

    /// Tests also try "y,,".
    pub(super) fn start_with_header(
        username: &str,
        nonce: &str,
        gs2_header: &'static str,
    ) -> (ScramClient, Vec<u8>) {
        let bare = format!("n={},r={nonce}", encode_saslname(username));
        let first = format!("{gs2_header}{bare}");
        (
            ScramClient {
                gs2_header,
                bare,
                nonce: nonce.to_owned(),
            },
            first.into_bytes(),
        )
    }

    /// Answers the server-first message with the client-final message.
    pub fn respond(
        self,
        server_first: &[u8],
        password: &[u8],
    ) -> Result<(ScramClientFinal, Vec<u8>), ScramError> {
        if server_first.len() > MAX_MESSAGE_LEN {
            return Err(ScramError::TooLong);
        }
        let sf = std::str::from_utf8(server_first)
            .map_err(|_| ScramError::Malformed("server-first is not UTF-8"))?;
        if let Some(e) = sf.strip_prefix("e=") {
            return Err(ScramError::ServerError(e.to_owned()));
        }
        let mut attrs = sf.split(',');
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("server-first: expected 'r='"))?;
        check_nonce(nonce)?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        let salt = attrs
            .next()
            .and_then(|a| a.strip_prefix("s="))
            .and_then(|s| BASE64.decode(s.as_bytes()).ok())
            .ok_or(ScramError::Malformed("server-first: expected 's=' salt"))?;
        let iterations: u32 = attrs
            .next()
            .and_then(|a| a.strip_prefix("i="))
            .and_then(|i| i.parse().ok())
            .ok_or(ScramError::Malformed("server-first: expected 'i=' count"))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::Iterations(iterations));
        }
        let salted = salted_password(password, &salt, iterations)?;
        let client_key = Zeroizing::new(hmac_sha256(salted.as_slice(), b"Client Key"));
        let stored_key = Zeroizing::new(sha256(client_key.as_slice()));
        let without_proof = format!("c={},r={nonce}", BASE64.encode(self.gs2_header.as_bytes()));
        let auth_message = format!("{},{sf},{without_proof}", self.bare);
        let signature = hmac_sha256(stored_key.as_slice(), auth_message.as_bytes());
        let mut proof = [0u8; KEY_LEN];
        for ((p, k), s) in proof.iter_mut().zip(client_key.iter()).zip(signature) {
            *p = k ^ s;
        }
        let client_final = format!("{without_proof},p={}", BASE64.encode(&proof));
        Ok((
            ScramClientFinal {
                auth_message,
                server_key: Zeroizing::new(hmac_sha256(salted.as_slice(), b"Server Key")),
            },
            client_final.into_bytes(),
        ))
    }
}

impl ScramClientFinal {
    /// Verifies the server's signature in the server-final message.
    pub fn verify(self, server_final: &[u8]) -> Result<ServerFinal, ScramError> {
        let s = std::str::from_utf8(server_final)
            .map_err(|_| ScramError::Malformed("server-final is not UTF-8"))?;
        if let Some(e) = s.strip_prefix("e=") {
            return Err(ScramError::ServerError(e.to_owned()));
        }
        let mut attrs = s.split(',');
        let signature = attrs
            .next()
            .and_then(|a| a.strip_prefix("v="))
            .and_then(|v| BASE64.decode(v.as_bytes()).ok())
            .ok_or(ScramError::Malformed("server-final: expected 'v='"))?;
        let expected = hmac_sha256(self.server_key.as_slice(), self.auth_message.as_bytes());
        if !bool::from(expected.as_slice().ct_eq(&signature)) {
            return Err(ScramError::ServerSignatureInvalid);
        }
        Ok(ServerFinal {
            totp_requested: attrs.any(|a| a == TOTP_REQUEST),
        })
    }
}
