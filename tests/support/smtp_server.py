#!/usr/bin/env python3
"""A small SMTP sink for partnerflow's integration tests (aiosmtpd).

Usage: smtp_server.py OUT_DIR

Listens on 127.0.0.1 on a free port and prints "PORT <n>" as the first line of stdout.
Every accepted message is written to OUT_DIR as NNNNNN.eml (raw bytes as received,
headers included), with its SMTP envelope beside it in NNNNNN.envelope (line 1 the
MAIL FROM address, then one RCPT TO address per line). The .eml appears only when both
files are complete, before the server replies 250 to DATA.

Recipients decide the behaviour, by their local part (case-insensitive):
  temp*  the first RCPT TO for that address gets "451 4.3.0 try again later",
         later attempts are accepted;
  perm*  always "550 5.1.1 no such user";
  other  accepted.

Runs until stdin reaches end of file (the parent closed it or died) or it is killed.
"""

import os
import sys

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0
        self.deferred = set()  # temp* addresses already refused once

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("perm"):
            return "550 5.1.1 no such user"
        if local.startswith("temp") and address.lower() not in self.deferred:
            self.deferred.add(address.lower())
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        # Handlers run on the controller's single event-loop thread: no locking needed.
        self.count += 1
        name = "%06d" % self.count
        base = os.path.join(self.out_dir, name)
        with open(base + ".envelope", "w", encoding="utf-8") as f:
            f.write("\n".join([envelope.mail_from or ""] + list(envelope.rcpt_tos)) + "\n")
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.replace(base + ".tmp", base + ".eml")
        return "250 2.0.0 OK queued as " + name


class FreePortController(Controller):
    """Binds port 0; learns the real port before aiosmtpd's start-up probe connects."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: smtp_server.py OUT_DIR\n")
        return 2
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    controller = FreePortController(
        Sink(out_dir), hostname="127.0.0.1", port=0, server_hostname="smtp.test", decode_data=False
    )
    controller.start()
    print("PORT %d" % controller.port, flush=True)
    try:
        sys.stdin.read()  # blocks until the parent closes stdin or dies
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
