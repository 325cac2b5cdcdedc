//! The `bulwark` binary: command line, configuration, wiring, shutdown.

mod cert;
mod cli;
mod config;
mod credentials;
mod transport;
mod user;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bulwark_broker::{Broker, MemoryStore};
use bulwark_transport::ReloadTrigger;

use crate::cli::Command;
use crate::config::Config;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("bulwark: {message}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            println!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("bulwark {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Serve {
            config,
            binds,
            data_dir,
        } => match load(config.as_deref(), &binds, data_dir) {
            Ok((cfg, dev_ca)) => serve(cfg, dev_ca),
            Err(e) => {
                eprintln!("bulwark: {e}");
                ExitCode::from(2)
            }
        },
        Command::Cert(args) => cert::run(&args),
        Command::User(args) => user::run(&args),
        Command::CheckConfig { config } => match Config::load(&config) {
            Ok(cfg) => {
                // The files a listener names are part of its configuration:
                // a key that does not match its certificate is as fatal at
                // start as a typo.
                let mut problems = transport::check_tls_files(&cfg);
                if let Some(path) = &cfg.auth.credentials {
                    if let Err(e) = credentials::load(path) {
                        problems.push(e);
                    }
                }
                if problems.is_empty() {
                    println!("{}: configuration is valid", config.display());
                    return ExitCode::SUCCESS;
                }
                eprintln!("configuration is valid, but files it names are not:");
                for p in problems {
                    eprintln!("  {p}");
                }
                ExitCode::from(2)
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
    }
}

/// The configuration to run, and the development CA when the embedded
/// default made one (so the banner can point at it).
fn load(
    path: Option<&Path>,
    binds: &[(Option<String>, SocketAddr)],
    data_dir: Option<PathBuf>,
) -> anyhow::Result<(Config, Option<PathBuf>)> {
    let (mut cfg, dev_ca) = match path {
        Some(p) => (Config::load(p)?, None),
        None => {
            let dir = data_dir
                .or_else(|| std::env::var_os("BULWARK_DATA_DIR").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("bulwark-data"));
            let pki = cert::ensure_dev_pki(&dir).map_err(|e| {
                anyhow::anyhow!("cannot prepare the development certificates in {}: {e} (choose another directory with --data-dir)", dir.display())
            })?;
            if pki.created {
                println!(
                    "created a development CA and a localhost server certificate in {}",
                    pki.dir.display()
                );
            }
            let cfg = Config::embedded_with_tls(&pki.ca, &pki.server_cert, &pki.server_key);
            (cfg, Some(pki.ca))
        }
    };
    for (name, addr) in binds {
        cfg.override_bind(name.as_deref(), *addr)
            .map_err(anyhow::Error::msg)?;
    }
    Ok((cfg, dev_ca))
}

fn serve(cfg: Config, dev_ca: Option<PathBuf>) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BULWARK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: in a log file or journal they
        // are noise that breaks grep and log shippers.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match runtime(cfg.worker_threads) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bulwark: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let broker = Broker::new(cfg.limits.clone(), Arc::new(MemoryStore::new()));
        // Fail closed: without its credential file the broker does not run.
        if let Some(path) = &cfg.auth.credentials {
            match credentials::load(path) {
                Ok(store) => broker.auth().set_store(Some(store)),
                Err(e) => {
                    eprintln!("bulwark: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        let bound = match transport::bind_all(&cfg).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("bulwark: {e}");
                return ExitCode::FAILURE;
            }
        };
        transport::print_banner(&cfg, &bound, dev_ca.as_deref());
        tokio::spawn(broker.clone().run_housekeeping());
        let reload = ReloadTrigger::default();
        if let Some(path) = cfg.auth.credentials.clone() {
            tokio::spawn(credentials::watch(
                broker.clone(),
                path,
                reload.clone(),
                TLS_WATCH_INTERVAL,
            ));
        }
        for listener in bound {
            if let Some(tls) = listener.tls() {
                tokio::spawn(tls.watch(reload.clone(), TLS_WATCH_INTERVAL));
            }
            tokio::spawn(listener.run(broker.clone()));
        }
        run_until_stopped(&reload).await;
        tracing::info!("shutting down");
        ExitCode::SUCCESS
    })
}

/// How often certificate, key, CA and CRL files are checked for changes:
/// a revoked certificate's connection is cut within this plus the time
/// to verify the live connections again.
const TLS_WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// One thread runs a single-threaded scheduler, which handles connections
/// strictly in the order their input arrived; more threads share the load
/// across cores with work stealing, where two clients' packets that arrive
/// microseconds apart may be handled in either order.
fn runtime(worker_threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = match worker_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

/// Waits for SIGINT or SIGTERM; SIGHUP reloads certificates meanwhile.
async fn run_until_stopped(reload: &ReloadTrigger) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return,
                _ = term.recv() => return,
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading TLS material and credentials");
                    reload.trigger();
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = reload;
        let _ = tokio::signal::ctrl_c().await;
    }
}
