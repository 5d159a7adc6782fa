//! The portal's company section: `/portal/company` (administrators only) edits the partner's
//! identity shown on every customer page and email, uploads (PNG/JPEG, checked by its bytes)
//! and removes the logo served at `/partner/logo`; the offer page links the provider's
//! customer agreement.

use super::*;

use partnerflow::core::domain::{Country, EmailAddress, Locale, OfferKind, ProductId};
use partnerflow::offers::{self, LineRequest, NewOffer};
use partnerflow::store::CompanyCell;

const COMPANY: &str = "/portal/company";
const LOGO: &str = "/portal/company/logo";
const REMOVE: &str = "/portal/company/logo/remove";

/// A real 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xe0, 0x0e, 0xbf, 0x00,
    0x00, 0x01, 0xa3, 0x01, 0x33, 0xbd, 0xef, 0xb5, 0x7e, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

/// A trial offer's page link (served locally).
async fn offer_link(e: &Env) -> (partnerflow::core::domain::OfferId, String) {
    offers::tasks::location_sync(&e.app.rt).await.unwrap();
    let o = offers::create(
        &e.app.rt,
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
            expires_at: None,
            message: None,
        },
        "test",
    )
    .await
    .unwrap();
    let link = o.offer.link.replace(&e.public(), &e.base);
    (o.offer.offer_id, link)
}

/// A raw request with the browser's cookies and language: (status, headers, body bytes).
async fn raw(
    b: &Browser,
    method: &'static str,
    url: String,
    content_type: Option<String>,
    body: Vec<u8>,
) -> (u16, std::collections::BTreeMap<String, String>, Vec<u8>) {
    let cookies: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let lang = b.lang.clone();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let mut resp = if method == "GET" {
            let mut r = agent.get(&url).header("Accept-Language", &lang);
            if !cookies.is_empty() {
                r = r.header("Cookie", cookies.join("; "));
            }
            r.call().unwrap()
        } else {
            let mut r = agent.post(&url).header("Accept-Language", &lang);
            if !cookies.is_empty() {
                r = r.header("Cookie", cookies.join("; "));
            }
            if let Some(ct) = content_type {
                r = r.header("Content-Type", ct);
            }
            r.send(&body[..]).unwrap()
        };
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let status = resp.status().as_u16();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(10_000_000)
            .read_to_vec()
            .unwrap_or_default();
        (status, headers, bytes)
    })
    .await
    .unwrap()
}

/// Posts the logo form as a browser does (multipart/form-data): its CSRF token and a file.
async fn upload(
    e: &Env,
    b: &Browser,
    csrf: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> (u16, String) {
    let boundary = "----pf-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"logo\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let (status, headers, body) = raw(
        b,
        "POST",
        e.url(LOGO),
        Some(format!("multipart/form-data; boundary={boundary}")),
        body,
    )
    .await;
    let location = headers.get("location").cloned().unwrap_or_default();
    let text = String::from_utf8_lossy(&body).to_string();
    (status, if status == 303 { location } else { text })
}

async fn logo_token(e: &Env, b: &mut Browser) -> String {
    let page = b.get(&e.url(COMPANY)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    csrf_for_action(&page.body, LOGO)
}

fn company_fields<'a>(name: &'a str, email: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("legal_name", "Northwind Traders GmbH"),
        ("email", email),
        ("phone", "+49 40 555-0100"),
        ("website", "https://northwind.example/"),
    ]
}

async fn company_entries(e: &Env) -> Vec<partnerflow::core::portal::AuditRow> {
    portal::audit::list(
        &e.app.rt,
        &AuditQuery {
            action: Some("company.update".into()),
            ..Default::default()
        },
        50,
    )
    .await
    .unwrap()
    .rows
}

