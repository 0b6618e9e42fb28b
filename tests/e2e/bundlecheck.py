#!/usr/bin/env python3
"""Independent checks of a portex bundle, for the end-to-end tests.

Reads the zip with Python's own zipfile (not with portex), and offers:
  ids BUNDLE KIND            print the record ids of a collection
  same BUNDLE                check data/bundle.json and data/bundle.xml
                             hold the same values, field by field
  hashes BUNDLE              check every manifest entry's size and SHA-256
  absent BUNDLE TEXT...      fail if any TEXT occurs in any data file
  get BUNDLE EXPR            print a value of bundle.json (python expr on d)
"""
import hashlib
import json
import sys
import zipfile
import xml.etree.ElementTree as ET

NS = "{urn:portex:bundle:1}"
COLLECTIONS = {
    "contacts": lambda d: d["contacts"],
    "tickets": lambda d: d["tickets"],
    "events": lambda d: d["usage"]["events"],
    "sessions": lambda d: d["usage"]["sessions"],
    "devices": lambda d: d["technical"]["devices"],
    "ip_addresses": lambda d: d["technical"]["ip_addresses"],
}


def load(path):
    z = zipfile.ZipFile(path)
    bad = z.testzip()
    if bad:
        sys.exit(f"{path}: {bad} is corrupt")
    return z, json.loads(z.read("data/bundle.json"))


def scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def compare(v, e, where, problems):
    tag = e.tag.replace(NS, "")
    if isinstance(v, dict):
        if tag == "extra":
            fields = {f.get("name"): f for f in e}
            if set(fields) != set(v):
                problems.append(f"{where}: extra keys {sorted(v)} vs {sorted(fields)}")
                return
            for k, val in v.items():
                f = fields[k]
                want = {type(None): "null", bool: "boolean", int: "number",
                        float: "number"}.get(type(val))
                if f.get("type") != want:
                    problems.append(f"{where}/extra/{k}: type {f.get('type')} != {want}")
                if val is not None and (f.text or "") != scalar(val):
                    problems.append(f"{where}/extra/{k}: {f.text!r} != {val!r}")
            return
        children = {}
        for c in e:
            name = c.tag.replace(NS, "")
            if name in children:
                problems.append(f"{where}: element {name} repeated")
            children[name] = c
        keys = {k for k, val in v.items() if val is not None}
        if set(children) != keys:
            problems.append(f"{where}: JSON keys {sorted(keys)} vs XML {sorted(children)}")
        for k in keys & set(children):
            compare(v[k], children[k], f"{where}/{k}", problems)
    elif isinstance(v, list):
        items = list(e)
        if len(items) != len(v):
            problems.append(f"{where}: {len(v)} items in JSON, {len(items)} in XML")
        for i, (val, c) in enumerate(zip(v, items)):
            compare(val, c, f"{where}/{i}", problems)
    else:
        if (e.text or "") != scalar(v):
            problems.append(f"{where}: XML {e.text!r} != JSON {v!r}")


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    z, d = load(path)
    if cmd == "ids":
        for r in COLLECTIONS[sys.argv[3]](d):
            print(r["id"])
    elif cmd == "same":
        root = ET.fromstring(z.read("data/bundle.xml"))
        problems = []
        compare(d, root, "", problems)
        for p in problems[:50]:
            print(p)
        sys.exit(1 if problems else 0)
    elif cmd == "hashes":
        m = json.loads(z.read("manifest.json"))
        listed = set()
        for f in m["files"]:
            data = z.read(f["path"])
            listed.add(f["path"])
            if len(data) != f["bytes"] or hashlib.sha256(data).hexdigest() != f["sha256"]:
                sys.exit(f"{f['path']}: size or hash differs from the manifest")
        extra = set(z.namelist()) - listed - {"manifest.json"}
        if extra:
            sys.exit(f"unlisted files: {sorted(extra)}")
    elif cmd == "absent":
        for name in z.namelist():
            if not name.startswith("data/"):
                continue
            text = z.read(name).decode("utf-8")
            for needle in sys.argv[3:]:
                if needle in text:
                    sys.exit(f"{name} contains {needle!r}")
    elif cmd == "get":
        print(json.dumps(eval(sys.argv[3], {"d": d, "m": json.loads(z.read("manifest.json"))})))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
