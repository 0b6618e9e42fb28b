#!/usr/bin/env python3
"""Generate web server access logs in which one subject's visits are known.

  weblog-gen.py e2e DIR
      A small day of traffic for the end-to-end test: DIR/access.log.1 and
      DIR/access.log (the rotation splits the subject's first visit), and
      DIR/expected.json: the subject's identity, the event ids, visits,
      devices and addresses the collector must return, and the user agents
      of the other people who shared the subject's NAT address before and
      after the subject's window (none of which may appear).

  weblog-gen.py bench --size BYTES FILE
      About BYTES of combined log for the benchmark. The subject's address
      (203.0.113.7) is shared: other people use it before and after the
      subject's 30-minute window. Prints a JSON summary (identity, lines in
      the window, lines holding the address) on stdout.

The expectations are worked out here, in plain Python, from the generated
requests: not by portex.
"""
import argparse
import datetime as dt
import json
import os
import random
import sys

UTC = dt.timezone.utc
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
          "Oct", "Nov", "Dec"]
STATIC = (".css", ".js", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico",
          ".woff", ".woff2", ".map")
PAGES = ["/", "/services", "/services/managed-it", "/services/backup",
         "/pricing", "/about", "/contact", "/blog", "/blog/vpn-drops",
         "/blog/phishing-2026", "/support", "/login", "/privacy"]
ASSETS = ["/static/site.css", "/static/app.js", "/img/logo.png",
          "/img/hero.jpg", "/favicon.ico", "/fonts/inter.woff2"]
OTHER_UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
]
SUBJECT_DESKTOP = ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) "
                   "Gecko/20100101 Firefox/121.0")
SUBJECT_PHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
                 "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
                 "Mobile/15E148 Safari/604.1")
BOB_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
          "(KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 Edg/119.0.0.0")
CAROL_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, "
            "like Gecko) Chrome/118.0.0.0 Safari/537.36 OPR/104.0.0.0")
NAT = "198.51.100.50"
IDLE = 30 * 60


def clf(t):
    d = dt.datetime.fromtimestamp(t, UTC)
    return "%02d/%s/%04d:%02d:%02d:%02d +0000" % (
        d.day, MONTHS[d.month - 1], d.year, d.hour, d.minute, d.second)


def rfc3339(t):
    return dt.datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def line(ip, t, path, ua, status=200, size=1234, ref="-"):
    return '%s - - [%s] "GET %s HTTP/1.1" %d %d "%s" "%s"\n' % (
        ip, clf(t), path, status, size, ref, ua)


def visit(rnd, start, pages, ua, ip, who):
    """A browsing visit: each page then its assets a second later."""
    out, t = [], start
    for p in pages:
        out.append((t, ip, p, ua, who))
        for a in rnd.sample(ASSETS, 2):
            out.append((t + 1, ip, a, ua, who))
        t += rnd.randint(20, 240)
    return out


def is_static(path):
    p = path.split("?", 1)[0].lower()
    return p.endswith(STATIC)


def expected_sessions(reqs):
    """Visits of the subject's requests: per user agent, split after an
    idle gap longer than 30 minutes; pages without static assets."""
    by_ua = {}
    for r in reqs:
        by_ua.setdefault(r["ua"], []).append(r)
    sessions = []
    for ua, rs in by_ua.items():
        cur = None
        for r in rs:
            if cur is None or r["t"] - cur["end"] > IDLE:
                cur = {"first": r["id"], "start": r["t"], "end": r["t"],
                       "requests": 0, "pages": [], "ua": ua}
                sessions.append(cur)
            cur["end"] = max(cur["end"], r["t"])
            cur["requests"] += 1
            if not is_static(r["path"]):
                cur["pages"].append([r["path"].split("?", 1)[0], r["t"]])
    out = []
    for s in sessions:
        pages = []
        for i, (p, t) in enumerate(s["pages"]):
            pg = {"path": p, "at": rfc3339(t)}
            if i + 1 < len(s["pages"]):
                pg["seconds"] = max(0, s["pages"][i + 1][1] - t)
            pages.append(pg)
        e = {"id": "session:" + s["first"], "start": rfc3339(s["start"]),
             "end": rfc3339(s["end"]), "requests": s["requests"],
             "pages": pages}
        if pages:
            e["entry_page"] = pages[0]["path"]
            e["exit_page"] = pages[-1]["path"]
        out.append(e)
    return out


