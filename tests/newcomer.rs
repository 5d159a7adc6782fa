//! What a new user trips over (issue "newcomer"): the public address follows the port, and a
//! form refused for its Origin says that the address does not match.

#[macro_use]
mod common;

use common::Store;
use common::web::{Api, Browser, confirm_at, confirmations_to, csrf_of, serve, submit_accept};
use partnerflow::core::config::Settings;
use partnerflow::core::domain::Role;
use serde_json::json;

const FABRIKAM: [(&str, &str); 3] = [
    ("organisation", "Fabrikam"),
    ("domain", "fabrikam.example"),
    ("admin_email", "it@fabrikam.example"),
];
const WOODGROVE: [(&str, &str); 3] = [
    ("organisation", "Woodgrove"),
    ("domain", "woodgrove.example"),
    ("admin_email", "it@woodgrove.example"),
];

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn public_base_url_follows_the_bind_address_unless_set() {
    let s = Settings::load(
        None,
        &env(&[("PARTNERFLOW__HTTP__BIND", "127.0.0.1:18200")]),
    )
    .unwrap();
    assert_eq!(s.app.public_base_url.as_str(), "http://127.0.0.1:18200/");
    let s = Settings::load(None, &env(&[("PARTNERFLOW__HTTP__BIND", "0.0.0.0:9000")])).unwrap();
    assert_eq!(s.app.public_base_url.as_str(), "http://127.0.0.1:9000/");
    let s = Settings::load(None, &[]).unwrap();
    assert_eq!(s.app.public_base_url.as_str(), "http://127.0.0.1:8080/");
    let s = Settings::load(
        None,
        &env(&[
            ("PARTNERFLOW__HTTP__BIND", "127.0.0.1:18200"),
            (
                "PARTNERFLOW__APP__PUBLIC_BASE_URL",
                "https://offers.partner.example",
            ),
        ]),
    )
    .unwrap();
    assert_eq!(
        s.app.public_base_url.as_str(),
        "https://offers.partner.example/"
    );
}

async fn a_foreign_origin_is_named_on_the_page(store: Store) {
    let s = shop(store, &[]).await;
    let (_, link) = s
        .offer(json!({ "kind": "trial", "location_id": "loc-berlin", "country": "DE", "products": [{ "id": "m365-e3-trial" }] }))
        .await;
    let mut b = Browser::new("en");
    let page = b.get(&link).await;
    let csrf = csrf_of(&page.body);
    // The browser reached us on another port than the configured public address.
    let r = b
        .post_form(
            &link,
            &[
                ("csrf", csrf.as_str()),
                ("organisation", "Fabrikam"),
                ("domain", "fabrikam.example"),
                ("admin_email", "it@fabrikam.example"),
            ],
            &[("Origin", "http://127.0.0.1:18200")],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("the address does not match"), "{}", r.body);
    assert!(!r.body.contains("cookies are blocked"), "{}", r.body);
}

