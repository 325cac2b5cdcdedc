//! Command-line parsing. Small enough to do by hand, which keeps the build
//! lean and the errors ours.

use std::net::SocketAddr;
use std::path::PathBuf;

pub const USAGE: &str = "\
usage:
  bulwark serve [--config FILE] [--bind [NAME=]ADDR:PORT]... [--data-dir DIR]
      Run the broker. Without --config it runs the embedded default, all on
      loopback with anonymous access: plain MQTT on 127.0.0.1:1883 (listener 'local'),
      MQTT over TLS on 127.0.0.1:8883 ('local-tls') and MQTT over secure
      WebSockets on 127.0.0.1:8443 ('local-wss'), with a development CA and
      server certificate created on first run in DIR/dev-pki (default DIR:
      $BULWARK_DATA_DIR or ./bulwark-data).
      --bind moves the named listener (without NAME: the first plain one);
      anonymous or plaintext access on a non-loopback address is refused.
  bulwark check-config FILE
      Validate a configuration file and report every problem with its line.
  bulwark cert ca|server|client|revoke|crl ...
      A small certificate authority for tests and small sites; see
      `bulwark cert --help`.
  bulwark user add|passwd|disable|enable|remove|totp NAME | list [--file FILE]
      Manage the credential file (default ./users.toml); see
      `bulwark user --help`.
  bulwark --version | --help";

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Serve {
        config: Option<PathBuf>,
        binds: Vec<(Option<String>, SocketAddr)>,
        data_dir: Option<PathBuf>,
    },
    CheckConfig {
        config: PathBuf,
    },
    /// `bulwark cert ...`; the arguments after `cert` are parsed by `cert::run`.
    Cert(Vec<String>),
    /// `bulwark user ...`; the arguments after `user` are parsed by `user::run`.
    User(Vec<String>),
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
            let mut binds = Vec::new();
            let mut data_dir = None;
            while let Some(a) = args.next() {
                match a.as_str() {
                    "--config" | "-c" => {
                        config = Some(PathBuf::from(args.next().ok_or("--config needs a file")?));
                    }
                    "--bind" => {
                        let v = args.next().ok_or("--bind needs [NAME=]ADDR:PORT")?;
                        binds.push(parse_bind(&v)?);
                    }
                    "--data-dir" => {
                        data_dir = Some(PathBuf::from(
                            args.next().ok_or("--data-dir needs a directory")?,
                        ));
                    }
                    other => return Err(format!("serve: unknown argument '{other}'")),
                }
            }
            Ok(Command::Serve {
                config,
                binds,
                data_dir,
            })
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
        "cert" => Ok(Command::Cert(args.collect())),
        "user" => Ok(Command::User(args.collect())),
        other => Err(format!("unknown command '{other}'")),
    }
}

fn parse_bind(v: &str) -> Result<(Option<String>, SocketAddr), String> {
    let (name, addr) = match v.split_once('=') {
        Some((n, a)) => (Some(n.to_owned()), a),
        None => (None, v),
    };
    let addr = addr.parse().map_err(|_| {
        format!("--bind {v}: not an address; write [NAME=]IP:PORT, e.g. 127.0.0.1:1883 or local-tls=127.0.0.1:8884")
    })?;
    Ok((name, addr))
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
                binds: vec![(None, "127.0.0.1:1999".parse().expect("addr"))],
                data_dir: None,
            })
        );
        assert_eq!(
            p(&[
                "serve",
                "--bind",
                "local-tls=127.0.0.1:2000",
                "--data-dir",
                "/tmp/x"
            ]),
            Ok(Command::Serve {
                config: None,
                binds: vec![(
                    Some("local-tls".into()),
                    "127.0.0.1:2000".parse().expect("addr")
                )],
                data_dir: Some("/tmp/x".into()),
            })
        );
        assert!(p(&["serve", "--bind", "localhost"]).is_err());
        assert!(p(&["serve", "--frobnicate"]).is_err());
        assert_eq!(p(&[]), Ok(Command::Help));
    }
}
