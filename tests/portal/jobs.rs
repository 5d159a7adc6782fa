//! The portal's jobs pages (`/portal/jobs`, administrators only): counts by state and kind, the
//! filtered list, a job's page with its last error and its payload masked; retry (failed) and
//! run now (waiting) through the page's forms (CSRF), each audited.

use super::*;

use partnerflow::core::job::{JobPayload, NoopJob};
use partnerflow::store::NewJob;

const JOBS: &str = "/portal/jobs";
const RETRY: &str = "/portal/jobs/retry";
const RUN: &str = "/portal/jobs/run";
const RETRY_ALL: &str = "/portal/jobs/retry-all";

async fn jobs_pages_show_retry_and_run_jobs(store: Store) {
    let e = env(store, &[]).await;
    let (_, link) = e.user("a@partner.example", "admin").await;
    let mut admin = e.signed_in(&link).await;
    let mut sales = e
        .signed_in(&e.user("s@partner.example", "sales_agent").await.1)
        .await;
    let mut viewer = e
        .signed_in(&e.user("v@partner.example", "viewer").await.1)
        .await;
    let mut anon = Browser::new("en");
    // An invitation (its email job done), a job of a kind no version knows (fails at once
    // with its reason), a no-op waiting for tomorrow.
    let now = e.app.clock.now();
    e.app.invite(1).await;
    let job = |key: &str, payload: JobPayload, run_at: Timestamp| NewJob {
        key: key.into(),
        subject: "test".into(),
        payload,
        run_at,
        max_attempts: 1,
        replace: false,
    };
    e.app
        .rt
        .store
        .insert_jobs(
            &[
                job("mystery", JobPayload::from_row("mystery", "{}"), now),
                job(
                    "later",
                    JobPayload::Noop(NoopJob::default()),
                    now.plus(Span(86_400_000)),
                ),
            ],
            now,
        )
        .await
        .unwrap();
    e.app.rt.run_due().await.unwrap();
    let all = e.app.rt.store.list_jobs(None, 100).await.unwrap();
    let id_of = |key: &str| all.iter().find(|j| j.key == key).unwrap().id;
    let (failed, later) = (id_of("mystery"), id_of("later"));
    let email = all.iter().find(|j| j.kind == "email").unwrap().id;
    assert_eq!(e.app.rt.store.job(failed).await.unwrap().state, "failed");

    for path in [JOBS.to_string(), format!("{JOBS}/{failed}")] {
        let got = [
            status_of(&e, &mut admin, &path).await,
            status_of(&e, &mut sales, &path).await,
            status_of(&e, &mut viewer, &path).await,
            status_of(&e, &mut anon, &path).await,
        ];
        assert_eq!(got, [200, 403, 403, 303], "{path}");
    }
    let p = admin.get(&e.url(JOBS)).await.body;
    assert!(
        p.contains("<tr><th scope=\"row\">mystery</th><td class=\"num\">0</td><td class=\"num\">0</td><td class=\"num\">1</td>"),
        "one failed mystery job: {p}"
    );
    let p = admin.get(&e.url("/portal/jobs?state=failed")).await.body;
    assert!(p.contains(&format!("href=\"/portal/jobs/{failed}\"")));
    assert!(
        !p.contains(&format!("href=\"/portal/jobs/{email}\"")),
        "only failed"
    );
    let p = admin.get(&e.url("/portal/jobs?state=%3Cscript%3E")).await;
    assert_eq!(p.status, 400);
    assert!(!p.body.contains("<script>"));
    // The email job's page: the recipient masked.
    let p = admin.get(&e.url(&format!("{JOBS}/{email}"))).await.body;
    assert!(p.contains("k***@contoso.example"), "{p}");
    assert!(!p.contains("kunde1@contoso.example"));
    assert_eq!(status_of(&e, &mut admin, "/portal/jobs/999999").await, 404);
    assert_eq!(status_of(&e, &mut admin, "/portal/jobs/x").await, 404);

    // Others may not act, even with a valid token; no token is refused for everybody.
    for path in [RETRY, RUN] {
        for b in [&mut sales, &mut viewer] {
            b.get(&e.url("/portal")).await;
            let nonce = b.cookies["pf_csrf"].clone();
            let token = e.app.rt.keys.csrf_token(&nonce, path, e.app.clock.now());
            let id = failed.to_string();
            let r = b
                .post_form(&e.url(path), &[("csrf", token.as_str()), ("id", &id)], &[])
                .await;
            assert_eq!(r.status, 403, "{path}");
        }
        let id = failed.to_string();
        let r = admin
            .post_form(&e.url(path), &[("csrf", "garbage"), ("id", &id)], &[])
            .await;
        assert_eq!(r.status, 403, "{path}");
    }
    assert_eq!(e.app.rt.store.job(failed).await.unwrap().state, "failed");

    // Retry the failed job: its page says so; a second retry is refused (no longer failed).
    let page = format!("{JOBS}/{failed}");
    let p = admin.get(&e.url(&page)).await.body;
    assert!(p.contains("id=\"job-error\">"), "{p}");
    let id = failed.to_string();
    let r = post_from(&e, &mut admin, &page, RETRY, &[("id", &id)]).await;
    assert_eq!(
        r.header("location"),
        Some(format!("{page}?done=retry").as_str())
    );
    assert_eq!(e.app.rt.store.job(failed).await.unwrap().state, "scheduled");
    // Now waiting: its page offers "run now", not "retry"; a stale retry form is refused.
    let waiting = admin.get(&e.url(&page)).await.body;
    assert!(!waiting.contains(&format!("action=\"{RETRY}\"")));
    assert!(waiting.contains(&format!("action=\"{RUN}\"")));
    let nonce = admin.cookies["pf_csrf"].clone();
    let token = e.app.rt.keys.csrf_token(&nonce, RETRY, e.app.clock.now());
    let r = admin
        .post_form(&e.url(RETRY), &[("csrf", token.as_str()), ("id", &id)], &[])
        .await;
    assert_eq!(
        r.header("location"),
        Some(format!("{page}?done=not-now").as_str())
    );
    assert_eq!(
        admin
            .get(&e.url(&format!("{page}?done=not-now")))
            .await
            .status,
        409
    );

    // Run the waiting no-op now: due, then done.
    let page = format!("{JOBS}/{later}");
    let id = later.to_string();
    let r = post_from(&e, &mut admin, &page, RUN, &[("id", &id)]).await;
    assert_eq!(
        r.header("location"),
        Some(format!("{page}?done=run").as_str())
    );
    e.app.rt.run_due().await.unwrap();
    assert_eq!(e.app.rt.store.job(later).await.unwrap().state, "done");

    // Every failed job at once, after a page that says how many: three more fail (four with
    // the one retried above, which failed again).
    let now = e.app.clock.now();
    let more: Vec<NewJob> = (0..3)
        .map(|i| {
            job(
                &format!("mystery-{i}"),
                JobPayload::from_row("mystery", "{}"),
                now,
            )
        })
        .collect();
    e.app.rt.store.insert_jobs(&more, now).await.unwrap();
    e.app.rt.run_due().await.unwrap();
    let p = admin.get(&e.url("/portal/jobs?state=failed")).await.body;
    assert!(p.contains("id=\"retry-all\""), "{p}");
    let r = post_from(
        &e,
        &mut admin,
        "/portal/jobs?state=failed",
        RETRY_ALL,
        &[("kind", "")],
    )
    .await;
    assert_eq!(r.status, 200, "a confirmation first");
    assert!(
        r.body.contains("<strong id=\"confirm-n\">4</strong>"),
        "{}",
        r.body
    );
    assert_eq!(
        e.app.rt.store.count_jobs("failed", None).await.unwrap(),
        4,
        "nothing yet"
    );
    let token = csrf_for_action(&r.body, RETRY_ALL);
    let r = admin
        .post_form(
            &e.url(RETRY_ALL),
            &[("csrf", token.as_str()), ("kind", ""), ("confirm", "yes")],
            &[],
        )
        .await;
    assert_eq!(r.header("location"), Some("/portal/jobs?retried=4"));
    assert_eq!(e.app.rt.store.count_jobs("failed", None).await.unwrap(), 0);
    assert!(
        admin
            .get(&e.url("/portal/jobs?retried=4"))
            .await
            .body
            .contains("id=\"done\"")
    );

    let audit = admin.get(&e.url("/portal/audit")).await.body;
    assert!(
        audit.contains("<td>job.retry_all</td><td>*</td>"),
        "{audit}"
    );
    assert!(audit.contains("<td>4 jobs</td>"), "{audit}");
    assert!(
        audit.contains(&format!("<td>job.retry</td><td>{failed}</td>")),
        "{audit}"
    );
    assert!(
        audit.contains(&format!("<td>job.run_now</td><td>{later}</td>")),
        "{audit}"
    );
}

on_both_stores!(jobs_pages_show_retry_and_run_jobs);
