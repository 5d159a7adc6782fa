//! The customers section: the search (by exact user name and by domain; malformed queries
//! refused next to the field), a customer's page (acceptance with its state and offer link,
//! the delegated-admin relationship's end and reminders, invitations with their delivery),
//! every page × role, escaping and both languages. The section has no forms that post.

use super::*;

use partnerflow::core::domain::{Country, InstanceId, Locale, OfferId, OfferKind};
use partnerflow::offers::{self, Acceptance, Accepted, NewOffer};

const DAY: i64 = 86_400_000;
pub(super) const HOSTILE: &str = "<script>alert(1)</script> \"Contoso\" & Co";

/// A browser signed in as a new user with `role` and `language`.
pub(super) async fn browser(e: &Env, email: &str, role: &str, language: &str) -> Browser {
    let new = NewUser::parse(email, "Erika <Muster>", role, language).unwrap();
    let (_, l) = portal::create_user(&e.app.rt, &new, &Actor::cli())
        .await
        .unwrap();
    e.signed_in(&l.url.replace(&e.public(), &e.base)).await
}

/// An open delegated-admin offer (limited) at a synced location.
pub(super) async fn admin_offer(e: &Env) -> OfferId {
    offers::tasks::location_sync(&e.app.rt).await.unwrap();
    offers::create(
        &e.app.rt,
        NewOffer {
            kind: OfferKind::DelegatedAdmin,
            location_id: "loc-berlin".into(),
            country: Country::parse("DE").unwrap(),
            products: vec![],
            delegated_admin: Some(partnerflow::core::domain::AdminRole::Limited),
            auto_extend: false,
            expires_at: None,
            message: None,
        },
        "test",
    )
    .await
    .unwrap()
    .offer
    .offer_id
}

/// A customer at `domain` accepts `offer` (granting delegated administration) and confirms
/// from the admin mailbox, through the services the customer's pages use: the acceptance id.
pub(super) async fn accepted(e: &Env, offer: &OfferId, domain: &str, org: &str) -> InstanceId {
    let rt = &e.app.rt;
    let o = offers::get(rt, offer).await.unwrap();
    let a = Acceptance {
        organisation: org.into(),
        domain: partnerflow::core::domain::DomainName::parse(domain).unwrap(),
        admin_email: partnerflow::core::domain::EmailAddress::parse(&format!("Admin@{domain}"))
            .unwrap(),
        licences: vec![],
        delegated_admin: true,
        locale: Locale::En,
    };
    let Accepted::Unconfirmed(id) = offers::accept(rt, &o, a).await.unwrap() else {
        panic!("accepted before");
    };
    let c = offers::confirm(rt, &offers::confirm_token(rt, &id))
        .await
        .unwrap();
    assert!(matches!(c, offers::Confirmation::Done(_)), "{c:?}");
    id
}

fn day_of(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d %H:%M").to_string()
}

