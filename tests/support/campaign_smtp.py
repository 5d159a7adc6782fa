#!/usr/bin/env python3
"""A fast SMTP sink for partnerflow's campaign integration tests (aiosmtpd).

Usage: campaign_smtp.py DIR [PORT]

Listens on 127.0.0.1:PORT (PORT 0 or absent: a free port, SO_REUSEADDR always set) and
prints "PORT <n>" as the first line of stdout. If the port cannot be bound it prints a
message to stderr and exits with status 3 (the Rust wrapper retries on that).

Every accepted message (250 to DATA) appends one line to DIR/received.log, written with a
single write() on an O_APPEND descriptor before the 250 is sent:

    <unix time ms> <conn_id> <Message-ID with <>, or -> <rcpt1>[,<rcpt2>...] <0|1>

the last field telling whether the message has a List-Unsubscribe header. Only the header
block of the message is scanned. conn_id counts TCP connections; it goes on from the
largest conn_id already in DIR/received.log, so that ids stay unique across restarts.

DIR/max_connections holds the largest number of connections open at once (replaced
atomically whenever it grows); it starts from the value already in the file, so it is the
maximum over the folder's whole life, restarts included.

Misbehaviour, decided by files in DIR that the test may change at any time:
  mode       read at each RCPT TO: "ok" (also when absent) accepts,
             "tempfail" answers "451 4.3.2 try again later",
             "permfail" answers "550 5.7.1 refused".
  delay_ms   an integer: each DATA waits that long before its 250 (and before logging;
             a client that hangs up meanwhile leaves no line).
Recipients whose local part starts with "perm" (case-insensitive) always get
"550 5.1.1 no such user", whatever the mode.

Runs until stdin reaches end of file (the parent closed it or died) or it is killed.
"""

import asyncio
import errno
import logging
import os
import sys
import threading
import time

from aiosmtpd.smtp import SMTP

MODES = {
    "ok": None,
    "tempfail": "451 4.3.2 try again later",
    "permfail": "550 5.7.1 refused",
}


def read_small(path):
    """The stripped text of a small file, or None if it does not exist (cheap: no io layers)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return os.read(fd, 256).decode("utf-8", "replace").strip()
    finally:
        os.close(fd)


def header_fields(content):
    """(Message-ID or None, has List-Unsubscribe) from the header block of raw message bytes."""
    end = content.find(b"\r\n\r\n")
    if end < 0:
        end = content.find(b"\n\n")
    block = content if end < 0 else content[:end]
    message_id = None
    unsubscribe = False
    current = None  # name of the header whose (possibly folded) value we are reading
    for line in block.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if current == b"message-id":
                message_id += line
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            current = None
            continue
        current = name.strip().lower()
        if current == b"message-id" and message_id is None:
            message_id = value
        elif current == b"list-unsubscribe":
            unsubscribe = True
    if message_id is not None:
        # Unfolded, without any whitespace: the log line is space-separated.
        message_id = "".join(message_id.decode("utf-8", "replace").split())
    return message_id or None, unsubscribe


class State:
    """Everything shared by the connections; only touched on the event loop's thread."""

    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.log_path = os.path.join(out_dir, "received.log")
        self.mode_path = os.path.join(out_dir, "mode")
        self.delay_path = os.path.join(out_dir, "delay_ms")
        self.max_path = os.path.join(out_dir, "max_connections")
        self.next_conn = self._last_conn_id() + 1
        self.open_connections = 0
        try:
            self.max_connections = int(read_small(self.max_path) or 0)
        except ValueError:
            self.max_connections = 0
        self.log_fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.warned = set()

    def _last_conn_id(self):
        last = 0
        try:
            with open(self.log_path, "rb") as f:
                for line in f:
                    parts = line.split(b" ", 2)
                    if len(parts) == 3 and parts[1].isdigit():
                        last = max(last, int(parts[1]))
        except FileNotFoundError:
            pass
        return last

    def warn_once(self, text):
        if text not in self.warned:
            self.warned.add(text)
            sys.stderr.write("campaign_smtp.py: %s\n" % text)
            sys.stderr.flush()

    def connection_opened(self):
        conn_id = self.next_conn
        self.next_conn += 1
        self.open_connections += 1
        if self.open_connections > self.max_connections:
            self.max_connections = self.open_connections
            tmp = self.max_path + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d\n" % self.max_connections)
            os.replace(tmp, self.max_path)
        return conn_id

    def connection_closed(self):
        self.open_connections -= 1

    def rcpt_refusal(self):
        mode = read_small(self.mode_path) or "ok"
        if mode not in MODES:
            self.warn_once("unknown mode %r in %s, treated as ok" % (mode, self.mode_path))
            return None
        return MODES[mode]

    def delay_seconds(self):
        text = read_small(self.delay_path)
        if not text:
            return 0.0
        try:
            return max(0, int(text)) / 1000.0
        except ValueError:
            self.warn_once("delay_ms holds %r, not an integer: no delay" % text)
            return 0.0

    def record(self, conn_id, envelope):
        message_id, unsubscribe = header_fields(envelope.original_content or b"")
        line = "%d %d %s %s %d\n" % (
            time.time_ns() // 1_000_000,
            conn_id,
            message_id or "-",
            ",".join(envelope.rcpt_tos),
            1 if unsubscribe else 0,
        )
        os.write(self.log_fd, line.encode("utf-8", "replace"))


