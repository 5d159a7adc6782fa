//! The overview (`/portal`): every role and language, the write actions for writers only, the
//! figures (offers, acceptances, relationships and their next end, running campaigns) and the
//! period's funnel per kind and location (an SVG with the same figures as a table), a bad
//! filter refused with its errors next to the fields, hostile values escaped.

use super::*;
use partnerflow::campaigns::{self, NewCampaign};
use partnerflow::core::domain::{AdminRole, Country, EmailAddress, OfferId, OfferKind};
use partnerflow::offers::{self, LineRequest, NewOffer};

const DAY: i64 = 86_400_000;

/// The figures of the funnel table (`#funnel-table`): sent, delivered, opened, accepted,
/// completed.
fn funnel_of(page: &str) -> Vec<i64> {
    let i = page
        .find("id=\"funnel-table\"")
        .unwrap_or_else(|| panic!("no funnel table: {page}"));
    let table = &page[i..i + page[i..].find("</table>").unwrap()];
    table
        .split("<td class=\"num\">")
        .skip(1)
        .step_by(2)
        .map(|c| c[..c.find('<').unwrap()].parse().unwrap())
        .collect()
}

/// The row of `kind` (its label) in the per-kind table.
fn kind_row(page: &str, label: &str) -> Option<Vec<i64>> {
    let i = page.find("id=\"funnel-kinds\"")?;
    let table = &page[i..i + page[i..].find("</table>").unwrap()];
    let r = table.find(&format!("<th scope=\"row\">{label}</th>"))?;
    let row = &table[r..r + table[r..].find("</tr>").unwrap()];
    Some(
        row.split("<td class=\"num\">")
            .skip(1)
            .map(|c| c[..c.find('<').unwrap()].parse().unwrap())
            .collect(),
    )
}

fn figure(page: &str, id: &str) -> i64 {
    let i = page.find(&format!("id=\"{id}\">")).expect(id) + id.len() + 6;
    page[i..i + page[i..].find('<').unwrap()].parse().unwrap()
}

/// A page that must answer 200: its body.
async fn page_of(e: &Env, b: &mut Browser, path: &str) -> String {
    let r = b.get(&e.url(path)).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.body
}

async fn offer(e: &Env, kind: OfferKind, location: &str, country: &str) -> (String, String) {
    let products = match kind {
        OfferKind::Trial => vec![LineRequest {
            product: partnerflow::core::domain::ProductId::parse("m365-business-premium-trial")
                .unwrap(),
            licences: None,
        }],
        _ => vec![],
    };
    let o = offers::create(
        &e.app.rt,
        NewOffer {
            kind,
            location_id: location.into(),
            country: Country::parse(country).unwrap(),
            products,
            delegated_admin: Some(AdminRole::Limited),
            auto_extend: false,
            expires_at: None,
            message: None,
        },
        "test",
    )
    .await
    .unwrap();
    (
        o.offer.offer_id.as_str().to_string(),
        o.offer.link.replace(&e.public(), &e.base),
    )
}

