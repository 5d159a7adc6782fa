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
