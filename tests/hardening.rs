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
