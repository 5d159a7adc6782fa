//! A small HTTP client for tests through the real router over TCP: JSON calls with bearer
//! tokens, and a browser-like session for the customer's pages (cookies kept, redirects not
//! followed, so a test sees the 303 and its Location).
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;

use super::TestApp;

/// Serves the app's real router on a free port; returns its base URL.
pub async fn serve(app: &TestApp) -> String {
    serve_state(app.rt.clone()).await
}

/// Serves a state's web router (no workers: tests run jobs with `run_due`) through the same
/// `server::serve` as `partnerflow serve`, on a free port; returns its base URL.
pub async fn serve_state(state: std::sync::Arc<partnerflow::app::AppState>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(partnerflow::server::serve(
        state,
        listener,
        partnerflow::server::ServeOptions {
            workers: false,
            metrics: None,
        },
        std::future::pending(),
    ));
    format!("http://{addr}")
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: BTreeMap<String, Vec<String>>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .and_then(|v| v.first())
            .map(String::as_str)
    }
    /// The API error code, if this is an error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// One request, blocking (call it from `spawn_blocking` or through [`request`]).
pub fn request_blocking(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<(&str, String)>,
) -> Resp {
    let a = agent();
    let mut resp = match (method, body) {
        ("GET", _) => {
            let mut r = a.get(url);
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.call().unwrap()
        }
        ("DELETE", _) => {
            let mut r = a.delete(url);
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.call().unwrap()
        }
        (_, body) => {
            let mut r = a.post(url);
            for (k, v) in headers {
                r = r.header(k, v);
            }
            match body {
                Some((ct, b)) => r.header("Content-Type", ct).send(b).unwrap(),
                None => r.send_empty().unwrap(),
            }
        }
    };
    let status = resp.status().as_u16();
    let mut h: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in resp.headers() {
        h.entry(k.as_str().to_ascii_lowercase())
            .or_default()
            .push(v.to_str().unwrap_or("").to_string());
    }
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    Resp {
        status,
        headers: h,
        body,
    }
}

pub async fn request(
    method: &str,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<(&'static str, String)>,
) -> Resp {
    let method = method.to_string();
    tokio::task::spawn_blocking(move || request_blocking(&method, &url, &headers, body))
        .await
        .unwrap()
}

/// The partner API with one bearer token.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
}

impl Api {
    fn headers(&self) -> Vec<(String, String)> {
        self.token
            .iter()
            .map(|t| ("Authorization".to_string(), format!("Bearer {t}")))
            .collect()
    }
    pub async fn get(&self, path: &str) -> Resp {
        request("GET", format!("{}{path}", self.base), self.headers(), None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        request(
            "POST",
            format!("{}{path}", self.base),
            self.headers(),
            Some(("application/json", body.to_string())),
        )
        .await
    }
    pub async fn post_raw(&self, path: &str, body: &str) -> Resp {
        request(
            "POST",
            format!("{}{path}", self.base),
            self.headers(),
            Some(("application/json", body.to_string())),
        )
        .await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        request(
            "DELETE",
            format!("{}{path}", self.base),
            self.headers(),
            None,
        )
        .await
    }
    pub fn with(&self, token: &str) -> Api {
        Api {
            base: self.base.clone(),
            token: Some(token.to_string()),
        }
    }
}

/// A customer's browser without JavaScript: keeps cookies, sends Accept-Language.
pub struct Browser {
    pub lang: String,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(lang: &str) -> Browser {
        Browser {
            lang: lang.into(),
            cookies: BTreeMap::new(),
        }
    }
    fn headers(&self) -> Vec<(String, String)> {
        let mut h = vec![("Accept-Language".to_string(), self.lang.clone())];
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            h.push(("Cookie".into(), c.join("; ")));
        }
        h
    }
    fn keep_cookies(&mut self, r: &Resp) {
        for c in r.headers.get("set-cookie").into_iter().flatten() {
            if let Some((k, v)) = c.split(';').next().and_then(|kv| kv.split_once('=')) {
                self.cookies.insert(k.trim().into(), v.trim().into());
            }
        }
    }
    pub async fn get(&mut self, url: &str) -> Resp {
        let r = request("GET", url.to_string(), self.headers(), None).await;
        self.keep_cookies(&r);
        r
    }
    /// Posts a form (urlencoded); extra headers (e.g. Origin) may be added.
    pub async fn post_form(
        &mut self,
        url: &str,
        fields: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> Resp {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter())
            .finish();
        let mut h = self.headers();
        for (k, v) in extra {
            h.push((k.to_string(), v.to_string()));
        }
        let r = request(
            "POST",
            url.to_string(),
            h,
            Some(("application/x-www-form-urlencoded", body)),
        )
        .await;
        self.keep_cookies(&r);
        r
    }
}