def gen_e2e(outdir):
    rnd = random.Random(20260103)
    day = int(dt.datetime(2026, 1, 3, tzinfo=UTC).timestamp())
    w_start, w_end = day + 10 * 3600, day + 12 * 3600
    reqs = []
    # Background: 30 people on their own addresses all day long.
    for k in range(30):
        ip = "192.0.2.%d" % (k + 1)
        ua = OTHER_UAS[k % len(OTHER_UAS)]
        t = day + 8 * 3600 + rnd.randint(0, 3600)
        while t < day + 14 * 3600:
            n = rnd.randint(1, 6)
            reqs += visit(rnd, t, rnd.sample(PAGES, n), ua, ip, "other")
            t += rnd.randint(1800, 5400)
    # The NAT address: Bob before the window (his last request one second
    # before it opens), the subject inside it, Carol after it (her first
    # request one second after it closes).
    reqs += visit(rnd, day + 9 * 3600, ["/", "/pricing", "/contact"],
                  BOB_UA, NAT, "bob")
    reqs.append((w_start - 1, NAT, "/support", BOB_UA, "bob"))
    reqs += visit(rnd, w_start, ["/", "/services", "/services/backup",
                                 "/pricing", "/contact?from=nav"],
                  SUBJECT_DESKTOP, NAT, "subject")
    reqs += visit(rnd, w_start + 50 * 60, ["/blog", "/blog/vpn-drops"],
                  SUBJECT_PHONE, NAT, "subject")
    reqs += visit(rnd, w_start + 100 * 60, ["/support", "/login"],
                  SUBJECT_DESKTOP, NAT, "subject")
    reqs.append((w_end, NAT, "/privacy", SUBJECT_DESKTOP, "subject"))
    reqs.append((w_end + 1, NAT, "/", CAROL_UA, "carol"))
    reqs += visit(rnd, w_end + 600, ["/about", "/blog"], CAROL_UA, NAT,
                  "carol")
    # The subject from home the next morning: another address, no window.
    reqs += visit(rnd, day + 86400 - 3600, ["/", "/contact"],
                  SUBJECT_DESKTOP, "203.0.113.99", "subject-home")
    reqs.sort(key=lambda r: r[0])

    split = w_start + 5 * 60  # the rotation falls inside the first visit
    files = {"access.log.1": [], "access.log": []}
    subject = []
    for t, ip, path, ua, who in reqs:
        name = "access.log.1" if t < split else "access.log"
        files[name].append(line(ip, t, path, ua))
        lineno = len(files[name])
        fname = name + ".gz" if name == "access.log.1" else name
        if who == "subject":
            subject.append({"id": "%s:%d" % (fname, lineno), "t": t,
                            "path": path, "ua": ua})
    os.makedirs(outdir, exist_ok=True)
    for name, lines in files.items():
        with open(os.path.join(outdir, name), "w") as f:
            f.writelines(lines)
    devices = {}
    for r in subject:
        d = devices.setdefault(r["ua"], {"requests": 0, "first": r["t"]})
        d["requests"] += 1
        d["last"] = r["t"]
    exp = {
        "identity": "ip:%s@%s/%s" % (NAT, rfc3339(w_start), rfc3339(w_end)),
        "window": "%s/%s" % (rfc3339(w_start), rfc3339(w_end)),
        "events": [{"id": r["id"], "at": rfc3339(r["t"]),
                    "path": r["path"].split("?", 1)[0]} for r in subject],
        "sessions": expected_sessions(subject),
        "devices": {ua: {"requests": d["requests"],
                         "first_seen": rfc3339(d["first"]),
                         "last_seen": rfc3339(d["last"])}
                    for ua, d in devices.items()},
        "ip_addresses": [{"ip": NAT, "requests": len(subject),
                          "first_seen": rfc3339(subject[0]["t"]),
                          "last_seen": rfc3339(subject[-1]["t"])}],
        "absent": [BOB_UA, CAROL_UA, "203.0.113.99"],
        "lines": {k: len(v) for k, v in files.items()},
    }
    with open(os.path.join(outdir, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1)


def gen_bench(size, path):
    rnd = random.Random(1)
    subject_ip = "203.0.113.7"
    ips = ["10.%d.%d.%d" % (rnd.randrange(256), rnd.randrange(256),
                            rnd.randrange(1, 255)) for _ in range(50000)]
    uas = OTHER_UAS + [SUBJECT_PHONE, BOB_UA, CAROL_UA]
    paths = PAGES + ASSETS + ["/search?q=%d" % i for i in range(50)]
    refs = ["-", "https://www.google.com/", "https://leanit.example/"]
    t0 = int(dt.datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    # Lines run at 60 per second: find the length, put the window in the
    # middle.
    avg = len(line(ips[0], t0, "/services/managed-it", uas[0], 200, 12345,
                   refs[1]))
    total = max(1000, size // avg)
    seconds = total // 60
    w_start = t0 + seconds // 2
    w_end = w_start + 1800
    subject_lines = ip_lines = 0
    written = 0
    t = t0
    B = 6000  # lines per batch: 100 seconds
    with open(path, "w", buffering=1 << 20) as f:
        while written < size:
            bi = rnd.choices(ips, k=B)
            bu = rnd.choices(uas, k=B)
            bp = rnd.choices(paths, k=B)
            br = rnd.choices(refs, k=B)
            bs = rnd.choices((200, 200, 200, 304, 404), k=B)
            bz = [rnd.randrange(100, 90000) for _ in range(B)]
            out = []
            for i in range(B):
                ts = t + i // 60
                ip, ua = bi[i], bu[i]
                if w_start <= ts <= w_end and i % 40 == 0:
                    ip, ua = subject_ip, SUBJECT_DESKTOP
                    subject_lines += 1
                    ip_lines += 1
                elif i == 7 and (ts // 100) % 5 == 0 and not (
                        w_start <= ts <= w_end):
                    ip = subject_ip  # someone else behind the same NAT
                    ip_lines += 1
                out.append('%s - - [%s] "GET %s HTTP/1.1" %d %d "%s" "%s"\n'
                           % (ip, clf(ts), bp[i], bs[i], bz[i], br[i], ua))
            s = "".join(out)
            f.write(s)
            written += len(s)
            t += B // 60
    print(json.dumps({
        "file": path, "bytes": written,
        "identity": "ip:%s@%s/%s" % (subject_ip, rfc3339(w_start),
                                     rfc3339(w_end)),
        "ip": subject_ip, "subject_lines": subject_lines,
        "ip_lines": ip_lines}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("e2e")
    e.add_argument("dir")
    b = sub.add_parser("bench")
    b.add_argument("--size", type=int, required=True)
    b.add_argument("file")
    a = ap.parse_args()
    if a.cmd == "e2e":
        gen_e2e(a.dir)
    else:
        gen_bench(a.size, a.file)


if __name__ == "__main__":
    sys.exit(main())
