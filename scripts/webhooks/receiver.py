#!/usr/bin/env python3
"""A recipient's webhook endpoint, for the tests of Steward's change notifications (issue 22).

A real HTTP server (the standard library's) that checks every notification as a recipient would,
with an independent Ed25519 implementation (PyNaCl, libsodium): the Standard Webhooks `v1a`
signature over `{webhook-id}.{webhook-timestamp}.{body}`, made with the public key Steward
publishes, and a timestamp within five minutes. It answers 204 to a good notification and 401 to
a bad one, and appends one JSON line per request to LOG: id, whether it verified, and the body.

usage: receiver.py PORT LOG --key whpk_... [--delay SECONDS]
"""

import argparse
import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("log")
parser.add_argument("--key", required=True)
parser.add_argument("--delay", type=float, default=0.0)
args = parser.parse_args()
if not args.key.startswith("whpk_"):
    raise SystemExit("the key must be whpk_...")
key = VerifyKey(base64.b64decode(args.key[len("whpk_"):]))
lock = threading.Lock()


def verified(msg_id, timestamp, body, header):
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(time.time() - ts) > 300:
        return False
    content = f"{msg_id}.{timestamp}.".encode() + body
    for part in (header or "").split(" "):
        if not part.startswith("v1a,"):
            continue
        try:
            key.verify(content, base64.b64decode(part[4:]))
            return True
        except (BadSignatureError, ValueError):
            continue
    return False


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        msg_id = self.headers.get("webhook-id")
        ok = verified(msg_id, self.headers.get("webhook-timestamp"), body,
                      self.headers.get("webhook-signature"))
        if args.delay:
            time.sleep(args.delay)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        with lock, open(args.log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"id": msg_id, "verified": ok, "body": payload}) + "\n")
        self.send_response(204 if ok else 401)
        self.end_headers()

    def log_message(self, *_):
        pass


server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
print("ready", flush=True)
server.serve_forever()
