//! The smaller holes of an outside security test, checked through the real binary and the
//! real router: private data files, config errors without secrets, security headers, one 404
//! answer, and a header-read timeout.

#[macro_use]
mod common;

use std::process::Command;

/// `partnerflow ARGS…` in `dir` with `env`: (success, stdout, stderr).
fn run(dir: &std::path::Path, args: &[&str], env: &[(String, String)]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_partnerflow"))
        .args(args)
        .current_dir(dir)
        .envs(env.iter().cloned())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn config_errors_name_file_and_key_never_the_secret() {
    const SECRET: &str = "Hunter2-Sup3rSecret";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    let cases: Vec<(String, &str, Option<&str>)> = vec![
        // Syntax errors: the offending line holds the secret.
        (
            format!("[email.smtp]\nhost = \"mail\"\npassword = \"{SECRET}\n"),
            "email.smtp.password",
            Some("bad.toml:3:"),
        ),
        (
            format!("[http]\nadmin_token = {SECRET}\n"),
            "http.admin_token",
            Some("bad.toml:2:"),
        ),
        (
            format!("[links]\nkeys = '{SECRET}\nsigning_key = \"\"\n"),
            "links.keys",
            None,
        ),
        // Type errors on secret keys.
        (
            "[http]\nadmin_token = 4711081542\n".into(),
            "http.admin_token",
            None,
        ),
        (
            "[email.smtp]\npassword = 47.1108\n".into(),
            "email.smtp.password",
            None,
        ),
        // A password in the database URL.
        (
            format!("[database]\nurl = \"mysql://pf:{SECRET}@db/pf\"\n"),
            "database.url",
            None,
        ),
    ];
    for (text, key, line) in cases {
        std::fs::write(&file, &text).unwrap();
        let (ok, _, stderr) = run(dir.path(), &["--config", "bad.toml", "check"], &[]);
        assert!(!ok, "{text}");
        for secret in [SECRET, "4711081542", "47.1108"] {
            assert!(
                !stderr.contains(secret),
                "secret shown for\n{text}\n{stderr}"
            );
        }
        assert!(
            stderr.contains("bad.toml") && stderr.contains(key),
            "file or key missing for\n{text}\n{stderr}"
        );
        if let Some(line) = line {
            assert!(stderr.contains(line), "line missing for\n{text}\n{stderr}");
        }
    }
    // A key pasted where its id belongs, from the environment.
    std::fs::write(&file, "").unwrap();
    let mut env: Vec<(String, String)> = [
        ("PARTNERFLOW__APP__WORKFLOWS_DIR", "workflows"),
        ("PARTNERFLOW__APP__TEMPLATES_DIR", "email-templates"),
        ("PARTNERFLOW__APP__CATALOG", "config/catalog.toml"),
    ]
    .iter()
    .map(|(k, p)| (k.to_string(), common::manifest(p).display().to_string()))
    .collect();
    env.push((
        "PARTNERFLOW__LINKS__KEYS".to_string(),
        format!("{SECRET}-0123456789abcdef:{SECRET}"),
    ));
    let (ok, _, stderr) = run(dir.path(), &["--config", "bad.toml", "check"], &env);
    assert!(!ok);
    assert!(!stderr.contains(SECRET), "{stderr}");
    assert!(stderr.contains("links.keys"), "{stderr}");
}

async fn get(url: String, headers: &[(&str, &str)]) -> common::web::Resp {
    let h = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    common::web::request("GET", url, h, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_responses_are_neither_cached_nor_sniffed() {
    let app = common::spawn_app(common::Store::Sqlite, &[]).await;
    let base = common::web::serve(&app).await;
    for (path, status) in [
        ("/api/v1/openapi.json", 200),
        ("/api/v1/catalog", 401),
        ("/api/v1/nope", 404),
        ("/api/v1/offers/%FF", 404),
    ] {
        let r = get(format!("{base}{path}"), &[]).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(r.header("strict-transport-security"), None, "{path}: http");
    }
    let r = get(format!("{base}/api/v1/offers/%FF"), &[]).await;
    assert_eq!(r.code(), "route_not_found", "{}", r.body);
    let r = get(format!("{base}/healthz"), &[]).await;
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_transport_security_when_the_public_url_is_https() {
    let app = common::spawn_app(
        common::Store::Sqlite,
        &[(
            "PARTNERFLOW__APP__PUBLIC_BASE_URL",
            "https://offers.example",
        )],
    )
    .await;
    let base = common::web::serve(&app).await;
    for path in ["/healthz", "/api/v1/openapi.json", "/o/PF-NOPE", "/nope"] {
        let r = get(format!("{base}{path}"), &[]).await;
        let hsts = r.header("strict-transport-security").unwrap_or("");
        assert!(hsts.starts_with("max-age="), "{path}: {:?}", r.headers);
    }
}

/// Unknown paths, paths that are not UTF-8 and the router's fallback answer exactly like a bad
/// offer code: status, headers, body, and the language from Accept-Language.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dead_end_answers_like_a_bad_offer_code() {
    let app = common::spawn_app(common::Store::Sqlite, &[]).await;
    let base = common::web::serve(&app).await;
    let mut bodies = Vec::new();
    for lang in [Some("en-GB,en;q=0.9"), Some("de-DE"), None] {
        let h: Vec<(&str, &str)> = lang.iter().map(|l| ("Accept-Language", *l)).collect();
        let want = get(format!("{base}/o/PF-NOPE"), &h).await;
        assert_eq!(want.status, 404);
        for path in [
            "/nope",
            "/o/",
            "/o/%FF",
            "/o/%C3%28",
            "/r/%FF",
            "/p/%FF",
            "/u/%FF",
            "/%FF",
            "/assets/app.js",
        ] {
            let got = get(format!("{base}{path}"), &h).await;
            assert_eq!(got.status, want.status, "{path} {lang:?}: {}", got.body);
            assert_eq!(got.body, want.body, "{path} {lang:?}");
            let mut a = got.headers.clone();
            let mut b = want.headers.clone();
            for h in [&mut a, &mut b] {
                h.remove("date");
            }
            assert_eq!(a, b, "{path} {lang:?}: headers");
        }
        bodies.push(want.body);
    }
    assert_ne!(bodies[0], bodies[1], "en and de differ");
    assert_eq!(
        bodies[2], bodies[1],
        "the default locale (de) without Accept-Language"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `partnerflow serve` on a free port with `env`; waits until it answers /healthz.
async fn serve_binary(
    args: &[&str],
    env: &[(String, String)],
    log: &std::path::Path,
) -> (common::Proc, String) {
    let port = free_port();
    let mut env = env.to_vec();
    env.push((
        "PARTNERFLOW__HTTP__BIND".into(),
        format!("127.0.0.1:{port}"),
    ));
    let mut argv = vec!["serve"];
    argv.extend_from_slice(args);
    let proc = common::spawn_partnerflow(&argv, &env, log);
    let base = format!("http://127.0.0.1:{port}");
    let url = format!("{base}/healthz");
    common::wait_for("serve to answer /healthz", Duration::from_secs(60), || {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                ureq::get(&url)
                    .call()
                    .is_ok_and(|r| r.status().as_u16() == 200)
            })
            .await
            .unwrap()
        }
    })
    .await;
    (proc, base)
}

use std::time::{Duration, Instant};

/// A client that sends its request head a byte at a time is cut off after
/// `http.header_read_timeout`; complete requests are still answered, and SIGTERM still stops
/// the server gracefully.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dribbling_client_is_cut_off_after_the_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::new(common::Store::Sqlite, dir.path()).await;
    let env = common::test_env(
        dir.path(),
        &db,
        &[("PARTNERFLOW__HTTP__HEADER_READ_TIMEOUT", "700ms")],
    );
    let (mut server, base) = serve_binary(&["--no-workers"], &env, &dir.path().join("log")).await;
    let addr = base.trim_start_matches("http://").to_string();

    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let deadline = started + Duration::from_secs(10);
    let mut buf = [0u8; 256];
    let closed_after = loop {
        assert!(
            Instant::now() < deadline,
            "the connection is still open after {:?}",
            started.elapsed()
        );
        tokio::select! {
            r = conn.read(&mut buf) => match r {
                Ok(0) | Err(_) => break started.elapsed(),
                // hyper may answer 408 before closing; the close is what counts.
                Ok(_) => continue,
            },
            // The attack: one more byte of the header every 100 ms.
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if conn.write_all(b"a").await.is_err() {
                    break started.elapsed();
                }
            }
        }
    };
    assert!(
        closed_after >= Duration::from_millis(600),
        "closed too early: {closed_after:?}"
    );

    // A request sent at once is answered.
    let r = get(format!("{base}/healthz"), &[]).await;
    assert_eq!(r.status, 200);

    server.signal("TERM");
    assert!(
        server.wait_exit(Duration::from_secs(20)),
        "serve did not stop on SIGTERM"
    );
}

