//! Lifecycles through the real store and job runtime, with an injected clock.

#[macro_use]
mod common;

use common::Store;

use common::spawn_app;
use partnerflow::core::domain::{InstanceId, Span, Timestamp};
use partnerflow::engine::EngineError;

const DAY: i64 = 86_400_000;

async fn thirty_day_expiry_fires(store: Store) {
    let app = spawn_app(store, &[]).await;
    let id = app.invite(1).await;
    app.rt.run_due().await.unwrap();
    assert_eq!(app.outbox().len(), 1, "the invitation went out");
    app.clock.advance(Span(29 * DAY));
    app.rt.run_due().await.unwrap();
    assert_eq!(app.state(&id).await, "invited", "not expired on day 29");
    app.clock.advance(Span(DAY));
    app.rt.run_due().await.unwrap();
    assert_eq!(app.state(&id).await, "expired");
    let h = app.rt.store.history(&id).await.unwrap();
    let last = h.last().unwrap();
    assert_eq!(
        (last.event.as_str(), last.actor.as_str()),
        ("expire", "timer:expiry")
    );
    // invitation, reminder (day 7), expiry notice to the partner
    let emails = app.rt.store.emails_of(&id).await.unwrap();
    let templates: Vec<_> = emails.iter().map(|e| e.template.as_str()).collect();
    assert_eq!(
        templates,
        ["trial_invitation", "invitation_reminder", "offer_expired"]
    );
    assert!(emails.iter().all(|e| e.state == "sent"));
}

async fn acceptance_on_day_29_wins(store: Store) {
    let app = spawn_app(store, &[]).await;
    let id = app.invite(2).await;
    app.clock.advance(Span(29 * DAY));
    app.rt.run_due().await.unwrap();
    app.rt.engine.fire(&id, "accept", "customer").await.unwrap();
    app.clock.advance(Span(5 * DAY));
    app.rt.run_due().await.unwrap();
    assert_eq!(app.state(&id).await, "accepted");
    let events: Vec<_> = app
        .rt
        .store
        .history(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.event)
        .collect();
    assert_eq!(events, ["start", "send", "remind", "accept"]);
    let timers = app.rt.store.timers_of(&id).await.unwrap();
    assert!(
        timers.iter().all(|t| t.state != "scheduled"),
        "no timer left: {timers:?}"
    );
    // A late event gets the reason.
    let err = app
        .rt
        .engine
        .fire(&id, "expire", "timer:expiry")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::Rejected(m) if m.contains("PF-TEST000002 accepted at")),
        "{err}"
    );
}

