//! The portal's campaigns section through the real router, on both stores: every page × role,
//! CSRF on every form (the multipart upload's token is a field of its body), viewers refused
//! every write, a CSV upload whose bad rows are listed by line, start → the sender → the page's
//! counts, rate and waiting time, bounces and unsubscribes, pause / resume / cancel, the report
//! as CSV, an oversized upload, hostile values, both languages.

use super::*;

use std::sync::Arc;
use std::time::Duration;

use partnerflow::campaigns::{self, NewCampaign};
use partnerflow::core::campaign::CampaignState;
use partnerflow::core::domain::{Country, OfferId, OfferKind, ProductId};
use partnerflow::offers::{self, LineRequest, NewOffer};

const NEW: &str = "/portal/campaigns/new";
const EVIL: &str = "<script>alert(1)</script>";

async fn open_offer(e: &Env) -> OfferId {
    let rt = &e.app.rt;
    offers::tasks::location_sync(rt).await.unwrap();
    offers::create(
        rt,
        NewOffer {
            kind: OfferKind::Trial,
            location_id: "loc-berlin".into(),
            country: Country::parse("DE").unwrap(),
            products: vec![LineRequest {
                product: ProductId::parse("m365-business-premium-trial").unwrap(),
                licences: None,
            }],
            delegated_admin: None,
            auto_extend: false,
            expires_at: Some(rt.clock.now().plus(Span::from_secs(20 * 86_400))),
            message: None,
        },
        "test",
    )
    .await
    .unwrap()
    .offer
    .offer_id
}

/// A campaign made by the services (not through the portal), with `n` recipients.
async fn service_campaign(e: &Env, offer: &OfferId, name: &str, n: usize) -> String {
    let rt = &e.app.rt;
    let c = campaigns::create(
        rt,
        offer,
        NewCampaign {
            name: name.into(),
            ..Default::default()
        },
        "test",
    )
    .await
    .unwrap();
    let mut csv = String::from("email,name\n");
    for i in 0..n {
        csv.push_str(&format!("k{i}@kunde.example,Kunde {i}\n"));
    }
    campaigns::import_csv(rt, &c.id, csv.as_bytes(), |b| panic!("{b:?}"))
        .await
        .unwrap();
    c.id
}

