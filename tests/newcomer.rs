//! What a new user trips over (issue "newcomer"): the public address follows the port, and a
//! form refused for its Origin says that the address does not match.

#[macro_use]
mod common;

use common::Store;
use common::web::{Api, Browser, csrf_of, serve};
use partnerflow::config::Settings;
use partnerflow::domain::Role;
use serde_json::json;

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
    let app = common::spawn_app(store, &[]).await;
    partnerflow::tasks::location_sync(&app.rt).await.unwrap();
    let base = serve(&app).await;
    let (_, t) = partnerflow::offers::create_token(&app.rt, "s", Role::SalesAgent)
        .await
        .unwrap();
    let sales = Api {
        base: base.clone(),
        token: Some(t),
    };
    let o = sales
        .post(
            "/api/v1/offers",
            json!({ "kind": "trial", "location_id": "loc-berlin", "country": "DE", "products": [{ "id": "m365-e3-trial" }] }),
        )
        .await
        .json();
    let link = o["link"]
        .as_str()
        .unwrap()
        .replace("http://127.0.0.1:8080", &base);
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

on_both_stores!(a_foreign_origin_is_named_on_the_page);
