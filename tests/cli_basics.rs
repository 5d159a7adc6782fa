//! What a new user meets first, through the real binary: `--help` on every argument, quiet
//! CLI logs without colour codes, checked country codes, `templates render` with sample
//! values, `check` on a template with an unknown partial, `customers search` over
//! invitations.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use clap::CommandFactory;
use common::Store;

struct Cli {
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Cli {
    /// A fresh SQLite installation, logging at the built-in default level.
    async fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let db = common::TestDb::new(Store::Sqlite, dir.path()).await;
        let env = common::test_env(dir.path(), &db, &[]);
        Cli { env, dir }
    }
    /// Runs `partnerflow ARGS` with stdout and stderr piped (not terminals) and no RUST_LOG.
    fn run(&self, args: &[&str]) -> Out {
        let o = Command::new(env!("CARGO_BIN_EXE_partnerflow"))
            .args(args)
            .envs(self.env.iter().cloned())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Out {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    fn ok(&self, args: &[&str]) -> Out {
        let o = self.run(args);
        assert!(
            o.ok,
            "partnerflow {args:?} failed:\n{}\n{}",
            o.stdout, o.stderr
        );
        o
    }
}

fn assert_no_colour(what: &str, s: &str) {
    assert!(
        !s.contains("\x1b["),
        "{what}: ANSI escape sequences in piped output:\n{}",
        s.escape_debug()
    );
}

#[test]
fn every_argument_and_command_has_help() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            if a.get_help().is_none() && a.get_long_help().is_none() {
                missing.push(format!("{path} <{id}>"));
            }
        }
        for sub in cmd.get_subcommands() {
            let p = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() && sub.get_long_about().is_none() {
                missing.push(format!("{p} (the command)"));
            }
            walk(sub, &p, missing);
        }
    }
    let cli = partnerflow::cli::Cli::command();
    cli.clone().debug_assert();
    let mut missing = Vec::new();
    walk(&cli, "partnerflow", &mut missing);
    assert!(
        missing.is_empty(),
        "without help text:\n{}",
        missing.join("\n")
    );
}

impl Cli {
    /// Syncs the locations and creates an open trial offer; returns its Offer ID.
    fn trial_offer(&self) -> String {
        self.ok(&["locations", "sync"]);
        let out = self.ok(&[
            "offer",
            "create",
            "--kind",
            "trial",
            "--location",
            "loc-berlin",
            "--country",
            "DE",
            "--product",
            "m365-e3-trial",
        ]);
        out.stdout.split_whitespace().nth(1).unwrap().to_string()
    }
}

#[tokio::test]
async fn commands_log_warnings_only_and_never_colour_codes_into_a_pipe() {
    let cli = Cli::new().await;
    cli.ok(&["locations", "sync"]);
    let args = [
        "offer",
        "create",
        "--kind",
        "trial",
        "--location",
        "loc-berlin",
        "--country",
        "DE",
        "--product",
        "m365-e3-trial",
    ];
    let o = cli.ok(&args);
    assert_no_colour("offer create", &o.stderr);
    assert!(
        !o.stderr.contains("INFO"),
        "a CLI command logs warnings only by default:\n{}",
        o.stderr
    );
    assert!(o.stdout.starts_with("offer PF-"), "{}", o.stdout);
    // -v asks for the info lines, still without colour codes.
    let v: Vec<&str> = std::iter::once("-v").chain(args).collect();
    let o = cli.ok(&v);
    assert_no_colour("-v offer create", &o.stderr);
    assert!(o.stderr.contains("INFO"), "{}", o.stderr);
    assert!(o.stderr.contains("offer created"), "{}", o.stderr);
}

