/*
 * The sql collector against a real PostgreSQL 15 that the test starts
 * itself (tests/pg/pg_test_server.sh: a throwaway cluster in a temp dir,
 * loopback only, stopped at the end and by a watchdog if the test dies).
 * The same cases as with SQLite, plus a 200k-row table streamed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "portex/collector.h"
#include "portex/engine.h"
#include "portex/error.h"

static char tmpdir[256];
static char pgdir[320];
static char script[1024];
static char dsn[256];
static int port;

#define QUERY                                                            \
	"SELECT id, name, company, email, phone, customer_id, notes, photo, " \
	"score, created FROM people "                                     \
	"WHERE lower(email) = :email OR customer_id = :customer_id "      \
	"ORDER BY id"

#define FIELDS                                                           \
	"{\"name\": \"name.full\", \"company\": \"organisation\", "          \
	"\"email\": \"emails[]\", \"phone\": \"phones[]\", "                  \
	"\"created\": \"collected_at\"}"

/* ---- helpers --------------------------------------------------------- */

static PGconn *admin(void)
{
	PGconn *c = PQconnectdb(dsn);

	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect: %s", PQerrorMessage(c));
	return c;
}

static void exec_sql(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType s = PQresultStatus(r);

	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
		fail_msg("postgres: %s: %s", PQresultErrorMessage(r), sql);
	PQclear(r);
}

