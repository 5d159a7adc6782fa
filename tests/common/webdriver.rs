//! What the browser test needs besides its WebDriver client (`fantoccini`): finding Chromium
//! and chromedriver, starting chromedriver and knowing when it listens, the capabilities of a
//! headless, phone-sized Chromium in a given language, and killing it all at the end.
//!
//! Requires Debian's `chromium` and `chromium-driver` packages, i.e. `/usr/bin/chromium` and
//! `/usr/bin/chromedriver` (`apt-get install -y chromium chromium-driver`); other paths through
//! `PARTNERFLOW_TEST_CHROMIUM` and `PARTNERFLOW_TEST_CHROMEDRIVER`.
//!
//! ```ignore
//! let driver = Driver::start().await?;   // chromedriver (and its browsers) killed on drop
//! let c = driver.session("de").await?;   // a fantoccini::Client on headless Chromium
//! c.goto("http://127.0.0.1:8080/").await?;
//! c.find(Locator::Id("go")).await?.click().await?;
//! c.close().await?;
//! ```
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long chromedriver may take to say it listens.
const STARTUP: Duration = Duration::from_secs(20);

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

/// A running chromedriver, in a process group of its own: dropping the `Driver` kills the
/// group, i.e. chromedriver and any Chromium it started (even for a session a failing test
/// did not close).
pub struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(pgid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) with the negated id of the process group we created.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    /// Starts chromedriver on a port the system picks (`--port=0`) and waits — at most
    /// [`STARTUP`] — for the line it prints once it listens ("ChromeDriver was started
    /// successfully on port N."), which names the port.
    pub async fn start() -> Result<Driver, String> {
        if let Some(why) = missing(&chromium(), &chromedriver()) {
            return Err(why);
        }
        let bin = chromedriver();
        let mut child = Command::new(&bin)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("spawning {bin}: {e}"))?;
        let stdout = child.stdout.take();
        // From here on, `driver` kills the process on any early return.
        let mut driver = Driver {
            child,
            url: String::new(),
        };
        let stdout = stdout.ok_or("chromedriver's stdout is not piped")?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Reads chromedriver's output until it names its port, then drains the pipe until the
        // process ends (so that it never blocks writing).
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(tx) = tx.take_if(|_| line.contains("started successfully")) {
                    let port = line
                        .trim_end_matches('.')
                        .rsplit(' ')
                        .next()
                        .and_then(|p| p.parse::<u16>().ok());
                    let _ = tx.send(port.ok_or(line));
                } else if tx.is_some() {
                    seen.push(line);
                }
            }
            if let Some(tx) = tx {
                let _ = tx.send(Err(format!("it exited; it said: {}", seen.join(" | "))));
            }
        });
        let port = match tokio::time::timeout(STARTUP, rx).await {
            Ok(Ok(Ok(port))) => port,
            Ok(Ok(Err(why))) => return Err(format!("{bin} --port=0: no port: {why}")),
            Ok(Err(_)) => return Err(format!("{bin} --port=0: its output reader ended")),
            Err(_) => return Err(format!("{bin} --port=0: not listening after {STARTUP:?}")),
        };
        driver.url = format!("http://127.0.0.1:{port}");
        Ok(driver)
    }

    /// chromedriver's URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new headless Chromium with the given UI and `Accept-Language` language (e.g. `"de"`,
    /// `"en-GB"`) and a 412×915 (phone-sized) window. `Client::close` ends it.
    pub async fn session(&self, lang: &str) -> Result<Client, String> {
        self.session_sized(lang, 412, 915).await
    }

    /// As [`session`](Self::session), with a `width`×`height` window (e.g. a desktop's).
    pub async fn session_sized(
        &self,
        lang: &str,
        width: u32,
        height: u32,
    ) -> Result<Client, String> {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    format!("--lang={lang}"),
                    format!("--window-size={width},{height}"),
                ],
                "prefs": {"intl.accept_languages": lang},
            },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!("a JSON object literal")
        };
        let caps: Capabilities = caps;
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .map_err(|e| format!("new Chromium session (lang {lang}) at {}: {e}", self.url))
    }
}
