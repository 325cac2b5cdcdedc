//! Starting and stopping the brokers under test, pinned to CPUs with `taskset`.
//!
//! Each scenario gets a fresh broker on a free loopback port, so one scenario's leftovers
//! (queued messages, heap growth) never colour the next one's figures. The child is killed when
//! the handle drops, including on error paths and panics.

use std::fmt;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::auth::BrokerAuth;
use crate::tls::ListenerTls;

/// How long a broker may take to accept its first TCP connection.
const START_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mosquitto,
    Bulwark,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Mosquitto => "mosquitto",
            Kind::Bulwark => "bulwark",
        })
    }
}

/// A broker to launch: which one and where its binary is.
#[derive(Debug, Clone)]
pub struct Spec {
    pub kind: Kind,
    pub binary: PathBuf,
}

/// Which limits the broker under test runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limits {
    /// The throughput scenarios': Bulwark's admission and publish limits raised out of the way.
    Raised,
    /// under-attack's: Bulwark's default abuse limits, which are what it measures; Mosquitto
    /// with `max_connections -1`. Both publish `$SYS` every second, for the message counters.
    Defaults,
}

/// A running broker; killed on drop.
pub struct Running {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    /// The `mqtts` listener, when one was asked for.
    pub tls_addr: Option<SocketAddr>,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGKILL: the bench does not care about a clean shutdown, only that the port and
        // the CPU are free before the next broker starts.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// If the broker has exited, how and with what last words.
    pub fn exit_report(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "broker exited ({status}); its output: {}",
                self.log_tail()
            )),
            _ => None,
        }
    }

    /// The last lines of the broker's output, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

/// A process's resident set size in bytes, from /proc/PID/status.
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status (did the broker exit?)"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmRSS line in /proc/PID/status")?;
    Ok(kib * 1024)
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(5);
    if lines.is_empty() {
        return "(none)".into();
    }
    lines[start..].join(" | ")
}

/// Asks the kernel for a free port. Another process could take it before the broker binds;
/// on a benchmark box that race is rare enough to accept, and the start then fails clearly.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Starts `spec` on a fresh loopback port, pinned to `cpus` (a taskset list such as "0" or
/// "0,1"), and waits until the port accepts connections. With `tls`, the broker also gets an
/// MQTT-over-TLS listener on a second port. With `auth`, the plain listener refuses anonymous
/// clients and checks user names and passwords against the bench's credential files.
pub async fn start(
    spec: &Spec,
    cpus: &str,
    workdir: &Path,
    tls: Option<ListenerTls<'_>>,
    limits: Limits,
    auth: Option<BrokerAuth<'_>>,
) -> Result<Running> {
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let tls_addr = match tls {
        Some(_) => Some(SocketAddr::from(([127, 0, 0, 1], free_port()?))),
        None => None,
    };
    let log = workdir.join(format!("{}-{port}.log", spec.kind));
    let mut cmd = Command::new("taskset");
    cmd.arg("-c").arg(cpus).arg(&spec.binary);
    match spec.kind {
        Kind::Mosquitto => {
            // Only the listener and anonymous access are set: every other limit keeps the
            // default a user gets (max_queued_messages 1000, max_inflight_messages 20).
            let conf = workdir.join(format!("mosquitto-{port}.conf"));
            let mut text = format!("listener {port} 127.0.0.1\n");
            match auth {
                Some(a) => text.push_str(&a.mosquitto_lines()),
                None => text.push_str("allow_anonymous true\n"),
            }
            if limits == Limits::Defaults {
                // -1 (no limit) is already its default; written out so the run says so.
                text.push_str("max_connections -1\nsys_interval 1\n");
            }
            if let (Some(tls), Some(tls_addr)) = (tls, tls_addr) {
                text.push_str(&mosquitto_tls(tls, tls_addr));
            }
            std::fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
            cmd.arg("-c").arg(conf);
        }
        Kind::Bulwark => {
            // Raised: its defaults, except connection admission: every bench client connects
            // from 127.0.0.1, and the idle-memory scenario opens 10,000 of them in a few
            // seconds, which the per-address limits (1,000 open, 50 new per second) exist to
            // refuse. And the per-connection publish limits (1,000 msg/s, 1 MiB/s): the
            // throughput scenarios publish ~2M msg/s over a few connections, far above them by
            // design. Defaults: every limit at its default; only $SYS comes every second.
            let conf = workdir.join(format!("bulwark-{port}.toml"));
            let broker = match limits {
                Limits::Raised => {
                    "[broker]\nmax_connections_per_address = 1000000\n\
                     connection_rate_per_address = 1000000\nconnection_rate_total = 1000000\n\
                     max_pending_connects = 1000000\n\
                     max_publish_rate = 100000000\nmax_publish_bandwidth = 4000000000\n"
                }
                Limits::Defaults => "[broker]\nsys_interval = 1\n",
            };
            let auth_section = auth.map(|a| a.bulwark_section()).unwrap_or_default();
            let mut text = format!(
                "{broker}{auth_section}\n[[listener]]\nname = \"bench\"\nbind = \"{addr}\"\n\
                 allow_anonymous = {}\n",
                auth.is_none()
            );
            if let (Some(tls), Some(tls_addr)) = (tls, tls_addr) {
                text.push_str(&bulwark_tls(tls, tls_addr));
            }
            std::fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
            cmd.arg("serve").arg("--config").arg(conf);
        }
    }
    let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {} ({})", spec.kind, spec.binary.display()))?;
    // taskset execs the broker in place, so the child's pid is the broker's own.
    let pid = child.id();
    let mut running = Running {
        child,
        pid,
        addr,
        tls_addr,
        log,
    };
    wait_ready(&mut running).await?;
    Ok(running)
}

