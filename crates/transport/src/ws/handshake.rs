//! Sans-IO HTTP/1.1 upgrade request check (RFC 6455 4.2.1, RFC 9112) and
//! the responses that answer it.
//!
//! The request head is parsed strictly: CRLF line endings only, no header
//! line folding, token header names, printable values, and at most one of
//! each header whose meaning would be ambiguous if repeated. Anything else
//! is refused rather than guessed at, so that this parser and any proxy in
//! front of it cannot disagree about what the request said.

use super::base64;
use super::error::{reason_phrase, WsError};
use super::WsOptions;

/// Appended to the client's key before hashing (RFC 6455 1.3).
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A request that passed every check: what the 101 answer must carry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Upgrade {
    /// The `Sec-WebSocket-Accept` value.
    pub(crate) accept: String,
    /// The subprotocol chosen from the client's offer.
    pub(crate) protocol: &'static str,
}

/// Looks for the blank line that ends the request head in `buf`, scanning
/// from `from` (bytes before it were scanned by an earlier call). Returns
/// the length of the head including that blank line.
pub(crate) fn head_end(buf: &[u8], from: usize) -> Result<Option<usize>, WsError> {
    let start = from.min(buf.len());
    for (i, _) in buf
        .iter()
        .enumerate()
        .skip(start)
        .filter(|(_, &b)| b == b'\n')
    {
        // Rejecting a bare LF here, rather than waiting for CRLF CRLF that
        // such a client never sends, answers it at once.
        if i == 0 || buf.get(i - 1) != Some(&b'\r') {
            return Err(WsError::BareLineFeed);
        }
        if i >= 3 && buf.get(i - 3..=i) == Some(b"\r\n\r\n".as_slice()) {
            return Ok(Some(i + 1));
        }
    }
    Ok(None)
}

/// The fields of the request head the upgrade depends on.
#[derive(Default)]
struct Fields<'a> {
    host: Option<&'a [u8]>,
    upgrade: Vec<&'a [u8]>,
    connection: Vec<&'a [u8]>,
    version: Option<&'a [u8]>,
    key: Option<&'a [u8]>,
    origin: Option<&'a [u8]>,
    protocols: Vec<&'a [u8]>,
}

/// Checks a complete request head (as delimited by [`head_end`]).
pub(crate) fn check_request(head: &[u8], opts: &WsOptions) -> Result<Upgrade, WsError> {
    let head = head
        .strip_suffix(b"\r\n\r\n")
        .ok_or(WsError::MalformedRequestLine)?;
    // `head_end` guaranteed every LF follows a CR, so this splits on CRLF.
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next().ok_or(WsError::MalformedRequestLine)?;
    let RequestLine {
        method,
        target,
        version,
    } = parse_request_line(request_line)?;
    let mut f = Fields::default();
    for (i, line) in lines.enumerate() {
        parse_header(line, i + 2, &mut f)?;
    }

    if method != b"GET" {
        return Err(WsError::MethodNotGet(lossy(method)));
    }
    check_http_version(version)?;
    let path = target.split(|&b| b == b'?').next().unwrap_or(target);
    if path != opts.path.as_bytes() {
        return Err(WsError::PathNotFound {
            path: lossy(path),
            expected: opts.path.clone(),
        });
    }
    if f.host.is_none_or(<[u8]>::is_empty) {
        return Err(WsError::MissingHost);
    }
    if !list_contains(&f.upgrade, b"websocket") {
        return Err(WsError::NotWebSocketUpgrade);
    }
    if !list_contains(&f.connection, b"upgrade") {
        return Err(WsError::ConnectionNotUpgrade);
    }
    match f.version {
        None => return Err(WsError::MissingWsVersion),
        Some(v) if v != b"13" => return Err(WsError::UnsupportedWsVersion(lossy(v))),
        Some(_) => {}
    }
    let key = f.key.ok_or(WsError::MissingKey)?;
    if base64::decode(key).is_none_or(|k| k.len() != 16) {
        return Err(WsError::InvalidKey(lossy(key)));
    }
    if let Some(origin) = f.origin {
        let allowed = opts.allowed_origins.is_empty()
            || opts
                .allowed_origins
                .iter()
                .any(|o| o.as_bytes().eq_ignore_ascii_case(origin));
        if !allowed {
            return Err(WsError::OriginNotAllowed(lossy(origin)));
        }
    }
    let protocol = choose_protocol(&f.protocols)?;
    Ok(Upgrade {
        accept: accept_key(key),
        protocol,
    })
}

struct RequestLine<'a> {
    method: &'a [u8],
    target: &'a [u8],
    version: &'a [u8],
}