impl Browser {
    /// Posts a multipart/form-data form: the text `fields` in order, then `file` (field name,
    /// file name, content) if any, as a browser sends a form with a file input.
    pub async fn post_multipart(
        &mut self,
        url: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &str, &str)>,
    ) -> Resp {
        const B: &str = "----pfTestBoundary7MA4YWxkTrZu0gW";
        let mut body = String::new();
        for (k, v) in fields {
            body.push_str(&format!(
                "--{B}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
            ));
        }
        if let Some((name, filename, content)) = file {
            body.push_str(&format!(
                "--{B}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: text/csv\r\n\r\n{content}\r\n"
            ));
        }
        body.push_str(&format!("--{B}--\r\n"));
        let r = request(
            "POST",
            url.to_string(),
            self.headers(),
            Some((
                "multipart/form-data; boundary=----pfTestBoundary7MA4YWxkTrZu0gW",
                body,
            )),
        )
        .await;
        self.keep_cookies(&r);
        r
    }
}

/// The value of the hidden CSRF field of a page.
pub fn csrf_of(page: &str) -> String {
    let i = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[i..].split('"').next().unwrap().to_string()
}

/// Decodes a quoted-printable body part (soft line breaks, =XX).
pub fn decode_qp(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'=' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let Some(v) = hex {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded text/plain and text/html parts of a raw message (quoted-printable, base64 or
/// plain), as (content type, text).
pub fn parts(raw: &str) -> Vec<(String, String)> {
    use base64::Engine as _;
    let mut out = Vec::new();
    let boundary_marker = "boundary=\"";
    let boundaries: Vec<String> = raw
        .match_indices(boundary_marker)
        .filter_map(|(i, _)| {
            raw[i + boundary_marker.len()..]
                .split('"')
                .next()
                .map(str::to_string)
        })
        .collect();
    let mut chunks = vec![raw.to_string()];
    for b in &boundaries {
        let sep = format!("--{b}");
        chunks = chunks
            .iter()
            .flat_map(|c| c.split(&sep).map(str::to_string).collect::<Vec<_>>())
            .collect();
    }
    for c in chunks {
        let c = c.trim_start_matches(['\r', '\n']);
        let Some(split) = c
            .find("\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| c.find("\n\n").map(|i| (i, 2)))
        else {
            continue;
        };
        let (head, body) = (&c[..split.0], &c[split.0 + split.1..]);
        let head_l = head.to_ascii_lowercase();
        let ct = if head_l.contains("content-type: text/html") {
            "text/html"
        } else if head_l.contains("content-type: text/plain") {
            "text/plain"
        } else {
            continue;
        };
        let text = if head_l.contains("content-transfer-encoding: quoted-printable") {
            decode_qp(body)
        } else if head_l.contains("content-transfer-encoding: base64") {
            let joined: String = body.split_whitespace().collect();
            String::from_utf8_lossy(
                &base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .unwrap_or_default(),
            )
            .into_owned()
        } else {
            body.to_string()
        };
        out.push((ct.to_string(), text));
    }
    out
}

/// The first link in a message's text part that starts with `prefix`.
pub fn link_in(raw: &str, prefix: &str) -> Option<String> {
    for (ct, text) in parts(raw) {
        if ct != "text/plain" {
            continue;
        }
        if let Some(i) = text.find(prefix) {
            let rest = &text[i..];
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"')
                .unwrap_or(rest.len());
            return Some(rest[..end].to_string());
        }
    }
    None
}

/// Opens an offer page and submits its accept form with `fields` (its CSRF token added).
pub async fn submit_accept(b: &mut Browser, link: &str, fields: &[(&str, &str)]) -> Resp {
    let page = b.get(link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = csrf_of(&page.body);
    let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    b.post_form(link, &all, &[]).await
}

/// Every delivered email to `to` that carries a confirmation link (`{public}/c/…`), as (raw
/// message, link served from `base`).
pub fn confirmations_to(
    app: &TestApp,
    to: &str,
    public: &str,
    base: &str,
) -> Vec<(String, String)> {
    app.outbox()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .filter(|raw| raw.contains(&format!("To: {to}")))
        .filter_map(|raw| {
            link_in(&raw, &format!("{public}/c/")).map(|l| (raw.clone(), l.replace(public, base)))
        })
        .collect()
}

/// Opens a confirmation link and presses *Confirm*: the response (303 to the sign-up page,
/// or a page).
pub async fn confirm_at(b: &mut Browser, link: &str) -> Resp {
    let page = b.get(link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = csrf_of(&page.body);
    b.post_form(link, &[("csrf", csrf.as_str())], &[]).await
}
