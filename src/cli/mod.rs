//! The command line (clap). Read commands take `--json`.

pub mod bench;
mod campaigns;
mod offers;
mod output;
mod users;

pub(crate) use output::CliError;
use output::{or_dash, print_history, print_json, read_json_file};

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::app;
use crate::app::AppState;
use crate::core::config::{CatchUp, LogFormat, Settings};
use crate::core::domain::{InstanceId, Locale, Timestamp};

#[derive(Parser, Debug)]
#[command(
    name = "partnerflow",
    version,
    about = "Automates a cloud partner's invitations: offers, lifecycles, emails, schedules.",
    long_about = "Automates a cloud partner's invitations: offers, lifecycles, emails, schedules.\n\nConfiguration: config/default.toml documents every key; --config FILE layers on top; environment variables PARTNERFLOW__SECTION__KEY override both."
)]
pub struct Cli {
    /// A TOML file layered over the built-in defaults (config/default.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// More log lines on standard error: -v info, -vv debug, -vvv trace.
    ///
    /// Commands log only warnings and errors by default; `serve` and `worker` log at
    /// `log.level` (info). RUST_LOG overrides both.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run the HTTP server, the workers and the schedules.
    Serve {
        /// Web only: no workers, no schedules (for nodes behind a load balancer).
        #[arg(long)]
        no_workers: bool,
    },
    /// Run workers and schedules only (no HTTP).
    ///
    /// Any number of worker processes, on any hosts, may share one PostgreSQL database: jobs
    /// are claimed with leases (a killed node's jobs are taken over when `jobs.lease` runs
    /// out), each schedule tick fires once across all of them, and idle workers are woken by
    /// LISTEN/NOTIFY. Each start has its own node identity (`worker-HOST-PID-random`), the
    /// lease owner in the job table and a field of every log line. SIGTERM or Ctrl-C: finish
    /// the jobs in flight, then exit.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Check configuration, workflows and templates; exits non-zero with file:line on error.
    Check,
    /// Workflow definitions.
    Workflows {
        #[command(subcommand)]
        command: WorkflowsCmd,
    },
    /// Email templates.
    Templates {
        #[command(subcommand)]
        command: TemplatesCmd,
    },
    /// Workflow instances (lifecycles).
    Instances {
        #[command(subcommand)]
        command: InstancesCmd,
    },
    /// The job store.
    Jobs {
        #[command(subcommand)]
        command: JobsCmd,
    },
    /// Cron schedules.
    Schedules {
        #[command(subcommand)]
        command: SchedulesCmd,
    },
    #[command(flatten)]
    Offers(offers::OffersCommand),
    #[command(flatten)]
    Campaigns(campaigns::CampaignsCommand),
    /// The partner portal's users: create (prints a sign-in link), list, deactivate.
    Users {
        #[command(subcommand)]
        command: users::UsersCmd,
    },
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        command: BenchCmd,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum WorkflowsCmd {
    /// List the workflows with their states.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Draw a lifecycle as a Mermaid state diagram or a Graphviz DOT graph.
    Graph {
        /// The workflow, e.g. trial_invitation (`partnerflow workflows list`).
        name: String,
        /// mermaid (a state diagram) or dot (Graphviz).
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum GraphFormat {
    Mermaid,
    Dot,
}

#[derive(Subcommand, Debug)]
pub(crate) enum TemplatesCmd {
    /// Render a template; sample values in the template's language (from --workflow, or the
    /// workflow that sends the template) fill every gap that --data leaves.
    Render {
        /// The template, e.g. trial_invitation (email-templates/<locale>/<name>.*.hbs).
        name: String,
        /// de or en: which language's template, and the language of the sample values.
        #[arg(long, default_value = "en")]
        locale: String,
        /// JSON file: (part of) the template context ({"partner": …, "data": …}) or, with
        /// --workflow, (part of) the instance data; sample values fill the rest.
        #[arg(long, value_name = "FILE")]
        data: Option<PathBuf>,
        /// Build the context as this workflow would (default: the first workflow that sends
        /// the template).
        #[arg(long)]
        workflow: Option<String>,
        /// Which part to print.
        #[arg(long, value_enum, default_value_t = Part::All)]
        part: Part,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
pub(crate) enum Part {
    All,
    Subject,
    Text,
    Html,
}

#[derive(Subcommand, Debug)]
pub(crate) enum InstancesCmd {
    /// Start a lifecycle; optionally send a first event (e.g. `--event send`).
    Start {
        /// The workflow, e.g. trial_invitation (`partnerflow workflows list`).
        workflow: String,
        /// JSON file with the instance data.
        #[arg(long, value_name = "FILE")]
        data: PathBuf,
        /// de or en: the language of its emails (default: app.default_locale).
        #[arg(long)]
        locale: Option<String>,
        /// An event to send right after the start, e.g. send.
        #[arg(long)]
        event: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show an instance: state, data, history, emails, timers.
    Show {
        /// The instance id (in_…).
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Send an event to an instance.
    Event {
        /// The instance id (in_…).
        id: String,
        /// The event, one of the workflow's events (e.g. send, accept).
        event: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move a scheduled timer of an instance to another time (RFC 3339).
    RescheduleTimer {
        /// The instance id (in_…).
        id: String,
        /// The timer's name, e.g. expiry or reminder.
        timer: String,
        /// The new due time, RFC 3339 (e.g. 2026-12-01T09:00:00Z).
        at: String,
    },
    /// Cancel a scheduled timer of an instance.
    CancelTimer {
        /// The instance id (in_…).
        id: String,
        /// The timer's name, e.g. expiry or reminder.
        timer: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum JobsCmd {
    /// List jobs, e.g. `--state failed`.
    List {
        /// Only jobs in this state: scheduled, running, done, failed or cancelled.
        #[arg(long)]
        state: Option<String>,
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Put a failed job back to work now.
    Retry {
        /// The job id (`partnerflow jobs list --state failed`).
        id: i64,
    },
    /// Cancel a waiting or failed job: it never runs (its email, if any, is marked cancelled).
    Cancel {
        /// The job id (`partnerflow jobs list --state scheduled`).
        id: i64,
    },
    /// A failed (or waiting) offer invitation or reminder sent to a corrected address, now
    /// (never an email whose link is its recipient's own: a sign-in or confirmation link).
    Readdress {
        /// The job id (`partnerflow jobs list --state failed`).
        id: i64,
        /// The address to send it to instead.
        #[arg(long)]
        to: String,
    },
    /// Run every due job once in this process, then exit.
    RunDue,
}

#[derive(Subcommand, Debug)]
pub(crate) enum SchedulesCmd {
    /// The schedules, their last tick and next fire times.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// How many upcoming fire times to show.
        #[arg(long, default_value_t = 3)]
        next: usize,
    },
    /// Run a scheduled task now, in this process (location_sync or reconcile); its tick
    /// schedule is not touched.
    Run {
        /// location_sync or reconcile.
        name: String,
    },
    /// Pause a schedule on every node sharing the database: from the pause on, no node fires
    /// or advances it (checked in each tick's transaction). Recorded in the audit log.
    Pause {
        /// location_sync or reconcile.
        name: String,
    },
    /// Resume a paused schedule. The ticks it missed while paused are handled by its
    /// `catch_up` policy, as after a downtime (`once`: one run for the latest; `skip`: none).
    Resume {
        /// location_sync or reconcile.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum BenchCmd {
    /// The portal's pages on a SQLite database seeded with --offers offers and --ledger email
    /// ledger rows (and acceptances, relationships, campaigns in proportion), requested
    /// --requests times each through the real router by a signed-in administrator; prints
    /// p50/p99/max per page and a verdict against 100 ms.
    Portal {
        /// Offers to seed (a third of each kind, over 20 locations, spread over a year).
        #[arg(long, default_value_t = 100_000)]
        offers: i64,
        /// Email ledger rows to seed (invitations, reminders, acceptance emails, notices).
        #[arg(long, default_value_t = 1_000_000)]
        ledger: i64,
        /// Recipients of the first running campaign (the others have 2,000 each).
        #[arg(long, default_value_t = 1_000_000)]
        campaign_recipients: i64,
        /// Requests per page (one at a time).
        #[arg(long, default_value_t = 50)]
        requests: usize,
        /// Work folder (its SQLite database is kept there); a temporary one by default.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// N generated recipients through the whole campaign path (streamed import, ledger,
    /// rendering, SMTP delivery, batched outcomes; no rate limit), to --smtp HOST:PORT or to a
    /// sink of its own on loopback. Prints emails/s, p50/p99 claim → SMTP acceptance, peak RSS.
    Campaign {
        /// Generated recipients to send to.
        #[arg(long, default_value_t = 100_000)]
        recipients: usize,
        /// An SMTP server to deliver to (plain, no TLS); default: a local sink.
        #[arg(long, value_name = "HOST:PORT")]
        smtp: Option<String>,
        /// SMTP connections.
        #[arg(long, default_value_t = 32)]
        pool: u32,
        /// Messages in flight.
        #[arg(long, default_value_t = 512)]
        in_flight: u32,
        /// sqlite (a temporary file) or postgres (a scratch database on --postgres).
        #[arg(long, value_enum, default_value_t = crate::cli::bench::BenchStore::Sqlite)]
        store: crate::cli::bench::BenchStore,
        /// The PostgreSQL server for `--store postgres` (a scratch database is made on it and
        /// dropped after).
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        postgres: String,
        /// Scrape the metrics (what `GET /metrics` answers: the counters and the gauges read
        /// from the database) every this many seconds while sending; 0: never. Prints the
        /// scrapes' count and mean time, to compare the rate with and without.
        #[arg(long, default_value_t = 0)]
        scrape_every: u64,
        /// Compare with a peer in the same run: `smtp-source` runs postfix's smtp-source to
        /// postfix's smtp-sink (the same message size, sessions and count), then partnerflow
        /// to the same sink, and prints both rates and the ratio. Installs nothing.
        #[arg(long, value_enum)]
        peer: Option<crate::cli::bench::Peer>,
    },
    /// Customers accepting one offer: the offer page (code lookup, HMAC check, HTML) and the
    /// acceptance commit (two lifecycles, rows and three email jobs in one transaction), as
    /// the accept page runs them; prints pages/s and acceptances/s.
    Offers {
        /// Customers accepting the offer.
        #[arg(long, default_value_t = 5_000)]
        acceptances: usize,
        /// Customers accepting at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// sqlite (a temporary file) or postgres (a scratch database on --postgres).
        #[arg(long, value_enum, default_value_t = crate::cli::bench::BenchStore::Sqlite)]
        store: crate::cli::bench::BenchStore,
        /// The PostgreSQL server for `--store postgres` (a scratch database is made on it and dropped after).
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        postgres: String,
    },
    /// Create N trial-invitation lifecycles and drive them to a final state through the real
    /// store, job runtime and file outbox; prints instances/s, emails/s and peak RSS.
    Lifecycle {
        /// Trial-invitation lifecycles to run.
        #[arg(long, default_value_t = 10_000)]
        instances: usize,
        /// Work folder (SQLite database and outbox); a temporary one by default.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// sqlite (a temporary file) or postgres (a scratch database on --postgres).
        #[arg(long, value_enum, default_value_t = crate::cli::bench::BenchStore::Sqlite)]
        store: crate::cli::bench::BenchStore,
        /// The PostgreSQL server for `--store postgres` (a scratch database is made on it and
        /// dropped after).
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        postgres: String,
    },
    /// A no-op burn-down: insert N jobs in batches, then drain them with this process's
    /// workers; jobs/s counted at durable completion. With `--peer`, the same workload on
    /// Graphile Worker (its defaults, then its batching options) on the same PostgreSQL
    /// server, and the ratio. Scratch databases are made on the server and dropped after.
    Queue {
        /// No-op jobs to insert, then drain.
        #[arg(long, default_value_t = 100_000)]
        jobs: usize,
        /// sqlite (a temporary file) or postgres (a scratch database on --postgres).
        #[arg(long, value_enum, default_value_t = crate::cli::bench::BenchStore::Sqlite)]
        store: crate::cli::bench::BenchStore,
        /// The PostgreSQL server (any database on it; the user must be allowed to create
        /// databases).
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        postgres: String,
        /// Jobs per insert transaction.
        #[arg(long, default_value_t = 1_000)]
        insert_batch: usize,
        /// Jobs per claim.
        #[arg(long, default_value_t = 500)]
        claim_batch: usize,
        /// Jobs run at once (and so the most whose outcome is not yet recorded).
        #[arg(long, default_value_t = 500)]
        concurrency: usize,
        /// Folder of the Graphile Worker comparison (needs node and npm; PostgreSQL only).
        #[arg(long)]
        peer: Option<PathBuf>,
    },
}

/// The log filter when RUST_LOG is not set: `serve` and `worker` log at `log.level`; other
/// commands only warnings and errors, so their output is theirs alone, unless `-v`.
fn default_log_level(settings: &Settings, server: bool, verbose: u8) -> &str {
    match verbose {
        0 if server => &settings.log.level,
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

fn init_logging(settings: &Settings, server: bool, verbose: u8) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_log_level(settings, server, verbose)));
    // Colours only on a terminal: a log file or a pipe gets plain text.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match settings.log.format {
        LogFormat::Json => b.json().try_init(),
        LogFormat::Text => b.try_init(),
    };
}

pub fn main() -> ExitCode {
    // Before anything is created: the database, the outbox and reports hold personal data.
    crate::core::files::restrict_umask();
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref(), &Settings::process_env()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let server = matches!(cli.command, Command::Serve { .. } | Command::Worker);
    init_logging(&settings, server, cli.verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Puts `over` onto `base`: objects key by key (recursively), anything else replaced.
fn merge_json(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge_json(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn run(cmd: Command, settings: Settings) -> Result<(), CliError> {
    match cmd {
        Command::Check => {
            crate::core::schedule::from_settings(&settings).map_err(CliError::Other)?;
            let (templates, defs) = app::load_definitions(&settings)?;
            let catalog = crate::core::catalog::Catalog::load(&settings.app.catalog)
                .map_err(|e| CliError::Other(format!("catalog:\n{e}")))?;
            if !settings.links.keys.is_empty() {
                crate::core::links::KeyRing::parse(
                    settings.links.keys.expose(),
                    &settings.links.signing_key,
                )
                .map_err(|e| CliError::Other(format!("links.keys: {e}")))?;
            }
            println!(
                "ok: configuration, {} workflows, {} templates × {} locales, {} catalog products",
                defs.len(),
                templates.names().len(),
                Locale::ALL.len(),
                catalog.all().count()
            );
            Ok(())
        }
        Command::Workflows { command } => {
            let (_, defs) = app::load_definitions(&settings)?;
            match command {
                WorkflowsCmd::List { json } => {
                    if json {
                        print_json(&json!(defs.values().map(|d| json!({"name": d.name, "initial": d.initial, "states": d.states, "final": d.finals, "events": d.events})).collect::<Vec<_>>()));
                    } else {
                        for d in defs.values() {
                            println!("{:<22} {} → {}", d.name, d.initial, d.states.join(", "));
                        }
                    }
                }
                WorkflowsCmd::Graph { name, format } => {
                    let d = defs.get(&name).ok_or_else(|| {
                        CliError::Other(format!(
                            "unknown workflow `{name}` (have: {})",
                            defs.keys().cloned().collect::<Vec<_>>().join(", ")
                        ))
                    })?;
                    match format {
                        GraphFormat::Mermaid => print!("{}", crate::core::workflow::to_mermaid(d)),
                        GraphFormat::Dot => print!("{}", crate::core::workflow::to_dot(d)),
                    }
                }
            }
            Ok(())
        }
        Command::Templates {
            command:
                TemplatesCmd::Render {
                    name,
                    locale,
                    data,
                    workflow,
                    part,
                },
        } => {
            let (templates, defs) = app::load_definitions(&settings)?;
            let locale = Locale::parse(&locale)
                .ok_or_else(|| CliError::Other(format!("--locale `{locale}`: use de or en")))?;
            let file = match &data {
                Some(p) => Some(read_json_file(p)?),
                None => None,
            };
            // Sample values, in the template's language, from --workflow or else the first
            // workflow that sends this template, fill whatever the file does not give.
            let def = match &workflow {
                Some(w) => Some(
                    defs.get(w)
                        .ok_or_else(|| CliError::Other(format!("unknown workflow `{w}`")))?,
                ),
                None => defs
                    .values()
                    .find(|d| d.templates().iter().any(|(t, _)| *t == name)),
            };
            let ctx = match def {
                Some(def) => {
                    let role = def
                        .templates()
                        .iter()
                        .find(|(t, _)| *t == name)
                        .map_or("customer", |(_, r)| *r)
                        .to_string();
                    let mut ctx =
                        crate::core::workflow::sample_context_in(def, &role, true, locale);
                    ctx["partner"] = json!(settings.partner);
                    match (file, &data) {
                        (None, _) => {}
                        (Some(Value::Object(d)), _) if workflow.is_some() => {
                            let mut full = def.sample_data_in(true, locale);
                            full.extend(d);
                            let data = def.validate_data(&full).map_err(CliError::Other)?;
                            ctx["data"] = Value::Object(data);
                        }
                        (Some(v @ Value::Object(_)), _) => merge_json(&mut ctx, v),
                        (Some(_), p) => {
                            return Err(CliError::Other(format!(
                                "{}: expected a JSON object",
                                p.as_ref()
                                    .map(|p| p.display().to_string())
                                    .unwrap_or_default()
                            )));
                        }
                    }
                    ctx
                }
                None => file.ok_or_else(|| {
                    CliError::Other(format!(
                        "no workflow sends `{name}`: give --data FILE or --workflow NAME"
                    ))
                })?,
            };
            let r = templates
                .render(&name, locale, &ctx)
                .map_err(|e| CliError::Other(e.to_string()))?;
            match part {
                Part::Subject => println!("{}", r.subject),
                Part::Text => println!("{}", r.text),
                Part::Html => println!("{}", r.html),
                Part::All => println!(
                    "Subject: {}\n\n--- text ---\n{}\n\n--- html ---\n{}",
                    r.subject, r.text, r.html
                ),
            }
            Ok(())
        }
        Command::Bench {
            command:
                BenchCmd::Campaign {
                    recipients,
                    smtp,
                    pool,
                    in_flight,
                    store,
                    postgres,
                    scrape_every,
                    peer,
                },
        } => crate::cli::bench::campaign(
            settings,
            crate::cli::bench::CampaignBench {
                n: recipients,
                smtp,
                pool,
                in_flight,
                scrape_every,
                peer,
            },
            store,
            &postgres,
        )
        .await
        .map_err(CliError::Other),
        Command::Bench {
            command:
                BenchCmd::Portal {
                    offers,
                    ledger,
                    campaign_recipients,
                    requests,
                    dir,
                },
        } => {
            crate::cli::bench::portal(settings, offers, ledger, campaign_recipients, requests, dir)
                .await
                .map_err(CliError::Other)
        }
        Command::Bench {
            command:
                BenchCmd::Offers {
                    acceptances,
                    concurrency,
                    store,
                    postgres,
                },
        } => crate::cli::bench::offers(settings, acceptances, concurrency, store, &postgres)
            .await
            .map_err(CliError::Other),
        Command::Bench {
            command:
                BenchCmd::Lifecycle {
                    instances,
                    dir,
                    store,
                    postgres,
                },
        } => crate::cli::bench::lifecycle(settings, instances, dir, store, &postgres)
            .await
            .map_err(CliError::Other),
        Command::Bench {
            command:
                BenchCmd::Queue {
                    jobs,
                    store,
                    postgres,
                    insert_batch,
                    claim_batch,
                    concurrency,
                    peer,
                },
        } => {
            if peer.is_some() && store != crate::cli::bench::BenchStore::Postgres {
                return Err(CliError::Other(
                    "--peer compares on PostgreSQL: add --store postgres".into(),
                ));
            }
            let b = crate::cli::bench::QueueBench {
                jobs,
                store,
                postgres,
                insert_batch: insert_batch.max(1),
                claim_batch: claim_batch.max(1),
                concurrency: concurrency.max(1),
                peer,
            };
            crate::cli::bench::queue(settings, b)
                .await
                .map_err(CliError::Other)
        }
        other => {
            let role = match &other {
                Command::Serve { .. } => "serve",
                Command::Worker => "worker",
                _ => "cli",
            };
            let rt = app::build(settings, None, role).await?;
            run_with_runtime(other, rt).await
        }
    }
}

/// The listener of `http.metrics_bind` (None when empty), logged; a bind error is a start-up
/// error naming the key.
async fn metrics_listener(rt: &AppState) -> Result<Option<tokio::net::TcpListener>, CliError> {
    let listener = crate::server::bind_metrics(&rt.settings)
        .await
        .map_err(|e| {
            let addr = rt
                .settings
                .http
                .metrics_bind
                .map(|a| a.to_string())
                .unwrap_or_default();
            CliError::Other(format!("http.metrics_bind {addr}: {e}"))
        })?;
    if let Some(l) = &listener {
        let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(metrics_bind = %addr, "serving /metrics without a token on metrics_bind");
    }
    Ok(listener)
}

async fn run_with_runtime(cmd: Command, rt: Arc<AppState>) -> Result<(), CliError> {
    match cmd {
        Command::Migrate => {
            rt.store.migrate().await?;
            println!("migrations applied");
        }
        Command::Serve { no_workers } => {
            let listener = tokio::net::TcpListener::bind(rt.settings.http.bind)
                .await
                .map_err(|e| {
                    CliError::Other(format!("http.bind {}: {e}", rt.settings.http.bind))
                })?;
            let metrics = metrics_listener(&rt).await?;
            tracing::info!(bind = %rt.settings.http.bind, node = %rt.node, workers = !no_workers, "partnerflow serving");
            crate::server::serve(
                rt.clone(),
                listener,
                crate::server::ServeOptions {
                    workers: !no_workers,
                    metrics,
                },
                shutdown_signal(),
            )
            .await;
        }
        Command::Worker => {
            // A worker's counters (jobs, emails) are its own: it serves them when asked to.
            let metrics = metrics_listener(&rt).await?.map(|l| {
                tokio::spawn(crate::server::serve_metrics(
                    rt.clone(),
                    l,
                    std::future::pending(),
                ))
            });
            let result = crate::jobs::run_workers(rt.clone(), shutdown_signal()).await;
            if let Some(m) = metrics {
                m.abort();
            }
            result.map_err(|e| CliError::Other(e.to_string()))?;
        }
        Command::Instances { command } => instances(command, &rt).await?,
        Command::Schedules {
            command: SchedulesCmd::Run { name },
        } => {
            let out = match name.as_str() {
                "location_sync" => crate::offers::tasks::location_sync(&rt).await,
                "reconcile" => crate::offers::tasks::reconcile(&rt).await,
                other => {
                    return Err(CliError::Other(format!(
                        "no schedule `{other}` (have: location_sync, reconcile)"
                    )));
                }
            }
            .map_err(CliError::Other)?;
            println!("{name}: {out}");
        }
        Command::Campaigns(cmd) => campaigns::dispatch(cmd, rt.clone()).await?,
        Command::Offers(cmd) => offers::dispatch(cmd, &rt).await?,
        Command::Users { command } => users::dispatch(command, &rt).await?,
        Command::Jobs { command } => match command {
            JobsCmd::List { state, limit, json } => {
                let jobs = crate::jobs::inspect::list(&rt, state.as_deref(), limit).await?;
                if json {
                    print_json(&json!(jobs));
                } else {
                    println!(
                        "{:>8}  {:<9} {:<9} {:>3}/{:<3} {:<25} {:<40} error",
                        "id", "kind", "state", "try", "max", "run at", "subject"
                    );
                    for j in jobs {
                        println!(
                            "{:>8}  {:<9} {:<9} {:>3}/{:<3} {:<25} {:<40} {}",
                            j.id,
                            j.kind,
                            j.state,
                            j.attempts,
                            j.max_attempts,
                            j.run_at.to_string(),
                            j.subject,
                            j.last_error.unwrap_or_default()
                        );
                    }
                }
            }
            JobsCmd::Retry { id } => {
                let j = crate::jobs::inspect::retry(&rt, id, &crate::portal::Actor::cli()).await?;
                println!("job {} is {} again, due {}", j.id, j.state, j.run_at);
            }
            JobsCmd::Cancel { id } => {
                let j = crate::jobs::inspect::act(
                    &rt,
                    crate::core::job::JobAction::Cancel,
                    id,
                    &crate::portal::Actor::cli(),
                )
                .await?;
                println!("job {} ({}) is cancelled", j.id, j.kind);
            }
            JobsCmd::Readdress { id, to } => {
                let to = crate::core::domain::EmailAddress::parse(to.trim())
                    .map_err(|e| CliError::Other(format!("--to: {e}")))?;
                let j = crate::jobs::inspect::readdress(&rt, id, &to, &crate::portal::Actor::cli())
                    .await?;
                println!(
                    "job {} is {} again, to the new address, due {}",
                    j.id, j.state, j.run_at
                );
            }
            JobsCmd::RunDue => {
                let n = rt.run_due().await?;
                println!("ran {n} job attempts");
            }
        },
        Command::Schedules {
            command: SchedulesCmd::List { json, next },
        } => {
            let out = crate::jobs::inspect::schedules(&rt, next).await?;
            if json {
                print_json(&json!(out));
            } else {
                for s in out {
                    let next: Vec<String> = s.next.iter().map(Timestamp::to_string).collect();
                    let paused = s
                        .paused
                        .map(|p| format!(" PAUSED since {} by {}", p.since, p.by))
                        .unwrap_or_default();
                    println!(
                        "{:<15} cron {:<16} catch_up {:<5} last {:<22} next {}{paused}",
                        s.name,
                        s.cron,
                        match s.catch_up {
                            CatchUp::Once => "once",
                            CatchUp::Skip => "skip",
                        },
                        s.last_tick.map_or("never".into(), |t| t.to_string()),
                        next.join(", ")
                    );
                }
            }
        }
        Command::Schedules {
            command: SchedulesCmd::Pause { name },
        } => {
            let by = crate::portal::Actor::cli();
            let done = crate::jobs::inspect::pause(&rt, &name, &by)
                .await
                .map_err(|e| CliError::Other(e.to_string()))?;
            println!(
                "schedule {name} {}",
                if done { "paused" } else { "was paused already" }
            );
        }
        Command::Schedules {
            command: SchedulesCmd::Resume { name },
        } => {
            let by = crate::portal::Actor::cli();
            let done = crate::jobs::inspect::resume(&rt, &name, &by)
                .await
                .map_err(|e| CliError::Other(e.to_string()))?;
            println!(
                "schedule {name} {}",
                if done { "resumed" } else { "was not paused" }
            );
        }
        _ => {}
    }
    Ok(())
}

async fn instances(cmd: InstancesCmd, rt: &AppState) -> Result<(), CliError> {
    let parse_id = |s: &str| InstanceId::parse(s).map_err(CliError::Other);
    match cmd {
        InstancesCmd::Start {
            workflow,
            data,
            locale,
            event,
            json,
        } => {
            let v = read_json_file(&data)?;
            let Value::Object(map) = v else {
                return Err(CliError::Other(format!(
                    "{}: expected a JSON object",
                    data.display()
                )));
            };
            let locale = match locale {
                Some(l) => Some(
                    Locale::parse(&l)
                        .ok_or_else(|| CliError::Other(format!("--locale `{l}`: use de or en")))?,
                ),
                None => None,
            };
            let id = rt.engine.start(&workflow, &map, locale, "cli").await?;
            if let Some(ev) = event {
                rt.engine.fire(&id, &ev, "cli").await?;
            }
            show(rt, &id, json).await?;
        }
        InstancesCmd::Show { id, json } => show(rt, &parse_id(&id)?, json).await?,
        InstancesCmd::Event { id, event, json } => {
            let id = parse_id(&id)?;
            rt.engine.fire(&id, &event, "cli").await?;
            show(rt, &id, json).await?;
        }
        InstancesCmd::RescheduleTimer { id, timer, at } => {
            let at = crate::core::domain::Timestamp::parse_rfc3339(&at).map_err(CliError::Other)?;
            let audit = crate::portal::audit::entry(
                rt,
                &crate::portal::Actor::cli(),
                "instance.timer_reschedule",
                &id,
                &format!("{timer} {at}"),
            );
            if !rt
                .engine
                .reschedule_timer(&parse_id(&id)?, &timer, at, Some(&audit))
                .await?
            {
                return Err(CliError::Other(format!(
                    "instance {id} has no scheduled timer `{timer}`"
                )));
            }
            println!("timer {timer} now due {at}");
        }
        InstancesCmd::CancelTimer { id, timer } => {
            let audit = crate::portal::audit::entry(
                rt,
                &crate::portal::Actor::cli(),
                "instance.timer_cancel",
                &id,
                &timer,
            );
            if !rt
                .engine
                .cancel_timer(&parse_id(&id)?, &timer, Some(&audit))
                .await?
            {
                return Err(CliError::Other(format!(
                    "instance {id} has no scheduled timer `{timer}`"
                )));
            }
            println!("timer {timer} cancelled");
        }
    }
    Ok(())
}

async fn show(rt: &AppState, id: &InstanceId, json: bool) -> Result<(), CliError> {
    let v = rt.engine.detail(id).await?;
    if json {
        print_json(&json!(v));
        return Ok(());
    }
    println!(
        "instance {}  workflow {}  state {}  version {}",
        v.id, v.workflow, v.state, v.version
    );
    println!("data: {}", Value::Object(v.data));
    print_history(&v.history, (12, 16, 20));
    println!("emails:");
    for e in &v.emails {
        println!(
            "  {:<24} to {:<32} {:<7} {}",
            e.template, e.recipient, e.state, e.message_id
        );
    }
    println!("timers:");
    for tm in &v.timers {
        println!(
            "  {:<12} → {:<10} {:<10} due {}",
            or_dash(tm.name.as_ref()),
            or_dash(tm.event.as_ref()),
            tm.state,
            tm.run_at
        );
    }
    Ok(())
}
