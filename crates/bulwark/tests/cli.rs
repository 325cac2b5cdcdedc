//! The binary as an operator meets it: the embedded default, `--bind`,
//! configuration errors, `check-config`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bulwark() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bulwark"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bulwark-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write temp file");
    path
}

#[test]
fn serve_prints_how_to_connect_and_accepts_mqtt() {
    let port = free_port();
    let tls_port = free_port();
    let data = temp_file("unused", "").with_file_name(format!("data-{port}"));
    let mut child = bulwark()
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--bind",
            &format!("local-tls=127.0.0.1:{tls_port}"),
            "--bind",
            "local-wss=127.0.0.1:0",
            "--data-dir",
            &data.display().to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bulwark");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = String::new();
    while let Some(Ok(line)) = lines.next() {
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("stop with Ctrl-C") {
            break;
        }
    }
    assert!(
        banner.contains(&format!("mqtt://127.0.0.1:{port}")),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("mosquitto_pub -h 127.0.0.1 -p {port}")),
        "{banner}"
    );

    // A real MQTT 3.1.1 CONNECT gets CONNACK 0.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut stream = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("broker not accepting: {e}"),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let connect = [
        0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x04, b'c',
        b'l', b'i', b'1',
    ];
    stream.write_all(&connect).expect("send CONNECT");
    let mut connack = [0u8; 4];
    std::io::Read::read_exact(&mut stream, &mut connack).expect("CONNACK");
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);

    // The TLS listener works with the printed command: mosquitto_pub with
    // the development CA the first run created, kept private on disk.
    let ca = data.join("dev-pki").join("ca.pem");
    assert!(
        banner.contains(&format!("-p {tls_port} --cafile {}", ca.display())),
        "{banner}"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&data.join("dev-pki")), 0o700);
        assert_eq!(mode(&data.join("dev-pki").join("server.key")), 0o600);
    }
    let out = Command::new("mosquitto_pub")
        .args(["-h", "localhost", "-p", &tls_port.to_string(), "--cafile"])
        .arg(&ca)
        .args(["-t", "demo/tls", "-m", "hi", "-q", "1"])
        .output()
        .expect("mosquitto_pub is installed (scripts/test installs mosquitto-clients)");
    assert!(
        out.status.success(),
        "mosquitto_pub over TLS failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn bind_to_the_network_with_anonymous_access_is_refused() {
    let out = bulwark()
        .args(["serve", "--bind", "0.0.0.0:1883", "--data-dir"])
        .arg(temp_file("unused2", "").with_file_name("data-refused"))
        .output()
        .expect("run bulwark");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--bind 0.0.0.0:1883"), "{err}");
    assert!(err.contains("loopback"), "{err}");
}

#[test]
fn configuration_errors_name_file_line_and_key_all_at_once() {
    let path = temp_file(
        "bad.toml",
        "[broker]\nmax_keep_alive = 0\nmax_qos = 7\n\n[[listener]]\nname = \"x\"\nbind = \"127.0.0.1:1883\"\nport = 1\n",
    );
    for args in [
        vec!["check-config".to_string(), path.display().to_string()],
        vec![
            "serve".into(),
            "--config".into(),
            path.display().to_string(),
        ],
    ] {
        let out = bulwark().args(&args).output().expect("run bulwark");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let file = path.display().to_string();
        assert!(err.contains("3 problems"), "{err}");
        assert!(
            err.contains(&format!("{file}:2: broker.max_keep_alive")),
            "{err}"
        );
        assert!(err.contains(&format!("{file}:3: broker.max_qos")), "{err}");
        assert!(
            err.contains(&format!("{file}:8: listener[0].port: unknown key")),
            "{err}"
        );
    }
}

#[test]
fn check_config_accepts_a_valid_file_and_names_a_missing_one() {
    let path = temp_file(
        "good.toml",
        "[[listener]]\nname = \"plant\"\nbind = \"127.0.0.1:1884\"\n",
    );
    let out = bulwark()
        .args(["check-config", &path.display().to_string()])
        .output()
        .expect("run bulwark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bulwark()
        .args(["check-config", "/nonexistent/bulwark.toml"])
        .output()
        .expect("run bulwark");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read configuration file /nonexistent/bulwark.toml"),
        "{err}"
    );
}