class Handler:
    def __init__(self, state):
        self.state = state

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@", 1)[0].lower().startswith("perm"):
            return "550 5.1.1 no such user"
        refusal = self.state.rcpt_refusal()
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        delay = self.state.delay_seconds()
        if delay > 0:
            await asyncio.sleep(delay)  # cancelled (nothing logged) if the client hangs up
        self.state.record(server.conn_id, envelope)
        return "250 2.0.0 OK queued"


class CountingSMTP(SMTP):
    """aiosmtpd's protocol, counting connections (one instance per TCP connection)."""

    def __init__(self, state, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.state = state
        self.conn_id = None

    def connection_made(self, transport):
        if self.conn_id is None:  # not again after STARTTLS (unused here, but be safe)
            self.conn_id = self.state.connection_opened()
        super().connection_made(transport)

    def connection_lost(self, error):
        if self.conn_id is not None:
            self.state.connection_closed()
        super().connection_lost(error)


async def serve(out_dir, port):
    loop = asyncio.get_running_loop()
    state = State(out_dir)
    handler = Handler(state)

    def factory():
        return CountingSMTP(
            state, handler, hostname="smtp.test", decode_data=False, loop=loop
        )

    try:
        server = await loop.create_server(
            factory, host="127.0.0.1", port=port, reuse_address=True, backlog=256
        )
    except OSError as e:
        sys.stderr.write("campaign_smtp.py: cannot listen on 127.0.0.1:%d: %s\n" % (port, e))
        sys.stderr.flush()
        return 3 if e.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES) else 1

    stdin_closed = asyncio.Event()

    def wait_for_stdin_eof():
        try:
            while sys.stdin.buffer.read(65536):
                pass
        except (OSError, ValueError):
            pass
        loop.call_soon_threadsafe(stdin_closed.set)

    threading.Thread(target=wait_for_stdin_eof, daemon=True).start()
    print("PORT %d" % server.sockets[0].getsockname()[1], flush=True)
    await stdin_closed.wait()
    # Not wait_closed(): on newer Pythons it waits for every client to hang up.
    server.close()
    return 0


def main():
    if len(sys.argv) not in (2, 3):
        sys.stderr.write("usage: campaign_smtp.py DIR [PORT]\n")
        return 2
    out_dir = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) == 3 else 0
    os.makedirs(out_dir, exist_ok=True)
    # aiosmtpd logs every command at INFO; keep that (and its cost) out of the way.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    try:
        return asyncio.run(serve(out_dir, port))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