async fn accept_racing_expiry_has_one_winner(store: Store) {
    // Round after round an acceptance and the expiry timer commit at the same moment: the
    // timer's job is claimed first (as a worker would), then its run races the acceptance,
    // each side started first in turn. Each round has exactly one final transition, and the
    // test goes on (20 rounds at least) until each side has won at least once (a race that
    // one side never wins shows nothing of the other).
    let app = spawn_app(store, &[]).await;
    let (mut accepted_wins, mut expiry_wins) = (0, 0);
    let mut n = 0;
    while n < 20 || accepted_wins == 0 || expiry_wins == 0 {
        assert!(
            n < 400,
            "after {n} rounds one side never won: accepted {accepted_wins}, expired {expiry_wins}"
        );
        let id = app.invite(100 + n).await;
        app.rt.run_due().await.unwrap();
        app.clock.advance(Span(30 * DAY));
        let now = app.rt.clock.now();
        let claimed = app
            .rt
            .store
            .claim(&app.rt.node, now, now.plus(Span(60_000)), 100)
            .await
            .unwrap();
        assert!(
            claimed.iter().any(|j| j.key.ends_with(":expiry")),
            "the expiry timer is due: {claimed:?}"
        );
        let accept = {
            let rt = app.rt.clone();
            let id = id.clone();
            async move { rt.engine.fire(&id, "accept", "customer").await }
        };
        let expire = {
            let rt = app.rt.clone();
            async move {
                // As a worker runs a claimed batch: its jobs at once.
                let outcomes = futures::future::join_all(claimed.into_iter().map(|j| {
                    let rt = &rt;
                    async move {
                        let o = rt.execute(&j).await;
                        (j, o)
                    }
                }))
                .await;
                rt.store.finish(&rt.node, &outcomes, rt.clock.now()).await
            }
        };
        let (accepted, expired) = if n % 2 == 0 {
            let a = tokio::spawn(accept);
            let e = tokio::spawn(expire);
            (a.await.unwrap(), e.await.unwrap())
        } else {
            let e = tokio::spawn(expire);
            let a = tokio::spawn(accept);
            (a.await.unwrap(), e.await.unwrap())
        };
        expired.unwrap();
        app.rt.run_due().await.unwrap();
        let state = app.state(&id).await;
        let finals: Vec<_> = app
            .rt
            .store
            .history(&id)
            .await
            .unwrap()
            .into_iter()
            .filter(|h| h.to == "accepted" || h.to == "expired")
            .collect();
        assert_eq!(finals.len(), 1, "exactly one final transition: {finals:?}");
        match accepted {
            Ok(t) => {
                assert_eq!((t.to.as_str(), state.as_str()), ("accepted", "accepted"));
                assert_eq!(finals[0].actor, "customer");
                accepted_wins += 1;
            }
            Err(EngineError::Rejected(msg)) => {
                assert_eq!(state, "expired");
                assert!(msg.contains("expired at"), "{msg}");
                assert_ne!(finals[0].actor, "customer");
                expiry_wins += 1;
            }
            Err(e) => panic!("round {n}: unexpected error: {e}"),
        }
        n += 1;
    }
    println!("{n} rounds: accepted {accepted_wins}, expired {expiry_wins}");
}

/// The events of `id`'s history, in order.
async fn events(app: &common::TestApp, id: &InstanceId) -> Vec<String> {
    let h = app.rt.store.history(id).await.unwrap();
    h.into_iter().map(|h| h.event).collect()
}

/// `id`'s timers as (name, state, run_at), by name.
async fn timers(app: &common::TestApp, id: &InstanceId) -> Vec<(String, String, Timestamp)> {
    let prefix = format!("timer:{id}:");
    let mut v: Vec<_> = app
        .rt
        .store
        .timers_of(id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| {
            let name = t.key.strip_prefix(&prefix).unwrap_or(&t.key).to_string();
            (name, t.state.to_string(), t.run_at)
        })
        .collect();
    v.sort();
    v
}