/// Auto-extension is the partner's choice per offer, for limited administration only; the
/// customer sees it before accepting, and the relationship carries it.
async fn auto_extension_is_chosen_per_offer_for_limited_only(store: Store) {
    let s = shop(store, &[]).await;
    let full = s.sales
        .post(
            "/api/v1/offers",
            json!({ "kind": "delegated_admin", "location_id": "loc-berlin", "country": "DE", "delegated_admin": "full", "auto_extend": true }),
        )
        .await;
    assert_eq!(full.code(), "invalid_field", "{}", full.body);
    assert_eq!(
        full.json()["error"]["field"],
        "auto_extend",
        "{}",
        full.body
    );
    let none = s
        .sales
        .post(
            "/api/v1/offers",
            json!({ "kind": "trial", "location_id": "loc-berlin", "country": "DE", "products": [{ "id": "m365-e3-trial" }], "auto_extend": true }),
        )
        .await;
    assert_eq!(none.code(), "invalid_field", "{}", none.body);
    let (_, link) = s
        .offer(json!({ "kind": "delegated_admin", "location_id": "loc-berlin", "country": "DE", "delegated_admin": "limited", "auto_extend": true }))
        .await;
    let mut b = Browser::new("en");
    let page = b.get(&link).await;
    assert!(
        page.body.contains("extended automatically by 180 days"),
        "{}",
        page.body
    );
    // Accept and confirm from the mailbox: the relationship auto-extends.
    let r = submit_accept(&mut b, &link, &WOODGROVE).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let c = s.confirmation_link("it@woodgrove.example").await;
    let p = b.get(&c).await;
    assert!(p.body.contains("extended automatically"), "{}", p.body);
    assert_eq!(confirm_at(&mut b, &c).await.status, 200);
    let rel: Vec<_> = partnerflow::offers::search_customers(&s.app.rt, "woodgrove.example")
        .await
        .unwrap();
    let rel = rel[0].acceptances[0].relationship.clone().unwrap();
    assert_eq!(rel.state, "active");
    let inst = s.app.rt.store.instance(&rel.id).await.unwrap();
    assert_eq!(inst.data["auto_extend"], true);
    // An offer without it: the page says the relationship is not extended.
    let (_, link) = s
        .offer(json!({ "kind": "delegated_admin", "location_id": "loc-berlin", "country": "DE", "delegated_admin": "limited" }))
        .await;
    let page = Browser::new("de").get(&link).await;
    assert!(
        page.body.contains("nicht automatisch verlängert"),
        "{}",
        page.body
    );
}

/// A location the latest sync no longer lists is unavailable: new offers refused (saying
/// since when), customers of its open offers told on the page, the partner told once.
async fn a_location_removed_from_the_source_becomes_unavailable(store: Store) {
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("locations.json");
    let both = std::fs::read_to_string(common::manifest("config/locations.json")).unwrap();
    std::fs::write(&file, &both).unwrap();
    let path = file.display().to_string();
    let s = shop(
        store,
        &[(
            "PARTNERFLOW__SCHEDULES__LOCATION_SYNC__SOURCE",
            path.as_str(),
        )],
    )
    .await;
    let (id, link) = s
        .offer(json!({ "kind": "trial", "location_id": "loc-wien", "country": "AT", "products": [{ "id": "m365-business-premium-trial" }] }))
        .await;
    // A customer accepts before the removal (confirmation still pending).
    let mut b = Browser::new("en");
    let r = submit_accept(&mut b, &link, &FABRIKAM).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (app, sales) = (&s.app, &s.sales);
    app.rt.run_due().await.unwrap();
    let mails_before = app.outbox().len();

    // The source drops loc-wien.
    let only_berlin: Vec<serde_json::Value> = serde_json::from_str::<Vec<serde_json::Value>>(&both)
        .unwrap()
        .into_iter()
        .filter(|l| l["id"] == "loc-berlin")
        .collect();
    std::fs::write(&file, serde_json::to_string(&only_berlin).unwrap()).unwrap();
    app.clock.advance(partnerflow::core::domain::Span(60_000));
    let summary = partnerflow::offers::tasks::location_sync(&app.rt)
        .await
        .unwrap();
    assert!(summary.contains("1 no longer listed"), "{summary}");
    // Told once: a second sync tells nobody again.
    app.clock.advance(partnerflow::core::domain::Span(60_000));
    let summary = partnerflow::offers::tasks::location_sync(&app.rt)
        .await
        .unwrap();
    assert!(summary.contains("0 no longer listed"), "{summary}");
    app.rt.run_due().await.unwrap();
    let new: Vec<String> = app
        .outbox()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .filter(|m| m.contains("loc-wien"))
        .collect();
    assert_eq!(app.outbox().len(), mails_before + 1, "one notice");
    assert_eq!(new.len(), 1);
    assert!(new[0].contains("To: partner@contoso-partner.example"));
    assert!(new[0].contains(&id), "the notice lists the open offer");

    // Listed no more; new offers refused, saying since when.
    let locs = sales.get("/api/v1/locations").await.json();
    assert_eq!(locs["locations"].as_array().unwrap().len(), 1, "{locs}");
    let r = sales
        .post(
            "/api/v1/offers",
            json!({ "kind": "trial", "location_id": "loc-wien", "country": "AT", "products": [{ "id": "m365-business-premium-trial" }] }),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("no longer available") && r.body.contains("since 2026-11-01T09:01:00"),
        "{}",
        r.body
    );
    // The customer is told on the page; the pending confirmation leads to the same.
    let p = Browser::new("en").get(&link).await;
    assert_eq!(p.status, 410, "{}", p.body);
    assert!(p.body.contains("id=\"location-gone\""), "{}", p.body);
    let c = s.confirmation_link("it@fabrikam.example").await;
    let p = b.get(&c).await;
    assert_eq!(p.status, 410, "{}", p.body);
    assert!(p.body.contains("id=\"location-gone\""));

    // Listed again: available again.
    std::fs::write(&file, &both).unwrap();
    app.clock.advance(partnerflow::core::domain::Span(60_000));
    partnerflow::offers::tasks::location_sync(&app.rt)
        .await
        .unwrap();
    assert_eq!(Browser::new("en").get(&link).await.status, 200);
}

