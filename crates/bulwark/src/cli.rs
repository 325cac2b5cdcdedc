//! Command-line parsing. Small enough to do by hand, which keeps the build
//! lean and the errors ours.

use std::net::SocketAddr;
use std::path::PathBuf;

pub const USAGE: &str = "\
usage:
  bulwark serve [--config FILE] [--bind ADDR:PORT]
      Run the broker. Without --config it runs the embedded default: one
      plain MQTT listener on 127.0.0.1:1883, anonymous access (loopback only).
      --bind replaces the address of the plain listener; a non-loopback
      address is refused while anonymous access is on.
  bulwark check-config FILE
      Validate a configuration file and report every problem with its line.
  bulwark --version | --help";

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Serve {
        config: Option<PathBuf>,
        bind: Option<SocketAddr>,
    },
    CheckConfig {
        config: PathBuf,
    },
    Help,
    Version,
}

pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
    let Some(first) = args.next() else {
        return Ok(Command::Help);
    };
    match first.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "-V" | "--version" => Ok(Command::Version),
        "serve" => {
            let mut config = None;
            let mut bind = None;
            while let Some(a) = args.next() {
                match a.as_str() {
                    "--config" | "-c" => {
                        config = Some(PathBuf::from(args.next().ok_or("--config needs a file")?));
                    }
                    "--bind" => {
                        let v = args.next().ok_or("--bind needs ADDR:PORT")?;
                        bind = Some(v.parse().map_err(|_| {
                            format!(
                                "--bind {v}: not an address; write IP:PORT, e.g. 127.0.0.1:1883"
                            )
                        })?);
                    }
                    other => return Err(format!("serve: unknown argument '{other}'")),
                }
            }
            Ok(Command::Serve { config, bind })
        }
        "check-config" => {
            let config = args.next().ok_or("check-config needs a file")?;
            if let Some(extra) = args.next() {
                return Err(format!("check-config: unexpected argument '{extra}'"));
            }
            Ok(Command::CheckConfig {
                config: PathBuf::from(config),
            })
        }
        other => Err(format!("unknown command '{other}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn serve_arguments() {
        assert_eq!(
            p(&["serve", "--bind", "127.0.0.1:1999"]),
            Ok(Command::Serve {
                config: None,
                bind: Some("127.0.0.1:1999".parse().expect("addr"))
            })
        );
        assert!(p(&["serve", "--bind", "localhost"]).is_err());
        assert!(p(&["serve", "--frobnicate"]).is_err());
        assert_eq!(p(&[]), Ok(Command::Help));
    }
}
