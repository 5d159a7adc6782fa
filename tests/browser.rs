//! A real browser: headless Chromium (Debian's chromium + chromium-driver, driven over
//! WebDriver) opens the offer link taken from an email delivered over SMTP, edits a licence
//! count, accepts with and without delegated administration, opens the confirmation link from
//! the next email delivered over SMTP, confirms, and lands on the sign-up URL with the advisor
//! code; the acceptance is tracked only after confirmation. No JavaScript on our pages: the
//! browser submits plain HTML forms.
//!
//! Without the browser or its driver (/usr/bin/chromium, /usr/bin/chromedriver; other paths
//! through PARTNERFLOW_TEST_CHROMIUM and PARTNERFLOW_TEST_CHROMEDRIVER) the test reports
//! itself skipped, unless PARTNERFLOW_TEST_REQUIRE_BROWSER=1 (set by `.ci/run`, which installs
//! both).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::smtp::SmtpServer;
use common::web::link_in;
use common::webdriver::Driver;
use fantoccini::elements::Element;
use fantoccini::{Client, Locator};
use partnerflow::core::domain::OfferId;
use serde_json::json;
use url::Url;

/// How long a page may take to show what a step waits for.
const WAIT: Duration = Duration::from_secs(20);

/// The provider's sign-up page, stood in by a tiny HTTP server that records what it was
/// asked for.
fn signup_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for stream in l.incoming().flatten() {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            let _ = r.read_line(&mut first);
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            s.lock().unwrap().push(first.trim().to_string());
            let body = "<!DOCTYPE html><title>Sign-up</title><h1>Provider sign-up</h1>";
            let mut w = stream;
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (base, seen)
}