// Issue 12, items 12 and 13: the customer's pages and emails, as a new customer reads them.

const DAY: i64 = 86_400_000;

struct Shop {
    app: common::TestApp,
    base: String,
    sales: Api,
    admin: Api,
}

async fn shop(store: Store, extra: &[(&str, &str)]) -> Shop {
    let app = common::spawn_app(store, extra).await;
    partnerflow::offers::tasks::location_sync(&app.rt)
        .await
        .unwrap();
    let base = serve(&app).await;
    let mut apis = Vec::new();
    for role in [Role::SalesAgent, Role::Admin] {
        let (_, t) = partnerflow::offers::create_token(&app.rt, &format!("t {role}"), role)
            .await
            .unwrap();
        apis.push(Api {
            base: base.clone(),
            token: Some(t),
        });
    }
    let admin = apis.pop().unwrap();
    let sales = apis.pop().unwrap();
    Shop {
        app,
        base,
        sales,
        admin,
    }
}

impl Shop {
    /// Creates an offer; returns its Offer ID and its link, served locally.
    async fn offer(&self, body: serde_json::Value) -> (String, String) {
        let r = self.sales.post("/api/v1/offers", body).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let o = r.json();
        let link = o["link"]
            .as_str()
            .unwrap()
            .replace("http://127.0.0.1:8080", &self.base);
        (o["offer_id"].as_str().unwrap().to_string(), link)
    }

    /// The confirmation link mailed to `to` (delivered now), served locally.
    async fn confirmation_link(&self, to: &str) -> String {
        self.app.rt.run_due().await.unwrap();
        confirmations_to(&self.app, to, "http://127.0.0.1:8080", &self.base)
            .pop()
            .expect("a confirmation link")
            .1
    }
}

fn trial() -> serde_json::Value {
    json!({ "kind": "trial", "location_id": "loc-berlin", "country": "DE", "products": [{ "id": "m365-e3-trial" }] })
}

fn purchase() -> serde_json::Value {
    json!({ "kind": "purchase", "location_id": "loc-berlin", "country": "DE", "products": [{ "id": "m365-e3", "licences": 5 }] })
}

/// The text between `<dt>{term}</dt><dd>` and `</dd>`.
fn dd<'a>(page: &'a str, term: &str) -> &'a str {
    let open = format!("<dt>{term}</dt><dd>");
    let i = page
        .find(&open)
        .unwrap_or_else(|| panic!("no {open} in {page}"))
        + open.len();
    page[i..].split("</dd>").next().unwrap()
}

