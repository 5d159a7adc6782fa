//! The resellers section: the partnerships (keyset pages by MPN ID) and a reseller's page
//! for every role; administrators request, associate and end through the forms (audited,
//! errors next to the fields); every form refused without a valid CSRF token and every write
//! refused for sales agents and viewers by the server; MPN IDs validated; escaping; both
//! languages.

use super::customers::{HOSTILE, accepted, admin_offer, browser};
use super::*;

use partnerflow::core::domain::{EmailAddress, MpnId};
use partnerflow::offers;

const MPN: &str = "1234567";
const LIST: &str = "/portal/resellers";
const PAGE: &str = "/portal/resellers/1234567";
const ASSOCIATE: &str = "/portal/resellers/1234567/customers";
const END: &str = "/portal/resellers/1234567/end";

async fn request(e: &Env, mpn: &str, name: &str) {
    offers::request_reseller(
        &e.app.rt,
        MpnId::parse(mpn).unwrap(),
        name.into(),
        EmailAddress::parse("partners@reseller.example").unwrap(),
        "test",
    )
    .await
    .unwrap();
}

async fn reseller_state(e: &Env) -> String {
    offers::reseller(&e.app.rt, &MpnId::parse(MPN).unwrap())
        .await
        .unwrap()
        .state
}

async fn accept(e: &Env) {
    let r = offers::reseller(&e.app.rt, &MpnId::parse(MPN).unwrap())
        .await
        .unwrap();
    assert!(
        offers::accept_reseller_request(&e.app.rt, &r)
            .await
            .unwrap()
    );
}

async fn audit_actions(e: &Env) -> Vec<(String, String, String, String)> {
    portal::audit::list(
        &e.app.rt,
        &AuditQuery {
            action: None,
            ..Default::default()
        },
        100,
    )
    .await
    .unwrap()
    .rows
    .into_iter()
    .filter(|r| r.action.starts_with("reseller."))
    .map(|r| (r.actor, r.action, r.target, r.detail))
    .collect()
}