async fn the_company_page_is_for_administrators_only(store: Store) {
    let e = env(store, &[]).await;
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
    let got = [
        status_of(&e, &mut admin, COMPANY).await,
        status_of(&e, &mut sales, COMPANY).await,
        status_of(&e, &mut viewer, COMPANY).await,
        status_of(&e, &mut anon, COMPANY).await,
    ];
    assert_eq!(got, [200, 403, 403, 303]);
    // Only administrators see the section in the navigation.
    assert!(
        admin
            .get(&e.url("/portal"))
            .await
            .body
            .contains("href=\"/portal/company\"")
    );
    assert!(
        !sales
            .get(&e.url("/portal"))
            .await
            .body
            .contains("href=\"/portal/company\"")
    );
    // Every write refused by the server for the others by their role: even with a valid
    // CSRF token for the form (minted here with their own nonce), the answer is the portal's
    // 403 page, and nothing is written.
    for b in [&mut sales, &mut viewer] {
        b.get(&e.url("/portal")).await;
        let nonce = b.cookies["pf_csrf"].clone();
        let token = |path: &str| e.app.rt.keys.csrf_token(&nonce, path, e.app.rt.clock.now());
        for path in [COMPANY, REMOVE] {
            let t = token(path);
            let mut fields = company_fields("Hijacked", "evil@attacker.example");
            fields.push(("csrf", t.as_str()));
            let r = b.post_form(&e.url(path), &fields, &[]).await;
            assert_eq!(r.status, 403, "{path}");
            assert!(
                r.body.contains("Your role does not allow this page."),
                "{path}: {}",
                r.body
            );
        }
        let (status, body) = upload(&e, b, &token(LOGO), "logo.png", "image/png", PNG).await;
        assert_eq!(status, 403);
        assert!(
            body.contains("Your role does not allow this page."),
            "{body}"
        );
    }
    for path in [COMPANY, LOGO, REMOVE] {
        let r = anon
            .post_form(
                &e.url(path),
                &company_fields("Hijacked", "x@y.example"),
                &[],
            )
            .await;
        assert_eq!(
            (r.status, r.header("location")),
            (303, Some("/portal/sign-in")),
            "{path}"
        );
    }
    let (status, _) = upload(&e, &anon, "", "logo.png", "image/png", PNG).await;
    assert_eq!(status, 303);
    let c = e.app.rt.company();
    assert!(!c.stored && c.logo.is_none());
    assert_eq!(c.partner.name, e.app.rt.settings.partner.name);
    assert!(company_entries(&e).await.is_empty());
}

