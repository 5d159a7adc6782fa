//! Offers end to end through the real router over TCP, on both stores: the partner API with
//! its roles and error codes, the customer's pages and their security, delegated admin,
//! resellers, sign-up reconciliation and tracking by Offer ID.

#[macro_use]
mod common;

use std::collections::BTreeSet;

use common::web::{Api, Browser, Resp, csrf_of, link_in, parts, serve};
use common::{Store, TestApp};
use partnerflow::core::domain::{OfferId, Role, Span};
use partnerflow::web::ERROR_CODES;
use serde_json::{Value, json};

const SIGNUP: &str = "https://signup.provider.example/start";
const DAY: i64 = 86_400_000;

struct Env {
    app: TestApp,
    base: String,
    admin: Api,
    sales: Api,
    viewer: Api,
    signups: Api,
    anon: Api,
}

async fn env(store: Store) -> Env {
    let app = common::spawn_app(store, &[]).await;
    partnerflow::offers::tasks::location_sync(&app.rt)
        .await
        .unwrap();
    let base = serve(&app).await;
    let anon = Api {
        base: base.clone(),
        token: None,
    };
    let mut tokens = Vec::new();
    for role in [Role::Admin, Role::SalesAgent, Role::Viewer, Role::Signups] {
        let (_, t) = partnerflow::offers::create_token(&app.rt, &format!("test {role}"), role)
            .await
            .unwrap();
        tokens.push(anon.with(&t));
    }
    let [admin, sales, viewer, signups] = <[Api; 4]>::try_from(tokens).ok().unwrap();
    Env {
        app,
        base,
        admin,
        sales,
        viewer,
        signups,
        anon,
    }
}

fn purchase_body() -> Value {
    json!({
        "kind": "purchase", "location_id": "loc-berlin", "country": "DE",
        "products": [{ "id": "m365-e3", "licences": 25 }, { "id": "exchange-online-plan-1", "licences": 10 }],
        "delegated_admin": "limited", "message": "Hallo <b>Team</b>",
    })
}

