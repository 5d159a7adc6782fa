//! The partner portal's foundation through the real router over TCP, on both stores: sign-in
//! links (single use, expiry, a GET never spends one, the same answer for unknown addresses,
//! rate limits per address and per client), sessions (idle and absolute expiry, touched at
//! most once a minute, sign out, sign out everywhere, deactivation), every page × role, CSRF on
//! every POST, and the audit log (actor, client, filters, keyset paging).

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

// The portal's sections, one file each (they use the helpers below through `super::*`).
mod campaigns;
mod company;
mod customers;
mod instances;
mod jobs;
mod offers;
mod overview;
mod resellers;
mod schedules;
mod workflows;

use common::web::{Browser, csrf_of, link_in, serve};
use common::{Store, TestApp};
use partnerflow::core::clock::Clock;
use partnerflow::core::domain::{Span, Timestamp};
use partnerflow::core::links::sha256_hex;
use partnerflow::core::portal::UserRow;
use partnerflow::portal::{self, Actor, AuditQuery, NewUser};

const MINUTE: i64 = 60_000;

struct Env {
    app: TestApp,
    base: String,
}

async fn env(store: Store, extra: &[(&str, &str)]) -> Env {
    let app = common::spawn_app(store, extra).await;
    let base = serve(&app).await;
    Env { app, base }
}

impl Env {
    fn public(&self) -> String {
        self.app
            .rt
            .settings
            .app
            .public_base_url
            .as_str()
            .trim_end_matches('/')
            .to_string()
    }
    /// A user made as `partnerflow users create` makes one: (row, local sign-in link).
    async fn user(&self, email: &str, role: &str) -> (UserRow, String) {
        let new = NewUser::parse(email, "Erika <Muster>", role, "en").unwrap();
        let (u, link) = portal::create_user(&self.app.rt, &new, &Actor::cli())
            .await
            .unwrap();
        (u, link.url.replace(&self.public(), &self.base))
    }
    /// A fresh link for an existing user (local).
    async fn link(&self, u: &UserRow) -> String {
        portal::issue_link(&self.app.rt, u)
            .await
            .unwrap()
            .url
            .replace(&self.public(), &self.base)
    }
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    fn advance(&self, ms: i64) {
        self.app.clock.advance(Span(ms));
    }
    /// Every delivered email to `to` with a portal sign-in link: the links, made local.
    fn mailed_links(&self, to: &str) -> Vec<String> {
        self.app
            .outbox()
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .filter(|raw| raw.contains(&format!("To: {to}")))
            .filter_map(|raw| link_in(&raw, &format!("{}/portal/sign-in/", self.public())))
            .map(|l| l.replace(&self.public(), &self.base))
            .collect()
    }
    /// A browser signed in with `link` (the page's button pressed).
    async fn signed_in(&self, link: &str) -> Browser {
        let mut b = Browser::new("en");
        let r = redeem(&mut b, link).await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(r.header("location"), Some("/portal"));
        b
    }
}

/// Opens a sign-in link's page and presses its button.
async fn redeem(b: &mut Browser, link: &str) -> common::web::Resp {
    let page = b.get(link).await;
    if page.status != 200 {
        return page;
    }
    let csrf = csrf_of(&page.body);
    b.post_form(link, &[("csrf", csrf.as_str())], &[]).await
}

/// A signed-in page's form posted with its own CSRF token (taken from `from`).
async fn post_from(
    e: &Env,
    b: &mut Browser,
    from: &str,
    form_action: &str,
    fields: &[(&str, &str)],
) -> common::web::Resp {
    let page = b.get(&e.url(from)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = csrf_for_action(&page.body, form_action);
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    b.post_form(&e.url(form_action), &all, &[]).await
}

/// The CSRF token of the (first) form on a page that posts to `action`.
fn csrf_for_action(page: &str, action: &str) -> String {
    let i = page
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form to {action}"));
    csrf_of(&page[i..])
}

async fn status_of(e: &Env, b: &mut Browser, path: &str) -> u16 {
    b.get(&e.url(path)).await.status
}

async fn link_is_single_use_and_expires(store: Store) {
    let e = env(store, &[]).await;
    let (u, link) = e.user("admin@partner.example", "admin").await;
    // Opening the page (a mail scanner) spends nothing.
    let mut scanner = Browser::new("en");
    assert_eq!(scanner.get(&link).await.status, 200);
    assert_eq!(scanner.get(&link).await.status, 200);
    let mut b = Browser::new("en");
    let r = redeem(&mut b, &link).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = r.header("set-cookie").unwrap().to_string();
    for part in ["pf_session=", "Path=/", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "http: no Secure, no __Host-: {cookie}"
    );
    let home = b.get(&e.url("/portal")).await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("admin@partner.example"));
    // The second use: refused, on its page and by a POST with a token taken before.
    assert_eq!(scanner.get(&link).await.status, 410);
    let mut racer = Browser::new("en");
    let link2 = e.link(&u).await;
    let p2 = racer.get(&link2).await;
    let csrf2 = csrf_of(&p2.body);
    let won = racer
        .post_form(&link2, &[("csrf", csrf2.as_str())], &[])
        .await;
    assert_eq!(won.status, 303);
    let r = racer
        .post_form(&link2, &[("csrf", csrf2.as_str())], &[])
        .await;
    assert_eq!(r.status, 410, "second redemption");
    assert!(r.header("set-cookie").is_none());
    // Expiry: usable until 15 minutes after it was made, not at 15 minutes.
    let link3 = e.link(&u).await;
    let mut late = Browser::new("en");
    let p3 = late.get(&link3).await;
    let csrf3 = csrf_of(&p3.body);
    e.advance(15 * MINUTE - 1);
    assert_eq!(late.get(&link3).await.status, 200);
    e.advance(1);
    assert_eq!(late.get(&link3).await.status, 410);
    let r = late
        .post_form(&link3, &[("csrf", csrf3.as_str())], &[])
        .await;
    assert_eq!(r.status, 410);
    assert!(r.header("set-cookie").is_none());
    // Garbage tokens: the same page.
    assert_eq!(late.get(&e.url("/portal/sign-in/xyz")).await.status, 410);
}