async fn company_forms_need_a_valid_csrf_token(store: Store) {
    let e = env(store, &[]).await;
    let mut admin = e
        .signed_in(&e.user("a@partner.example", "admin").await.1)
        .await;
    let page = admin.get(&e.url(COMPANY)).await.body;
    // A token of another form (tokens are bound to their form's action) or none at all.
    let wrong = csrf_for_action(&page, LOGO);
    for token in ["", "forged", wrong.as_str()] {
        let mut fields = company_fields("Hijacked", "evil@attacker.example");
        fields.push(("csrf", token));
        let r = admin.post_form(&e.url(COMPANY), &fields, &[]).await;
        assert_eq!(r.status, 403, "{token}");
        let save = csrf_for_action(&page, COMPANY);
        let (status, _) = upload(
            &e,
            &admin,
            if token == wrong { &save } else { token },
            "l.png",
            "image/png",
            PNG,
        )
        .await;
        assert_eq!(status, 403, "{token}");
    }
    // Without a cookie, the page's own token is refused too.
    let save = csrf_for_action(&page, COMPANY);
    let mut fields = company_fields("Hijacked", "evil@attacker.example");
    fields.push(("csrf", save.as_str()));
    let mut stranger = Browser::new("en");
    stranger.cookies = admin
        .cookies
        .iter()
        .filter(|(k, _)| k.contains("session"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let r = stranger.post_form(&e.url(COMPANY), &fields, &[]).await;
    assert_eq!(r.status, 403);
    let c = e.app.rt.company();
    assert!(!c.stored && c.logo.is_none());
    assert!(company_entries(&e).await.is_empty());
    // With the page's own token it works.
    let r = post_from(
        &e,
        &mut admin,
        COMPANY,
        COMPANY,
        &company_fields("Northwind", "info@northwind.example"),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // The remove form refuses a bad token as well.
    let r = admin
        .post_form(&e.url(REMOVE), &[("csrf", "forged")], &[])
        .await;
    assert_eq!(r.status, 403);
}

async fn an_edit_shows_on_customer_pages_and_in_the_next_email(store: Store) {
    let e = env(store, &[]).await;
    let (admin_row, link) = e.user("a@partner.example", "admin").await;
    let mut admin = e.signed_in(&link).await;
    let (offer_id, offer) = offer_link(&e).await;
    let mut customer = Browser::new("en");
    let before = customer.get(&offer).await.body;
    assert!(before.contains(&e.app.rt.settings.partner.name));
    // The form shows the configuration's values first.
    let page = admin.get(&e.url(COMPANY)).await.body;
    assert!(page.contains(&format!(
        "value=\"{}\"",
        e.app.rt.settings.partner.legal_name
    )));
    assert!(
        page.contains("Contoso Cloud"),
        "the provider, from the configuration"
    );

    let r = post_from(
        &e,
        &mut admin,
        COMPANY,
        COMPANY,
        &company_fields("Northwind Traders", "info@northwind.example"),
    )
    .await;
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/portal/company?saved=1"))
    );
    let page = admin.get(&e.url("/portal/company?saved=1")).await.body;
    assert!(page.contains("id=\"saved\""));
    assert!(page.contains("value=\"Northwind Traders\""));

    // The customer's offer page: the new identity at once.
    let after = customer.get(&offer).await.body;
    assert!(after.contains("Northwind Traders"), "{after}");
    assert!(after.contains("Northwind Traders GmbH"));
    assert!(after.contains("mailto:info@northwind.example"));
    assert!(after.contains("+49 40 555-0100"));
    assert!(after.contains("https://northwind.example/"));
    assert!(!after.contains(&e.app.rt.settings.partner.legal_name));

    // The next email: sender name, Reply-To and body.
    let before_mail = e.app.outbox().len();
    offers::invite(
        &e.app.rt,
        &offer_id,
        EmailAddress::parse("it@fabrikam.example").unwrap(),
        None,
        Some(Locale::En),
        "test",
    )
    .await
    .unwrap();
    e.app.rt.run_due().await.unwrap();
    let outbox = e.app.outbox();
    assert_eq!(outbox.len(), before_mail + 1);
    let raw = std::fs::read_to_string(outbox.last().unwrap()).unwrap();
    let mail = common::web::decode_qp(&raw);
    assert!(
        raw.contains("From: \"Northwind Traders\"") || raw.contains("From: Northwind Traders"),
        "{raw}"
    );
    assert!(
        raw.contains("Reply-To:") && raw.contains("info@northwind.example"),
        "{raw}"
    );
    assert!(mail.contains("Northwind Traders"), "{mail}");
    assert!(!mail.contains(&e.app.rt.settings.partner.name), "{mail}");

    // Audited: who, which fields.
    let entries = company_entries(&e).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].user_id.as_deref(), Some(admin_row.id.as_str()));
    assert_eq!(entries[0].actor, "a@partner.example");
    assert_eq!(
        entries[0].detail,
        "changed: name, legal_name, email, phone, website"
    );
    // Saving the same values again writes nothing; one change names one field.
    let r = post_from(
        &e,
        &mut admin,
        COMPANY,
        COMPANY,
        &company_fields("Northwind Traders", "info@northwind.example"),
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(company_entries(&e).await.len(), 1);
    let evil = "Northwind <script>alert(1)</script> & \"Co\"";
    let r = post_from(
        &e,
        &mut admin,
        COMPANY,
        COMPANY,
        &company_fields(evil, "info@northwind.example"),
    )
    .await;
    assert_eq!(r.status, 303);
    let entries = company_entries(&e).await;
    assert_eq!(entries[0].detail, "changed: name");
    // Hostile values are escaped on the customer's page and the portal's.
    for html in [
        customer.get(&offer).await.body,
        admin.get(&e.url(COMPANY)).await.body,
    ] {
        assert!(!html.contains("<script>alert(1)"), "{html}");
        assert!(
            html.contains("Northwind &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;")
                || html
                    .contains("Northwind &lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;Co&#34;"),
            "{html}"
        );
    }

    // Another node (same database) sees the edit once it re-reads (every 30 s).
    let other = CompanyCell::new(
        &e.app.rt.settings.partner,
        &e.app.rt.settings.app.public_base_url,
    );
    assert_eq!(other.get().partner.name, e.app.rt.settings.partner.name);
    other.refresh(&e.app.rt.store).await.unwrap();
    assert_eq!(other.get().partner.name, evil);
    assert_eq!(other.get().partner.email.as_str(), "info@northwind.example");
    assert_eq!(
        other.get().partner.provider_name,
        e.app.rt.settings.partner.provider_name
    );
}

async fn invalid_values_are_shown_next_to_their_fields(store: Store) {
    let e = env(store, &[]).await;
    let mut admin = e
        .signed_in(&e.user("a@partner.example", "admin").await.1)
        .await;
    let evil = "\"><script>x</script>";
    let long = "x".repeat(201);
    let r = post_from(
        &e,
        &mut admin,
        COMPANY,
        COMPANY,
        &[
            ("name", ""),
            ("legal_name", &long),
            ("email", evil),
            ("phone", "030 <1234>"),
            ("website", "javascript:alert(1)"),
        ],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let b = &r.body;
    assert!(b.contains("role=\"alert\""));
    for id in ["name", "legal_name", "email", "phone", "website"] {
        assert!(b.contains(&format!("href=\"#company-{id}\"")), "{id}");
        assert!(
            b.contains(&format!("aria-describedby=\"company-{id}-error\"")),
            "{id}"
        );
        assert!(b.contains(&format!("id=\"company-{id}-error\"")), "{id}");
    }
    assert!(b.contains("Please fill this in."));
    assert!(b.contains("At most 200 characters."));
    assert!(b.contains("Not a valid email address."));
    assert!(b.contains("Only digits, spaces and + - ( ) / . are allowed."));
    assert!(b.contains("https://"));
    // What was typed comes back, escaped.
    assert!(!b.contains("<script>x"));
    assert!(
        b.contains("value=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;\"")
            || b.contains("value=\"&#34;&gt;&lt;script&gt;x&lt;/script&gt;\""),
        "{b}"
    );
    assert!(!e.app.rt.company().stored);
    assert!(company_entries(&e).await.is_empty());
    // A German administrator reads German.
    let new = NewUser::parse("de@partner.example", "Jörg", "admin", "de").unwrap();
    let (_, l) = portal::create_user(&e.app.rt, &new, &Actor::cli())
        .await
        .unwrap();
    let mut de = e.signed_in(&l.url.replace(&e.public(), &e.base)).await;
    let page = de.get(&e.url(COMPANY)).await.body;
    assert!(page.contains("lang=\"de\"") && page.contains("Firmeninformationen"));
    let r = post_from(
        &e,
        &mut de,
        COMPANY,
        COMPANY,
        &company_fields("N", "kein-email"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("Keine gültige E-Mail-Adresse."),
        "{}",
        r.body
    );
    let en = admin.get(&e.url(COMPANY)).await.body;
    assert!(en.contains("lang=\"en\"") && en.contains("Company information"));
}

async fn the_logo_is_checked_served_shown_and_removable(store: Store) {
    let e = env(store, &[]).await;
    let (_, link) = e.user("a@partner.example", "admin").await;
    let mut admin = e.signed_in(&link).await;
    let (offer_id, offer) = offer_link(&e).await;
    let anon = Browser::new("en");
    let (status, _, _) = raw(&anon, "GET", e.url("/partner/logo"), None, vec![]).await;
    assert_eq!(status, 404);
    assert!(!admin.get(&offer).await.body.contains("partner-logo"));

    // Refused: SVG (script), HTML named and typed as PNG, an empty file, too large.
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    let html = b"<html><script>alert(1)</script></html>";
    let mut big = PNG.to_vec();
    big.resize(200 * 1024 + 1, 0);
    for (name, ct, bytes, why) in [
        (
            "logo.svg",
            "image/svg+xml",
            &svg[..],
            "Only PNG or JPEG images (no SVG).",
        ),
        (
            "logo.png",
            "image/png",
            &html[..],
            "Only PNG or JPEG images (no SVG).",
        ),
        ("logo.png", "image/png", &[][..], "Please choose a file."),
        ("logo.png", "image/png", &big[..], "At most 200 KB."),
    ] {
        let token = logo_token(&e, &mut admin).await;
        let (status, body) = upload(&e, &admin, &token, name, ct, bytes).await;
        assert_eq!(status, 400, "{name} {ct}: {body}");
        assert!(body.contains(why), "{why}: {body}");
        assert!(body.contains("aria-describedby=\"company-logo-error"));
        assert!(!body.contains("<script>alert"));
    }
    assert!(e.app.rt.company().logo.is_none());
    let (status, _, _) = raw(&anon, "GET", e.url("/partner/logo"), None, vec![]).await;
    assert_eq!(status, 404);

    // A PNG (whatever the browser calls it) is stored and served with its checked type.
    let token = logo_token(&e, &mut admin).await;
    let (status, location) = upload(
        &e,
        &admin,
        &token,
        "logo.gif",
        "application/octet-stream",
        PNG,
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/portal/company?saved=1")
    );
    let (status, headers, body) = raw(&anon, "GET", e.url("/partner/logo?v=1"), None, vec![]).await;
    assert_eq!(status, 200);
    assert_eq!(body, PNG);
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("image/png")
    );
    assert_eq!(
        headers.get("x-content-type-options").map(String::as_str),
        Some("nosniff")
    );
    assert!(headers["cache-control"].contains("immutable"));
    assert!(headers["content-security-policy"].contains("sandbox"));
    let (_, headers, _) = raw(&anon, "GET", e.url("/partner/logo"), None, vec![]).await;
    assert_eq!(
        headers.get("cache-control").map(String::as_str),
        Some("public, max-age=300")
    );
    // Shown on the customer's pages and the company page.
    let page = admin.get(&offer).await.body;
    assert!(page.contains("<img src=\"/partner/logo?v=1\""), "{page}");
    let page = admin.get(&e.url(COMPANY)).await.body;
    assert!(page.contains("src=\"/partner/logo?v=1\"") && page.contains("id=\"remove-logo\""));
    // Emails' HTML shows it by its absolute URL (`app.public_base_url`).
    let logo_url = format!("{}/partner/logo?v=1", e.public());
    assert_eq!(
        e.app.rt.company().partner.logo_url.as_deref(),
        Some(logo_url.as_str())
    );
    offers::invite(
        &e.app.rt,
        &offer_id,
        EmailAddress::parse("it@fabrikam.example").unwrap(),
        None,
        Some(Locale::En),
        "test",
    )
    .await
    .unwrap();
    e.app.rt.run_due().await.unwrap();
    let message = std::fs::read_to_string(e.app.outbox().last().unwrap()).unwrap();
    let html = common::web::parts(&message)
        .into_iter()
        .find(|(ct, _)| ct == "text/html")
        .unwrap()
        .1;
    // (handlebars writes `=` in attributes as `&#x3D;`, which the mail client reads as `=`)
    assert!(
        html.contains(&format!("<img src=\"{}\"", logo_url.replace('=', "&#x3D;"))),
        "{html}"
    );

    // A JPEG replaces it (new version).
    let jpeg = [
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00,
    ];
    let token = logo_token(&e, &mut admin).await;
    let (status, _) = upload(&e, &admin, &token, "logo.jpg", "image/jpeg", &jpeg).await;
    assert_eq!(status, 303);
    let (status, headers, body) = raw(&anon, "GET", e.url("/partner/logo"), None, vec![]).await;
    assert_eq!((status, body.as_slice()), (200, &jpeg[..]));
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("image/jpeg")
    );
    assert!(admin.get(&offer).await.body.contains("/partner/logo?v=2"));

    // Removed.
    let r = post_from(&e, &mut admin, COMPANY, REMOVE, &[]).await;
    assert_eq!(r.status, 303);
    let (status, _, _) = raw(&anon, "GET", e.url("/partner/logo"), None, vec![]).await;
    assert_eq!(status, 404);
    assert!(!admin.get(&offer).await.body.contains("partner-logo"));
    assert!(
        admin
            .get(&e.url(COMPANY))
            .await
            .body
            .contains("id=\"no-logo\"")
    );

    let details: Vec<String> = company_entries(&e)
        .await
        .into_iter()
        .map(|r| r.detail)
        .collect();
    assert_eq!(
        details,
        [
            "changed: logo removed".to_string(),
            format!("changed: logo (image/jpeg, {} bytes)", jpeg.len()),
            format!("changed: logo (image/png, {} bytes)", PNG.len()),
        ]
    );
}

async fn the_offer_page_links_the_customer_agreement_in_both_languages(store: Store) {
    let url = "https://provider.example/agreement?a=1&b=2";
    let e = env(
        store,
        &[("PARTNERFLOW__PARTNER__CUSTOMER_AGREEMENT_URL", url)],
    )
    .await;
    let (_, offer) = offer_link(&e).await;
    let href = "href=\"https://provider.example/agreement?a=1&amp;b=2\"";
    let de = Browser::new("de").get(&offer).await.body;
    assert!(de.contains("Mit der Annahme stimmen Sie dem <a "), "{de}");
    assert!(
        de.contains(&format!("{href}>Kundenvertrag von Contoso Cloud</a> zu.")),
        "{de}"
    );
    let en = Browser::new("en").get(&offer).await.body;
    assert!(
        en.contains(&format!(
            "By accepting, you agree to the <a {href}>customer agreement of Contoso Cloud</a>."
        )),
        "{en}"
    );
    // Next to the accept button, which it describes.
    let i = en.find("id=\"agreement\"").unwrap();
    let j = en
        .find("<button type=\"submit\" id=\"accept\" aria-describedby=\"agreement\">")
        .unwrap();
    assert!(i < j);
    // The company page shows it (from the configuration).
    let mut admin = e
        .signed_in(&e.user("a@partner.example", "admin").await.1)
        .await;
    assert!(admin.get(&e.url(COMPANY)).await.body.contains(href));
}

on_both_stores!(
    the_company_page_is_for_administrators_only,
    company_forms_need_a_valid_csrf_token,
    an_edit_shows_on_customer_pages_and_in_the_next_email,
    invalid_values_are_shown_next_to_their_fields,
    the_logo_is_checked_served_shown_and_removable,
    the_offer_page_links_the_customer_agreement_in_both_languages,
);
