#!/usr/bin/env bash
# End to end with a PostgreSQL source: the real binary, a real PostgreSQL
# 15 server (tests/pg/pg_test_server.sh, loopback only), a contacts table
# holding the subject and others. portex loads libpq only when such a
# source opens (src/core/dynlib.h): this is the test of that path as a
# user meets it. The bundle must hold the subject's row and nobody
# else's; a server that is gone must fail the source with exit 1 and no
# bundle.
source "$(dirname "$0")/lib.sh"

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$PGBIN/initdb" ]; then
	echo "SKIP: $PGBIN/initdb is absent (apt-get install postgresql-15)" >&2
	exit 77
fi
command -v psql >/dev/null || fail "psql is missing (postgresql-client)"
PG=$WORK/pg
chmod 755 "$WORK"
port=$(bash "$PEX_SOURCE_DIR/tests/pg/pg_test_server.sh" start "$PG" $$)
trap 'bash "$PEX_SOURCE_DIR/tests/pg/pg_test_server.sh" stop "$PG"; rm -rf "$WORK"' EXIT
DSN="postgresql://postgres@127.0.0.1:$port/postgres?sslmode=disable"

psql -q -v ON_ERROR_STOP=1 "$DSN" <<'SQL' >/dev/null
CREATE TABLE customers (id text PRIMARY KEY, name text, email text,
                        phone text);
INSERT INTO customers VALUES
  ('C-1', 'Alice Example', 'Alice@Example.com', '+44 1534 000001'),
  ('C-2', 'Bob Other', 'bob@example.com', '+44 1534 000002'),
  ('C-3', 'Alice Namesake', 'alice@elsewhere.example', NULL);
SQL
ok "PostgreSQL on port $port with 3 customers"

# write_config DSN
write_config() {
	cat >"$WORK/portex.yaml" <<YAML
version: 1
controller: {name: E2E Ltd, contact: privacy@e2e.example}
categories:
  contact:
    purposes: [managing the customer relationship]
    lawful_basis: [contract]
    retention: 12 months after the last interaction
sources:
  - id: crm
    collector: sql
    category: contact
    options:
      database: "$1"
      query: SELECT id, name, email, phone FROM customers
             WHERE lower(email) = :email
      id_column: id
      fields:
        name: name.full
        email: emails[]
        phone: phones[]
YAML
}

write_config "$DSN"
run "$PORTEX" export -c "$WORK/portex.yaml" -s email:alice@example.com \
	-o "$WORK/alice.zip" -q
expect_code 0 "export from PostgreSQL"
run "$PORTEX" verify "$WORK/alice.zip"
expect_code 0 "verify"
json=$(unzip -p "$WORK/alice.zip" data/bundle.json)
expect_in "$json" '"Alice Example"' "the subject's row"
expect_in "$json" '+44 1534 000001' "the subject's phone"
case "$json" in
*Bob* | *Namesake* | *elsewhere*) fail "another person's row in the bundle" ;;
esac
ok "the bundle holds Alice's row and nobody else's"

bash "$PEX_SOURCE_DIR/tests/pg/pg_test_server.sh" stop "$PG"
run "$PORTEX" export -c "$WORK/portex.yaml" -s email:alice@example.com \
	-o "$WORK/gone.zip" -q
expect_code 1 "export with the server gone"
expect_in "$err" "crm" "the message names the source"
[ ! -e "$WORK/gone.zip" ] || fail "a bundle was written for a failed source"
no_leftovers "$WORK"
ok "server gone: exit 1, the source named, no bundle"
echo "postgres_test: $PASS passed"