async fn timers_can_be_rescheduled_and_cancelled(store: Store) {
    let app = spawn_app(store, &[]).await;
    let id = app.invite(3).await;
    let t0 = app.rt.clock.now();
    assert_eq!(app.rt.run_due().await.unwrap(), 1, "the invitation");
    let (reminder, old_expiry, new_expiry) = (
        t0.plus(Span(7 * DAY)),
        t0.plus(Span(30 * DAY)),
        t0.plus(Span(40 * DAY)),
    );
    let scheduled = [
        ("expiry".to_string(), "scheduled".to_string(), old_expiry),
        ("reminder".to_string(), "scheduled".to_string(), reminder),
    ];
    assert_eq!(timers(&app, &id).await, scheduled);

    // The expiry moves from day 30 to day 40; the reminder (day 7) is cancelled.
    assert!(
        app.rt
            .store
            .reschedule_timer(&id, "expiry", new_expiry, t0, None)
            .await
            .unwrap(),
        "a scheduled timer is rescheduled"
    );
    assert!(
        app.rt
            .store
            .cancel_timer(&id, "reminder", t0, None)
            .await
            .unwrap(),
        "a scheduled timer is cancelled"
    );

    // At the reminder's time and at the expiry's old time nothing fires; nor just before
    // the expiry's new time.
    for at in [reminder, old_expiry, new_expiry.plus(Span(-1))] {
        app.clock.set(at);
        assert_eq!(app.rt.run_due().await.unwrap(), 0, "nothing due at {at}");
        assert_eq!(app.state(&id).await, "invited", "still open at {at}");
        assert_eq!(
            events(&app, &id).await,
            ["start", "send"],
            "neither the cancelled reminder nor the moved expiry fired by {at}"
        );
    }
    // At the new time the expiry fires.
    app.clock.set(new_expiry);
    assert_eq!(
        app.rt.run_due().await.unwrap(),
        2,
        "the expiry and its email"
    );
    assert_eq!(app.state(&id).await, "expired", "expired at day 40");
    let h = app.rt.store.history(&id).await.unwrap();
    let last = h.last().unwrap();
    assert_eq!(
        (last.event.as_str(), last.actor.as_str(), last.at),
        ("expire", "timer:expiry", new_expiry)
    );
    assert_eq!(events(&app, &id).await, ["start", "send", "expire"]);
    let templates: Vec<_> = app
        .rt
        .store
        .emails_of(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.template)
        .collect();
    assert_eq!(
        templates,
        ["trial_invitation", "offer_expired"],
        "no reminder"
    );
    let finished = [
        ("expiry".to_string(), "done".to_string(), new_expiry),
        ("reminder".to_string(), "cancelled".to_string(), reminder),
    ];
    assert_eq!(timers(&app, &id).await, finished);

    // Neither call touches a timer that is not scheduled: fired, cancelled or unknown.
    let now = app.rt.clock.now();
    for name in ["expiry", "reminder", "no-such-timer"] {
        assert!(
            !app.rt
                .store
                .reschedule_timer(&id, name, now.plus(Span(DAY)), now, None)
                .await
                .unwrap(),
            "reschedule {name}"
        );
        assert!(
            !app.rt
                .store
                .cancel_timer(&id, name, now, None)
                .await
                .unwrap(),
            "cancel {name}"
        );
    }
    assert_eq!(timers(&app, &id).await, finished, "left as they were");
    app.clock.advance(Span(60 * DAY));
    assert_eq!(app.rt.run_due().await.unwrap(), 0);
    assert_eq!(events(&app, &id).await, ["start", "send", "expire"]);
}

async fn delegated_admin_auto_extends_only_when_limited(store: Store) {
    let app = spawn_app(store, &[]).await;
    let mut ids = Vec::new();
    for (role, auto) in [("limited", true), ("full", true)] {
        let data = serde_json::json!({"customer_email": "it@contoso.example", "role": role, "auto_extend": auto, "link": "https://x.example/a"});
        let id = app
            .rt
            .engine
            .start("delegated_admin", data.as_object().unwrap(), None, "test")
            .await
            .unwrap();
        app.rt.engine.fire(&id, "request", "test").await.unwrap();
        app.rt
            .engine
            .fire(&id, "approve", "customer")
            .await
            .unwrap();
        ids.push(id);
    }
    // 730 days later: limited auto-extends, full expires. Reminders come on the way.
    for _ in 0..740 {
        app.clock.advance(Span(DAY));
        app.rt.run_due().await.unwrap();
    }
    assert_eq!(
        app.state(&ids[0]).await,
        "active",
        "limited + auto_extend was extended"
    );
    assert_eq!(
        app.state(&ids[1]).await,
        "expired",
        "full admin never auto-extends"
    );
    let reminders = app
        .rt
        .store
        .emails_of(&ids[1])
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.template == "admin_expiry_reminder")
        .count();
    assert_eq!(
        reminders, 6,
        "30, 7 and 1 days before, to partner and customer"
    );
}

