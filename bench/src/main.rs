//! bulwark-bench: runs Bulwark and Mosquitto side by side on loopback and writes a Markdown
//! report with their ratio.
//!
//! Parts: `mqtt` (a minimal MQTT 3.1.1 client codec of our own), `conn` (connections, plain or
//! TLS, handshakes, the subscriber loop), `tls` (the bench PKI and TLS client), `broker`
//! (starting pinned brokers), one module per scenario (`fanin`, `qos1`, `fanout`, `latency`,
//! `idle`, `handshake` (also auth-connect), `attack` for under-attack, `auth_flood`), `auth`
//! (the authentication scenarios' credential files), `report` (Markdown), `cli` and `system`
//! (machine facts, open-file limit, CPU time).
//!
//! Each (scenario, broker, pinning) gets a fresh broker and a fresh tokio runtime whose worker
//! threads are created after this process is pinned, so they inherit the load generator's CPUs.
#![forbid(unsafe_code)]

mod attack;
mod auth;
mod auth_flood;
mod broker;
mod cli;
mod conn;
mod fanin;
mod fanout;
mod handshake;
mod idle;
mod latency;
mod mqtt;
mod qos1;
mod report;
mod scenario;
mod system;
mod tls;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use auth::{BrokerAuth, Credentials};
use broker::{Kind, Spec};
use cli::{Args, Pinning};
use conn::Transport;
use report::{Cell, Report, ScenarioResult};
use scenario::{Params, Scenario, Target};
use tls::{ListenerTls, Pki};

