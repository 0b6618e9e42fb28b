#!/usr/bin/env python3
"""Compare a portex bundle with what bench/weblog-gen.py says the subject's
web log data is (expected.json), reading the zip with Python's zipfile.

  weblog_check.py BUNDLE EXPECTED.json SOURCE_ID

Checks, for the records of SOURCE_ID: exactly the expected events (by id,
with their time, path and matched_by window), exactly the expected visits
(pages, time on page, entry and exit), devices and addresses with their
counts, and that no text of the other people who shared the address (their
user agents, the subject's other address) occurs in any data file.
Prints one line per check; exits 1 on the first difference.
"""
import json
import sys
import zipfile


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    bundle, expected, source = sys.argv[1:4]
    exp = json.load(open(expected))
    z = zipfile.ZipFile(bundle)
    d = json.loads(z.read("data/bundle.json"))
    pre = source + ":"

    def mine(recs):
        return [r for r in recs if r["source"] == source]

    events = mine(d["usage"]["events"])
    got = [e["id"] for e in events]
    want = [pre + e["id"] for e in exp["events"]]
    if sorted(got) != sorted(want):
        fail("events differ: extra %s, missing %s" % (
            sorted(set(got) - set(want)), sorted(set(want) - set(got))))
    byid = {e["id"]: e for e in events}
    for e in exp["events"]:
        g = byid[pre + e["id"]]
        if g["at"] != e["at"] or g["path"] != e["path"]:
            fail("event %s: %s %s, wanted %s %s" % (
                e["id"], g["at"], g["path"], e["at"], e["path"]))
    for g in events + mine(d["usage"]["sessions"]) + \
            mine(d["technical"]["devices"]) + \
            mine(d["technical"]["ip_addresses"]):
        mb = g["matched_by"]
        if mb.get("type") != "ip" or mb.get("window") != exp["window"]:
            fail("%s matched by %s" % (g["id"], mb))
    print("ok - %d events, exactly the subject's" % len(events))

    sessions = {s["id"]: s for s in mine(d["usage"]["sessions"])}
    want = {pre + s["id"]: s for s in exp["sessions"]}
    if set(sessions) != set(want):
        fail("sessions differ: got %s, wanted %s" % (
            sorted(sessions), sorted(want)))
    for sid, w in want.items():
        g = sessions[sid]
        for k in ("start", "end", "requests", "pages", "entry_page",
                  "exit_page"):
            if g.get(k) != w.get(k):
                fail("session %s: %s is %r, wanted %r" % (
                    sid, k, g.get(k), w.get(k)))
    print("ok - %d sessions with their pages and times" % len(sessions))

    devices = {x["user_agent"]: x for x in mine(d["technical"]["devices"])}
    if set(devices) != set(exp["devices"]):
        fail("devices differ: %s" % sorted(devices))
    for ua, w in exp["devices"].items():
        g = devices[ua]
        for k, v in w.items():
            if g.get(k) != v:
                fail("device %s: %s is %r, wanted %r" % (ua, k, g.get(k), v))
        if not g.get("browser") or not g.get("os"):
            fail("device %s not parsed: %s" % (ua, g))
    print("ok - %d devices" % len(devices))

    ips = mine(d["technical"]["ip_addresses"])
    if len(ips) != len(exp["ip_addresses"]):
        fail("addresses differ: %s" % ips)
    for g, w in zip(sorted(ips, key=lambda x: x["ip"]),
                    sorted(exp["ip_addresses"], key=lambda x: x["ip"])):
        for k, v in w.items():
            if g.get(k) != v:
                fail("address %s: %s is %r, wanted %r" % (
                    w["ip"], k, g.get(k), v))
    print("ok - %d addresses" % len(ips))

    for name in z.namelist():
        if not name.startswith("data/"):
            continue
        text = z.read(name).decode("utf-8")
        for a in exp["absent"]:
            if a in text:
                fail("%s holds %r, which is someone else's" % (name, a))
    print("ok - nothing of the other people sharing the address")


if __name__ == "__main__":
    main()
