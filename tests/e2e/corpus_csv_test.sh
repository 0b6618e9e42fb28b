#!/usr/bin/env bash
# End to end on real contact exports (../shared/corpus/contacts_csv: a
# Thunderbird address book, Roundcube's Gmail and plain-email exports):
# the real binary, one subject, the zip read back with Python's zipfile,
# record by record, and nobody else in it.
source "$(dirname "$0")/lib.sh"

corpus=${PEX_CORPUS:-$PEX_SOURCE_DIR/../shared/corpus}/contacts_csv
if [ ! -d "$corpus" ]; then
	echo "SKIP: $corpus is absent; the corpus CSV end-to-end test needs it"
	exit 77
fi

cat > "$WORK/portex.yaml" <<YAML
controller: {name: Corpus Ltd, contact: privacy@corpus.example}
categories:
  contact:
    purposes: [keeping in touch]
    lawful_basis: [legitimate_interests]
    retention: 12 months after the last interaction
sources:
  - id: thunderbird
    collector: csv
    category: contact
    options:
      path: $corpus/thunderbird/addrbook_export.csv
      match: {Primary Email: email, Secondary Email: email}
      fields:
        First Name: name.given
        Last Name: name.family
        Display Name: name.full
        Primary Email: emails[]
  - id: gmail
    collector: csv
    category: contact
    options:
      path: $corpus/roundcube_csv2vcard/gmail.csv
      match: {E-mail 1 - Value: email, E-mail 2 - Value: email}
      fields:
        Given Name: name.given
        Family Name: name.family
        E-mail 1 - Value: emails[]
        E-mail 2 - Value: emails[]
  - id: plain
    collector: csv
    category: contact
    options:
      path: $corpus/roundcube_csv2vcard/email.csv
      match: {Primary Email: email}
  - id: utf16
    collector: csv
    category: contact
    options:
      path: $corpus/thunderbird/utf16_addressbook.csv
      encoding: utf-16
      match: {Primary Email: email}
YAML

# contact2 of the Thunderbird export: quoted fields with commas, tabs,
# doubled quotes and a line break, and non-ASCII text
run "$PORTEX" export -c "$WORK/portex.yaml" -s email:contact2@invalid -o "$WORK/c2.zip"
expect_code 0 "export contact2"
ids=$($CHECK ids "$WORK/c2.zip" contacts | tr '\n' ' ')
[ "$ids" = "thunderbird:addrbook_export.csv:3 " ] || fail "contact2 ids: $ids"
v=$($CHECK get "$WORK/c2.zip" '[d["contacts"][0]["name"], sorted(v for v in d["contacts"][0]["extra"].values() if v)]')
python3 - "$v" <<'PY' || fail "contact2 fields: $v"
import json, sys
name, extra = json.loads(sys.argv[1])
assert name == {"given": "contact", "family": "two", "full": "contact number two"}, name
for want in ['"worker"', "custom, 1", "custom\t2", "custom\r3", "custom\n4", "here's some unicode text\u2026"]:
    assert want in extra, (want, extra)
PY
$CHECK absent "$WORK/c2.zip" contact1@invalid test1@domain.tld johndoe@host.invalid \
	|| fail "other people in contact2's bundle"
$CHECK same "$WORK/c2.zip" || fail "JSON and XML differ"
run "$PORTEX" verify "$WORK/c2.zip"
expect_code 0 "verify contact2"
ok "Thunderbird export: exactly contact2's row, every field kept, quoted text intact"

# the Gmail export's contact is found by its second address
run "$PORTEX" export -c "$WORK/portex.yaml" -s email:WORK@email.pl -o "$WORK/g.zip"
expect_code 0 "export gmail"
v=$($CHECK get "$WORK/g.zip" '[(r["id"], r["name"], r["emails"], r["matched_by"]["value"]) for r in d["contacts"]]')
[ "$v" = '[["gmail:gmail.csv:2", {"given": "Firstname", "family": "Lastname"}, ["home@aaa.pl", "work@email.pl"], "work@email.pl"]]' ] \
	|| fail "gmail record: $v"
ok "Gmail export: multi-line quoted address fields, found by the second email"

# one address of several in a one-column export; a UTF-16 address book
run "$PORTEX" export -c "$WORK/portex.yaml" -s email:test3@domain.tld -s email:johndoe@host.invalid -o "$WORK/t3.zip"
expect_code 0 "export test3 + johndoe"
ids=$($CHECK ids "$WORK/t3.zip" contacts | sort | tr '\n' ' ')
[ "$ids" = "plain:email.csv:4 utf16:utf16_addressbook.csv:2 " ] || fail "ids: $ids"
$CHECK absent "$WORK/t3.zip" test1@domain.tld test2@domain.tld test4@domain.tld \
	|| fail "neighbouring rows leaked"
ok "one-column export and a UTF-16 address book: exactly the subject's rows"

echo "$PASS passed"