#[test]
fn cert_subcommands_create_a_ca_issue_and_revoke() {
    let dir = std::env::temp_dir().join(format!("bulwark-cli-cert-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let run = |args: &[&str]| {
        let out = bulwark()
            .current_dir(&dir)
            .arg("cert")
            .args(args)
            .output()
            .expect("run bulwark cert");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };

    let (code, text) = run(&[
        "ca",
        "--dir",
        "pki",
        "--name",
        "CLI test CA",
        "--days",
        "30",
    ]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run(&["client", "--ca", "pki", "--name", "dev-1", "--out", "dev-1"]);
    assert_eq!(code, Some(0), "{text}");
    for file in [
        "pki/ca.pem",
        "pki/ca.key",
        "dev-1.pem",
        "dev-1.key",
        "pki/issued.txt",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    #[cfg(unix)]
    for key in ["pki/ca.key", "dev-1.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(key))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let issued = std::fs::read_to_string(dir.join("pki/issued.txt")).expect("issued.txt");
    let serial = issued
        .split_whitespace()
        .next()
        .expect("a serial")
        .to_owned();
    assert!(issued.contains("dev-1.pem  dev-1"), "{issued}");

    let (code, text) = run(&["revoke", "--ca", "pki", "dev-1.pem"]);
    assert_eq!(code, Some(0), "{text}");
    let revoked = std::fs::read_to_string(dir.join("pki/revoked.txt")).expect("revoked.txt");
    assert!(revoked.starts_with(&serial), "{revoked}");
    let crl = std::fs::read_to_string(dir.join("pki/crl.pem")).expect("crl.pem");
    assert!(crl.starts_with("-----BEGIN X509 CRL-----"), "{crl}");

    // A second CA in the same place is refused and the key is untouched.
    let key = std::fs::read(dir.join("pki/ca.key")).expect("key");
    let (code, text) = run(&["ca", "--dir", "pki"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("ca.key already exists"), "{text}");
    assert_eq!(std::fs::read(dir.join("pki/ca.key")).expect("key"), key);

    // Usage errors exit 2 and name the problem.
    let (code, text) = run(&[
        "server",
        "--ca",
        "pki",
        "--name",
        "not a host",
        "--out",
        "s",
    ]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("'not a host' is neither a DNS name"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// examples/production.toml is valid, names its TLS files, and serves
/// mutual TLS with a real client once those files exist.
#[test]
fn the_production_example_checks_and_serves_mutual_tls() {
    let dir = temp_file("unused3", "").with_file_name("production");
    let _ = std::fs::remove_dir_all(&dir);
    let pki = dir.join("pki");
    std::fs::create_dir_all(&dir).expect("dir");
    let example = dir.join("production.toml");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/production.toml"
        ),
        &example,
    )
    .expect("copy example");

    // Without its files the example is refused, naming the first missing one.
    let out = bulwark()
        .arg("check-config")
        .arg(&example)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listener 'devices'") && err.contains("server.pem"),
        "{err}"
    );

    let run = |args: &[&str]| {
        let out = bulwark()
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["cert", "ca", "--dir", "pki"]);
    run(&[
        "cert",
        "server",
        "--ca",
        "pki",
        "--name",
        "localhost",
        "--san",
        "127.0.0.1",
        "--out",
        "pki/server",
    ]);
    run(&[
        "cert",
        "client",
        "--ca",
        "pki",
        "--name",
        "plc-hall3-07",
        "--out",
        "pki/plc",
    ]);
    run(&["cert", "crl", "--ca", "pki"]);
    std::fs::copy(pki.join("ca.pem"), pki.join("site-ca.pem")).expect("ca");
    std::fs::copy(pki.join("crl.pem"), pki.join("site-ca.crl")).expect("crl");
    let out = bulwark()
        .arg("check-config")
        .arg(&example)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let port = free_port();
    let mut child = bulwark()
        .arg("serve")
        .arg("--config")
        .arg(&example)
        .args(["--bind", &format!("devices=127.0.0.1:{port}")])
        .args(["--bind", "operators=127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("broker.log")).expect("log file"))
        .spawn()
        .expect("start bulwark");
    let stdout = child.stdout.take().expect("stdout");
    for line in BufReader::new(stdout).lines() {
        if line.map_or(true, |l| l.contains("stop with Ctrl-C")) {
            break;
        }
    }
    let publish = |with_cert: bool| {
        let mut c = Command::new("mosquitto_pub");
        c.args(["-h", "localhost", "-p", &port.to_string(), "--cafile"])
            .arg(pki.join("site-ca.pem"))
            .args(["-i", "plc-hall3-07", "-t", "plant/hall3/temp", "-m", "21.5"]);
        if with_cert {
            c.arg("--cert")
                .arg(pki.join("plc.pem"))
                .arg("--key")
                .arg(pki.join("plc.key"));
        }
        c.output()
            .expect("mosquitto_pub is installed (scripts/test installs it)")
    };
    let with = publish(true);
    let without = publish(false);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    assert!(
        !without.status.success(),
        "a client without a certificate got in"
    );
    // The refusal is logged with its reason and the peer.
    let log = std::fs::read_to_string(dir.join("broker.log")).expect("log");
    let line = log
        .lines()
        .find(|l| l.contains("handshake refused"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    assert!(line.contains("none presented"), "{line}");
    assert!(line.contains("peer=127.0.0.1:"), "{line}");
    assert!(line.contains("listener=devices"), "{line}");
}

#[test]
fn user_subcommands_manage_the_credential_file() {
    let dir = std::env::temp_dir().join(format!("bulwark-cli-user-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let run = |args: &[&str], stdin: &str| {
        let mut child = bulwark()
            .current_dir(&dir)
            .arg("user")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run bulwark user");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("bulwark user output");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let password = "plc-Password-4711";

    // The password comes from stdin (not a terminal here), never argv.
    let (code, _, err) = run(
        &["add", "plc-hall3-07", "--role", "telemetry-writer"],
        &format!("{password}\n"),
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&["add", "op1", "--password", password], "");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("never taken from the command line"), "{err}");

    let file = dir.join("users.toml");
    let text = std::fs::read_to_string(&file).expect("users.toml created");
    assert!(
        text.contains("password = \"$argon2id$v=19$m=19456,t=2,p=1$"),
        "{text}"
    );
    assert!(!text.contains(password), "plaintext password in the file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "users.toml mode {mode:o}");
    }

    let (code, uri, err) = run(&["totp", "plc-hall3-07"], "");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        uri.starts_with("otpauth://totp/Bulwark:plc-hall3-07?secret="),
        "{uri}"
    );
    let secret = uri
        .split_once("secret=")
        .and_then(|(_, r)| r.split_once('&'))
        .map(|(s, _)| s.to_owned())
        .expect("secret in the URI");

    let (code, _, err) = run(&["disable", "plc-hall3-07"], "");
    assert_eq!(code, Some(0), "{err}");
    let (code, list, err) = run(&["list"], "");
    assert_eq!(code, Some(0), "{err}");
    assert!(list.contains("plc-hall3-07"), "{list}");
    assert!(list.contains("disabled"), "{list}");
    assert!(list.contains("password+totp"), "{list}");
    assert!(list.contains("telemetry-writer"), "{list}");
    assert!(
        !list.contains("argon2") && !list.contains(&secret) && !list.contains(password),
        "list shows a secret: {list}"
    );

    let text = std::fs::read_to_string(&file).expect("users.toml");
    assert!(text.contains("enabled = false"), "{text}");
    assert!(
        text.contains(&format!("totp_secret = \"{secret}\"")),
        "{text}"
    );
    assert!(!text.contains(password));
    let _ = std::fs::remove_dir_all(&dir);
}
