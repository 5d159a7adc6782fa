//! The CLI of campaigns, bounces and suppressions: `campaign create|add|start|pause|resume|
//! cancel|status|report|list|run`, `bounces ingest|list`, `suppressions list|add`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::json;

use super::output::{CliError, print_json};
use crate::app::AppState;
use crate::campaigns::{self, CampaignError, NewCampaign};
use crate::core::campaign::{CampaignAction, CampaignState};
use crate::core::campaign::{CampaignRow, RecipientCounts};
use crate::core::domain::{OfferId, Span};

const ACTOR: &str = "cli";

#[derive(Subcommand, Debug)]
pub(crate) enum CampaignCmd {
    /// Create a campaign (a draft) sending one offer to many recipients; with --recipients,
    /// import its recipients file too (its header is checked first: if the file cannot be
    /// read, no campaign is created).
    Create {
        /// The Offer ID (must be open).
        offer_id: String,
        /// The campaign's name, shown in lists and reports.
        #[arg(long)]
        name: String,
        /// Email template (default: the offer kind's invitation template).
        #[arg(long)]
        template: Option<String>,
        /// Overall cap for this campaign, messages per minute.
        #[arg(long)]
        max_per_minute: Option<u32>,
        /// Remind those who have not accepted this long after their invitation, e.g. "3d"
        /// (default: campaigns.reminder_after; "0s": no reminder).
        #[arg(long)]
        reminder_after: Option<String>,
        /// The reminder's template (default: invitation_reminder).
        #[arg(long)]
        reminder_template: Option<String>,
        /// Recipients CSV to import at once (see `campaign add`).
        #[arg(long, value_name = "FILE")]
        recipients: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Import recipients from a CSV file (UTF-8): header row, `email` required; `name`,
    /// `company`, `locale` (de|en) and any other columns reach the template. The file is
    /// streamed a line at a time and a row is one line (a quoted value cannot span lines).
    /// Every line is accounted for: each bad one (unterminated quote, not UTF-8, a value or
    /// line too long — email 254, name and company 200, other columns 1000 characters, a line
    /// 16 KiB —, invalid address, header injection, unknown locale, duplicate, wrong number
    /// of fields) is reported as FILE:LINE: reason and skipped; the rest are added; the
    /// summary's added + invalid + duplicates + blank is the file's number of data lines.
    /// Suppressed addresses are counted and not sent. A file that cannot be read at all
    /// (UTF-16, no `email` column) is refused before anything is written. Exits 1 if any row
    /// was bad.
    Add {
        /// The campaign id (`partnerflow campaign list`).
        id: String,
        /// The recipients CSV file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Start sending (workers — `serve` or `worker` — or `campaign run` do the sending).
    Start {
        /// The campaign id (`partnerflow campaign list`).
        id: String,
    },
    /// Pause; in-flight messages finish, nothing else is sent until resumed.
    Pause {
        /// The campaign id (`partnerflow campaign list`).
        id: String,
    },
    /// Resume a paused campaign (operator or automatic pause): it goes on exactly where it
    /// stopped.
    Resume {
        /// The campaign id (`partnerflow campaign list`).
        id: String,
    },
    /// Cancel for good: pending recipients are not sent.
    Cancel {
        /// The campaign id (`partnerflow campaign list`).
        id: String,
    },
    /// Counts (the same as the API's) in two dimensions: delivery — `sent` invitations and
    /// `reminded` reminders count every recipient they went out to, whatever happened later —
    /// and where each recipient is: pending, sending, failed, bounced, suppressed, or the
    /// outcome: awaiting an answer, accepted, expired. Also why it is paused, and the reminders
    /// still scheduled: a running campaign with nothing else to send is "waiting for reminders
    /// until …" (it completes once the last is sent, or its recipients no longer need it).
    Status {
        /// The campaign id (`partnerflow campaign list`).
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Count the ledger itself instead of reading the campaign's tallies (counters kept
        /// where recipients change), and fail if the two disagree: a check, slow on big
        /// campaigns (it reads every recipient).
        #[arg(long)]
        recount: bool,
    },
    /// The per-recipient ledger as CSV: line, email, state, message_id, attempts, sent_at and
    /// reply (the invitation's delivery), reminded_at and reminder_reply (the reminder's),
    /// remind_at (when a scheduled reminder is due), error, phase (`invitation`, or `reminder`
    /// once the reminder is due or sent), soft_bounces. Times are RFC 3339. A cell that a spreadsheet would take for a formula (starting with `=`,
    /// `+`, `-`, `@`, tab or carriage return) is written with a `'` before it.
    Report {
        /// The campaign id (`partnerflow campaign list`).
        id: String,
        /// Write to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// All campaigns.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Start (or resume) a campaign and send it from this process until it is completed,
    /// paused, cancelled or expired — or until nothing is left to send now but reminders that
    /// are not yet due: then it says "waiting for reminders until …" and exits (0); the campaign
    /// stays running, and the workers or another `campaign run` send the reminders when due.
    /// With a progress bar (rate, ETA) on a terminal and a log line every 5 seconds otherwise.
    /// Ctrl-C stops sending (what is in flight is committed); the campaign stays running for
    /// the workers or another `campaign run`.
    Run {
        /// The campaign id (`partnerflow campaign list`).
        id: String,
        /// Keep running while reminders are scheduled, and send them when due: exit only once
        /// the campaign is completed, paused, cancelled or expired.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum BouncesCmd {
    /// Read bounce messages (delivery status notifications, RFC 3464) from a .eml file or
    /// every file of a directory. A bounce is acted on only if it matches a message we sent:
    /// its returned Message-ID is one of ours (a campaign invitation or reminder, or a
    /// lifecycle email) and its failed recipient is that message's recipient. Then a hard
    /// bounce makes the campaign recipient `bounced` and suppresses the address, and a soft
    /// bounce is counted. Bounces that match nothing change nothing: they are counted, and
    /// kept for `bounces list --unmatched`. A DSN naming more than 20 recipients is refused
    /// whole. Files that are not bounces are reported and skipped (exit 1 if there were any).
    Ingest {
        /// A bounce message (.eml file) or a directory of them.
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The bounces received, newest first: what each matched (a campaign recipient or a
    /// lifecycle email), or why it matched nothing we sent (then nothing was changed).
    List {
        /// Only the bounces that matched no message we sent.
        #[arg(long)]
        unmatched: bool,
        /// Show at most this many bounces.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum SuppressionsCmd {
    /// Suppressed addresses (unsubscribed, hard-bounced, added), newest first.
    List {
        /// Show at most this many addresses.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Suppress an address by hand: no campaign mails it again.
    Add {
        /// The address no campaign may mail.
        email: String,
        /// Why, shown in `partnerflow suppressions list`.
        #[arg(long, default_value = "added by the operator")]
        reason: String,
    },
}

fn other(m: impl Into<String>) -> CliError {
    CliError::Other(m.into())
}

impl From<CampaignError> for CliError {
    fn from(e: CampaignError) -> Self {
        match e {
            CampaignError::Offer(o) => CliError::Offer(o),
            CampaignError::Store(s) => CliError::Store(s),
            e => CliError::Other(e.to_string()),
        }
    }
}

/// The counts in two dimensions: delivery (`sent` and `reminded` count every recipient whose
/// invitation or reminder went out, whatever became of them later) and where each recipient is
/// now (the outcome: awaiting an answer, accepted, expired).
pub(crate) fn counts_line(n: &RecipientCounts) -> String {
    format!(
        "{} recipients: {} pending, {} sending, {} sent, {} reminded, {} failed, {} bounced, {} suppressed, {} soft bounces; outcome: {} awaiting an answer, {} accepted, {} expired",
        n.total,
        n.pending,
        n.sending,
        n.sent,
        n.reminded,
        n.failed,
        n.bounced,
        n.suppressed,
        n.soft_bounces,
        n.awaiting,
        n.accepted,
        n.expired,
    )
}

/// The reminders still scheduled, if any: "waiting for reminders until …" when the campaign
/// has nothing else to send.
fn reminders_line(c: &CampaignRow, n: &RecipientCounts) -> Option<String> {
    let (Some(next), Some(last)) = (n.next_reminder_at, n.last_reminder_at) else {
        return None;
    };
    Some(match campaigns::waiting_for_reminders(c, n) {
        Some(until) => format!(
            "waiting for reminders until {until}: {} scheduled, the next at {next}",
            n.reminders_scheduled
        ),
        None => format!(
            "{} reminders scheduled, the next at {next}, the last at {last}",
            n.reminders_scheduled
        ),
    })
}

fn print_campaign(c: &CampaignRow, n: &RecipientCounts) {
    println!(
        "campaign {} \"{}\" for offer {}: {}",
        c.id, c.name, c.offer_id, c.state
    );
    if let Some(r) = &c.pause_reason {
        println!("  paused: {r}");
    }
    println!("  {}", counts_line(n));
    if let Some(r) = reminders_line(c, n) {
        println!("  {r}");
    }
    let mut extras = Vec::new();
    if let Some(m) = c.max_per_minute {
        extras.push(format!("cap {m}/min"));
    }
    if let Some(r) = c.reminder_after {
        extras.push(format!(
            "reminder after {}s ({})",
            r.0 / 1000,
            c.reminder_template
                .as_deref()
                .unwrap_or(campaigns::DEFAULT_REMINDER_TEMPLATE)
        ));
    }
    extras.push(format!("template {}", c.template));
    println!("  {}", extras.join(", "));
}

pub(crate) async fn campaign(cmd: CampaignCmd, rt: Arc<AppState>) -> Result<(), CliError> {
    let rt = &rt;
    match cmd {
        CampaignCmd::Create {
            offer_id,
            name,
            template,
            max_per_minute,
            reminder_after,
            reminder_template,
            recipients,
            json,
        } => {
            let offer = OfferId::parse(&offer_id).map_err(other)?;
            // The recipients file is opened and its header checked first: a file that cannot
            // be read (missing, UTF-16, no `email` column) leaves no empty draft behind.
            let file = recipients
                .as_deref()
                .map(|p| open_recipients(p).map(|f| (p, f)))
                .transpose()?;
            let reminder_after = reminder_after
                .map(|r| {
                    r.parse::<Span>()
                        .map_err(|e| other(format!("--reminder-after: {e}")))
                })
                .transpose()?;
            let c = campaigns::create(
                rt,
                &offer,
                NewCampaign {
                    name,
                    template,
                    max_per_minute,
                    reminder_after,
                    reminder_template,
                },
                ACTOR,
            )
            .await?;
            if json && file.is_none() {
                print_json(&json!(c));
            } else {
                println!("campaign {} created (draft) for offer {}", c.id, c.offer_id);
            }
            if let Some((path, f)) = file {
                add(rt, &c.id, path, f, json).await?;
            }
        }
        CampaignCmd::Add { id, file, json } => {
            let f = open_recipients(&file)?;
            add(rt, &id, &file, f, json).await?
        }
        CampaignCmd::Start { id } => {
            let c = campaigns::start(rt, &id).await?;
            println!("campaign {} {}", c.id, c.state);
        }
        CampaignCmd::Resume { id } => {
            let c = campaigns::resume(rt, &id).await?;
            println!("campaign {} {}", c.id, c.state);
        }
        CampaignCmd::Pause { id } => {
            let c = campaigns::pause(rt, &id).await?;
            println!("campaign {} {}", c.id, c.state);
        }
        CampaignCmd::Cancel { id } => {
            let c = campaigns::cancel(rt, &id).await?;
            println!("campaign {} {}", c.id, c.state);
        }
        CampaignCmd::Status { id, json, recount } => {
            let (c, n) = campaigns::status(rt, &id).await?;
            let n = if recount {
                let counted = campaigns::recount(rt, &id).await?;
                if counted != n {
                    return Err(other(format!(
                        "campaign {id}: its tallies disagree with its ledger\n  tallies: {n:?}\n  ledger:  {counted:?}"
                    )));
                }
                eprintln!("campaign {id}: the tallies agree with the ledger");
                counted
            } else {
                n
            };
            if json {
                print_json(&json!({
                    "campaign": c,
                    "counts": n,
                    "waiting_for_reminders_until": campaigns::waiting_for_reminders(&c, &n),
                }));
            } else {
                print_campaign(&c, &n);
            }
        }
        CampaignCmd::Report { id, out } => {
            let n = match out {
                Some(p) => {
                    let f = std::fs::File::create(&p)
                        .map_err(|e| other(format!("{}: {e}", p.display())))?;
                    let mut w = std::io::BufWriter::new(f);
                    let n = campaigns::report_csv(rt, &id, &mut w).await?;
                    eprintln!("{n} ledger rows written to {}", p.display());
                    n
                }
                None => campaigns::report_csv(rt, &id, &mut std::io::stdout().lock()).await?,
            };
            let _ = n;
        }
        CampaignCmd::List { json } => {
            let all = campaigns::list(rt).await?;
            if json {
                print_json(&json!(all));
            } else {
                println!(
                    "{:<20} {:<16} {:<10} {:<25} name",
                    "id", "offer", "state", "created"
                );
                for c in all {
                    println!(
                        "{:<20} {:<16} {:<10} {:<25} {}",
                        c.id,
                        c.offer_id,
                        c.state,
                        c.created_at.to_rfc3339(),
                        c.name
                    );
                }
            }
        }
        CampaignCmd::Run { id, wait } => run(rt.clone(), &id, wait).await?,
    }
    Ok(())
}

type Recipients = campaigns::RecipientsFile<std::fs::File>;

/// Opens a recipients file and checks its header.
fn open_recipients(file: &Path) -> Result<Recipients, CliError> {
    let shown = file.display();
    let f = std::fs::File::open(file).map_err(|e| other(format!("{shown}: {e}")))?;
    campaigns::RecipientsFile::open(f).map_err(|e| match e {
        CampaignError::Invalid(m) => other(format!("{shown}: {m}")),
        e => e.into(),
    })
}

async fn add(
    rt: &AppState,
    id: &str,
    file: &Path,
    rows: Recipients,
    json: bool,
) -> Result<(), CliError> {
    let mut bad_rows = 0u64;
    let shown = file.display().to_string();
    let report = campaigns::import(rt, id, rows, |b| {
        bad_rows += 1;
        eprintln!("{shown}:{}: {}; row skipped", b.line, b.reason);
    })
    .await
    .map_err(|e| match e {
        CampaignError::Invalid(m) => other(format!("{shown}: {m}")),
        e => e.into(),
    })?;
    if json {
        print_json(&json!(report));
    } else {
        println!(
            "{}: {} lines: {} added, {} invalid, {} duplicates, {} blank; {} suppressed (added, not sent)",
            shown,
            report.lines,
            report.added,
            report.invalid,
            report.duplicates,
            report.blank,
            report.suppressed
        );
    }
    if bad_rows > 0 {
        return Err(other(format!(
            "{bad_rows} bad rows in {shown} (reported above; the others were added)"
        )));
    }
    Ok(())
}

/// How `campaign run` ended.
enum RunEnd {
    /// Ctrl-C.
    Interrupted,
    /// The campaign is no longer running.
    Stopped(CampaignRow, RecipientCounts),
    /// Nothing to send now, reminders scheduled for later (without `--wait`).
    Waiting(CampaignRow, RecipientCounts),
}

/// Sends one campaign from this process, showing progress, until it stops running — or,
/// unless `wait`, until nothing is left to send before the next scheduled reminder.
async fn run(rt: Arc<AppState>, id: &str, wait: bool) -> Result<(), CliError> {
    let c = campaigns::get(&rt, id).await?;
    if c.state.apply(CampaignAction::Start).is_ok() {
        campaigns::start(&rt, id).await?;
    } else if c.state != CampaignState::Running {
        return Err(other(format!(
            "campaign {id} is {}: nothing to run",
            c.state
        )));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stats = Arc::new(campaigns::SenderStats::default());
    let sender = tokio::spawn(campaigns::run_sender(rt.clone(), stop_rx, stats));
    let tty = std::io::stderr().is_terminal();
    let (_, first) = campaigns::status(&rt, id).await?;
    let done = |n: &RecipientCounts| (n.total - n.pending - n.sending).max(0) as u64;
    let bar = tty.then(|| {
        let b = indicatif::ProgressBar::new(first.total.max(0) as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} {per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b.set_position(done(&first));
        b
    });
    let started = Instant::now();
    let start_done = done(&first);
    let mut last_log = Instant::now();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let end = loop {
        tokio::select! {
            _ = &mut ctrl_c => break RunEnd::Interrupted,
            _ = tokio::time::sleep(Duration::from_millis(if tty { 200 } else { 1000 })) => {}
        }
        let (c, n) = campaigns::status(&rt, id).await?;
        let d = done(&n);
        // Without --wait, a run ends when only reminders that are not due yet are left (a
        // due one is sent first).
        let only_later_reminders = !wait
            && campaigns::waiting_for_reminders(&c, &n).is_some()
            && n.next_reminder_at.is_some_and(|t| t > rt.clock.now());
        if let Some(b) = &bar {
            b.set_length(n.total.max(0) as u64);
            b.set_position(d);
            b.set_message(format!(
                "sent {} reminded {} failed {} bounced {} suppressed {}",
                n.sent, n.reminded, n.failed, n.bounced, n.suppressed
            ));
        } else if last_log.elapsed() >= Duration::from_secs(5)
            || c.state != CampaignState::Running
            || only_later_reminders
        {
            last_log = Instant::now();
            let secs = started.elapsed().as_secs_f64().max(0.001);
            let rate = (d - start_done.min(d)) as f64 / secs;
            let left = (n.pending + n.sending).max(0) as f64;
            let eta = if rate > 0.0 {
                format!("{:.0}s", left / rate)
            } else {
                "-".into()
            };
            eprintln!(
                "{id}: {d}/{} done ({rate:.0}/s, ETA {eta}); {}",
                n.total,
                counts_line(&n)
            );
        }
        if c.state != CampaignState::Running {
            break RunEnd::Stopped(c, n);
        }
        if only_later_reminders {
            break RunEnd::Waiting(c, n);
        }
    };
    let _ = stop_tx.send(true);
    let _ = sender.await;
    if let Some(b) = &bar {
        b.finish();
    }
    match end {
        RunEnd::Interrupted => {
            let (c, n) = campaigns::status(&rt, id).await?;
            println!("stopped (Ctrl-C); campaign {} stays {}", c.id, c.state);
            println!("  {}", counts_line(&n));
        }
        RunEnd::Waiting(c, n) => {
            print_campaign(&c, &n);
            println!(
                "nothing left to send before {}: the campaign stays running and the workers (`serve`, `worker`) send the reminders when due, or `campaign run {id}` then (`--wait` keeps sending until they are all out)",
                n.next_reminder_at
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            );
        }
        RunEnd::Stopped(c, n) => {
            print_campaign(&c, &n);
            if c.state == CampaignState::Paused {
                return Err(other(format!(
                    "campaign {id} paused: {}",
                    c.pause_reason.unwrap_or_default()
                )));
            }
        }
    }
    Ok(())
}

pub(crate) async fn bounces(cmd: BouncesCmd, rt: &AppState) -> Result<(), CliError> {
    let (path, json) = match cmd {
        BouncesCmd::Ingest { path, json } => (path, json),
        BouncesCmd::List {
            unmatched,
            limit,
            json,
        } => return list_bounces(rt, unmatched, limit, json).await,
    };
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&path)
            .map_err(|e| other(format!("{}: {e}", path.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        v.sort();
        v
    } else {
        vec![path.clone()]
    };
    let (mut hard, mut soft, mut unmatched, mut bad) = (0u64, 0u64, 0u64, 0u64);
    let mut all = Vec::new();
    for f in &files {
        let raw = std::fs::read(f).map_err(|e| other(format!("{}: {e}", f.display())))?;
        match campaigns::ingest_bounce(rt, &raw, "bounce").await {
            Ok(results) => {
                for r in &results {
                    match (&r.unmatched, r.kind) {
                        (Some(_), _) => unmatched += 1,
                        (None, crate::core::bounces::BounceKind::Hard) => hard += 1,
                        (None, crate::core::bounces::BounceKind::Soft) => soft += 1,
                    }
                    if !json {
                        let what = match (&r.matched, &r.matched_email, &r.unmatched) {
                            (Some((c, s)), _, _) => format!("{c} line {s}"),
                            (_, Some(m), _) => format!("email {m}"),
                            (_, _, reason) => format!(
                                "unmatched ({}), not acted on",
                                reason.as_deref().unwrap_or("no message of ours")
                            ),
                        };
                        println!(
                            "{}: {:?} {} {} {what}{}",
                            f.display(),
                            r.kind,
                            r.status,
                            r.recipient.as_deref().unwrap_or("-"),
                            if r.suppressed { ", suppressed" } else { "" }
                        );
                    }
                }
                all.push(json!({ "file": f.display().to_string(), "bounces": results }));
            }
            Err(CampaignError::Invalid(m)) => {
                bad += 1;
                eprintln!("{}: {m}; skipped", f.display());
            }
            Err(e) => return Err(e.into()),
        }
    }
    if json {
        print_json(&json!(all));
    }
    println!(
        "{} files: {hard} hard bounces, {soft} soft, {unmatched} matching no message we sent (not acted on; see `bounces list --unmatched`), {bad} not bounces",
        files.len()
    );
    if bad > 0 {
        return Err(other(format!(
            "{bad} files were not bounces (reported above)"
        )));
    }
    Ok(())
}

async fn list_bounces(
    rt: &AppState,
    unmatched: bool,
    limit: i64,
    json: bool,
) -> Result<(), CliError> {
    let (rows, total) = campaigns::list_bounces(rt, unmatched, limit).await?;
    if json {
        print_json(&json!(rows));
        return Ok(());
    }
    for b in &rows {
        println!(
            "{}  {} {} {} {}  {}{}",
            b.received_at.to_rfc3339(),
            b.kind,
            b.status,
            b.recipient
                .as_deref()
                .map(printable)
                .unwrap_or_else(|| "-".into()),
            b.message_id
                .as_deref()
                .map(printable)
                .unwrap_or_else(|| "-".into()),
            match (&b.matched, &b.reason) {
                (Some(m), _) => m.clone(),
                (None, r) => format!("unmatched: {}", r.as_deref().unwrap_or("-")),
            },
            if b.suppressed { ", suppressed" } else { "" }
        );
    }
    println!("{total} bounces matched no message we sent (none of them was acted on)");
    Ok(())
}

/// An outside value for a terminal line: control characters escaped, at most 100 characters.
fn printable(s: &str) -> String {
    let mut out: String = s.chars().take(100).flat_map(char::escape_debug).collect();
    if s.chars().count() > 100 {
        out.push('…');
    }
    out
}

pub(crate) async fn suppressions(cmd: SuppressionsCmd, rt: &AppState) -> Result<(), CliError> {
    match cmd {
        SuppressionsCmd::List { limit, json } => {
            let rows = campaigns::suppressions(rt, limit).await?;
            if json {
                print_json(&json!(rows));
            } else {
                for s in rows {
                    println!(
                        "{}  {}  {}  {}",
                        s.email,
                        s.at.to_rfc3339(),
                        s.source,
                        s.reason
                    );
                }
            }
        }
        SuppressionsCmd::Add { email, reason } => {
            let e = crate::core::domain::EmailAddress::parse(&email)
                .map_err(|m| other(format!("email: {m}")))?;
            let key = e.as_str().to_lowercase();
            let (new, n) = campaigns::suppress(rt, &e, &reason).await?;
            println!(
                "{key} {}; {n} pending recipients suppressed",
                if new {
                    "suppressed"
                } else {
                    "was already suppressed"
                }
            );
        }
    }
    Ok(())
}

/// Campaigns, bounces and suppressions.
#[derive(Subcommand, Debug)]
pub(crate) enum CampaignsCommand {
    /// Invitation campaigns: one offer to a recipients file, with a per-recipient ledger.
    Campaign {
        #[command(subcommand)]
        command: CampaignCmd,
    },
    /// Bounce messages (delivery status notifications).
    Bounces {
        #[command(subcommand)]
        command: BouncesCmd,
    },
    /// Addresses no campaign mails (unsubscribed, hard-bounced, added by hand).
    Suppressions {
        #[command(subcommand)]
        command: SuppressionsCmd,
    },
}

pub(crate) async fn dispatch(cmd: CampaignsCommand, rt: Arc<AppState>) -> Result<(), CliError> {
    match cmd {
        CampaignsCommand::Campaign { command } => campaign(command, rt).await,
        CampaignsCommand::Bounces { command } => bounces(command, &rt).await,
        CampaignsCommand::Suppressions { command } => suppressions(command, &rt).await,
    }
}