/// Extra time a scenario may take beyond its measuring window (connecting, draining, idle
/// connections) before the run is abandoned as hung.
const SCENARIO_SLACK: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match cli::parse(&argv) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bulwark-bench: {e:#}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bulwark-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    // Read before pinning: afterwards this process sees only its own CPUs.
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (idle_connections, fd_warning) = system::raise_nofile(args.idle_connections);
    let params = Params {
        seconds: args.seconds,
        idle_connections,
    };
    let workdir = std::env::temp_dir().join(format!("bulwark-bench-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).with_context(|| format!("creating {}", workdir.display()))?;
    // One PKI and one set of credential files for the whole run, shared by both brokers.
    let pki = if args.scenarios.iter().any(|s| s.tls().is_some()) {
        Some(tls::make_pki(&workdir).context("creating the bench PKI")?)
    } else {
        None
    };
    let creds = if args.scenarios.iter().any(|s| s.auth().is_some()) {
        Some(
            auth::make(&workdir, &args.bulwark, &args.mosquitto)
                .context("creating the bench credential files")?,
        )
    } else {
        None
    };
    let mut notes = method_notes(ncpu, &args.scenarios, creds.as_ref());
    if let Some(w) = fd_warning {
        eprintln!("bulwark-bench: warning: {w}");
        notes.push(format!("**Warning:** {w}"));
    }
    let shared = Shared {
        pki: pki.as_ref(),
        creds: creds.as_ref(),
    };
    let results = args
        .scenarios
        .iter()
        .map(|&sc| run_scenario(sc, &args, &params, ncpu, &workdir, shared))
        .collect();
    // Leave the CPUs as we found them for whatever the caller runs next in this shell.
    let _ = broker::pin_self(&format!("0-{}", ncpu.saturating_sub(1)));
    let _ = std::fs::remove_dir_all(&workdir);
    let report = Report {
        command: command_line(),
        machine: system::machine(&args.mosquitto, ncpu),
        notes,
        params,
        results,
        elapsed_secs: started.elapsed().as_secs_f64(),
    };
    let md = report.render();
    print!("{md}");
    if let Some(out) = &args.out {
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(out, &md).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("bulwark-bench: report written to {}", out.display());
    }
    Ok(())
}

/// What the whole run makes once and every scenario may use.
#[derive(Clone, Copy)]
struct Shared<'a> {
    pki: Option<&'a Pki>,
    creds: Option<&'a Credentials>,
}

fn method_notes(ncpu: usize, scenarios: &[Scenario], creds: Option<&Credentials>) -> Vec<String> {
    let mut notes = vec![
        "Each scenario starts a fresh broker on a free 127.0.0.1 port and kills it afterwards. \
         Mosquitto runs with only `listener` and `allow_anonymous true` set, so every limit is \
         its default (max_queued_messages 1000, max_inflight_messages 20, and set_tcp_nodelay \
         false, so Nagle's algorithm applies to what it sends): what users get."
            .to_string(),
        "Bulwark runs with its defaults except connection admission (per-address and total \
         connection caps and rates raised to 1,000,000; in every scenario but under-attack): \
         every bench client connects from 127.0.0.1, and its default per-address limits (1,000 \
         open, 50 new per second) would refuse the idle-memory scenario's 10,000 connections. \
         Mosquitto has no such limits."
            .to_string(),
        "Bulwark's per-connection publish limits are raised too (max_publish_rate 100,000,000, \
         max_publish_bandwidth 4,000,000,000): the publishers send ~2M msg/s, far above the \
         defaults (1,000 msg/s and 1 MiB/s per connection), which would throttle them."
            .to_string(),
        "1 core: the broker is pinned with `taskset -c 0`, the load generator (this tool) with \
         `taskset -c 1`."
            .to_string(),
        "2 cores: the broker is pinned with `taskset -c 0,1` and the load generator shares those \
         two cores with it, so the broker has less than two cores' worth of CPU."
            .to_string(),
        "Mosquitto is single-threaded: it runs only on one core, and its 1-core figure is \
         repeated in the 2-core rows."
            .to_string(),
        "The bench's MQTT client is its own (not Bulwark's codec): TCP_NODELAY, publishers write \
         hundreds of messages per syscall, subscribers parse every packet of a 256 KiB read."
            .to_string(),
        "Ratios are bulwark/mosquitto from the same run; this machine is shared and noisy, \
         so compare ratios rather than absolute figures across runs."
            .to_string(),
    ];
    if scenarios.iter().any(|s| s.tls().is_some()) {
        notes.push(format!(
            "TLS scenarios: each broker gets a second listener, for MQTT over TLS, next to the \
             plain one. One PKI made by this tool at start (rcgen) serves both: an ECDSA P-256 \
             CA, an ECDSA P-256 server certificate (`localhost`, 127.0.0.1) and, for mutual \
             TLS, an ECDSA P-256 client certificate. Mosquitto: `cafile`, `certfile`, \
             `keyfile`, `tls_version tlsv1.2` (the minimum); its TLS is OpenSSL. Bulwark: \
             `kind = \"mqtts\"`, `tls_cert`, `tls_key`, `tls_min_version = \"1.2\"`; its TLS \
             is rustls with the ring provider. The bench client (rustls 0.23, ring) offers \
             {}, so both brokers negotiate the same thing, and keeps no sessions (no tickets, \
             no resumption, no early data): every connection is a full handshake. It verifies \
             the server certificate against the CA, except in the handshake scenarios' measured \
             loop: there, verifying would cost the load generator two ECDSA verifications per \
             connection (more CPU than the broker's share of a handshake) for no change in what \
             the broker does, so that loop skips it after one verified connection.",
            tls::OFFER
        ));
    }
    if scenarios.contains(&Scenario::UnderAttack) {
        notes.extend(attack::method_notes());
    }
    if let Some(creds) = creds {
        notes.extend(auth::method_notes(creds));
    }
    if scenarios.contains(&Scenario::AuthFlood) {
        notes.extend(auth_flood::method_notes());
    }
    if ncpu < 2 {
        notes.push(format!(
            "**Only {ncpu} CPU:** the load generator could not be given its own core."
        ));
    }
    notes
}

fn run_scenario(
    sc: Scenario,
    args: &Args,
    params: &Params,
    ncpu: usize,
    workdir: &Path,
    shared: Shared<'_>,
) -> ScenarioResult {
    let mosquitto = Spec {
        kind: Kind::Mosquitto,
        binary: args.mosquitto.clone(),
    };
    let bulwark = Spec {
        kind: Kind::Bulwark,
        binary: args.bulwark.clone(),
    };
    ScenarioResult {
        scenario: sc,
        mosquitto: run_one(sc, &mosquitto, Pinning::One, params, ncpu, workdir, shared),
        bulwark: args
            .pinnings
            .iter()
            .map(|&p| (p, run_one(sc, &bulwark, p, params, ncpu, workdir, shared)))
            .collect(),
    }
}

/// Runs one scenario against one broker with one pinning; any failure becomes the cell's text.
fn run_one(
    sc: Scenario,
    spec: &Spec,
    pinning: Pinning,
    params: &Params,
    ncpu: usize,
    workdir: &Path,
    shared: Shared<'_>,
) -> Cell {
    let what = format!("{} on {} ({})", sc.name(), spec.kind, pinning.label());
    eprint!("bulwark-bench: {what} ... ");
    let started = Instant::now();
    let result = try_run_one(sc, spec, pinning, params, ncpu, workdir, shared)
        .with_context(|| format!("{what} failed"));
    match &result {
        Ok(o) => eprintln!(
            "{} ({:.1} s)",
            o.rows()
                .map(|(cells, _)| cells.join(", "))
                .collect::<Vec<_>>()
                .join("; "),
            started.elapsed().as_secs_f64()
        ),
        Err(e) => eprintln!("ERROR: {e:#}"),
    }
    result.map_err(|e| format!("{e:#}"))
}

fn try_run_one(
    sc: Scenario,
    spec: &Spec,
    pinning: Pinning,
    params: &Params,
    ncpu: usize,
    workdir: &Path,
    shared: Shared<'_>,
) -> Result<scenario::Outcome> {
    let listener = match (sc.tls(), shared.pki) {
        (Some(client_certs), Some(pki)) => Some(ListenerTls { pki, client_certs }),
        (Some(_), None) => anyhow::bail!("no bench PKI for a TLS scenario"),
        (None, _) => None,
    };
    let auth = match (sc.auth(), shared.creds) {
        (Some(brute_force), Some(creds)) => Some(BrokerAuth { creds, brute_force }),
        (Some(_), None) => anyhow::bail!("no bench credential files for an auth scenario"),
        (None, _) => None,
    };
    let transport = listener
        .map(|l| tls::client(l.pki, l.client_certs).map(Transport::Tls))
        .transpose()
        .context("building the TLS client")?;
    let client_cpus = pinning.client_cpus(ncpu);
    broker::pin_self(client_cpus)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(client_cpus.split(',').count())
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let limit = Duration::from_secs(params.seconds * sc.windows()) + SCENARIO_SLACK;
    let result = rt.block_on(async {
        let limits = if sc.default_limits() {
            broker::Limits::Defaults
        } else {
            broker::Limits::Raised
        };
        let mut running =
            broker::start(spec, pinning.broker_cpus(), workdir, listener, limits, auth).await?;
        let target = Target {
            addr: running.addr,
            pid: running.pid,
            kind: spec.kind,
            tls: running.tls_addr.zip(transport),
        };
        let outcome = tokio::time::timeout(limit, sc.run(&target, params))
            .await
            .with_context(|| format!("scenario did not finish within {limit:?}"))
            .and_then(|r| r);
        // A crash explains the client-side error better than "connection reset" does.
        match (outcome, running.exit_report()) {
            (Err(e), Some(exit)) => Err(e.context(exit)),
            (Ok(_), Some(exit)) => Err(anyhow::anyhow!("broker died during the run: {exit}")),
            (outcome, None) => outcome,
        }
    });
    // Tasks still blocked on a dead connection must not keep the runtime alive.
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

/// The command line as typed, quoting arguments that need it.
fn command_line() -> String {
    std::env::args()
        .map(|a| {
            if a.is_empty() || a.contains([' ', '\'', '"', '`', '|']) {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