async fn approval_request_expires_after_90_days(store: Store) {
    let app = spawn_app(store, &[]).await;
    let data = serde_json::json!({"customer_email": "it@contoso.example", "role": "limited", "link": "https://x.example/a"});
    let id = app
        .rt
        .engine
        .start("delegated_admin", data.as_object().unwrap(), None, "test")
        .await
        .unwrap();
    app.rt.engine.fire(&id, "request", "test").await.unwrap();
    app.clock.advance(Span(89 * DAY));
    app.rt.run_due().await.unwrap();
    assert_eq!(app.state(&id).await, "approval_pending");
    app.clock.advance(Span(DAY));
    app.rt.run_due().await.unwrap();
    assert_eq!(app.state(&id).await, "expired");
}

async fn finished_jobs_are_pruned_by_age(store: Store) {
    let app = spawn_app(store, &[]).await;
    app.invite(4).await;
    app.rt.run_due().await.unwrap();
    let done = app.rt.store.count_jobs("done", None).await.unwrap();
    assert_eq!(done, 1);
    let now = app.rt.clock.now();
    assert_eq!(
        app.rt.store.prune(now.plus(Span(-1000))).await.unwrap(),
        0,
        "too young"
    );
    // An unmatched bounce (anyone with a bounces token can add them) goes with them; a
    // matched one stays.
    for matched in [None, Some("email <m@x>".to_string())] {
        app.rt
            .store
            .insert_bounce(&partnerflow::store::BounceRow {
                received_at: now,
                source: "test".into(),
                kind: "hard".into(),
                status: "5.1.1".into(),
                message_id: None,
                recipient: None,
                diagnostic: None,
                matched,
                reason: None,
                suppressed: false,
            })
            .await
            .unwrap();
    }
    assert_eq!(app.rt.store.bounces(true, 10).await.unwrap().len(), 1);
    assert_eq!(app.rt.store.prune(now.plus(Span(1))).await.unwrap(), 1);
    assert_eq!(
        app.rt.store.bounces(true, 10).await.unwrap().len(),
        0,
        "unmatched pruned"
    );
    assert_eq!(
        app.rt.store.bounces(false, 10).await.unwrap().len(),
        1,
        "matched kept"
    );
    // (PostgreSQL: the pruner then vacuums the job table; it must run outside a transaction.)
    app.rt.store.vacuum_jobs().await.unwrap();
    assert_eq!(
        app.rt.store.count_jobs("scheduled", None).await.unwrap(),
        2,
        "timers untouched"
    );
}