async fn signin_request_answers_the_same_and_mails_a_link(store: Store) {
    let e = env(store, &[]).await;
    let (u, _) = e.user("sales@partner.example", "sales_agent").await;
    let mut b = Browser::new("de");
    let answer = |body: &str| {
        let csrf = csrf_of(body);
        body.replace(&csrf, "CSRF")
    };
    let form = b.get(&e.url("/portal/sign-in")).await;
    assert_eq!(form.status, 200);
    let csrf = csrf_of(&form.body);
    let known = b
        .post_form(
            &e.url("/portal/sign-in"),
            &[("csrf", csrf.as_str()), ("email", "Sales@Partner.example")],
            &[],
        )
        .await;
    let unknown = b
        .post_form(
            &e.url("/portal/sign-in"),
            &[("csrf", csrf.as_str()), ("email", "nobody@partner.example")],
            &[],
        )
        .await;
    assert_eq!(known.status, 200);
    assert_eq!(unknown.status, 200);
    assert_eq!(
        answer(&known.body),
        answer(&unknown.body),
        "no user enumeration"
    );
    assert!(known.body.contains("id=\"sent\""));
    assert!(
        !known.body.contains("partner.example"),
        "the address is not echoed"
    );
    // A malformed address: the form again, with its error summary.
    let bad = b
        .post_form(
            &e.url("/portal/sign-in"),
            &[("csrf", csrf.as_str()), ("email", "no-at")],
            &[],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("role=\"alert\"") && bad.body.contains("aria-invalid=\"true\""));
    e.app.rt.run_due().await.unwrap();
    let links = e.mailed_links("sales@partner.example");
    assert_eq!(links.len(), 1, "one email, through the delivery path");
    assert!(e.mailed_links("nobody@partner.example").is_empty());
    let mut s = e.signed_in(&links[0]).await;
    assert_eq!(status_of(&e, &mut s, "/portal").await, 200);
    // The link's secret is stored only as a hash.
    let secret = links[0].rsplit('/').next().unwrap();
    assert!(
        !e.app
            .rt
            .store
            .signin_link_usable(&sha256_hex(secret), e.app.clock.now())
            .await
            .unwrap()
    );
    // Nor is it anywhere else in the database (not in the lifecycle's data, not in the email
    // job): the email derives it from a reference when it is sent.
    if store == Store::Sqlite {
        for f in std::fs::read_dir(e.app.dir.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            if name.starts_with("pf.db") {
                let bytes = std::fs::read(f.path()).unwrap();
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{name} holds the sign-in secret"
                );
            }
        }
    }
    let _ = u;
}

