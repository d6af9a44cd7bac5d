"""A real SMTP server for the mail tests: aiosmtpd's, on loopback, keeping every message it
accepts as one file (`N.eml`, the bytes as received, with `X-Envelope-From` and `X-Envelope-To` lines prepended) in a
directory. Run with the environment `scripts/ensure-mail` makes.

    smtp-server.py PORT DIRECTORY [--refuse ADDRESS ...] [--delay SECONDS]

Prints `ready` on a line once it listens. A recipient given with --refuse is answered 550;
--delay makes each message take that long to accept (a slow server, to stop a sender mid-way)."""

import argparse
import asyncio
import itertools
import os
import sys
import threading
import time

from aiosmtpd.controller import Controller


class Keep:
    def __init__(self, directory, refused, delay):
        self.directory = directory
        self.delay = delay
        self.refused = {a.lower() for a in refused}
        self.count = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refused:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            n = next(self.count)
        head = f"X-Envelope-From: {envelope.mail_from}\r\n"
        head += "".join(f"X-Envelope-To: {a}\r\n" for a in envelope.rcpt_tos)
        path = os.path.join(self.directory, f"{n}.eml")
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(head.encode() + envelope.original_content)
        os.rename(tmp, path)
        return "250 Message accepted for delivery"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("directory")
    p.add_argument("--refuse", action="append", default=[])
    p.add_argument("--delay", type=float, default=0.0)
    a = p.parse_args()
    os.makedirs(a.directory, exist_ok=True)
    c = Controller(Keep(a.directory, a.refuse, a.delay), hostname="127.0.0.1", port=a.port)
    c.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        c.stop()


if __name__ == "__main__":
    sys.exit(main())
