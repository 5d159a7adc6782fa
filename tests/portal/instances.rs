//! A lifecycle instance's page (`/portal/instances/{id}`, administrators only): its history,
//! timers and emails, its data masked; send an event, reschedule and cancel a timer through
//! the page's forms, each audited; a refused event says why.

use super::*;

const EVENT: &str = "/portal/instances/event";
const RESCHEDULE: &str = "/portal/instances/timer/reschedule";
const CANCEL: &str = "/portal/instances/timer/cancel";

async fn an_instance_page_shows_and_changes_its_lifecycle(store: Store) {
    let e = env(store, &[]).await;
    let (_, link) = e.user("a@partner.example", "admin").await;
    let mut admin = e.signed_in(&link).await;
    let mut viewer = e
        .signed_in(&e.user("v@partner.example", "viewer").await.1)
        .await;
    let id = e.app.invite(1).await;
    e.app.rt.run_due().await.unwrap();
    let page = format!("/portal/instances/{}", id.as_str());
    assert_eq!(status_of(&e, &mut admin, &page).await, 200);
    assert_eq!(status_of(&e, &mut viewer, &page).await, 403);
    assert_eq!(
        status_of(&e, &mut admin, "/portal/instances/in_nothere").await,
        404
    );
    let p = admin.get(&e.url(&page)).await.body;
    assert!(p.contains("<dd id=\"instance-state\">invited</dd>"), "{p}");
    assert!(
        p.contains("<strong>send</strong>: created → invited"),
        "the timeline"
    );
    assert!(p.contains("<td>trial_invitation</td><td>kunde1@contoso.example</td><td>sent</td>"));
    assert!(p.contains("id=\"cancel-reminder\"") && p.contains("id=\"reschedule-expiry\""));
    let data = &p[p.find("<pre id=\"data\">").unwrap()..];
    assert!(
        data.contains("k***@contoso.example") && !data.contains("kunde1@"),
        "data masked: {data}"
    );
    assert!(p.contains("<option value=\"withdraw\">"));

    // A viewer's forged post: the role's 403.
    viewer.get(&e.url("/portal")).await;
    let nonce = viewer.cookies["pf_csrf"].clone();
    let token = e.app.rt.keys.csrf_token(&nonce, EVENT, e.app.clock.now());
    let r = viewer
        .post_form(
            &e.url(EVENT),
            &[
                ("csrf", token.as_str()),
                ("id", id.as_str()),
                ("event", "withdraw"),
            ],
            &[],
        )
        .await;
    assert_eq!(r.status, 403);
    // No token: refused.
    let r = admin
        .post_form(
            &e.url(EVENT),
            &[("id", id.as_str()), ("event", "withdraw")],
            &[],
        )
        .await;
    assert_eq!(r.status, 403);

    // Reschedule: a bad time is refused next to the form; a good one moves the timer.
    let r = post_from(
        &e,
        &mut admin,
        &page,
        RESCHEDULE,
        &[("id", id.as_str()), ("timer", "expiry"), ("at", "tomorrow")],
    )
    .await;
    assert_eq!(r.status, 409);
    assert!(r.body.contains("YYYY-MM-DD HH:MM") && r.body.contains("value=\"tomorrow\""));
    let r = post_from(
        &e,
        &mut admin,
        &page,
        RESCHEDULE,
        &[
            ("id", id.as_str()),
            ("timer", "expiry"),
            ("at", "2026-11-20 10:30"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let d = e.app.rt.engine.detail(&id).await.unwrap();
    let expiry = d
        .timers
        .iter()
        .find(|t| t.name.as_deref() == Some("expiry") && t.state == "scheduled")
        .unwrap();
    assert_eq!(expiry.run_at.to_string(), "2026-11-20T10:30:00Z");
    // Cancel the reminder.
    let r = post_from(
        &e,
        &mut admin,
        &page,
        CANCEL,
        &[("id", id.as_str()), ("timer", "reminder")],
    )
    .await;
    assert_eq!(r.status, 303);
    let d = e.app.rt.engine.detail(&id).await.unwrap();
    assert!(
        !d.timers
            .iter()
            .any(|t| t.name.as_deref() == Some("reminder") && t.state == "scheduled")
    );
    // Withdraw: the state changes; then accepting is refused with the reason.
    let r = post_from(
        &e,
        &mut admin,
        &page,
        EVENT,
        &[("id", id.as_str()), ("event", "withdraw")],
    )
    .await;
    assert_eq!(
        r.header("location"),
        Some(format!("{page}?done=1").as_str())
    );
    assert_eq!(e.app.state(&id).await, "withdrawn");
    // (The page no longer offers events from a final state: post one by hand.)
    let nonce = admin.cookies["pf_csrf"].clone();
    let token = e.app.rt.keys.csrf_token(&nonce, EVENT, e.app.clock.now());
    let r = admin
        .post_form(
            &e.url(EVENT),
            &[
                ("csrf", token.as_str()),
                ("id", id.as_str()),
                ("event", "accept"),
            ],
            &[],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("role=\"alert\""));
    assert_eq!(e.app.state(&id).await, "withdrawn");

    let audit = admin.get(&e.url("/portal/audit")).await.body;
    for a in [
        "instance.event",
        "instance.timer_reschedule",
        "instance.timer_cancel",
    ] {
        assert!(
            audit.contains(&format!("<td>{a}</td><td>{}</td>", id.as_str())),
            "{a}"
        );
    }
    assert_eq!(
        audit.matches("<td>instance.event</td>").count(),
        1,
        "the refused event wrote no entry: {audit}"
    );
}

/// An administrator's action on an instance and its audit entry are one transaction: when the
/// audit log refuses the entry (a trigger here), the transition, the timer move and the timer
/// cancellation are not made either.
async fn an_instance_action_without_its_audit_entry_is_not_made(store: Store) {
    let e = env(store, &[]).await;
    let rt = &e.app.rt;
    let id = e.app.invite(1).await;
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&rt.settings.database.url)
        .await
        .unwrap();
    let refuse: &[&str] = match store {
        Store::Sqlite => &["CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log
             BEGIN SELECT RAISE(ABORT, 'audit refused'); END"],
        Store::Postgres => &[
            "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$
             BEGIN RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log
             FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
        ],
    };
    for sql in refuse {
        sqlx::query(sqlx::AssertSqlSafe(*sql))
            .execute(&db)
            .await
            .unwrap();
    }
    let by = Actor::cli();
    let entry = portal::audit::entry(rt, &by, "instance.event", id.as_str(), "withdraw");
    let r = rt.engine.fire_audited(&id, "withdraw", &entry).await;
    assert!(r.is_err(), "{r:?}");
    assert_eq!(e.app.state(&id).await, "invited", "no transition");
    let history = rt.engine.detail(&id).await.unwrap().history.len();
    let timers = |d: &partnerflow::core::instance::InstanceDetail| {
        d.timers
            .iter()
            .map(|t| (t.name.clone(), t.state.clone(), t.run_at))
            .collect::<Vec<_>>()
    };
    let before = timers(&rt.engine.detail(&id).await.unwrap());
    let at = rt.clock.now().plus(Span(3_600_000));
    assert!(
        rt.engine
            .reschedule_timer(&id, "expiry", at, Some(&entry))
            .await
            .is_err()
    );
    assert!(
        rt.engine
            .cancel_timer(&id, "reminder", Some(&entry))
            .await
            .is_err()
    );
    let d = rt.engine.detail(&id).await.unwrap();
    assert_eq!(timers(&d), before, "the timers as they were");
    assert_eq!(d.history.len(), history);
    // Without the trigger the same calls go through, each with its entry.
    let drop = match store {
        Store::Sqlite => "DROP TRIGGER refuse_audit",
        Store::Postgres => "DROP TRIGGER refuse_audit ON audit_log",
    };
    sqlx::query(drop).execute(&db).await.unwrap();
    rt.engine
        .fire_audited(&id, "withdraw", &entry)
        .await
        .unwrap();
    assert_eq!(e.app.state(&id).await, "withdrawn");
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'instance.event'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(n, 1);
}

on_both_stores!(
    an_instance_page_shows_and_changes_its_lifecycle,
    an_instance_action_without_its_audit_entry_is_not_made,
);
