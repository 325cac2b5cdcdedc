//! Command-line parsing and the CPU pinning plan.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::scenario::{self, Scenario};

pub const USAGE: &str = "\
usage: bulwark-bench --bulwark PATH [--mosquitto PATH] [--scenarios LIST] [--seconds N]
                     [--idle-connections N] [--cpus one|both|all] [--out FILE.md]

  --bulwark PATH          Bulwark binary, started as `PATH serve --config FILE` (generated)
  --mosquitto PATH        default /usr/sbin/mosquitto
  --scenarios LIST        comma-separated; default fanin-qos0,fanin-qos1,fanout,latency,
                          idle-memory,tls-handshake,mtls-handshake,fanin-qos0-tls,
                          under-attack,auth-connect,auth-flood
  --seconds N             measuring window of the throughput and latency scenarios, and of
                          each under-attack and auth-flood condition (default 5)
  --idle-connections N    connections opened by idle-memory (default 10000)
  --cpus one|both|all     broker on one core, on both cores, or run both (default all)
  --out FILE.md           also write the Markdown report there";

/// Where the broker runs and where the load generator runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinning {
    /// Broker on core 0, load generator on core 1.
    One,
    /// Broker on cores 0 and 1, load generator sharing them.
    Both,
}

impl Pinning {
    pub fn broker_cpus(self) -> &'static str {
        match self {
            Pinning::One => "0",
            Pinning::Both => "0,1",
        }
    }

    /// On a one-CPU machine the load generator has nowhere else to go.
    pub fn client_cpus(self, ncpu: usize) -> &'static str {
        match (self, ncpu < 2) {
            (_, true) => "0",
            (Pinning::One, false) => "1",
            (Pinning::Both, false) => "0,1",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Pinning::One => "1 core",
            Pinning::Both => "2 cores",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Args {
    pub bulwark: PathBuf,
    pub mosquitto: PathBuf,
    pub scenarios: Vec<Scenario>,
    pub seconds: u64,
    pub idle_connections: usize,
    pub pinnings: Vec<Pinning>,
    pub out: Option<PathBuf>,
}

/// Parses `argv` (without the program name). `Ok(None)` means help was asked for.
pub fn parse(argv: &[String]) -> Result<Option<Args>> {
    let mut bulwark = None;
    let mut args = Args {
        bulwark: PathBuf::new(),
        mosquitto: PathBuf::from("/usr/sbin/mosquitto"),
        scenarios: scenario::ALL.to_vec(),
        seconds: 5,
        idle_connections: 10_000,
        pinnings: vec![Pinning::One, Pinning::Both],
        out: None,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bulwark" => bulwark = Some(PathBuf::from(value)),
            "--mosquitto" => args.mosquitto = PathBuf::from(value),
            "--scenarios" => {
                args.scenarios = value
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(Scenario::parse)
                    .collect::<Result<_>>()?;
            }
            "--seconds" => args.seconds = number(flag, value)?,
            "--idle-connections" => args.idle_connections = number(flag, value)?,
            "--cpus" => {
                args.pinnings = match value.as_str() {
                    "one" => vec![Pinning::One],
                    "both" => vec![Pinning::Both],
                    "all" => vec![Pinning::One, Pinning::Both],
                    other => bail!("--cpus takes one, both or all, not {other:?}"),
                }
            }
            "--out" => args.out = Some(PathBuf::from(value)),
            other => bail!("unknown option {other}"),
        }
    }
    args.bulwark = bulwark.context("--bulwark PATH is required")?;
    if args.seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    if args.scenarios.is_empty() {
        bail!("--scenarios is empty");
    }
    Ok(Some(args))
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T> {
    value
        .parse()
        .ok()
        .with_context(|| format!("{flag} takes a number, not {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults_and_overrides() {
        let a = parse(&argv("--bulwark /b")).unwrap().unwrap();
        assert_eq!(a.seconds, 5);
        assert_eq!(a.idle_connections, 10_000);
        assert_eq!(a.scenarios, scenario::ALL.to_vec());
        assert_eq!(a.pinnings, vec![Pinning::One, Pinning::Both]);
        let a = parse(&argv(
            "--bulwark /b --scenarios latency,fanout --seconds 2 --cpus one --out r.md",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(a.scenarios, vec![Scenario::Latency, Scenario::Fanout]);
        assert_eq!(a.pinnings, vec![Pinning::One]);
        assert_eq!(a.out, Some(PathBuf::from("r.md")));
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(parse(&argv("--seconds 3")).is_err()); // no --bulwark
        assert!(parse(&argv("--bulwark /b --cpus three")).is_err());
        assert!(parse(&argv("--bulwark /b --scenarios bogus")).is_err());
        assert!(parse(&argv("--bulwark /b --seconds x")).is_err());
        assert!(parse(&argv("--bulwark")).is_err());
        assert!(parse(&argv("--help")).unwrap().is_none());
    }
}
