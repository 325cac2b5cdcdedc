//! Every way a WebSocket peer can get the upgrade or the framing wrong, with
//! the HTTP status or close code it is answered with.

use std::io;

/// Why a WebSocket upgrade was refused or a connection failed.
///
/// Handshake variants carry the HTTP status they are answered with
/// ([`WsError::http_status`]); frame variants the close code sent before the
/// connection is dropped ([`WsError::close_code`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),

    // --- HTTP upgrade -----------------------------------------------------
    #[error("connection closed before the upgrade request's headers were complete")]
    HandshakeEof,
    #[error("upgrade request exceeds max_request_bytes {limit} before the end of its headers")]
    RequestTooLarge { limit: usize },
    #[error("upgrade request line is not 'METHOD /path HTTP/x.y'")]
    MalformedRequestLine,
    #[error("upgrade request has a line ending in LF without CR")]
    BareLineFeed,
    #[error("upgrade request uses header line folding (obs-fold, RFC 9112 5.2)")]
    ObsoleteLineFolding,
    #[error("upgrade request header line {line} is not 'name: value' with a token name and printable value")]
    MalformedHeader { line: usize },
    #[error("upgrade request has more than one '{0}' header")]
    DuplicateHeader(&'static str),
    #[error("upgrade request method '{0}' is not GET")]
    MethodNotGet(String),
    #[error("upgrade request version '{0}' is not HTTP/1.1 or later")]
    HttpVersion(String),
    #[error("upgrade request path '{path}' is not the configured '{expected}'")]
    PathNotFound { path: String, expected: String },
    #[error("upgrade request has no Host header")]
    MissingHost,
    #[error("Upgrade header does not name 'websocket'")]
    NotWebSocketUpgrade,
    #[error("Connection header lacks the 'upgrade' token")]
    ConnectionNotUpgrade,
    #[error("upgrade request has no Sec-WebSocket-Version header (13 required)")]
    MissingWsVersion,
    #[error("Sec-WebSocket-Version '{0}' is not 13")]
    UnsupportedWsVersion(String),
    #[error("upgrade request has no Sec-WebSocket-Key header")]
    MissingKey,
    #[error("Sec-WebSocket-Key '{0}' is not base64 of 16 bytes (RFC 6455 4.1)")]
    InvalidKey(String),
    #[error("Origin '{0}' is not in the listener's allowed_origins")]
    OriginNotAllowed(String),
    #[error("upgrade request has no Sec-WebSocket-Protocol header; MQTT over WebSocket requires 'mqtt' [MQTT-6.0.0-3]")]
    MissingSubprotocol,
    #[error("Sec-WebSocket-Protocol '{0}' offers neither 'mqtt' nor 'mqttv3.1' [MQTT-6.0.0-3]")]
    UnsupportedSubprotocol(String),

    // --- Frames -----------------------------------------------------------
    #[error("client frame not masked (RFC 6455 5.1)")]
    UnmaskedFrame,
    #[error("frame has reserved bits {0:#05b} set but no extension was negotiated (RFC 6455 5.2)")]
    ReservedBits(u8),
    #[error("frame opcode {0:#x} is reserved (RFC 6455 5.2)")]
    UnknownOpcode(u8),
    #[error("text frame received; MQTT over WebSocket uses binary frames only [MQTT-6.0.0-1]")]
    TextFrame,
    #[error("control frame (opcode {0:#x}) is fragmented (RFC 6455 5.5)")]
    FragmentedControl(u8),
    #[error(
        "control frame (opcode {opcode:#x}) payload of {len} bytes exceeds 125 (RFC 6455 5.5)"
    )]
    ControlTooLong { opcode: u8, len: u64 },
    #[error("continuation frame without a fragmented message in progress (RFC 6455 5.4)")]
    UnexpectedContinuation,
    #[error("new data frame while a fragmented message is in progress (RFC 6455 5.4)")]
    ExpectedContinuation,
    #[error("64-bit frame length has its most significant bit set (RFC 6455 5.2)")]
    LengthMsbSet,
    #[error("frame of {len} bytes exceeds max_frame_size {max}")]
    FrameTooLarge { len: u64, max: usize },
    #[error("fragmented message of {len} bytes exceeds max_message_size {max}")]
    MessageTooLarge { len: u64, max: usize },
    #[error("close frame with a 1-byte payload (RFC 6455 5.5.1)")]
    CloseTooShort,
    #[error("close frame status code {0} is not one a peer may send (RFC 6455 7.4)")]
    InvalidCloseCode(u16),
    #[error("close frame reason is not UTF-8 (RFC 6455 5.5.1)")]
    CloseReasonNotUtf8,
    #[error("connection closed in the middle of a WebSocket frame")]
    TruncatedFrame,
}