async fn customers_pages_by_role(store: Store) {
    let e = env(store, &[]).await;
    let offer = admin_offer(&e).await;
    accepted(&e, &offer, "contoso.example", "Contoso AG").await;
    let mut admin = browser(&e, "a@partner.example", "admin", "en").await;
    let mut sales = browser(&e, "s@partner.example", "sales_agent", "en").await;
    let mut viewer = browser(&e, "v@partner.example", "viewer", "en").await;
    let mut anon = Browser::new("en");
    //                          admin sales viewer anonymous
    let pages: [(&str, [u16; 4]); 10] = [
        ("/portal/customers", [200, 200, 200, 303]),
        ("/portal/customers?q=", [200, 200, 200, 303]),
        ("/portal/customers?q=contoso.example", [200, 200, 200, 303]),
        (
            "/portal/customers?q=admin%40contoso.example",
            [200, 200, 200, 303],
        ),
        ("/portal/customers?q=nobody.example", [200, 200, 200, 303]),
        ("/portal/customers?q=%2A.example", [400, 400, 400, 303]),
        ("/portal/customers?q=not%20a%20domain", [400, 400, 400, 303]),
        ("/portal/customers/contoso.example", [200, 200, 200, 303]),
        ("/portal/customers/nobody.example", [404, 404, 404, 303]),
        ("/portal/customers/%3Cscript%3E", [404, 404, 404, 303]),
    ];
    for (path, want) in pages {
        let got = [
            status_of(&e, &mut admin, path).await,
            status_of(&e, &mut sales, path).await,
            status_of(&e, &mut viewer, path).await,
            status_of(&e, &mut anon, path).await,
        ];
        assert_eq!(got, want, "{path}");
    }
    // An empty query shows the form only; the navigation marks the section.
    let p = viewer.get(&e.url("/portal/customers")).await.body;
    assert!(p.contains("id=\"customers-q\"") && !p.contains("id=\"results-h\""));
    assert!(p.contains("href=\"/portal/customers\" aria-current=\"page\""));
    // A malformed query: the error next to the field, in the summary, the value kept.
    let p = viewer
        .get(&e.url("/portal/customers?q=%2A%40contoso.example"))
        .await
        .body;
    assert!(p.contains("role=\"alert\"") && p.contains("href=\"#customers-q\""));
    assert!(p.contains("aria-invalid=\"true\"") && p.contains("id=\"customers-q-error\""));
    assert!(p.contains("value=\"*@contoso.example\"") && p.contains("Wildcards"));
    let long = format!("/portal/customers?q={}.example", "a".repeat(400));
    assert_eq!(status_of(&e, &mut viewer, &long).await, 400);
    // The section only reads: nothing posts to it.
    let r = admin.post_form(&e.url("/portal/customers"), &[], &[]).await;
    assert_eq!(r.status, 405);
}

