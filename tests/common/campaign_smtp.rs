//! A real SMTP server for campaign tests: Python's aiosmtpd (tests/support/campaign_smtp.py)
//! in a child process. It logs one line per accepted message to DIR/received.log (cheap
//! enough for tens of thousands of messages), records the largest number of simultaneous
//! connections, and can be told to misbehave (refuse, defer, slow down, go down).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::smtp::ensure_aiosmtpd;

/// The script's exit status when it could not bind its port (e.g. still in use).
const EXIT_BIND_FAILED: i32 = 3;
/// How long `start_on`/`restart` keep retrying a port that is briefly unavailable.
const BIND_RETRY_FOR: Duration = Duration::from_secs(5);

/// One message the server accepted (one line of DIR/received.log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// Unix time in milliseconds, taken just before the server answered 250 to DATA.
    pub at_ms: u64,
    /// Which TCP connection it came on; unique within the folder, also across restarts.
    pub conn: u64,
    /// The Message-ID header as sent, with its angle brackets; "-" when it had none.
    pub message_id: String,
    /// The accepted RCPT TO addresses, in order.
    pub rcpts: Vec<String>,
    /// Whether the message had a List-Unsubscribe header.
    pub list_unsubscribe: bool,
}

/// The aiosmtpd child process; killed (and reaped) on drop, also when a test panics.
pub struct CampaignSmtp {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

enum Spawned {
    Running(Child, u16),
    BindFailed,
}

impl CampaignSmtp {
    /// Starts the server on a free port, recording into `dir` (created if missing).
    pub fn start(dir: &Path) -> Self {
        Self::start_on(dir, 0)
    }

    /// Starts the server on `port` (0: a free one), retrying for up to 5 s while the port
    /// cannot be bound. An existing received.log in `dir` is appended to.
    pub fn start_on(dir: &Path, port: u16) -> Self {
        ensure_aiosmtpd();
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("create SMTP server folder {}: {e}", dir.display()));
        let mut server = CampaignSmtp {
            port,
            dir: dir.to_path_buf(),
            child: None,
        };
        server.spawn_with_retry(port);
        server
    }

    /// Takes the server down: kills and reaps the process, so connections are refused.
    /// Does nothing if it is already down.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Brings the server up again on the same port and folder (stopping it first if it is
    /// running); received.log keeps growing, conn ids keep increasing.
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port;
        self.spawn_with_retry(port);
    }

    /// How every later RCPT TO is answered: "ok", "tempfail" (451) or "permfail" (550).
    pub fn set_mode(&self, mode: &str) {
        assert!(
            matches!(mode, "ok" | "tempfail" | "permfail"),
            "CampaignSmtp::set_mode: unknown mode {mode:?} (ok, tempfail or permfail)"
        );
        self.write_atomically("mode", mode);
    }

    /// How long every later DATA waits before it is answered (0: no delay).
    pub fn set_delay_ms(&self, ms: u64) {
        self.write_atomically("delay_ms", &ms.to_string());
    }

    /// Every accepted message so far, in the order the server logged them.
    pub fn arrivals(&self) -> Vec<Arrival> {
        let bytes = self.read_log();
        let complete = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(last) => &bytes[..=last],
            None => return Vec::new(),
        };
        String::from_utf8_lossy(complete)
            .lines()
            .enumerate()
            .map(|(i, line)| {
                parse_line(line).unwrap_or_else(|| {
                    panic!(
                        "{} line {}: malformed arrival {line:?}",
                        self.log_path().display(),
                        i + 1
                    )
                })
            })
            .collect()
    }

    /// How many messages were accepted so far (counts complete lines, no parsing).
    pub fn count(&self) -> usize {
        self.read_log().iter().filter(|&&b| b == b'\n').count()
    }

    /// The largest number of connections that were open at once (over the folder's whole
    /// life, restarts included); 0 before the first connection.
    pub fn max_connections(&self) -> u32 {
        let path = self.dir.join("max_connections");
        match std::fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{}: not a number ({e}): {text:?}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => panic!("read {}: {e}", path.display()),
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("received.log")
    }

    fn read_log(&self) -> Vec<u8> {
        let path = self.log_path();
        match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("read {}: {e}", path.display()),
        }
    }

    /// Writes DIR/name through a temporary file and a rename, so the server never reads
    /// half a file.
    fn write_atomically(&self, name: &str, content: &str) {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let tmp = self.dir.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let path = self.dir.join(name);
        std::fs::write(&tmp, format!("{content}\n"))
            .unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
        std::fs::rename(&tmp, &path)
            .unwrap_or_else(|e| panic!("rename {} to {}: {e}", tmp.display(), path.display()));
    }

    fn spawn_with_retry(&mut self, port: u16) {
        let deadline = Instant::now() + BIND_RETRY_FOR;
        loop {
            match self.spawn_once(port) {
                Spawned::Running(child, bound) => {
                    self.child = Some(child);
                    self.port = bound;
                    return;
                }
                Spawned::BindFailed if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Spawned::BindFailed => panic!(
                    "campaign_smtp.py could not bind 127.0.0.1:{port} for {BIND_RETRY_FOR:?}"
                ),
            }
        }
    }

    fn spawn_once(&self, port: u16) -> Spawned {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/campaign_smtp.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&self.dir)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "spawn python3 {} (is python3 with aiosmtpd installed?): {e}",
                    script.display()
                )
            });
        let stdout = child.stdout.take().expect("child stdout");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let bound = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse::<u16>().ok());
        if let (Ok(_), Some(bound)) = (&read, bound) {
            return Spawned::Running(child, bound);
        }
        // No port line: the script ended (or is about to); learn why from its exit status.
        let _ = child.kill();
        let status = child.wait().expect("reap campaign_smtp.py");
        if status.code() == Some(EXIT_BIND_FAILED) {
            return Spawned::BindFailed;
        }
        panic!(
            "campaign_smtp.py did not print `PORT n` (read {read:?}, got {line:?}, exit {status}); \
             see its stderr above"
        );
    }
}

impl Drop for CampaignSmtp {
    fn drop(&mut self) {
        self.stop();
    }
}

fn parse_line(line: &str) -> Option<Arrival> {
    let mut fields = line.split(' ');
    let arrival = Arrival {
        at_ms: fields.next()?.parse().ok()?,
        conn: fields.next()?.parse().ok()?,
        message_id: fields.next()?.to_string(),
        rcpts: fields.next()?.split(',').map(str::to_string).collect(),
        list_unsubscribe: match fields.next()? {
            "0" => false,
            "1" => true,
            _ => return None,
        },
    };
    fields.next().is_none().then_some(arrival)
}

/// Largest number of arrivals within any window of `window_ms` (sliding, by arrival time:
/// arrivals whose times differ by less than `window_ms`), optionally only those whose first
/// rcpt's domain equals `domain` (case-insensitive).
pub fn max_in_window(arrivals: &[Arrival], window_ms: u64, domain: Option<&str>) -> usize {
    let mut times: Vec<u64> = arrivals
        .iter()
        .filter(|a| {
            domain.is_none_or(|d| {
                a.rcpts
                    .first()
                    .and_then(|r| r.rsplit_once('@'))
                    .is_some_and(|(_, dom)| dom.eq_ignore_ascii_case(d))
            })
        })
        .map(|a| a.at_ms)
        .collect();
    times.sort_unstable();
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while start <= end && times[end] - times[start] >= window_ms {
            start += 1;
        }
        best = best.max(end + 1 - start);
    }
    best
}
