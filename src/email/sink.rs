//! A minimal SMTP server that accepts every message and counts it: the local sink of
//! `bench campaign`, so the figure needs nothing installed. Speaks enough ESMTP for lettre
//! (EHLO with PIPELINING and 8BITMIME, MAIL, RCPT, DATA, RSET, NOOP, QUIT); keeps nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Default)]
pub struct SinkStats {
    pub messages: AtomicU64,
    pub connections: AtomicU64,
    pub bytes: AtomicU64,
}

/// Starts the sink on 127.0.0.1 (a free port); returns its port and counters.
pub async fn start() -> std::io::Result<(u16, Arc<SinkStats>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let stats = Arc::new(SinkStats::default());
    let s = stats.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let s = s.clone();
            let _ = sock.set_nodelay(true);
            tokio::spawn(async move {
                s.connections.fetch_add(1, Ordering::Relaxed);
                let _ = session(sock, &s).await;
            });
        }
    });
    Ok((port, stats))
}

async fn session(sock: tokio::net::TcpStream, s: &SinkStats) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::with_capacity(64 * 1024, r);
    w.write_all(b"220 sink ESMTP\r\n").await?;
    let mut line = Vec::with_capacity(256);
    let mut out: Vec<u8> = Vec::with_capacity(256);
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb: Vec<u8> = line
            .iter()
            .take(4)
            .map(|c| c.to_ascii_uppercase())
            .collect();
        match &verb[..] {
            b"EHLO" => out.extend_from_slice(
                b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n",
            ),
            b"HELO" => out.extend_from_slice(b"250 sink\r\n"),
            b"DATA" => {
                w.write_all(b"354 end with .\r\n").await?;
                let mut n = 0u64;
                loop {
                    line.clear();
                    if r.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(());
                    }
                    n += line.len() as u64;
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                }
                s.bytes.fetch_add(n, Ordering::Relaxed);
                let id = s.messages.fetch_add(1, Ordering::Relaxed) + 1;
                out.extend_from_slice(format!("250 OK queued as {id}\r\n").as_bytes());
            }
            b"QUIT" => {
                w.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => out.extend_from_slice(b"250 OK\r\n"),
        }
        // Answer pipelined commands together: write when nothing more is buffered.
        if r.buffer().is_empty() {
            w.write_all(&out).await?;
            out.clear();
        }
    }
}