/// Close codes of RFC 6455 7.4.1.
pub(crate) mod close {
    pub const NORMAL: u16 = 1000;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const UNSUPPORTED_DATA: u16 = 1003;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
}

impl WsError {
    /// The HTTP status a handshake failure is answered with, or `None` when
    /// no answer is due (the peer left, or this is not a handshake error).
    pub fn http_status(&self) -> Option<u16> {
        use WsError::*;
        Some(match self {
            RequestTooLarge { .. } => 431,
            MethodNotGet(_) => 405,
            PathNotFound { .. } => 404,
            OriginNotAllowed(_) => 403,
            MissingWsVersion | UnsupportedWsVersion(_) => 426,
            MalformedRequestLine
            | BareLineFeed
            | ObsoleteLineFolding
            | MalformedHeader { .. }
            | DuplicateHeader(_)
            | HttpVersion(_)
            | MissingHost
            | NotWebSocketUpgrade
            | ConnectionNotUpgrade
            | MissingKey
            | InvalidKey(_)
            | MissingSubprotocol
            | UnsupportedSubprotocol(_) => 400,
            _ => return None,
        })
    }

    /// The close code sent to the peer before dropping the connection, or
    /// `None` for failures where no close frame is due.
    pub fn close_code(&self) -> Option<u16> {
        use WsError::*;
        Some(match self {
            UnmaskedFrame
            | ReservedBits(_)
            | UnknownOpcode(_)
            | FragmentedControl(_)
            | ControlTooLong { .. }
            | UnexpectedContinuation
            | ExpectedContinuation
            | LengthMsbSet
            | CloseTooShort
            | InvalidCloseCode(_) => close::PROTOCOL_ERROR,
            TextFrame => close::UNSUPPORTED_DATA,
            CloseReasonNotUtf8 => close::INVALID_PAYLOAD,
            FrameTooLarge { .. } | MessageTooLarge { .. } => close::MESSAGE_TOO_BIG,
            _ => return None,
        })
    }

    /// A short explanation for the body of an HTTP refusal. It names the
    /// rule, never echoes the peer's input or the listener's configuration:
    /// the full message is for the operator's log.
    pub(crate) fn public_reason(&self) -> &'static str {
        use WsError::*;
        match self {
            RequestTooLarge { .. } => "request headers too large",
            MethodNotGet(_) => "WebSocket upgrade requires GET",
            PathNotFound { .. } => "no WebSocket endpoint at this path",
            OriginNotAllowed(_) => "origin not allowed",
            MissingWsVersion | UnsupportedWsVersion(_) => "Sec-WebSocket-Version 13 required",
            HttpVersion(_) => "HTTP/1.1 required",
            MissingHost => "Host header required",
            NotWebSocketUpgrade | ConnectionNotUpgrade => "WebSocket upgrade required",
            MissingKey | InvalidKey(_) => "invalid Sec-WebSocket-Key",
            MissingSubprotocol | UnsupportedSubprotocol(_) => {
                "Sec-WebSocket-Protocol 'mqtt' required"
            }
            _ => "malformed request",
        }
    }

    /// The `io::Error` a read reports for this failure.
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            WsError::Io(e) => e,
            WsError::TruncatedFrame => io::Error::new(io::ErrorKind::UnexpectedEof, self),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// The reason phrase for the statuses [`WsError::http_status`] produces.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}