async fn location_sync_makes_locations_selectable_and_names_bad_entries(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("locations.json");
    std::fs::write(
        &src,
        r#"[{"id": "loc-berlin", "name": "Berlin", "country": "de", "partner_id": "1"}]"#,
    )
    .unwrap();
    let src_s = src.display().to_string();
    let app = spawn_app(
        store,
        &[(
            "PARTNERFLOW__SCHEDULES__LOCATION_SYNC__SOURCE",
            src_s.as_str(),
        )],
    )
    .await;
    assert!(
        app.rt.store.locations().await.unwrap().is_empty(),
        "nothing selectable before a sync"
    );
    let summary = partnerflow::offers::tasks::location_sync(&app.rt)
        .await
        .unwrap();
    assert!(summary.contains("1 new"), "{summary}");
    let locs = app.rt.store.locations().await.unwrap();
    assert_eq!(
        (locs[0].0.id.as_str(), locs[0].0.country.as_str()),
        ("loc-berlin", "DE")
    );
    std::fs::write(&src, r#"[{"id": "loc-berlin", "name": "Berlin", "country": "DE", "partner_id": "1"}, {"id": "", "name": "x", "country": "Germany", "partner_id": "2"}]"#).unwrap();
    let err = partnerflow::offers::tasks::location_sync(&app.rt)
        .await
        .unwrap_err();
    assert!(err.contains("entry 1"), "{err}");
}

/// A paused schedule neither fires nor advances, on any node (the pause is read in the tick's
/// transaction); resumed, its missed ticks are caught up per policy; both are audited.
async fn a_paused_schedule_waits_until_resumed(store: Store) {
    use partnerflow::jobs::inspect;
    use partnerflow::portal::Actor;
    let app = spawn_app(
        store,
        &[
            ("PARTNERFLOW__SCHEDULES__RECONCILE__ENABLED", "true"),
            ("PARTNERFLOW__SCHEDULES__RECONCILE__CATCH_UP", "once"),
        ],
    )
    .await;
    // A second node on the same database: a pause made through one holds on the other.
    let other = app.second_node().await;
    app.rt.tick_schedules().await; // baseline: 09:00
    let by = Actor::cli();
    assert!(inspect::pause(&app.rt, "reconcile", &by).await.unwrap());
    assert!(
        !inspect::pause(&app.rt, "reconcile", &by).await.unwrap(),
        "paused already"
    );
    let err = inspect::pause(&app.rt, "nightly", &by).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "no enabled schedule `nightly` (enabled: reconcile)"
    );
    app.clock.advance(Span(3 * 3_600_000 + 500));
    for rt in [&app.rt, &other] {
        rt.tick_schedules().await;
        rt.run_due().await.unwrap();
    }
    assert!(
        app.rt
            .store
            .schedule_runs("reconcile")
            .await
            .unwrap()
            .is_empty(),
        "nothing fires while paused"
    );
    let status = inspect::schedules(&other, 1).await.unwrap();
    let r = status.iter().find(|s| s.name == "reconcile").unwrap();
    assert_eq!(
        r.last_tick.map(|t| t.to_string()).as_deref(),
        Some("2026-11-01T09:00:00Z"),
        "nor advances"
    );
    assert_eq!(r.paused.as_ref().map(|p| p.by.as_str()), Some("cli"));
    assert!(inspect::resume(&other, "reconcile", &by).await.unwrap());
    assert!(
        !inspect::resume(&other, "reconcile", &by).await.unwrap(),
        "not paused"
    );
    app.rt.tick_schedules().await;
    app.rt.run_due().await.unwrap();
    let runs = app.rt.store.schedule_runs("reconcile").await.unwrap();
    assert_eq!(
        runs.iter()
            .map(|r| (r.after.map(|t| t.to_string()), r.tick.to_string()))
            .collect::<Vec<_>>(),
        [(
            Some("2026-11-01T09:00:00Z".to_string()),
            "2026-11-01T12:00:00Z".to_string()
        )],
        "one catch-up run for the ticks missed while paused"
    );
    let audit = app
        .rt
        .store
        .audit(&partnerflow::core::portal::AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        audit
            .iter()
            .map(|a| (a.action.as_str(), a.target.as_str(), a.actor.as_str()))
            .collect::<Vec<_>>(),
        [
            ("schedule.resume", "reconcile", "cli"),
            ("schedule.pause", "reconcile", "cli")
        ]
    );
}

