#!/usr/bin/env python3
"""A stand-in ticket tracker for the http_json tests and the bench.

This is NOT a real tracker. It replays JSON responses shaped like the real
Zammad and Freshdesk responses in ../shared/corpus/tickets/ (often the
corpus files themselves), and can be told to fail the ways real servers
fail. Python 3 standard library only (http.server).

Usage:
  replay_server.py --scenario FILE [--corpus DIR] [--port N]
  replay_server.py --generate TICKETS,MESSAGES[,EMAIL] [--port N]

It listens on 127.0.0.1 (port 0: any free port) and prints "PORT <n>" on
its first line of stdout once it accepts connections. It exits by itself
when the process that started it is gone, so a test that dies cannot
leave it running.

A scenario is JSON: {"routes": [ROUTE, ...]}, a ROUTE being
  path           exact request path (no query), e.g. "/api/v1/users/search"
  file | body    response: a file (relative to --corpus) or inline JSON
  pages          instead: a list of {"file"|"body"}, chosen by the query
                 parameter page_param (default "page", 1-based; past the
                 end: []), or by offset_param/limit_param when
                 offset_param is set; "link": true adds Link rel="next"
                 headers
  data | data_b64  instead: a file's bytes (text sent as UTF-8, or
                 base64), times "repeat" (default 1); content type
                 application/octet-stream unless content_type says;
                 "no_length": true sends no Content-Length (the end of
                 the body is the end of the connection)
  status, content_type, headers   as sent (200, application/json)
  require_header {"Name": "value"}: 401 unless the request carries it
  fault          500 | 429 | 401 | slow | truncate | huge | huge_cl |
                 html | redirect_loop | drop_body (a data route: half
                 the bytes, then the connection closes)
  fault_times    only the first N requests of the route fail (default all)
  retry_after    Retry-After for 429 (default "1"); delay for slow (s)

In JSON bodies the text @BASE@ becomes http://<Host header>, so a
scenario can hold absolute URLs (Freshdesk's attachment_url) on the
server's own port, which is not known before it starts. In header values
(a redirect's Location) @LOCAL@ becomes http://127.0.0.1:<port> and
@OTHER@ http://localhost:<port>: the same server under another host
name, which a client must treat as another origin.

GET /__log returns every request seen so far (method, path, query,
headers), so tests can count retries and check what was sent.
"""
import argparse
import base64
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HUGE_BYTES = 50 * 1024 * 1024


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.log = []
        self.hits = {}
        self.routes = {}
        self.corpus = None
        self.generate = None


STATE = State()


def file_bytes(spec):
    if "data_b64" in spec:
        data = base64.b64decode(spec["data_b64"])
    else:
        data = spec["data"].encode()
    return data * int(spec.get("repeat", 1))


def load_body(spec):
    if "body" in spec:
        return json.dumps(spec["body"], ensure_ascii=False).encode()
    path = spec["file"]
    if not os.path.isabs(path):
        path = os.path.join(STATE.corpus or ".", path)
    with open(path, "rb") as f:
        return f.read()


# ---- generated tracker (bench): Zammad-shaped, built on the fly ---------

GEN_TICKET = {
    "group_id": 1, "priority_id": 2, "state_id": 2, "organization_id": 1,
    "owner_id": 3, "note": None, "first_response_at": None,
    "close_at": None, "last_close_at": None, "article_count": 0,
    "create_article_type_id": 1, "create_article_sender_id": 2,
    "preferences": {}, "updated_by_id": 2, "created_by_id": 2,
    "group": "Users", "organization": "Zammad Foundation", "state": "open",
    "priority": "2 normal", "owner": "emma@chrispresso.com",
}


def gen_users(email):
    return [{"id": 7, "login": email, "firstname": "Alice",
             "lastname": "Renouf", "email": email, "active": True,
             "created_at": "2021-06-01T11:57:17.935Z"}]


def gen_tickets(q, email, total, msgs):
    page = int(q.get("page", ["1"])[0])
    per = int(q.get("per_page", ["100"])[0])
    start = (page - 1) * per
    out = []
    for i in range(start, min(start + per, total)):
        t = dict(GEN_TICKET)
        t.update({"id": i + 1, "number": str(30000 + i + 1),
                  "title": "Order %d — café delivery" % (i + 1),
                  "customer_id": 7, "customer": email,
                  "article_count": msgs,
                  "created_at": "2021-06-01T11:57:17.935Z",
                  "updated_at": "2021-11-03T11:57:17.997Z"})
        out.append(t)
    return out


