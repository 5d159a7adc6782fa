//! A small, blocking W3C WebDriver client for headless-Chromium integration tests.
//!
//! It starts its own `chromedriver` on a free local port and drives Chromium through the
//! WebDriver HTTP protocol (std + `ureq` + `serde_json` only; no `json` feature of ureq needed).
//! Requires Debian's `chromium` and `chromium-driver` packages, i.e. `/usr/bin/chromium` and
//! `/usr/bin/chromedriver` (`apt-get install -y chromium chromium-driver`); other paths through
//! `PARTNERFLOW_TEST_CHROMIUM` and `PARTNERFLOW_TEST_CHROMEDRIVER`.
//!
//! ```ignore
//! let driver = Driver::start()?;              // chromedriver, killed when the last handle drops
//! let s = driver.session("de")?;               // headless Chromium, deleted on drop
//! s.goto("http://127.0.0.1:8080/")?;
//! let n = s.find("#n")?;
//! s.clear(&n)?;
//! s.send_keys(&n, "7")?;
//! s.click(&s.find("#go")?)?;
//! s.wait_until(Duration::from_secs(5), "the landing page", |s| {
//!     Ok(s.current_url()?.ends_with("/landed"))
//! })?;
//! ```
//!
//! Every fallible call returns `Result<_, String>`; a WebDriver error
//! (`{"value":{"error":..,"message":..}}`) becomes `Err("webdriver <command>: <error>: <message>")`.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The chromedriver to run: `PARTNERFLOW_TEST_CHROMEDRIVER`, else [`CHROMEDRIVER`].
pub fn chromedriver() -> String {
    std::env::var("PARTNERFLOW_TEST_CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.into())
}

/// The browser to drive: `PARTNERFLOW_TEST_CHROMIUM`, else [`CHROMIUM`].
pub fn chromium() -> String {
    std::env::var("PARTNERFLOW_TEST_CHROMIUM").unwrap_or_else(|_| CHROMIUM.into())
}

/// Why a browser test cannot run here: the browser or its driver is missing (both are
/// needed); `None` when both are there.
pub fn missing(browser: &str, driver: &str) -> Option<String> {
    [("the browser", browser), ("the WebDriver server", driver)]
        .into_iter()
        .find(|(_, p)| !Path::new(p).is_file())
        .map(|(what, p)| {
            format!("{what} {p} is missing (apt-get install chromium chromium-driver)")
        })
}

/// W3C "web element identifier": the key under which an element reference is returned
/// (WebDriver spec §12.1; chromedriver uses exactly this).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Poll interval for readiness and `wait_until`.
const POLL: Duration = Duration::from_millis(50);
/// How long chromedriver may take to answer `GET /status` with `ready: true`.
const STARTUP: Duration = Duration::from_secs(20);
/// Upper bound for a single WebDriver command (session creation and page loads included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// Upper bound for a single `GET /status` probe and for the session delete on drop.
const SHORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read (page sources, screenshots).
const MAX_BODY: u64 = 256 * 1024 * 1024;

struct Inner {
    child: Child,
    base: String,
    agent: ureq::Agent,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Inner {
    /// Sends one command and returns the response's `value`.
    fn command(
        &self,
        what: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Value, String> {
        let url = format!("{}{}", self.base, path);
        let sent = match (method, body) {
            ("GET", _) => with_timeout(self.agent.get(&url), timeout).call(),
            ("DELETE", _) => with_timeout(self.agent.delete(&url), timeout).call(),
            ("POST", body) => {
                let body = body.cloned().unwrap_or_else(|| json!({})).to_string();
                self.agent
                    .post(&url)
                    .config()
                    .timeout_global(Some(timeout))
                    .build()
                    .header("content-type", "application/json; charset=utf-8")
                    .send(body)
            }
            (other, _) => return Err(format!("webdriver {what}: unsupported method {other}")),
        };
        let mut resp = sent.map_err(|e| format!("webdriver {what}: {method} {url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| {
                format!("webdriver {what}: reading the response to {method} {url}: {e}")
            })?;
        let parsed: Value = serde_json::from_str(&text).map_err(|e| {
            format!(
                "webdriver {what}: HTTP {status}, response is not JSON ({e}): {}",
                snippet(&text)
            )
        })?;
        let mut value = match parsed {
            Value::Object(mut m) => m.remove("value").unwrap_or(Value::Null),
            other => other,
        };
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            let message = value
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim();
            return Err(if message.starts_with(error) {
                format!("webdriver {what}: {message}")
            } else {
                format!("webdriver {what}: {error}: {message}")
            });
        }
        if !(200..300).contains(&status) {
            return Err(format!(
                "webdriver {what}: HTTP {status}: {}",
                snippet(&text)
            ));
        }
        Ok(value.take())
    }
}

fn with_timeout(
    req: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
    timeout: Duration,
) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
    req.config().timeout_global(Some(timeout)).build()
}

fn snippet(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

/// A running `chromedriver`. Cheap handles: every [`Session`] keeps the process alive, and it is
/// killed when the `Driver` and all its sessions have been dropped.
pub struct Driver {
    inner: Arc<Inner>,
}

impl Driver {
    /// Spawns `/usr/bin/chromedriver --port=<free port>` and waits (polling `GET /status` every
    /// 50 ms, at most 20 s) until it reports itself ready. Retries on another port if the
    /// process exits early (e.g. the port was taken between probing and binding).
    pub fn start() -> Result<Driver, String> {
        if let Some(why) = missing(&chromium(), &chromedriver()) {
            return Err(why);
        }
        let mut last_err = String::new();
        for _attempt in 0..3 {
            match Self::start_once() {
                Ok(d) => return Ok(d),
                Err((retry, e)) if retry => last_err = e,
                Err((_, e)) => return Err(e),
            }
        }
        Err(last_err)
    }

    /// `Err((retryable, message))`.
    fn start_once() -> Result<Driver, (bool, String)> {
        let port = free_port().map_err(|e| (false, e))?;
        let bin = chromedriver();
        let child = Command::new(&bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| (false, format!("spawning {bin}: {e}")))?;
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .proxy(None)
                .timeout_global(Some(COMMAND_TIMEOUT))
                .build(),
        );
        // From here on, `inner` kills the child on any early return.
        let mut inner = Inner {
            child,
            base: format!("http://127.0.0.1:{port}"),
            agent,
        };
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Ok(Some(status)) = inner.child.try_wait() {
                return Err((
                    true,
                    format!("{bin} --port={port} exited before becoming ready: {status}"),
                ));
            }
            let last = match inner.command("status", "GET", "/status", None, Duration::from_secs(1))
            {
                Ok(v) if v.get("ready").and_then(Value::as_bool) == Some(true) => break,
                Ok(v) => format!("not ready: {v}"),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err((
                    false,
                    format!("{bin} on port {port} not ready after {STARTUP:?}: {last}"),
                ));
            }
            std::thread::sleep(POLL);
        }
        Ok(Driver {
            inner: Arc::new(inner),
        })
    }

    /// Base URL of the chromedriver, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.inner.base
    }

    /// Starts headless Chromium with the given UI / `Accept-Language` language (e.g. `"de"`,
    /// `"en-GB"`) and a 412×915 (phone-sized) window.
    pub fn session(&self, lang: &str) -> Result<Session, String> {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    format!("--lang={lang}"),
                    "--window-size=412,915",
                ],
                "prefs": {"intl.accept_languages": lang},
            },
        }}});
        let what = format!("new session (lang {lang})");
        let v = self
            .inner
            .command(&what, "POST", "/session", Some(&caps), COMMAND_TIMEOUT)?;
        let id = v.get("sessionId").and_then(Value::as_str).ok_or_else(|| {
            format!(
                "webdriver {what}: no sessionId in {}",
                snippet(&v.to_string())
            )
        })?;
        Ok(Session {
            inner: Arc::clone(&self.inner),
            id: id.to_string(),
        })
    }
}

