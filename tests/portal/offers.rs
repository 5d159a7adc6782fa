//! The portal's offers section: every page × role, CSRF on every form, the server refusing
//! viewers every write, the three forms (country step, licence limits, synced locations),
//! the result page's invite, delivery states on the offer's page, withdraw, CSV, list
//! filters and keyset paging, escaping, both languages.

use super::*;
use partnerflow::core::domain::{Country, OfferId, OfferKind, ProductId};
use partnerflow::offers::{self, LineRequest, NewOffer};

const SALES: &str = "s@partner.example";

async fn synced(e: &Env) {
    offers::tasks::location_sync(&e.app.rt).await.unwrap();
}

/// An offer made directly through the service (as `actor`).
async fn offer(e: &Env, kind: OfferKind, actor: &str) -> OfferId {
    let (products, da) = match kind {
        OfferKind::Trial => (
            vec![LineRequest {
                product: ProductId::parse("m365-business-premium-trial").unwrap(),
                licences: None,
            }],
            None,
        ),
        OfferKind::Purchase => (
            vec![LineRequest {
                product: ProductId::parse("m365-e3").unwrap(),
                licences: Some(10),
            }],
            None,
        ),
        OfferKind::DelegatedAdmin => (vec![], Some(partnerflow::core::domain::AdminRole::Limited)),
    };
    offers::create(
        &e.app.rt,
        NewOffer {
            kind,
            location_id: "loc-berlin".into(),
            country: Country::parse("DE").unwrap(),
            products,
            delegated_admin: da,
            auto_extend: false,
            expires_at: None,
            message: None,
        },
        actor,
    )
    .await
    .unwrap()
    .offer
    .offer_id
}

/// A user in `language` (`de`/`en`), signed in.
async fn user_in(e: &Env, email: &str, role: &str, language: &str) -> Browser {
    let new = NewUser::parse(email, "Erika <Muster>", role, language).unwrap();
    let (_, link) = portal::create_user(&e.app.rt, &new, &Actor::cli())
        .await
        .unwrap();
    e.signed_in(&link.url.replace(&e.public(), &e.base)).await
}

async fn audit_actions(e: &Env) -> Vec<(String, String)> {
    let q = AuditQuery::default();
    portal::audit::list(&e.app.rt, &q, 500)
        .await
        .unwrap()
        .rows
        .into_iter()
        .map(|r| (r.action, r.target))
        .collect()
}

/// The Offer ID in a 303 to `/portal/offers/{id}/created…`.
fn created_id(r: &common::web::Resp) -> String {
    let to = r.header("location").unwrap_or_default();
    to.strip_prefix("/portal/offers/")
        .and_then(|t| t.split('/').next())
        .unwrap_or_else(|| panic!("not a created page: {to} {}", r.body))
        .to_string()
}

