//! Parsing of the client's SCRAM messages (RFC 5802 section 7). Nothing is
//! indexed: messages are split on ',' and attributes matched by prefix.

use data_encoding::BASE64;

use super::{ScramError, KEY_LEN, MAX_MESSAGE_LEN};

pub(super) struct ClientFirst {
    /// "n,," or "y,," (with an authzid equal to the user name, "n,a=NAME,").
    pub gs2_header: String,
    /// client-first-message-bare, verbatim: part of the AuthMessage.
    pub bare: String,
    pub username: String,
    pub nonce: String,
}

pub(super) struct ClientFinal {
    /// The decoded `c=` attribute.
    pub channel_binding: Vec<u8>,
    pub nonce: String,
    /// client-final-message-without-proof, verbatim.
    pub without_proof: String,
    pub proof: [u8; KEY_LEN],
}

fn text(msg: &[u8]) -> Result<&str, ScramError> {
    if msg.len() > MAX_MESSAGE_LEN {
        return Err(ScramError::TooLong);
    }
    std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))
}

pub(super) fn parse_client_first(msg: &[u8]) -> Result<ClientFirst, ScramError> {
    let s = text(msg)?;
    let (flag, rest) = s
        .split_once(',')
        .ok_or(ScramError::Malformed("no GS2 header"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(ScramError::ChannelBindingNotSupported),
        _ => return Err(ScramError::Malformed("GS2 flag must be 'n', 'y' or 'p='")),
    }
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or(ScramError::Malformed("GS2 header is not terminated"))?;
    let authzid = match authzid {
        "" => None,
        a => Some(saslname(a.strip_prefix("a=").ok_or(
            ScramError::Malformed("authorization identity must be 'a=NAME'"),
        )?)?),
    };
    let mut attrs = bare.split(',');
    let first = attrs.next().unwrap_or_default();
    if first.starts_with("m=") {
        return Err(ScramError::ExtensionNotSupported);
    }
    let username = saslname(
        first
            .strip_prefix("n=")
            .ok_or(ScramError::Malformed("expected 'n=' user name"))?,
    )?;
    if username.is_empty() {
        return Err(ScramError::Malformed("empty user name"));
    }
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or(ScramError::Malformed(
            "expected 'r=' nonce after the user name",
        ))?;
    check_nonce(nonce)?;
    for ext in attrs {
        check_extension(ext)?;
    }
    if authzid.as_ref().is_some_and(|a| *a != username) {
        return Err(ScramError::AuthzidNotSupported);
    }
    let gs2_len = s.len().saturating_sub(bare.len());
    Ok(ClientFirst {
        gs2_header: s.get(..gs2_len).unwrap_or_default().to_owned(),
        bare: bare.to_owned(),
        username,
        nonce: nonce.to_owned(),
    })
}

pub(super) fn parse_client_final(msg: &[u8]) -> Result<ClientFinal, ScramError> {
    let s = text(msg)?;
    let (without_proof, proof) = s
        .rsplit_once(",p=")
        .ok_or(ScramError::Malformed("no 'p=' proof at the end"))?;
    let proof = BASE64
        .decode(proof.as_bytes())
        .ok()
        .and_then(|p| <[u8; KEY_LEN]>::try_from(p.as_slice()).ok())
        .ok_or(ScramError::Malformed("proof is not 32 bytes of base64"))?;
    let mut attrs = without_proof.split(',');
    let channel_binding = attrs
        .next()
        .and_then(|a| a.strip_prefix("c="))
        .and_then(|c| BASE64.decode(c.as_bytes()).ok())
        .ok_or(ScramError::Malformed(
            "expected 'c=' channel binding (base64)",
        ))?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or(ScramError::Malformed("expected 'r=' nonce"))?;
    for ext in attrs {
        check_extension(ext)?;
    }
    Ok(ClientFinal {
        channel_binding,
        nonce: nonce.to_owned(),
        without_proof: without_proof.to_owned(),
        proof,
    })
}

/// RFC 5802 saslname: '=2C' and '=3D' encode ',' and '='; any other '='
/// is an error.
pub(super) fn saslname(s: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some((head, tail)) = rest.split_once('=') {
        out.push_str(head);
        if let Some(t) = tail.strip_prefix("2C") {
            out.push(',');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("3D") {
            out.push('=');
            rest = t;
        } else {
            return Err(ScramError::Malformed(
                "'=' in a name must be '=2C' or '=3D'",
            ));
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The inverse of [`saslname`].
pub(super) fn encode_saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

/// Printable ASCII except ',' (RFC 5802 `printable`), 1 to 512 bytes.
pub(super) fn check_nonce(nonce: &str) -> Result<(), ScramError> {
    let ok = !nonce.is_empty()
        && nonce.len() <= 512
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',');
    if ok {
        Ok(())
    } else {
        Err(ScramError::Malformed(
            "nonce must be 1 to 512 printable characters without ','",
        ))
    }
}

/// An optional extension: a letter, '=', a value. Unknown ones are ignored,
/// as RFC 5802 says.
fn check_extension(ext: &str) -> Result<(), ScramError> {
    let mut chars = ext.chars();
    match (chars.next(), chars.next()) {
        (Some(c), Some('=')) if c.is_ascii_alphabetic() => Ok(()),
        _ => Err(ScramError::Malformed("attribute must be 'x=value'")),
    }
}