async fn signin_requests_are_rate_limited_per_address_and_per_client(store: Store) {
    let e = env(
        store,
        &[
            (
                "PARTNERFLOW__PORTAL__SIGNIN_REQUESTS_PER_ADDRESS_PER_HOUR",
                "2",
            ),
            (
                "PARTNERFLOW__PORTAL__SIGNIN_REQUESTS_PER_CLIENT_PER_HOUR",
                "4",
            ),
            ("PARTNERFLOW__HTTP__TRUSTED_PROXY_HEADER", "x-forwarded-for"),
        ],
    )
    .await;
    e.user("a@partner.example", "viewer").await;
    let mut b = Browser::new("en");
    let csrf = csrf_of(&b.get(&e.url("/portal/sign-in")).await.body);
    let mut ask = async |email: &str, client: &str| {
        b.post_form(
            &e.url("/portal/sign-in"),
            &[("csrf", csrf.as_str()), ("email", email)],
            &[("X-Forwarded-For", client)],
        )
        .await
        .status
    };
    assert_eq!(ask("a@partner.example", "198.51.100.1").await, 200);
    assert_eq!(ask("A@partner.example", "198.51.100.1").await, 200);
    // Per address, whichever client asks.
    assert_eq!(ask("a@partner.example", "198.51.100.1").await, 429);
    assert_eq!(ask("a@partner.example", "198.51.100.2").await, 429);
    // Per client: its fourth request this hour was the last.
    assert_eq!(ask("b@partner.example", "198.51.100.1").await, 200);
    assert_eq!(ask("c@partner.example", "198.51.100.1").await, 429);
    assert_eq!(ask("c@partner.example", "198.51.100.3").await, 200);
    e.app.rt.run_due().await.unwrap();
    assert_eq!(
        e.mailed_links("a@partner.example").len(),
        2,
        "nothing sent over a limit"
    );
    // The next hour: allowed again.
    e.advance(60 * MINUTE);
    assert_eq!(ask("a@partner.example", "198.51.100.1").await, 200);
}

async fn sessions_expire_when_idle_and_absolutely(store: Store) {
    let e = env(
        store,
        &[
            ("PARTNERFLOW__PORTAL__SESSION_IDLE", "30m"),
            ("PARTNERFLOW__PORTAL__SESSION_MAX", "2h"),
        ],
    )
    .await;
    let (u, link) = e.user("v@partner.example", "viewer").await;
    let mut b = e.signed_in(&link).await;
    let hash = sha256_hex(&b.cookies["pf_session"]);
    let last_seen = async || {
        e.app
            .rt
            .store
            .session(&hash)
            .await
            .unwrap()
            .unwrap()
            .0
            .last_seen_at
    };
    let signed_in_at = last_seen().await;
    // Touched at most once a minute.
    e.advance(30_000);
    assert_eq!(status_of(&e, &mut b, "/portal").await, 200);
    assert_eq!(last_seen().await, signed_in_at);
    e.advance(30_000);
    assert_eq!(status_of(&e, &mut b, "/portal").await, 200);
    assert_eq!(last_seen().await, e.app.clock.now());
    // Idle: 30 minutes without a request.
    e.advance(30 * MINUTE - 1);
    assert_eq!(status_of(&e, &mut b, "/portal").await, 200);
    e.advance(30 * MINUTE);
    let r = b.get(&e.url("/portal")).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/portal/sign-in"));
    // Absolute: used every 20 minutes, it still ends two hours after sign-in.
    let mut b = e.signed_in(&e.link(&u).await).await;
    for _ in 0..5 {
        e.advance(20 * MINUTE);
        assert_eq!(status_of(&e, &mut b, "/portal").await, 200);
    }
    e.advance(20 * MINUTE);
    assert_eq!(status_of(&e, &mut b, "/portal").await, 303);
}