async fn schedules_tick_once_and_catch_up_per_policy(store: Store) {
    let app = spawn_app(
        store,
        &[
            ("PARTNERFLOW__SCHEDULES__RECONCILE__ENABLED", "true"),
            ("PARTNERFLOW__SCHEDULES__RECONCILE__CATCH_UP", "once"),
        ],
    )
    .await;
    app.rt.tick_schedules().await; // baseline: 09:00
    app.rt.run_due().await.unwrap();
    assert!(
        app.rt
            .store
            .schedule_runs("reconcile")
            .await
            .unwrap()
            .is_empty(),
        "a baseline fires nothing"
    );
    app.clock.advance(Span(3_600_000 + 500));
    app.rt.tick_schedules().await;
    app.rt.tick_schedules().await; // a second look at the same tick fires nothing more
    app.rt.run_due().await.unwrap();
    let runs = app.rt.store.schedule_runs("reconcile").await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].tick.to_string(), "2026-11-01T10:00:00Z");
    assert_eq!(
        runs[0].after.map(|t| t.to_string()).as_deref(),
        Some("2026-11-01T09:00:00Z")
    );
    // Down for five hours: one catch-up run for the latest tick.
    app.clock.advance(Span(5 * 3_600_000));
    app.rt.tick_schedules().await;
    app.rt.run_due().await.unwrap();
    let runs = app.rt.store.schedule_runs("reconcile").await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.tick.to_string()).collect::<Vec<_>>(),
        ["2026-11-01T10:00:00Z", "2026-11-01T15:00:00Z"]
    );
    // … standing for 11:00 to 15:00.
    assert_eq!(runs[1].after, Some(runs[0].tick));
    // Run records are pruned with finished jobs, by age; the schedule keeps its last tick.
    let now = app.rt.clock.now();
    app.rt
        .store
        .prune(now.plus(Span(-3_600_000)))
        .await
        .unwrap();
    assert_eq!(
        app.rt.store.schedule_runs("reconcile").await.unwrap().len(),
        1
    );
    app.rt.store.prune(now.plus(Span(1))).await.unwrap();
    assert!(
        app.rt
            .store
            .schedule_runs("reconcile")
            .await
            .unwrap()
            .is_empty()
    );
    app.clock.advance(Span(3_600_000));
    app.rt.tick_schedules().await;
    app.rt.run_due().await.unwrap();
    let runs = app.rt.store.schedule_runs("reconcile").await.unwrap();
    assert_eq!(
        runs[0].after,
        Some(Timestamp::parse_rfc3339("2026-11-01T15:00:00Z").unwrap())
    );
}

async fn reconcile_reenqueues_jobs_of_a_dead_worker(store: Store) {
    let app = spawn_app(store, &[]).await;
    let id = app.invite(9).await;
    let t0 = app.rt.clock.now();
    let lease = app.rt.settings.jobs.lease;
    let stuck_after = app.rt.settings.schedules.reconcile.stuck_after;
    // A worker claims the invitation and dies.
    let claimed = app
        .rt
        .store
        .claim("dead-worker", t0, t0.plus(lease), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let job = claimed[0].id;
    assert_eq!(claimed[0].kind, "email");
    let stuck =
        |j: &partnerflow::store::JobRow| (j.state.to_string(), j.lease_owner.clone(), j.attempts);
    let held = ("running".to_string(), Some("dead-worker".to_string()), 1);

    // While its lease lasts, neither this node's run nor reconcile touches the job.
    app.clock.set(t0.plus(Span(lease.0 - 1)));
    assert_eq!(
        app.rt.run_due().await.unwrap(),
        0,
        "a leased job is not claimed"
    );
    let summary = partnerflow::offers::tasks::reconcile(&app.rt)
        .await
        .unwrap();
    assert!(summary.starts_with("re-enqueued 0 stuck jobs"), "{summary}");
    assert_eq!(stuck(&app.rt.store.job(job).await.unwrap()), held);
    assert_eq!(app.outbox().len(), 0, "nothing sent");
    let emails = app.rt.store.emails_of(&id).await.unwrap();
    assert_eq!(emails.len(), 1);
    assert_ne!(emails[0].state, "sent");

    // Long past its lease (more than stuck_after), reconcile makes it due again, unowned.
    let later = t0.plus(Span(lease.0 + stuck_after.0 + 60_000));
    app.clock.set(later);
    assert_eq!(stuck(&app.rt.store.job(job).await.unwrap()), held);
    let summary = partnerflow::offers::tasks::reconcile(&app.rt)
        .await
        .unwrap();
    assert!(summary.starts_with("re-enqueued 1 stuck jobs"), "{summary}");
    let j = app.rt.store.job(job).await.unwrap();
    assert_eq!(
        (
            j.state.as_str(),
            j.lease_owner.as_deref(),
            j.run_at,
            j.attempts
        ),
        ("scheduled", None, later, 1),
        "re-enqueued"
    );
    assert_eq!(app.outbox().len(), 0, "nothing sent yet");

    // The next run takes it over and sends the invitation, once.
    assert_eq!(app.rt.run_due().await.unwrap(), 1);
    let j = app.rt.store.job(job).await.unwrap();
    assert_eq!(
        (j.state.as_str(), j.lease_owner.as_deref(), j.attempts),
        ("done", None, 2)
    );
    let emails = app.rt.store.emails_of(&id).await.unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].state, "sent");
    assert_eq!(app.outbox().len(), 1, "sent once");
    assert_eq!(app.rt.run_due().await.unwrap(), 0);
    let summary = partnerflow::offers::tasks::reconcile(&app.rt)
        .await
        .unwrap();
    assert!(summary.starts_with("re-enqueued 0 stuck jobs"), "{summary}");
}