#[tokio::test]
async fn campaign_state_changes_are_logged_with_the_campaign_id() {
    let cli = Cli::new().await;
    let offer = cli.trial_offer();
    let csv = cli.dir.path().join("r.csv");
    std::fs::write(
        &csv,
        "email,name\na@contoso.example,A\nb@fabrikam.example,B\n",
    )
    .unwrap();
    let create = |name: &str| {
        let o = cli.ok(&[
            "campaign",
            "create",
            &offer,
            "--name",
            name,
            "--recipients",
            csv.to_str().unwrap(),
        ]);
        // "campaign ID created (draft) for offer …"
        o.stdout.split_whitespace().nth(1).unwrap().to_string()
    };
    let a = create("first");
    for (cmd, line) in [
        ("start", "campaign started"),
        ("pause", "campaign paused"),
        ("resume", "campaign resumed"),
        ("cancel", "campaign cancelled"),
    ] {
        let o = cli.ok(&["-v", "campaign", cmd, &a]);
        assert_no_colour(cmd, &o.stderr);
        assert!(
            o.stderr
                .lines()
                .any(|l| l.contains("INFO") && l.contains(line) && l.contains(&a)),
            "campaign {cmd}: no `{line}` with {a}:\n{}",
            o.stderr
        );
    }
    // Sent to the end by this process: it logs that it sends it and that it completed.
    let b = create("second");
    let o = cli.ok(&["-v", "campaign", "run", &b]);
    for line in ["campaign started", "campaign running", "campaign completed"] {
        assert!(
            o.stderr.lines().any(|l| l.contains(line) && l.contains(&b)),
            "campaign run: no `{line}` with {b}:\n{}",
            o.stderr
        );
    }
}

