#!/usr/bin/env python3
"""Generate a SQLite source for the export benchmark.

One subject (bench@example.com) has N rows of web analytics events; other
people have rows too (a tenth as many), so the query has to filter.
usage: export-gen.py OUT.sqlite N
"""
import random
import sqlite3
import sys

out, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
db = sqlite3.connect(out)
db.executescript("""
DROP TABLE IF EXISTS hits;
CREATE TABLE hits (id INTEGER PRIMARY KEY, email TEXT NOT NULL,
  at TEXT NOT NULL, method TEXT, path TEXT, status INTEGER, bytes INTEGER,
  referrer TEXT, user_agent TEXT, ip TEXT, campaign TEXT);
CREATE INDEX hits_email ON hits(email);
""")
pages = ["/", "/pricing", "/contact", "/blog/backup-rules", "/support",
         "/blog/vpn-tips?utm_source=news", "/login", "/services/managed-it"]
agents = [
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
]


def rows(email, count, start):
    t = 1735689600  # 2025-01-01T00:00:00Z
    for i in range(count):
        t += rnd.randint(1, 120)
        yield (start + i, email,
               "%04d-%02d-%02d %02d:%02d:%02d" % __import__("time").gmtime(t)[:6],
               "GET", rnd.choice(pages), rnd.choice([200, 200, 200, 304, 404]),
               rnd.randint(200, 90000), "https://www.example.org/",
               rnd.choice(agents), "203.0.113.%d" % rnd.randint(1, 254),
               rnd.choice(["", "spring", "newsletter"]))


ins = "INSERT INTO hits VALUES (?,?,?,?,?,?,?,?,?,?,?)"
db.executemany(ins, rows("bench@example.com", n, 1))
db.executemany(ins, rows("someone.else@example.com", max(1, n // 10), n + 1))
db.commit()
