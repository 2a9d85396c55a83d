//! `--tls-cert` / `--tls-key`: the server speaks TLS with a certificate made
//! here by `openssl`, and its session cookies are `Secure`.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use lab_team::{AppState, Options, Role, Tls};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use crate::{Cluster, http, run_tls};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate authority of the test's own, and a certificate it signed
/// for `localhost` and 127.0.0.1 with its key: `(authority, cert, key)`.
fn certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "1",
        "-subj",
        "/CN=Lab test authority",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca-key.pem", "-out", "ca.pem"]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-new", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "key.pem", "-out", "cert.csr"]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "cert.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ],
    );
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

/// One HTTP/1.1 request over TLS, trusting only the authority `ca`; the
/// response's head and body as text.
fn https(addr: SocketAddr, ca: &Path, request: &str) -> Result<String, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name)?;
    let mut stream = rustls::StreamOwned::new(conn, TcpStream::connect(addr).unwrap());
    stream.write_all(request.as_bytes()).map_err(|e| {
        e.into_inner()
            .and_then(|i| i.downcast::<rustls::Error>().ok())
            .map_or(rustls::Error::General("write failed".into()), |b| *b)
    })?;
    let mut out = Vec::new();
    // The server may close without a close_notify once it answered.
    let _ = stream.read_to_end(&mut out);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn the_server_speaks_tls_and_its_cookies_are_secure() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificate(dir.path());
    let cluster = Cluster::start();
    let store = tempfile::tempdir().unwrap();
    let mut options = Options::new(cluster.lab(), format!("file://{}", store.path().display()));
    options.tls = true;
    let state = AppState::open(options).unwrap();
    let tls = Tls::load(&cert, &key).unwrap();
    let (_runner, addr) = run_tls(state, Some(tls));

    let health = https(
        addr,
        &ca,
        "GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("ok"), "{health}");

    let token = lab_team::create_token(&cluster.lab(), "ada", Role::Reader, None).unwrap();
    let body = serde_json::json!({ "token": token }).to_string();
    let login = https(
        addr,
        &ca,
        &format!(
            "POST /api/v1/session HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .unwrap();
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    let cookie = login
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );

    // A client that does not trust the certificate is refused...
    let other = tempfile::tempdir().unwrap();
    let (stranger, _, _) = certificate(other.path());
    let refused = https(addr, &stranger, "GET /api/v1/health HTTP/1.1\r\n\r\n");
    assert!(refused.is_err(), "{refused:?}");
    // ...and plain HTTP gets no answer in HTTP; the server keeps serving.
    let plain = http(addr, "GET", "/api/v1/health", None, &[], b"");
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status != 200));
    let again = https(
        addr,
        &ca,
        "GET /api/v1/health HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
}

#[test]
fn bad_certificate_and_key_files_are_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = certificate(dir.path());
    let missing = dir.path().join("missing.pem");
    let e = Tls::load(&missing, &key).err().unwrap().to_string();
    assert!(
        e.contains("`--tls-cert`") && e.contains("missing.pem"),
        "{e}"
    );
    let e = Tls::load(&key, &key).err().unwrap().to_string();
    assert!(e.contains("`--tls-cert` holds no certificate"), "{e}");
    let e = Tls::load(&cert, &cert).err().unwrap().to_string();
    assert!(e.contains("`--tls-key`"), "{e}");
    // A key that is not the certificate's.
    let other = tempfile::tempdir().unwrap();
    let (_, _, stranger) = certificate(other.path());
    let e = Tls::load(&cert, &stranger).err().unwrap().to_string();
    assert!(e.contains("does not go with"), "{e}");
}

#[test]
fn lab_server_serves_https_with_tls_cert_and_key_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificate(dir.path());
    let cluster = Cluster::start();
    let store = tempfile::tempdir().unwrap();
    let artifacts = format!("file://{}", store.path().display());
    let server = |extra: &[&std::ffi::OsStr], addr: &str| {
        let mut command = Command::new(crate::crash::lab());
        command
            .args([
                "server",
                "--database",
                &cluster.lab(),
                "--artifacts",
                &artifacts,
            ])
            .args(["--listen", addr])
            .args(extra);
        command
    };
    // One without the other, a missing file, a key that is no key.
    let missing = dir.path().join("missing.pem");
    for (extra, says) in [
        (vec![cert.as_os_str()], "--tls-key"),
        (
            vec![
                "--tls-cert".as_ref(),
                missing.as_os_str(),
                "--tls-key".as_ref(),
                key.as_os_str(),
            ],
            "missing.pem",
        ),
        (
            vec![
                "--tls-cert".as_ref(),
                cert.as_os_str(),
                "--tls-key".as_ref(),
                cert.as_os_str(),
            ],
            "`--tls-key`",
        ),
    ] {
        let mut extra = extra;
        if extra.len() == 1 {
            extra.insert(0, "--tls-cert".as_ref());
        }
        let out = server(&extra, "127.0.0.1:0").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(if extra.len() == 2 { 2 } else { 1 }),
            "{err}"
        );
        assert!(err.contains(says), "{err}");
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = server(
        &[
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ],
        &port.to_string(),
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.contains(&format!("https://{port}/")), "{first}");
    let health = https(
        port,
        &ca,
        "GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let health = health.unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}