async fn overview_by_role_language_and_actions(store: Store) {
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
    //                                         admin sales viewer anonymous
    let pages: [(&str, [u16; 4]); 5] = [
        ("/portal", [200, 200, 200, 303]),
        ("/portal?period=7", [200, 200, 200, 303]),
        ("/portal?period=90&kind=trial", [200, 200, 200, 303]),
        (
            "/portal?from=2026-01-01&to=2026-12-31",
            [200, 200, 200, 303],
        ),
        ("/portal?period=x", [400, 400, 400, 303]),
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
    // The page has no write of its own: a POST is not a route, for anyone.
    for b in [&mut admin, &mut viewer] {
        let r = b.post_form(&e.url("/portal"), &[("csrf", "x")], &[]).await;
        assert_eq!(r.status, 405);
    }
    // The write actions for writers only; reading links for everyone.
    let writes = [
        "/portal/offers/new/trial",
        "/portal/offers/new/purchase",
        "/portal/offers/new/delegated-admin",
        "/portal/campaigns/new",
    ];
    for (b, writer) in [(&mut admin, true), (&mut sales, true), (&mut viewer, false)] {
        let p = b.get(&e.url("/portal")).await.body;
        for w in writes {
            assert_eq!(p.contains(&format!("href=\"{w}\"")), writer, "{w}");
        }
        assert!(p.contains("href=\"/portal/offers\"") && p.contains("href=\"/portal/customers\""));
        assert!(
            p.contains("aria-current=\"page\""),
            "the nav marks the overview"
        );
        assert!(
            p.contains("Erika &lt;Muster&gt;"),
            "the user's name, escaped"
        );
    }
    // Both languages.
    let new = NewUser::parse("de@partner.example", "<b>Jörg</b>", "viewer", "de").unwrap();
    let (_, l) = portal::create_user(&e.app.rt, &new, &Actor::cli())
        .await
        .unwrap();
    let mut de = e.signed_in(&l.url.replace(&e.public(), &e.base)).await;
    let p = de.get(&e.url("/portal")).await.body;
    assert!(p.contains("lang=\"de\"") && p.contains("Partnerübersicht") && p.contains("Trichter"));
    assert!(p.contains("Link geöffnet") && p.contains("Letzte 30 Tage"));
    assert!(p.contains("&lt;b&gt;Jörg&lt;/b&gt;") && !p.contains("<b>Jörg"));
    let p = viewer.get(&e.url("/portal")).await.body;
    assert!(p.contains("lang=\"en\"") && p.contains("Partner overview") && p.contains("Funnel"));
    assert!(p.contains("Link opened") && p.contains("Last 30 days"));
}

async fn overview_refuses_a_bad_filter_next_to_its_fields(store: Store) {
    let e = env(store, &[]).await;
    let mut b = e
        .signed_in(&e.user("v@partner.example", "viewer").await.1)
        .await;
    let r = b
        .get(&e.url(
            "/portal?period=%3Cscript%3E&from=%3Cb%3Ex&to=&kind=%22%3E%3Cscript%3E&location=%3Cimg%3E",
        ))
        .await;
    assert_eq!(r.status, 400);
    let p = r.body;
    assert!(!p.contains("<script>") && !p.contains("<b>x") && !p.contains("<img>"));
    assert!(p.contains("&lt;b&gt;x"), "the value given, escaped");
    assert!(p.contains("role=\"alert\""), "an error summary");
    for f in ["period", "from", "kind", "location"] {
        assert!(p.contains(&format!("href=\"#overview-{f}\"")), "{f}");
        assert!(p.contains(&format!("id=\"overview-{f}-error\"")), "{f}");
    }
    assert!(p.contains("aria-invalid=\"true\""));
    assert!(!p.contains("<svg"), "no funnel for a refused filter");
    // To before from; a "to" alone.
    let r = b.get(&e.url("/portal?from=2026-03-02&to=2026-03-01")).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"overview-to-error\""));
    let r = b.get(&e.url("/portal?to=2026-03-01")).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"overview-from-error\""));
}