async fn a_closed_offer_says_its_state_in_the_page_language(store: Store) {
    let s = shop(store, &[]).await;
    let (withdrawn, withdrawn_link) = s.offer(trial()).await;
    let (_, expired_link) = s.offer(purchase()).await;
    let r = s
        .admin
        .post(&format!("/api/v1/offers/{withdrawn}/withdraw"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let de = Browser::new("de").get(&withdrawn_link).await;
    assert_eq!(de.status, 410);
    assert_eq!(dd(&de.body, "Status"), "zurückgezogen", "{}", de.body);
    assert!(!de.body.contains("withdrawn"), "{}", de.body);
    let en = Browser::new("en").get(&withdrawn_link).await;
    assert_eq!(dd(&en.body, "State"), "withdrawn", "{}", en.body);

    s.app
        .clock
        .advance(partnerflow::core::domain::Span(91 * DAY));
    let de = Browser::new("de").get(&expired_link).await;
    assert_eq!(de.status, 410);
    assert_eq!(dd(&de.body, "Status"), "abgelaufen", "{}", de.body);
    assert!(!de.body.contains("expired"), "{}", de.body);
    let en = Browser::new("en").get(&expired_link).await;
    assert_eq!(dd(&en.body, "State"), "expired", "{}", en.body);
}

async fn the_trial_page_says_what_a_trial_is_and_offers_no_licence_counts(store: Store) {
    let s = shop(store, &[]).await;
    let (_, trial_link) = s.offer(trial()).await;
    let (_, purchase_link) = s.offer(purchase()).await;
    for (lang, licences, free) in [
        ("de", "Anzahl der Lizenzen", ["kostenlos", "30 Tage"]),
        ("en", "number of licences", ["free of charge", "30 days"]),
    ] {
        let t = Browser::new(lang).get(&trial_link).await;
        assert_eq!(t.status, 200, "{}", t.body);
        assert!(!t.body.contains(licences), "{lang}: {}", t.body);
        assert!(!t.body.contains("type=\"number\""), "{lang}: {}", t.body);
        for f in free {
            assert!(t.body.contains(f), "{lang}: {f} in {}", t.body);
        }
        let p = Browser::new(lang).get(&purchase_link).await;
        assert!(p.body.contains(licences), "{lang}: {}", p.body);
        assert!(!p.body.contains(free[0]), "{lang}: {}", p.body);
    }
}

/// The offer page's headings stand apart from the rows above them ("valid until"): an h2
/// has room above it, except at the top of its box.
async fn headings_stand_apart_from_the_rows_above(store: Store) {
    let s = shop(store, &[]).await;
    let (_, link) = s.offer(purchase()).await;
    let page = Browser::new("de").get(&link).await.body;
    assert!(
        page.contains("<dt>Gültig bis</dt><dd>") && page.contains("</dl>\n<h2>"),
        "{page}"
    );
    let style = page
        .split("<style>")
        .nth(1)
        .unwrap()
        .split("</style>")
        .next()
        .unwrap();
    assert!(
        style.contains("h2{font-size:1.15rem;margin:1.5rem 0 .5rem}"),
        "h2 has room above: {style}"
    );
    assert!(style.contains("h2:first-child{margin-top:0}"), "{style}");
}

const PROVIDER: &str = "Fabrikam Cloud & Co";

async fn the_provider_is_named_on_pages_and_in_emails(store: Store) {
    let s = shop(store, &[("PARTNERFLOW__PARTNER__PROVIDER_NAME", PROVIDER)]).await;
    let escaped = "Fabrikam Cloud &amp; Co";
    let (trial_id, trial_link) = s.offer(trial()).await;
    let (purchase_id, purchase_link) = s.offer(purchase()).await;
    for (lang, authorised, billed, old) in [
        (
            "de",
            format!("autorisierter Partner von {escaped}"),
            format!("direkt durch {escaped}"),
            "Dienstanbieter",
        ),
        (
            "en",
            format!("an authorised partner of {escaped}"),
            format!("billed directly by {escaped}"),
            "service provider",
        ),
    ] {
        let t = Browser::new(lang).get(&trial_link).await.body;
        assert!(t.contains(&authorised), "{lang}: {t}");
        assert!(
            t.contains(&format!("Testabonnement von {escaped}"))
                || t.contains(&format!("trial subscription from {escaped}")),
            "{lang}: {t}"
        );
        let p = Browser::new(lang).get(&purchase_link).await.body;
        assert!(
            p.contains(&authorised) && p.contains(&billed),
            "{lang}: {p}"
        );
        assert!(
            p.contains(&format!("{escaped}.</p>")),
            "sign-up note, {lang}: {p}"
        );
        for page in [&t, &p] {
            assert!(!page.contains(old), "{lang}: {page}");
            assert!(!page.contains("Fabrikam Cloud & Co"), "escaped: {page}");
        }
    }

    // The emails: a trial invitation in German, a purchase offer in English.
    for (id, to, locale) in [
        (&trial_id, "anna@contoso.example", "de"),
        (&purchase_id, "bob@contoso.example", "en"),
    ] {
        let r = s
            .sales
            .post(
                &format!("/api/v1/offers/{id}/invitations"),
                json!({ "recipient": to, "locale": locale }),
            )
            .await;
        assert!(r.status < 300, "{}", r.body);
    }
    s.app.rt.run_due().await.unwrap();
    let mails: Vec<String> = s
        .app
        .outbox()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for (to, authorised, old) in [
        (
            "anna@contoso.example",
            "autorisierter Partner von",
            "Dienstanbieter",
        ),
        (
            "bob@contoso.example",
            "an authorised partner of",
            "service provider",
        ),
    ] {
        let raw = mails
            .iter()
            .find(|m| m.contains(&format!("To: {to}")))
            .unwrap_or_else(|| panic!("no email to {to}"));
        let parts = common::web::parts(raw);
        assert_eq!(parts.len(), 2, "{raw}");
        for (ct, text) in parts {
            let name = if ct == "text/html" { escaped } else { PROVIDER };
            assert!(
                text.contains(&format!("{authorised} {name}")),
                "{to} {ct}: {text}"
            );
            assert!(!text.contains(old), "{to} {ct}: {text}");
        }
    }
}

/// An email queued before `partner.provider_name` existed (its stored context lacks it) is
/// sent with today's setting instead of failing to render.
async fn an_email_queued_before_the_provider_name_still_sends(store: Store) {
    let app = common::spawn_app(store, &[("PARTNERFLOW__PARTNER__PROVIDER_NAME", PROVIDER)]).await;
    app.invite(1).await;
    let pool = sqlx::AnyPool::connect(&app.rt.settings.database.url)
        .await
        .unwrap();
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, payload FROM jobs WHERE kind = 'email'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    for (id, payload) in rows {
        let mut p: serde_json::Value = serde_json::from_str(&payload).unwrap();
        let partner = p["context"]["partner"].as_object_mut().unwrap();
        assert!(partner.remove("provider_name").is_some());
        sqlx::query("UPDATE jobs SET payload = $1 WHERE id = $2")
            .bind(p.to_string())
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    app.rt.run_due().await.unwrap();
    let mails = app.outbox();
    assert_eq!(mails.len(), 1, "the email was sent");
    let raw = std::fs::read_to_string(&mails[0]).unwrap();
    let text = common::web::parts(&raw)
        .into_iter()
        .find(|(ct, _)| ct == "text/plain")
        .unwrap()
        .1;
    assert!(
        text.contains(&format!("autorisierter Partner von {PROVIDER}")),
        "{text}"
    );
}

on_both_stores!(
    a_location_removed_from_the_source_becomes_unavailable,
    auto_extension_is_chosen_per_offer_for_limited_only,
    a_foreign_origin_is_named_on_the_page,
    an_email_queued_before_the_provider_name_still_sends,
    headings_stand_apart_from_the_rows_above,
    the_provider_is_named_on_pages_and_in_emails,
    a_closed_offer_says_its_state_in_the_page_language,
    the_trial_page_says_what_a_trial_is_and_offers_no_licence_counts,
);
