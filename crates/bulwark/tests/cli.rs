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
    let mut child = bulwark()
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
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
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn bind_to_the_network_with_anonymous_access_is_refused() {
    let out = bulwark()
        .args(["serve", "--bind", "0.0.0.0:1883"])
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