async fn resellers_pages_by_role(store: Store) {
    let e = env(store, &[]).await;
    request(&e, MPN, "Reseller GmbH").await;
    let mut admin = browser(&e, "a@partner.example", "admin", "en").await;
    let mut sales = browser(&e, "s@partner.example", "sales_agent", "en").await;
    let mut viewer = browser(&e, "v@partner.example", "viewer", "en").await;
    let mut anon = Browser::new("en");
    //                          admin sales viewer anonymous
    let pages: [(&str, [u16; 4]); 7] = [
        (LIST, [200, 200, 200, 303]),
        ("/portal/resellers?after=12345", [200, 200, 200, 303]),
        ("/portal/resellers?after=x%3Cy", [400, 400, 400, 303]),
        (PAGE, [200, 200, 200, 303]),
        ("/portal/resellers/7654321", [404, 404, 404, 303]),
        ("/portal/resellers/12ab%3Cscript%3E", [404, 404, 404, 303]),
        ("/portal/resellers/123", [404, 404, 404, 303]),
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
    // The forms are shown to administrators only (the API's writes need `admin`).
    let p = admin.get(&e.url(LIST)).await.body;
    assert!(p.contains("action=\"/portal/resellers\""));
    assert!(p.contains("href=\"/portal/resellers\" aria-current=\"page\""));
    for b in [&mut sales, &mut viewer] {
        let p = b.get(&e.url(LIST)).await.body;
        assert!(p.contains("href=\"/portal/resellers/1234567\"") && p.contains("Reseller GmbH"));
        assert!(!p.contains("action=\"/portal/resellers\""));
        let p = b.get(&e.url(PAGE)).await.body;
        assert!(!p.contains("id=\"end-form\"") && !p.contains("id=\"associate-form\""));
    }
    let p = admin.get(&e.url(PAGE)).await.body;
    assert!(p.contains("id=\"end-form\"") && p.contains("id=\"associate-inactive\""));
    // Writes: refused by the server for sales agents and viewers (403 on the POST itself,
    // even with the administrator's valid token), anonymous sent to sign in.
    let tokens = [
        (LIST, csrf_for_action(&p_list(&e, &mut admin).await, LIST)),
        (END, csrf_for_action(&p, END)),
    ];
    for (path, token) in &tokens {
        for b in [&mut sales, &mut viewer] {
            let r = b
                .post_form(
                    &e.url(path),
                    &[
                        ("csrf", token.as_str()),
                        ("mpn_id", "7654321"),
                        ("name", "X"),
                        ("email", "x@reseller.example"),
                    ],
                    &[],
                )
                .await;
            assert_eq!(r.status, 403, "{path}");
        }
    }
    for path in [LIST, ASSOCIATE, END, "/portal/resellers/nope/end"] {
        for b in [&mut sales, &mut viewer] {
            // A token valid for this browser and form: the refusal is the role's.
            let token = own_token(&e, b, path);
            let r = b
                .post_form(
                    &e.url(path),
                    &[
                        ("csrf", token.as_str()),
                        ("domain", "contoso.example"),
                        ("mpn_id", "7654321"),
                        ("name", "X"),
                        ("email", "x@reseller.example"),
                    ],
                    &[],
                )
                .await;
            assert_eq!(r.status, 403, "{path}");
            assert!(
                r.body.contains("Your role does not allow this page"),
                "{path}"
            );
        }
        let r = anon
            .post_form(&e.url(path), &[("domain", "contoso.example")], &[])
            .await;
        assert_eq!(
            (r.status, r.header("location")),
            (303, Some("/portal/sign-in")),
            "{path}"
        );
    }
    assert_eq!(reseller_state(&e).await, "request_sent");
    assert!(
        offers::reseller(&e.app.rt, &MpnId::parse("7654321").unwrap())
            .await
            .is_err()
    );
    assert!(audit_actions(&e).await.is_empty());
    // Malformed MPN IDs in a write's path: 404 (after the role check).
    let r = post_from(&e, &mut admin, PAGE, END, &[]).await;
    assert_eq!(r.status, 303);
    let r = admin
        .post_form(&e.url("/portal/resellers/x1/end"), &[], &[])
        .await;
    assert_eq!(r.status, 404);
}

/// A CSRF token for `path` valid for this browser (its nonce cookie), as its page would give.
fn own_token(e: &Env, b: &Browser, path: &str) -> String {
    let nonce = b.cookies.get("pf_csrf").expect("a CSRF nonce cookie");
    e.app.rt.keys.csrf_token(nonce, path, e.app.clock.now())
}

async fn p_list(e: &Env, b: &mut Browser) -> String {
    b.get(&e.url(LIST)).await.body
}

async fn every_reseller_form_refuses_a_bad_csrf_token(store: Store) {
    let e = env(store, &[]).await;
    let offer = admin_offer(&e).await;
    accepted(&e, &offer, "contoso.example", "Contoso").await;
    request(&e, MPN, "Reseller GmbH").await;
    accept(&e).await;
    let mut admin = browser(&e, "a@partner.example", "admin", "en").await;
    let list = p_list(&e, &mut admin).await;
    let page = admin.get(&e.url(PAGE)).await.body;
    let list_token = csrf_for_action(&list, LIST);
    let associate_token = csrf_for_action(&page, ASSOCIATE);
    let end_token = csrf_for_action(&page, END);
    let fields = [
        ("mpn_id", "7654321"),
        ("name", "Other"),
        ("email", "o@reseller.example"),
        ("domain", "contoso.example"),
        ("support_contact", "true"),
    ];
    for (path, other) in [
        (LIST, &associate_token),
        (ASSOCIATE, &end_token),
        (END, &list_token),
    ] {
        for csrf in ["", "garbage", other.as_str()] {
            let mut f = vec![("csrf", csrf)];
            f.extend_from_slice(&fields);
            let r = admin.post_form(&e.url(path), &f, &[]).await;
            assert_eq!(r.status, 403, "{path} with `{csrf}`");
        }
        // Its own valid token, from another origin.
        let own = match path {
            LIST => &list_token,
            ASSOCIATE => &associate_token,
            _ => &end_token,
        };
        let mut f = vec![("csrf", own.as_str())];
        f.extend_from_slice(&fields);
        let r = admin
            .post_form(&e.url(path), &f, &[("Origin", "https://evil.example")])
            .await;
        assert_eq!(r.status, 403, "{path} from another origin");
    }
    // Nothing happened.
    assert_eq!(reseller_state(&e).await, "active");
    let r = offers::reseller(&e.app.rt, &MpnId::parse(MPN).unwrap())
        .await
        .unwrap();
    assert!(r.customers.is_empty());
    assert!(
        offers::reseller(&e.app.rt, &MpnId::parse("7654321").unwrap())
            .await
            .is_err()
    );
    assert!(audit_actions(&e).await.is_empty());
    // The same tokens work when valid (the refusals above were the token's).
    let r = post_from(&e, &mut admin, PAGE, END, &[]).await;
    assert_eq!(r.status, 303);
}

async fn resellers_request_associate_end_through_forms(store: Store) {
    let e = env(store, &[]).await;
    let rt = &e.app.rt;
    let offer = admin_offer(&e).await;
    let acc = accepted(&e, &offer, "contoso.example", "Contoso").await;
    let other = admin_offer(&e).await;
    let acc2 = accepted(&e, &other, "fabrikam.example", "Fabrikam").await;
    let mut admin = browser(&e, "a@partner.example", "admin", "en").await;
    // Malformed fields: 400, each error next to its field and in the summary.
    let r = post_from(
        &e,
        &mut admin,
        LIST,
        LIST,
        &[("mpn_id", "12ab"), ("name", " "), ("email", HOSTILE)],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    for f in ["mpn_id", "name", "email"] {
        assert!(r.body.contains(&format!("href=\"#reseller-{f}\"")), "{f}");
        assert!(
            r.body.contains(&format!("id=\"reseller-{f}-error\"")),
            "{f}"
        );
    }
    assert!(r.body.contains("aria-invalid=\"true\""));
    assert!(!r.body.contains("<script>") && r.body.contains("&lt;script&gt;"));
    // The request: a 303 to the reseller's page, the email on its way.
    let r = post_from(
        &e,
        &mut admin,
        LIST,
        LIST,
        &[
            ("mpn_id", MPN),
            ("name", HOSTILE),
            ("email", "Partners@Reseller.example"),
        ],
    )
    .await;
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/portal/resellers/1234567?done=request")),
        "{}",
        r.body
    );
    rt.run_due().await.unwrap();
    assert!(
        e.app
            .outbox()
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .any(|m| m.to_lowercase().contains("partners@reseller.example")),
        "the request is mailed to the reseller"
    );
    let p = admin
        .get(&e.url("/portal/resellers/1234567?done=request"))
        .await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("id=\"done\"") && p.body.contains("on its way"));
    assert!(p.body.contains("data-state=\"request_sent\""));
    assert!(!p.body.contains("<script>") && p.body.contains("&lt;script&gt;alert(1)"));
    // Not active yet: no associate form; asked again: 409 next to the MPN ID.
    assert!(
        p.body.contains("id=\"associate-inactive\"") && !p.body.contains("id=\"associate-form\"")
    );
    assert!(p.body.contains("Withdraw request"));
    let r = post_from(
        &e,
        &mut admin,
        LIST,
        LIST,
        &[
            ("mpn_id", MPN),
            ("name", "Again"),
            ("email", "x@reseller.example"),
        ],
    )
    .await;
    assert_eq!(r.status, 409);
    assert!(r.body.contains("href=\"#reseller-mpn_id\""));
    // The reseller accepts (its personal page): customers can be associated.
    accept(&e).await;
    let list = admin.get(&e.url(LIST)).await.body;
    assert!(list.contains("data-state=\"active\">active</td>"));
    for (fields, status, field) in [
        (vec![], 400, "domain"),
        (
            vec![
                ("domain", "contoso.example"),
                ("acceptance_id", acc.as_str()),
            ],
            400,
            "domain",
        ),
        (vec![("domain", "not a domain")], 400, "domain"),
        (vec![("acceptance_id", "<x>")], 400, "acceptance_id"),
        (vec![("domain", "nobody.example")], 404, "domain"),
        (
            vec![("acceptance_id", "in_nosuchacceptance")],
            404,
            "acceptance_id",
        ),
    ] {
        let r = post_from(&e, &mut admin, PAGE, ASSOCIATE, &fields).await;
        assert_eq!(r.status, status, "{fields:?}: {}", r.body);
        assert!(
            r.body.contains(&format!("href=\"#associate-{field}\""))
                && r.body.contains(&format!("id=\"associate-{field}-error\"")),
            "{fields:?}"
        );
    }
    let r = post_from(
        &e,
        &mut admin,
        PAGE,
        ASSOCIATE,
        &[("domain", "Contoso.example"), ("support_contact", "true")],
    )
    .await;
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/portal/resellers/1234567?done=associate")),
        "{}",
        r.body
    );
    let r = post_from(
        &e,
        &mut admin,
        PAGE,
        ASSOCIATE,
        &[("acceptance_id", acc2.as_str())],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let p = admin.get(&e.url(PAGE)).await.body;
    assert!(p.contains("<a href=\"/portal/customers/contoso.example\">contoso.example</a>"));
    assert!(p.contains("<a href=\"/portal/customers/fabrikam.example\">fabrikam.example</a>"));
    assert!(p.contains(&format!("<code>{acc2}</code>")));
    assert_eq!(
        p.matches("<td class=\"support-contact\">yes</td>").count(),
        1
    );
    // The customer's page names the reseller and the support contact.
    let c = admin
        .get(&e.url("/portal/customers/contoso.example"))
        .await
        .body;
    assert!(c.contains("<a href=\"/portal/resellers/1234567\">1234567</a>"));
    assert!(c.contains("&lt;script&gt;alert(1)") && !c.contains("<script>"));
    assert!(c.contains("<td class=\"support-contact\">yes</td>"));
    // End: the partnership is removed, the customers stay, no one's support contact.
    let r = post_from(&e, &mut admin, PAGE, END, &[]).await;
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/portal/resellers/1234567?done=end"))
    );
    assert_eq!(reseller_state(&e).await, "removed");
    let p = admin.get(&e.url(PAGE)).await.body;
    assert!(p.contains("data-state=\"removed\"") && !p.contains("id=\"end-form\""));
    assert!(p.contains("contoso.example") && !p.contains("<td class=\"support-contact\">yes"));
    let c = admin
        .get(&e.url("/portal/customers/contoso.example"))
        .await
        .body;
    assert!(c.contains("<td class=\"support-contact\">no</td>"));
    // Every write is in the audit log, with who did it.
    let log = audit_actions(&e).await;
    let acts: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|(a, b, c, _)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        acts,
        [
            ("a@partner.example", "reseller.end", MPN),
            ("a@partner.example", "reseller.associate", MPN),
            ("a@partner.example", "reseller.associate", MPN),
            ("a@partner.example", "reseller.request", MPN),
        ]
    );
    assert!(log[2].3.contains("domain contoso.example") && log[2].3.contains("yes"));
    assert!(log[1].3.contains(acc2.as_str()));
    // A German administrator's pages are German; a new request after the end is allowed.
    let mut de = browser(&e, "de@partner.example", "admin", "de").await;
    let p = de.get(&e.url(LIST)).await.body;
    assert!(p.contains("lang=\"de\"") && p.contains("Reseller-Partnerschaft anfragen"));
    assert!(p.contains("beendet (entfernt)"));
    let r = post_from(
        &e,
        &mut de,
        LIST,
        LIST,
        &[("mpn_id", "x"), ("name", "N"), ("email", "n@r.example")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("id=\"reseller-mpn_id-error\"") && r.body.contains("Die MPN-ID besteht")
    );
    let r = post_from(
        &e,
        &mut de,
        LIST,
        LIST,
        &[
            ("mpn_id", MPN),
            ("name", "Neu"),
            ("email", "n@reseller.example"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(reseller_state(&e).await, "request_sent");
    // Withdrawn while requested; then nothing left to end (the form is gone).
    let r = post_from(&e, &mut de, PAGE, END, &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(reseller_state(&e).await, "withdrawn");
}

async fn the_reseller_list_pages_by_mpn_id(store: Store) {
    let e = env(store, &[]).await;
    for i in 0..53 {
        request(&e, &format!("{}", 1_000_000 + i), &format!("Reseller {i}")).await;
    }
    let mut viewer = browser(&e, "v@partner.example", "viewer", "en").await;
    let first = viewer.get(&e.url(LIST)).await.body;
    assert_eq!(first.matches("<tr><th scope=\"row\">").count(), 50);
    assert!(first.contains(">1000000</a>") && first.contains(">1000049</a>"));
    let next = first
        .split("<a href=\"/portal/resellers?after=")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a next link")
        .to_string();
    assert_eq!(next, "1000049");
    let second = viewer
        .get(&e.url(&format!("/portal/resellers?after={next}")))
        .await
        .body;
    assert_eq!(second.matches("<tr><th scope=\"row\">").count(), 3);
    assert!(second.contains(">1000050</a>") && second.contains(">1000052</a>"));
    assert!(!second.contains("id=\"next\""));
}

on_both_stores!(
    resellers_pages_by_role,
    every_reseller_form_refuses_a_bad_csrf_token,
    resellers_request_associate_end_through_forms,
    the_reseller_list_pages_by_mpn_id,
);
