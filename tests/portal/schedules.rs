//! The portal's schedules page (`/portal/schedules`, administrators only): each schedule with
//! its cron, catch-up, last and next ticks and latest runs; pause, resume and run now through
//! the page's forms (CSRF), each audited; a run is refused while the previous one is
//! unfinished; a paused schedule does not fire on its tick.

use super::*;

const PAGE: &str = "/portal/schedules";
const PAUSE: &str = "/portal/schedules/pause";
const RESUME: &str = "/portal/schedules/resume";
const RUN: &str = "/portal/schedules/run";

async fn schedules_page_pauses_resumes_and_runs(store: Store) {
    let e = env(
        store,
        &[
            ("PARTNERFLOW__SCHEDULES__RECONCILE__ENABLED", "true"),
            ("PARTNERFLOW__SCHEDULES__RECONCILE__CATCH_UP", "once"),
        ],
    )
    .await;
    let (admin_row, link) = e.user("a@partner.example", "admin").await;
    let mut admin = e.signed_in(&link).await;
    let mut sales = e
        .signed_in(&e.user("s@partner.example", "sales_agent").await.1)
        .await;
    let mut viewer = e
        .signed_in(&e.user("v@partner.example", "viewer").await.1)
        .await;
    let mut anon = Browser::new("en");
    let got = [
        status_of(&e, &mut admin, PAGE).await,
        status_of(&e, &mut sales, PAGE).await,
        status_of(&e, &mut viewer, PAGE).await,
        status_of(&e, &mut anon, PAGE).await,
    ];
    assert_eq!(got, [200, 403, 403, 303]);
    e.app.rt.tick_schedules().await; // baseline: 09:00
    let p = admin.get(&e.url(PAGE)).await.body;
    assert!(p.contains("id=\"schedule-reconcile\""), "{p}");
    assert!(p.contains("2026-11-01 09:00:00 UTC"), "the last tick");
    assert!(p.contains("2026-11-01 10:00:00 UTC"), "the next tick");
    assert!(p.contains("href=\"/portal/schedules\" aria-current=\"page\""));

    // Others may not, even with a valid token for the form.
    for path in [PAUSE, RESUME, RUN] {
        for b in [&mut sales, &mut viewer] {
            b.get(&e.url("/portal")).await;
            let nonce = b.cookies["pf_csrf"].clone();
            let token = e.app.rt.keys.csrf_token(&nonce, path, e.app.clock.now());
            let r = b
                .post_form(
                    &e.url(path),
                    &[("csrf", token.as_str()), ("name", "reconcile")],
                    &[],
                )
                .await;
            assert_eq!(r.status, 403, "{path}");
        }
        // No token, another form's token: refused, nothing done.
        let other = csrf_for_action(&admin.get(&e.url(PAGE)).await.body, RUN);
        for csrf in ["", "garbage"]
            .into_iter()
            .chain((path != RUN).then_some(other.as_str()))
        {
            let r = admin
                .post_form(&e.url(path), &[("csrf", csrf), ("name", "reconcile")], &[])
                .await;
            assert_eq!(r.status, 403, "{path} with {csrf:?}");
        }
    }
    assert!(e.app.rt.store.schedule_pauses().await.unwrap().is_empty());

    // Pause: the page says so and offers resume; the tick does not fire.
    let r = post_from(&e, &mut admin, PAGE, PAUSE, &[("name", "reconcile")]).await;
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/portal/schedules?done=paused"))
    );
    let p = admin
        .get(&e.url("/portal/schedules?done=paused"))
        .await
        .body;
    assert!(p.contains("id=\"resume-reconcile\"") && !p.contains("id=\"pause-reconcile\""));
    assert!(
        p.contains("<strong>paused</strong> (a@partner.example"),
        "{p}"
    );
    e.advance(3_600_000 + 500);
    e.app.rt.tick_schedules().await;
    e.app.rt.run_due().await.unwrap();
    assert!(
        e.app
            .rt
            .store
            .schedule_runs("reconcile")
            .await
            .unwrap()
            .is_empty(),
        "paused: no run"
    );
    // (An hour idle ends the session: sign in again.)
    let mut admin = e.signed_in(&e.link(&admin_row).await).await;

    // Run now (paused or not): one run, recorded; a second while the first is unfinished is
    // refused with the reason.
    let r = post_from(&e, &mut admin, PAGE, RUN, &[("name", "reconcile")]).await;
    assert_eq!(r.header("location"), Some("/portal/schedules?done=run"));
    let r = post_from(&e, &mut admin, PAGE, RUN, &[("name", "reconcile")]).await;
    assert_eq!(r.header("location"), Some("/portal/schedules?done=busy"));
    let p = admin.get(&e.url("/portal/schedules?done=busy")).await;
    assert_eq!(p.status, 409);
    assert!(p.body.contains("the previous run has not finished"));
    e.app.rt.run_due().await.unwrap();
    assert_eq!(
        e.app
            .rt
            .store
            .schedule_runs("reconcile")
            .await
            .unwrap()
            .len(),
        1
    );
    let p = admin.get(&e.url(PAGE)).await.body;
    assert!(p.contains("<table class=\"runs\">"), "the run is listed");

    // Resume: the missed tick is caught up once.
    let r = post_from(&e, &mut admin, PAGE, RESUME, &[("name", "reconcile")]).await;
    assert_eq!(r.header("location"), Some("/portal/schedules?done=resumed"));
    e.app.rt.tick_schedules().await;
    e.app.rt.run_due().await.unwrap();
    let runs = e.app.rt.store.schedule_runs("reconcile").await.unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");

    // A name that is not an enabled schedule: 404, nothing written.
    let r = post_from(
        &e,
        &mut admin,
        PAGE,
        PAUSE,
        &[("name", "<script>x</script>")],
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(!r.body.contains("<script>x"));

    // Every action is in the audit log, by the administrator.
    let audit = admin.get(&e.url("/portal/audit")).await.body;
    for a in ["schedule.pause", "schedule.run", "schedule.resume"] {
        assert!(
            audit.contains(&format!("<td>{a}</td><td>reconcile</td>")),
            "{a}: {audit}"
        );
    }
}

on_both_stores!(schedules_page_pauses_resumes_and_runs);
