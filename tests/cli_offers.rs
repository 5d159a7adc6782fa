//! The CLI mirror of the partner API, run as the real binary: the README walk-through
//! (locations, catalog, offer create, invite, offer show), tokens, customers search and the
//! sign-up import with a bad row reported by line and skipped.

mod common;

use std::process::Command;

use common::Store;

struct Cli {
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Cli {
    async fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let db = common::TestDb::new(Store::Sqlite, dir.path()).await;
        let env = common::test_env(dir.path(), &db, &[("PARTNERFLOW__LOG__LEVEL", "warn")]);
        Cli { env, _dir: dir }
    }
    fn run(&self, args: &[&str]) -> Out {
        let o = Command::new(env!("CARGO_BIN_EXE_partnerflow"))
            .args(args)
            .envs(self.env.iter().cloned())
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        Out {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
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
        out.split_whitespace().nth(1).unwrap().to_string()
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.ok,
            "partnerflow {args:?} failed:\n{}\n{}",
            o.stdout, o.stderr
        );
        o.stdout
    }
}

#[tokio::test]
async fn walkthrough_tokens_customers_and_signup_import() {
    let cli = Cli::new().await;
    // A location must be synced before it can be chosen.
    let o = cli.run(&[
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
    assert!(!o.ok);
    assert!(
        o.stderr
            .contains("location_id: location `loc-berlin` is not synced yet"),
        "{}",
        o.stderr
    );
    assert!(cli.ok(&["locations", "sync"]).contains("2 locations"));
    assert!(cli.ok(&["locations", "list"]).contains("loc-berlin"));
    let cat = cli.ok(&["catalog", "list", "--country", "US"]);
    assert!(cat.contains("teams-essentials"));
    assert!(
        !cli.ok(&["catalog", "list", "--country", "DE"])
            .contains("teams-essentials")
    );

    let out = cli.ok(&[
        "offer",
        "create",
        "--kind",
        "purchase",
        "--location",
        "loc-berlin",
        "--country",
        "DE",
        "--product",
        "m365-e3:25",
        "--product",
        "exchange-online-plan-1:10",
        "--delegated-admin",
        "limited",
    ]);
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    assert!(id.starts_with("PF-"), "{out}");
    assert!(out.contains("link: http://127.0.0.1:8080/o/"), "{out}");
    let o = cli.run(&[
        "offer",
        "create",
        "--kind",
        "purchase",
        "--location",
        "loc-berlin",
        "--country",
        "DE",
        "--product",
        "m365-e3:0",
    ]);
    assert!(
        !o.ok
            && o.stderr
                .contains("products[0].licences: product `m365-e3`: 0 licences is outside 1–10000"),
        "{}",
        o.stderr
    );

    let inv = cli.ok(&["invite", &id, "einkauf@fabrikam.example", "--locale", "en"]);
    assert!(inv.contains("invited"), "{inv}");
    cli.ok(&["jobs", "run-due"]);
    let show = cli.ok(&["offer", "show", &id]);
    assert!(show.contains("state open"), "{show}");
    assert!(
        show.contains("invitations (1):") && show.contains("einkauf@fabrikam.example"),
        "{show}"
    );
    assert!(show.contains("purchase_offer sent"), "{show}");
    assert!(show.contains("acceptances (0):"), "{show}");
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["offer", "show", &id, "--json"])).unwrap();
    assert_eq!(json["products"][0]["licences"], 25);
    let list = cli.ok(&["offer", "list", "--kind", "purchase", "--state", "open"]);
    assert!(list.contains(&id));
    assert!(!cli.ok(&["offer", "list", "--kind", "trial"]).contains(&id));

    // Tokens: created once (secret printed once), listed without secrets, revoked.
    let token = cli
        .ok(&["tokens", "create", "--name", "crm", "--role", "viewer"])
        .trim()
        .to_string();
    assert!(token.starts_with("pf_t"), "{token}");
    let tid = token.split('_').nth(1).unwrap().to_string();
    let list = cli.ok(&["tokens", "list"]);
    assert!(
        list.contains(&tid)
            && list.contains("viewer")
            && !list.contains(token.rsplit('_').next().unwrap())
    );
    assert!(
        !cli.run(&["tokens", "create", "--name", "x", "--role", "root"])
            .ok
    );
    assert!(cli.ok(&["tokens", "revoke", &tid]).contains("revoked"));
    assert!(!cli.run(&["tokens", "revoke", &tid]).ok);

    // Sign-ups: a CSV with bad rows; they are reported by line and skipped, the rest land.
    let code = json["link"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let csv = format!(
        "advisor_code,customer_domain,completed_at\n{code},fabrikam.example,2026-11-02T10:00:00Z\n{code},not a domain,2026-11-02T10:00:00Z\n{code},tailspin.example,yesterday\n{code},only-two-fields\n\n{code},contoso.example,2026-11-02T11:00:00Z\n"
    );
    let file = cli._dir.path().join("signups.csv");
    std::fs::write(&file, csv).unwrap();
    let o = cli.run(&["signups", "import", file.to_str().unwrap()]);
    assert!(!o.ok, "bad rows make the exit status 1");
    let f = file.display().to_string();
    assert!(
        o.stderr.contains(&format!("{f}:3: customer_domain:")),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains(&format!("{f}:4: completed_at:")),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains(&format!("{f}:5: 2 fields, the header has 3")),
        "{}",
        o.stderr
    );
    assert!(o.stdout.contains("2 sign-ups recorded"), "{}", o.stdout);
    assert!(o.stdout.contains("3 bad rows skipped"), "{}", o.stdout);
    // Imported again: nothing new.
    let o = cli.run(&["signups", "import", file.to_str().unwrap()]);
    assert!(
        o.stdout.contains("0 sign-ups recorded") && o.stdout.contains("2 already known"),
        "{}",
        o.stdout
    );
    // Nobody accepted yet: reconcile reports them unmatched; offer show lists them.
    let r = cli.ok(&["schedules", "run", "reconcile"]);
    assert!(r.contains("2 sign-ups unmatched"), "{r}");
    let show = cli.ok(&["offer", "show", &id]);
    assert!(
        show.contains("sign-ups matching no acceptance (2):"),
        "{show}"
    );

    let c = cli.run(&["customers", "search", "fab*"]);
    assert!(!c.ok && c.stderr.contains("wildcards"), "{}", c.stderr);
    // Nobody accepted, but the partner invited someone there: search finds the invitation.
    let found = cli.ok(&["customers", "search", "fabrikam.example"]);
    assert!(
        found.contains("fabrikam.example  invited")
            && found.contains("invited einkauf@fabrikam.example")
            && found.contains(&id),
        "{found}"
    );
    let found = cli.ok(&["customers", "search", "EINKAUF@fabrikam.example"]);
    assert!(
        found.contains("invited einkauf@fabrikam.example"),
        "{found}"
    );
    assert!(
        cli.ok(&["customers", "search", "other@fabrikam.example"])
            .contains("no customer")
    );
    assert!(
        cli.ok(&["customers", "search", "abrikam.example"])
            .contains("no customer"),
        "a domain is matched exactly, not as a suffix"
    );

    assert!(cli.ok(&["offer", "withdraw", &id]).contains("withdrawn"));
    let o = cli.run(&["invite", &id, "x@fabrikam.example"]);
    assert!(!o.ok && o.stderr.contains("withdrawn"), "{}", o.stderr);
    // --help documents the commands.
    let help = cli.ok(&["--help"]);
    for c in [
        "offer",
        "invite",
        "locations",
        "catalog",
        "customers",
        "tokens",
        "signups",
        "resellers",
    ] {
        assert!(help.contains(c), "--help lacks {c}");
    }
}

/// Campaigns from the CLI, as an operator runs them: create with a recipients file (bad rows
/// reported as FILE:LINE and skipped, exit 1, the rest added), status, `campaign run` (plain
/// progress lines when not on a terminal) to the file outbox, report, bounces ingest of a
/// directory (a non-bounce reported and skipped), suppressions.
#[tokio::test]
async fn campaign_cli_end_to_end() {
    let cli = Cli::new().await;
    let offer = cli.trial_offer();
    let corpus = common::manifest("tests/support/campaigns/bad_rows.csv");
    let corpus = corpus.to_str().unwrap();
    cli.ok(&["suppressions", "add", "gesperrt@contoso.example"]);
    let o = cli.run(&[
        "campaign",
        "create",
        &offer,
        "--name",
        "Winter",
        "--recipients",
        corpus,
        "--reminder-after",
        "3d",
    ]);
    assert!(!o.ok, "bad rows make the exit status 1");
    assert!(
        o.stderr.contains(&format!("{corpus}:3: email:")),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains(&format!("{corpus}:7: duplicate")),
        "{}",
        o.stderr
    );
    assert!(o.stdout.contains("5 added"), "{}", o.stdout);
    assert!(o.stdout.contains("1 suppressed"), "{}", o.stdout);
    let id = o.stdout.split_whitespace().nth(1).unwrap().to_string();
    assert!(id.starts_with("cmp_"), "{}", o.stdout);
    let st = cli.ok(&["campaign", "status", &id]);
    assert!(st.contains(": draft"), "{st}");
    assert!(st.contains("5 recipients: 4 pending"), "{st}");
    assert!(st.contains("reminder after 259200s"), "{st}");
    let o = cli.run(&["campaign", "resume", &id]);
    assert!(!o.ok && o.stderr.contains("is draft"), "{}", o.stderr);
    // `run` sends everything to the outbox; with a reminder due in 3 days the campaign stays
    // running, so pause it from a second command once the invitations are out.
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_partnerflow"))
        .args(["campaign", "run", &id])
        .envs(cli.env.iter().cloned())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let st = cli.ok(&["campaign", "status", &id]);
        if st.contains("4 sent") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not sent: {st}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    cli.ok(&["campaign", "pause", &id]);
    let out = run.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "run ends with the pause: {stdout}");
    assert!(
        stderr.contains(&format!("{id}: ")) && stderr.contains("done ("),
        "plain progress lines: {stderr}"
    );
    assert!(stderr.contains("paused by the operator"), "{stderr}");
    let outbox = std::path::PathBuf::from(
        &cli.env
            .iter()
            .find(|(k, _)| k == "PARTNERFLOW__EMAIL__OUTBOX_DIR")
            .unwrap()
            .1,
    );
    let mails: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(mails.len(), 4);
    let one = std::fs::read_to_string(mails[0].path()).unwrap();
    assert!(
        one.contains("List-Unsubscribe: <http://127.0.0.1:8080/u/"),
        "{one}"
    );
    assert!(
        one.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{one}"
    );
    // The report: header plus 5 rows, each with its line and state.
    let report = cli.ok(&["campaign", "report", &id]);
    assert_eq!(report.lines().count(), 6, "{report}");
    assert!(
        report.contains(",gesperrt@contoso.example,suppressed,"),
        "{report}"
    );
    // A bounce for fred's invitation, and a file that is not a bounce.
    let fred = report
        .lines()
        .find(|l| l.contains("fred@contoso.example"))
        .unwrap();
    let mid = fred.split(',').nth(3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dsn = std::fs::read_to_string(common::manifest("tests/support/bounces/hard-postfix.eml"))
        .unwrap()
        .replace("<cmp_test.2@partnerflow.example>", mid)
        .replace("perm1@kunde.example", "fred@contoso.example");
    std::fs::write(dir.path().join("1.eml"), dsn).unwrap();
    std::fs::copy(
        common::manifest("tests/support/bounces/not-a-bounce.eml"),
        dir.path().join("2.eml"),
    )
    .unwrap();
    let o = cli.run(&["bounces", "ingest", dir.path().to_str().unwrap()]);
    assert!(!o.ok, "a non-bounce file makes the exit status 1");
    assert!(o.stdout.contains("1 hard bounces"), "{}", o.stdout);
    assert!(
        o.stderr
            .contains("2.eml: not a delivery status notification"),
        "{}",
        o.stderr
    );
    let st = cli.ok(&["campaign", "status", &id]);
    assert!(st.contains("1 bounced"), "{st}");
    let sup = cli.ok(&["suppressions", "list"]);
    assert!(
        sup.contains("fred@contoso.example") && sup.contains("gesperrt@contoso.example"),
        "{sup}"
    );
    cli.ok(&["campaign", "cancel", &id]);
    assert!(cli.ok(&["campaign", "list"]).contains("cancelled"));
}

/// `campaign run` on a terminal (a pseudo-terminal from util-linux `script`) draws the
/// progress bar with rate and ETA, and ends when the campaign is completed.
#[tokio::test]
async fn campaign_run_shows_a_progress_bar_on_a_terminal() {
    let cli = Cli::new().await;
    let offer = cli.trial_offer();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.csv");
    let mut csv = String::from("email\n");
    for i in 0..200 {
        csv.push_str(&format!("k{i}@d{}.example\n", i % 5));
    }
    std::fs::write(&file, csv).unwrap();
    let out = cli.ok(&[
        "campaign",
        "create",
        &offer,
        "--name",
        "tty",
        "--recipients",
        file.to_str().unwrap(),
    ]);
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    let cmd = format!("{} campaign run {id}", env!("CARGO_BIN_EXE_partnerflow"));
    let o = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .envs(cli.env.iter().cloned())
        .env_remove("RUST_LOG")
        .output()
        .expect("util-linux `script` (a pseudo-terminal)");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("/200") && text.contains("ETA"),
        "no progress bar: {text}"
    );
    assert!(
        text.contains(&format!("campaign {id} \"tty\"")) && text.contains(": completed"),
        "{text}"
    );
    assert!(
        text.contains("200 recipients: 0 pending, 0 sending, 200 sent"),
        "{text}"
    );
}
