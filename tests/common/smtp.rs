//! A real SMTP server for tests: Python's aiosmtpd (tests/support/smtp_server.py) in a child
//! process, writing each accepted message to a folder.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The test installs its SMTP server itself when the machine lacks it (once per process).
pub fn ensure_aiosmtpd() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let have = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        if !have {
            let ok = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "aiosmtpd==1.4.6"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "could not install aiosmtpd with pip");
        }
    });
}

/// The aiosmtpd child process; killed (and reaped) on drop, also when a test panics.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl SmtpServer {
    pub fn start(dir: &Path) -> SmtpServer {
        ensure_aiosmtpd();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect(
                "spawn python3 tests/support/smtp_server.py (is python3 with aiosmtpd installed?)",
            );
        let mut line = String::new();
        let stdout = child.stdout.take().expect("child stdout");
        // Guard first, so that a failure below still kills the child.
        let mut server = SmtpServer {
            child,
            port: 0,
            dir: dir.to_path_buf(),
        };
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the SMTP server's port line");
        server.port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "smtp_server.py did not print `PORT n` (got {line:?}); is aiosmtpd installed?"
                )
            });
        server
    }

    /// Messages received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .expect("read the SMTP server's directory")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                let raw = String::from_utf8(std::fs::read(p).expect("read .eml"))
                    .expect("message is UTF-8");
                let envelope =
                    std::fs::read_to_string(p.with_extension("envelope")).expect("read .envelope");
                let mut lines = envelope.lines().map(str::to_string);
                let mail_from = lines.next().unwrap_or_default();
                Received {
                    mail_from,
                    rcpt_to: lines.collect(),
                    raw,
                }
            })
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub raw: String,
}

impl Received {
    /// The value of the Message-ID header, as sent (with its angle brackets).
    pub fn message_id(&self) -> Option<String> {
        self.raw
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("message-id")
                    .then(|| v.trim().to_string())
            })
    }
}

impl SmtpServer {
    /// How often each Message-ID arrived, and how many messages arrived in all.
    pub fn message_id_counts(&self) -> (std::collections::HashMap<String, usize>, usize) {
        let received = self.received();
        let mut seen = std::collections::HashMap::new();
        for m in &received {
            let mid = m.message_id().expect("every message has a Message-ID");
            *seen.entry(mid).or_insert(0) += 1;
        }
        (seen, received.len())
    }

    /// How many messages were accepted so far (cheap: counts files).
    pub fn count(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml"))
                })
                .count()
            })
            .unwrap_or(0)
    }
}