async fn create(api: &Api, body: Value) -> Value {
    let r = api.post("/api/v1/offers", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

/// Rows recorded for an offer: (invitations, acceptances).
async fn recorded(e: &Env, id: &str) -> (usize, usize) {
    let v = partnerflow::offers::tracking(&e.app.rt, &OfferId::parse(id).unwrap())
        .await
        .unwrap();
    (v.invitations.len(), v.acceptances.len())
}

/// Email jobs ever enqueued.
async fn emails_total(e: &Env) -> usize {
    let jobs = e.app.rt.store.list_jobs(None, 100_000).await.unwrap();
    jobs.iter().filter(|j| j.kind == "email").count()
}

fn outbox_raw(app: &TestApp) -> Vec<String> {
    app.outbox()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// The delivered email whose headers or decoded text contain all of `needles`.
fn email_with(app: &TestApp, needles: &[&str]) -> String {
    outbox_raw(app)
        .into_iter()
        .find(|raw| {
            let mut all = raw.clone();
            for (_, t) in parts(raw) {
                all.push_str(&t);
            }
            needles.iter().all(|n| all.contains(n))
        })
        .unwrap_or_else(|| panic!("no delivered email with {needles:?}"))
}

async fn accept_form(b: &mut Browser, link: &str, fields: &[(&str, &str)]) -> Resp {
    let page = b.get(link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = csrf_of(&page.body);
    let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    b.post_form(link, &all, &[]).await
}

/// The confirmation link mailed to `to` (delivered by `run_due`), served locally.
async fn confirm_link(e: &Env, to: &str) -> String {
    e.app.rt.run_due().await.unwrap();
    let mail = email_with(&e.app, &[&format!("To: {to}"), "/c/"]);
    link_in(&mail, "http://127.0.0.1:8080/c/")
        .expect("the confirmation link")
        .replace("http://127.0.0.1:8080", &e.base)
}

/// The customer opens the confirmation link and confirms: the final response (303).
async fn confirm(b: &mut Browser, link: &str) -> Resp {
    let page = b.get(link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = csrf_of(&page.body);
    b.post_form(link, &[("csrf", csrf.as_str())], &[]).await
}

/// Accepts and confirms from the admin mailbox (`admin_email` in `fields`): the 303.
async fn accept_confirmed(e: &Env, b: &mut Browser, link: &str, fields: &[(&str, &str)]) -> Resp {
    let r = accept_form(b, link, fields).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"check-mail\""), "{}", r.body);
    let to = fields
        .iter()
        .find(|(k, _)| *k == "admin_email")
        .map(|(_, v)| *v)
        .unwrap();
    let c = confirm_link(e, to).await;
    confirm(b, &c).await
}

// ------------------------------------------------------------------------------ the journey

async fn purchase_offer_from_invitation_to_completed_signup(store: Store) {
    let e = env(store).await;
    let o = create(&e.sales, purchase_body()).await;
    let id = o["offer_id"].as_str().unwrap().to_string();
    assert!(OfferId::parse(&id).is_ok(), "{id}");
    assert_eq!(o["state"], "open");
    // Times are RFC 3339 strings, as the OpenAPI document says (`date-time`).
    for f in ["created_at", "expires_at"] {
        let t = o[f]
            .as_str()
            .unwrap_or_else(|| panic!("{f} is not a string: {o}"));
        assert!(
            partnerflow::core::domain::Timestamp::parse_rfc3339(t).is_ok() && t.ends_with('Z'),
            "{f}: {t}"
        );
    }
    let link = o["link"].as_str().unwrap().to_string();
    assert!(link.starts_with("http://127.0.0.1:8080/o/"), "{link}");
    let code = link.rsplit('/').next().unwrap().to_string();

    // Invite two recipients, deliver.
    for (to, locale) in [
        ("einkauf@fabrikam.example", "de"),
        ("it@fabrikam.example", "en"),
    ] {
        let r = e
            .sales
            .post(
                &format!("/api/v1/offers/{id}/invitations"),
                json!({ "recipient": to, "locale": locale }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    e.app.rt.run_due().await.unwrap();
    let invitation = email_with(&e.app, &["einkauf@fabrikam.example", "Subject:"]);
    let mailed =
        link_in(&invitation, "http://127.0.0.1:8080/o/").expect("the link in the invitation");
    assert_eq!(mailed, link);
    // Served locally: swap the configured public base for the test server.
    let local = link.replace("http://127.0.0.1:8080", &e.base);

    // The page: products with editable counts, delegated admin unticked, partner contact.
    let mut b = Browser::new("en-GB,en;q=0.9,de;q=0.5");
    let page = b.get(&local).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<html lang=\"en\">"));
    assert!(
        page.body.contains("Microsoft 365 E3") && page.body.contains("Exchange Online (Plan 1)")
    );
    assert!(
        page.body
            .contains("name=\"licences.m365-e3\" value=\"25\" min=\"1\" max=\"10000\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("id=\"delegated_admin\" name=\"delegated_admin\" value=\"yes\"")
    );
    assert!(
        !page.body.contains(" checked"),
        "the delegated-admin box starts unticked"
    );
    assert!(
        page.body.contains("partner@contoso-partner.example")
            && page.body.contains("+49 30 1234567")
    );
    assert!(
        page.body.contains("Hallo &lt;b&gt;Team&lt;/b&gt;"),
        "the partner's message is escaped"
    );
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    assert!(
        page.header("set-cookie")
            .unwrap()
            .contains("HttpOnly; SameSite=Strict")
    );

    // Accept: licence count edited, delegated admin granted, redirect targets injected.
    let csrf = csrf_of(&page.body);
    let r = b
        .post_form(
            &format!("{local}?redirect=https://evil.example/&next=//evil.example"),
            &[
                ("csrf", &csrf),
                ("organisation", "Fabrikam <script>alert(1)</script> GmbH"),
                ("domain", "Fabrikam.example"),
                ("admin_email", "Admin@Fabrikam.example"),
                ("licences.m365-e3", "30"),
                ("licences.exchange-online-plan-1", "10"),
                ("delegated_admin", "yes"),
                ("redirect", "https://evil.example/"),
                ("return_to", "https://evil.example/"),
            ],
            &[],
        )
        .await;
    // The form's own path includes no query, so the token still matches (query is ignored).
    // Nothing counts yet: the page says a confirmation link went to the admin address.
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"check-mail\""), "{}", r.body);
    assert!(r.body.contains("Admin@fabrikam.example"), "{}", r.body);
    assert!(r.header("location").is_none());
    let t = e.viewer.get(&format!("/api/v1/offers/{id}")).await.json();
    assert_eq!(
        t["acceptances"].as_array().unwrap().len(),
        0,
        "not counted before confirmation"
    );
    assert_eq!(t["unconfirmed_acceptances"], 1);
    let c = confirm_link(&e, "Admin@fabrikam.example").await;
    // The confirmation email says what was requested; nothing the requester typed is in its
    // subject, and the organisation is marked as typed by them.
    let verify = email_with(&e.app, &["To: Admin@fabrikam.example", "/c/"]);
    let subject = verify
        .lines()
        .find(|l| l.starts_with("Subject:"))
        .unwrap()
        .to_string();
    assert!(
        !subject.contains("Fabrikam") && !subject.contains("script"),
        "{subject}"
    );
    let text = parts(&verify)
        .into_iter()
        .find(|(ct, _)| ct == "text/plain")
        .unwrap()
        .1;
    assert!(text.contains("as entered by the requester"), "{text}");
    assert!(text.contains("user licences: 30"), "{text}");
    assert!(text.contains("LIMITED administration"), "{text}");
    assert!(
        outbox_raw(&e.app)
            .iter()
            .all(|m| !m.contains("To: partner@contoso-partner.example")),
        "no partner notice before confirmation"
    );
    // The link's page shows the request; confirming sends the customer on to sign-up.
    let confirm_page = b.get(&c).await;
    assert_eq!(confirm_page.status, 200, "{}", confirm_page.body);
    assert!(confirm_page.body.contains("fabrikam.example"));
    assert!(
        confirm_page.body.contains("&lt;script&gt;"),
        "escaped on the page"
    );
    let csrf = csrf_of(&confirm_page.body);
    let r = b.post_form(&c, &[("csrf", csrf.as_str())], &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let expected = format!("{SIGNUP}?advisor_code={code}");
    assert_eq!(r.header("location"), Some(expected.as_str()));
    // Single use: the link now only leads on to the sign-up page again, changing nothing.
    let used = b.post_form(&c, &[("csrf", csrf.as_str())], &[]).await;
    assert_eq!(used.status, 303);

    // Accepting again (same domain): answered on the page, nothing new.
    e.app.rt.run_due().await.unwrap();
    let mails_before = e.app.outbox().len();
    let again = accept_form(
        &mut b,
        &local,
        &[
            ("organisation", "Fabrikam GmbH"),
            ("domain", "fabrikam.example"),
            ("admin_email", "admin@fabrikam.example"),
            ("licences.m365-e3", "99"),
        ],
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(
        again.body.contains("already been accepted"),
        "{}",
        again.body
    );
    assert!(again.body.contains("partner@contoso-partner.example"));
    e.app.rt.run_due().await.unwrap();
    assert_eq!(
        e.app.outbox().len(),
        mails_before,
        "no new emails for a repeated acceptance"
    );

    // Tracking by Offer ID shows it all.
    let t = e.viewer.get(&format!("/api/v1/offers/{id}")).await.json();
    assert_eq!(t["invitations"].as_array().unwrap().len(), 2);
    // Both invitations went to fabrikam.example; the offer was accepted for that domain (by
    // Admin@…, whom nobody invited): both are accepted.
    assert!(
        t["invitations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["state"] == "accepted"),
        "{}",
        t["invitations"]
    );
    assert!(
        t["invitations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["emails"][0]["state"] == "sent")
    );
    let accs = t["acceptances"].as_array().unwrap();
    assert_eq!(accs.len(), 1);
    let a = &accs[0];
    assert_eq!(a["state"], "submitted");
    assert_eq!(a["domain"], "fabrikam.example");
    assert_eq!(a["products"][0]["licences"], 30);
    assert_eq!(a["delegated_admin"], "limited");
    assert_eq!(a["relationship"]["state"], "approval_pending");
    assert!(
        t["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["event"] == "publish")
    );

    // Emails: confirmation to the customer (with the remove-roles link), notice to the
    // partner; customer text escaped in HTML.
    let confirmation = email_with(&e.app, &["To: Admin@fabrikam.example", "/r/"]);
    assert!(confirmation.contains("Subject:"));
    for (ct, text) in parts(&confirmation) {
        if ct == "text/html" {
            assert!(!text.contains("<script>"), "raw script in the HTML part");
            assert!(
                text.contains("&lt;script&gt;"),
                "organisation missing from HTML part"
            );
        }
    }
    // The relationship's email says what actually happens next (no approval page exists).
    let request = email_with(
        &e.app,
        &["To: Admin@fabrikam.example", "becomes active by itself"],
    );
    assert!(!request.contains("approve the request"), "{request}");
    let notice = email_with(
        &e.app,
        &["To: partner@contoso-partner.example", "fabrikam.example"],
    );
    for (ct, text) in parts(&notice) {
        if ct == "text/html" {
            assert!(!text.contains("<script>"));
        }
    }

    // The sign-up system reports the sign-up (webhook): reconcile completes the acceptance
    // and approves the relationship; a duplicate report changes nothing; a code that does not
    // verify is refused (422 naming advisor_code), as `signups import` refuses its line.
    let w = e.signups.post("/api/v1/signups", json!({ "advisor_code": code, "customer_domain": "FABRIKAM.example", "completed_at": "2026-11-01T10:00:00Z" })).await;
    assert_eq!(w.status, 201, "{}", w.body);
    assert_eq!(w.json()["offer_id"], id);
    let dup = e.signups.post("/api/v1/signups", json!({ "advisor_code": code, "customer_domain": "fabrikam.example", "completed_at": "2026-11-01T10:00:00Z" })).await;
    assert_eq!(dup.status, 200);
    assert_eq!(dup.json()["recorded"], false);
    let stray = e.signups.post("/api/v1/signups", json!({ "advisor_code": format!("{code}x"), "customer_domain": "other.example", "completed_at": "2026-11-01T10:00:00Z" })).await;
    assert_eq!(stray.status, 422, "{}", stray.body);
    assert_eq!(stray.code(), "invalid_field");
    assert_eq!(stray.json()["error"]["field"], "advisor_code");
    let other_domain = e.signups.post("/api/v1/signups", json!({ "advisor_code": code, "customer_domain": "nobody.example", "completed_at": "2026-11-01T10:00:00Z" })).await;
    assert_eq!(other_domain.status, 201);
    let summary = partnerflow::offers::tasks::reconcile(&e.app.rt)
        .await
        .unwrap();
    assert!(summary.contains("1 acceptances completed"), "{summary}");
    assert!(summary.contains("1 sign-ups unmatched"), "{summary}");
    let t = e.viewer.get(&format!("/api/v1/offers/{id}")).await.json();
    let a = &t["acceptances"][0];
    assert_eq!(a["state"], "completed");
    assert_eq!(a["signup"]["domain"], "fabrikam.example");
    assert_eq!(a["relationship"]["state"], "active");
    assert!(a["relationship"]["ends_at"].is_string());
    assert_eq!(
        t["unmatched_signups"].as_array().unwrap().len(),
        1,
        "{}",
        t["unmatched_signups"]
    );
    // Running reconcile again changes nothing.
    let again = partnerflow::offers::tasks::reconcile(&e.app.rt)
        .await
        .unwrap();
    assert!(again.contains("0 acceptances completed"), "{again}");

    // The customer removes the partner's roles from the page linked in the confirmation.
    e.app.rt.run_due().await.unwrap();
    let remove = link_in(&confirmation, "http://127.0.0.1:8080/r/").expect("remove-roles link");
    let remove = remove.replace("http://127.0.0.1:8080", &e.base);
    let mut b = Browser::new("de");
    let p = b.get(&remove).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("Administratorrechte entfernen"));
    assert!(
        p.body.contains("&lt;script&gt;"),
        "customer name escaped on the page"
    );
    let csrf = csrf_of(&p.body);
    let done = b.post_form(&remove, &[("csrf", &csrf)], &[]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let t = e.viewer.get(&format!("/api/v1/offers/{id}")).await.json();
    assert_eq!(t["acceptances"][0]["relationship"]["state"], "terminated");
    assert_eq!(
        t["acceptances"][0]["state"], "completed",
        "the partner relationship stays"
    );
    e.app.rt.run_due().await.unwrap();
    let roles_removed = e
        .app
        .rt
        .store
        .emails_of(
            &partnerflow::core::domain::InstanceId::parse(
                t["acceptances"][0]["relationship"]["id"].as_str().unwrap(),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    assert!(
        roles_removed
            .iter()
            .any(|m| m.template == "admin_roles_removed"
                && m.role == "partner"
                && m.state == "sent")
    );
    // Customer search finds it by exact domain and exact user name only.
    let c = e
        .viewer
        .get("/api/v1/customers?q=fabrikam.example")
        .await
        .json();
    assert_eq!(c["customers"][0]["acceptances"][0]["offer_id"], id);
    assert_eq!(c["customers"][0]["source"], "accepted");
    assert_eq!(
        c["customers"][0]["invitations"].as_array().unwrap().len(),
        2,
        "{c}"
    );
    // An invited user name finds the customer too, with that invitation.
    let c = e
        .viewer
        .get("/api/v1/customers?q=Einkauf%40fabrikam.example")
        .await
        .json();
    assert_eq!(c["customers"][0]["domain"], "fabrikam.example", "{c}");
    assert_eq!(c["customers"][0]["source"], "invited", "{c}");
    assert_eq!(
        c["customers"][0]["invitations"][0]["recipient"],
        "einkauf@fabrikam.example"
    );
    let c = e
        .viewer
        .get("/api/v1/customers?q=ADMIN%40fabrikam.example")
        .await
        .json();
    assert_eq!(c["customers"].as_array().unwrap().len(), 1);
    let c = e.viewer.get("/api/v1/customers?q=fabrikam").await;
    assert_eq!(c.code(), "invalid_field", "{}", c.body);
    let c = e.viewer.get("/api/v1/customers?q=%2A.example").await;
    assert_eq!(c.code(), "invalid_field");
    let c = e
        .viewer
        .get("/api/v1/customers?q=contoso.example")
        .await
        .json();
    assert_eq!(c["customers"].as_array().unwrap().len(), 0);
}

async fn trial_without_delegated_admin_and_standalone_admin_offer(store: Store) {
    let e = env(store).await;
    let trial = create(&e.sales, json!({ "kind": "trial", "location_id": "loc-wien", "country": "AT", "products": [{ "id": "m365-business-premium-trial" }], "delegated_admin": "full" })).await;
    let local = trial["link"]
        .as_str()
        .unwrap()
        .replace("http://127.0.0.1:8080", &e.base);
    let mut b = Browser::new("de-AT");
    let page = b.get(&local).await;
    assert!(page.body.contains("<html lang=\"de\">"));
    assert!(page.body.contains("Einladung zum Testen"));
    assert!(page.body.contains("vollständige Verwaltung"));
    // Accept the trial without the delegated administration.
    let r = accept_confirmed(
        &e,
        &mut b,
        &local,
        &[
            ("organisation", "Tailspin"),
            ("domain", "tailspin.example"),
            ("admin_email", "it@tailspin.example"),
        ],
    )
    .await;
    assert_eq!(r.status, 303);
    let t = e
        .viewer
        .get(&format!(
            "/api/v1/offers/{}",
            trial["offer_id"].as_str().unwrap()
        ))
        .await
        .json();
    assert_eq!(t["acceptances"][0]["delegated_admin"], Value::Null);
    assert_eq!(t["acceptances"][0]["relationship"], Value::Null);

    // A standalone delegated-admin offer: accepting grants it at once (active, reminders).
    let da = create(&e.sales, json!({ "kind": "delegated_admin", "location_id": "loc-berlin", "country": "DE", "delegated_admin": "full" })).await;
    let local = da["link"]
        .as_str()
        .unwrap()
        .replace("http://127.0.0.1:8080", &e.base);
    let r = accept_confirmed(
        &e,
        &mut Browser::new("en"),
        &local,
        &[
            ("organisation", "Woodgrove"),
            ("domain", "woodgrove.example"),
            ("admin_email", "it@woodgrove.example"),
        ],
    )
    .await;
    // An existing customer: no sign-up; the page says what was granted.
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"admin-granted\""), "{}", r.body);
    assert!(r.header("location").is_none());
    let t = e
        .viewer
        .get(&format!(
            "/api/v1/offers/{}",
            da["offer_id"].as_str().unwrap()
        ))
        .await
        .json();
    let rel = &t["acceptances"][0]["relationship"];
    assert_eq!(rel["state"], "active");
    assert_eq!(rel["role"], "full");
    // Complete at once, and never abandoned after the sign-up window.
    assert_eq!(t["acceptances"][0]["state"], "completed");
    e.app.clock.advance(Span(20 * DAY));
    let s = partnerflow::offers::tasks::reconcile(&e.app.rt)
        .await
        .unwrap();
    assert!(
        s.contains("1 abandoned"),
        "only the trial's acceptance: {s}"
    );
    let t = e
        .viewer
        .get(&format!(
            "/api/v1/offers/{}",
            da["offer_id"].as_str().unwrap()
        ))
        .await
        .json();
    assert_eq!(t["acceptances"][0]["state"], "completed");
    // No request email "to review and approve" (approval happened at once): the customer's
    // confirmation says what was granted and links to the page that removes the roles.
    e.app.rt.run_due().await.unwrap();
    let rel_id = partnerflow::core::domain::InstanceId::parse(rel["id"].as_str().unwrap()).unwrap();
    let rel_mails = e.app.rt.store.emails_of(&rel_id).await.unwrap();
    assert!(
        rel_mails.iter().all(|m| m.template != "admin_request"),
        "{rel_mails:?}"
    );
    let confirmation = email_with(&e.app, &["To: it@woodgrove.example", "/r/"]);
    assert!(
        !confirmation.contains("sign-up page"),
        "a standalone offer does not send the customer to sign-up"
    );
    let timers = e
        .app
        .rt
        .store
        .timers_of(
            &partnerflow::core::domain::InstanceId::parse(rel["id"].as_str().unwrap()).unwrap(),
        )
        .await
        .unwrap();
    let names: BTreeSet<String> = timers
        .iter()
        .filter(|t| t.state == "scheduled")
        .map(|t| t.payload.timer().unwrap().timer.clone())
        .collect();
    assert_eq!(
        names,
        ["end", "reminder_1", "reminder_30", "reminder_7"]
            .map(String::from)
            .into_iter()
            .collect()
    );
}

// ------------------------------------------------------------------------------ API: roles, codes

async fn every_route_each_role_and_every_error_code(store: Store) {
    let e = env(store).await;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut note = |r: &Resp| {
        if r.status >= 400 {
            seen.insert(r.code());
        }
    };
    // The route matrix runs on its own offer (admin's POST …/withdraw withdraws it).
    let offer = create(&e.admin, purchase_body()).await;
    let id = offer["offer_id"].as_str().unwrap().to_string();

    // Each route × each role: allowed, or refused with 403; no token: 401.
    let sample = |path: &str| {
        path.replace("{offer_id}", &id)
            .replace("{mpn_id}", "1234567")
            .replace("{id}", "in_nonexistent0000000")
    };
    let doc = e.anon.get("/api/v1/openapi.json").await.json();
    for op in doc_ops(&doc) {
        let path = sample(&op.path);
        let Some(needed) = op.role else {
            let r = e.anon.get(&path).await;
            assert_eq!(r.status, 200, "{} {}", op.method, op.path);
            continue;
        };
        for (api, role) in [
            (&e.admin, Role::Admin),
            (&e.sales, Role::SalesAgent),
            (&e.viewer, Role::Viewer),
            (&e.signups, Role::Signups),
            (&e.anon, Role::Viewer),
        ] {
            let anon = api.token.is_none();
            let r = match op.method.as_str() {
                "get" => api.get(&path).await,
                "delete" => api.delete(&path).await,
                _ => api.post(&path, json!({})).await,
            };
            note(&r);
            if anon {
                assert_eq!(
                    r.status, 401,
                    "{} {} without a token: {}",
                    op.method, op.path, r.body
                );
                assert_eq!(
                    r.header("www-authenticate"),
                    Some("Bearer realm=\"partnerflow\"")
                );
            } else if role.allows(needed) {
                assert!(
                    r.status != 401 && r.status != 403,
                    "{} {} as {role}: {} {}",
                    op.method,
                    op.path,
                    r.status,
                    r.body
                );
            } else {
                assert_eq!(
                    r.status, 403,
                    "{} {} as {role}: {}",
                    op.method, op.path, r.body
                );
                assert_eq!(r.code(), "forbidden");
                let m = r.json()["error"]["message"].as_str().unwrap().to_string();
                if needed == Role::Admin {
                    assert_eq!(m, "this needs the role `admin`");
                } else {
                    assert_eq!(m, format!("this needs the role `{needed}` (or admin)"));
                }
            }
        }
    }
    // A revoked token and a made-up one are refused.
    let (row, t) = partnerflow::offers::create_token(&e.app.rt, "to revoke", Role::Admin)
        .await
        .unwrap();
    assert_eq!(e.anon.with(&t).get("/api/v1/offers").await.status, 200);
    assert!(
        e.app
            .rt
            .store
            .revoke_token(&row.id, e.app.rt.clock.now())
            .await
            .unwrap()
    );
    assert_eq!(e.anon.with(&t).get("/api/v1/offers").await.status, 401);
    let forged = format!(
        "{}{}",
        &t[..t.len() - 1],
        if t.ends_with('a') { 'b' } else { 'a' }
    );
    assert_eq!(e.anon.with(&forged).get("/api/v1/offers").await.status, 401);

    // Every error code, each with its field where one applies.
    let past = (e.app.rt.clock.now().plus(Span(-DAY))).to_rfc3339();
    let cases: Vec<(Resp, &str, Option<&str>)> = vec![
        (e.sales.post_raw("/api/v1/offers", "{not json").await, "invalid_request", Some("body")),
        (e.sales.post("/api/v1/offers", json!({ "kind": "trial", "location_id": "loc-berlin", "country": "DE", "colour": "red" })).await, "invalid_request", Some("colour")),
        (e.sales.post("/api/v1/offers", json!({ "kind": "lease", "location_id": "loc-berlin", "country": "DE" })).await, "invalid_request", Some("kind")),
        (e.sales.post("/api/v1/offers", json!({ "kind": "delegated_admin", "location_id": "loc-berlin", "country": "XX", "delegated_admin": "full" })).await, "invalid_field", Some("country")),
        (e.viewer.get("/api/v1/catalog?country=ZZ").await, "invalid_field", Some("country")),
        (e.sales.post("/api/v1/offers", json!({ "kind": "trial", "location_id": "loc-berlin", "country": "DE", "products": [{ "id": "m365-e3-trial" }], "expires_at": past })).await, "invalid_field", Some("expires_at")),
        (e.sales.post("/api/v1/offers", json!({ "kind": "purchase", "location_id": "loc-berlin", "country": "DE", "products": [{ "id": "no-such-product", "licences": 1 }] })).await, "unknown_product", Some("products[0].id")),
        (e.sales.post("/api/v1/offers", json!({ "kind": "purchase", "location_id": "loc-berlin", "country": "DE", "products": [{ "id": "m365-e3", "licences": 5 }, { "id": "teams-essentials", "licences": 5 }] })).await, "product_not_available", Some("products[1].id")),
        (e.sales.post("/api/v1/offers", json!({ "kind": "purchase", "location_id": "loc-berlin", "country": "DE", "products": [{ "id": "m365-business-premium", "licences": 301 }] })).await, "licence_count_out_of_range", Some("products[0].licences")),
        (e.sales.post("/api/v1/offers", json!({ "kind": "trial", "location_id": "loc-hamburg", "country": "DE", "products": [{ "id": "m365-e3-trial" }] })).await, "location_not_synced", Some("location_id")),
        (e.viewer.get("/api/v1/offers/PF-ZZZZZZZZZZZZ").await, "offer_not_found", None),
        (e.viewer.get("/api/v1/offers/12345").await, "invalid_request", Some("offer_id")),
        (e.viewer.get("/api/v1/resellers/7654321").await, "not_found", None),
        (e.viewer.get("/api/v1/nothing-here").await, "route_not_found", None),
        (e.viewer.get("/api/v1/offers?colour=red").await, "invalid_request", Some("colour")),
        (e.admin.post("/api/v1/instances", json!({ "workflow": "nope" })).await, "unknown_workflow", None),
        (e.admin.post("/api/v1/instances", json!({ "workflow": "trial_invitation", "data": { "offer_id": 5 } })).await, "invalid_data", None),
    ];
    for (r, code, field) in &cases {
        note(r);
        assert_eq!(&r.code(), code, "{}", r.body);
        assert_eq!(r.json()["error"]["field"].as_str(), *field, "{}", r.body);
        assert!(!r.json()["error"]["message"].as_str().unwrap().is_empty());
    }
    // Nothing was recorded by the refused creations.
    assert_eq!(
        e.viewer.get("/api/v1/offers").await.json()["offers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let id = create(&e.admin, purchase_body()).await["offer_id"]
        .as_str()
        .unwrap()
        .to_string();

    // offer_closed: invite on a withdrawn offer; event_rejected: withdraw it twice.
    let w = e
        .admin
        .post(&format!("/api/v1/offers/{id}/withdraw"), json!({}))
        .await;
    assert_eq!(w.status, 200, "{}", w.body);
    assert_eq!(w.json()["state"], "withdrawn");
    let r = e
        .sales
        .post(
            &format!("/api/v1/offers/{id}/invitations"),
            json!({ "recipient": "a@b.example" }),
        )
        .await;
    note(&r);
    assert_eq!(r.code(), "offer_closed");
    let r = e
        .admin
        .post(&format!("/api/v1/offers/{id}/withdraw"), json!({}))
        .await;
    note(&r);
    assert_eq!(r.code(), "event_rejected");
    // conflict: associating a reseller whose request is not accepted.
    let r = e
        .admin
        .post(
            "/api/v1/resellers",
            json!({ "mpn_id": "7654321", "name": "Reseller", "email": "r@reseller.example" }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = e
        .admin
        .post(
            "/api/v1/resellers/7654321/customers",
            json!({ "domain": "fabrikam.example" }),
        )
        .await;
    note(&r);
    assert_eq!(r.code(), "conflict");
    // store_unavailable: the database goes away.
    e.app.rt.store.close().await;
    let r = e.viewer.get("/api/v1/offers").await;
    note(&r);
    assert_eq!(r.status, 503);
    assert_eq!(r.code(), "store_unavailable");

    let all: BTreeSet<String> = ERROR_CODES.iter().map(|c| c.0.to_string()).collect();
    assert_eq!(seen, all, "every error code is produced through the router");
}

/// One operation of the served OpenAPI document: its method, path, the role its bearer
/// requirement names (None: public) and the operation object.
struct DocOp {
    method: String,
    path: String,
    role: Option<Role>,
    op: Value,
}

fn doc_ops(doc: &Value) -> Vec<DocOp> {
    let mut ops = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, op) in methods.as_object().unwrap() {
            let role = op["security"].as_array().map(|reqs| {
                assert_eq!(reqs.len(), 1, "{method} {path}: one security requirement");
                let roles = reqs[0]["bearer"].as_array().unwrap();
                assert_eq!(roles.len(), 1, "{method} {path}: one role");
                Role::parse(roles[0].as_str().unwrap()).unwrap()
            });
            ops.push(DocOp {
                method: method.clone(),
                path: path.clone(),
                role,
                op: op.clone(),
            });
        }
    }
    ops
}

/// A schema with its `$ref`s followed, in the document.
fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    match s["$ref"].as_str() {
        Some(r) => resolve(doc, doc.pointer(r.trim_start_matches('#')).unwrap()),
        None => s,
    }
}

/// A value the schema allows, built from the document alone: its example where it gives
/// one, else the first enum value, else a value of its type (an object with its required
/// properties and those optional ones that have an example). The flag: whether the value
/// came from the document's examples or enums (optional properties are sent only then).
fn sample_of(doc: &Value, s: &Value) -> (Value, bool) {
    let s = resolve(doc, s);
    if let Some(x) = s.get("example") {
        return (x.clone(), true);
    }
    if let Some(x) = s["examples"].as_array().and_then(|a| a.first()) {
        return (x.clone(), true);
    }
    if let Some(x) = s["enum"].as_array().and_then(|a| a.first()) {
        return (x.clone(), true);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(v) = s[key].as_array() {
            let first = v.iter().find(|v| v["type"] != "null").unwrap();
            return sample_of(doc, first);
        }
    }
    let ty = match &s["type"] {
        Value::Array(a) => a
            .iter()
            .find(|t| *t != "null")
            .cloned()
            .unwrap_or(Value::Null),
        t => t.clone(),
    };
    match ty.as_str() {
        Some("object") | None if s.get("properties").is_some() => {
            let required: Vec<&str> = s["required"]
                .as_array()
                .map(|r| r.iter().map(|v| v.as_str().unwrap()).collect())
                .unwrap_or_default();
            let mut m = serde_json::Map::new();
            for (k, p) in s["properties"].as_object().unwrap() {
                let (v, explicit) = sample_of(doc, p);
                if explicit || required.contains(&k.as_str()) {
                    m.insert(k.clone(), v);
                }
            }
            (Value::Object(m), true)
        }
        Some("array") => match sample_of(doc, &s["items"]) {
            (v, true) => (json!([v]), true),
            _ => (json!([]), false),
        },
        Some("string") => match s["format"].as_str() {
            Some("date-time") => (json!("2026-11-22T10:00:00Z"), false),
            Some("email") => (json!("it@contoso.example"), false),
            _ => (json!("x"), false),
        },
        Some("integer") | Some("number") => (s.get("minimum").cloned().unwrap_or(json!(1)), false),
        Some("boolean") => (json!(false), false),
        _ => (json!({}), false),
    }
}

/// The document the router serves describes the router: every documented operation is
/// routed, refuses a request without a token when it needs one (401, documented), and takes
/// a request built from the document alone (path parameters of real resources, the role
/// it names, every documented query parameter, a body from the document's schema and
/// examples in each documented content type) with one of its documented statuses — never
/// 400 (the document allowed the request) and a success unless listed below with why.
async fn openapi_document_is_what_the_router_does(store: Store) {
    let e = env(store).await;
    let doc = e.anon.get("/api/v1/openapi.json").await.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert!(doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer");
    let codes: Vec<&str> =
        doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
    assert_eq!(codes, ERROR_CODES.iter().map(|c| c.0).collect::<Vec<_>>());

    // Real resources for the path parameters.
    let offer = create(&e.sales, purchase_body()).await;
    let offer_id = offer["offer_id"].as_str().unwrap().to_string();
    let r = e
        .admin
        .post(
            "/api/v1/resellers",
            json!({ "mpn_id": "1234567", "name": "Reseller", "email": "r@reseller.example" }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = e
        .sales
        .post(
            "/api/v1/campaigns",
            json!({ "offer_id": offer_id, "name": "c" }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let campaign = r.json()["id"].as_str().unwrap().to_string();
    let r = e
        .admin
        .post(
            "/api/v1/instances",
            json!({ "workflow": "trial_invitation", "data": common::trial_data(1) }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let instance = r.json()["id"].as_str().unwrap().to_string();
    let (_, bounces) = partnerflow::offers::create_token(&e.app.rt, "test bounces", Role::Bounces)
        .await
        .unwrap();
    let bounces = e.anon.with(&bounces);
    let (_, metrics) = partnerflow::offers::create_token(&e.app.rt, "test metrics", Role::Metrics)
        .await
        .unwrap();
    let metrics = e.anon.with(&metrics);
    let token_of = |role: Role| match role {
        Role::Admin => &e.admin,
        Role::SalesAgent => &e.sales,
        Role::Viewer => &e.viewer,
        Role::Signups => &e.signups,
        Role::Bounces => &bounces,
        Role::Metrics => &metrics,
    };
    // Answers other than a success that the document's own requests get, and why.
    let not_a_success: &[(&str, &str, u16, &str)] = &[
        // A real advisor code carries the offer's MAC: no document example can.
        ("post", "/api/v1/signups", 422, "advisor_code"),
        // The reseller has not accepted the partnership request (its own link does that).
        ("post", "/api/v1/resellers/{mpn_id}/customers", 409, ""),
    ];

    let mut ops = doc_ops(&doc);
    // Campaign steps in their order; what ends a resource last.
    let rank = |o: &DocOp| {
        let p = o.path.as_str();
        match () {
            _ if o.method == "delete" || p.ends_with("/withdraw") || p.ends_with("/cancel") => 9,
            _ if p.ends_with("/start") => 2,
            _ if p.ends_with("/pause") => 3,
            _ if p.ends_with("/resume") => 4,
            _ => 1,
        }
    };
    ops.sort_by_key(|o| rank(o));
    assert!(ops.len() >= 31, "{} operations", ops.len());
    for o in &ops {
        let what = format!("{} {}", o.method, o.path);
        let id = if o.path.starts_with("/api/v1/campaigns") {
            &campaign
        } else {
            &instance
        };
        let mut url = o
            .path
            .replace("{offer_id}", &offer_id)
            .replace("{mpn_id}", "1234567")
            .replace("{id}", id);
        assert!(
            !url.contains('{'),
            "{what}: a path parameter without a value"
        );
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        let mut any_query = false;
        for p in o.op["parameters"].as_array().into_iter().flatten() {
            if p["in"] == "query" {
                let v = match p.get("example") {
                    Some(x) => x.clone(),
                    None if p["required"] == true => sample_of(&doc, &p["schema"]).0,
                    None => continue,
                };
                let v = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                query.append_pair(p["name"].as_str().unwrap(), &v);
                any_query = true;
            }
        }
        if any_query {
            url = format!("{url}?{}", query.finish());
        }
        let documented = |status: u16| o.op["responses"].get(status.to_string()).is_some();
        let method = o.method.to_uppercase();
        let url = format!("{}{url}", e.base);
        let auth = |api: &common::web::Api| {
            api.token
                .iter()
                .map(|t| ("Authorization".to_string(), format!("Bearer {t}")))
                .collect::<Vec<_>>()
        };
        // The bodies the document allows, one per content type.
        let mut bodies: Vec<Option<(&'static str, String)>> = Vec::new();
        match o.op["requestBody"]["content"].as_object() {
            None => bodies.push(None),
            Some(content) => {
                for (ct, media) in content {
                    let ct: &'static str = match ct.as_str() {
                        "application/json" => "application/json",
                        "text/csv" => "text/csv",
                        "message/rfc822" => "message/rfc822",
                        other => panic!("{what}: a content type this test does not know: {other}"),
                    };
                    let body = match media.get("example") {
                        Some(Value::String(s)) if ct != "application/json" => s.clone(),
                        Some(x) => x.to_string(),
                        None => {
                            assert_eq!(ct, "application/json", "{what}: {ct} without an example");
                            let mut v = sample_of(&doc, &media["schema"]).0;
                            // An id in a body names a real resource, as a path's does.
                            if v.get("offer_id").is_some() {
                                v["offer_id"] = json!(offer_id);
                            }
                            v.to_string()
                        }
                    };
                    bodies.push(Some((ct, body)));
                }
            }
        }
        for body in bodies {
            if o.role.is_some() {
                let r = common::web::request(&method, url.clone(), vec![], body.clone()).await;
                assert_eq!(r.status, 401, "{what} without a token: {}", r.body);
                assert!(documented(401), "{what}: 401 not documented");
            }
            let headers = o.role.map(|role| auth(token_of(role))).unwrap_or_default();
            let r = common::web::request(&method, url.clone(), headers, body.clone()).await;
            let sent = body.as_ref().map(|b| b.1.as_str()).unwrap_or("");
            assert_ne!(r.status, 405, "{what}: not routed for this method");
            assert_ne!(
                r.code(),
                "route_not_found",
                "{what}: documented but not routed"
            );
            assert_ne!(
                r.status, 400,
                "{what}: the document allows {url} {sent}, the handler refused it: {}",
                r.body
            );
            assert!(
                documented(r.status),
                "{what}: answered {} (not documented): {}",
                r.status,
                r.body
            );
            match not_a_success
                .iter()
                .find(|(m, p, ..)| *m == o.method && *p == o.path)
            {
                Some((_, _, status, field)) => {
                    assert_eq!(r.status, *status, "{what}: {}", r.body);
                    if !field.is_empty() {
                        assert_eq!(r.json()["error"]["field"], *field, "{what}: {}", r.body);
                    }
                }
                None => assert!(
                    (200..300).contains(&r.status),
                    "{what} as {:?} with {sent}: {} {}",
                    o.role,
                    r.status,
                    r.body
                ),
            }
        }
    }
}

// ------------------------------------------------------------------------------ security

async fn customer_pages_refuse_tampering_and_record_nothing(store: Store) {
    let e = env(store).await;
    let o = create(&e.sales, purchase_body()).await;
    let id = o["offer_id"].as_str().unwrap().to_string();
    let link = o["link"]
        .as_str()
        .unwrap()
        .replace("http://127.0.0.1:8080", &e.base);
    let code = link.rsplit('/').next().unwrap().to_string();
    let prefix = link.trim_end_matches(&code).to_string();

    // Any byte of the code changed: 404, the same page as an unknown offer.
    let alphabet = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789abcdefghijklmnopqrstuvwxyz01-_.";
    for i in 0..code.len() {
        let mut bytes = code.clone().into_bytes();
        let orig = bytes[i];
        bytes[i] = *alphabet
            .iter()
            .find(|c| **c != orig && (orig != b'.' || **c != b'.'))
            .unwrap();
        let tampered = String::from_utf8(bytes).unwrap();
        let r = Browser::new("en").get(&format!("{prefix}{tampered}")).await;
        assert_eq!(r.status, 404, "byte {i} changed: {tampered}");
        assert!(r.body.contains("Offer not found"));
    }
    // An unknown key id with a well-formed MAC.
    let parts_: Vec<&str> = code.splitn(3, '.').collect();
    let r = Browser::new("en")
        .get(&format!("{prefix}kzzzz.{}.{}", parts_[1], parts_[2]))
        .await;
    assert_eq!(r.status, 404);
    let r = Browser::new("en").get(&format!("{prefix}garbage")).await;
    assert_eq!(r.status, 404);

    // Missing CSRF: no cookie, no token, a token for another page, a foreign Origin.
    let mut b = Browser::new("en");
    let page = b.get(&link).await;
    let csrf = csrf_of(&page.body);
    let good: Vec<(&str, &str)> = vec![
        ("organisation", "Fabrikam"),
        ("domain", "fabrikam.example"),
        ("admin_email", "admin@fabrikam.example"),
    ];
    let mut no_cookie = Browser::new("en");
    let mut with_token = vec![("csrf", csrf.as_str())];
    with_token.extend(good.iter().cloned());
    let r = no_cookie.post_form(&link, &with_token, &[]).await;
    assert_eq!(r.status, 403);
    let r = b.post_form(&link, &good, &[]).await;
    assert_eq!(r.status, 403);
    let other = create(&e.sales, purchase_body()).await;
    let other_link = other["link"]
        .as_str()
        .unwrap()
        .replace("http://127.0.0.1:8080", &e.base);
    let r = b.post_form(&other_link, &with_token, &[]).await;
    assert_eq!(r.status, 403, "a token is bound to its page");
    let r = b
        .post_form(&link, &with_token, &[("Origin", "https://evil.example")])
        .await;
    assert_eq!(r.status, 403);

    // Licence counts out of range or not numbers, a product not on the offer: 422, the form
    // again with the customer's input (escaped), nothing recorded.
    for (field, value) in [
        ("licences.m365-e3", "0"),
        ("licences.m365-e3", "10001"),
        ("licences.m365-e3", "ten"),
        ("licences.teams-essentials", "5"),
        ("domain", "*.fabrikam.example"),
        ("admin_email", "a@b\r\nBcc: x@y.example"),
    ] {
        let mut f = with_token.clone();
        f.retain(|(k, _)| *k != field);
        f.push((field, value));
        f.push(("organisation", "<img src=x onerror=alert(1)>"));
        f.retain(|(k, v)| *k != "organisation" || v.starts_with('<'));
        let r = b.post_form(&link, &f, &[]).await;
        assert_eq!(r.status, 422, "{field}={value}: {}", r.body);
        assert!(
            r.body.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "input shown escaped"
        );
        assert!(
            !r.body.contains("<img src=x"),
            "no raw HTML from the customer"
        );
        assert!(
            r.body.contains("role=\"alert\""),
            "the errors are summarised"
        );
        if field != "licences.teams-essentials" {
            assert!(
                r.body.contains("aria-invalid=\"true\""),
                "the field is marked"
            );
        }
    }
    assert_eq!(recorded(&e, &id).await, (0, 0));
    let emails = emails_total(&e).await;
    assert_eq!(emails, 0, "nothing was mailed");

    // A location that is no longer among the synced ones and a product no longer sold there
    // are caught at acceptance too (re-checked): here, the catalog check via the API.
    let r = e.sales.post("/api/v1/offers", json!({ "kind": "trial", "location_id": "loc-berlin", "country": "FR", "products": [{ "id": "m365-e3-trial" }] })).await;
    assert_eq!(r.code(), "product_not_available");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("m365-e3-trial")
            && r.body.contains("FR")
    );

    // Withdrawn: 410 with a page that says so; posting is refused the same way.
    e.admin
        .post(&format!("/api/v1/offers/{id}/withdraw"), json!({}))
        .await;
    let r = b.get(&link).await;
    assert_eq!(r.status, 410);
    assert!(r.body.contains("withdrawn"));
    let r = b.post_form(&link, &with_token, &[]).await;
    assert_eq!(r.status, 410);
    assert_eq!(recorded(&e, &id).await, (0, 0));

    // Expired: the clock passes the expiry (before the timer even ran): 410.
    e.app.clock.advance(Span(31 * DAY));
    let r = b.get(&other_link).await;
    assert_eq!(r.status, 410);
    assert!(r.body.contains("expired"));
}

async fn offer_expiry_ends_invitations_and_tells_the_partner_once(store: Store) {
    let e = env(store).await;
    let o = create(&e.sales, json!({ "kind": "trial", "location_id": "loc-berlin", "country": "DE", "products": [{ "id": "m365-e3-trial" }], "expires_at": "2026-11-05T09:00:00Z" })).await;
    let id = o["offer_id"].as_str().unwrap();
    for n in 0..3 {
        let r = e
            .sales
            .post(
                &format!("/api/v1/offers/{id}/invitations"),
                json!({ "recipient": format!("k{n}@contoso.example") }),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    e.app.rt.run_due().await.unwrap();
    e.app.clock.advance(Span(5 * DAY));
    e.app.rt.run_due().await.unwrap();
    e.app.rt.run_due().await.unwrap();
    let t = e.viewer.get(&format!("/api/v1/offers/{id}")).await.json();
    assert_eq!(t["state"], "expired");
    let states: Vec<&str> = t["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["expired", "expired", "expired"]);
    let partner_notices = outbox_raw(&e.app)
        .iter()
        .filter(|m| m.contains("To: partner@contoso-partner.example"))
        .count();
    assert_eq!(
        partner_notices, 1,
        "one expiry notice for the offer, none per invitation"
    );
    // Filters and pages.
    create(&e.sales, purchase_body()).await;
    create(&e.sales, json!({ "kind": "delegated_admin", "location_id": "loc-wien", "country": "AT", "delegated_admin": "limited" })).await;
    let l = |q: &'static str| {
        let v = e.viewer.clone();
        async move { v.get(&format!("/api/v1/offers{q}")).await.json() }
    };
    assert_eq!(
        l("?state=expired").await["offers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        l("?state=open").await["offers"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        l("?kind=delegated_admin").await["offers"][0]["location_id"],
        "loc-wien"
    );
    assert_eq!(
        l("?location=loc-berlin").await["offers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        l("?created_from=2026-11-06").await["offers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        l("?created_to=2026-11-06").await["offers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let p1 = l("?limit=2").await;
    assert_eq!(p1["offers"].as_array().unwrap().len(), 2);
    let next = p1["next"].as_str().unwrap().to_string();
    let p2 = e
        .viewer
        .get(&format!("/api/v1/offers?limit=2&before={next}"))
        .await
        .json();
    assert_eq!(p2["offers"].as_array().unwrap().len(), 1);
    assert_eq!(p2["offers"][0]["offer_id"], id);
}

async fn abandoned_when_no_signup_within_the_window(store: Store) {
    let e = env(store).await;
    let o = create(&e.sales, purchase_body()).await;
    let local = o["link"]
        .as_str()
        .unwrap()
        .replace("http://127.0.0.1:8080", &e.base);
    let r = accept_confirmed(
        &e,
        &mut Browser::new("en"),
        &local,
        &[
            ("organisation", "Litware"),
            ("domain", "litware.example"),
            ("admin_email", "it@litware.example"),
            ("delegated_admin", "yes"),
        ],
    )
    .await;
    assert_eq!(r.status, 303);
    e.app.clock.advance(Span(13 * DAY));
    let s = partnerflow::offers::tasks::reconcile(&e.app.rt)
        .await
        .unwrap();
    assert!(s.contains("0 abandoned"), "{s}");
    e.app.clock.advance(Span(2 * DAY));
    let s = partnerflow::offers::tasks::reconcile(&e.app.rt)
        .await
        .unwrap();
    assert!(s.contains("1 abandoned"), "{s}");
    let t = e
        .viewer
        .get(&format!(
            "/api/v1/offers/{}",
            o["offer_id"].as_str().unwrap()
        ))
        .await
        .json();
    assert_eq!(t["acceptances"][0]["state"], "abandoned");
    assert_eq!(t["acceptances"][0]["relationship"]["state"], "terminated");
}

async fn reseller_partnership_customers_and_removal(store: Store) {
    let e = env(store).await;
    // A customer to associate.
    let o = create(&e.sales, purchase_body()).await;
    let local = o["link"]
        .as_str()
        .unwrap()
        .replace("http://127.0.0.1:8080", &e.base);
    accept_confirmed(
        &e,
        &mut Browser::new("en"),
        &local,
        &[
            ("organisation", "Fabrikam"),
            ("domain", "fabrikam.example"),
            ("admin_email", "it@fabrikam.example"),
        ],
    )
    .await;
    let acc = e
        .viewer
        .get(&format!(
            "/api/v1/offers/{}",
            o["offer_id"].as_str().unwrap()
        ))
        .await
        .json()["acceptances"][0]["instance_id"]
        .as_str()
        .unwrap()
        .to_string();

    let r = e.admin.post("/api/v1/resellers", json!({ "mpn_id": "1234567", "name": "Northwind <Resale>", "email": "partner@northwind.example" })).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["state"], "request_sent");
    let r = e
        .admin
        .post(
            "/api/v1/resellers",
            json!({ "mpn_id": "1234567", "name": "Again", "email": "partner@northwind.example" }),
        )
        .await;
    assert_eq!(r.code(), "conflict", "one open request per reseller");
    e.app.rt.run_due().await.unwrap();
    let mail = email_with(&e.app, &["To: partner@northwind.example"]);
    let link = link_in(&mail, "http://127.0.0.1:8080/p/")
        .expect("personal link")
        .replace("http://127.0.0.1:8080", &e.base);
    let mut b = Browser::new("en");
    let p = b.get(&link).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("Northwind &lt;Resale&gt;"));
    // A tampered personal link leads nowhere.
    let last = if link.ends_with('A') { 'B' } else { 'A' };
    let bad = format!("{}{last}", &link[..link.len() - 1]);
    assert_eq!(Browser::new("en").get(&bad).await.status, 404);
    let csrf = csrf_of(&p.body);
    assert_eq!(b.post_form(&link, &[], &[]).await.status, 403);
    let done = b.post_form(&link, &[("csrf", &csrf)], &[]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        e.viewer.get("/api/v1/resellers/1234567").await.json()["state"],
        "active"
    );

    let r = e
        .admin
        .post(
            "/api/v1/resellers/1234567/customers",
            json!({ "acceptance_id": acc, "support_contact": true }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["customers"][0]["domain"], "fabrikam.example");
    assert_eq!(r.json()["customers"][0]["support_contact"], true);
    let r = e
        .admin
        .post(
            "/api/v1/resellers/1234567/customers",
            json!({ "domain": "unknown.example" }),
        )
        .await;
    assert_eq!(r.code(), "not_found");
    let c = e
        .viewer
        .get("/api/v1/customers?q=fabrikam.example")
        .await
        .json();
    assert_eq!(c["customers"][0]["resellers"][0]["mpn_id"], "1234567");
    assert_eq!(c["customers"][0]["resellers"][0]["support_contact"], true);

    let r = e.admin.delete("/api/v1/resellers/1234567").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["state"], "removed");
    assert_eq!(
        r.json()["customers"].as_array().unwrap().len(),
        1,
        "customers stay"
    );
    let c = e
        .viewer
        .get("/api/v1/customers?q=fabrikam.example")
        .await
        .json();
    assert_eq!(c["customers"].as_array().unwrap().len(), 1);
    // The association stays, but a removed reseller is no one's support contact.
    let rs = &c["customers"][0]["resellers"][0];
    assert_eq!(rs["mpn_id"], "1234567", "{c}");
    assert_eq!(rs["support_contact"], false, "{c}");
    assert_eq!(rs["partnership"], "removed", "{c}");
    // The old link now shows the request can no longer be accepted.
    assert_eq!(Browser::new("en").get(&link).await.status, 410);
}

on_both_stores!(
    purchase_offer_from_invitation_to_completed_signup,
    trial_without_delegated_admin_and_standalone_admin_offer,
    every_route_each_role_and_every_error_code,
    openapi_document_is_what_the_router_does,
    customer_pages_refuse_tampering_and_record_nothing,
    offer_expiry_ends_invitations_and_tells_the_partner_once,
    abandoned_when_no_signup_within_the_window,
    reseller_partnership_customers_and_removal,
);