async fn search_by_email_and_domain_finds_the_accepted_customer(store: Store) {
    let e = env(store, &[]).await;
    let rt = &e.app.rt;
    let offer = admin_offer(&e).await;
    // An invitation to an address at the domain, delivered; then the customer accepts.
    offers::invite(
        rt,
        &offer,
        partnerflow::core::domain::EmailAddress::parse("it@contoso.example").unwrap(),
        None,
        None,
        "test",
    )
    .await
    .unwrap();
    rt.run_due().await.unwrap();
    let acc = accepted(&e, &offer, "contoso.example", HOSTILE).await;
    rt.run_due().await.unwrap();
    // Someone else, elsewhere: not found by either query.
    let other = admin_offer(&e).await;
    accepted(&e, &other, "fabrikam.example", "Fabrikam").await;
    let mut viewer = browser(&e, "v@partner.example", "viewer", "en").await;
    for q in [
        "Admin%40Contoso.example",
        "CONTOSO.example",
        "contoso.example.",
    ] {
        let r = viewer
            .get(&e.url(&format!("/portal/customers?q={q}")))
            .await;
        assert_eq!(r.status, 200, "{q}");
        assert!(
            r.body
                .contains("<a href=\"/portal/customers/contoso.example\">contoso.example</a>"),
            "{q}: {}",
            r.body
        );
        assert!(!r.body.contains("fabrikam"), "{q}");
        assert!(!r.body.contains("<script>") && r.body.contains("&lt;script&gt;"));
    }
    let none = viewer
        .get(&e.url("/portal/customers?q=nobody%40contoso.example"))
        .await;
    assert_eq!(none.status, 200);
    assert!(none.body.contains("id=\"no-results\""));
    // Only invited (no acceptance): found by the recipient and by its domain, with a page.
    offers::invite(
        rt,
        &offer,
        partnerflow::core::domain::EmailAddress::parse("Boss@Woodgrove.example").unwrap(),
        None,
        None,
        "test",
    )
    .await
    .unwrap();
    for q in ["boss%40woodgrove.example", "woodgrove.example"] {
        let r = viewer
            .get(&e.url(&format!("/portal/customers?q={q}")))
            .await;
        assert!(
            r.body
                .contains("href=\"/portal/customers/woodgrove.example\"")
                && r.body.contains("<td>invited only</td>"),
            "{q}: {}",
            r.body
        );
    }
    let w = viewer
        .get(&e.url("/portal/customers/woodgrove.example"))
        .await;
    assert_eq!(w.status, 200);
    assert!(
        w.body.contains("<td>Boss@woodgrove.example</td>")
            && w.body.contains("data-state=\"invited\"")
    );
    assert!(
        w.body.contains("No confirmed acceptances.")
            && w.body.contains("No delegated-admin relationship.")
    );
    // The customer's page: the acceptance (state, offer link), the relationship's end and its
    // coming reminders, the invitation with its delivery.
    let p = viewer
        .get(&e.url("/portal/customers/contoso.example"))
        .await
        .body;
    let offer_link = format!("<a href=\"/portal/offers/{offer}\">{offer}</a>");
    assert!(p.contains(&format!("id=\"acceptance-{acc}\"")), "{p}");
    assert!(p.contains(&offer_link));
    let offer_page = format!("/portal/offers/{offer}");
    assert_eq!(
        status_of(&e, &mut viewer, &offer_page).await,
        200,
        "the link leads"
    );
    assert!(p.contains("data-state=\"completed\">completed</td>"), "{p}");
    assert!(
        p.contains("<ul id=\"admin-emails\"><li>Admin@contoso.example</li></ul>"),
        "{p}"
    );
    let ends = e.app.clock.now().plus(Span(730 * DAY));
    assert!(
        p.contains(&format!("<td class=\"ends-at\">{}</td>", day_of(ends))),
        "{p}"
    );
    assert!(p.contains("data-state=\"active\">active</td>"));
    for before in [30, 7, 1] {
        let at = day_of(ends.plus(Span(-before * DAY)));
        assert!(
            p.contains(&format!("<li>{at}</li>")),
            "reminder {before}d: {p}"
        );
    }
    assert!(!p.contains("class=\"reminders-sent\""));
    // The invitation: accepted with the customer's confirmation, its email delivered.
    assert!(p.contains("<td>it@contoso.example</td>"));
    assert!(p.contains("data-state=\"accepted\">accepted</td>"), "{p}");
    assert!(
        p.contains("<ul class=\"delivery\"><li>admin_offer to customer · delivered"),
        "{p}"
    );
    assert!(!p.contains("<script>") && p.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!p.contains("fabrikam"));
    // Thirty days before the end: the first reminder is sent and the relationship is expiring.
    e.advance(700 * DAY);
    rt.run_due().await.unwrap();
    let mut viewer = browser(&e, "v2@partner.example", "viewer", "de").await;
    let p = viewer
        .get(&e.url("/portal/customers/contoso.example"))
        .await
        .body;
    assert!(p.contains("lang=\"de\"") && p.contains("Endet (UTC)"));
    assert!(
        p.contains("data-state=\"expiring\">läuft bald ab</td>"),
        "{p}"
    );
    assert!(
        p.contains("<ul class=\"reminders-sent\"><li>admin_expiry_reminder an"),
        "{p}"
    );
    assert!(p.contains("zugestellt"));
    assert!(!p.contains(&format!("<li>{}</li>", day_of(ends.plus(Span(-30 * DAY))))));
    assert!(p.contains(&format!("<li>{}</li>", day_of(ends.plus(Span(-7 * DAY))))));
    let s = viewer.get(&e.url("/portal/customers?q=contoso")).await;
    assert_eq!(s.status, 400);
    assert!(s.body.contains("vollständige E-Mail-Adresse"));
}

on_both_stores!(
    customers_pages_by_role,
    search_by_email_and_domain_finds_the_accepted_customer,
);