async fn a_tick_never_starts_a_run_while_the_previous_one_is_unfinished(store: Store) {
    let app = spawn_app(
        store,
        &[("PARTNERFLOW__SCHEDULES__RECONCILE__ENABLED", "true")],
    )
    .await;
    app.rt.tick_schedules().await; // baseline
    app.clock.advance(Span(3_600_000));
    app.rt.tick_schedules().await; // fires 10:00; the run has not run yet
    assert_eq!(
        app.rt
            .store
            .count_jobs("scheduled", Some("schedule"))
            .await
            .unwrap(),
        1
    );
    app.clock.advance(Span(3_600_000));
    app.rt.tick_schedules().await; // 11:00 comes while 10:00 is unfinished: it waits
    assert_eq!(
        app.rt
            .store
            .count_jobs("scheduled", Some("schedule"))
            .await
            .unwrap(),
        1
    );
    app.rt.run_due().await.unwrap();
    let runs = app.rt.store.schedule_runs("reconcile").await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.tick.to_string()).collect::<Vec<_>>(),
        ["2026-11-01T10:00:00Z"]
    );
    // The run is done: 11:00 is caught up per policy (`once`), not lost and not doubled.
    app.rt.tick_schedules().await;
    app.rt.run_due().await.unwrap();
    app.clock.advance(Span(3_600_000));
    app.rt.tick_schedules().await; // 12:00
    app.rt.run_due().await.unwrap();
    let runs = app.rt.store.schedule_runs("reconcile").await.unwrap();
    let spans: Vec<_> = runs
        .iter()
        .map(|r| {
            (
                r.after.map(|t| t.to_string()).unwrap_or_default(),
                r.tick.to_string(),
            )
        })
        .collect();
    assert_eq!(
        spans,
        [
            (
                "2026-11-01T09:00:00Z".to_string(),
                "2026-11-01T10:00:00Z".to_string()
            ),
            (
                "2026-11-01T10:00:00Z".to_string(),
                "2026-11-01T11:00:00Z".to_string()
            ),
            (
                "2026-11-01T11:00:00Z".to_string(),
                "2026-11-01T12:00:00Z".to_string()
            ),
        ]
    );
}

/// Bulk enqueue is idempotent by key, and a bulk of finished outcomes lands in one go.
async fn bulk_enqueue_is_idempotent_and_drains(store: Store) {
    use partnerflow::core::job::{JobPayload, NoopJob};
    use partnerflow::store::NewJob;
    let app = spawn_app(store, &[]).await;
    let now = app.rt.clock.now();
    let jobs: Vec<NewJob> = (0..2500)
        .map(|k| NewJob {
            key: format!("noop:{k}"),
            subject: "bulk".into(),
            payload: JobPayload::Noop(NoopJob {
                note: Some(format!("{k}: quotes \" and ' survive")),
            }),
            run_at: now,
            max_attempts: 1,
            replace: false,
        })
        .collect();
    assert_eq!(app.rt.store.insert_jobs(&jobs, now).await.unwrap(), 2500);
    assert_eq!(
        app.rt.store.insert_jobs(&jobs[..1200], now).await.unwrap(),
        0,
        "the same keys again add nothing"
    );
    let j = app.rt.store.list_jobs(Some("scheduled"), 1).await.unwrap();
    assert!(
        matches!(&j[0].payload, JobPayload::Noop(NoopJob { note: Some(n) }) if n.ends_with(": quotes \" and ' survive")),
        "{:?}",
        j[0].payload
    );
    assert_eq!(app.rt.run_due().await.unwrap(), 2500);
    assert_eq!(
        app.rt.store.count_jobs("done", Some("noop")).await.unwrap(),
        2500
    );
    assert_eq!(app.rt.store.count_unfinished().await.unwrap(), 0);
}