fn parse_request_line(line: &[u8]) -> Result<RequestLine<'_>, WsError> {
    let mut parts = line.split(|&b| b == b' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None)
            if !m.is_empty()
                && m.iter().copied().all(is_tchar)
                && t.first() == Some(&b'/')
                && t.iter().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(RequestLine {
                method: m,
                target: t,
                version: v,
            })
        }
        _ => Err(WsError::MalformedRequestLine),
    }
}

fn check_http_version(v: &[u8]) -> Result<(), WsError> {
    let ok = match v.strip_prefix(b"HTTP/") {
        Some(&[major, b'.', minor]) if major.is_ascii_digit() && minor.is_ascii_digit() => {
            (major, minor) >= (b'1', b'1')
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(WsError::HttpVersion(lossy(v)))
    }
}

/// Parses one header line (number `line_no` in the request, for the error
/// message) and records it in `f` if the upgrade depends on it.
fn parse_header<'a>(line: &'a [u8], line_no: usize, f: &mut Fields<'a>) -> Result<(), WsError> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(WsError::ObsoleteLineFolding);
    }
    let malformed = || WsError::MalformedHeader { line: line_no };
    let colon = line.iter().position(|&b| b == b':').ok_or_else(malformed)?;
    let (name, value) = line.split_at_checked(colon).ok_or_else(malformed)?;
    let value = trim_ows(value.get(1..).unwrap_or_default());
    let value_ok = value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80);
    // A token name also refuses whitespace before the colon, which RFC 9112
    // 5.1 requires: proxies disagree on what such a header means.
    if name.is_empty() || !name.iter().copied().all(is_tchar) || !value_ok {
        return Err(malformed());
    }
    let single = |slot: &mut Option<&'a [u8]>, label: &'static str| {
        if slot.replace(value).is_some() {
            Err(WsError::DuplicateHeader(label))
        } else {
            Ok(())
        }
    };
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    if is("host") {
        single(&mut f.host, "Host")?;
    } else if is("upgrade") {
        f.upgrade.push(value);
    } else if is("connection") {
        f.connection.push(value);
    } else if is("sec-websocket-version") {
        single(&mut f.version, "Sec-WebSocket-Version")?;
    } else if is("sec-websocket-key") {
        single(&mut f.key, "Sec-WebSocket-Key")?;
    } else if is("origin") {
        single(&mut f.origin, "Origin")?;
    } else if is("sec-websocket-protocol") {
        f.protocols.push(value);
    }
    Ok(())
}

/// Picks the subprotocol: "mqtt" (MQTT 3.1.1 and 5) over "mqttv3.1" (older
/// clients), whatever order the client listed them in. Subprotocol names
/// are compared exactly, as browsers compare the answer with their offer.
fn choose_protocol(values: &[&[u8]]) -> Result<&'static str, WsError> {
    if values.is_empty() {
        return Err(WsError::MissingSubprotocol);
    }
    let offered = || values.iter().flat_map(|v| list_items(v));
    if offered().any(|p| p == b"mqtt") {
        Ok("mqtt")
    } else if offered().any(|p| p == b"mqttv3.1") {
        Ok("mqttv3.1")
    } else {
        let joined = values
            .iter()
            .map(|v| lossy(v))
            .collect::<Vec<_>>()
            .join(", ");
        Err(WsError::UnsupportedSubprotocol(joined))
    }
}

/// The `Sec-WebSocket-Accept` value for a client key (RFC 6455 4.2.2).
pub(crate) fn accept_key(key: &[u8]) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(ACCEPT_GUID.as_bytes());
    base64::encode(&sha.digest().bytes())
}

/// The 101 answer to a request that passed [`check_request`].
pub(crate) fn accept_response(up: &Upgrade) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\
         Sec-WebSocket-Protocol: {}\r\n\r\n",
        up.accept, up.protocol
    )
}

/// The HTTP answer refusing an upgrade with `status`, with a short body.
pub(crate) fn refusal_response(status: u16, body: &str) -> String {
    let extra = match status {
        // RFC 6455 4.4: name the version we speak; RFC 9110 15.5.22: a 426
        // says what to upgrade to.
        426 => "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n",
        405 => "Allow: GET\r\n",
        _ => "",
    };
    format!(
        "HTTP/1.1 {status} {}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         X-Content-Type-Options: nosniff\r\n\
         Content-Length: {}\r\n\
         Connection: close\r\n\
         {extra}\r\n\
         {body}\n",
        reason_phrase(status),
        body.len() + 1,
    )
}

/// RFC 9110 5.6.2 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The non-empty elements of a comma-separated header value.
fn list_items(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(trim_ows)
        .filter(|s| !s.is_empty())
}

fn list_contains(values: &[&[u8]], token: &[u8]) -> bool {
    values
        .iter()
        .flat_map(|v| list_items(v))
        .any(|t| t.eq_ignore_ascii_case(token))
}

/// Peer bytes for an error message. Header lines hold no CR or LF, so the
/// text cannot forge a log line.
fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