/// The new campaign form posted with its page's CSRF token first, then `fields`, then the file.
async fn upload(
    e: &Env,
    b: &mut Browser,
    fields: &[(&str, &str)],
    csv: Option<&str>,
) -> common::web::Resp {
    let page = b.get(&e.url(NEW)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = csrf_for_action(&page.body, NEW);
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    b.post_multipart(
        &e.url(NEW),
        &all,
        csv.map(|c| ("recipients", "empfänger.csv", c)),
    )
    .await
}

/// The campaign id a created page links to.
fn created_id(body: &str) -> String {
    let i = body
        .find("href=\"/portal/campaigns/cmp_")
        .expect("a campaign link")
        + 24;
    body[i..].split('"').next().unwrap().to_string()
}

async fn audited(e: &Env, action: &str, target: &str) -> bool {
    let q = AuditQuery {
        actor: None,
        action: Some(action.into()),
        from: None,
        to: None,
        cursor: None,
    };
    portal::audit::list(&e.app.rt, &q, 100)
        .await
        .unwrap()
        .rows
        .iter()
        .any(|r| r.target == target)
}

async fn state_of(e: &Env, id: &str) -> CampaignState {
    campaigns::get(&e.app.rt, id).await.unwrap().state
}

/// Runs the in-process sender until `done` holds (at most 30 s), then stops it.
async fn send_until(e: &Env, what: &str, done: impl AsyncFn() -> bool) {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(campaigns::run_sender(
        e.app.rt.clone(),
        rx,
        Arc::new(campaigns::SenderStats::default()),
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(std::time::Instant::now() < deadline, "waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(true);
    task.await.unwrap();
}

async fn campaign_pages_by_role(store: Store) {
    let e = env(store, &[]).await;
    let offer = open_offer(&e).await;
    let id = service_campaign(&e, &offer, "Frühjahr", 3).await;
    let mut admin = e
        .signed_in(&e.user("a@partner.example", "admin").await.1)
        .await;
    let mut sales = e
        .signed_in(&e.user("s@partner.example", "sales_agent").await.1)
        .await;
    let mut viewer = e
        .signed_in(&e.user("v@partner.example", "viewer").await.1)
        .await;
    let mut anon = Browser::new("en");
    let show = format!("/portal/campaigns/{id}");
    let report = format!("/portal/campaigns/{id}/report.csv");
    //                          admin sales viewer anonymous
    let pages: Vec<(&str, [u16; 4])> = vec![
        ("/portal/campaigns", [200, 200, 200, 303]),
        ("/portal/campaigns?cursor=garbage", [200, 200, 200, 303]),
        (NEW, [200, 200, 403, 303]),
        (&show, [200, 200, 200, 303]),
        (&report, [200, 200, 200, 303]),
        ("/portal/campaigns/cmp_nosuchcampaign", [404, 404, 404, 303]),
        ("/portal/campaigns/not-a-campaign", [404, 404, 404, 303]),
        (
            "/portal/campaigns/cmp_NOPE/report.csv",
            [404, 404, 404, 303],
        ),
    ];
    for (path, want) in pages {
        for (who, b, w) in [
            ("admin", &mut admin, want[0]),
            ("sales", &mut sales, want[1]),
            ("viewer", &mut viewer, want[2]),
            ("anonymous", &mut anon, want[3]),
        ] {
            let r = b.get(&e.url(path)).await;
            assert_eq!(r.status, w, "{path} as {who}: {}", r.body);
            if w == 303 {
                assert_eq!(r.header("location"), Some("/portal/sign-in"));
            }
        }
    }
    // The list links the campaign; only writers see the link to a new one.
    let list = admin.get(&e.url("/portal/campaigns")).await.body;
    assert!(list.contains(&format!("href=\"{show}\"")), "{list}");
    assert!(list.contains("0 / 3 (0 %)"), "{list}");
    assert!(list.contains("aria-current=\"page\""));
    assert!(
        sales
            .get(&e.url("/portal/campaigns"))
            .await
            .body
            .contains("id=\"new-campaign\"")
    );
    assert!(
        !viewer
            .get(&e.url("/portal/campaigns"))
            .await
            .body
            .contains("id=\"new-campaign\"")
    );
    // A draft's buttons: start and cancel for administrators, start for sales agents, none
    // for viewers; never pause or resume.
    let buttons = |body: &str| {
        ["start", "pause", "resume", "cancel"]
            .into_iter()
            .filter(|a| body.contains(&format!("action=\"{show}/{a}\"")))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        buttons(&admin.get(&e.url(&show)).await.body),
        ["start", "cancel"]
    );
    assert_eq!(buttons(&sales.get(&e.url(&show)).await.body), ["start"]);
    assert!(buttons(&viewer.get(&e.url(&show)).await.body).is_empty());
    // A draft does not reload itself.
    assert!(
        !admin
            .get(&e.url(&show))
            .await
            .body
            .contains("http-equiv=\"refresh\"")
    );
}

async fn campaign_list_pages_by_keyset(store: Store) {
    let e = env(store, &[]).await;
    let offer = open_offer(&e).await;
    for i in 0..27 {
        service_campaign(&e, &offer, &format!("Kampagne {i:02}"), 0).await;
        e.advance(1000);
    }
    let mut v = e
        .signed_in(&e.user("v@partner.example", "viewer").await.1)
        .await;
    let first = v.get(&e.url("/portal/campaigns")).await.body;
    assert_eq!(first.matches("<tr><td><a href=").count(), 25);
    assert!(first.contains("Kampagne 26") && !first.contains("Kampagne 01"));
    let i = first.find("href=\"/portal/campaigns?").unwrap() + 6;
    let next = first[i..].split('"').next().unwrap().replace("&amp;", "&");
    let second = v.get(&e.url(&next)).await.body;
    assert_eq!(second.matches("<tr><td><a href=").count(), 2, "{second}");
    assert!(second.contains("Kampagne 01") && second.contains("Kampagne 00"));
    assert!(!second.contains("id=\"older\""));
}

async fn campaign_forms_refuse_without_csrf_and_viewers(store: Store) {
    let e = env(store, &[]).await;
    let offer = open_offer(&e).await;
    let id = service_campaign(&e, &offer, "Frühjahr", 2).await;
    let (_, admin_link) = e.user("a@partner.example", "admin").await;
    let mut admin = e.signed_in(&admin_link).await;
    let mut sales = e
        .signed_in(&e.user("s@partner.example", "sales_agent").await.1)
        .await;
    let mut viewer = e
        .signed_in(&e.user("v@partner.example", "viewer").await.1)
        .await;
    let show = format!("/portal/campaigns/{id}");
    let page = admin.get(&e.url(&show)).await.body;
    let start_token = csrf_for_action(&page, &format!("{show}/start"));
    let cancel_token = csrf_for_action(&page, &format!("{show}/cancel"));
    let new_token = csrf_for_action(&admin.get(&e.url(NEW)).await.body, NEW);
    // The buttons: no token, garbage, another form's token, another origin.
    for action in ["start", "pause", "resume", "cancel"] {
        let path = format!("{show}/{action}");
        let other = if action == "start" {
            cancel_token.as_str()
        } else {
            start_token.as_str()
        };
        for csrf in ["", "garbage", other] {
            let r = admin.post_form(&e.url(&path), &[("csrf", csrf)], &[]).await;
            assert_eq!(r.status, 403, "{path} with `{csrf}`");
        }
        let own = if action == "start" {
            &start_token
        } else {
            &cancel_token
        };
        if action == "start" || action == "cancel" {
            let r = admin
                .post_form(
                    &e.url(&path),
                    &[("csrf", own.as_str())],
                    &[("Origin", "https://evil.example")],
                )
                .await;
            assert_eq!(r.status, 403, "{path} from another origin");
        }
        // A viewer is refused by the server, whatever the token.
        for csrf in ["", start_token.as_str()] {
            let r = viewer
                .post_form(&e.url(&path), &[("csrf", csrf)], &[])
                .await;
            assert_eq!(r.status, 403, "viewer {path}");
        }
    }
    // Cancelling for good is for administrators (as in the API).
    let t = csrf_for_action(
        &admin.get(&e.url(&show)).await.body,
        &format!("{show}/cancel"),
    );
    let r = sales
        .post_form(
            &e.url(&format!("{show}/cancel")),
            &[("csrf", t.as_str())],
            &[],
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        state_of(&e, &id).await,
        CampaignState::Draft,
        "nothing happened"
    );
    // The upload: the token is a field of the multipart body, before the file.
    let csv = "email\nx@kunde.example\n";
    let form = [("offer_id", offer.as_str()), ("name", "Per CSRF")];
    for csrf in ["", "garbage", start_token.as_str()] {
        let mut f = vec![("csrf", csrf)];
        f.extend_from_slice(&form);
        let r = admin
            .post_multipart(&e.url(NEW), &f, Some(("recipients", "r.csv", csv)))
            .await;
        assert_eq!(r.status, 403, "upload with `{csrf}`");
    }
    let mut f = vec![("csrf", new_token.as_str())];
    f.extend_from_slice(&form);
    let r = admin
        .post_multipart(&e.url(NEW), &f, Some(("recipients", "r.csv", csv)))
        .await;
    assert_eq!(r.status, 200, "its own token: {}", r.body);
    // No token at all, a token after the file, a form that is not multipart, another origin.
    let r = admin
        .post_multipart(&e.url(NEW), &form, Some(("recipients", "r.csv", csv)))
        .await;
    assert_eq!(r.status, 403);
    let r = admin
        .post_form(
            &e.url(NEW),
            &[("csrf", new_token.as_str()), ("name", "x")],
            &[],
        )
        .await;
    assert_eq!(r.status, 403, "not multipart");
    // A viewer's upload is refused before anything is read.
    let r = viewer
        .post_multipart(&e.url(NEW), &f, Some(("recipients", "r.csv", csv)))
        .await;
    assert_eq!(r.status, 403);
    let names: Vec<String> = campaigns::list(&e.app.rt)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.as_str() == "Per CSRF").count(),
        1,
        "only the one with its own token: {names:?}"
    );
}

async fn a_csv_upload_lists_bad_rows_by_line(store: Store) {
    let e = env(store, &[]).await;
    let offer = open_offer(&e).await;
    let mut sales = e
        .signed_in(&e.user("s@partner.example", "sales_agent").await.1)
        .await;
    let csv = format!(
        "email,name,company\n\
         anna@kunde.example,Anna,Contoso\n\
         not-an-address,Bert,Contoso\n\
         \n\
         carl@kunde.example,Carl\n\
         anna@kunde.example,Anna again,Contoso\n\
         dora@kunde.example,\"{EVIL}\",\"Fabrikam, AG\"\n\
         {EVIL}@x.example,Evil,Evil\n\
         emil@kunde.example,Emil,\"open\n"
    );
    let r = upload(
        &e,
        &mut sales,
        &[
            ("offer_id", offer.as_str()),
            ("name", EVIL),
            ("max_per_minute", "60"),
            ("reminder_after", "3d"),
        ],
        Some(&csv),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("<script>"), "escaped");
    assert!(r.body.contains("&lt;script&gt;"));
    let row = |line: u32| format!("<tr><td class=\"num\">{line}</td><td>");
    for line in [3, 5, 6, 8, 9] {
        assert!(
            r.body.contains(&row(line)),
            "line {line} listed: {}",
            r.body
        );
    }
    for line in [2, 4, 7] {
        assert!(!r.body.contains(&row(line)), "line {line} is not bad");
    }
    assert!(r.body.contains("duplicate"));
    assert!(r.body.contains("2 fields, the header has 3"));
    assert!(r.body.contains("id=\"n-lines\">8<"));
    assert!(r.body.contains("id=\"n-added\">2<"));
    assert!(r.body.contains("id=\"n-blank\">1<"));
    let id = created_id(&r.body);
    let (c, n) = campaigns::status(&e.app.rt, &id).await.unwrap();
    assert_eq!((c.state, n.total), (CampaignState::Draft, 2));
    assert_eq!(c.name, EVIL);
    assert_eq!(c.max_per_minute, Some(60));
    assert_eq!(c.created_by, "s@partner.example");
    assert!(audited(&e, "campaign.create", &id).await);
    assert!(audited(&e, "campaign.import", &id).await);
    // Its name is escaped everywhere it is shown.
    for path in [
        "/portal/campaigns".to_string(),
        format!("/portal/campaigns/{id}"),
    ] {
        let p = sales.get(&e.url(&path)).await;
        assert_eq!(p.status, 200);
        assert!(
            !p.body.contains("<script>") && p.body.contains("&lt;script&gt;"),
            "{path}"
        );
    }

    // Refused forms create nothing: the errors next to their fields, the values kept.
    let before = campaigns::list(&e.app.rt).await.unwrap().len();
    let r = upload(
        &e,
        &mut sales,
        &[("offer_id", "nonsense"), ("name", "")],
        Some(&csv),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("role=\"alert\""));
    assert!(
        r.body.contains("href=\"#campaign-offer_id\"")
            && r.body.contains("href=\"#campaign-name\"")
    );
    assert!(r.body.contains("aria-invalid=\"true\""));
    assert!(r.body.contains("value=\"nonsense\""));
    let r = upload(
        &e,
        &mut sales,
        &[("offer_id", offer.as_str()), ("name", "x")],
        None,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("CSV"), "choose a file");
    let r = upload(
        &e,
        &mut sales,
        &[
            ("offer_id", offer.as_str()),
            ("name", "x"),
            ("max_per_minute", "0"),
        ],
        Some(&csv),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = upload(
        &e,
        &mut sales,
        &[("offer_id", offer.as_str()), ("name", "x")],
        Some("name,company\nx,y\n"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body
            .contains("line 1: the header needs an `email` column"),
        "{}",
        r.body
    );
    let r = upload(
        &e,
        &mut sales,
        &[
            ("offer_id", offer.as_str()),
            ("name", "x"),
            ("template", "no_such_template"),
        ],
        Some(&csv),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("href=\"#campaign-template\""));
    let r = upload(
        &e,
        &mut sales,
        &[("offer_id", "OFR-AAAAAAAAAAAA"), ("name", "x")],
        Some(&csv),
    )
    .await;
    assert!(r.status == 404 || r.status == 400, "{}", r.status);
    assert_eq!(campaigns::list(&e.app.rt).await.unwrap().len(), before);
}

async fn an_oversized_upload_is_refused_clearly(store: Store) {
    let e = env(store, &[]).await;
    let offer = open_offer(&e).await;
    let mut sales = e
        .signed_in(&e.user("s@partner.example", "sales_agent").await.1)
        .await;
    let line = "someone.with.a.long.address@kunde.example,Somebody\n";
    let max = 16 * 1024 * 1024;
    let mut csv = String::with_capacity(max + 200_000);
    csv.push_str("email,name\n");
    while csv.len() <= max + 100_000 {
        csv.push_str(line);
    }
    let r = upload(
        &e,
        &mut sales,
        &[("offer_id", offer.as_str()), ("name", "Zu groß")],
        Some(&csv),
    )
    .await;
    assert_eq!(r.status, 413);
    assert!(r.body.contains("larger than 16 MiB"), "{}", r.body);
    assert!(r.body.contains("aria-invalid=\"true\""));
    assert!(
        campaigns::list(&e.app.rt).await.unwrap().is_empty(),
        "nothing created"
    );
    // Far over the request's limit: refused too, without a campaign.
    csv.push_str(&line.repeat(2 * 1024 * 1024 / line.len()));
    let r = upload(
        &e,
        &mut sales,
        &[("offer_id", offer.as_str()), ("name", "Viel zu groß")],
        Some(&csv),
    )
    .await;
    assert!(r.status == 413, "{}", r.status);
    assert!(
        campaigns::list(&e.app.rt).await.unwrap().is_empty(),
        "nothing created"
    );
}

async fn start_send_and_follow_progress(store: Store) {
    let e = env(store, &[("PARTNERFLOW__JOBS__POLL_INTERVAL", "100ms")]).await;
    let offer = open_offer(&e).await;
    let mut admin = e
        .signed_in(&e.user("a@partner.example", "admin").await.1)
        .await;
    let (v_row, v_link) = e.user("v@partner.example", "viewer").await;
    let mut viewer = e.signed_in(&v_link).await;
    let csv = "email,name\nanna@kunde.example,Anna\nbert@kunde.example,Bert\ncarl@kunde.example,Carl\ndora@kunde.example,Dora\n";
    let r = upload(
        &e,
        &mut admin,
        &[
            ("offer_id", offer.as_str()),
            ("name", "Frühjahr"),
            ("reminder_after", "1d"),
        ],
        Some(csv),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = created_id(&r.body);
    let show = format!("/portal/campaigns/{id}");
    // Start: a 303 back, audited; the page now reloads itself and says so politely.
    let r = post_from(&e, &mut admin, &show, &format!("{show}/start"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some(show.as_str()));
    assert!(audited(&e, "campaign.start", &id).await);
    let p = viewer.get(&e.url(&show)).await.body;
    assert!(
        p.contains("<meta http-equiv=\"refresh\" content=\"5\">"),
        "{p}"
    );
    assert!(p.contains("role=\"status\" aria-live=\"polite\""));
    assert!(p.contains("id=\"state\">running<"));
    assert!(p.contains("id=\"done\">0 / 4<"));
    assert!(
        p.contains("id=\"eta\">not known yet<"),
        "nothing sent yet: no rate"
    );
    // The sender sends the invitations; the campaign then waits for its reminders.
    let rt = e.app.rt.clone();
    send_until(&e, "4 invitations", async || {
        rt.store.recipient_counts(&id).await.unwrap().sent == 4
    })
    .await;
    let p = viewer.get(&e.url(&show)).await.body;
    assert!(p.contains("id=\"state\">running<"), "{p}");
    assert!(p.contains("id=\"done\">4 / 4<"));
    assert!(p.contains("id=\"n-sent\">4<"));
    assert!(p.contains("id=\"n-awaiting\">4<"));
    assert!(
        p.contains("id=\"rate\">0.8<"),
        "4 in the last 5 minutes: {p}"
    );
    assert!(p.contains("id=\"waiting\">"), "waiting for reminders");
    assert!(p.contains("id=\"n-reminders\">4 ("));
    // Bert unsubscribes, Carl's invitation bounces hard.
    let ledger = rt.store.ledger(&id, 0, 10).await.unwrap();
    let row = |email: &str| ledger.iter().find(|r| r.email == email).unwrap().clone();
    let url = campaigns::unsubscribe_url(&rt, &id, row("bert@kunde.example").seq);
    let token = url.rsplit_once("/u/").unwrap().1;
    assert!(campaigns::unsubscribe(&rt, token).await.unwrap().is_some());
    let carl = row("carl@kunde.example");
    let hard = std::fs::read_to_string(common::manifest("tests/support/bounces/hard-postfix.eml"))
        .unwrap()
        .replace("<cmp_test.2@partnerflow.example>", &carl.message_id)
        .replace("perm1@kunde.example", &carl.email);
    campaigns::ingest_bounce(&rt, hard.as_bytes(), "bounce")
        .await
        .unwrap();
    let p = viewer.get(&e.url(&show)).await.body;
    assert!(p.contains("id=\"n-bounces\">1<"), "{p}");
    assert!(p.contains("id=\"n-unsubscribed\">1<"));
    let bounced = &p[p.find("id=\"bounced\"").unwrap()..];
    assert!(bounced.contains("carl@kunde.example"));
    let unsubscribed = &p[p.find("id=\"unsubscribed\"").unwrap()..];
    assert!(unsubscribed.contains("bert@kunde.example"));
    // A day later the reminders go out (not to Bert or Carl) and the campaign completes.
    e.advance(86_400_000 + 1000);
    send_until(&e, "the campaign to complete", async || {
        campaigns::get(&rt, &id).await.unwrap().state == CampaignState::Completed
    })
    .await;
    // (A day later: the sessions of before expired.)
    let mut viewer = e.signed_in(&e.link(&v_row).await).await;
    let p = viewer.get(&e.url(&show)).await.body;
    assert!(p.contains("id=\"state\">completed<"), "{p}");
    assert!(
        p.contains("id=\"n-reminded\">2<"),
        "{}",
        &p[p.find("id=\"counts\"").unwrap()..]
    );
    assert!(
        !p.contains("http-equiv=\"refresh\""),
        "no reload once it stopped"
    );
    assert!(!p.contains("id=\"rate\""));
    let (a_row, _) = e.user("a2@partner.example", "admin").await;
    let mut admin = e.signed_in(&e.link(&a_row).await).await;
    let a = admin.get(&e.url(&show)).await.body;
    assert!(
        !a.contains("id=\"start\"") && !a.contains("id=\"cancel\""),
        "no button fits"
    );
    // The report: an attachment, one line per recipient, formula cells neutralised.
    let r = viewer.get(&e.url(&format!("{show}/report.csv"))).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename=\"campaign-{id}.csv\"").as_str())
    );
    let lines: Vec<&str> = r.body.lines().collect();
    assert_eq!(lines.len(), 5, "{}", r.body);
    assert!(lines[0].starts_with("line,email,state,message_id"));
    assert!(r.body.contains("carl@kunde.example,bounced"));
    // The list shows it done.
    let list = viewer.get(&e.url("/portal/campaigns")).await.body;
    assert!(list.contains("4 / 4 (100 %)"), "{list}");
}

async fn pause_resume_and_cancel(store: Store) {
    let e = env(store, &[]).await;
    let offer = open_offer(&e).await;
    let mut admin = e
        .signed_in(&e.user("a@partner.example", "admin").await.1)
        .await;
    let mut sales = e
        .signed_in(&e.user("s@partner.example", "sales_agent").await.1)
        .await;
    let id = service_campaign(&e, &offer, "Herbst", 3).await;
    let show = format!("/portal/campaigns/{id}");
    let act = |a: &str| format!("{show}/{a}");
    assert_eq!(
        post_from(&e, &mut sales, &show, &act("start"), &[])
            .await
            .status,
        303
    );
    // Running: pause (sales agents may), then the page says why it is paused.
    let p = sales.get(&e.url(&show)).await.body;
    assert!(
        p.contains("id=\"pause\"") && !p.contains("id=\"resume\"") && !p.contains("id=\"start\"")
    );
    assert_eq!(
        post_from(&e, &mut sales, &show, &act("pause"), &[])
            .await
            .status,
        303
    );
    assert_eq!(state_of(&e, &id).await, CampaignState::Paused);
    let p = sales.get(&e.url(&show)).await.body;
    assert!(
        p.contains("id=\"pause-reason\">Paused: paused by the operator<"),
        "{p}"
    );
    assert!(!p.contains("http-equiv=\"refresh\""));
    assert!(p.contains("id=\"resume\"") && !p.contains("id=\"pause\""));
    // A token taken now, used after the state moved on: the page says why, 409.
    let pause_token = {
        assert_eq!(
            post_from(&e, &mut sales, &show, &act("resume"), &[])
                .await
                .status,
            303
        );
        assert_eq!(state_of(&e, &id).await, CampaignState::Running);
        csrf_for_action(&sales.get(&e.url(&show)).await.body, &act("pause"))
    };
    assert_eq!(
        post_from(&e, &mut sales, &show, &act("pause"), &[])
            .await
            .status,
        303
    );
    let r = sales
        .post_form(
            &e.url(&act("pause")),
            &[("csrf", pause_token.as_str())],
            &[],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("id=\"action-error\""));
    assert!(r.body.contains("Not possible: campaign"));
    // Cancel: administrators only; then no button is left.
    assert_eq!(
        post_from(&e, &mut admin, &show, &act("cancel"), &[])
            .await
            .status,
        303
    );
    assert_eq!(state_of(&e, &id).await, CampaignState::Cancelled);
    let p = admin.get(&e.url(&show)).await.body;
    assert!(p.contains("id=\"state\">cancelled<"));
    assert!(!p.contains("id=\"actions-h\""));
    for a in ["start", "pause", "resume", "cancel"] {
        if a != "start" {
            assert!(
                audited(&e, &format!("campaign.{a}"), &id).await,
                "{a} audited"
            );
        }
    }
    // A button for an id of another shape, or of no campaign: 404.
    let t = csrf_for_action(&admin.get(&e.url(NEW)).await.body, NEW);
    let r = admin
        .post_form(
            &e.url("/portal/campaigns/x%3Cy/start"),
            &[("csrf", t.as_str())],
            &[],
        )
        .await;
    assert_eq!(r.status, 404);
}

async fn campaign_pages_speak_german(store: Store) {
    let e = env(store, &[]).await;
    let offer = open_offer(&e).await;
    let id = service_campaign(&e, &offer, "Frühjahr", 2).await;
    campaigns::start(&e.app.rt, &id).await.unwrap();
    let new = NewUser::parse("de@partner.example", "Dora", "sales_agent", "de").unwrap();
    let (_, link) = portal::create_user(&e.app.rt, &new, &Actor::cli())
        .await
        .unwrap();
    let mut b = e.signed_in(&link.url.replace(&e.public(), &e.base)).await;
    let list = b.get(&e.url("/portal/campaigns")).await.body;
    assert!(list.contains("<html lang=\"de\">"));
    assert!(
        list.contains("<h1>Kampagnen</h1>") && list.contains(">läuft<"),
        "{list}"
    );
    let p = b.get(&e.url(&format!("/portal/campaigns/{id}"))).await.body;
    assert!(
        p.contains("Anhalten") && p.contains("id=\"state\">läuft<"),
        "{p}"
    );
    assert!(p.contains("Bericht als CSV herunterladen"));
    let f = b.get(&e.url(NEW)).await.body;
    assert!(f.contains("Kampagne anlegen") && f.contains("enctype=\"multipart/form-data\""));
    let r = upload(
        &e,
        &mut b,
        &[("offer_id", offer.as_str()), ("name", "")],
        Some("email\n"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Bitte ausfüllen."));
    // English for the English.
    let mut en = e
        .signed_in(&e.user("en@partner.example", "viewer").await.1)
        .await;
    let list = en.get(&e.url("/portal/campaigns")).await.body;
    assert!(list.contains("<h1>Campaigns</h1>") && list.contains(">running<"));
}

on_both_stores!(
    campaign_pages_by_role,
    campaign_list_pages_by_keyset,
    campaign_forms_refuse_without_csrf_and_viewers,
    a_csv_upload_lists_bad_rows_by_line,
    an_oversized_upload_is_refused_clearly,
    start_send_and_follow_progress,
    pause_resume_and_cancel,
    campaign_pages_speak_german,
);