async fn sign_out_and_sign_out_everywhere_revoke(store: Store) {
    let e = env(store, &[]).await;
    let (u, link) = e.user("s@partner.example", "sales_agent").await;
    let mut one = e.signed_in(&link).await;
    let mut two = e.signed_in(&e.link(&u).await).await;
    let mut three = e.signed_in(&e.link(&u).await).await;
    let old = one.cookies["pf_session"].clone();
    let r = post_from(&e, &mut one, "/portal", "/portal/sign-out", &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/portal/sign-in"));
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(status_of(&e, &mut one, "/portal").await, 303);
    one.cookies.insert("pf_session".into(), old);
    assert_eq!(
        status_of(&e, &mut one, "/portal").await,
        303,
        "revoked on the server"
    );
    assert_eq!(
        status_of(&e, &mut two, "/portal").await,
        200,
        "only that session"
    );
    let r = post_from(&e, &mut two, "/portal", "/portal/sign-out-everywhere", &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(status_of(&e, &mut two, "/portal").await, 303);
    assert_eq!(
        status_of(&e, &mut three, "/portal").await,
        303,
        "every device"
    );
}

async fn a_deactivated_users_session_and_links_are_refused(store: Store) {
    let e = env(store, &[]).await;
    let (_, admin_link) = e.user("admin@partner.example", "admin").await;
    let (v, viewer_link) = e.user("v@partner.example", "viewer").await;
    let mut admin = e.signed_in(&admin_link).await;
    let mut viewer = e.signed_in(&viewer_link).await;
    let unused = e.link(&v).await;
    assert_eq!(status_of(&e, &mut viewer, "/portal").await, 200);
    let token = csrf_for_action(
        &e.admin_page_users(&mut admin).await,
        "/portal/users/deactivate",
    );
    let r = post_from(
        &e,
        &mut admin,
        "/portal/users",
        "/portal/users/deactivate",
        &[("email", "v@partner.example")],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(status_of(&e, &mut viewer, "/portal").await, 303);
    let mut b = Browser::new("en");
    assert_eq!(redeem(&mut b, &unused).await.status, 410);
    // A fresh link (the store would make one) is refused at redemption, and none is mailed.
    let fresh = e.link(&v).await;
    let mut b = Browser::new("en");
    assert_eq!(redeem(&mut b, &fresh).await.status, 410);
    let mut c = Browser::new("en");
    let csrf = csrf_of(&c.get(&e.url("/portal/sign-in")).await.body);
    c.post_form(
        &e.url("/portal/sign-in"),
        &[("csrf", csrf.as_str()), ("email", "v@partner.example")],
        &[],
    )
    .await;
    e.app.rt.run_due().await.unwrap();
    assert!(e.mailed_links("v@partner.example").is_empty());
    let users = e.admin_page_users(&mut admin).await;
    assert!(users.contains("deactivated"));
    // An administrator cannot deactivate themselves (a token taken while the form was shown).
    let r = admin
        .post_form(
            &e.url("/portal/users/deactivate"),
            &[("csrf", token.as_str()), ("email", "admin@partner.example")],
            &[],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(status_of(&e, &mut admin, "/portal").await, 200);
}

impl Env {
    async fn admin_page_users(&self, admin: &mut Browser) -> String {
        let p = admin.get(&self.url("/portal/users")).await;
        assert_eq!(p.status, 200);
        p.body
    }
}

async fn every_page_by_role(store: Store) {
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
    //                          admin sales viewer anonymous
    let pages: [(&str, [u16; 4]); 5] = [
        ("/portal", [200, 200, 200, 303]),
        ("/portal/users", [200, 403, 403, 303]),
        ("/portal/audit", [200, 403, 403, 303]),
        (
            "/portal/audit?action=user.create&from=2026-01-01",
            [200, 403, 403, 303],
        ),
        ("/portal/sign-in", [200, 200, 200, 200]),
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
    // Administrators' writes: refused for the others by their role — even with a valid CSRF
    // token for the form (minted with their own nonce), the answer is the role's 403 page.
    for path in [
        "/portal/users",
        "/portal/users/deactivate",
        "/portal/users/reactivate",
        "/portal/users/role",
    ] {
        for b in [&mut sales, &mut viewer] {
            b.get(&e.url("/portal")).await;
            let nonce = b.cookies["pf_csrf"].clone();
            let token = e.app.rt.keys.csrf_token(&nonce, path, e.app.clock.now());
            let r = b
                .post_form(
                    &e.url(path),
                    &[
                        ("csrf", token.as_str()),
                        ("email", "a@partner.example"),
                        ("name", "X"),
                        ("role", "viewer"),
                        ("language", "en"),
                    ],
                    &[],
                )
                .await;
            assert_eq!(r.status, 403, "{path}");
            assert!(
                r.body.contains("Your role does not allow this page."),
                "{path}: {}",
                r.body
            );
        }
        let r = anon
            .post_form(&e.url(path), &[("email", "a@partner.example")], &[])
            .await;
        assert_eq!(
            (r.status, r.header("location")),
            (303, Some("/portal/sign-in")),
            "{path}"
        );
    }
    // Navigation shows the administrators' pages only to them.
    let nav = admin.get(&e.url("/portal")).await.body;
    assert!(nav.contains("href=\"/portal/users\"") && nav.contains("href=\"/portal/audit\""));
    let nav = sales.get(&e.url("/portal")).await.body;
    assert!(!nav.contains("href=\"/portal/users\""));
    assert_eq!(portal::list_users(&e.app.rt).await.unwrap().len(), 3);
    assert!(
        portal::list_users(&e.app.rt)
            .await
            .unwrap()
            .iter()
            .all(UserRow::active)
    );
    // A German user's pages are German; values are escaped.
    let new = NewUser::parse("de@partner.example", "<b>Jörg</b>", "viewer", "de").unwrap();
    let (_, l) = portal::create_user(&e.app.rt, &new, &Actor::cli())
        .await
        .unwrap();
    let mut de = e.signed_in(&l.url.replace(&e.public(), &e.base)).await;
    let p = de.get(&e.url("/portal")).await.body;
    assert!(p.contains("lang=\"de\"") && p.contains("Abmelden"));
    assert!(p.contains("&lt;b&gt;Jörg&lt;/b&gt;") && !p.contains("<b>Jörg"));
}

async fn every_post_without_a_valid_csrf_token_is_refused(store: Store) {
    let e = env(store, &[]).await;
    let (admin_row, link) = e.user("a@partner.example", "admin").await;
    let mut admin = e.signed_in(&link).await;
    e.user("v@partner.example", "viewer").await;
    let page = admin.get(&e.url("/portal/users")).await.body;
    let users_token = csrf_for_action(&page, "/portal/users");
    let deactivate_token = csrf_for_action(&page, "/portal/users/deactivate");
    let fields = [
        ("email", "v@partner.example"),
        ("name", "N"),
        ("role", "admin"),
        ("language", "en"),
    ];
    for path in [
        "/portal/users",
        "/portal/users/deactivate",
        "/portal/users/reactivate",
        "/portal/users/role",
        "/portal/sign-out",
        "/portal/sign-out-everywhere",
    ] {
        let other_path = if path == "/portal/users" {
            deactivate_token.as_str()
        } else {
            users_token.as_str()
        };
        for csrf in ["", "garbage", other_path] {
            let mut f = vec![("csrf", csrf)];
            f.extend_from_slice(&fields);
            let r = admin.post_form(&e.url(path), &f, &[]).await;
            assert_eq!(r.status, 403, "{path} with `{csrf}`");
        }
        // A valid token from another origin.
        let nonce = admin.cookies["pf_csrf"].clone();
        let token = e.app.rt.keys.csrf_token(&nonce, path, e.app.clock.now());
        let mut f = vec![("csrf", token.as_str())];
        f.extend_from_slice(&fields);
        let r = admin
            .post_form(&e.url(path), &f, &[("Origin", "https://evil.example")])
            .await;
        assert_eq!(r.status, 403, "{path} from another origin");
    }
    // Nothing happened: the viewer is active with their role, the admin still signed in.
    let users = portal::list_users(&e.app.rt).await.unwrap();
    assert!(users.iter().all(UserRow::active));
    assert!(
        users
            .iter()
            .any(|u| u.email.as_str() == "v@partner.example" && u.role.as_str() == "viewer")
    );
    assert_eq!(status_of(&e, &mut admin, "/portal").await, 200);
    // The anonymous forms: requesting a link and redeeming one.
    let mut anon = Browser::new("en");
    anon.get(&e.url("/portal/sign-in")).await;
    let r = anon
        .post_form(
            &e.url("/portal/sign-in"),
            &[("email", "a@partner.example")],
            &[],
        )
        .await;
    assert_eq!(r.status, 403);
    let link = e.link(&admin_row).await;
    anon.get(&link).await;
    let r = anon.post_form(&link, &[("csrf", "nope")], &[]).await;
    assert_eq!(r.status, 403);
    assert!(r.header("set-cookie").is_none());
    e.app.rt.run_due().await.unwrap();
    assert!(e.mailed_links("a@partner.example").is_empty());
    // The link was not spent by the refused POST.
    assert_eq!(redeem(&mut anon, &link).await.status, 303);
}

async fn audit_rows_have_actor_and_client(store: Store) {
    let e = env(
        store,
        &[("PARTNERFLOW__HTTP__TRUSTED_PROXY_HEADER", "x-forwarded-for")],
    )
    .await;
    let (_, link) = e.user("a@partner.example", "admin").await;
    let mut admin = Browser::new("en");
    let p = admin.get(&link).await;
    let csrf = csrf_of(&p.body);
    let via = [("X-Forwarded-For", "203.0.113.7")];
    assert_eq!(
        admin
            .post_form(&link, &[("csrf", csrf.as_str())], &via)
            .await
            .status,
        303
    );
    let page = admin.get(&e.url("/portal/users")).await.body;
    let csrf = csrf_for_action(&page, "/portal/users");
    let r = admin
        .post_form(
            &e.url("/portal/users"),
            &[
                ("csrf", csrf.as_str()),
                ("email", "New@Partner.example"),
                ("name", "Neu"),
                ("role", "sales_agent"),
                ("language", "de"),
            ],
            &via,
        )
        .await;
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/portal/users?invited=1")),
        "{}",
        r.body
    );
    // Invited again: the error summary names the field.
    let r = admin
        .post_form(
            &e.url("/portal/users"),
            &[
                ("csrf", csrf.as_str()),
                ("email", "new@partner.example"),
                ("name", "Neu"),
                ("role", "sales_agent"),
                ("language", "de"),
            ],
            &via,
        )
        .await;
    assert_eq!(r.status, 409);
    assert!(r.body.contains("href=\"#invite-email\""));
    let r = admin
        .post_form(
            &e.url("/portal/users"),
            &[
                ("csrf", csrf.as_str()),
                ("email", "x@partner.example"),
                ("name", ""),
                ("role", "signups"),
                ("language", "de"),
            ],
            &via,
        )
        .await;
    assert_eq!(r.status, 400);
    // The invitation: mailed in German, with a link that signs the new user in.
    e.app.rt.run_due().await.unwrap();
    let mails: Vec<String> = e
        .app
        .outbox()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .filter(|m| m.contains("To: new@partner.example"))
        .collect();
    assert_eq!(mails.len(), 1);
    assert!(
        common::web::parts(&mails[0])
            .iter()
            .any(|(_, t)| t.contains("eingeladen"))
    );
    let links = e.mailed_links("new@partner.example");
    let mut newbie = e.signed_in(&links[0]).await;
    assert_eq!(status_of(&e, &mut newbie, "/portal").await, 200);
    // The log: who, what, when, from where.
    let all = portal::audit::list(&e.app.rt, &AuditQuery::default(), 100)
        .await
        .unwrap()
        .rows;
    let actions: Vec<(&str, &str, &str, &str)> = all
        .iter()
        .map(|r| {
            (
                r.actor.as_str(),
                r.action.as_str(),
                r.target.as_str(),
                r.client.as_str(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            (
                "new@partner.example",
                "session.sign_in",
                "new@partner.example",
                "127.0.0.1"
            ),
            (
                "a@partner.example",
                "user.create",
                "new@partner.example",
                "203.0.113.7"
            ),
            (
                "a@partner.example",
                "session.sign_in",
                "a@partner.example",
                "203.0.113.7"
            ),
            ("cli", "user.create", "a@partner.example", "cli"),
        ]
    );
    assert!(all.iter().all(|r| r.at == e.app.clock.now()));
    // Filters and keyset paging (newest first, no entry twice or lost).
    let q = AuditQuery {
        action: Some("user.create".into()),
        ..Default::default()
    };
    let p1 = portal::audit::list(&e.app.rt, &q, 1).await.unwrap();
    assert_eq!(p1.rows[0].target, "new@partner.example");
    let p2 = portal::audit::list(
        &e.app.rt,
        &AuditQuery {
            cursor: p1.next.clone(),
            ..q.clone()
        },
        1,
    )
    .await
    .unwrap();
    assert_eq!(p2.rows[0].target, "a@partner.example");
    assert!(p2.next.is_none());
    // The page: administrators filter by actor, and by time.
    let page = admin.get(&e.url("/portal/audit?actor=cli")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<td>cli</td>") && !page.body.contains("session.sign_in"));
    let page = admin.get(&e.url("/portal/audit?from=2026-11-02")).await;
    assert!(!page.body.contains("id=\"audit\""));
    let page = admin.get(&e.url("/portal/audit?from=yesterday")).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("href=\"#audit-from\""));
    // Sign out is audited too.
    e.advance(MINUTE);
    post_from(&e, &mut newbie, "/portal", "/portal/sign-out", &[]).await;
    let last = portal::audit::list(&e.app.rt, &AuditQuery::default(), 1)
        .await
        .unwrap()
        .rows;
    assert_eq!(
        (last[0].actor.as_str(), last[0].action.as_str()),
        ("new@partner.example", "session.sign_out")
    );
}

async fn two_redemptions_racing_have_one_winner(store: Store) {
    let e = env(store, &[]).await;
    let (u, _) = e.user("a@partner.example", "admin").await;
    for _ in 0..5 {
        let link = e.link(&u).await;
        let mut tries = Vec::new();
        for _ in 0..4 {
            let mut b = Browser::new("en");
            let page = b.get(&link).await;
            let csrf = csrf_of(&page.body);
            tries.push((b, csrf));
        }
        let posts = tries.into_iter().map(|(mut b, csrf)| {
            let link = link.clone();
            tokio::spawn(async move {
                b.post_form(&link, &[("csrf", csrf.as_str())], &[])
                    .await
                    .status
            })
        });
        let mut statuses: Vec<u16> = futures::future::join_all(posts)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        statuses.sort();
        assert_eq!(statuses, [303, 410, 410, 410]);
    }
    let sign_ins = portal::audit::list(
        &e.app.rt,
        &AuditQuery {
            action: Some("session.sign_in".into()),
            ..Default::default()
        },
        100,
    )
    .await
    .unwrap();
    assert_eq!(sign_ins.rows.len(), 5, "one session (and entry) per link");
}

/// `partnerflow users create` prints the first administrator's link; `list`; `deactivate`.
async fn the_cli_creates_lists_and_deactivates_users(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::new(store, dir.path()).await;
    let env = common::test_env(dir.path(), &db, &[]);
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_partnerflow"))
            .args(args)
            .envs(env.iter().cloned())
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&[
        "users",
        "create",
        "--email",
        "Chef@Partner.example",
        "--name",
        "Erika Chef",
        "--role",
        "admin",
    ]);
    assert!(ok, "{out}{err}");
    let link = out
        .split_whitespace()
        .find(|w| w.contains("/portal/sign-in/"))
        .unwrap_or_else(|| panic!("no link in {out}"))
        .to_string();
    assert!(
        !err.contains(link.rsplit('/').next().unwrap()),
        "the secret is not logged"
    );
    let (ok, _, err) = run(&[
        "users",
        "create",
        "--email",
        "chef@partner.example",
        "--name",
        "X",
        "--role",
        "viewer",
    ]);
    assert!(!ok && err.contains("exists"), "{err}");
    let (ok, _, err) = run(&[
        "users",
        "create",
        "--email",
        "x@partner.example",
        "--name",
        "X",
        "--role",
        "signups",
    ]);
    assert!(!ok, "{err}");
    let (ok, out, _) = run(&["users", "list"]);
    assert!(
        ok && out.contains("chef@partner.example")
            && out.contains("admin")
            && out.contains("active"),
        "{out}"
    );
    // The printed link signs in through the web (same database).
    let rt = common::local_runtime(&env).await;
    let base = common::web::serve_state(rt.clone()).await;
    let public = rt
        .settings
        .app
        .public_base_url
        .as_str()
        .trim_end_matches('/')
        .to_string();
    let mut b = Browser::new("de");
    let r = redeem(&mut b, &link.replace(&public, &base)).await;
    assert_eq!(r.status, 303);
    assert_eq!(b.get(&format!("{base}/portal")).await.status, 200);
    let (ok, out, err) = run(&["users", "deactivate", "chef@partner.example"]);
    assert!(ok && out.contains("deactivated"), "{out}{err}");
    assert_eq!(b.get(&format!("{base}/portal")).await.status, 303);
    let hash = sha256_hex(&b.cookies["pf_session"]);
    let (session, user) = rt.store.session(&hash).await.unwrap().unwrap();
    assert!(
        session.revoked_at.is_some() && user.deactivated_at.is_some(),
        "revoked in the transaction that deactivated"
    );
    let (ok, _, err) = run(&["users", "deactivate", "nobody@partner.example"]);
    assert!(!ok && err.contains("no user"), "{err}");
    let log = portal::audit::list(
        &rt,
        &AuditQuery {
            actor: Some("cli".into()),
            ..Default::default()
        },
        10,
    )
    .await
    .unwrap()
    .rows;
    let actions: Vec<&str> = log.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["user.deactivate", "user.create"]);
    // Reactivated at the command line; the last administrator keeps the role.
    let (ok, out, err) = run(&["users", "reactivate", "chef@partner.example"]);
    assert!(ok && out.contains("is active"), "{out}{err}");
    let (ok, _, err) = run(&["users", "role", "chef@partner.example", "--role", "viewer"]);
    assert!(!ok && err.contains("last active administrator"), "{err}");
}

/// Behind https, the session cookie is `__Host-pf_session`, Secure, and is the one read.
async fn the_session_cookie_is_host_prefixed_behind_https(store: Store) {
    let e = env(
        store,
        &[(
            "PARTNERFLOW__APP__PUBLIC_BASE_URL",
            "https://portal.partner.example",
        )],
    )
    .await;
    let (_, link) = e.user("a@partner.example", "viewer").await;
    assert!(link.starts_with(&e.base), "{link}");
    let mut b = Browser::new("en");
    let r = redeem(&mut b, &link).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = r.header("set-cookie").unwrap();
    assert!(cookie.starts_with("__Host-pf_session="), "{cookie}");
    for part in ["; Path=/", "; HttpOnly", "; SameSite=Strict", "; Secure"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    assert_eq!(status_of(&e, &mut b, "/portal").await, 200);
    // The plain name is not accepted in its place.
    let secret = b.cookies.remove("__Host-pf_session").unwrap();
    b.cookies.insert("pf_session".into(), secret);
    assert_eq!(status_of(&e, &mut b, "/portal").await, 303);
}

/// Expired links and sessions are deleted with the job pruning; users and the log stay.
async fn expired_links_and_sessions_are_pruned(store: Store) {
    let e = env(store, &[]).await;
    let (u, link) = e.user("a@partner.example", "admin").await;
    let b = e.signed_in(&link).await;
    let unused = e.link(&u).await;
    let hash = sha256_hex(&b.cookies["pf_session"]);
    let secret = unused.rsplit('/').next().unwrap().to_string();
    // The store answers for a link as of any time: as of the epoch it is usable while it exists.
    assert!(
        e.app
            .rt
            .store
            .signin_link_usable(&sha256_hex(&secret), Timestamp(0))
            .await
            .unwrap()
    );
    e.advance(12 * 60 * MINUTE - 1);
    let now = e.app.clock.now();
    e.app.rt.store.prune(now).await.unwrap();
    assert!(
        e.app.rt.store.session(&hash).await.unwrap().is_some(),
        "not yet expired"
    );
    e.advance(1);
    e.app
        .rt
        .store
        .prune(e.app.clock.now().plus(Span(1)))
        .await
        .unwrap();
    assert!(e.app.rt.store.session(&hash).await.unwrap().is_none());
    assert!(
        !e.app
            .rt
            .store
            .signin_link_usable(&sha256_hex(&secret), Timestamp(0))
            .await
            .unwrap(),
        "deleted (asked as of long before its expiry)"
    );
    assert_eq!(portal::list_users(&e.app.rt).await.unwrap().len(), 1);
    assert!(
        !portal::audit::list(&e.app.rt, &AuditQuery::default(), 10)
            .await
            .unwrap()
            .rows
            .is_empty()
    );
}

/// An administrator reactivates a deactivated user (who then signs in again with a new
/// link; old sessions stay ended) and changes roles; the last administrator keeps the role;
/// both are audited; the CLI does the same.
async fn admins_reactivate_users_and_change_roles(store: Store) {
    let e = env(store, &[]).await;
    let (_, link) = e.user("a@partner.example", "admin").await;
    let mut admin = e.signed_in(&link).await;
    let (v_row, v_link) = e.user("v@partner.example", "viewer").await;
    let mut viewer = e.signed_in(&v_link).await;
    let r = post_from(
        &e,
        &mut admin,
        "/portal/users",
        "/portal/users/deactivate",
        &[("email", "v@partner.example")],
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        status_of(&e, &mut viewer, "/portal").await,
        303,
        "session ended"
    );
    let page = admin.get(&e.url("/portal/users")).await.body;
    assert!(page.contains("action=\"/portal/users/reactivate\""));
    // Reactivated: an old session stays ended; a new link works.
    let r = post_from(
        &e,
        &mut admin,
        "/portal/users",
        "/portal/users/reactivate",
        &[("email", "v@partner.example")],
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(status_of(&e, &mut viewer, "/portal").await, 303);
    let mut viewer = e.signed_in(&e.link(&v_row).await).await;
    assert_eq!(status_of(&e, &mut viewer, "/portal/users").await, 403);
    // Promoted to administrator: effective on the next request, without signing in again.
    let r = post_from(
        &e,
        &mut admin,
        "/portal/users",
        "/portal/users/role",
        &[("email", "v@partner.example"), ("role", "admin")],
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(status_of(&e, &mut viewer, "/portal/users").await, 200);
    // A machine role is not a user's; an administrator does not change their own role.
    let r = post_from(
        &e,
        &mut admin,
        "/portal/users",
        "/portal/users/role",
        &[("email", "v@partner.example"), ("role", "signups")],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = post_from(
        &e,
        &mut admin,
        "/portal/users",
        "/portal/users/role",
        &[("email", "a@partner.example"), ("role", "viewer")],
    )
    .await;
    assert_eq!(r.status, 400);
    // The last active administrator keeps the role: the other admin is demoted first, then
    // demoting the first one (as the CLI) is refused.
    let r = post_from(
        &e,
        &mut admin,
        "/portal/users",
        "/portal/users/role",
        &[("email", "v@partner.example"), ("role", "sales_agent")],
    )
    .await;
    assert_eq!(r.status, 303);
    let refused = portal::change_role(
        &e.app.rt,
        "a@partner.example",
        partnerflow::core::domain::Role::Viewer,
        &Actor::cli(),
    )
    .await;
    assert!(
        matches!(refused, Err(portal::PortalError::Invalid { .. })),
        "{refused:?}"
    );
    let roles: Vec<(String, &str)> = portal::list_users(&e.app.rt)
        .await
        .unwrap()
        .iter()
        .map(|u| (u.email.as_str().to_string(), u.role.as_str()))
        .collect();
    assert!(
        roles.contains(&("a@partner.example".into(), "admin"))
            && roles.contains(&("v@partner.example".into(), "sales_agent")),
        "{roles:?}"
    );
    let audit = portal::audit::list(&e.app.rt, &AuditQuery::default(), 50)
        .await
        .unwrap()
        .rows;
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|r| (r.action.as_str(), r.detail.as_str()))
        .collect();
    for want in [
        ("user.reactivate", ""),
        ("user.role", "viewer -> admin"),
        ("user.role", "admin -> sales_agent"),
    ] {
        assert!(actions.contains(&want), "{want:?} in {actions:?}");
    }
}

on_both_stores!(
    link_is_single_use_and_expires,
    signin_request_answers_the_same_and_mails_a_link,
    signin_requests_are_rate_limited_per_address_and_per_client,
    sessions_expire_when_idle_and_absolutely,
    sign_out_and_sign_out_everywhere_revoke,
    a_deactivated_users_session_and_links_are_refused,
    every_page_by_role,
    every_post_without_a_valid_csrf_token_is_refused,
    audit_rows_have_actor_and_client,
    two_redemptions_racing_have_one_winner,
    the_cli_creates_lists_and_deactivates_users,
    the_session_cookie_is_host_prefixed_behind_https,
    expired_links_and_sessions_are_pruned,
    admins_reactivate_users_and_change_roles,
);
