//! Loading fails closed and says which file is wrong.

use super::*;

struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(tag: &str) -> Files {
        let dir = std::env::temp_dir().join(format!("bulwark-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = p.self_signed(&ca_key).expect("ca");
        let key = rcgen::KeyPair::generate().expect("key");
        let other = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .signed_by(&key, &ca, &ca_key)
            .expect("leaf");
        let write = |name: &str, text: String| std::fs::write(dir.join(name), text).expect("write");
        write("ca.pem", ca.pem());
        write("server.pem", leaf.pem());
        write("server.key", key.serialize_pem());
        write("other.key", other.serialize_pem());
        write("garbage.pem", "not a certificate\n".into());
        Files { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn settings(&self) -> TlsSettings {
        TlsSettings {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            ca: Some(self.path("ca.pem")),
            crls: Vec::new(),
            client_auth: ClientAuth::Required,
            tls13_only: false,
            allow_expired_crl: false,
            alpn: vec![b"mqtt".to_vec()],
        }
    }
}

fn err(s: &TlsSettings) -> String {
    match load(s) {
        Ok(_) => panic!("loaded: {s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn good_material_loads_with_a_verifier_and_alpn() {
    let f = Files::new("good");
    let m = load(&f.settings()).expect("loads");
    assert!(m.verifier.is_some());
    assert_eq!(m.server.alpn_protocols, vec![b"mqtt".to_vec()]);
    assert!(m.server.ignore_client_order);
    let mut none = f.settings();
    none.client_auth = ClientAuth::None;
    assert!(load(&none).expect("loads").verifier.is_none());
}

#[test]
fn every_bad_file_fails_closed_and_is_named() {
    let f = Files::new("bad");
    let mut s = f.settings();
    s.ca = Some(f.path("missing-ca.pem"));
    let e = err(&s);
    assert!(
        e.contains("cannot read CA bundle") && e.contains("missing-ca.pem"),
        "{e}"
    );

    let mut s = f.settings();
    s.ca = Some(f.path("garbage.pem"));
    let e = err(&s);
    assert!(e.contains("CA bundle") && e.contains("garbage.pem"), "{e}");

    let mut s = f.settings();
    s.key = f.path("other.key");
    let e = err(&s);
    assert!(e.contains("hold the key"), "{e}");

    let mut s = f.settings();
    s.key = f.path("garbage.pem");
    let e = err(&s);
    assert!(
        e.contains("private key") && e.contains("garbage.pem"),
        "{e}"
    );

    let mut s = f.settings();
    s.crls = vec![f.path("garbage.pem")];
    let e = err(&s);
    assert!(e.contains("CRL") && e.contains("garbage.pem"), "{e}");

    let mut s = f.settings();
    s.ca = None;
    let e = err(&s);
    assert!(e.contains("no tls_ca"), "{e}");
}
