//! The `bulwark` binary: command line, configuration, wiring, shutdown.

mod cli;
mod config;
mod transport;

use std::process::ExitCode;
use std::sync::Arc;

use bulwark_broker::{Broker, MemoryStore};

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
        Command::Serve { config, bind } => match load(config.as_deref(), bind) {
            Ok(cfg) => serve(cfg),
            Err(e) => {
                eprintln!("bulwark: {e}");
                ExitCode::from(2)
            }
        },
        Command::CheckConfig { config } => match Config::load(&config) {
            Ok(_) => {
                println!("{}: configuration is valid", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
    }
}

fn load(
    path: Option<&std::path::Path>,
    bind: Option<std::net::SocketAddr>,
) -> anyhow::Result<Config> {
    let mut cfg = match path {
        Some(p) => Config::load(p)?,
        None => Config::embedded(),
    };
    if let Some(addr) = bind {
        cfg.override_bind(addr).map_err(anyhow::Error::msg)?;
    }
    Ok(cfg)
}

fn serve(cfg: Config) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BULWARK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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
        let bound = match transport::bind_all(&cfg).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("bulwark: {e}");
                return ExitCode::FAILURE;
            }
        };
        transport::print_banner(&cfg, &bound);
        tokio::spawn(broker.clone().run_housekeeping());
        for listener in bound {
            tokio::spawn(transport::accept_loop(broker.clone(), listener));
        }
        shutdown_signal().await;
        tracing::info!("shutting down");
        ExitCode::SUCCESS
    })
}

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

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
