/*
 * The sql collector against SQLite databases the test builds itself with
 * the sqlite3 API, driven through the engine (pex_source_new / collect).
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
#include <sqlite3.h>

#include "portex/collector.h"
#include "portex/engine.h"
#include "portex/error.h"

static char tmpdir[256];

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

static void path_in_tmp(char *buf, size_t size, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", tmpdir, name);

	assert_true(n > 0 && (size_t)n < size);
}

static void exec_sql(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);

	if (rc != SQLITE_OK)
		fail_msg("sqlite: %s: %s", err ? err : "?", sql);
	sqlite3_free(err);
}

/* Insert one person; NULL arguments become SQL NULL. */
static void add_person(sqlite3 *db, int id, const char *name,
		       const char *company, const char *email,
		       const char *phone, const char *cust,
		       const char *notes, size_t notes_len)
{
	sqlite3_stmt *st;
	const char *vals[] = { name, company, email, phone, cust };

	assert_int_equal(sqlite3_prepare_v2(db,
		"INSERT INTO people(id, name, company, email, phone, "
		"customer_id, notes, score, created) VALUES "
		"(?1, ?2, ?3, ?4, ?5, ?6, ?7, 4.5, '2025-02-01T09:30:00Z')",
		-1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int(st, 1, id);
	for (int i = 0; i < 5; i++)
		if (vals[i])
			sqlite3_bind_text(st, i + 2, vals[i], -1,
					  SQLITE_STATIC);
	if (notes)
		sqlite3_bind_text(st, 7, notes, (int)notes_len,
				  SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

/* The people database most tests share. */
static void make_people(const char *name)
{
	char path[512];
	sqlite3 *db;
	static const char bad[] = "bad \xff\xfe utf8 \x01\x02 ctrl";
	static const unsigned char photo[] = { 0, 1, 2, 0xff };
	sqlite3_stmt *st;

	path_in_tmp(path, sizeof(path), name);
	unlink(path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	exec_sql(db, "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT,"
		     " company TEXT, email TEXT, phone TEXT, customer_id TEXT,"
		     " notes TEXT, photo BLOB, score REAL, created TEXT)");
	add_person(db, 1, "Alice Renouf", "Harbour Trust Ltd",
		   "Alice@Example.COM", "+44 1534 000000", "C-17",
		   "prefers phone", 13);
	/* Same name and company, email one letter off: someone else. */
	add_person(db, 2, "Alice Renouf", "Harbour Trust Ltd",
		   "alicf@example.com", NULL, "C-99", NULL, 0);
	add_person(db, 3, "Bob Le Sueur", "Harbour Trust Ltd",
		   "bob@example.com", NULL, "C-18", NULL, 0);
	add_person(db, 4, "Sean O'Brien", "Quote \"Co\"; DROP TABLE x",
		   "o'brien@example.com", NULL, NULL, "-- comment", 10);
	/* Alice's second address: found by it and by her customer id. */
	add_person(db, 5, "Alice Renouf", "Harbour Trust Ltd",
		   "alice.work@example.com", NULL, "C-17", NULL, 0);
	add_person(db, 6, "Mallory", NULL, "mallory@example.com", NULL,
		   NULL, bad, sizeof(bad) - 1);
	assert_int_equal(sqlite3_prepare_v2(db,
		"UPDATE people SET photo = ?1 WHERE id = 3", -1, &st, NULL),
		SQLITE_OK);
	sqlite3_bind_blob(st, 1, photo, sizeof(photo), SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
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
	int fail_at;     /* emit fails on this record (1-based), 0: never */
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

/* Add an identity verbatim (no normalisation), as a hostile caller or a
 * source that reported it could. */
static void ids_add_raw(struct pex_identity_set *set, const char *type,
			const char *value)
{
	struct pex_identity id = { .type = (char *)type,
				   .value = (char *)value };

	assert_int_equal(pex_identity_set_add(set, &id), 0);
}

/* Open a source on opts, collect for the identities (NULL-terminated
 * "type:value" texts) and return the records; *srcp keeps the source open
 * when not NULL. */
static int run(json_t *opts, const char *const *idtexts, json_t **out,
	       struct pex_source **srcp)
{
	struct pex_source *src = NULL;
	struct pex_identity_set ids = { 0 };
	struct sink s = { .records = json_array() };
	int rc;

	for (size_t i = 0; idtexts && idtexts[i]; i++)
		ids_add(&ids, idtexts[i]);
	rc = pex_source_new(&src, "crm", "sql", opts, tmpdir);
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

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/pex_sql_test.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	make_people("people.db");
	return 0;
}

static int teardown(void **state)
{
	char cmd[320];

	(void)state;
	/* tmpdir comes from mkdtemp: no shell metacharacters in it. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- matching -------------------------------------------------------- */

static void test_email_case_insensitive(void **state)
{
	const char *ids[] = { "email:ALICE@example.com", NULL };
	json_t *opts = options("people.db", QUERY);
	json_t *recs, *r;

	(void)state;
	assert_int_equal(run(opts, ids, &recs, NULL), 0);
	/* Row 1 only: row 2 shares name and company but its email differs
	 * by one letter; row 5 is found only by the customer id. */
	assert_int_equal(json_array_size(recs), 1);
	r = json_array_get(recs, 0);
	assert_string_equal(str_at(r, "id"), "1");
	assert_string_equal(str_at(r, "name.full"), "Alice Renouf");
	assert_string_equal(str_at(r, "organisation"), "Harbour Trust Ltd");
	assert_string_equal(json_string_value(json_array_get(
		json_object_get(r, "emails"), 0)), "Alice@Example.COM");
	assert_string_equal(json_string_value(json_array_get(
		json_object_get(r, "phones"), 0)), "+44 1534 000000");
	assert_string_equal(str_at(r, "collected_at"),
			    "2025-02-01T09:30:00Z");
	assert_string_equal(str_at(r, "matched_by.type"), "email");
	assert_string_equal(str_at(r, "matched_by.value"),
			    "alice@example.com");
	/* Unmapped columns land in extra; numbers as text; NULL as null. */
	assert_string_equal(str_at(r, "extra.notes"), "prefers phone");
	assert_string_equal(str_at(r, "extra.customer_id"), "C-17");
	assert_string_equal(str_at(r, "extra.id"), "1");
	assert_string_equal(str_at(r, "extra.score"), "4.5");
	assert_true(json_is_null(json_object_get(json_object_get(r, "extra"),
						 "photo")));
	assert_null(json_object_get(r, "source")); /* the engine's field */
	json_decref(recs);
	json_decref(opts);
}

static void test_one_letter_off_does_not_match(void **state)
{
	const char *ids[] = { "email:alicd@example.com", NULL };
	json_t *opts = options("people.db", QUERY);
	json_t *recs;

	(void)state;
	assert_int_equal(run(opts, ids, &recs, NULL), 0);
	assert_int_equal(json_array_size(recs), 0);
	json_decref(recs);
	json_decref(opts);
}

static void test_quotes_and_injection(void **state)
{
	const char *quoted[] = { "email:o'brien@example.com", NULL };
	const char *inject[] = { "email:x' OR '1'='1",
				 "email:' OR 1=1 --",
				 "email:alice@example.com' --",
				 "customer_id:C-17'; DROP TABLE people; --",
				 "email:%", NULL };
	json_t *opts = options("people.db", QUERY);
	json_t *recs, *r;
	sqlite3 *db;
	char path[512];
	sqlite3_stmt *st;

	(void)state;
	assert_int_equal(run(opts, quoted, &recs, NULL), 0);
	assert_int_equal(json_array_size(recs), 1);
	r = json_array_get(recs, 0);
	assert_string_equal(str_at(r, "id"), "4");
	assert_string_equal(str_at(r, "name.full"), "Sean O'Brien");
	assert_string_equal(str_at(r, "organisation"),
			    "Quote \"Co\"; DROP TABLE x");
	assert_string_equal(str_at(r, "matched_by.value"),
			    "o'brien@example.com");
	json_decref(recs);

	assert_int_equal(run(opts, inject, &recs, NULL), 0);
	assert_int_equal(json_array_size(recs), 0);
	json_decref(recs);
	json_decref(opts);

	/* And the table is still whole. */
	path_in_tmp(path, sizeof(path), "people.db");
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY,
					 NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM people",
					    -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 6);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void test_several_identities_emitted_once(void **state)
{
	const char *ids[] = { "email:alice@example.com",
			      "email:alice.work@example.com",
			      "customer_id:C-17", NULL };
	json_t *opts = options("people.db", QUERY);
	json_t *recs, *r;

	(void)state;
	assert_int_equal(run(opts, ids, &recs, NULL), 0);
	/* customer_id C-17 finds rows 1 and 5 again: not emitted twice. */
	assert_int_equal(json_array_size(recs), 2);
	r = by_id(recs, "1");
	assert_non_null(r);
	assert_string_equal(str_at(r, "matched_by.value"),
			    "alice@example.com");
	r = by_id(recs, "5");
	assert_non_null(r);
	assert_string_equal(str_at(r, "matched_by.type"), "email");
	assert_string_equal(str_at(r, "matched_by.value"),
			    "alice.work@example.com");
	json_decref(recs);
	json_decref(opts);
}

static void test_first_match_wins(void **state)
{
	/* The customer id comes first now: it claims both rows. */
	const char *ids[] = { "customer_id:C-17", "email:alice@example.com",
			      NULL };
	json_t *opts = options("people.db", QUERY);
	json_t *recs;

	(void)state;
	assert_int_equal(run(opts, ids, &recs, NULL), 0);
	assert_int_equal(json_array_size(recs), 2);
	assert_string_equal(str_at(by_id(recs, "1"), "matched_by.type"),
			    "customer_id");
	assert_string_equal(str_at(by_id(recs, "5"), "matched_by.type"),
			    "customer_id");
	json_decref(recs);
	json_decref(opts);
}

static void test_no_parameter_for_subject(void **state)
{
	const char *ids[] = { "phone:+44 1534 000000", "username:alice",
			      NULL };
	json_t *opts = options("people.db", QUERY);
	struct pex_source *src;
	json_t *recs, *w;

	(void)state;
	assert_int_equal(run(opts, ids, &recs, &src), 0);
	assert_int_equal(json_array_size(recs), 0);
	w = pex_source_warnings(src);
	assert_int_equal(json_array_size(w), 0);
	json_decref(w);
	pex_source_free(src);
	json_decref(recs);
	json_decref(opts);
}

static void test_text_hygiene_counted(void **state)
{
	const char *ids[] = { "email:mallory@example.com", NULL };
	json_t *opts = options("people.db", QUERY);
	struct pex_source *src;
	json_t *recs, *w;
	const char *notes;

	(void)state;
	assert_int_equal(run(opts, ids, &recs, &src), 0);
	assert_int_equal(json_array_size(recs), 1);
	notes = str_at(json_array_get(recs, 0), "extra.notes");
	assert_non_null(notes);
	assert_non_null(strstr(notes, "\xef\xbf\xbd")); /* U+FFFD */
	assert_null(strchr(notes, '\x01'));
	assert_null(strstr(notes, "\xff"));
	assert_true(strncmp(notes, "bad ", 4) == 0);
	w = pex_source_warnings(src);
	assert_int_equal(json_array_size(w), 1);
	assert_non_null(strstr(json_string_value(json_object_get(
		json_array_get(w, 0), "message")), "U+FFFD"));
	assert_int_equal(json_integer_value(json_object_get(
		json_array_get(w, 0), "count")), 1);
	json_decref(w);
	pex_source_free(src);
	json_decref(recs);
	json_decref(opts);
}

static void test_blob_as_base64(void **state)
{
	const char *ids[] = { "email:bob@example.com", NULL };
	json_t *opts = options("people.db", QUERY);
	struct pex_source *src;
	json_t *recs, *w;

	(void)state;
	assert_int_equal(run(opts, ids, &recs, &src), 0);
	assert_int_equal(json_array_size(recs), 1);
	assert_string_equal(str_at(json_array_get(recs, 0), "extra.photo"),
			    "AAEC/w==");
	/* NULL phone: no phones at all, not an empty string. */
	assert_null(json_object_get(json_array_get(recs, 0), "phones"));
	w = pex_source_warnings(src);
	assert_int_equal(json_array_size(w), 1);
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(w, 0), "message")),
		"column 'photo': binary value given as base64");
	json_decref(w);
	pex_source_free(src);
	json_decref(recs);
	json_decref(opts);
}

static void test_identities_yielded(void **state)
{
	const char *ids[] = { "email:alice@example.com", NULL };
	json_t *opts = options("people.db", QUERY);
	struct pex_source *src;
	const struct pex_identity_set *found;
	const struct pex_identity *cid, *ph;
	json_t *recs;

	(void)state;
	json_object_set_new(opts, "identities",
			    json_pack("{s:s, s:s, s:s}", "customer_id",
				      "customer_id", "phone", "phone",
				      "notes", "username"));
	assert_int_equal(run(opts, ids, &recs, &src), 0);
	assert_int_equal(json_array_size(recs), 1);
	found = pex_source_identities(src);
	cid = pex_identity_find(found, "customer_id");
	assert_non_null(cid);
	assert_string_equal(cid->value, "C-17");
	assert_string_equal(cid->from_source, "crm");
	assert_string_equal(cid->from_record, "crm:1");
	assert_int_equal(cid->has_window, 0);
	ph = pex_identity_find(found, "phone");
	assert_non_null(ph);
	assert_string_equal(ph->value, "+441534000000");
	assert_non_null(pex_identity_find(found, "username"));
	assert_int_equal(found->count, 3);
	pex_source_free(src);
	json_decref(recs);
	json_decref(opts);
}

static void test_database_from_environment(void **state)
{
	const char *ids[] = { "email:bob@example.com", NULL };
	json_t *opts = options("${PEX_SQL_TEST_DB}", QUERY);
	char path[512];
	json_t *recs;

	(void)state;
	path_in_tmp(path, sizeof(path), "people.db");
	setenv("PEX_SQL_TEST_DB", path, 1);
	assert_int_equal(run(opts, ids, &recs, NULL), 0);
	assert_int_equal(json_array_size(recs), 1);
	unsetenv("PEX_SQL_TEST_DB");
	json_decref(recs);
	json_decref(opts);
}

static void test_weak_identity_needs_window(void **state)
{
	const char *ids[] = { "ip:203.0.113.7@2026-01-03T09:30:00Z/PT1H",
			      NULL };
	json_t *opts = options("visits.db",
		"SELECT id, ip, at FROM visits WHERE ip = :ip");
	json_t *wopts = options("visits.db",
		"SELECT id, ip, at FROM visits WHERE ip = :ip "
		"AND at BETWEEN :not_before AND :not_after ORDER BY id");
	struct pex_source *src;
	json_t *recs, *w;
	sqlite3 *db;
	char path[512];

	(void)state;
	path_in_tmp(path, sizeof(path), "visits.db");
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	exec_sql(db, "CREATE TABLE visits (id INTEGER PRIMARY KEY, ip TEXT, "
		     "at TEXT);"
		     "INSERT INTO visits VALUES "
		     "(1, '203.0.113.7', '2026-01-03T09:45:00Z'),"
		     "(2, '203.0.113.7', '2026-01-04T09:45:00Z'),"
		     "(3, '203.0.113.8', '2026-01-03T09:45:00Z');");
	sqlite3_close(db);
	json_object_del(opts, "fields");
	json_object_del(wopts, "fields");

	/* Without a window in the query the address is not used at all. */
	assert_int_equal(run(opts, ids, &recs, &src), 0);
	assert_int_equal(json_array_size(recs), 0);
	w = pex_source_warnings(src);
	assert_int_equal(json_array_size(w), 1);
	json_decref(w);
	pex_source_free(src);
	json_decref(recs);

	assert_int_equal(run(wopts, ids, &recs, NULL), 0);
	assert_int_equal(json_array_size(recs), 1);
	assert_string_equal(str_at(json_array_get(recs, 0), "id"), "1");
	assert_string_equal(str_at(json_array_get(recs, 0),
				   "matched_by.window"),
			    "2026-01-03T09:30:00Z/2026-01-03T10:30:00Z");
	json_decref(recs);
	json_decref(opts);
	json_decref(wopts);
}

/* ---- failures -------------------------------------------------------- */

static void expect_init_error(json_t *opts, int code, const char *needle)
{
	struct pex_source *src = (struct pex_source *)1;
	int rc = pex_source_new(&src, "crm", "sql", opts, tmpdir);

	if (rc != code)
		fail_msg("got %d (%s), want %d", rc, pex_error_last(), code);
	assert_null(src);
	if (!strstr(pex_error_last(), needle))
		fail_msg("error \"%s\" lacks \"%s\"", pex_error_last(),
			 needle);
	/* Every error names the source. */
	assert_non_null(strstr(pex_error_last(), "source crm"));
}

static void test_missing_database(void **state)
{
	json_t *opts = options("nosuch.db", QUERY);
	char path[512];
	struct stat sb;

	(void)state;
	expect_init_error(opts, PEX_ENOTFOUND, "does not exist");
	assert_non_null(strstr(pex_error_last(), "nosuch.db"));
	path_in_tmp(path, sizeof(path), "nosuch.db");
	assert_int_equal(stat(path, &sb), -1); /* not created */
	assert_int_equal(errno, ENOENT);
	json_decref(opts);
}

static void test_not_a_database(void **state)
{
	char path[512], good[512];
	FILE *f;
	json_t *opts;
	char buf[4096];
	size_t n;

	(void)state;
	path_in_tmp(path, sizeof(path), "garbage.db");
	f = fopen(path, "wb");
	assert_non_null(f);
	fputs("this is not a database, just text\n", f);
	fclose(f);
	opts = options("garbage.db", QUERY);
	expect_init_error(opts, PEX_EINVALID, "not a usable SQLite database");
	json_decref(opts);

	/* A truncated copy of a real database. */
	path_in_tmp(good, sizeof(good), "people.db");
	f = fopen(good, "rb");
	assert_non_null(f);
	n = fread(buf, 1, 1500, f);
	fclose(f);
	assert_int_equal(n, 1500);
	path_in_tmp(path, sizeof(path), "truncated.db");
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, n, f), n);
	fclose(f);
	opts = options("truncated.db", QUERY);
	expect_init_error(opts, PEX_EINVALID, "truncated.db");
	json_decref(opts);

	/* A directory. */
	opts = options(".", QUERY);
	expect_init_error(opts, PEX_EINVALID, "not a regular file");
	json_decref(opts);
}

static void test_malformed_sql(void **state)
{
	json_t *opts = options("people.db",
			       "SELEC id FROM people WHERE email = :email");

	(void)state;
	expect_init_error(opts, PEX_ERROR, "cannot prepare query");
	assert_non_null(strstr(pex_error_last(), "syntax error"));
	json_decref(opts);

	opts = options("people.db",
		       "SELECT id FROM nosuch WHERE email = :email");
	expect_init_error(opts, PEX_ERROR, "no such table: nosuch");
	json_decref(opts);

	opts = options("people.db", "   ");
	expect_init_error(opts, PEX_EINVALID, "query is empty");
	json_decref(opts);
}

static void test_query_rules(void **state)
{
	static const struct {
		const char *query;
		const char *needle;
	} cases[] = {
		{ "SELECT id, name FROM people", "no identity parameter" },
		{ "SELECT id FROM people WHERE email = ?", "named with ':'" },
		{ "SELECT id FROM people WHERE email = ?1", "named with ':'" },
		{ "SELECT id FROM people WHERE email = @email",
		  "named with ':'" },
		{ "SELECT id FROM people WHERE email = :Email",
		  "identity type" },
		{ "SELECT id FROM people WHERE email = :not_before",
		  "no identity parameter" },
		{ "SELECT id FROM people WHERE email = :email AND "
		  "name > :not_before", "both :not_before and :not_after" },
		{ "DELETE FROM people WHERE email = :email", "only read" },
		{ "SELECT id FROM people WHERE email = :email; "
		  "DELETE FROM people", "more than one statement" },
		{ "SELECT name FROM people WHERE email = :email",
		  "id_column 'id'" },
		{ "SELECT id, name, company AS name FROM people "
		  "WHERE email = :email", "two columns named 'name'" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *opts = options("people.db", cases[i].query);

		json_object_del(opts, "fields");
		expect_init_error(opts, PEX_EINVALID, cases[i].needle);
		json_decref(opts);
	}
}

static void test_option_rules(void **state)
{
	json_t *opts = options("people.db", QUERY);

	(void)state;
	json_object_set_new(opts, "fields",
			    json_pack("{s:s}", "nosuch", "notes"));
	expect_init_error(opts, PEX_EINVALID, "'nosuch' is not a column");
	json_object_set_new(opts, "fields",
			    json_pack("{s:s}", "name", "nosuch_field"));
	expect_init_error(opts, PEX_EINVALID, "nosuch_field");
	json_object_del(opts, "fields");
	json_object_set_new(opts, "identities",
			    json_pack("{s:s}", "nosuch", "email"));
	expect_init_error(opts, PEX_EINVALID, "'nosuch' is not a column");
	json_object_set_new(opts, "identities",
			    json_pack("{s:s}", "email", "Not A Type"));
	expect_init_error(opts, PEX_EINVALID, "identity type");
	json_object_set_new(opts, "identities", json_string("email"));
	expect_init_error(opts, PEX_EINVALID, "identities must be a map");
	json_object_del(opts, "identities");
	json_object_set_new(opts, "kind", json_string("spaceship"));
	expect_init_error(opts, PEX_EINVALID, "spaceship");
	json_object_del(opts, "kind");
	json_object_set_new(opts, "timeout_ms", json_integer(-1));
	expect_init_error(opts, PEX_EINVALID, "timeout_ms");
	json_object_del(opts, "timeout_ms");
	json_object_del(opts, "id_column");
	expect_init_error(opts, PEX_EINVALID, "id_column");
	json_decref(opts);
}

static void test_locked_database(void **state)
{
	const char *ids[] = { "email:alice@example.com", NULL };
	json_t *opts = options("people.db", QUERY);
	struct pex_identity_set set = { 0 };
	struct sink s = { .records = NULL };
	struct pex_source *src = NULL;
	char path[512];
	sqlite3 *locker;

	(void)state;
	json_object_set_new(opts, "timeout_ms", json_integer(50));
	path_in_tmp(path, sizeof(path), "people.db");
	assert_int_equal(sqlite3_open(path, &locker), SQLITE_OK);

	/* Locked before the source opens: init says so. */
	exec_sql(locker, "BEGIN EXCLUSIVE");
	expect_init_error(opts, PEX_EIO, "is locked by another connection");
	assert_non_null(strstr(pex_error_last(), "retry"));
	exec_sql(locker, "COMMIT");

	/* Locked between init and collect: collect says so. */
	assert_int_equal(pex_source_new(&src, "crm", "sql", opts, tmpdir),
			 0);
	ids_add(&set, ids[0]);
	exec_sql(locker, "BEGIN EXCLUSIVE");
	assert_int_equal(pex_source_collect(src, &set, emit_cb, &s), PEX_EIO);
	assert_non_null(strstr(pex_error_last(), "locked"));
	assert_non_null(strstr(pex_error_last(), "source crm"));
	assert_int_equal(s.count, 0);
	exec_sql(locker, "COMMIT");

	/* Released: the same source works again. */
	assert_int_equal(pex_source_collect(src, &set, emit_cb, &s), 0);
	assert_int_equal(s.count, 1);
	pex_source_free(src);
	pex_identity_set_clear(&set);
	sqlite3_close(locker);
	json_decref(opts);
}

static void test_emit_failure_stops(void **state)
{
	json_t *opts = options("people.db", QUERY);
	struct pex_identity_set set = { 0 };
	struct sink s = { .records = NULL, .fail_at = 1 };
	struct pex_source *src = NULL;

	(void)state;
	assert_int_equal(pex_source_new(&src, "crm", "sql", opts, tmpdir),
			 0);
	ids_add(&set, "customer_id:C-17");
	ids_add(&set, "email:bob@example.com");
	assert_int_equal(pex_source_collect(src, &set, emit_cb, &s), PEX_EIO);
	assert_int_equal(s.count, 1); /* nothing after the failure */
	assert_non_null(strstr(pex_error_last(), "disk full"));
	/* The statement was reset: the next collect starts afresh. */
	s.fail_at = 0;
	s.count = 0;
	assert_int_equal(pex_source_collect(src, &set, emit_cb, &s), 0);
	assert_int_equal(s.count, 3);
	pex_source_free(src);
	pex_identity_set_clear(&set);
	json_decref(opts);
}

static void test_hostile_identity_values(void **state)
{
	json_t *opts = options("people.db", QUERY);
	struct pex_identity_set set = { 0 };
	struct sink s = { .records = json_array() };
	struct pex_source *src = NULL;
	char big[70000];

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ids_add_raw(&set, "email", big);
	ids_add_raw(&set, "email", "\xff\xfe\x01");
	ids_add_raw(&set, "email", "");
	ids_add_raw(&set, "customer_id", "C-17\nC-18");
	assert_int_equal(pex_source_new(&src, "crm", "sql", opts, tmpdir),
			 0);
	assert_int_equal(pex_source_collect(src, &set, emit_cb, &s), 0);
	assert_int_equal(s.count, 0);
	pex_source_free(src);
	pex_identity_set_clear(&set);
	json_decref(s.records);
	json_decref(opts);
}

static void test_null_and_huge_cells(void **state)
{
	const char *ids[] = { "email:a@example.com", NULL };
	json_t *opts = options("odd.db",
		"SELECT id, name FROM odd WHERE email = :email "
		"ORDER BY rowid");
	json_t *recs;
	sqlite3 *db;
	char path[512];

	(void)state;
	path_in_tmp(path, sizeof(path), "odd.db");
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	exec_sql(db, "CREATE TABLE odd (id, name, email);"
		     "INSERT INTO odd VALUES (NULL, 'x', 'a@example.com');");
	json_object_del(opts, "fields");
	assert_int_not_equal(run(opts, ids, &recs, NULL), 0);
	assert_non_null(strstr(pex_error_last(), "NULL in id_column"));
	assert_int_equal(json_array_size(recs), 0);
	json_decref(recs);

	exec_sql(db, "DELETE FROM odd;"
		     "INSERT INTO odd VALUES (7, zeroblob(17 * 1024 * 1024), "
		     "'a@example.com');");
	assert_int_equal(run(opts, ids, &recs, NULL), PEX_ELIMIT);
	assert_non_null(strstr(pex_error_last(), "column name"));
	json_decref(recs);

	/* Integer and real ids and BLOB ids still give text ids. */
	exec_sql(db, "DELETE FROM odd;"
		     "INSERT INTO odd VALUES (7, NULL, 'a@example.com'),"
		     "(2.5, '', 'a@example.com'),"
		     "(x'41', 'y', 'a@example.com');");
	assert_int_equal(run(opts, ids, &recs, NULL), 0);
	assert_int_equal(json_array_size(recs), 3);
	assert_string_equal(str_at(json_array_get(recs, 0), "id"), "7");
	assert_true(json_is_null(json_object_get(json_object_get(
		json_array_get(recs, 0), "extra"), "name")));
	assert_string_equal(str_at(json_array_get(recs, 1), "id"), "2.5");
	assert_string_equal(str_at(json_array_get(recs, 1), "extra.name"),
			    "");
	assert_string_equal(str_at(json_array_get(recs, 2), "id"), "QQ==");
	json_decref(recs);
	sqlite3_close(db);
	json_decref(opts);
}

static void test_streams_many_rows(void **state)
{
	const char *ids[] = { "customer_id:C-1", NULL };
	json_t *opts = options("many.db",
		"SELECT id, body FROM events "
		"WHERE customer_id = :customer_id");
	struct pex_identity_set set = { 0 };
	struct sink s = { .records = NULL };
	struct pex_source *src = NULL;
	sqlite3 *db;
	char path[512];

	(void)state;
	path_in_tmp(path, sizeof(path), "many.db");
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	exec_sql(db, "CREATE TABLE events (id INTEGER PRIMARY KEY, "
		     "customer_id TEXT, body TEXT);"
		     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
		     "SELECT i + 1 FROM n WHERE i < 100000) "
		     "INSERT INTO events SELECT i, "
		     "CASE WHEN i % 10 = 0 THEN 'C-2' ELSE 'C-1' END, "
		     "printf('event %d', i) FROM n;");
	sqlite3_close(db);
	json_object_del(opts, "fields");
	assert_int_equal(pex_source_new(&src, "crm", "sql", opts, tmpdir),
			 0);
	ids_add(&set, ids[0]);
	assert_int_equal(pex_source_collect(src, &set, emit_cb, &s), 0);
	assert_int_equal(s.count, 90000);
	/* Twice the same identity: two runs, so deduplicated. */
	ids_add(&set, ids[0]);
	s.count = 0;
	assert_int_equal(pex_source_collect(src, &set, emit_cb, &s), 0);
	assert_int_equal(s.count, 90000);
	pex_source_free(src);
	pex_identity_set_clear(&set);
	json_decref(opts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_email_case_insensitive),
		cmocka_unit_test(test_one_letter_off_does_not_match),
		cmocka_unit_test(test_quotes_and_injection),
		cmocka_unit_test(test_several_identities_emitted_once),
		cmocka_unit_test(test_first_match_wins),
		cmocka_unit_test(test_no_parameter_for_subject),
		cmocka_unit_test(test_text_hygiene_counted),
		cmocka_unit_test(test_blob_as_base64),
		cmocka_unit_test(test_identities_yielded),
		cmocka_unit_test(test_database_from_environment),
		cmocka_unit_test(test_weak_identity_needs_window),
		cmocka_unit_test(test_missing_database),
		cmocka_unit_test(test_not_a_database),
		cmocka_unit_test(test_malformed_sql),
		cmocka_unit_test(test_query_rules),
		cmocka_unit_test(test_option_rules),
		cmocka_unit_test(test_locked_database),
		cmocka_unit_test(test_emit_failure_stops),
		cmocka_unit_test(test_hostile_identity_values),
		cmocka_unit_test(test_null_and_huge_cells),
		cmocka_unit_test(test_streams_many_rows),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
