//! The HTTP API through the real router over TCP.

#[macro_use]
mod common;

use common::Store;
use partnerflow::core::domain::InstanceId;

use serde_json::{Value, json};

async fn serve(app: &common::TestApp) -> String {
    common::web::serve(app).await
}

/// (status, JSON body) of a request; blocking ureq on a blocking thread.
async fn call(
    method: &'static str,
    url: String,
    token: Option<&'static str>,
    body: Option<String>,
) -> (u16, Value) {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = match method {
            "GET" => {
                let mut r = agent.get(&url);
                if let Some(t) = token {
                    r = r.header("Authorization", &format!("Bearer {t}"));
                }
                r.call().unwrap()
            }
            _ => {
                let mut r = agent.post(&url).header("Content-Type", "application/json");
                if let Some(t) = token {
                    r = r.header("Authorization", &format!("Bearer {t}"));
                }
                r.send(body.unwrap_or_default()).unwrap()
            }
        };
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

const TOKEN: &str = "test-admin-token-0123456789";

async fn instances_and_events_over_http(store: Store) {
    let app = common::spawn_app(store, &[("PARTNERFLOW__HTTP__ADMIN_TOKEN", TOKEN)]).await;
    let base = serve(&app).await;

    let (s, body) = call("GET", format!("{base}/healthz"), None, None).await;
    assert_eq!((s, body["status"].as_str()), (200, Some("ok")));

    let start = json!({"workflow": "trial_invitation", "data": common::trial_data(7), "event": "send", "locale": "de"}).to_string();
    let (s, body) = call(
        "POST",
        format!("{base}/api/v1/instances"),
        None,
        Some(start.clone()),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (s, _) = call(
        "POST",
        format!("{base}/api/v1/instances"),
        Some("wrong"),
        Some(start.clone()),
    )
    .await;
    assert_eq!(s, 401);

    let (s, body) = call(
        "POST",
        format!("{base}/api/v1/instances"),
        Some(TOKEN),
        Some(start),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["state"], "invited");
    let id = body["id"].as_str().unwrap().to_string();

    let (s, body) = call(
        "POST",
        format!("{base}/api/v1/instances/{id}/events"),
        Some(TOKEN),
        Some(r#"{"event":"accept"}"#.into()),
    )
    .await;
    assert_eq!((s, body["to"].as_str()), (200, Some("accepted")), "{body}");
    let (s, body) = call(
        "POST",
        format!("{base}/api/v1/instances/{id}/events"),
        Some(TOKEN),
        Some(r#"{"event":"expire"}"#.into()),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (409, Some("event_rejected"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PF-TEST000007 accepted at"),
        "{body}"
    );

    let (s, body) = call(
        "GET",
        format!("{base}/api/v1/instances/{id}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let events: Vec<_> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["start", "send", "accept"]);

    // Errors name the field.
    let (s, body) = call(
        "POST",
        format!("{base}/api/v1/instances/{id}/events"),
        Some(TOKEN),
        Some(r#"{"evnt":"accept"}"#.into()),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("evnt"),
        "{body}"
    );
    let bad = json!({"workflow": "trial_invitation", "data": {"offer_id": "PF-1", "customer_email": "not-an-address"}}).to_string();
    let (s, body) = call(
        "POST",
        format!("{base}/api/v1/instances"),
        Some(TOKEN),
        Some(bad),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (422, Some("invalid_data"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("customer_email"),
        "{body}"
    );
    let (s, body) = call(
        "POST",
        format!("{base}/api/v1/instances"),
        Some(TOKEN),
        Some(r#"{"workflow":"nope"}"#.into()),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (404, Some("unknown_workflow"))
    );
    let (s, _) = call(
        "GET",
        format!("{base}/api/v1/instances/in_doesnotexist"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, 404);
}

/// The status of a POST of `body` to `path` with `authorization` sent byte for byte as the
/// Authorization header's value (a client library may trim it); none when `None`.
async fn raw_post(base: &str, path: &str, authorization: Option<&str>, body: &str) -> u16 {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://").to_string();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let status = resp.split(' ').nth(1).unwrap_or_default();
        status
            .parse()
            .unwrap_or_else(|_| panic!("no status: {resp}"))
    })
    .await
    .unwrap()
}

/// `id`'s state and the events of its history, over the store.
async fn state_and_events(app: &common::TestApp, id: &InstanceId) -> (String, Vec<String>) {
    let h = app.rt.store.history(id).await.unwrap();
    (
        app.state(id).await,
        h.into_iter().map(|h| h.event).collect(),
    )
}

async fn events_are_refused_when_no_token_is_configured(store: Store) {
    // No admin token configured: no bearer is the admin — not even the one that is the
    // admin token where one is configured, nor an empty one, nor none at all.
    let app = common::spawn_app(store, &[]).await;
    assert!(app.rt.settings.http.admin_token.expose().is_empty());
    let base = serve(&app).await;
    let id = app.invite(1).await;
    let before = state_and_events(&app, &id).await;
    assert_eq!(
        before,
        ("invited".to_string(), vec!["start".into(), "send".into()])
    );
    let url = format!("{base}/api/v1/instances/{id}/events");
    for token in [Some(TOKEN), Some(""), None] {
        let (s, body) = call(
            "POST",
            url.clone(),
            token,
            Some(r#"{"event":"accept"}"#.into()),
        )
        .await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "bearer {token:?}: {body}"
        );
        assert_eq!(
            state_and_events(&app, &id).await,
            before,
            "bearer {token:?}"
        );
    }
    // An empty bearer exactly as sent on the wire (the client above may trim the space).
    let path = format!("/api/v1/instances/{id}/events");
    for auth in [Some("Bearer "), Some("Bearer"), None] {
        let s = raw_post(&base, &path, auth, r#"{"event":"accept"}"#).await;
        assert_eq!(s, 401, "Authorization {auth:?}");
        assert_eq!(
            state_and_events(&app, &id).await,
            before,
            "Authorization {auth:?}"
        );
    }
    let (s, _) = call(
        "GET",
        format!("{base}/api/v1/instances/{id}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, 401, "nor read");

    // The same request with that token configured is accepted.
    let app = common::spawn_app(store, &[("PARTNERFLOW__HTTP__ADMIN_TOKEN", TOKEN)]).await;
    let base = serve(&app).await;
    let id = app.invite(1).await;
    let (s, body) = call(
        "POST",
        format!("{base}/api/v1/instances/{id}/events"),
        Some(TOKEN),
        Some(r#"{"event":"accept"}"#.into()),
    )
    .await;
    assert_eq!((s, body["to"].as_str()), (200, Some("accepted")), "{body}");
    assert_eq!(
        state_and_events(&app, &id).await,
        (
            "accepted".to_string(),
            vec!["start".into(), "send".into(), "accept".into()]
        )
    );
    let h = app.rt.store.history(&id).await.unwrap();
    assert_eq!(h.last().unwrap().actor, "admin-token");
}

on_both_stores!(
    instances_and_events_over_http,
    events_are_refused_when_no_token_is_configured,
);