static void add_person(PGconn *c, const char *id, const char *name,
		       const char *company, const char *email,
		       const char *phone, const char *cust,
		       const char *notes)
{
	const char *v[] = { id, name, company, email, phone, cust, notes };
	PGresult *r = PQexecParams(c,
		"INSERT INTO people(id, name, company, email, phone, "
		"customer_id, notes, score, created) VALUES ($1, $2, $3, $4, "
		"$5, $6, $7, 4.5, '2025-02-01T09:30:00Z')",
		7, NULL, v, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("insert: %s", PQresultErrorMessage(r));
	PQclear(r);
}

static void make_people(void)
{
	PGconn *c = admin();
	static const char photo[] = { 0, 1, 2, (char)0xff };
	const char *v[1] = { photo };
	int len[1] = { sizeof(photo) };
	int fmt[1] = { 1 };
	PGresult *r;

	exec_sql(c, "CREATE TABLE people (id integer PRIMARY KEY, name text,"
		    " company text, email text, phone text, customer_id text,"
		    " notes text, photo bytea, score real, created text)");
	add_person(c, "1", "Alice Renouf", "Harbour Trust Ltd",
		   "Alice@Example.COM", "+44 1534 000000", "C-17",
		   "prefers phone");
	add_person(c, "2", "Alice Renouf", "Harbour Trust Ltd",
		   "alicf@example.com", NULL, "C-99", NULL);
	add_person(c, "3", "Bob Le Sueur", "Harbour Trust Ltd",
		   "bob@example.com", NULL, "C-18", NULL);
	add_person(c, "4", "Sean O'Brien", "Quote \"Co\"; DROP TABLE x",
		   "o'brien@example.com", NULL, NULL, "-- comment");
	add_person(c, "5", "Alice Renouf", "Harbour Trust Ltd",
		   "alice.work@example.com", NULL, "C-17", NULL);
	/* The database is SQL_ASCII: it stores bytes that are not UTF-8. */
	add_person(c, "6", "Mallory", NULL, "mallory@example.com", NULL,
		   NULL, "bad \xff\xfe utf8 \x01\x02 ctrl");
	r = PQexecParams(c, "UPDATE people SET photo = $1 WHERE id = 3", 1,
			 NULL, v, len, fmt, 0);
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(c);
}

static json_t *options(const char *database, const char *query)
{
	json_t *o = json_pack("{s:s, s:s, s:s}", "database", database,
			      "query", query, "id_column", "id");
	json_t *f = json_loads(FIELDS, 0, NULL);

	assert_non_null(o);
	assert_non_null(f);
	json_object_set_new(o, "fields", f);
	return o;
}

struct sink {
	json_t *records; /* NULL: count only */
	size_t count;
	int fail_at;
};

static int emit_cb(void *data, enum pex_record_kind kind, json_t *rec)
{
	struct sink *s = data;

	assert_int_equal(kind, PEX_REC_CONTACT);
	s->count++;
	if (s->fail_at && (int)s->count == s->fail_at) {
		json_decref(rec);
		return pex_error_set(PEX_EIO, "disk full (test)");
	}
	if (s->records)
		json_array_append_new(s->records, rec);
	else
		json_decref(rec);
	return 0;
}

static void ids_add(struct pex_identity_set *set, const char *text)
{
	struct pex_identity id;

	assert_int_equal(pex_identity_parse(&id, text), 0);
	assert_int_equal(pex_identity_set_add(set, &id), 0);
	pex_identity_clear(&id);
}

static int run(json_t *opts, const char *const *idtexts, json_t **out,
	       struct pex_source **srcp)
{
	struct pex_source *src = NULL;
	struct pex_identity_set ids = { 0 };
	struct sink s = { .records = json_array() };
	int rc;

	for (size_t i = 0; idtexts && idtexts[i]; i++)
		ids_add(&ids, idtexts[i]);
	rc = pex_source_new(&src, "crm", "sql", opts, NULL);
	if (rc == 0)
		rc = pex_source_collect(src, &ids, emit_cb, &s);
	pex_identity_set_clear(&ids);
	if (rc)
		print_message("run: %s\n", pex_error_last());
	if (srcp)
		*srcp = src;
	else
		pex_source_free(src);
	*out = s.records;
	return rc;
}

static json_t *by_id(json_t *records, const char *id)
{
	size_t i;
	json_t *r;

	json_array_foreach(records, i, r)
		if (!strcmp(json_string_value(json_object_get(r, "id")), id))
			return r;
	return NULL;
}

static const char *str_at(json_t *o, const char *path)
{
	char key[64];
	const char *dot;

	while ((dot = strchr(path, '.'))) {
		size_t n = (size_t)(dot - path);

		assert_true(n < sizeof(key));
		memcpy(key, path, n);
		key[n] = '\0';
		o = json_object_get(o, key);
		path = dot + 1;
	}
	return json_string_value(json_object_get(o, path));
}

static void expect_init_error(json_t *opts, int code, const char *needle)
{
	struct pex_source *src = (struct pex_source *)1;
	int rc = pex_source_new(&src, "crm", "sql", opts, NULL);

	if (rc != code)
		fail_msg("got %d (%s), want %d", rc, pex_error_last(), code);
	assert_null(src);
	if (!strstr(pex_error_last(), needle))
		fail_msg("error \"%s\" lacks \"%s\"", pex_error_last(),
			 needle);
	assert_non_null(strstr(pex_error_last(), "source crm"));
}

static int count_people(void)
{
	PGconn *c = admin();
	PGresult *r = PQexec(c, "SELECT count(*) FROM people");
	int n;

	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	n = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(c);
	return n;
}

static void stop_server(void)
{
	char cmd[1400];

	if (!pgdir[0])
		return;
	snprintf(cmd, sizeof(cmd), "bash '%s' stop '%s'", script, pgdir);
	if (system(cmd) != 0)
		fprintf(stderr, "sql_pg_test: stopping the server failed\n");
	pgdir[0] = '\0';
}

static int setup(void **state)
{
	const char *srcdir = getenv("PEX_SOURCE_DIR");
	char cmd[1400];
	FILE *p;
	PGconn *c;
	PGresult *r;

	(void)state;
	snprintf(script, sizeof(script), "%s/tests/pg/pg_test_server.sh",
		 srcdir ? srcdir : ".");
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/pex_sql_pg.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(pgdir, sizeof(pgdir), "%s/pg", tmpdir);
	/* tmpdir and script come from mkdtemp and PEX_SOURCE_DIR. */
	snprintf(cmd, sizeof(cmd), "bash '%s' start '%s' %ld", script, pgdir,
		 (long)getpid());
	p = popen(cmd, "r");
	if (!p || fscanf(p, "%d", &port) != 1) {
		fprintf(stderr, "sql_pg_test: cannot start PostgreSQL with "
			"%s\n", script);
		if (p)
			pclose(p);
		return -1;
	}
	if (pclose(p) != 0)
		return -1;
	snprintf(dsn, sizeof(dsn),
		 "postgresql://postgres@127.0.0.1:%d/postgres?sslmode=disable",
		 port);
	c = admin();
	r = PQexec(c, "CREATE DATABASE pex");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(c);
	snprintf(dsn, sizeof(dsn),
		 "postgresql://postgres@127.0.0.1:%d/pex?sslmode=disable"
		 "&application_name=pex_sql_test", port);
	make_people();
	return 0;
}

static int teardown(void **state)
{
	char cmd[320];

	(void)state;
	stop_server();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- the SQLite cases again ------------------------------------------ */

static void test_email_case_insensitive(void **state)
{
	const char *ids[] = { "email:ALICE@example.com", NULL };
	const char *off[] = { "email:alicd@example.com", NULL };
	json_t *opts = options(dsn, QUERY);
	json_t *recs, *r;

	(void)state;
	assert_int_equal(run(opts, ids, &recs, NULL), 0);
	assert_int_equal(json_array_size(recs), 1);
	r = json_array_get(recs, 0);
	assert_string_equal(str_at(r, "id"), "1");
	assert_string_equal(str_at(r, "name.full"), "Alice Renouf");
	assert_string_equal(str_at(r, "organisation"), "Harbour Trust Ltd");
	assert_string_equal(str_at(r, "collected_at"),
			    "2025-02-01T09:30:00Z");
	assert_string_equal(str_at(r, "matched_by.value"),
			    "alice@example.com");
	assert_string_equal(str_at(r, "extra.notes"), "prefers phone");
	assert_string_equal(str_at(r, "extra.id"), "1");
	assert_string_equal(str_at(r, "extra.score"), "4.5");
	assert_true(json_is_null(json_object_get(json_object_get(r, "extra"),
						 "photo")));
	json_decref(recs);
	assert_int_equal(run(opts, off, &recs, NULL), 0);
	assert_int_equal(json_array_size(recs), 0);
	json_decref(recs);
	json_decref(opts);
}

static void test_quotes_and_injection(void **state)
{
	const char *quoted[] = { "email:o'brien@example.com", NULL };
	const char *inject[] = { "email:x' OR '1'='1",
				 "email:' OR 1=1 --",
				 "customer_id:C-17'; DROP TABLE people; --",
				 "email:$$ OR true --", NULL };
	json_t *opts = options(dsn, QUERY);
	json_t *recs;

	(void)state;
	assert_int_equal(run(opts, quoted, &recs, NULL), 0);
	assert_int_equal(json_array_size(recs), 1);
	assert_string_equal(str_at(json_array_get(recs, 0), "id"), "4");
	assert_string_equal(str_at(json_array_get(recs, 0), "organisation"),
			    "Quote \"Co\"; DROP TABLE x");
	json_decref(recs);
	assert_int_equal(run(opts, inject, &recs, NULL), 0);
	assert_int_equal(json_array_size(recs), 0);
	json_decref(recs);
	json_decref(opts);
	assert_int_equal(count_people(), 6);
}

static void test_several_identities_emitted_once(void **state)
{
	const char *ids[] = { "email:alice@example.com",
			      "email:alice.work@example.com",
			      "customer_id:C-17", NULL };
	const char *rev[] = { "customer_id:C-17", "email:alice@example.com",
			      NULL };
	json_t *opts = options(dsn, QUERY);
	json_t *recs;

	(void)state;
	assert_int_equal(run(opts, ids, &recs, NULL), 0);
	assert_int_equal(json_array_size(recs), 2);
	assert_string_equal(str_at(by_id(recs, "1"), "matched_by.value"),
			    "alice@example.com");
	assert_string_equal(str_at(by_id(recs, "5"), "matched_by.value"),
			    "alice.work@example.com");
	json_decref(recs);
	assert_int_equal(run(opts, rev, &recs, NULL), 0);
	assert_int_equal(json_array_size(recs), 2);
	assert_string_equal(str_at(by_id(recs, "1"), "matched_by.type"),
			    "customer_id");
	json_decref(recs);
	json_decref(opts);
}

static void test_no_parameter_for_subject(void **state)
{
	const char *ids[] = { "phone:+44 1534 000000", NULL };
	json_t *opts = options(dsn, QUERY);
	json_t *recs;

	(void)state;
	assert_int_equal(run(opts, ids, &recs, NULL), 0);
	assert_int_equal(json_array_size(recs), 0);
	json_decref(recs);
	json_decref(opts);
}

static void test_text_hygiene_and_bytea(void **state)
{
	const char *ids[] = { "email:mallory@example.com",
			      "email:bob@example.com", NULL };
	json_t *opts = options(dsn, QUERY);
	struct pex_source *src;
	json_t *recs, *w;
	const char *notes;

	(void)state;
	assert_int_equal(run(opts, ids, &recs, &src), 0);
	assert_int_equal(json_array_size(recs), 2);
	notes = str_at(by_id(recs, "6"), "extra.notes");
	assert_non_null(strstr(notes, "\xef\xbf\xbd"));
	assert_null(strchr(notes, '\x01'));
	assert_string_equal(str_at(by_id(recs, "3"), "extra.photo"),
			    "AAEC/w==");
	w = pex_source_warnings(src);
	assert_int_equal(json_array_size(w), 2); /* base64, replacements */
	json_decref(w);
	pex_source_free(src);
	json_decref(recs);
	json_decref(opts);
}

static void test_identities_yielded(void **state)
{
	const char *ids[] = { "email:alice@example.com", NULL };
	json_t *opts = options(dsn, QUERY);
	struct pex_source *src;
	const struct pex_identity *cid;
	json_t *recs;

	(void)state;
	json_object_set_new(opts, "identities",
			    json_pack("{s:s}", "customer_id", "customer_id"));
	assert_int_equal(run(opts, ids, &recs, &src), 0);
	cid = pex_identity_find(pex_source_identities(src), "customer_id");
	assert_non_null(cid);
	assert_string_equal(cid->value, "C-17");
	assert_string_equal(cid->from_record, "crm:1");
	pex_source_free(src);
	json_decref(recs);
	json_decref(opts);
}

static void test_parameters_only_outside_quotes(void **state)
{
	const char *ids[] = { "email:alice@example.com", NULL };
	const char *other[] = { "customer_id:C-17", NULL };
	json_t *opts = options(dsn,
		"SELECT id, ':email' AS lit, $$:customer_id$$ AS dq, "
		"$t$ :x $t$ AS tagged, E'\\':email' AS esc, "
		"\":customer_id\".c AS quoted /* :customer_id /* nested */ "
		":customer_id */ FROM people, (SELECT 1 AS c) "
		"AS \":customer_id\" WHERE lower(email) = :email::text "
		"AND :email::text IS NOT NULL -- :customer_id\n"
		"ORDER BY id");
	json_t *recs, *r;

	(void)state;
	json_object_del(opts, "fields");
	assert_int_equal(run(opts, ids, &recs, NULL), 0);
	assert_int_equal(json_array_size(recs), 1);
	r = json_array_get(recs, 0);
	assert_string_equal(str_at(r, "extra.lit"), ":email");
	assert_string_equal(str_at(r, "extra.dq"), ":customer_id");
	assert_string_equal(str_at(r, "extra.tagged"), " :x ");
	assert_string_equal(str_at(r, "extra.esc"), "':email");
	assert_string_equal(str_at(r, "extra.quoted"), "1");
	json_decref(recs);
	/* :customer_id appears only inside quotes and comments. */
	assert_int_equal(run(opts, other, &recs, NULL), 0);
	assert_int_equal(json_array_size(recs), 0);
	json_decref(recs);
	json_decref(opts);
}

/* ---- failures -------------------------------------------------------- */

static void test_connection_errors(void **state)
{
	char bad[300];
	json_t *opts;

	(void)state;
	snprintf(bad, sizeof(bad),
		 "postgresql://postgres@127.0.0.1:%d/nosuch?sslmode=disable",
		 port);
	opts = options(bad, QUERY);
	expect_init_error(opts, PEX_EIO, "database \"nosuch\" does not exist");
	json_decref(opts);

	/* A password in the DSN never reaches a message. */
	opts = options("postgresql://u:s3cr3t@127.0.0.1:1/x?sslmode=disable"
		       "&connect_timeout=5", QUERY);
	expect_init_error(opts, PEX_EIO, "cannot connect to PostgreSQL");
	assert_null(strstr(pex_error_last(), "s3cr3t"));
	json_decref(opts);

	/* sslmode comes from the DSN: this server has no TLS. */
	snprintf(bad, sizeof(bad),
		 "postgresql://postgres@127.0.0.1:%d/pex?sslmode=require",
		 port);
	opts = options(bad, QUERY);
	expect_init_error(opts, PEX_EIO, "SSL");
	json_decref(opts);
}

static void test_query_rules(void **state)
{
	static const struct {
		const char *query;
		int code;
		const char *needle;
	} cases[] = {
		{ "SELEC id FROM people WHERE email = :email", PEX_ERROR,
		  "syntax error" },
		{ "SELECT id FROM nosuch WHERE email = :email", PEX_ERROR,
		  "\"nosuch\" does not exist" },
		{ "SELECT id, name FROM people", PEX_EINVALID,
		  "no identity parameter" },
		{ "SELECT id FROM people WHERE email = $1", PEX_EINVALID,
		  "named with ':'" },
		{ "DELETE FROM people WHERE email = :email", PEX_EINVALID,
		  "no columns" },
		{ "SELECT id FROM people WHERE email = :email; "
		  "DELETE FROM people", PEX_ERROR, "multiple commands" },
		{ "SELECT name FROM people WHERE email = :email",
		  PEX_EINVALID, "id_column 'id'" },
		{ "SELECT id, name, company AS name FROM people "
		  "WHERE email = :email", PEX_EINVALID,
		  "two columns named 'name'" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *opts = options(dsn, cases[i].query);

		json_object_del(opts, "fields");
		expect_init_error(opts, cases[i].code, cases[i].needle);
		json_decref(opts);
	}
	assert_int_equal(count_people(), 6);
}

static void test_writes_refused(void **state)
{
	const char *ids[] = { "email:bob@example.com", NULL };
	json_t *opts = options(dsn,
		"DELETE FROM people WHERE email = :email RETURNING id");
	json_t *recs;

	(void)state;
	json_object_del(opts, "fields");
	assert_int_not_equal(run(opts, ids, &recs, NULL), 0);
	assert_non_null(strstr(pex_error_last(), "read-only transaction"));
	json_decref(recs);
	json_decref(opts);
	assert_int_equal(count_people(), 6);
}

static void test_locked_table(void **state)
{
	const char *ids[] = { "email:alice@example.com", NULL };
	json_t *opts = options(dsn, QUERY);
	struct pex_identity_set set = { 0 };
	struct sink s = { .records = NULL };
	struct pex_source *src = NULL;
	PGconn *locker = admin();

	(void)state;
	json_object_set_new(opts, "timeout_ms", json_integer(300));
	exec_sql(locker, "BEGIN");
	exec_sql(locker, "LOCK TABLE people IN ACCESS EXCLUSIVE MODE");
	expect_init_error(opts, PEX_EIO, "timeout_ms (300 ms)");
	assert_non_null(strstr(pex_error_last(), "retry"));
	exec_sql(locker, "COMMIT");

	assert_int_equal(pex_source_new(&src, "crm", "sql", opts, NULL), 0);
	ids_add(&set, ids[0]);
	exec_sql(locker, "BEGIN");
	exec_sql(locker, "LOCK TABLE people IN ACCESS EXCLUSIVE MODE");
	assert_int_equal(pex_source_collect(src, &set, emit_cb, &s), PEX_EIO);
	assert_non_null(strstr(pex_error_last(), "cancelled"));
	assert_non_null(strstr(pex_error_last(), "source crm"));
	exec_sql(locker, "COMMIT");
	assert_int_equal(pex_source_collect(src, &set, emit_cb, &s), 0);
	assert_int_equal(s.count, 1);
	pex_source_free(src);
	pex_identity_set_clear(&set);
	PQfinish(locker);
	json_decref(opts);
}

static void test_emit_failure_and_reconnect(void **state)
{
	json_t *opts = options(dsn, QUERY);
	struct pex_identity_set set = { 0 };
	struct sink s = { .records = NULL, .fail_at = 1 };
	struct pex_source *src = NULL;
	PGconn *c;

	(void)state;
	assert_int_equal(pex_source_new(&src, "crm", "sql", opts, NULL), 0);
	ids_add(&set, "customer_id:C-17");
	ids_add(&set, "email:bob@example.com");
	assert_int_equal(pex_source_collect(src, &set, emit_cb, &s), PEX_EIO);
	assert_int_equal(s.count, 1);
	s.fail_at = 0;
	s.count = 0;
	assert_int_equal(pex_source_collect(src, &set, emit_cb, &s), 0);
	assert_int_equal(s.count, 3);

	/* The server drops the connection between two exports. */
	c = admin();
	exec_sql(c, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
		    "WHERE application_name = 'pex_sql_test' "
		    "AND pid <> pg_backend_pid()");
	PQfinish(c);
	s.count = 0;
	assert_int_equal(pex_source_collect(src, &set, emit_cb, &s), 0);
	assert_int_equal(s.count, 3);
	pex_source_free(src);
	pex_identity_set_clear(&set);
	json_decref(opts);
}

static void test_huge_cell(void **state)
{
	const char *ids[] = { "email:bob@example.com", NULL };
	json_t *opts = options(dsn,
		"SELECT id, repeat('x', 17 * 1024 * 1024) AS big "
		"FROM people WHERE email = :email");
	json_t *recs;

	(void)state;
	json_object_del(opts, "fields");
	assert_int_equal(run(opts, ids, &recs, NULL), PEX_ELIMIT);
	assert_non_null(strstr(pex_error_last(), "column big"));
	json_decref(recs);
	json_decref(opts);
}

static void test_streams_200k_rows(void **state)
{
	json_t *opts = options(dsn,
		"SELECT id, body FROM events "
		"WHERE customer_id = :customer_id");
	struct pex_identity_set set = { 0 };
	struct sink s = { .records = NULL };
	struct pex_source *src = NULL;
	PGconn *c = admin();

	(void)state;
	exec_sql(c, "CREATE TABLE events AS SELECT i AS id, 'C-1'::text AS "
		    "customer_id, 'event ' || i AS body "
		    "FROM generate_series(1, 200000) AS i");
	PQfinish(c);
	json_object_del(opts, "fields");
	assert_int_equal(pex_source_new(&src, "crm", "sql", opts, NULL), 0);
	ids_add(&set, "customer_id:C-1");
	assert_int_equal(pex_source_collect(src, &set, emit_cb, &s), 0);
	assert_int_equal(s.count, 200000);
	ids_add(&set, "customer_id:C-1");
	s.count = 0;
	assert_int_equal(pex_source_collect(src, &set, emit_cb, &s), 0);
	assert_int_equal(s.count, 200000); /* the second run adds nothing */
	pex_source_free(src);
	pex_identity_set_clear(&set);
	json_decref(opts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_email_case_insensitive),
		cmocka_unit_test(test_quotes_and_injection),
		cmocka_unit_test(test_several_identities_emitted_once),
		cmocka_unit_test(test_no_parameter_for_subject),
		cmocka_unit_test(test_text_hygiene_and_bytea),
		cmocka_unit_test(test_identities_yielded),
		cmocka_unit_test(test_parameters_only_outside_quotes),
		cmocka_unit_test(test_connection_errors),
		cmocka_unit_test(test_query_rules),
		cmocka_unit_test(test_writes_refused),
		cmocka_unit_test(test_locked_table),
		cmocka_unit_test(test_emit_failure_and_reconnect),
		cmocka_unit_test(test_huge_cell),
		cmocka_unit_test(test_streams_200k_rows),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
