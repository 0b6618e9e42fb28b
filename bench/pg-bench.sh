#!/usr/bin/env bash
# Service data from PostgreSQL: a subject with 10,000 tickets and 100,000
# messages (tickets and messages tables; the messages of a ticket come
# back as one json_agg column mapped to the ticket's "messages"), beside
# 10x as many rows of other people. Reports export time and peak memory,
# and the same query run by psql into /dev/null as the database's own
# floor.
# usage: bench/pg-bench.sh [TICKETS] [MESSAGES_PER_TICKET]
set -euo pipefail
cd "$(dirname "$0")/.."
tickets=${1:-10000}
per=${2:-10}

scripts/install-deps.sh all
bin=${PORTEX:-build/portex}
if [ -z "${PORTEX:-}" ]; then
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j"$(nproc)" --target portex >/dev/null
fi

work=$(mktemp -d)
chmod 755 "$work"
port=$(tests/pg/pg_test_server.sh start "$work/pg" $$)
trap 'tests/pg/pg_test_server.sh stop "$work/pg"; rm -rf "$work"' EXIT
psql="psql -q -h 127.0.0.1 -p $port -U postgres -d postgres -v ON_ERROR_STOP=1"

$psql <<SQL
CREATE TABLE tickets (id bigint PRIMARY KEY, number text, title text,
  status text, priority text, requester_email text, created_at timestamptz);
CREATE TABLE messages (id bigint PRIMARY KEY, ticket_id bigint, at timestamptz,
  author text, direction text, body text);
INSERT INTO tickets
  SELECT g, 'T-' || g, 'Ticket ' || g || ': VPN drops again',
         (ARRAY['open','closed','pending'])[1 + g % 3], 'normal',
         CASE WHEN g <= $tickets THEN 'bench@example.com'
              ELSE 'other' || g || '@example.com' END,
         timestamptz '2025-01-01' + g * interval '1 minute'
  FROM generate_series(1, $tickets * 11) g;
INSERT INTO messages
  SELECT g, 1 + (g - 1) / $per, timestamptz '2025-01-01' + g * interval '1 second',
         CASE WHEN g % 2 = 0 THEN 'bench@example.com' ELSE 'support@leanit.example' END,
         CASE WHEN g % 2 = 0 THEN 'inbound' ELSE 'outbound' END,
         'Message ' || g || ': the connection dropped at 10:42 and again at 11:05; '
         || 'we restarted the router as advised.'
  FROM generate_series(1, $tickets * 11 * $per) g;
CREATE INDEX ON tickets (lower(requester_email));
CREATE INDEX ON messages (ticket_id);
ANALYZE;
SQL

query="SELECT t.id, t.number, t.title, t.status, t.priority,
  t.requester_email,
  to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created,
  (SELECT json_agg(json_build_object(
      'at', to_char(m.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
      'from', m.author, 'direction', m.direction, 'body_text', m.body)
    ORDER BY m.at) FROM messages m WHERE m.ticket_id = t.id) AS messages
FROM tickets t WHERE lower(t.requester_email) = :email"

cat > "$work/portex.yaml" <<YAML
controller: {name: Bench Ltd, contact: privacy@bench.example}
categories:
  service:
    purposes: [providing the managed IT service]
    lawful_basis: [contract]
    retention: contract term plus 6 years
sources:
  - id: tracker-db
    collector: sql
    category: service
    options:
      database: postgresql://postgres@127.0.0.1:$port/postgres
      kind: ticket
      id_column: id
      query: |
$(printf '%s\n' "$query" | sed 's/^/        /')
      fields:
        number: number
        title: title
        status: status
        priority: priority
        requester_email: requester
        created: created_at
        messages: messages
YAML

/usr/bin/time -f "%e %M" -o "$work/t" "$bin" export -q -c "$work/portex.yaml" \
	-s email:bench@example.com -o "$work/out.zip"
read -r secs kib < "$work/t"
plain=${query//:email/\'bench@example.com\'}
/usr/bin/time -f "%e" -o "$work/p" $psql -A -t -c "$plain" > /dev/null
read -r psecs < "$work/p"
recs=$(unzip -p "$work/out.zip" data/bundle.json | python3 -c \
	'import json,sys; d=json.load(sys.stdin); print(len(d["tickets"]), sum(len(t.get("messages") or []) for t in d["tickets"]))')
printf 'tickets+messages exported: %s\n' "$recs"
printf 'portex export: %ss, peak %.1f MiB, bundle %s KiB\n' "$secs" \
	"$(python3 -c "print($kib/1024)")" "$(du -k "$work/out.zip" | cut -f1)"
printf 'psql, same query to /dev/null: %ss\n' "$psecs"
