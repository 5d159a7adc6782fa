//! The customer's acceptance under attack, through the real router over TCP, on both stores:
//! pre-empting a customer's domain (with and without delegated administration), reconcile
//! after a pre-emption, the accept form as a mail cannon (CSRF expiry, rate limits per client,
//! recipient and domain, shared by two nodes on one database, the trusted proxy header).

#[macro_use]
mod common;

use common::web::{Api, Browser, confirm_at, csrf_of, link_in, parts, serve, submit_accept};
use common::{Store, TestApp, TestDb};
use partnerflow::core::domain::{OfferId, Role, Span};
use serde_json::{Value, json};

const LOCAL: &str = "http://127.0.0.1:8080";
const HOUR: i64 = 3_600_000;

struct Env {
    app: TestApp,
    base: String,
    sales: Api,
    signups: Api,
}

async fn env(store: Store, extra: &[(&str, &str)]) -> Env {
    let app = common::spawn_app(store, extra).await;
    partnerflow::offers::tasks::location_sync(&app.rt)
        .await
        .unwrap();
    let base = serve(&app).await;
    let anon = Api {
        base: base.clone(),
        token: None,
    };
    let (_, s) = partnerflow::offers::create_token(&app.rt, "sales", Role::SalesAgent)
        .await
        .unwrap();
    let (_, w) = partnerflow::offers::create_token(&app.rt, "signups", Role::Signups)
        .await
        .unwrap();
    Env {
        app,
        base,
        sales: anon.with(&s),
        signups: anon.with(&w),
    }
}

