//! The machine description printed in the report, and the open-file limit.
//!
//! The crate forbids unsafe code, so the limit is raised with util-linux `prlimit` on our own
//! pid rather than with setrlimit(2); `scripts/bench` also raises it with `ulimit -n`.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

/// File descriptors kept free for everything besides the idle connections (subscribers,
/// publishers, probes, the broker's own files).
const FD_MARGIN: u64 = 200;

/// Soft and hard RLIMIT_NOFILE of this process, from /proc/self/limits.
fn nofile() -> Result<(u64, u64)> {
    let limits =
        std::fs::read_to_string("/proc/self/limits").context("reading /proc/self/limits")?;
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .context("no 'Max open files' in /proc/self/limits")?;
    let mut fields = line.split_whitespace();
    let mut next = || -> Result<u64> {
        let f = fields.next().context("short 'Max open files' line")?;
        Ok(if f == "unlimited" {
            u64::MAX
        } else {
            f.parse()?
        })
    };
    Ok((next()?, next()?))
}

/// This process's soft open-file limit (the brokers, our children, inherit it).
pub fn open_file_limit() -> Result<u64> {
    Ok(nofile()?.0)
}

/// Raises the soft open-file limit to the hard one and returns how many idle connections fit.
/// The brokers are our children and inherit the raised limit. The second value is a warning
/// for the report when the limit stays below what `wanted` needs or cannot be read.
pub fn raise_nofile(wanted: usize) -> (usize, Option<String>) {
    match try_raise() {
        Ok(soft) => {
            let fits = soft.saturating_sub(FD_MARGIN);
            if (wanted as u64) <= fits {
                (wanted, None)
            } else {
                let fits = fits as usize;
                let warn = format!(
                    "open-file limit is {soft} (hard limit reached), too low for {wanted} idle \
                     connections: idle-memory opens {fits}. Raise the hard limit (e.g. \
                     `ulimit -Hn` as root, or LimitNOFILE) for the full count."
                );
                (fits, Some(warn))
            }
        }
        Err(e) => (
            wanted,
            Some(format!(
                "could not read or raise the open-file limit: {e:#}"
            )),
        ),
    }
}

fn try_raise() -> Result<u64> {
    let (soft, hard) = nofile()?;
    if soft < hard {
        let hard_s = if hard == u64::MAX {
            "unlimited".to_string()
        } else {
            hard.to_string()
        };
        let status = Command::new("prlimit")
            .arg("--pid")
            .arg(std::process::id().to_string())
            .arg(format!("--nofile={hard_s}:{hard_s}"))
            .status()
            .context("running prlimit (util-linux)")?;
        if !status.success() {
            bail!("prlimit failed ({status})");
        }
    }
    Ok(nofile()?.0)
}

/// One line per fact about the machine, for the report's header.
pub fn machine(mosquitto: &Path, ncpu: usize) -> Vec<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kib| format!("{:.1} GiB", kib / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    vec![
        format!("CPUs (nproc): {ncpu}, {model}"),
        format!("Memory: {mem}"),
        format!("Kernel: Linux {kernel}"),
        format!("Mosquitto: {}", mosquitto_version(mosquitto)),
        format!("OpenSSL (Mosquitto's TLS): {}", openssl_version()),
    ]
}

/// `openssl version`, assumed to match the libssl Mosquitto links against.
fn openssl_version() -> String {
    match Command::new("openssl").arg("version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => "unknown (no openssl command)".into(),
    }
}

/// Clock ticks per second for /proc/PID/stat times (`getconf CLK_TCK`, else Linux's usual 100).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// CPU time (user + system, all threads) a process has used so far, in seconds. `who` is a pid
/// or `self`.
pub fn cpu_seconds(who: &str) -> Result<f64> {
    let path = format!("/proc/{who}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .with_context(|| format!("no ')' in {path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .with_context(|| format!("short or odd {path}"))
    };
    Ok((ticks(11)? + ticks(12)?) / clock_ticks())
}

/// The first line of `mosquitto -h`, which names the version (the command itself exits non-zero).
fn mosquitto_version(path: &Path) -> String {
    match Command::new(path).arg("-h").output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("unknown (no output from -h)")
            .to_string(),
        Err(e) => format!("not runnable at {}: {e}", path.display()),
    }
}