/// Many emails finished in one batch: the ledger is written in one statement (more than a
/// few rows) and each row still gets its own attempt count.
async fn a_batch_of_sent_emails_updates_every_ledger_row(store: Store) {
    let app = spawn_app(store, &[]).await;
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(app.invite(100 + i).await);
    }
    assert_eq!(app.rt.run_due().await.unwrap(), 40);
    for id in &ids {
        let e = app.rt.store.emails_of(id).await.unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].state.as_str(), e[0].attempts), ("sent", 1), "{e:?}");
        assert!(e[0].sent_at.is_some());
    }
}

on_both_stores!(
    a_batch_of_sent_emails_updates_every_ledger_row,
    bulk_enqueue_is_idempotent_and_drains,
    thirty_day_expiry_fires,
    acceptance_on_day_29_wins,
    accept_racing_expiry_has_one_winner,
    timers_can_be_rescheduled_and_cancelled,
    delegated_admin_auto_extends_only_when_limited,
    approval_request_expires_after_90_days,
    finished_jobs_are_pruned_by_age,
    location_sync_makes_locations_selectable_and_names_bad_entries,
    schedules_tick_once_and_catch_up_per_policy,
    a_paused_schedule_waits_until_resumed,
    reconcile_reenqueues_jobs_of_a_dead_worker,
    a_tick_never_starts_a_run_while_the_previous_one_is_unfinished,
);

/// Lock order, shown on PostgreSQL without leaving it to chance: a timer's commit takes the
/// instance row before its own job row, so a transaction that holds the instance (as a
/// customer's acceptance does) and then touches the timer's job (cancelling it) goes through.
/// Taken the other way round (job, then instance) the two deadlock and one is aborted.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_a_timer_commit_takes_the_instance_before_its_job() {
    use sqlx::Connection;
    use std::time::Duration;
    if common::postgres_skipped().await {
        return;
    }
    let app = spawn_app(Store::Postgres, &[]).await;
    let id = app.invite(7).await;
    app.rt.run_due().await.unwrap();
    app.clock.advance(Span(30 * DAY));
    let now = app.rt.clock.now();
    let claimed = app
        .rt
        .store
        .claim(&app.rt.node, now, now.plus(Span(60_000)), 100)
        .await
        .unwrap();
    let expiry = claimed
        .into_iter()
        .find(|j| j.key.ends_with(":expiry"))
        .expect("the expiry timer is due");
    let url = app.rt.settings.database.url.clone();
    let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut tx = holder.begin().await.unwrap();
    sqlx::query("SELECT id FROM instances WHERE id = $1 FOR UPDATE")
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
    let rt = app.rt.clone();
    let job = expiry.clone();
    let timer = tokio::spawn(async move { rt.execute(&job).await });
    let mut watcher = sqlx::PgConnection::connect(&url).await.unwrap();
    // Wait (with a deadline) until the timer's transaction is blocked on a lock.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the timer's commit never waited for the instance"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // What an acceptance does next: cancel the instance's timers (its job row).
    let cancel = sqlx::query("UPDATE jobs SET updated_at = updated_at WHERE id = $1")
        .bind(expiry.id)
        .execute(&mut *tx)
        .await;
    tx.rollback().await.unwrap();
    assert!(
        cancel.is_ok(),
        "the holder of the instance was aborted: {cancel:?}"
    );
    let outcome = timer.await.unwrap();
    assert_eq!(outcome, partnerflow::store::Outcome::Done);
    assert_eq!(app.state(&id).await, "expired");
}