/// A purchase offer with limited delegated admin: (Offer ID, local link, advisor code).
async fn offer(e: &Env) -> (String, String, String) {
    let r = e
        .sales
        .post(
            "/api/v1/offers",
            json!({
                "kind": "purchase", "location_id": "loc-berlin", "country": "DE",
                "products": [{ "id": "m365-e3", "licences": 25 }],
                "delegated_admin": "limited",
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let o = r.json();
    let link = o["link"].as_str().unwrap().to_string();
    let code = link.rsplit('/').next().unwrap().to_string();
    (
        o["offer_id"].as_str().unwrap().to_string(),
        link.replace(LOCAL, &e.base),
        code,
    )
}

fn form<'a>(domain: &'a str, email: &'a str, da: bool) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![
        ("organisation", "Some Org"),
        ("domain", domain),
        ("admin_email", email),
    ];
    if da {
        f.push(("delegated_admin", "yes"));
    }
    f
}

/// Every delivered email to `to` that carries a confirmation link, as (raw, local link).
fn confirmations_to(e: &Env, to: &str) -> Vec<(String, String)> {
    common::web::confirmations_to(&e.app, to, LOCAL, &e.base)
}

/// The offer's tracking view as the API sends it.
async fn tracking(e: &Env, id: &str) -> Value {
    let t = partnerflow::offers::tracking(&e.app.rt, &OfferId::parse(id).unwrap())
        .await
        .unwrap();
    serde_json::to_value(t).unwrap()
}

/// Instances of a workflow ever created.
async fn instances_of(e: &Env, workflow: &str) -> usize {
    e.app
        .rt
        .store
        .count_instances(Some(workflow), false)
        .await
        .unwrap() as usize
}

/// The state of the acceptance a confirmation link names (`/c/{kid}.{instance}.{mac}`).
async fn state_of_link(e: &Env, link: &str) -> String {
    let token = link.rsplit('/').next().unwrap();
    let id = token.split('.').nth(1).unwrap();
    e.app
        .rt
        .store
        .instance(&partnerflow::core::domain::InstanceId::parse(id).unwrap())
        .await
        .unwrap()
        .state
}

// ------------------------------------------------------------------------- pre-emption

async fn preempting_a_domain_counts_for_nothing(store: Store) {
    let e = env(store, &[]).await;
    let (id, link, code) = offer(&e).await;

    // 1. The attacker's own mailbox is not at the victim's domain: refused, nothing recorded.
    let mut attacker = Browser::new("en");
    let r = submit_accept(
        &mut attacker,
        &link,
        &form("fabrikam.example", "mallory@evil.example", true),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("at the domain you gave"), "{}", r.body);
    e.app.rt.run_due().await.unwrap();
    assert!(e.app.outbox().is_empty(), "nothing mailed");
    assert_eq!(tracking(&e, &id).await["unconfirmed_acceptances"], 0);

    // 2. The attacker names the victim's admin mailbox, delegated admin ticked: recorded as
    //    unconfirmed only — not counted, no partner notice, no relationship.
    let r = submit_accept(
        &mut attacker,
        &link,
        &form("fabrikam.example", "admin@fabrikam.example", true),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"check-mail\""));
    e.app.rt.run_due().await.unwrap();
    let t = tracking(&e, &id).await;
    assert_eq!(t["acceptances"].as_array().unwrap().len(), 0);
    assert_eq!(t["unconfirmed_acceptances"], 1);
    assert_eq!(instances_of(&e, "delegated_admin").await, 0);
    let mails: Vec<String> = e
        .app
        .outbox()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(mails.len(), 1, "only the confirmation link, to the victim");
    let attackers_link = link_in(&mails[0], &format!("{LOCAL}/c/"))
        .unwrap()
        .replace(LOCAL, &e.base);
    // It tells the mailbox owner plainly what was requested, so they can ignore it.
    let text = parts(&mails[0])
        .into_iter()
        .find(|(ct, _)| ct == "text/plain")
        .unwrap()
        .1;
    assert!(text.contains("If you did not ask for this, ignore this email"));
    assert!(text.contains("LIMITED administration"), "{text}");

    // 3. The real customer accepts (without delegated admin): not blocked by the attacker.
    let mut customer = Browser::new("en");
    let r = submit_accept(
        &mut customer,
        &link,
        &form("fabrikam.example", "it@fabrikam.example", false),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    e.app.rt.run_due().await.unwrap();
    let theirs = confirmations_to(&e, "it@fabrikam.example");
    assert_eq!(theirs.len(), 1);
    let theirs = theirs[0].1.clone();
    let r = confirm_at(&mut customer, &theirs).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let t = tracking(&e, &id).await;
    let accs = t["acceptances"].as_array().unwrap();
    assert_eq!(accs.len(), 1);
    assert_eq!(accs[0]["admin_email"], "it@fabrikam.example");
    assert_eq!(accs[0]["delegated_admin"], Value::Null);
    assert_eq!(accs[0]["relationship"], Value::Null);
    assert_eq!(instances_of(&e, "delegated_admin").await, 0);

    // 4. The attacker's link, even if the owner clicks it later: the domain's acceptance is
    //    taken; the page says so, and nothing changes.
    let mut owner = Browser::new("en");
    let p = owner.get(&attackers_link).await;
    assert_eq!(p.status, 409, "{}", p.body);
    assert!(p.body.contains("already been accepted"));
    // A third accept form for the domain: answered on the page, never a silent redirect.
    let r = submit_accept(
        &mut attacker,
        &link,
        &form("fabrikam.example", "admin@fabrikam.example", true),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("already been accepted") && r.body.contains("fabrikam.example"));
    assert!(r.header("location").is_none());

    // 5. The sign-up completes: reconcile completes the confirmed acceptance only, and no
    //    delegated admin is approved for anybody.
    let w = e
        .signups
        .post(
            "/api/v1/signups",
            json!({ "advisor_code": code, "customer_domain": "fabrikam.example", "completed_at": "2026-11-01T12:00:00Z" }),
        )
        .await;
    assert_eq!(w.status, 201, "{}", w.body);
    let s = partnerflow::offers::tasks::reconcile(&e.app.rt)
        .await
        .unwrap();
    assert!(s.contains("1 acceptances completed"), "{s}");
    let t = tracking(&e, &id).await;
    assert_eq!(t["acceptances"][0]["state"], "completed");
    assert_eq!(t["acceptances"][0]["admin_email"], "it@fabrikam.example");
    assert_eq!(instances_of(&e, "delegated_admin").await, 0);

    // 6. The attacker's acceptance expires by its timer.
    e.app.clock.advance(Span(49 * HOUR));
    e.app.rt.run_due().await.unwrap();
    assert_eq!(state_of_link(&e, &attackers_link).await, "expired");
    assert_eq!(state_of_link(&e, &theirs).await, "completed");
    assert_eq!(tracking(&e, &id).await["unconfirmed_acceptances"], 0);
}

async fn reconcile_never_completes_an_unconfirmed_acceptance(store: Store) {
    let e = env(store, &[]).await;
    let (id, link, code) = offer(&e).await;
    // Pre-empted with delegated admin ticked; nobody confirms.
    let r = submit_accept(
        &mut Browser::new("en"),
        &link,
        &form("fabrikam.example", "admin@fabrikam.example", true),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The real customer signs up (from the advisor code in the public link).
    let w = e
        .signups
        .post(
            "/api/v1/signups",
            json!({ "advisor_code": code, "customer_domain": "fabrikam.example", "completed_at": "2026-11-01T12:00:00Z" }),
        )
        .await;
    assert_eq!(w.status, 201, "{}", w.body);
    let s = partnerflow::offers::tasks::reconcile(&e.app.rt)
        .await
        .unwrap();
    assert!(s.contains("0 acceptances completed"), "{s}");
    assert!(s.contains("1 sign-ups unmatched"), "{s}");
    let t = tracking(&e, &id).await;
    assert_eq!(t["acceptances"].as_array().unwrap().len(), 0);
    assert_eq!(t["unmatched_signups"].as_array().unwrap().len(), 1);
    assert_eq!(instances_of(&e, "delegated_admin").await, 0);
    // Still not after the link expired, nor after the sign-up window.
    e.app.clock.advance(Span(15 * 24 * HOUR));
    e.app.rt.run_due().await.unwrap();
    let s = partnerflow::offers::tasks::reconcile(&e.app.rt)
        .await
        .unwrap();
    assert!(s.contains("0 acceptances completed"), "{s}");
    assert_eq!(instances_of(&e, "delegated_admin").await, 0);
    // And a confirmation link that ran out is refused with its own page.
    let link = confirmations_to(&e, "admin@fabrikam.example")[0].1.clone();
    let p = Browser::new("en").get(&link).await;
    assert_eq!(p.status, 410, "{}", p.body);
    assert!(p.body.contains("id=\"confirm-expired\""));
}

async fn a_signup_dated_before_the_acceptance_does_not_complete_it(store: Store) {
    let e = env(store, &[]).await;
    let (id, link, code) = offer(&e).await;
    let mut b = Browser::new("en");
    let r = submit_accept(
        &mut b,
        &link,
        &form("fabrikam.example", "it@fabrikam.example", false),
    )
    .await;
    assert_eq!(r.status, 200);
    e.app.rt.run_due().await.unwrap();
    let c = confirmations_to(&e, "it@fabrikam.example")[0].1.clone();
    assert_eq!(confirm_at(&mut b, &c).await.status, 303);
    // The clock is at 2026-11-01T09:00Z: a sign-up of the day before is someone else's.
    let w = e
        .signups
        .post(
            "/api/v1/signups",
            json!({ "advisor_code": code, "customer_domain": "fabrikam.example", "completed_at": "2026-10-31T09:00:00Z" }),
        )
        .await;
    assert_eq!(w.status, 201, "{}", w.body);
    let s = partnerflow::offers::tasks::reconcile(&e.app.rt)
        .await
        .unwrap();
    assert!(s.contains("0 acceptances completed"), "{s}");
    assert_eq!(
        tracking(&e, &id).await["acceptances"][0]["state"],
        "submitted"
    );
}

/// Two people confirm acceptances of one domain at the same moment, round after round: in
/// every round exactly one is confirmed (303 to sign-up) and the other is told the domain's
/// acceptance is taken (409) — both outcomes each time, never two confirmed.
async fn two_confirmations_of_one_domain_at_once_have_one_winner(store: Store) {
    let e = env(store, &[]).await;
    let (id, link, _) = offer(&e).await;
    for round in 0..8 {
        let domain = format!("race{round}.example");
        let (a, b) = (format!("a@{domain}"), format!("b@{domain}"));
        let mut ba = Browser::new("en");
        let mut bb = Browser::new("en");
        assert_eq!(
            submit_accept(&mut ba, &link, &form(&domain, &a, false))
                .await
                .status,
            200
        );
        assert_eq!(
            submit_accept(&mut bb, &link, &form(&domain, &b, true))
                .await
                .status,
            200
        );
        e.app.rt.run_due().await.unwrap();
        let la = confirmations_to(&e, &a)[0].1.clone();
        let lb = confirmations_to(&e, &b)[0].1.clone();
        // Both pages first (their CSRF tokens), then both posts at once.
        let pa = ba.get(&la).await;
        let pb = bb.get(&lb).await;
        let (ca, cb) = (csrf_of(&pa.body), csrf_of(&pb.body));
        let (fa, fb) = ([("csrf", ca.as_str())], [("csrf", cb.as_str())]);
        let (ra, rb) = tokio::join!(ba.post_form(&la, &fa, &[]), bb.post_form(&lb, &fb, &[]),);
        let mut got = [ra.status, rb.status];
        got.sort();
        assert_eq!(got, [303, 409], "round {round}: {} / {}", ra.body, rb.body);
    }
    let t = tracking(&e, &id).await;
    assert_eq!(
        t["acceptances"].as_array().unwrap().len(),
        8,
        "one per domain"
    );
    // A relationship exists only where b (who ticked delegated admin) won.
    let b_won = t["acceptances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["admin_email"].as_str().unwrap().starts_with("b@"))
        .count();
    assert_eq!(instances_of(&e, "delegated_admin").await, b_won);
}

// ------------------------------------------------------------------------- the mail cannon

async fn csrf_tokens_expire(store: Store) {
    let e = env(store, &[("PARTNERFLOW__PUBLIC__FORM_MAX_AGE", "2h")]).await;
    let (id, link, _) = offer(&e).await;
    let mut b = Browser::new("en");
    let page = b.get(&link).await;
    let csrf = csrf_of(&page.body);
    let mut f = vec![("csrf", csrf.as_str())];
    f.extend(form("fabrikam.example", "it@fabrikam.example", false));
    e.app.clock.advance(Span(2 * HOUR + 60_000));
    let r = b.post_form(&link, &f, &[]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("The form has expired"), "{}", r.body);
    e.app.rt.run_due().await.unwrap();
    assert!(e.app.outbox().is_empty());
    assert_eq!(tracking(&e, &id).await["unconfirmed_acceptances"], 0);
    // A fresh page works.
    let r = submit_accept(
        &mut b,
        &link,
        &form("fabrikam.example", "it@fabrikam.example", false),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn confirmation_mails_are_limited_per_address_and_domain(store: Store) {
    let e = env(
        store,
        &[
            (
                "PARTNERFLOW__PUBLIC__CONFIRMATIONS_PER_ADDRESS_PER_DAY",
                "3",
            ),
            ("PARTNERFLOW__PUBLIC__CONFIRMATIONS_PER_DOMAIN_PER_DAY", "5"),
            ("PARTNERFLOW__PUBLIC__ACCEPTS_PER_CLIENT_PER_HOUR", "1000"),
        ],
    )
    .await;
    let (id, link, _) = offer(&e).await;
    let mut b = Browser::new("en");
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = submit_accept(
            &mut b,
            &link,
            &form("fabrikam.example", "victim@fabrikam.example", false),
        )
        .await;
        if r.status == 429 {
            assert!(r.body.contains("Too many requests") && r.body.contains("no email was sent"));
            assert!(r.header("retry-after").is_some());
        }
        statuses.push(r.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429], "per address");
    // Other addresses at the same domain: the domain's limit (5) counts the 3 above.
    let mut statuses = Vec::new();
    for n in 0..4 {
        let to = format!("user{n}@fabrikam.example");
        statuses.push(
            submit_accept(&mut b, &link, &form("fabrikam.example", &to, false))
                .await
                .status,
        );
    }
    assert_eq!(statuses, [200, 200, 429, 429], "per domain");
    // Another domain is not affected.
    let r = submit_accept(
        &mut b,
        &link,
        &form("tailspin.example", "it@tailspin.example", false),
    )
    .await;
    assert_eq!(r.status, 200);
    e.app.rt.run_due().await.unwrap();
    assert_eq!(confirmations_to(&e, "victim@fabrikam.example").len(), 3);
    assert_eq!(
        e.app.outbox().len(),
        6,
        "one mail per request taken, none for the refused"
    );
    assert_eq!(tracking(&e, &id).await["unconfirmed_acceptances"], 6);
    // A day later the address may receive one again.
    e.app.clock.advance(Span(24 * HOUR));
    let r = submit_accept(
        &mut b,
        &link,
        &form("fabrikam.example", "victim@fabrikam.example", false),
    )
    .await;
    assert_eq!(r.status, 200);
}

async fn accepts_and_requests_are_limited_per_client_across_nodes(store: Store) {
    let extra = [
        ("PARTNERFLOW__PUBLIC__ACCEPTS_PER_CLIENT_PER_HOUR", "4"),
        (
            "PARTNERFLOW__PUBLIC__REQUESTS_PER_CLIENT_PER_MINUTE",
            "1000",
        ),
    ];
    let e = env(store, &extra).await;
    // A second node on the same database (its own runtime and HTTP server).
    let db = TestDb {
        store,
        url: e.app.rt.settings.database.url.clone(),
    };
    let settings = partnerflow::core::config::Settings::load(
        None,
        &common::test_env(e.app.dir.path(), &db, &extra),
    )
    .unwrap();
    let node2 = partnerflow::app::build(
        settings,
        Some(std::sync::Arc::new(e.app.clock.clone())),
        "node2",
    )
    .await
    .unwrap();
    let base2 = common::web::serve_state(node2.clone()).await;
    let (id, link, _) = offer(&e).await;
    let link2 = link.replace(&e.base, &base2);
    let mut b = Browser::new("en");
    let mut statuses = Vec::new();
    for n in 0..6 {
        let to = format!("it@kunde{n}.example");
        let d = format!("kunde{n}.example");
        let l = if n % 2 == 0 { &link } else { &link2 };
        statuses.push(submit_accept(&mut b, l, &form(&d, &to, false)).await.status);
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 429, 429],
        "4 an hour from one client, on either node"
    );
    assert_eq!(tracking(&e, &id).await["unconfirmed_acceptances"], 4);

    // Page views: a low per-minute limit, checked on a fresh installation.
    let e = env(
        store,
        &[("PARTNERFLOW__PUBLIC__REQUESTS_PER_CLIENT_PER_MINUTE", "5")],
    )
    .await;
    let (_, link, _) = offer(&e).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(Browser::new("de").get(&link).await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
    // One-click unsubscribes are exempt (mail providers post them in bulk from one address):
    // an unknown token is a 404, never a 429.
    for _ in 0..3 {
        let r = common::web::request("POST", format!("{}/u/k1.x.y", e.base), vec![], None).await;
        assert_eq!(r.status, 404, "{}", r.body);
    }
    let r = Browser::new("de").get(&link).await;
    assert!(r.body.contains("Zu viele Anfragen"));
    // A forged X-Forwarded-For does not make a new client (no trusted proxy configured).
    let r = common::web::request(
        "GET",
        link.clone(),
        vec![("X-Forwarded-For".into(), "203.0.113.9".into())],
        None,
    )
    .await;
    assert_eq!(r.status, 429);
    e.app.clock.advance(Span(60_000));
    assert_eq!(Browser::new("de").get(&link).await.status, 200);
}

async fn behind_a_trusted_proxy_clients_are_told_apart_by_its_header(store: Store) {
    let e = env(
        store,
        &[
            ("PARTNERFLOW__PUBLIC__REQUESTS_PER_CLIENT_PER_MINUTE", "2"),
            ("PARTNERFLOW__HTTP__TRUSTED_PROXY_HEADER", "x-forwarded-for"),
        ],
    )
    .await;
    let (_, link, _) = offer(&e).await;
    let get = |xff: &'static str| {
        let link = link.clone();
        async move {
            common::web::request(
                "GET",
                link,
                vec![("X-Forwarded-For".into(), xff.into())],
                None,
            )
            .await
            .status
        }
    };
    // The last entry is the one the proxy appended: a client-chosen first entry is ignored.
    assert_eq!(get("1.1.1.1, 198.51.100.1").await, 200);
    assert_eq!(get("2.2.2.2, 198.51.100.1").await, 200);
    assert_eq!(get("3.3.3.3, 198.51.100.1").await, 429);
    assert_eq!(get("198.51.100.2").await, 200);
}

on_both_stores!(
    preempting_a_domain_counts_for_nothing,
    reconcile_never_completes_an_unconfirmed_acceptance,
    a_signup_dated_before_the_acceptance_does_not_complete_it,
    two_confirmations_of_one_domain_at_once_have_one_winner,
    csrf_tokens_expire,
    confirmation_mails_are_limited_per_address_and_domain,
    accepts_and_requests_are_limited_per_client_across_nodes,
    behind_a_trusted_proxy_clients_are_told_apart_by_its_header,
);