def gen_articles(ticket_id, msgs, email):
    out = []
    for j in range(msgs):
        inbound = j % 2 == 0
        out.append({
            "id": ticket_id * 1000 + j, "ticket_id": ticket_id,
            "type_id": 1, "sender_id": 2 if inbound else 1,
            "from": ("Alice Renouf <%s>" % email) if inbound
            else "Emma Taylor <emma@chrispresso.com>",
            "to": "order@chrispresso.com", "content_type": "text/html",
            "body": "Hi,<br>\n<u>please send me:</u><br>\n1 x Café Kopi "
                    "susu<br>\nmessage %d of ticket %d" % (j, ticket_id),
            "internal": False, "preferences": {},
            "created_at": "2021-08-02T11:%02d:18.068Z" % (j % 60),
            "updated_at": "2021-08-02T11:57:18.068Z", "attachments": [],
            "type": "email", "sender": "Customer" if inbound else "Agent",
            "created_by": email if inbound else "emma@chrispresso.com"})
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # headers and body go out in two writes; without this, Nagle and
        # the client's delayed ACK add 40 ms to every response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # quiet: tests read /__log
        pass

    def send_headers(self, headers):
        """A route's headers, @LOCAL@ and @OTHER@ filled in."""
        port = self.server.server_address[1]
        for k, v in (headers or {}).items():
            v = v.replace("@LOCAL@", "http://127.0.0.1:%d" % port)
            self.send_header(k, v.replace("@OTHER@",
                                          "http://localhost:%d" % port))

    def send(self, status, body, ctype="application/json; charset=utf-8",
             headers=None, close=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_headers(headers)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if url.path == "/__log":
            with STATE.lock:
                body = json.dumps(STATE.log).encode()
            return self.send(200, body)
        with STATE.lock:
            STATE.log.append({
                "method": "GET", "path": url.path, "query": url.query,
                "headers": {k.lower(): v for k, v in self.headers.items()}})
            n = STATE.hits.get(url.path, 0) + 1
            STATE.hits[url.path] = n
        if STATE.generate:
            return self.generated(url.path, q)
        route = STATE.routes.get(url.path)
        if route is None:
            return self.send(404, b'{"error":"Not Found"}')
        for name, value in route.get("require_header", {}).items():
            if self.headers.get(name) != value:
                return self.send(401, b'{"error":"authentication failed"}')
        fault = route.get("fault")
        times = route.get("fault_times")
        if fault and (times is None or n <= times):
            return self.fault(fault, route)
        self.normal(route, q)

    def send_file(self, route):
        body = file_bytes(route)
        ctype = route.get("content_type", "application/octet-stream")
        if not route.get("no_length"):
            return self.send(route.get("status", 200), body, ctype,
                             route.get("headers"))
        self.send_response(route.get("status", 200))
        self.send_header("Content-Type", ctype)
        self.send_headers(route.get("headers"))
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return None

    def normal(self, route, q):
        headers = dict(route.get("headers", {}))
        if "data" in route or "data_b64" in route:
            return self.send_file(route)
        if "pages" in route:
            param = route.get("page_param", "page")
            page = int(q.get(param, ["1"])[0])
            if "offset_param" in route:
                off = int(q.get(route["offset_param"], ["0"])[0])
                lim = int(q.get(route.get("limit_param", "limit"), ["1"])[0])
                page = off // max(lim, 1) + 1
            pages = route["pages"]
            body = load_body(pages[page - 1]) if page <= len(pages) \
                else b"[]"
            if route.get("link") and page < len(pages):
                nq = {k: v[0] for k, v in q.items()}
                nq[param] = str(page + 1)
                target = "http://%s%s?%s" % (
                    self.headers.get("Host"), route["path"],
                    urllib.parse.urlencode(nq))
                headers["Link"] = '<%s>; rel="next"' % target
        else:
            body = load_body(route)
        body = body.replace(b"@BASE@", ("http://%s" % self.headers.get(
            "Host", "")).encode())
        self.send(route.get("status", 200), body,
                  route.get("content_type",
                            "application/json; charset=utf-8"), headers)

    def fault(self, fault, route):
        if fault == "500":
            return self.send(500, b'{"error":"internal server error"}')
        if fault == "401":
            return self.send(401, b'{"error":"authentication failed"}')
        if fault == "429":
            return self.send(429, b'{"error":"too many requests"}',
                             headers={"Retry-After":
                                      route.get("retry_after", "1")})
        if fault == "slow":
            time.sleep(float(route.get("delay", 3)))
            return self.normal(route, {})
        if fault == "truncate":
            body = load_body(route)
            return self.send(200, body[:len(body) // 2])
        if fault == "html":
            return self.send(200, b"<html><body>Please log in</body></html>",
                             ctype="text/html; charset=utf-8")
        if fault == "redirect_loop":
            self.send_response(302)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if fault in ("huge", "huge_cl"):
            return self.huge(fault == "huge_cl")
        if fault == "drop_body":
            body = file_bytes(route)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.close_connection = True
            self.end_headers()
            try:
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            return None
        return self.send(500, b'{"error":"unknown fault"}')

    def huge(self, with_length):
        """50 MB of valid JSON; without a length the connection closes."""
        chunk = b'"' + b"x" * 65530 + b'",'
        count = HUGE_BYTES // len(chunk)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if with_length:
            self.send_header("Content-Length",
                             str(1 + count * len(chunk) + 3))
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        try:
            self.wfile.write(b"[")
            for _ in range(count):
                self.wfile.write(chunk)
            self.wfile.write(b'""]')
        except (BrokenPipeError, ConnectionResetError):
            pass

    def generated(self, path, q):
        total, msgs, email = STATE.generate
        if path == "/api/v1/users/search":
            body = gen_users(email)
        elif path == "/api/v1/tickets/search":
            body = gen_tickets(q, email, total, msgs)
        elif path.startswith("/api/v1/ticket_articles/by_ticket/"):
            body = gen_articles(int(path.rsplit("/", 1)[1]), msgs, email)
        else:
            return self.send(404, b'{"error":"Not Found"}')
        self.send(200, json.dumps(body, ensure_ascii=False).encode())


def watch_parent():
    """Exit once the parent is gone (we are re-parented)."""
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario")
    ap.add_argument("--corpus")
    ap.add_argument("--generate")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    STATE.corpus = a.corpus
    if a.scenario:
        with open(a.scenario, encoding="utf-8") as f:
            for r in json.load(f)["routes"]:
                STATE.routes[r["path"]] = r
    if a.generate:
        parts = a.generate.split(",")
        STATE.generate = (int(parts[0]), int(parts[1]),
                          parts[2] if len(parts) > 2 else "alice@example.com")
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    threading.Thread(target=watch_parent, daemon=True).start()
    print("PORT %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
