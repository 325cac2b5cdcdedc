//! Brokers behind the real transport listeners (TLS, WebSocket), and an
//! in-process rustls client for checks that need exact handshake results.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bulwark_broker::{Broker, Limits, ListenerInfo, MemoryStore};
use bulwark_transport::identity::IdentitySource;
use bulwark_transport::ws::WsOptions;
use bulwark_transport::{ClientAuth, Kind, ListenerSpec, TlsSettings, TlsState};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;

pub struct Served {
    pub addr: SocketAddr,
    pub broker: Broker,
    pub tls: Option<Arc<TlsState>>,
    task: JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn settings(cert: &Path, key: &Path, ca: Option<&Path>, auth: ClientAuth) -> TlsSettings {
    TlsSettings {
        cert: cert.to_owned(),
        key: key.to_owned(),
        ca: ca.map(Path::to_owned),
        crls: Vec::new(),
        client_auth: auth,
        tls13_only: false,
        allow_expired_crl: false,
        alpn: Vec::new(),
    }
}

pub fn spec(kind: Kind, tls: Option<TlsSettings>, allow_anonymous: bool) -> ListenerSpec {
    ListenerSpec {
        info: Arc::new(ListenerInfo {
            name: Arc::from(kind.scheme()),
            allow_anonymous,
            min_factors: Default::default(),
        }),
        bind: "127.0.0.1:0".parse().expect("addr"),
        kind,
        tls,
        identity_from: IdentitySource::CommonName,
        ws: WsOptions {
            path: "/mqtt".into(),
            allowed_origins: Vec::new(),
            max_frame_size: 1 << 20,
            max_message_size: 1 << 24,
            max_request_bytes: 8192,
        },
        mqtt_on_wss: false,
        handshake_timeout: Duration::from_secs(5),
        max_handshakes: 64,
    }
}

/// Binds `spec` (loading its TLS material) and serves it.
pub async fn serve(spec: ListenerSpec) -> Served {
    serve_with(spec, Limits::default()).await
}

pub async fn serve_with(spec: ListenerSpec, limits: Limits) -> Served {
    let broker = Broker::new(limits, Arc::new(MemoryStore::new()));
    let bound = bulwark_transport::bind(spec).await.expect("bind listener");
    let addr = bound.local_addr();
    let tls = bound.tls();
    let task = tokio::spawn(bound.run(broker.clone()));
    Served {
        addr,
        broker,
        tls,
        task,
    }
}

/// A rustls client config trusting `ca`, presenting `client` if given.
pub fn client_config(ca: &Path, client: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(c.expect("CA pem")).expect("add CA");
    }
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let cfg = match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .expect("read cert")
                .collect::<Result<Vec<_>, _>>()
                .expect("cert pem");
            let key = PrivateKeyDer::from_pem_file(key).expect("key pem");
            b.with_client_auth_cert(chain, key).expect("client cert")
        }
        None => b.with_no_client_auth(),
    };
    Arc::new(cfg)
}

/// Connects and completes the TLS handshake (and, in TLS 1.3, waits for
/// the server's verdict on the client certificate by reading: a refused
/// certificate surfaces as an alert on the first read).
pub async fn connect(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("name");
    tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
}

/// Sends a 3.1.1 CONNECT over `stream` and returns the CONNACK return code,
/// or why none came (closed, TLS alert, timeout).
pub async fn mqtt_connect<S>(stream: &mut S, client_id: &str) -> Result<u8, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connect = crate::mqtt::connect_packet(client_id, bulwark_codec::ProtocolVersion::V311);
    let bytes = crate::encode(
        &bulwark_codec::Packet::Connect(Box::new(connect)),
        bulwark_codec::ProtocolVersion::V311,
    );
    stream
        .write_all(&bytes)
        .await
        .map_err(|e| format!("write: {e}"))?;
    stream.flush().await.map_err(|e| format!("flush: {e}"))?;
    let mut ack = [0u8; 4];
    match tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut ack)).await {
        Ok(Ok(_)) if ack[0] == 0x20 && ack[1] == 2 => Ok(ack[3]),
        Ok(Ok(_)) => Err(format!("not a CONNACK: {ack:02x?}")),
        Ok(Err(e)) => Err(format!("read: {e}")),
        Err(_) => Err("no CONNACK within 5 s".into()),
    }
}
