//! The portal's jobs pages (`/portal/jobs`, administrators only): counts by state and kind, the
//! filtered list, a job's page with its last error, its failed attempts and its payload masked;
//! retry (failed), run now (waiting), cancel, a failed email sent to a corrected address over
//! SMTP, bulk actions on a filter after a confirmation, each audited; the nodes page.

use super::*;

use partnerflow::core::job::{JobPayload, NoopJob};
use partnerflow::store::NewJob;

const JOBS: &str = "/portal/jobs";
const RETRY: &str = "/portal/jobs/retry";
const RUN: &str = "/portal/jobs/run";
const CANCEL: &str = "/portal/jobs/cancel";
const READDRESS: &str = "/portal/jobs/readdress";
const BULK: &str = "/portal/jobs/bulk";

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
    for path in [RETRY, RUN, CANCEL, READDRESS, BULK] {
        for b in [&mut sales, &mut viewer] {
            b.get(&e.url("/portal")).await;
            let nonce = b.cookies["pf_csrf"].clone();
            let token = e.app.rt.keys.csrf_token(&nonce, path, e.app.clock.now());
            let id = failed.to_string();
            let r = b
                .post_form(
                    &e.url(path),
                    &[
                        ("csrf", token.as_str()),
                        ("id", &id),
                        ("action", "cancel"),
                        ("to", "x@y.example"),
                    ],
                    &[],
                )
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
        BULK,
        &[
            ("action", "retry"),
            ("state", "failed"),
            ("kind", ""),
            ("from", ""),
            ("to", ""),
        ],
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
    let token = csrf_for_action(&r.body, BULK);
    let r = admin
        .post_form(
            &e.url(BULK),
            &[
                ("csrf", token.as_str()),
                ("action", "retry"),
                ("state", "failed"),
                ("kind", ""),
                ("from", ""),
                ("to", ""),
                ("confirm", "yes"),
            ],
            &[],
        )
        .await;
    let done = "/portal/jobs?state=failed&kind=&from=&to=&done=retry&n=4";
    assert_eq!(r.header("location"), Some(done));
    assert_eq!(e.app.rt.store.count_jobs("failed", None).await.unwrap(), 0);
    assert!(admin.get(&e.url(done)).await.body.contains("id=\"done\""));

    let audit = admin.get(&e.url("/portal/audit")).await.body;
    assert!(
        audit.contains("<td>job.bulk_retry</td><td>state=failed</td>"),
        "{audit}"
    );
    assert!(audit.contains("<td>4 jobs</td>"), "{audit}");
    assert!(
        audit.contains(&format!("<td>job.retry</td><td>{failed}</td>")),
        "{audit}"
    );
    assert!(
        audit.contains(&format!("<td>job.run</td><td>{later}</td>")),
        "{audit}"
    );
}

/// A trial invitation to an address the SMTP server refuses (550) fails; the admin reads the
/// refusal in the job's failed attempts, corrects the address (a malformed one is shown again
/// with its error, nothing changed), and the email is delivered over SMTP to the new address.
/// Its expiry timer is cancelled from its page; waiting jobs are cancelled by a filter (kind,
/// creation days) after a confirmation saying how many; the nodes page shows a worker's
/// heartbeat and the jobs it holds.
async fn a_refused_email_is_readdressed_and_jobs_cancelled(store: Store) {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = common::smtp::SmtpServer::start(&tmp.path().join("received"));
    let port = smtp.port.to_string();
    let e = env(
        store,
        &[
            ("PARTNERFLOW__EMAIL__TRANSPORT", "smtp"),
            ("PARTNERFLOW__EMAIL__SMTP__HOST", "127.0.0.1"),
            ("PARTNERFLOW__EMAIL__SMTP__PORT", &port),
            ("PARTNERFLOW__EMAIL__SMTP__SECURITY", "none"),
        ],
    )
    .await;
    let rt = &e.app.rt;
    let (_, link) = e.user("a@partner.example", "admin").await;
    let mut admin = e.signed_in(&link).await;
    let mut data = common::trial_data(1);
    data.insert(
        "customer_email".into(),
        serde_json::json!("perm.kunde@contoso.example"),
    );
    let id = rt
        .engine
        .start(
            "trial_invitation",
            &data,
            Some(partnerflow::core::domain::Locale::De),
            "test",
        )
        .await
        .unwrap();
    rt.engine.fire(&id, "send", "test").await.unwrap();
    rt.run_due().await.unwrap();
    let all = rt.store.list_jobs(None, 100).await.unwrap();
    let email = all.iter().find(|j| j.kind == "email").unwrap().clone();
    let timer = all.iter().find(|j| j.kind == "timer").unwrap().id;
    assert_eq!(email.state, "failed", "{email:?}");
    assert!(smtp.received().is_empty());

    // The refusal, in the job's failed attempts.
    let page = format!("{JOBS}/{}", email.id);
    let p = admin.get(&e.url(&page)).await.body;
    assert!(p.contains("id=\"job-errors\""), "{p}");
    let history = &p[p.find("id=\"job-errors\"").unwrap()..];
    assert!(history.contains("550"), "{history}");
    assert!(p.contains("id=\"readdress-form\""));

    // A malformed address: the page again (422) with the error beside the field.
    let id_s = email.id.to_string();
    let r = post_from(
        &e,
        &mut admin,
        &page,
        READDRESS,
        &[("id", &id_s), ("to", "kunde at contoso")],
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("aria-invalid=\"true\""), "{}", r.body);
    assert!(r.body.contains("value=\"kunde at contoso\""));
    assert_eq!(rt.store.job(email.id).await.unwrap().state, "failed");

    // Corrected: delivered over SMTP to the new address; the ledger says sent.
    let r = post_from(
        &e,
        &mut admin,
        &page,
        READDRESS,
        &[("id", &id_s), ("to", "kunde@contoso.example")],
    )
    .await;
    assert_eq!(
        r.header("location"),
        Some(format!("{page}?done=readdress").as_str())
    );
    rt.run_due().await.unwrap();
    let sent = rt.store.job(email.id).await.unwrap();
    assert_eq!(sent.state, "done");
    let JobPayload::Email(p) = &sent.payload else {
        panic!("{sent:?}")
    };
    assert_eq!(p.envelope.to.as_str(), "kunde@contoso.example");
    assert_eq!(p.context["recipient"]["email"], "kunde@contoso.example");
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt_to, vec!["kunde@contoso.example".to_string()]);
    let mid = email.payload.message_id().unwrap();
    assert_eq!(
        rt.store.email_state(mid).await.unwrap().as_deref(),
        Some("sent")
    );
    // A sign-in email carries a link that is its recipient's own: never sent elsewhere, even
    // when it failed (here: the SMTP server refuses the address).
    let new = NewUser::parse("perm.neu@partner.example", "Neu", "viewer", "en").unwrap();
    portal::invite_user(rt, &new, &Actor::cli(), "Erika")
        .await
        .unwrap();
    rt.run_due().await.unwrap();
    let signin = rt
        .store
        .list_jobs(Some("failed"), 100)
        .await
        .unwrap()
        .into_iter()
        .find(|j| matches!(&j.payload, JobPayload::Email(m) if m.envelope.template == "portal_signin"))
        .expect("the refused sign-in email");
    let spage = format!("{JOBS}/{}", signin.id);
    assert!(
        !admin
            .get(&e.url(&spage))
            .await
            .body
            .contains("id=\"readdress-form\""),
        "no form for a sign-in email"
    );
    // A hand-made post (a valid token for the form) is refused by the server.
    let sid = signin.id.to_string();
    let nonce = admin.cookies["pf_csrf"].clone();
    let token = rt.keys.csrf_token(&nonce, READDRESS, rt.clock.now());
    let r = admin
        .post_form(
            &e.url(READDRESS),
            &[
                ("csrf", token.as_str()),
                ("id", &sid),
                ("to", "a@partner.example"),
            ],
            &[],
        )
        .await;
    assert_eq!(
        r.header("location"),
        Some(format!("{spage}?done=not-now").as_str())
    );
    let still = rt.store.job(signin.id).await.unwrap();
    assert_eq!(still.state, "failed");
    assert_eq!(still.payload, signin.payload, "nothing changed");

    // Done: no form to readdress or cancel it any more.
    let p = admin.get(&e.url(&page)).await.body;
    assert!(!p.contains("id=\"readdress-form\""));
    assert!(!p.contains(&format!("action=\"{CANCEL}\"")));

    // The expiry timer, cancelled from its page; a second cancel is refused (not waiting).
    let page = format!("{JOBS}/{timer}");
    let t = timer.to_string();
    let r = post_from(&e, &mut admin, &page, CANCEL, &[("id", &t)]).await;
    assert_eq!(
        r.header("location"),
        Some(format!("{page}?done=cancel").as_str())
    );
    assert_eq!(rt.store.job(timer).await.unwrap().state, "cancelled");
    let nonce = admin.cookies["pf_csrf"].clone();
    let token = rt.keys.csrf_token(&nonce, CANCEL, rt.clock.now());
    let r = admin
        .post_form(&e.url(CANCEL), &[("csrf", token.as_str()), ("id", &t)], &[])
        .await;
    assert_eq!(
        r.header("location"),
        Some(format!("{page}?done=not-now").as_str())
    );

    // Three no-ops waiting for tomorrow, created today: cancelled by a filter of kind and days,
    // after a page that says how many; a filter of other days selects none.
    let now = rt.clock.now();
    let jobs: Vec<NewJob> = (0..3)
        .map(|i| NewJob {
            key: format!("noop-{i}"),
            subject: "test".into(),
            payload: JobPayload::Noop(NoopJob::default()),
            run_at: now.plus(Span(86_400_000)),
            max_attempts: 1,
            replace: false,
        })
        .collect();
    rt.store.insert_jobs(&jobs, now).await.unwrap();
    let today = now.to_datetime().format("%Y-%m-%d").to_string();
    let yesterday = now
        .plus(Span(-86_400_000))
        .to_datetime()
        .format("%Y-%m-%d")
        .to_string();
    let list = format!("{JOBS}?kind=noop&from={today}&to={today}");
    let p = admin.get(&e.url(&list)).await.body;
    assert!(p.contains("id=\"cancel-all\""), "{p}");
    assert!(p.contains("id=\"run-all\""), "{p}");
    assert!(!p.contains("id=\"retry-all\""), "none failed");
    let old = format!("{JOBS}?kind=noop&to={yesterday}");
    let p = admin.get(&e.url(&old)).await.body;
    assert!(
        !p.contains("id=\"cancel-all\""),
        "none created before today"
    );
    let fields = [
        ("action", "cancel"),
        ("state", ""),
        ("kind", "noop"),
        ("from", today.as_str()),
        ("to", today.as_str()),
    ];
    let r = post_from(&e, &mut admin, &list, BULK, &fields).await;
    assert!(
        r.body.contains("<strong id=\"confirm-n\">3</strong>"),
        "{}",
        r.body
    );
    let token = csrf_for_action(&r.body, BULK);
    let mut confirmed = vec![("csrf", token.as_str()), ("confirm", "yes")];
    confirmed.extend_from_slice(&fields);
    let r = admin.post_form(&e.url(BULK), &confirmed, &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        rt.store
            .count_jobs("cancelled", Some("noop"))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        rt.store
            .count_jobs("scheduled", Some("noop"))
            .await
            .unwrap(),
        0
    );
    // A malformed day selects nothing and says so.
    assert_eq!(
        admin
            .get(&e.url(&format!("{JOBS}?from=yesterday")))
            .await
            .status,
        400
    );

    // The nodes page: a worker's heartbeat and the job it holds.
    let beat = partnerflow::store::NodeBeat {
        node: "worker-host7-42-abcdef",
        host: "host7",
        pid: 42,
        version: "9.9.9",
        started_at: now,
        last_claim: Some(now),
    };
    rt.store.node_beat(&beat, now).await.unwrap();
    let held = NewJob {
        key: "held".into(),
        subject: "test".into(),
        payload: JobPayload::Noop(NoopJob::default()),
        run_at: now,
        max_attempts: 1,
        replace: false,
    };
    rt.store.insert_jobs(&[held], now).await.unwrap();
    let claimed = rt
        .store
        .claim(beat.node, now, now.plus(Span(60_000)), 1)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let p = admin.get(&e.url("/portal/nodes")).await;
    assert_eq!(p.status, 200);
    let row = &p.body[p.body.find("worker-host7-42-abcdef").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("host7") && row.contains("9.9.9"), "{row}");
    assert!(row.contains(">1</a>"), "one job held: {row}");
    let mut viewer = e
        .signed_in(&e.user("v@partner.example", "viewer").await.1)
        .await;
    assert_eq!(status_of(&e, &mut viewer, "/portal/nodes").await, 403);

    let audit = admin.get(&e.url("/portal/audit")).await.body;
    assert!(
        audit.contains(&format!("<td>job.readdress</td><td>{}</td>", email.id)),
        "{audit}"
    );
    assert!(
        !audit.contains("kunde@contoso.example"),
        "no address in the log"
    );
    assert!(
        audit.contains(&format!("<td>job.cancel</td><td>{timer}</td>")),
        "{audit}"
    );
    assert!(
        audit.contains(&format!(
            "<td>job.bulk_cancel</td><td>kind=noop from={today}T00:00:00Z"
        )),
        "{audit}"
    );
}

on_both_stores!(
    jobs_pages_show_retry_and_run_jobs,
    a_refused_email_is_readdressed_and_jobs_cancelled,
);