/// Mosquitto's TLS listener: server certificate, TLS 1.2 or later (mosquitto 2.x reads
/// `tls_version` as the minimum), and for mutual TLS a required client certificate whose common
/// name becomes the username.
fn mosquitto_tls(tls: ListenerTls<'_>, at: SocketAddr) -> String {
    let mut s = format!(
        "\nlistener {} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\ntls_version tlsv1.2\n",
        at.port(),
        tls.pki.ca.display(),
        tls.pki.server_cert.display(),
        tls.pki.server_key.display(),
    );
    if tls.client_certs {
        s.push_str("require_certificate true\nuse_identity_as_username true\n");
    }
    s
}

/// Bulwark's `mqtts` listener, configured as Mosquitto's. With client certificates anonymous
/// access is off: the certificate is the identity. Without, anonymous access is on, as for the
/// plain listener (loopback only).
fn bulwark_tls(tls: ListenerTls<'_>, at: SocketAddr) -> String {
    let path = |p: &Path| format!("{:?}", p.display().to_string());
    let mut s = format!(
        "\n[[listener]]\nname = \"bench-tls\"\nkind = \"mqtts\"\nbind = \"{at}\"\n\
         tls_cert = {}\ntls_key = {}\ntls_min_version = \"1.2\"\n",
        path(&tls.pki.server_cert),
        path(&tls.pki.server_key),
    );
    if tls.client_certs {
        s.push_str(&format!(
            "tls_ca = {}\nclient_auth = \"required\"\nallow_anonymous = false\n",
            path(&tls.pki.ca)
        ));
    } else {
        s.push_str("allow_anonymous = true\n");
    }
    s
}

async fn wait_ready(running: &mut Running) -> Result<()> {
    for addr in [Some(running.addr), running.tls_addr].into_iter().flatten() {
        wait_port(running, addr).await?;
    }
    Ok(())
}

async fn wait_port(running: &mut Running, addr: SocketAddr) -> Result<()> {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = running.child.try_wait()? {
            bail!(
                "broker exited during start-up ({status}); its output: {}",
                running.log_tail()
            );
        }
        if let Ok(Ok(_probe)) = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "broker did not accept on {addr} within {START_TIMEOUT:?}; its output: {}",
                running.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pins every thread of this process to `cpus`. Threads created later (the runtime's workers)
/// inherit it. Done with `taskset -a -p` because the bench forbids unsafe code.
pub fn pin_self(cpus: &str) -> Result<()> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .context("running taskset (util-linux) to pin the load generator")?;
    if !status.success() {
        bail!("taskset -a -p -c {cpus} failed ({status})");
    }
    Ok(())
}