/// Walks `root`: every folder (root included) and file with its mode.
#[cfg(unix)]
fn modes(root: &std::path::Path) -> Vec<(std::path::PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = vec![];
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue; // removed meanwhile (a -wal at close)
        };
        out.push((p.clone(), meta.permissions().mode() & 0o777));
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap().flatten() {
                todo.push(e.path());
            }
        }
    }
    out
}

/// `partnerflow serve` in a fresh folder: the data folder, the SQLite database and its -wal
/// and -shm, the generated link key, the outbox and each .eml are the service user's alone.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_are_private_to_the_service_user() {
    const TOKEN: &str = "test-admin-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = common::TestDb::new(common::Store::Sqlite, &data).await;
    let data_s = data.display().to_string();
    let outbox = data.join("outbox").display().to_string();
    let env = common::test_env(
        dir.path(),
        &db,
        &[
            ("PARTNERFLOW__APP__DATA_DIR", data_s.as_str()),
            ("PARTNERFLOW__EMAIL__OUTBOX_DIR", outbox.as_str()),
            ("PARTNERFLOW__HTTP__ADMIN_TOKEN", TOKEN),
            ("PARTNERFLOW__JOBS__POLL_INTERVAL", "100ms"),
        ],
    );
    let (mut server, base) = serve_binary(&[], &env, &dir.path().join("log")).await;
    let start = serde_json::json!({
        "workflow": "trial_invitation", "data": common::trial_data(1), "event": "send", "locale": "de"
    });
    let r = common::web::request(
        "POST",
        format!("{base}/api/v1/instances"),
        vec![("Authorization".into(), format!("Bearer {TOKEN}"))],
        Some(("application/json", start.to_string())),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let outbox_dir = data.join("outbox");
    common::wait_for(
        "the invitation in the outbox",
        Duration::from_secs(60),
        || {
            let d = outbox_dir.clone();
            async move {
                std::fs::read_dir(&d).is_ok_and(|d| {
                    d.flatten()
                        .any(|e| e.path().extension().is_some_and(|x| x == "eml"))
                })
            }
        },
    )
    .await;

    let check = |when: &str| {
        let all = modes(&data);
        let names: Vec<String> = all
            .iter()
            .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        for want in ["pf.db", "link-keys", "outbox"] {
            assert!(
                names.iter().any(|n| n == want),
                "{when}: no {want} in {all:?}"
            );
        }
        assert!(names.iter().any(|n| n.ends_with(".eml")), "{when}: {all:?}");
        for (p, mode) in &all {
            let want = if p.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(*mode, want, "{when}: {} is {mode:o}", p.display());
        }
        names
    };
    let running = check("while serving");
    assert!(
        running.iter().any(|n| n == "pf.db-wal") && running.iter().any(|n| n == "pf.db-shm"),
        "{running:?}"
    );
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)));
    check("after exit");
}