async fn overview_counts_the_funnel_per_kind_and_location(store: Store) {
    let e = env(store, &[]).await;
    offers::tasks::location_sync(&e.app.rt).await.unwrap();
    let (viewer, link) = e.user("v@partner.example", "viewer").await;
    let mut b = e.signed_in(&link).await;
    let empty = page_of(&e, &mut b, "/portal").await;
    assert_eq!(funnel_of(&empty), vec![0, 0, 0, 0, 0]);
    assert!(empty.contains("<svg") && empty.contains("role=\"img\""));
    assert_eq!(figure(&empty, "open-offers"), 0);

    // A delegated-admin offer in Berlin: invited, opened (twice: counted once), accepted,
    // confirmed (complete at once), its relationship active with an end.
    let (da, da_link) = offer(&e, OfferKind::DelegatedAdmin, "loc-berlin", "DE").await;
    let (trial_id, _) = offer(&e, OfferKind::Trial, "loc-wien", "AT").await;
    offers::invite(
        &e.app.rt,
        &OfferId::parse(&da).unwrap(),
        EmailAddress::parse("it@woodgrove.example").unwrap(),
        None,
        None,
        "test",
    )
    .await
    .unwrap();
    e.app.rt.run_due().await.unwrap();
    let mut customer = Browser::new("en");
    assert_eq!(customer.get(&da_link).await.status, 200);
    let r = common::web::submit_accept(
        &mut customer,
        &da_link,
        &[
            ("organisation", "Woodgrove"),
            ("domain", "woodgrove.example"),
            ("admin_email", "it@woodgrove.example"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let p = page_of(&e, &mut b, "/portal").await;
    assert_eq!(
        funnel_of(&p),
        vec![1, 1, 1, 0, 0],
        "not accepted before confirmation"
    );
    assert!(p.contains("<th scope=\"row\">Unconfirmed</th><td class=\"num\">1</td>"));
    e.app.rt.run_due().await.unwrap();
    let (_, c) =
        common::web::confirmations_to(&e.app, "it@woodgrove.example", &e.public(), &e.base)
            .pop()
            .expect("a confirmation link");
    let r = common::web::confirm_at(&mut customer, &c).await;
    assert_eq!(r.status, 200, "{}", r.body);
    e.app.rt.run_due().await.unwrap();

    let p = page_of(&e, &mut b, "/portal").await;
    assert_eq!(funnel_of(&p), vec![1, 1, 1, 1, 1]);
    assert_eq!(
        kind_row(&p, "Delegated administration"),
        Some(vec![1, 1, 1, 1, 1])
    );
    assert_eq!(kind_row(&p, "Trial"), Some(vec![0, 0, 0, 0, 0]));
    assert_eq!(figure(&p, "open-offers"), 2);
    assert_eq!(figure(&p, "sent"), 1);
    assert!(p.contains("<th scope=\"row\">Completed</th><td class=\"num\">1</td>"));
    assert!(p.contains("<th scope=\"row\">Active</th><td class=\"num\">1</td>"));
    assert!(
        p.contains("<td>woodgrove.example</td><td>limited</td>"),
        "the next end"
    );
    assert!(p.contains(
        "aria-label=\"Funnel: Sent 1, Delivered 1, Link opened 1, Accepted 1, Completed 1\""
    ));
    assert!(p.contains("<title>Funnel: Sent 1"));

    // Filters: kind, location (another location counts nothing), period.
    let p = page_of(&e, &mut b, "/portal?kind=trial").await;
    assert_eq!(funnel_of(&p), vec![0, 0, 0, 0, 0]);
    assert_eq!(kind_row(&p, "Delegated administration"), None);
    let p = page_of(&e, &mut b, "/portal?location=loc-wien").await;
    assert_eq!(funnel_of(&p), vec![0, 0, 0, 0, 0]);
    let p = b
        .get(&e.url("/portal?location=loc-berlin&kind=delegated_admin"))
        .await
        .body;
    assert_eq!(funnel_of(&p), vec![1, 1, 1, 1, 1]);
    assert!(p.contains("<option value=\"loc-berlin\" selected>"));
    e.advance(8 * DAY);
    let mut b = e.signed_in(&e.link(&viewer).await).await;
    // The same figures counted from the ledgers, then from the days rolled up (what every
    // node does an hour after a day ends), then again (a second roll-up adds nothing).
    for round in ["counted", "rolled up", "rolled up twice"] {
        if round != "counted" {
            let days = e
                .app
                .rt
                .store
                .roll_up_funnel(e.app.rt.clock.now())
                .await
                .unwrap();
            assert_eq!(days > 0, round == "rolled up", "{round}: {days} days");
        }
        let p = page_of(&e, &mut b, "/portal?period=7").await;
        assert_eq!(
            funnel_of(&p),
            vec![0, 0, 0, 0, 0],
            "{round}: out of the last 7 days"
        );
        let p = page_of(&e, &mut b, "/portal").await;
        assert_eq!(
            funnel_of(&p),
            vec![1, 1, 1, 1, 1],
            "{round}: in the last 30 days"
        );
        assert_eq!(
            kind_row(&p, "Delegated administration"),
            Some(vec![1, 1, 1, 1, 1]),
            "{round}"
        );
        let p = page_of(&e, &mut b, "/portal?location=loc-wien").await;
        assert_eq!(
            funnel_of(&p),
            vec![0, 0, 0, 0, 0],
            "{round}: another location"
        );
        let day = Timestamp(e.app.rt.clock.now().0 - 8 * DAY)
            .to_datetime()
            .format("%Y-%m-%d")
            .to_string();
        let p = b
            .get(&e.url(&format!(
                "/portal?period=7&from={day}&to={day}&location=loc-berlin"
            )))
            .await
            .body;
        assert_eq!(
            funnel_of(&p),
            vec![1, 1, 1, 1, 1],
            "{round}: dates take precedence"
        );
    }

    // A running campaign (its hostile name escaped) with its progress.
    let trial = OfferId::parse(&trial_id).unwrap();
    let c = campaigns::create(
        &e.app.rt,
        &trial,
        NewCampaign {
            name: "<script>alert(1)</script>".into(),
            ..Default::default()
        },
        "test",
    )
    .await
    .unwrap();
    let csv = "email,name,locale\na@fabrikam.example,A,de\nb@fabrikam.example,B,en\n";
    campaigns::import_csv(&e.app.rt, &c.id, csv.as_bytes(), |_| {})
        .await
        .unwrap();
    campaigns::start(&e.app.rt, &c.id).await.unwrap();
    let p = page_of(&e, &mut b, "/portal").await;
    assert!(!p.contains("<script>alert(1)"));
    assert!(
        p.contains("&lt;script&gt;alert(1)&lt;/script&gt;</a>"),
        "the campaign, escaped"
    );
    assert!(p.contains("max=\"2\" value=\"0\""), "0 of 2 sent");
}

on_both_stores!(
    overview_by_role_language_and_actions,
    overview_refuses_a_bad_filter_next_to_its_fields,
    overview_counts_the_funnel_per_kind_and_location,
);