async fn offer_pages_by_role(store: Store) {
    let e = env(store, &[]).await;
    synced(&e).await;
    let id = offer(&e, OfferKind::Purchase, "cli").await;
    let mut admin = e
        .signed_in(&e.user("a@partner.example", "admin").await.1)
        .await;
    let mut sales = e.signed_in(&e.user(SALES, "sales_agent").await.1).await;
    let mut viewer = e
        .signed_in(&e.user("v@partner.example", "viewer").await.1)
        .await;
    let mut anon = Browser::new("en");
    let pages: Vec<(String, [u16; 4])> = vec![
        ("/portal/offers".into(), [200, 200, 200, 303]),
        (
            "/portal/offers?state=open&kind=purchase&location=loc-berlin&from=2026-01-01&to=2030-01-01&created_by=cli".into(),
            [200, 200, 200, 303],
        ),
        ("/portal/offers?from=nope".into(), [400, 400, 400, 303]),
        (format!("/portal/offers/lookup?offer_id={}", id.as_str().to_lowercase()), [303, 303, 303, 303]),
        ("/portal/offers/lookup?offer_id=PF-1".into(), [404, 404, 404, 303]),
        ("/portal/offers/new/trial".into(), [200, 200, 403, 303]),
        ("/portal/offers/new/purchase".into(), [200, 200, 403, 303]),
        ("/portal/offers/new/delegated-admin".into(), [200, 200, 403, 303]),
        ("/portal/offers/new/trial?country=DE".into(), [200, 200, 403, 303]),
        ("/portal/offers/new/purchase?country=AT".into(), [200, 200, 403, 303]),
        ("/portal/offers/new/delegated-admin?country=DE".into(), [200, 200, 403, 303]),
        ("/portal/offers/new/purchase?country=XX".into(), [400, 400, 403, 303]),
        ("/portal/offers/new/other".into(), [404, 404, 403, 303]),
        (format!("/portal/offers/{id}"), [200, 200, 200, 303]),
        (format!("/portal/offers/{id}.csv"), [200, 200, 200, 303]),
        (format!("/portal/offers/{id}?format=csv"), [200, 200, 200, 303]),
        (format!("/portal/offers/{id}/created"), [200, 200, 403, 303]),
        (format!("/portal/offers/{id}/withdraw"), [200, 403, 403, 303]),
        ("/portal/offers/PF-AAAAAAAAAAAA".into(), [404, 404, 404, 303]),
        ("/portal/offers/not-an-id".into(), [404, 404, 404, 303]),
        ("/portal/offers/%3Cscript%3E.csv".into(), [404, 404, 404, 303]),
        ("/portal/offers/not-an-id/withdraw".into(), [404, 403, 403, 303]),
    ];
    for (path, want) in &pages {
        let got = [
            status_of(&e, &mut admin, path).await,
            status_of(&e, &mut sales, path).await,
            status_of(&e, &mut viewer, path).await,
            status_of(&e, &mut anon, path).await,
        ];
        assert_eq!(&got, want, "{path}");
    }
    // The lookup goes to the offer's page.
    let r = viewer
        .get(&e.url(&format!(
            "/portal/offers/lookup?offer_id={}",
            id.as_str().to_lowercase()
        )))
        .await;
    assert_eq!(
        r.header("location"),
        Some(format!("/portal/offers/{id}").as_str())
    );
    // A viewer sees no write buttons; a sales agent no withdraw.
    let v = viewer
        .get(&e.url(&format!("/portal/offers/{id}")))
        .await
        .body;
    assert!(
        !v.contains("invite-form") && !v.contains("/withdraw\""),
        "{v}"
    );
    let v = viewer.get(&e.url("/portal/offers")).await.body;
    assert!(!v.contains("/portal/offers/new/"));
    let s = sales
        .get(&e.url(&format!("/portal/offers/{id}")))
        .await
        .body;
    assert!(s.contains("invite-form") && !s.contains("/withdraw\""));
    let a = admin
        .get(&e.url(&format!("/portal/offers/{id}")))
        .await
        .body;
    assert!(a.contains(&format!("/portal/offers/{id}/withdraw\"")));

    // Every write refused to a viewer by the server, even with a valid token for the form.
    let nonce = viewer.cookies.get("pf_csrf").cloned().unwrap();
    let writes = [
        "/portal/offers/new/trial".to_string(),
        "/portal/offers/new/purchase".into(),
        "/portal/offers/new/delegated-admin".into(),
        format!("/portal/offers/{id}/invite"),
        format!("/portal/offers/{id}/withdraw"),
    ];
    for path in &writes {
        let token = e.app.rt.keys.csrf_token(&nonce, path, e.app.clock.now());
        let fields = [
            ("csrf", token.as_str()),
            ("country", "DE"),
            ("location", "loc-berlin"),
            ("product", "m365-business-premium-trial"),
            ("licences-m365-e3", "5"),
            ("delegated_admin", "limited"),
            ("recipients", "x@contoso.example"),
        ];
        let r = viewer.post_form(&e.url(path), &fields, &[]).await;
        assert_eq!(r.status, 403, "viewer {path}");
    }
    // Withdrawing: administrators only.
    let path = format!("/portal/offers/{id}/withdraw");
    let nonce = sales.cookies.get("pf_csrf").cloned().unwrap();
    let token = e.app.rt.keys.csrf_token(&nonce, &path, e.app.clock.now());
    let r = sales
        .post_form(&e.url(&path), &[("csrf", token.as_str())], &[])
        .await;
    assert_eq!(r.status, 403, "a sales agent may not withdraw");
    // Nothing was written.
    let t = offers::tracking(&e.app.rt, &id).await.unwrap();
    assert_eq!(t.offer.state, "open");
    assert!(t.invitations.is_empty());
    let listed = offers::list(
        &e.app.rt,
        &partnerflow::core::offer::OfferFilter {
            limit: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        !audit_actions(&e)
            .await
            .iter()
            .any(|(a, _)| a.starts_with("offer."))
    );
}

async fn every_offer_form_refuses_a_bad_csrf_token(store: Store) {
    let e = env(store, &[]).await;
    synced(&e).await;
    let id = offer(&e, OfferKind::Trial, "cli").await;
    let mut admin = e
        .signed_in(&e.user("a@partner.example", "admin").await.1)
        .await;
    let forms = [
        (
            "/portal/offers/new/trial?country=DE".to_string(),
            "/portal/offers/new/trial".to_string(),
        ),
        (
            "/portal/offers/new/purchase?country=DE".into(),
            "/portal/offers/new/purchase".into(),
        ),
        (
            "/portal/offers/new/delegated-admin?country=DE".into(),
            "/portal/offers/new/delegated-admin".into(),
        ),
        (
            format!("/portal/offers/{id}"),
            format!("/portal/offers/{id}/invite"),
        ),
        (
            format!("/portal/offers/{id}/created"),
            format!("/portal/offers/{id}/invite"),
        ),
        (
            format!("/portal/offers/{id}/withdraw"),
            format!("/portal/offers/{id}/withdraw"),
        ),
    ];
    let other = csrf_for_action(
        &admin.get(&e.url("/portal/users")).await.body,
        "/portal/users",
    );
    let fields = [
        ("country", "DE"),
        ("location", "loc-berlin"),
        ("product", "m365-business-premium-trial"),
        ("licences-m365-e3", "5"),
        ("delegated_admin", "limited"),
        ("recipients", "x@contoso.example"),
    ];
    for (from, action) in &forms {
        let page = admin.get(&e.url(from)).await;
        assert_eq!(page.status, 200, "{from}");
        let good = csrf_for_action(&page.body, action);
        for csrf in ["", "garbage", other.as_str()] {
            let mut f = vec![("csrf", csrf)];
            f.extend_from_slice(&fields);
            let r = admin.post_form(&e.url(action), &f, &[]).await;
            assert_eq!(r.status, 403, "{action} with `{csrf}`");
        }
        let mut f = vec![("csrf", good.as_str())];
        f.extend_from_slice(&fields);
        let r = admin
            .post_form(&e.url(action), &f, &[("Origin", "https://evil.example")])
            .await;
        assert_eq!(r.status, 403, "{action} from another origin");
    }
    // Nothing happened.
    let t = offers::tracking(&e.app.rt, &id).await.unwrap();
    assert_eq!(t.offer.state, "open");
    assert!(t.invitations.is_empty());
    assert!(
        !audit_actions(&e)
            .await
            .iter()
            .any(|(a, _)| a.starts_with("offer."))
    );
}

async fn sales_agent_creates_each_kind_through_the_forms(store: Store) {
    let e = env(store, &[]).await;
    let mut sales = e.signed_in(&e.user(SALES, "sales_agent").await.1).await;
    // Before the first sync there is no location to choose.
    let p = sales
        .get(&e.url("/portal/offers/new/purchase?country=DE"))
        .await;
    assert!(!p.body.contains("value=\"loc-berlin\""));
    synced(&e).await;
    // Step 1: the country, by a GET form.
    let p = sales.get(&e.url("/portal/offers/new/purchase")).await;
    assert_eq!(p.status, 200);
    assert!(
        p.body
            .contains("method=\"get\" action=\"/portal/offers/new/purchase\"")
    );
    assert!(p.body.contains("<option value=\"DE\">"));
    assert!(!p.body.contains("name=\"location\""), "no offer form yet");
    let bad = sales
        .get(&e.url("/portal/offers/new/purchase?country=XX"))
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("offer-country-error") && bad.body.contains("role=\"alert\""));
    // Step 2: that country's catalog, with the licence limits; synced locations.
    let p = sales
        .get(&e.url("/portal/offers/new/purchase?country=de"))
        .await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("name=\"licences-m365-business-premium\""));
    assert!(p.body.contains("1–300"), "limits shown");
    assert!(p.body.contains("max=\"300\""));
    assert!(
        !p.body.contains("teams-essentials"),
        "not sold in DE: not offered"
    );
    assert!(!p.body.contains("m365-e3-trial"), "no trials in a purchase");
    assert!(p.body.contains("value=\"loc-berlin\"") && p.body.contains("value=\"loc-wien\""));
    let us = sales
        .get(&e.url("/portal/offers/new/purchase?country=US"))
        .await;
    assert!(us.body.contains("teams-essentials"));
    let from = "/portal/offers/new/purchase?country=DE";
    let action = "/portal/offers/new/purchase";
    // Beyond the licence limit: 400, the error next to its field and in the summary.
    let r = post_from(
        &e,
        &mut sales,
        from,
        action,
        &[
            ("country", "DE"),
            ("location", "loc-berlin"),
            ("licences-m365-business-premium", "301"),
            ("delegated_admin", "none"),
        ],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body
            .contains("id=\"offer-licences-m365-business-premium-error\"")
    );
    assert!(
        r.body
            .contains("href=\"#offer-licences-m365-business-premium\"")
    );
    assert!(r.body.contains("1–300"));
    assert!(r.body.contains("value=\"301\""), "the value typed is kept");
    let i = r
        .body
        .find("id=\"offer-licences-m365-business-premium\"")
        .unwrap();
    let tag = &r.body[i..];
    assert!(tag[..tag.find('>').unwrap()].contains("aria-invalid=\"true\""));
    // Not a number, and no product at all.
    let r = post_from(
        &e,
        &mut sales,
        from,
        action,
        &[
            ("country", "DE"),
            ("location", "loc-berlin"),
            ("licences-m365-e3", "many"),
        ],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"offer-licences-m365-e3-error\""));
    let r = post_from(
        &e,
        &mut sales,
        from,
        action,
        &[("country", "DE"), ("location", "loc-berlin")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"offer-products-error\""));
    // A location that is not synced: refused next to the location.
    let r = post_from(
        &e,
        &mut sales,
        from,
        action,
        &[
            ("country", "DE"),
            ("location", "loc-nowhere"),
            ("licences-m365-e3", "5"),
        ],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("id=\"offer-location-error\""));
    // Expiry out of bounds, by the service's rule.
    let r = post_from(
        &e,
        &mut sales,
        from,
        action,
        &[
            ("country", "DE"),
            ("location", "loc-berlin"),
            ("licences-m365-e3", "5"),
            ("expires", "2020-01-01"),
        ],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"offer-expires-error\""));
    // A product of another country, posted anyway, is not read; a trial product too.
    // The purchase offer.
    let r = post_from(
        &e,
        &mut sales,
        from,
        action,
        &[
            ("country", "DE"),
            ("location", "loc-berlin"),
            ("licences-m365-business-premium", "300"),
            ("licences-m365-e3", "25"),
            ("delegated_admin", "limited"),
            ("message", "Hallo Team"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let purchase = OfferId::parse(&created_id(&r)).unwrap();
    let o = offers::get(&e.app.rt, &purchase).await.unwrap();
    assert_eq!(o.offer.kind, OfferKind::Purchase);
    assert_eq!(o.offer.products.len(), 2);
    assert_eq!(o.offer.products[0].licences, Some(300));
    assert_eq!(o.offer.created_by, SALES);
    assert_eq!(o.offer.message.as_deref(), Some("Hallo Team"));
    // The trial: one trial product of the country.
    let p = sales
        .get(&e.url("/portal/offers/new/trial?country=DE"))
        .await;
    assert!(p.body.contains("value=\"m365-e3-trial\"") && !p.body.contains("licences-"));
    let r = post_from(
        &e,
        &mut sales,
        "/portal/offers/new/trial?country=DE",
        "/portal/offers/new/trial",
        &[("country", "DE"), ("location", "loc-berlin")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"offer-product-error\""));
    let r = post_from(
        &e,
        &mut sales,
        "/portal/offers/new/trial?country=DE",
        "/portal/offers/new/trial",
        &[
            ("country", "DE"),
            ("location", "loc-wien"),
            ("product", "m365-e3-trial"),
            ("delegated_admin", "none"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let trial = OfferId::parse(&created_id(&r)).unwrap();
    let o = offers::get(&e.app.rt, &trial).await.unwrap();
    assert_eq!(o.offer.kind, OfferKind::Trial);
    assert_eq!(o.offer.location_id, "loc-wien");
    // Delegated administration: the role, auto-extension only for limited.
    let from_da = "/portal/offers/new/delegated-admin?country=DE";
    let action_da = "/portal/offers/new/delegated-admin";
    let r = post_from(
        &e,
        &mut sales,
        from_da,
        action_da,
        &[
            ("country", "DE"),
            ("location", "loc-berlin"),
            ("delegated_admin", "full"),
            ("auto_extend", "1"),
        ],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"offer-auto_extend-error\""));
    let r = post_from(
        &e,
        &mut sales,
        from_da,
        action_da,
        &[
            ("country", "DE"),
            ("location", "loc-berlin"),
            ("delegated_admin", "limited"),
            ("auto_extend", "1"),
            ("expires", "2027-01-15"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let da = OfferId::parse(&created_id(&r)).unwrap();
    let o = offers::get(&e.app.rt, &da).await.unwrap();
    assert_eq!(o.offer.kind, OfferKind::DelegatedAdmin);
    assert!(o.offer.auto_extend);
    assert!(o.offer.products.is_empty());
    // Every create audited, by whom.
    let audited = audit_actions(&e).await;
    for id in [&purchase, &trial, &da] {
        assert!(
            audited
                .iter()
                .any(|(a, t)| a == "offer.create" && t == id.as_str()),
            "{id}: {audited:?}"
        );
    }
    assert_eq!(
        audited.iter().filter(|(a, _)| a == "offer.create").count(),
        3
    );
}

async fn result_page_invites_and_the_offer_page_tracks_delivery(store: Store) {
    let e = env(store, &[]).await;
    synced(&e).await;
    let mut sales = e.signed_in(&e.user(SALES, "sales_agent").await.1).await;
    let r = post_from(
        &e,
        &mut sales,
        "/portal/offers/new/trial?country=DE",
        "/portal/offers/new/trial",
        &[
            ("country", "DE"),
            ("location", "loc-berlin"),
            ("product", "m365-business-premium-trial"),
            ("recipients", "erste@contoso.example"),
            ("language", "de"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.header("location").unwrap().to_string();
    assert!(to.ends_with("/created?invited=1"), "{to}");
    let id = created_id(&r);
    let page = sales.get(&e.url(&to)).await;
    assert_eq!(page.status, 200);
    let link = offers::get(&e.app.rt, &OfferId::parse(&id).unwrap())
        .await
        .unwrap()
        .offer
        .link;
    // The Offer ID and the link: in a labelled readonly input, and as text.
    assert!(
        page.body
            .contains(&format!("<code id=\"offer-id\">{id}</code>"))
    );
    assert!(page.body.contains("<label for=\"offer-link\">"));
    assert!(page.body.contains(&format!(
        "<input type=\"text\" id=\"offer-link\" value=\"{link}\" readonly"
    )));
    assert!(
        page.body
            .contains(&format!("id=\"offer-link-text\">{link}</p>"))
    );
    assert!(page.body.contains("id=\"invited\""));
    // Send to more recipients right away; a bad line is refused next to the field.
    let invite = format!("/portal/offers/{id}/invite");
    let r = post_from(
        &e,
        &mut sales,
        &to,
        &invite,
        &[
            ("back", "created"),
            ("recipients", "kunde@contoso.example\nno-at-sign"),
        ],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"invite-recipients-error\"") && r.body.contains("no-at-sign"));
    let r = post_from(
        &e,
        &mut sales,
        &to,
        &invite,
        &[("back", "created"), ("recipients", "  ")],
    )
    .await;
    assert_eq!(r.status, 400);
    let r = post_from(
        &e,
        &mut sales,
        &to,
        &invite,
        &[
            ("back", "created"),
            (
                "recipients",
                "kunde@contoso.example\r\n\r\nzweite@contoso.example",
            ),
            ("language", "en"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some(format!("/portal/offers/{id}/created?invited=2").as_str())
    );
    // Before sending: waiting.
    let p = sales
        .get(&e.url(&format!("/portal/offers/{id}")))
        .await
        .body;
    assert!(
        p.contains("kunde@contoso.example") && p.contains("waiting to be sent"),
        "{p}"
    );
    e.app.rt.run_due().await.unwrap();
    let mailed: Vec<String> = e
        .app
        .outbox()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for to in [
        "erste@contoso.example",
        "kunde@contoso.example",
        "zweite@contoso.example",
    ] {
        assert!(
            mailed.iter().any(|m| m.contains(&format!("To: {to}"))),
            "{to} mailed"
        );
    }
    assert!(
        mailed
            .iter()
            .any(|m| common::web::decode_qp(m).contains(&link)),
        "the offer's link is mailed"
    );
    // The offer's page: each invitation's delivery.
    let p = sales
        .get(&e.url(&format!("/portal/offers/{id}")))
        .await
        .body;
    assert!(p.contains("delivered to the mail server"), "{p}");
    assert!(!p.contains("waiting to be sent"));
    // A hard bounce for one of them: bounced, with the reason.
    let t = offers::tracking(&e.app.rt, &OfferId::parse(&id).unwrap())
        .await
        .unwrap();
    let inv = t
        .invitations
        .iter()
        .find(|i| i.invitation.recipient.as_str() == "kunde@contoso.example")
        .unwrap();
    let mid = inv.emails.last().unwrap().message_id.clone();
    let dsn = common::dsn(&mid, &["kunde@contoso.example".to_string()]);
    partnerflow::campaigns::ingest_bounce(&e.app.rt, dsn.as_bytes(), "test")
        .await
        .unwrap();
    let p = sales
        .get(&e.url(&format!("/portal/offers/{id}")))
        .await
        .body;
    let row = p
        .split("<tr>")
        .find(|r| r.contains("kunde@contoso.example"))
        .unwrap();
    assert!(row.contains("bounced") && row.contains("5.1.1"), "{row}");
    let row = p
        .split("<tr>")
        .find(|r| r.contains("zweite@contoso.example"))
        .unwrap();
    assert!(row.contains("delivered to the mail server"), "{row}");
    // The history as a timeline with times; invite more from the offer's page.
    assert!(p.contains("<ol id=\"history\">") && p.contains("<time datetime=\""));
    let r = post_from(
        &e,
        &mut sales,
        &format!("/portal/offers/{id}"),
        &invite,
        &[("recipients", "dritte@contoso.example")],
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some(format!("/portal/offers/{id}?invited=1").as_str())
    );
    let audited = audit_actions(&e).await;
    assert_eq!(
        audited
            .iter()
            .filter(|(a, t)| a == "offer.invite" && *t == id)
            .count(),
        3
    );
}

async fn withdraw_is_for_administrators(store: Store) {
    let e = env(store, &[]).await;
    synced(&e).await;
    let id = offer(&e, OfferKind::Purchase, "cli").await;
    offers::invite(
        &e.app.rt,
        &id,
        partnerflow::core::domain::EmailAddress::parse("k@contoso.example").unwrap(),
        None,
        None,
        "cli",
    )
    .await
    .unwrap();
    let mut admin = e
        .signed_in(&e.user("a@partner.example", "admin").await.1)
        .await;
    let mut sales = e.signed_in(&e.user(SALES, "sales_agent").await.1).await;
    let path = format!("/portal/offers/{id}/withdraw");
    // The confirmation step.
    let c = admin.get(&e.url(&path)).await;
    assert_eq!(c.status, 200);
    assert!(c.body.contains("id=\"withdraw-form\""));
    let token = csrf_for_action(&c.body, &path);
    assert_eq!(
        sales
            .post_form(&e.url(&path), &[("csrf", token.as_str())], &[])
            .await
            .status,
        403
    );
    let r = admin
        .post_form(&e.url(&path), &[("csrf", token.as_str())], &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some(format!("/portal/offers/{id}?withdrawn=1").as_str())
    );
    let t = offers::tracking(&e.app.rt, &id).await.unwrap();
    assert_eq!(t.offer.state, "withdrawn");
    assert_eq!(t.invitations[0].state, "withdrawn");
    let p = admin
        .get(&e.url(&format!("/portal/offers/{id}?withdrawn=1")))
        .await
        .body;
    assert!(p.contains("id=\"withdrawn\"") && !p.contains("/withdraw\""));
    // Again: closed already (409); inviting to it: 409 next to the recipients.
    let r = admin
        .post_form(&e.url(&path), &[("csrf", token.as_str())], &[])
        .await;
    assert_eq!(r.status, 409);
    let nonce = admin.cookies.get("pf_csrf").cloned().unwrap();
    let invite = format!("/portal/offers/{id}/invite");
    let t = e.app.rt.keys.csrf_token(&nonce, &invite, e.app.clock.now());
    let r = admin
        .post_form(
            &e.url(&invite),
            &[("csrf", t.as_str()), ("recipients", "x@contoso.example")],
            &[],
        )
        .await;
    assert_eq!(r.status, 409);
    assert!(r.body.contains("id=\"invite-recipients-error\""));
    let audited = audit_actions(&e).await;
    assert_eq!(
        audited
            .iter()
            .filter(|(a, t)| a == "offer.withdraw" && t == id.as_str())
            .count(),
        1
    );
}

async fn the_offer_downloads_as_csv(store: Store) {
    let e = env(store, &[]).await;
    synced(&e).await;
    let id = offer(&e, OfferKind::Purchase, "=HYPERLINK(\"x\")").await;
    offers::invite(
        &e.app.rt,
        &id,
        partnerflow::core::domain::EmailAddress::parse("=cmd@contoso.example").unwrap(),
        None,
        None,
        "cli",
    )
    .await
    .unwrap();
    let mut viewer = e
        .signed_in(&e.user("v@partner.example", "viewer").await.1)
        .await;
    for path in [
        format!("/portal/offers/{id}.csv"),
        format!("/portal/offers/{id}?format=csv"),
    ] {
        let r = viewer.get(&e.url(&path)).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("content-type").unwrap().starts_with("text/csv"));
        assert_eq!(
            r.header("content-disposition"),
            Some(format!("attachment; filename=\"{id}.csv\"").as_str())
        );
        let mut lines = r.body.lines();
        assert_eq!(
            lines.next(),
            Some("record,offer_id,subject,state,at,detail")
        );
        assert!(r.body.contains(&format!("offer,{id},purchase,open,")));
        assert!(r.body.contains(&format!(
            "product,{id},m365-e3,,,Microsoft 365 E3; 10 licences"
        )));
        assert!(
            r.body
                .contains(&format!("invitation,{id},'=cmd@contoso.example,invited,")),
            "{}",
            r.body
        );
        assert!(r.body.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{}", r.body);
        assert!(r.body.contains(&format!("history,{id},publish,open,")));
    }
}

async fn the_list_filters_and_pages_by_keyset(store: Store) {
    let e = env(store, &[]).await;
    synced(&e).await;
    let mut ids = Vec::new();
    for i in 0..53 {
        let kind = if i % 10 == 0 {
            OfferKind::Trial
        } else {
            OfferKind::Purchase
        };
        let by = if i < 3 {
            "other@partner.example"
        } else {
            SALES
        };
        ids.push(offer(&e, kind, by).await);
        if i % 7 == 0 {
            e.advance(MINUTE);
        }
    }
    let mut viewer = e
        .signed_in(&e.user("v@partner.example", "viewer").await.1)
        .await;
    let rows = |body: &str| -> Vec<String> {
        body.split("<th scope=\"row\"><a href=\"/portal/offers/")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_string())
            .collect()
    };
    let first = viewer.get(&e.url("/portal/offers")).await;
    assert_eq!(first.status, 200);
    let page1 = rows(&first.body);
    assert_eq!(page1.len(), 50);
    let mut newest: Vec<&str> = page1[..3].iter().map(String::as_str).collect();
    newest.sort();
    let mut want: Vec<&str> = ids[50..].iter().map(OfferId::as_str).collect();
    want.sort();
    assert_eq!(newest, want, "newest first");
    let older = first
        .body
        .split("href=\"/portal/offers?")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    assert!(older.contains("before="), "{older}");
    let second = viewer.get(&e.url(&format!("/portal/offers?{older}"))).await;
    assert_eq!(second.status, 200);
    let page2 = rows(&second.body);
    assert_eq!(page2.len(), 3);
    assert!(!second.body.contains("id=\"older\""));
    let mut all: Vec<String> = page1.iter().chain(page2.iter()).cloned().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 53, "every offer once");
    // Filters.
    let trials = viewer.get(&e.url("/portal/offers?kind=trial")).await;
    assert_eq!(rows(&trials.body).len(), 6);
    let by = viewer
        .get(&e.url("/portal/offers?created_by=other%40partner.example"))
        .await;
    let mine = rows(&by.body);
    assert_eq!(mine.len(), 3);
    assert!(mine.contains(&ids[0].to_string()));
    let none = viewer
        .get(&e.url("/portal/offers?state=withdrawn&location=loc-berlin"))
        .await;
    assert!(rows(&none.body).is_empty());
    let to = viewer.get(&e.url("/portal/offers?to=2020-01-01")).await;
    assert!(rows(&to.body).is_empty());
    let bad = viewer.get(&e.url("/portal/offers?from=01.01.2026")).await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("id=\"filter-from-error\"") && bad.body.contains("href=\"#filter-from\"")
    );
    let bad = viewer.get(&e.url("/portal/offers?before=garbage")).await;
    assert_eq!(bad.status, 400);
}

async fn hostile_values_are_escaped_in_both_languages(store: Store) {
    let e = env(store, &[]).await;
    synced(&e).await;
    let mut de = user_in(&e, "de@partner.example", "sales_agent", "de").await;
    let mut en = user_in(&e, "en@partner.example", "admin", "en").await;
    let evil = "\"><script>alert(1)</script>";
    let r = post_from(
        &e,
        &mut de,
        "/portal/offers/new/purchase?country=DE",
        "/portal/offers/new/purchase",
        &[
            ("country", "DE"),
            ("location", "loc-berlin"),
            ("licences-m365-e3", "5"),
            ("message", evil),
            ("expires", evil),
        ],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(!r.body.contains("<script>alert"), "{}", r.body);
    assert!(r.body.contains("&lt;script&gt;"));
    assert!(r.body.contains("Kaufangebot erstellen") && r.body.contains("Bitte korrigieren Sie"));
    let r = post_from(
        &e,
        &mut de,
        "/portal/offers/new/purchase?country=DE",
        "/portal/offers/new/purchase",
        &[
            ("country", "DE"),
            ("location", "loc-berlin"),
            ("licences-m365-e3", "5"),
            ("message", evil),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let id = created_id(&r);
    let p = de.get(&e.url(&format!("/portal/offers/{id}"))).await;
    assert!(!p.body.contains("<script>alert"));
    assert!(p.body.contains("<html lang=\"de\">"));
    assert!(
        p.body.contains("Verlauf") && p.body.contains("Angebots-ID") && p.body.contains("offen")
    );
    let p = en.get(&e.url(&format!("/portal/offers/{id}"))).await;
    assert!(!p.body.contains("<script>alert"));
    assert!(p.body.contains("<html lang=\"en\">"));
    assert!(p.body.contains("History") && p.body.contains("Offer ID"));
    let l = de
        .get(&e.url("/portal/offers?created_by=%22%3E%3Cscript%3E"))
        .await;
    assert!(!l.body.contains("<script>") && l.body.contains("Angebote"));
    let l = en
        .get(&e.url("/portal/offers/lookup?offer_id=%3Cscript%3E"))
        .await;
    assert_eq!(l.status, 404);
    assert!(!l.body.contains("<script>") && l.body.contains("Offer not found"));
    let l = de.get(&e.url("/portal/offers/PF-AAAAAAAAAAAA")).await;
    assert!(l.body.contains("Angebot nicht gefunden"));
}

on_both_stores!(
    offer_pages_by_role,
    every_offer_form_refuses_a_bad_csrf_token,
    sales_agent_creates_each_kind_through_the_forms,
    result_page_invites_and_the_offer_page_tracks_delivery,
    withdraw_is_for_administrators,
    the_offer_downloads_as_csv,
    the_list_filters_and_pages_by_keyset,
    hostile_values_are_escaped_in_both_languages,
);
