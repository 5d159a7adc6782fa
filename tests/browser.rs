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
        partnerflow::server::ServeOptions {
            workers: false,
            metrics: None,
        },
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

/// Where screenshots go: `PARTNERFLOW_SCREENSHOTS` (e.g. `tests/screenshots`, as the README's
/// command sets it), else nowhere.
fn screenshot_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("PARTNERFLOW_SCREENSHOTS").map(std::path::PathBuf::from)
}

/// Saves the page as `<name>.png` when screenshots are asked for.
async fn shot(c: &Client, name: &str) {
    if let Some(dir) = screenshot_dir() {
        std::fs::create_dir_all(&dir).unwrap();
        // The whole page: the window as tall as the document (at most 3,000 px), then back.
        let (w, h) = c.get_window_size().await.unwrap();
        let tall = c
            .execute("return document.documentElement.scrollHeight;", vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(h);
        c.set_window_size(w as u32, tall.clamp(h, 3000) as u32)
            .await
            .unwrap();
        let png = c.screenshot().await.unwrap();
        c.set_window_size(w as u32, h as u32).await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

/// The text of the element with the id `id`.
async fn text_of(c: &Client, id: &str) -> String {
    match c.find(Locator::Id(id)).await {
        Ok(e) => e.text().await.unwrap(),
        Err(e) => panic!("#{id}: {e} — {}", evidence(c).await),
    }
}

/// The newest link starting with `prefix` in an email to `to` delivered over SMTP (waits at
/// most 30 s, running due jobs meanwhile).
async fn mailed_link(
    rt: &partnerflow::app::AppState,
    smtp: &SmtpServer,
    to: &str,
    prefix: &str,
) -> String {
    let mut found = None;
    common::wait_for(
        &format!("a link {prefix}… to {to} delivered over SMTP"),
        Duration::from_secs(30),
        || {
            found = smtp
                .received()
                .into_iter()
                .rev()
                .filter(|m| m.rcpt_to.iter().any(|r| r.contains(to)))
                .find_map(|m| link_in(&m.raw, prefix));
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

/// Opens a sign-in link and presses its button: the browser lands on the overview.
async fn sign_in_with(c: &Client, link: &str, base: &str) {
    c.goto(link).await.unwrap();
    click(c, "sign-in").await;
    wait_for_url(
        c,
        &Url::parse(&format!("{base}/portal")).unwrap(),
        "the overview",
    )
    .await;
}

/// Posts a form the page does not offer (built in the browser, as a hand-crafted request
/// would be) and returns the heading of the page the server answers with.
async fn forge_post(c: &Client, action: &str, fields: &[(&str, &str)]) -> String {
    let fields: Vec<serde_json::Value> = fields.iter().map(|(k, v)| json!([k, v])).collect();
    c.execute(
        "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];
         for (const [k, v] of arguments[1]) { const i = document.createElement('input');
           i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); }
         document.body.appendChild(f); f.submit();",
        vec![json!(action), json!(fields)],
    )
    .await
    .unwrap();
    // The answer replaces the page: wait until the form we added is gone.
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("h1"))
        .await
        .unwrap();
    for _ in 0..200 {
        let h1 = c
            .find(Locator::Css("h1"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let url = c.current_url().await.unwrap();
        if url.path() == action {
            return h1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the POST to {action} did not answer — {}",
        evidence(c).await
    )
}

/// The partner portal in Chromium, end to end, with every email delivered over SMTP: the first
/// administrator signs in with a link mailed to them and invites a sales agent; the agent signs
/// in from the invitation, creates a purchase offer (country step, catalog, licence limit
/// checked) and mails it to a recipient; the customer accepts and confirms in a second browser
/// session; the agent sees the acceptance on the offer's page; the agent uploads a campaign and
/// watches it run to the end; a viewer is refused every write by the server. With
/// `PARTNERFLOW_SCREENSHOTS=DIR` it saves the main pages as PNG files there (the README's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_walks_through_the_portal() {
    use common::webdriver::{chromedriver, chromium, missing};
    if let Some(why) = missing(&chromium(), &chromedriver()) {
        if std::env::var("PARTNERFLOW_TEST_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("{why} (PARTNERFLOW_TEST_REQUIRE_BROWSER=1)");
        }
        common::report(&format!(
            "SKIPPED: chromium_walks_through_the_portal: {why}"
        ));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(&tmp.path().join("received"));
    let (signup, _) = signup_server();
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
            // The schedules page pauses and resumes it.
            ("PARTNERFLOW__SCHEDULES__RECONCILE__ENABLED", "true"),
        ],
    )
    .await;
    tokio::spawn(partnerflow::server::serve(
        app.rt.clone(),
        listener,
        partnerflow::server::ServeOptions {
            workers: true,
            metrics: None,
        },
        std::future::pending(),
    ));
    partnerflow::offers::tasks::location_sync(&app.rt)
        .await
        .unwrap();
    let rt = app.rt.clone();
    let driver = Driver::start().await.unwrap();

    // The first administrator exists (as `partnerflow users create` makes them) and asks the
    // sign-in page for a link; it arrives over SMTP.
    let first =
        partnerflow::portal::NewUser::parse("chef@partner.example", "Erika Chef", "admin", "en")
            .unwrap();
    partnerflow::portal::create_user(&rt, &first, &partnerflow::portal::Actor::cli())
        .await
        .unwrap();
    let admin = driver.session_sized("en", 1280, 900).await.unwrap();
    admin.goto(&format!("{base}/portal")).await.unwrap();
    wait_for_url(
        &admin,
        &Url::parse(&format!("{base}/portal/sign-in")).unwrap(),
        "the sign-in page",
    )
    .await;
    shot(&admin, "sign-in").await;
    type_into(&admin, "email", "chef@partner.example").await;
    click(&admin, "send-link").await;
    wait_for(&admin, Locator::Id("sent"), "the link-sent answer").await;
    let link = mailed_link(
        &rt,
        &smtp,
        "chef@partner.example",
        &format!("{base}/portal/sign-in/"),
    )
    .await;
    sign_in_with(&admin, &link, &base).await;
    assert_eq!(text_of(&admin, "who").await, "chef@partner.example");

    // … and invites a sales agent.
    admin.goto(&format!("{base}/portal/users")).await.unwrap();
    type_into(&admin, "invite-email", "sales@partner.example").await;
    type_into(&admin, "invite-name", "Sam Sales").await;
    admin
        .find(Locator::Css("#invite-role option[value=sales_agent]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    admin
        .find(Locator::Css("#invite-language option[value=en]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(&admin, "invite").await;
    wait_for(&admin, Locator::Id("invited"), "the invitation sent").await;
    shot(&admin, "users").await;

    // The agent signs in from the invitation.
    let agent = driver.session_sized("en", 1280, 900).await.unwrap();
    let link = mailed_link(
        &rt,
        &smtp,
        "sales@partner.example",
        &format!("{base}/portal/sign-in/"),
    )
    .await;
    sign_in_with(&agent, &link, &base).await;
    assert_eq!(text_of(&agent, "role").await, "Sales agent");

    // A purchase offer: the country first, then that country's catalog; a licence count over
    // the product's limit comes back with its error next to the field.
    agent
        .goto(&format!("{base}/portal/offers/new/purchase"))
        .await
        .unwrap();
    agent
        .find(Locator::Css("#offer-country option[value=DE]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(&agent, "next").await;
    wait_for(&agent, Locator::Id("offer-form"), "the offer form for DE").await;
    assert_eq!(text_of(&agent, "chosen-country").await, "DE");
    agent
        .find(Locator::Css("#offer-location option[value=loc-berlin]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let e3 = agent
        .find(Locator::Id("offer-licences-m365-e3"))
        .await
        .unwrap();
    e3.clear().await.unwrap();
    e3.send_keys("999999").await.unwrap();
    shot(&agent, "offer-form").await;
    click(&agent, "create").await;
    let bad = wait_for(
        &agent,
        Locator::Css("#offer-licences-m365-e3[aria-invalid=\"true\"]"),
        "the licence error",
    )
    .await;
    let why = bad.attr("aria-describedby").await.unwrap().unwrap();
    let why = why
        .split(' ')
        .find(|i| i.ends_with("-error"))
        .unwrap()
        .to_string();
    assert!(!text_of(&agent, &why).await.is_empty());
    assert!(
        agent
            .find(Locator::Css(".errors[role=alert]"))
            .await
            .is_ok(),
        "an error summary"
    );
    bad.clear().await.unwrap();
    bad.send_keys("25").await.unwrap();
    click(&agent, "create").await;
    let id = wait_for(&agent, Locator::Id("offer-id"), "the created offer")
        .await
        .text()
        .await
        .unwrap();
    let id = OfferId::parse(id.trim()).unwrap();
    let offer_link = agent
        .find(Locator::Id("offer-link"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(
        offer_link.starts_with(&format!("{base}/o/")),
        "{offer_link}"
    );
    shot(&agent, "offer-created").await;
    // Sent to a recipient right away, from the result page.
    type_into(&agent, "invite-recipients", "einkauf@fabrikam.example").await;
    click(&agent, "invite").await;
    wait_for(&agent, Locator::Id("invited"), "the invitation sent").await;

    // The customer, in a browser of their own, opens the mailed link, accepts, confirms.
    let mailed = mailed_link(
        &rt,
        &smtp,
        "einkauf@fabrikam.example",
        &format!("{base}/o/"),
    )
    .await;
    assert_eq!(mailed, offer_link);
    let customer = driver.session("en").await.unwrap();
    customer.goto(&mailed).await.unwrap();
    assert!(
        customer.find(Locator::Id("agreement")).await.is_ok(),
        "the customer agreement link — {}",
        evidence(&customer).await
    );
    shot(&customer, "customer-offer").await;
    type_into(&customer, "organisation", "Fabrikam GmbH").await;
    type_into(&customer, "domain", "fabrikam.example").await;
    type_into(&customer, "admin_email", "admin@fabrikam.example").await;
    click(&customer, "accept").await;
    wait_for(
        &customer,
        Locator::Id("check-mail"),
        "the check-your-mail page",
    )
    .await;
    let confirm = mailed_link(&rt, &smtp, "admin@fabrikam.example", &format!("{base}/c/")).await;
    customer.goto(&confirm).await.unwrap();
    click(&customer, "confirm").await;
    wait_for_url(
        &customer,
        &Url::parse(&format!(
            "{signup_url}?advisor_code={}",
            mailed.rsplit('/').next().unwrap()
        ))
        .unwrap(),
        "the sign-up page",
    )
    .await;
    customer.close().await.unwrap();

    // The agent sees the acceptance (and the invitation's delivery) on the offer's page.
    agent
        .goto(&format!("{base}/portal/offers/{}", id.as_str()))
        .await
        .unwrap();
    let acc = wait_for(&agent, Locator::Id("acceptances"), "the acceptances")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        acc.contains("fabrikam.example") && acc.contains("Fabrikam GmbH"),
        "{acc}"
    );
    let inv = text_of(&agent, "invitations").await;
    assert!(inv.contains("einkauf@fabrikam.example"), "{inv}");
    shot(&agent, "offer-tracking").await;

    // A campaign from an uploaded file (one bad row, reported with its line), started and
    // watched until it has sent to everyone.
    let csv = tmp.path().join("recipients.csv");
    let mut rows = String::from("email,name,locale\n");
    for i in 0..30 {
        rows.push_str(&format!("kunde{i}@contoso.example,Kunde {i},de\n"));
    }
    rows.push_str("not-an-address,Broken,de\n");
    std::fs::write(&csv, rows).unwrap();
    agent
        .goto(&format!("{base}/portal/campaigns/new"))
        .await
        .unwrap();
    type_into(&agent, "campaign-name", "Winter purchase").await;
    type_into(&agent, "campaign-offer_id", id.as_str()).await;
    type_into(&agent, "campaign-recipients", csv.to_str().unwrap()).await;
    click(&agent, "create").await;
    // The import's report: the bad row with its line (the header is line 1).
    let bad = wait_for(
        &agent,
        Locator::Id("bad-rows"),
        "the created campaign's bad rows",
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(bad.contains("32"), "the bad row's line: {bad}");
    assert_eq!(text_of(&agent, "n-added").await.trim(), "30");
    if agent.find(Locator::Id("start")).await.is_err() {
        // The import's report links to the campaign's page.
        agent
            .find(Locator::Id("to-campaign"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    click(&agent, "start").await;
    // The page refreshes itself while the campaign runs; wait for the end.
    let mut last = String::new();
    for _ in 0..600 {
        if let Ok(s) = agent.find(Locator::Id("state")).await {
            last = s.text().await.unwrap_or_default();
            if last.contains("completed") || last.contains("abgeschlossen") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        last.contains("completed"),
        "state {last:?} — {}",
        evidence(&agent).await
    );
    assert_eq!(text_of(&agent, "n-sent").await.trim(), "30");
    shot(&agent, "campaign").await;
    agent.goto(&format!("{base}/portal")).await.unwrap();
    wait_for(&agent, Locator::Css("svg"), "the funnel").await;
    shot(&agent, "overview").await;

    // The administrator's operator pages: the job queue (the emails sent so far, done) and a
    // job's page with its payload masked; every workflow drawn from its definition.
    admin.goto(&format!("{base}/portal/jobs")).await.unwrap();
    wait_for(&admin, Locator::Css("#job-counts"), "the job counts").await;
    shot(&admin, "jobs").await;
    let first = wait_for(&admin, Locator::Css("#jobs a"), "a job's link").await;
    first.click().await.unwrap();
    let payload = wait_for(&admin, Locator::Css("#payload"), "the job's payload").await;
    let text = payload.text().await.unwrap();
    let ats: Vec<usize> = text.match_indices('@').map(|(i, _)| i).collect();
    assert!(
        !ats.is_empty(),
        "an email job's payload names addresses: {text}"
    );
    assert!(
        ats.iter().all(|&i| text[..i].ends_with("***")),
        "every address masked: {text}"
    );
    admin
        .goto(&format!("{base}/portal/workflows"))
        .await
        .unwrap();
    wait_for(
        &admin,
        Locator::Css("#workflow-acceptance svg"),
        "the acceptance workflow's picture",
    )
    .await;
    shot(&admin, "workflows").await;

    // An invitation to an address the SMTP server refuses (550 5.1.1): the administrator finds
    // the failed job, reads the refusal, corrects the address (which sends it again at once)
    // and sees it sent, delivered over SMTP to the corrected address.
    admin
        .goto(&format!("{base}/portal/offers/{}", id.as_str()))
        .await
        .unwrap();
    type_into(&admin, "invite-recipients", "perm.einkauf@fabrikam.example").await;
    click(&admin, "invite").await;
    wait_for(&admin, Locator::Id("invited"), "the invitation queued").await;
    let failed_list = format!("{base}/portal/jobs?state=failed&kind=email");
    let mut found = None;
    for _ in 0..300 {
        admin.goto(&failed_list).await.unwrap();
        if let Ok(a) = admin.find(Locator::Css("#jobs a")).await {
            found = Some(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(failed) = found else {
        panic!("no failed email job — {}", evidence(&admin).await);
    };
    failed.click().await.unwrap();
    let error = wait_for(&admin, Locator::Id("job-error"), "the job's error")
        .await
        .text()
        .await
        .unwrap();
    assert!(error.contains("550"), "the refusal: {error}");
    let history = text_of(&admin, "job-errors").await;
    assert!(history.contains("550"), "in the failed attempts: {history}");
    shot(&admin, "job-failed").await;
    let job_url = admin.current_url().await.unwrap();
    type_into(&admin, "readdress-to", "einkauf.neu@fabrikam.example").await;
    click(&admin, "readdress").await;
    wait_for(&admin, Locator::Id("done"), "the new address saved").await;
    let mut state = String::new();
    for _ in 0..300 {
        admin.goto(job_url.as_str()).await.unwrap();
        state = text_of(&admin, "job-state").await;
        if state == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, "done", "{}", evidence(&admin).await);
    assert!(
        smtp.received()
            .iter()
            .any(|m| m.rcpt_to == ["einkauf.neu@fabrikam.example"]),
        "delivered to the corrected address"
    );

    // A schedule paused and resumed from its page (persisted: every node honours it).
    admin
        .goto(&format!("{base}/portal/schedules"))
        .await
        .unwrap();
    click(&admin, "pause-reconcile").await;
    wait_for(
        &admin,
        Locator::Id("resume-reconcile"),
        "the schedule paused",
    )
    .await;
    assert!(
        rt.store
            .schedule_pauses()
            .await
            .unwrap()
            .iter()
            .any(|(n, _, _)| n == "reconcile")
    );
    shot(&admin, "schedules").await;
    click(&admin, "resume-reconcile").await;
    wait_for(
        &admin,
        Locator::Id("pause-reconcile"),
        "the schedule resumed",
    )
    .await;
    assert!(rt.store.schedule_pauses().await.unwrap().is_empty());

    // A viewer: pages yes, writes no — refused by the server, not only hidden.
    let (_, viewer_link) = partnerflow::portal::create_user(
        &rt,
        &partnerflow::portal::NewUser::parse("view@partner.example", "Vera View", "viewer", "de")
            .unwrap(),
        &partnerflow::portal::Actor::cli(),
    )
    .await
    .unwrap();
    let viewer = driver.session_sized("de", 1280, 900).await.unwrap();
    sign_in_with(&viewer, &viewer_link.url, &base).await;
    viewer
        .goto(&format!("{base}/portal/offers/{}", id.as_str()))
        .await
        .unwrap();
    let page = viewer.source().await.unwrap();
    assert!(
        !page.contains("action=\"/portal/offers/"),
        "no write forms shown to a viewer"
    );
    let cmp = partnerflow::campaigns::list(&rt).await.unwrap()[0]
        .id
        .clone();
    for (action, fields) in [
        (
            "/portal/offers/new/purchase".to_string(),
            vec![
                ("country", "DE"),
                ("location", "loc-berlin"),
                ("licences-m365-e3", "5"),
            ],
        ),
        (
            format!("/portal/offers/{}/invite", id.as_str()),
            vec![("recipients", "x@contoso.example")],
        ),
        (format!("/portal/offers/{}/withdraw", id.as_str()), vec![]),
        (format!("/portal/campaigns/{cmp}/cancel"), vec![]),
        (
            "/portal/users".to_string(),
            vec![
                ("email", "evil@partner.example"),
                ("name", "E"),
                ("role", "admin"),
                ("language", "de"),
            ],
        ),
        ("/portal/company".to_string(), vec![("name", "Evil")]),
        ("/portal/jobs/run".to_string(), vec![("id", "1")]),
        ("/portal/jobs/cancel".to_string(), vec![("id", "1")]),
        (
            "/portal/jobs/readdress".to_string(),
            vec![("id", "1"), ("to", "evil@partner.example")],
        ),
        (
            "/portal/jobs/bulk".to_string(),
            vec![("action", "cancel"), ("confirm", "yes")],
        ),
        (
            "/portal/schedules/pause".to_string(),
            vec![("name", "reconcile")],
        ),
    ] {
        let h1 = forge_post(&viewer, &action, &fields).await;
        assert_eq!(h1, "Keine Berechtigung", "{action}");
    }
    assert!(
        partnerflow::portal::list_users(&rt)
            .await
            .unwrap()
            .iter()
            .all(|u| u.email.as_str() != "evil@partner.example")
    );
    assert_eq!(
        partnerflow::offers::get(&rt, &id).await.unwrap().state,
        "open"
    );
    drop(driver);
}