/// One browser (a WebDriver session); deleted — and Chromium closed — on drop.
/// Element references are the plain W3C element ids (`String`).
pub struct Session {
    inner: Arc<Inner>,
    id: String,
}

impl Drop for Session {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.id);
        let _ = self
            .inner
            .command("delete session", "DELETE", &path, None, SHORT_TIMEOUT);
    }
}

impl Session {
    fn get(&self, what: &str, path: &str) -> Result<Value, String> {
        let path = format!("/session/{}{path}", self.id);
        self.inner
            .command(what, "GET", &path, None, COMMAND_TIMEOUT)
    }

    fn post(&self, what: &str, path: &str, body: Value) -> Result<Value, String> {
        let path = format!("/session/{}{path}", self.id);
        self.inner
            .command(what, "POST", &path, Some(&body), COMMAND_TIMEOUT)
    }

    fn string(what: &str, v: Value) -> Result<String, String> {
        match v {
            Value::String(s) => Ok(s),
            other => Err(format!("webdriver {what}: expected a string, got {other}")),
        }
    }

    fn element_id(what: &str, v: &Value) -> Result<String, String> {
        v.get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("webdriver {what}: no element reference in {v}"))
    }

    /// The WebDriver session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Navigates and waits for the page load (WebDriver's default "normal" strategy).
    pub fn goto(&self, url: &str) -> Result<(), String> {
        self.post(&format!("goto {url}"), "/url", json!({"url": url}))
            .map(drop)
    }

    pub fn current_url(&self) -> Result<String, String> {
        Self::string("current_url", self.get("current_url", "/url")?)
    }

    pub fn title(&self) -> Result<String, String> {
        Self::string("title", self.get("title", "/title")?)
    }

    pub fn page_source(&self) -> Result<String, String> {
        Self::string("page_source", self.get("page_source", "/source")?)
    }

    /// The first element matching the CSS selector; `Err` ("no such element: …") when none does.
    pub fn find(&self, css: &str) -> Result<String, String> {
        let what = format!("find {css:?}");
        let v = self.post(
            &what,
            "/element",
            json!({"using": "css selector", "value": css}),
        )?;
        Self::element_id(&what, &v)
    }

    /// All elements matching the CSS selector (possibly none).
    pub fn find_all(&self, css: &str) -> Result<Vec<String>, String> {
        let what = format!("find_all {css:?}");
        let v = self.post(
            &what,
            "/elements",
            json!({"using": "css selector", "value": css}),
        )?;
        match v {
            Value::Array(items) => items.iter().map(|e| Self::element_id(&what, e)).collect(),
            other => Err(format!("webdriver {what}: expected an array, got {other}")),
        }
    }

    /// Whether at least one element matches; any WebDriver error counts as "no".
    pub fn exists(&self, css: &str) -> bool {
        self.find_all(css).is_ok_and(|v| !v.is_empty())
    }

    pub fn click(&self, el: &str) -> Result<(), String> {
        self.post("click", &format!("/element/{el}/click"), json!({}))
            .map(drop)
    }

    pub fn clear(&self, el: &str) -> Result<(), String> {
        self.post("clear", &format!("/element/{el}/clear"), json!({}))
            .map(drop)
    }

    /// Types `text` into the element (appends to its current value; `clear` first to replace).
    pub fn send_keys(&self, el: &str, text: &str) -> Result<(), String> {
        let what = format!("send_keys {text:?}");
        self.post(
            &what,
            &format!("/element/{el}/value"),
            json!({"text": text}),
        )
        .map(drop)
    }

    /// The HTML attribute as written in the markup (`Ok(None)` when absent).
    pub fn attribute(&self, el: &str, name: &str) -> Result<Option<String>, String> {
        let what = format!("attribute {name:?}");
        match self.get(&what, &format!("/element/{el}/attribute/{name}"))? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Ok(Some(other.to_string())),
        }
    }

    /// The live DOM property (e.g. `value`, `checked`), as JSON (`Null` when undefined).
    pub fn property(&self, el: &str, name: &str) -> Result<Value, String> {
        self.get(
            &format!("property {name:?}"),
            &format!("/element/{el}/property/{name}"),
        )
    }

    pub fn is_selected(&self, el: &str) -> Result<bool, String> {
        match self.get("is_selected", &format!("/element/{el}/selected"))? {
            Value::Bool(b) => Ok(b),
            other => Err(format!(
                "webdriver is_selected: expected a bool, got {other}"
            )),
        }
    }

    /// The element's rendered (visible) text.
    pub fn text(&self, el: &str) -> Result<String, String> {
        Self::string("text", self.get("text", &format!("/element/{el}/text"))?)
    }

    /// Runs synchronous JavaScript (`return …;`) and returns its JSON result.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.post(
            "execute",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
    }

    /// Polls `cond` every 50 ms until it returns `Ok(true)`. An `Err` from `cond` (e.g. an element
    /// not there yet while a page loads) counts as "not yet" and is quoted if time runs out.
    /// On timeout: `Err` naming `what`, the current URL, and the last error.
    pub fn wait_until(
        &self,
        deadline: Duration,
        what: &str,
        mut cond: impl FnMut(&Session) -> Result<bool, String>,
    ) -> Result<(), String> {
        let end = Instant::now() + deadline;
        let mut last_err = None;
        loop {
            match cond(self) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last_err = Some(e),
            }
            if Instant::now() >= end {
                let url = self
                    .current_url()
                    .unwrap_or_else(|e| format!("<unknown: {e}>"));
                let mut msg = format!("timed out after {deadline:?} waiting for {what} (at {url})");
                if let Some(e) = last_err {
                    msg.push_str(&format!("; last error: {e}"));
                }
                return Err(msg);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub fn screenshot_png(&self, path: impl AsRef<Path>) -> Result<(), String> {
        let path = path.as_ref();
        let b64 = Self::string("screenshot", self.get("screenshot", "/screenshot")?)?;
        let png = base64_decode(&b64).map_err(|e| format!("webdriver screenshot: {e}"))?;
        std::fs::write(path, png).map_err(|e| format!("writing {}: {e}", path.display()))
    }
}

/// Standard-alphabet base64 (padding optional, ASCII whitespace ignored).
pub(crate) fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for (i, c) in s.bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return Err(format!("invalid base64 byte {c:#04x} at offset {i}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}
