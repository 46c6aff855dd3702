"""A minimal HTTP endpoint for Tidings (or MNS) topic pushes.

Every push is checked with `tidings.push.verify`; authentic ones are printed and
answered 204, anything else gets 403 (the service then retries per the subscription's
NotifyStrategy, so a misconfigured endpoint loses nothing until the retries run out).

    python examples/push_endpoint.py --port 9000 \\
        --trust http://127.0.0.1:9101/mns-reserved-cert/

then subscribe it: `Endpoint` = http://127.0.0.1:9000/notifications. `--trust` is the
prefix of the certificate URL your server advertises in x-mns-signing-cert-url (its
public MNS URL + /mns-reserved-cert/); without it any self-signed push is accepted
(fine for a first try, not for production).
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ElementTree
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tidings import push

MAX_BODY_BYTES = 1024 * 1024  # notifications are at most 64 KiB plus the envelope


def describe(content_type: str, body: bytes, headers: dict[str, str]) -> str:
    """The notification as readable text: its fields for XML/JSON, headers + body for
    SIMPLIFIED (whose metadata travels in x-mns-* headers)."""
    text = body.decode("utf-8", errors="replace")
    if content_type.startswith("text/xml"):
        # Safe to parse: the signature proved the body comes from the server.
        root = ElementTree.fromstring(body)
        fields = {child.tag.rpartition("}")[2]: child.text or "" for child in root}
        return json.dumps(fields, ensure_ascii=False, indent=2)
    if content_type.startswith("application/json"):
        return json.dumps(json.loads(text), ensure_ascii=False, indent=2)
    meta = {n: v for n, v in headers.items() if n.lower().startswith("x-mns-")}
    return json.dumps({**meta, "body": text}, ensure_ascii=False, indent=2)


def make_handler(trusted: list[str] | None) -> type[BaseHTTPRequestHandler]:
    """A request handler class that trusts certificates under `trusted` prefixes."""

    class PushHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 <= length <= MAX_BODY_BYTES:
                self.send_error(413)
                return
            body = self.rfile.read(length)
            headers = dict(self.headers.items())
            if not push.verify(headers, body, self.path, allowed_cert_url_prefixes=trusted):
                print(f"refused a push to {self.path}: it failed verification", file=sys.stderr)
                self.send_response(403)
                self.end_headers()
                return
            try:
                print(describe(headers.get("Content-Type", ""), body, headers), flush=True)
            except (ValueError, ElementTree.ParseError) as exc:
                print(f"push to {self.path} is signed but unreadable: {exc}", file=sys.stderr)
            self.send_response(204)
            self.end_headers()

    return PushHandler


def main() -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument(
        "--trust",
        action="append",
        metavar="PREFIX",
        help="accept certificates only from URLs starting with PREFIX (repeatable)",
    )
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), make_handler(args.trust))
    print(f"listening on http://{args.host}:{args.port}/", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