/// A machine with Chromium but without chromedriver (or the other way round) skips the
/// browser test instead of failing in the middle of it.
#[test]
fn a_missing_browser_or_driver_is_a_skip() {
    let dir = tempfile::tempdir().unwrap();
    let present = dir.path().join("present");
    std::fs::write(&present, "").unwrap();
    let present = present.to_str().unwrap();
    let absent = dir.path().join("absent");
    let absent = absent.to_str().unwrap();
    let why = common::webdriver::missing(present, absent).expect("no driver: skip");
    assert!(why.contains(absent) && why.contains("WebDriver"), "{why}");
    let why = common::webdriver::missing(absent, present).expect("no browser: skip");
    assert!(why.contains(absent) && why.contains("browser"), "{why}");
    assert_eq!(common::webdriver::missing(present, present), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_accepts_an_offer_from_a_delivered_email() {
    use common::webdriver::{chromedriver, chromium, missing};
    if let Some(why) = missing(&chromium(), &chromedriver()) {
        if std::env::var("PARTNERFLOW_TEST_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("{why} (PARTNERFLOW_TEST_REQUIRE_BROWSER=1)");
        }
        common::report(&format!(
            "SKIPPED: chromium_accepts_an_offer_from_a_delivered_email: {why}"
        ));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(&tmp.path().join("received"));
    let (signup, signup_seen) = signup_server();
    // Our server's address is fixed first: links in emails start with it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let port = smtp.port.to_string();
    let signup_url = format!("{signup}/start");
    let app = common::spawn_app(
        common::Store::Sqlite,
        &[
            ("PARTNERFLOW__APP__PUBLIC_BASE_URL", &base),
            ("PARTNERFLOW__OFFERS__SIGNUP_URL", &signup_url),
            ("PARTNERFLOW__EMAIL__TRANSPORT", "smtp"),
            ("PARTNERFLOW__EMAIL__SMTP__HOST", "127.0.0.1"),
            ("PARTNERFLOW__EMAIL__SMTP__PORT", &port),
            ("PARTNERFLOW__EMAIL__SMTP__SECURITY", "none"),
        ],
    )
    .await;
    tokio::spawn(partnerflow::server::serve(
        app.rt.clone(),
        listener,
        partnerflow::server::ServeOptions { workers: false },
        std::future::pending(),
    ));
    partnerflow::offers::tasks::location_sync(&app.rt)
        .await
        .unwrap();

    // The partner creates a purchase offer with limited delegated admin and invites someone.
    let body = json!({
        "kind": "purchase", "location_id": "loc-berlin", "country": "DE",
        "products": [{ "id": "m365-e3", "licences": 25 }, { "id": "exchange-online-plan-1", "licences": 10 }],
        "delegated_admin": "limited",
    });
    let n = partnerflow::web::api::offers::parse_new_offer(body.to_string().as_bytes()).unwrap();
    let o = partnerflow::offers::create(&app.rt, n, "test")
        .await
        .unwrap();
    let id = o.offer.offer_id.clone();
    let to = partnerflow::core::domain::EmailAddress::parse("einkauf@fabrikam.example").unwrap();
    partnerflow::offers::invite(
        &app.rt,
        &id,
        to,
        None,
        Some(partnerflow::core::domain::Locale::En),
        "test",
    )
    .await
    .unwrap();
    common::wait_for(
        "the invitation delivered over SMTP",
        Duration::from_secs(30),
        || {
            let rt = app.rt.clone();
            let smtp_count = smtp.count();
            async move {
                if smtp_count >= 1 {
                    return true;
                }
                let _ = rt.run_due().await;
                false
            }
        },
    )
    .await;
    let mail = smtp.received().into_iter().next().unwrap();
    assert!(
        mail.rcpt_to
            .iter()
            .any(|r| r.contains("einkauf@fabrikam.example"))
    );
    let link =
        link_in(&mail.raw, &format!("{base}/o/")).expect("the offer link in the delivered email");
    let code = link.rsplit('/').next().unwrap().to_string();

    let driver = Driver::start().await.unwrap();
    let expected = Url::parse(&format!("{signup_url}?advisor_code={code}")).unwrap();

    // The confirmation link mailed to `to`, once it has been delivered over SMTP.
    let confirmation_to = |to: &'static str| {
        let rt = app.rt.clone();
        let smtp = &smtp;
        let base = base.clone();
        async move {
            let mut found = None;
            common::wait_for(
                &format!("the confirmation link to {to} delivered over SMTP"),
                Duration::from_secs(30),
                || {
                    let rt = rt.clone();
                    found = smtp
                        .received()
                        .into_iter()
                        .filter(|m| m.rcpt_to.iter().any(|r| r.contains(to)))
                        .find_map(|m| link_in(&m.raw, &format!("{base}/c/")));
                    let done = found.is_some();
                    async move {
                        if !done {
                            let _ = rt.run_due().await;
                        }
                        done
                    }
                },
            )
            .await;
            found.unwrap()
        }
    };
    let offer_id = OfferId::parse(id.as_str()).unwrap();

    // 1: with delegated admin, 40 licences instead of 25: the page says a link was mailed.
    let c = driver.session("en").await.unwrap();
    c.goto(&link).await.unwrap();
    assert!(
        c.title().await.unwrap().contains(id_str(&link)),
        "title names the offer"
    );
    let box_ = c.find(Locator::Id("delegated_admin")).await.unwrap();
    assert!(
        !box_.is_selected().await.unwrap(),
        "delegated admin starts unticked"
    );
    let count = c.find(Locator::Id("licences-m365-e3")).await.unwrap();
    count.clear().await.unwrap();
    count.send_keys("40").await.unwrap();
    type_into(&c, "organisation", "Fabrikam GmbH").await;
    type_into(&c, "domain", "fabrikam.example").await;
    type_into(&c, "admin_email", "admin@fabrikam.example").await;
    box_.click().await.unwrap();
    click(&c, "accept").await;
    let sent = wait_for(&c, Locator::Id("check-mail"), "the check-your-mail page").await;
    let to = sent.find(Locator::Css("strong")).await.unwrap();
    assert_eq!(to.text().await.unwrap(), "admin@fabrikam.example");
    // Tracking shows nothing until the customer confirms from the mailbox.
    assert!(
        app.rt
            .store
            .acceptances_of(&offer_id)
            .await
            .unwrap()
            .is_empty(),
        "an acceptance counts only after confirmation"
    );
    let confirm = confirmation_to("admin@fabrikam.example").await;
    c.goto(&confirm).await.unwrap();
    let page = c.source().await.unwrap();
    assert!(page.contains("fabrikam.example") && page.contains("Fabrikam GmbH"));
    click(&c, "confirm").await;
    wait_for_url(&c, &expected, "the sign-up page").await;
    let h1 = c.find(Locator::Css("h1")).await.unwrap();
    assert_eq!(h1.text().await.unwrap(), "Provider sign-up");
    c.close().await.unwrap();
    assert_eq!(
        app.rt.store.acceptances_of(&offer_id).await.unwrap().len(),
        1
    );

    // 2: another customer, without delegated admin, German page; a bad count first.
    let c = driver.session("de").await.unwrap();
    c.goto(&link).await.unwrap();
    let h1 = c.find(Locator::Css("h1")).await.unwrap();
    assert_eq!(h1.text().await.unwrap(), "Kaufangebot");
    let count = Locator::Id("licences-exchange-online-plan-1");
    let field = c.find(count).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys("0").await.unwrap();
    type_into(&c, "organisation", "Tailspin AG").await;
    type_into(&c, "domain", "tailspin.example").await;
    type_into(&c, "admin_email", "it@tailspin.example").await;
    click(&c, "accept").await;
    let invalid = Locator::Css("#licences-exchange-online-plan-1[aria-invalid=\"true\"]");
    let field = wait_for(&c, invalid, "the form again with the error").await;
    let error = field.attr("aria-describedby").await.unwrap().unwrap();
    let error = c.find(Locator::Id(&error)).await.unwrap();
    let error = error.text().await.unwrap();
    assert!(error.contains("ganze Zahl von 1 bis 10000"), "{error}");
    field.clear().await.unwrap();
    field.send_keys("12").await.unwrap();
    click(&c, "accept").await;
    wait_for(&c, Locator::Id("check-mail"), "the check-your-mail page").await;
    let confirm = confirmation_to("it@tailspin.example").await;
    c.goto(&confirm).await.unwrap();
    let button = c.find(Locator::Id("confirm")).await.unwrap();
    assert_eq!(button.text().await.unwrap(), "Annahme bestätigen");
    button.click().await.unwrap();
    wait_for_url(&c, &expected, "the sign-up page").await;
    c.close().await.unwrap();
    drop(driver);

    let seen: Vec<String> = signup_seen
        .lock()
        .unwrap()
        .iter()
        .filter(|l| !l.contains("/favicon.ico"))
        .cloned()
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter()
            .all(|l| l.starts_with(&format!("GET /start?advisor_code={code} "))),
        "{seen:?}"
    );

    let accs = app
        .rt
        .store
        .acceptances_of(&OfferId::parse(id.as_str()).unwrap())
        .await
        .unwrap();
    assert_eq!(accs.len(), 2);
    let fab = accs
        .iter()
        .find(|a| a.acceptance.domain.as_str() == "fabrikam.example")
        .unwrap();
    assert_eq!(fab.acceptance.products[0].licences, Some(40));
    assert_eq!(
        fab.acceptance.delegated_admin,
        Some(partnerflow::core::domain::AdminRole::Limited)
    );
    assert_eq!(fab.relationship.as_ref().unwrap().state, "approval_pending");
    let tail = accs
        .iter()
        .find(|a| a.acceptance.domain.as_str() == "tailspin.example")
        .unwrap();
    assert_eq!(tail.acceptance.products[1].licences, Some(12));
    assert_eq!(tail.acceptance.delegated_admin, None);
    assert!(tail.relationship.is_none());
}

/// Types `text` into the field with the id `id` (after what it holds).
async fn type_into(c: &Client, id: &str, text: &str) {
    let field = c.find(Locator::Id(id)).await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Clicks the element with the id `id`.
async fn click(c: &Client, id: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The page's source and a screenshot (its file named) for a failure's message.
async fn evidence(c: &Client) -> String {
    let url = c.current_url().await.map(String::from).unwrap_or_default();
    let shot = std::env::temp_dir().join(format!("partnerflow-browser-{}.png", std::process::id()));
    let saved = match c.screenshot().await {
        Ok(png) => std::fs::write(&shot, png)
            .map(|()| format!("screenshot: {}", shot.display()))
            .unwrap_or_else(|e| format!("no screenshot: {e}")),
        Err(e) => format!("no screenshot: {e}"),
    };
    let source = c.source().await.unwrap_or_default();
    format!("at {url} ({saved}):\n{source}")
}

/// The element once the page shows it (at most 20 s); else a failure with the page.
async fn wait_for(c: &Client, what: Locator<'_>, name: &str) -> Element {
    match c.wait().at_most(WAIT).for_element(what).await {
        Ok(e) => e,
        Err(e) => panic!("waiting for {name}: {e} — {}", evidence(c).await),
    }
}

/// Returns once the browser is at `url` (at most 20 s); else a failure with the page.
async fn wait_for_url(c: &Client, url: &Url, name: &str) {
    if let Err(e) = c.wait().at_most(WAIT).for_url(url).await {
        panic!("waiting for {name} ({url}): {e} — {}", evidence(c).await);
    }
}

/// The Offer ID inside a link's advisor code.
fn id_str(link: &str) -> &str {
    link.rsplit('/').next().unwrap().split('.').nth(1).unwrap()
}