#[tokio::test]
async fn usage_countries_are_assigned_iso_codes_and_the_catalog_has_a_header() {
    let cli = Cli::new().await;
    cli.ok(&["locations", "sync"]);
    for (kind, extra) in [
        ("delegated_admin", ["--delegated-admin", "full"]),
        ("purchase", ["--product", "m365-e3:5"]),
    ] {
        let mut args = vec![
            "offer",
            "create",
            "--kind",
            kind,
            "--location",
            "loc-berlin",
            "--country",
            "XX",
        ];
        args.extend(extra);
        let o = cli.run(&args);
        assert!(!o.ok, "{kind} offer for XX created:\n{}", o.stdout);
        assert!(
            o.stderr.contains("country") && o.stderr.contains("ISO 3166-1"),
            "{}",
            o.stderr
        );
        assert!(!o.stderr.contains("not available in"), "{}", o.stderr);
    }
    let o = cli.run(&["catalog", "list", "--country", "XX"]);
    assert!(!o.ok && o.stderr.contains("ISO 3166-1"), "{}", o.stderr);
    let o = cli.ok(&["catalog", "list", "--country", "DE"]);
    let header = o.stdout.lines().next().unwrap_or_default();
    for col in ["product", "kind", "licences", "name", "countries"] {
        assert!(header.contains(col), "no header row: {}", o.stdout);
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn check_refuses_a_template_using_an_unknown_partial() {
    let mut cli = Cli::new().await;
    let dir = cli.dir.path().join("templates");
    copy_dir(&common::manifest("email-templates"), &dir);
    let file = dir.join("en/acceptance_notice.html.hbs");
    let body = std::fs::read_to_string(&file).unwrap();
    assert!(body.starts_with("{{#> html_layout}}"), "{body}");
    std::fs::write(&file, body.replace("html_layout", "html_layoutx")).unwrap();
    // In the text part too, further down and inside a block.
    let txt = dir.join("de/reseller_removed.txt.hbs");
    let t = std::fs::read_to_string(&txt).unwrap();
    let t = format!("{t}\n{{{{#if partner.name}}}}\n{{{{> signatur}}}}\n{{{{/if}}}}\n");
    std::fs::write(&txt, &t).unwrap();
    let line = 1 + t.lines().position(|l| l == "{{> signatur}}").unwrap();
    cli.env.push((
        "PARTNERFLOW__APP__TEMPLATES_DIR".into(),
        dir.display().to_string(),
    ));
    let o = cli.run(&["check"]);
    assert!(!o.ok, "check passed:\n{}", o.stdout);
    assert!(
        o.stderr
            .contains("en/acceptance_notice.html.hbs:1:1: unknown partial `html_layoutx`"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains(&format!(
            "de/reseller_removed.txt.hbs:{line}:1: unknown partial `signatur`"
        )),
        "{}",
        o.stderr
    );
    // The shipped templates pass.
    cli.env.pop();
    let o = cli.ok(&["check"]);
    assert!(o.stdout.starts_with("ok:"), "{}", o.stdout);
}

#[tokio::test]
async fn templates_render_fills_every_gap_with_samples_in_the_templates_language() {
    let cli = Cli::new().await;
    let data = cli.dir.path().join("data.json");
    std::fs::write(&data, r#"{"customer_name": "Anna Schmidt"}"#).unwrap();
    let d = data.to_str().unwrap();
    // Without --workflow the file is (part of) the template context.
    let context = cli.dir.path().join("context.json");
    std::fs::write(&context, r#"{"data": {"customer_name": "Anna Schmidt"}}"#).unwrap();
    let c = context.to_str().unwrap();
    for args in [
        vec!["templates", "render", "trial_invitation", "--locale", "en"],
        vec![
            "templates",
            "render",
            "trial_invitation",
            "--locale",
            "en",
            "--workflow",
            "trial_invitation",
            "--data",
            d,
        ],
        vec!["templates", "render", "admin_offer", "--data", c],
    ] {
        let o = cli.ok(&args);
        assert!(
            !o.stdout.contains("Beispiel") && !o.stdout.contains("kunde@"),
            "{args:?}: German sample values in English:\n{}",
            o.stdout
        );
        if args.contains(&"--data") {
            assert!(o.stdout.contains("Anna Schmidt"), "{args:?}:\n{}", o.stdout);
        }
    }
    let o = cli.ok(&[
        "templates",
        "render",
        "trial_invitation",
        "--locale",
        "de",
        "--part",
        "text",
    ]);
    assert!(!o.stdout.contains("Example"), "{}", o.stdout);
    // The data of a workflow is still checked.
    std::fs::write(&data, r#"{"customer_email": "not an address"}"#).unwrap();
    let o = cli.run(&[
        "templates",
        "render",
        "trial_invitation",
        "--workflow",
        "trial_invitation",
        "--data",
        d,
    ]);
    assert!(!o.ok && o.stderr.contains("customer_email"), "{}", o.stderr);
}

/// `worker` keeps its info lines by default (no colour codes into a file), and logs when it
/// takes up a campaign started elsewhere and when that campaign completes.
#[tokio::test]
async fn a_worker_logs_info_without_colour_and_the_campaigns_it_sends() {
    let mut cli = Cli::new().await;
    cli.env
        .push(("PARTNERFLOW__JOBS__POLL_INTERVAL".into(), "100ms".into()));
    let offer = cli.trial_offer();
    let csv = cli.dir.path().join("r.csv");
    std::fs::write(&csv, "email\na@contoso.example\nb@fabrikam.example\n").unwrap();
    let o = cli.ok(&[
        "campaign",
        "create",
        &offer,
        "--name",
        "winter",
        "--recipients",
        csv.to_str().unwrap(),
    ]);
    let id = o.stdout.split_whitespace().nth(1).unwrap().to_string();
    let log = cli.dir.path().join("worker.log");
    let mut worker = common::Proc(
        Command::new(env!("CARGO_BIN_EXE_partnerflow"))
            .arg("worker")
            .envs(cli.env.iter().cloned())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    common::wait_for("the worker to start", Duration::from_secs(30), || async {
        read().contains("workers started")
    })
    .await;
    // Started by another process (this CLI): the worker says it sends it, then that it is done.
    cli.ok(&["campaign", "start", &id]);
    common::wait_for(
        "the worker to log the campaign's completion",
        Duration::from_secs(30),
        || async {
            read()
                .lines()
                .any(|l| l.contains("campaign completed") && l.contains(&id))
        },
    )
    .await;
    worker.signal("TERM");
    assert!(worker.wait_exit(Duration::from_secs(10)));
    let text = read();
    assert_no_colour("worker log", &text);
    assert!(
        text.lines()
            .any(|l| l.contains("INFO") && l.contains("campaign running") && l.contains(&id)),
        "{text}"
    );
}
