/* Unit tests for engine/source.c: making sources from options (config
 * map, secrets), and the bookkeeping collectors report into (warnings,
 * replaced text, found identities). Driven through the real csv and sql
 * collectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "portex/engine.h"
#include "portex/error.h"

static char dir[64];

static void write_file(const char *name, const char *text, size_t len)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	static const char csv[] =
		"Email,Name,Customer,Notes\n"
		"Alice@Example.com,Alice,C-17,hi\x01there\n"
		"bob@example.com,Bob,C-18,plain\n"
		"alice@example.com,Alice R,C-17,second row\n";
	char db[256];
	sqlite3 *h;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/pex_source_test_XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	write_file("people.csv", csv, sizeof(csv) - 1);
	snprintf(db, sizeof(db), "%s/crm.sqlite", dir);
	if (sqlite3_open(db, &h) != SQLITE_OK)
		return -1;
	if (sqlite3_exec(h,
			 "CREATE TABLE c (id TEXT, email TEXT);"
			 "INSERT INTO c VALUES ('7', 'alice@example.com');",
			 NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	sqlite3_close(h);
	return 0;
}

static int teardown(void **state)
{
	static const char *const files[] = { "people.csv", "crm.sqlite",
					     "secret", "big-secret",
					     "secret-missing-db" };
	char p[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	return rmdir(dir);
}

/* A csv source over people.csv with extra options merged in. */
static int csv_source(struct pex_source **out, const char *extra_json)
{
	json_t *opts = json_pack("{s:s, s:{s:s}}", "path", "people.csv",
				 "match", "Email", "email");
	int rc;

	assert_non_null(opts);
	if (extra_json) {
		json_t *extra = json_loads(extra_json, 0, NULL);

		assert_non_null(extra);
		json_object_update(opts, extra);
		json_decref(extra);
	}
	rc = pex_source_new(out, "people", "csv", opts, dir);
	json_decref(opts);
	return rc;
}

/* Make a source that must fail; returns the message. */
static const char *source_bad(const char *collector, const char *opts_json,
			      int want_rc)
{
	struct pex_source *src = (struct pex_source *)1;
	json_t *opts = opts_json ? json_loads(opts_json, JSON_DECODE_ANY, NULL)
				 : NULL;
	int rc;

	if (opts_json)
		assert_non_null(opts);
	rc = pex_source_new(&src, "s1", collector, opts, dir);
	json_decref(opts);
	if (rc != want_rc)
		fail_msg("rc %d (want %d) for %s %s: %s", rc, want_rc,
			 collector, opts_json ? opts_json : "(null)",
			 pex_error_last());
	assert_null(src);
	return pex_error_last();
}

static void test_unknown_collector(void **state)
{
	const char *m;

	(void)state;
	m = source_bad("nope", "{}", PEX_EINVALID);
	assert_non_null(strstr(m, "source s1: no collector named 'nope'"));
	assert_non_null(strstr(m, "(available: "));
	assert_non_null(strstr(m, "csv"));
	assert_non_null(strstr(m, "sql"));
	assert_non_null(pex_collector_find("csv"));
	assert_null(pex_collector_find("nope"));
}

static void test_unknown_option(void **state)
{
	const char *m;

	(void)state;
	m = source_bad("csv",
		       "{\"path\": \"people.csv\", \"match\": {\"Email\": "
		       "\"email\"}, \"colour\": 1}",
		       PEX_EINVALID);
	assert_true(strncmp(m, "source s1: ", 11) == 0);
	assert_non_null(strstr(m, "unknown option 'colour' for collector "
				  "csv (known: path, delimiter, "));
	assert_non_null(strstr(m, "match"));
	assert_non_null(strstr(m, "max_columns"));
	m = source_bad("csv", "[1, 2]", PEX_EINVALID);
	assert_non_null(strstr(m, "options must be a map"));
}

static void test_missing_required(void **state)
{
	const char *m;

	(void)state;
	m = source_bad("csv", "{\"match\": {\"Email\": \"email\"}}",
		       PEX_EINVALID);
	assert_non_null(strstr(m, "source s1: option 'path' is required"));
	/* null counts as absent */
	m = source_bad("csv", "{\"path\": null, \"match\": {}}",
		       PEX_EINVALID);
	assert_non_null(strstr(m, "option 'path' is required"));
	/* no options at all */
	m = source_bad("sql", NULL, PEX_EINVALID);
	assert_non_null(strstr(m, "option 'database' is required"));
}

static void test_wrong_types(void **state)
{
	static const struct {
		const char *opts;
		const char *want;
	} cases[] = {
		{ "{\"path\": 5, \"match\": {\"Email\": \"email\"}}",
		  "option 'path' must be a string" },
		{ "{\"path\": \"p\", \"match\": {}, \"header\": \"yes\"}",
		  "option 'header' must be true or false" },
		{ "{\"path\": \"p\", \"match\": {}, \"max_columns\": \"10\"}",
		  "option 'max_columns' must be an integer" },
		{ "{\"path\": \"p\", \"match\": {}, \"max_columns\": 1.5}",
		  "option 'max_columns' must be an integer" },
		{ "{\"path\": \"p\", \"match\": {}, \"columns\": 5}",
		  "option 'columns' must be a list of strings" },
		{ "{\"path\": \"p\", \"match\": {}, \"header\": false,"
		  " \"columns\": [\"a\", 1]}",
		  "option 'columns'[1] must be a string" },
		{ "{\"path\": \"p\", \"match\": \"Email\"}",
		  "match must be a map" },
		{ "{\"path\": \"p\", \"match\": {}}",
		  "match must name at least one column" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *m = source_bad("csv", cases[i].opts, PEX_EINVALID);

		if (!strstr(m, cases[i].want))
			fail_msg("%s: \"%s\" lacks \"%s\"", cases[i].opts, m,
				 cases[i].want);
		assert_true(strncmp(m, "source s1: ", 11) == 0);
	}
}

struct sink {
	json_t *records; /* array */
};

static int sink_emit(void *data, enum pex_record_kind kind, json_t *rec)
{
	struct sink *s = data;

	assert_int_equal(kind, PEX_REC_CONTACT);
	return json_array_append_new(s->records, rec);
}

/* Run src for email:alice@example.com; returns the records. */
static json_t *collect_alice(struct pex_source *src)
{
	struct pex_identity_set ids = { 0 };
	struct pex_identity id;
	struct sink s = { json_array() };
	int rc;

	assert_int_equal(pex_identity_parse(&id, "email:alice@example.com"),
			 0);
	assert_int_equal(pex_identity_set_add(&ids, &id), 0);
	pex_identity_clear(&id);
	rc = pex_source_collect(src, &ids, sink_emit, &s);
	if (rc)
		fail_msg("collect: %s", pex_error_last());
	pex_identity_set_clear(&ids);
	return s.records;
}

/* database: a SECRET option; only the right expansion finds the row. */
static int sql_source(struct pex_source **out, const char *database)
{
	json_t *opts = json_pack("{s:s, s:s, s:s}", "database", database,
				 "query",
				 "SELECT id, email FROM c "
				 "WHERE email = :email",
				 "id_column", "id");
	int rc = pex_source_new(out, "crm", "sql", opts, dir);

	json_decref(opts);
	return rc;
}

static void test_env_secrets(void **state)
{
	struct pex_source *src = NULL;
	json_t *recs;
	const char *m;

	(void)state;
	setenv("PEX_TEST_DIR", dir, 1);
	setenv("PEX_TEST_NAME", "crm", 1);
	assert_int_equal(sql_source(&src,
				    "${PEX_TEST_DIR}/${PEX_TEST_NAME}.sqlite"),
			 0);
	recs = collect_alice(src);
	assert_int_equal(json_array_size(recs), 1);
	json_decref(recs);
	pex_source_free(src);
	/* relative after expansion: resolved against the config dir */
	assert_int_equal(sql_source(&src, "${PEX_TEST_NAME}.sqlite"), 0);
	pex_source_free(src);

	unsetenv("PEX_TEST_UNSET_VAR");
	assert_int_equal(sql_source(&src, "${PEX_TEST_UNSET_VAR}/x.sqlite"),
			 PEX_EINVALID);
	assert_null(src);
	m = pex_error_last();
	assert_non_null(strstr(m, "source crm: option 'database': "
				  "environment variable PEX_TEST_UNSET_VAR "
				  "is not set"));
	assert_int_equal(sql_source(&src, "${}/x.sqlite"), PEX_EINVALID);
	assert_non_null(strstr(pex_error_last(), "bad ${...} reference"));
	/* an unterminated reference is literal text (no such file) */
	assert_true(sql_source(&src, "${PEX_TEST_DIR") < 0);
	assert_null(src);
}

static void test_file_secrets(void **state)
{
	struct pex_source *src = NULL;
	char buf[512];
	json_t *recs;
	char *big;

	(void)state;
	/* a trailing newline in the file is not part of the secret */
	snprintf(buf, sizeof(buf), "%s/crm.sqlite\n", dir);
	write_file("secret", buf, strlen(buf));
	assert_int_equal(sql_source(&src, "file:secret"), 0);
	recs = collect_alice(src);
	assert_int_equal(json_array_size(recs), 1);
	json_decref(recs);
	pex_source_free(src);
	snprintf(buf, sizeof(buf), "file:%s/secret", dir);
	assert_int_equal(sql_source(&src, buf), 0);
	pex_source_free(src);

	assert_int_equal(sql_source(&src, "file:absent"), PEX_EIO);
	assert_null(src);
	assert_non_null(strstr(pex_error_last(),
			       "option 'database': cannot read secret file"));
	assert_non_null(strstr(pex_error_last(), "absent"));
	/* a secret file's content is not expanded further */
	write_file("secret-missing-db", "${PEX_TEST_DIR}/crm.sqlite", 26);
	assert_true(sql_source(&src, "file:secret-missing-db") < 0);
	assert_null(src);
	/* bounded */
	big = malloc(70000);
	assert_non_null(big);
	memset(big, 'x', 70000);
	write_file("big-secret", big, 70000);
	free(big);
	assert_int_equal(sql_source(&src, "file:big-secret"), PEX_ELIMIT);
	assert_null(src);
	assert_non_null(strstr(pex_error_last(), "source crm: option "
				  "'database': secret file "));
	assert_non_null(strstr(pex_error_last(), "big-secret"));
	assert_non_null(strstr(pex_error_last(), "limit of 65536 bytes"));
	/* a NUL byte would cut the secret short: refused */
	snprintf(buf, sizeof(buf), "%s/crm.sqlite", dir);
	write_file("big-secret", buf, strlen(buf) + 1);
	assert_int_equal(sql_source(&src, "file:big-secret"), PEX_EINVALID);
	assert_null(src);
	assert_non_null(strstr(pex_error_last(), "NUL byte"));
}

/* Find the warning with this message in pex_source_warnings(). */
static json_int_t warning_count(struct pex_source *src,
				const char *msg)
{
	json_t *arr = pex_source_warnings(src), *w;
	json_int_t n = -1;
	size_t i;

	json_array_foreach(arr, i, w) {
		json_t *from = json_object_get(w, "source");

		assert_string_equal(json_string_value(from),
				    pex_source_id(src));
		if (!strcmp(json_string_value(json_object_get(w, "message")),
			    msg))
			n = json_integer_value(json_object_get(w, "count"));
	}
	json_decref(arr);
	return n;
}

static void test_warnings(void **state)
{
	struct pex_source *src = NULL;
	json_t *arr;
	char longbad[400];
	int i;

	(void)state;
	assert_int_equal(csv_source(&src, NULL), 0);
	arr = pex_source_warnings(src);
	assert_int_equal(json_array_size(arr), 0);
	json_decref(arr);

	for (i = 0; i < 3; i++)
		pex_source_warn(src, "line %d: bad", 7);
	pex_source_warn(src, "line %d: bad", 8);
	assert_int_equal(warning_count(src, "line 7: bad"), 3);
	assert_int_equal(warning_count(src, "line 8: bad"), 1);

	/* bounded: 64 kinds kept, the rest counted together */
	for (i = 0; i < 100; i++)
		pex_source_warn(src, "kind %d", i);
	arr = pex_source_warnings(src);
	assert_int_equal(json_array_size(arr), 65);
	json_decref(arr);
	assert_int_equal(warning_count(src, "kind 61"), 1);
	assert_int_equal(warning_count(src, "kind 62"), -1);
	assert_int_equal(warning_count(src,
				       "further warnings of other kinds"),
			 100 - 62);
	/* a known kind is still counted after the bound was reached */
	pex_source_warn(src, "line %d: bad", 7);
	assert_int_equal(warning_count(src, "line 7: bad"), 4);
	pex_source_free(src);

	/* quoted source bytes are made clean, and a long message is cut on
	 * a character boundary so the warning is not lost */
	assert_int_equal(csv_source(&src, NULL), 0);
	pex_source_warn(src, "bad value \"%s\"", "caf\xE9\x01");
	assert_int_equal(warning_count(src, "bad value \"caf\xEF\xBF\xBD"
					    "\xEF\xBF\xBD\""), 1);
	memset(longbad, 0xFF, sizeof(longbad) - 1);
	longbad[sizeof(longbad) - 1] = '\0';
	pex_source_warn(src, "x%s", longbad);
	pex_source_warn(src, "xy%s", longbad);
	pex_source_warn(src, "xyz%s", longbad);
	arr = pex_source_warnings(src);
	assert_int_equal(json_array_size(arr), 4);
	for (i = 1; i < 4; i++) {
		const char *msg = json_string_value(json_object_get(
			json_array_get(arr, (size_t)i), "message"));

		assert_non_null(msg);
		assert_true(strlen(msg) <= 511);
		assert_true(strlen(msg) >= 505);
	}
	json_decref(arr);
	pex_source_free(src);
}

static void test_text(void **state)
{
	struct pex_source *src = NULL;
	json_t *s;
	const char *msg3 = "3 characters that were not valid UTF-8 or not "
			   "allowed in XML 1.0 were replaced with U+FFFD";

	(void)state;
	assert_int_equal(csv_source(&src, NULL), 0);
	s = pex_source_text(src, "clean caf\xC3\xA9", 11);
	assert_string_equal(json_string_value(s), "clean caf\xC3\xA9");
	json_decref(s);
	/* the length counts, not a NUL: embedded NUL is replaced */
	s = pex_source_text(src, "a\0b", 3);
	assert_string_equal(json_string_value(s), "a\xEF\xBF\xBD" "b");
	json_decref(s);
	s = pex_source_text(src, "\xFF\xFEok", 4);
	assert_string_equal(json_string_value(s),
			    "\xEF\xBF\xBD\xEF\xBF\xBDok");
	json_decref(s);
	/* 3 characters in 2 values */
	assert_int_equal(warning_count(src, msg3), 2);
	s = pex_source_text(src, "", 0);
	assert_string_equal(json_string_value(s), "");
	json_decref(s);
	assert_int_equal(warning_count(src, msg3), 2);
	/* a record the engine discards takes its replacements with it */
	s = pex_source_text(src, "\x01\x02", 2);
	assert_string_equal(json_string_value(s),
			    "\xEF\xBF\xBD\xEF\xBF\xBD");
	json_decref(s);
	pex_source_settle(src, 0);
	assert_int_equal(warning_count(src, msg3), 2);
	/* one it keeps adds them */
	s = pex_source_text(src, "\x01", 1);
	json_decref(s);
	pex_source_settle(src, 1);
	assert_int_equal(warning_count(src, "4 characters that were not "
					    "valid UTF-8 or not allowed in "
					    "XML 1.0 were replaced with "
					    "U+FFFD"), 3);
	pex_source_free(src);
}

static void test_add_identity(void **state)
{
	struct pex_source *src = NULL;
	const struct pex_identity_set *found;

	(void)state;
	assert_int_equal(csv_source(&src, NULL), 0);
	found = pex_source_identities(src);
	assert_int_equal(found->count, 0);
	assert_int_equal(pex_source_add_identity(src, "email",
						 "Alice@Example.com", "r1", 0,
						 0, 0), 0);
	/* the same after normalisation: one entry */
	assert_int_equal(pex_source_add_identity(src, "email",
						 " alice@example.COM ", "r2",
						 0, 0, 0), 0);
	assert_int_equal(found->count, 1);
	assert_string_equal(found->items[0].value, "alice@example.com");
	assert_string_equal(found->items[0].from_source, "people");
	assert_string_equal(found->items[0].from_record, "r1");
	/* same value, other type or other window: separate */
	assert_int_equal(pex_source_add_identity(src, "username",
						 "alice@example.com", "r3", 0,
						 0, 0), 0);
	assert_int_equal(pex_source_add_identity(src, "ip", "10.0.0.1", "r4",
						 100, 200, 1), 0);
	assert_int_equal(pex_source_add_identity(src, "ip", "10.0.0.1", "r5",
						 100, 300, 1), 0);
	assert_int_equal(pex_source_add_identity(src, "ip", "::ffff:10.0.0.1",
						 "r6", 100, 300, 1), 0);
	assert_int_equal(found->count, 4);
	assert_true(found->items[2].has_window);
	assert_int_equal(found->items[3].not_after, 300);
	/* nothing usable: ignored, not an error */
	assert_int_equal(pex_source_add_identity(src, "email", "   ", "r7", 0,
						 0, 0), 0);
	assert_int_equal(pex_source_add_identity(src, "phone", "n/a", "r8", 0,
						 0, 0), 0);
	assert_int_equal(pex_source_add_identity(src, "email", "a\xFF@x", "r9",
						 0, 0, 0), 0);
	assert_int_equal(found->count, 4);
	pex_source_free(src);
}

static void test_collect_csv(void **state)
{
	struct pex_source *src = NULL;
	const struct pex_identity_set *found;
	json_t *recs, *r;

	(void)state;
	assert_int_equal(csv_source(&src,
				    "{\"fields\": {\"Name\": \"name.full\"},"
				    " \"identities\": {\"Customer\": "
				    "\"customer_id\"}}"), 0);
	assert_string_equal(pex_source_id(src), "people");
	assert_string_equal(pex_source_basedir(src), dir);
	recs = collect_alice(src);
	assert_int_equal(json_array_size(recs), 2);
	r = json_array_get(recs, 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    r, "name"), "full")), "Alice");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    r, "matched_by"), "value")),
			    "alice@example.com");
	/* the control character in Notes was replaced and counted */
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    r, "extra"), "Notes")),
			    "hi\xEF\xBF\xBDthere");
	assert_int_equal(warning_count(src, "1 characters that were not "
					    "valid UTF-8 or not allowed in "
					    "XML 1.0 were replaced with "
					    "U+FFFD"), 1);
	/* both rows carry C-17: reported once */
	found = pex_source_identities(src);
	assert_int_equal(found->count, 1);
	assert_string_equal(found->items[0].type, "customer_id");
	assert_string_equal(found->items[0].value, "C-17");
	json_decref(recs);
	pex_source_free(src);
	pex_source_free(NULL);

	/* a collect error names the source once */
	{
		json_t *opts = json_pack("{s:s, s:{s:s}}", "path",
					 "absent.csv", "match", "Email",
					 "email");
		struct pex_identity_set ids = { 0 };
		struct sink s = { json_array() };
		int rc;

		assert_int_equal(pex_source_new(&src, "gone", "csv", opts,
						dir), 0);
		json_decref(opts);
		rc = pex_source_collect(src, &ids, sink_emit, &s);

		assert_true(rc < 0);
		assert_true(strncmp(pex_error_last(), "source gone: ", 13) ==
			    0);
		assert_null(strstr(pex_error_last() + 13, "source gone:"));
		assert_non_null(strstr(pex_error_last(), "absent.csv"));
		json_decref(s.records);
	}
	pex_source_free(src);
}

static void test_paths(void **state)
{
	struct pex_source *src = NULL;
	json_t *opts = json_pack("{s:s, s:{s:s}}", "path", "x.csv", "match",
				 "Email", "email");
	char *p, want[256];

	(void)state;
	assert_int_equal(pex_source_new(&src, "a", "csv", opts, dir), 0);
	p = pex_source_path(src, "x.csv");
	snprintf(want, sizeof(want), "%s/x.csv", dir);
	assert_string_equal(p, want);
	free(p);
	p = pex_source_path(src, "/etc/x.csv");
	assert_string_equal(p, "/etc/x.csv");
	free(p);
	pex_source_free(src);
	assert_int_equal(pex_source_new(&src, "a", "csv", opts, NULL), 0);
	assert_string_equal(pex_source_basedir(src), ".");
	p = pex_source_path(src, "x.csv");
	assert_string_equal(p, "x.csv");
	free(p);
	pex_source_free(src);
	json_decref(opts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_collector),
		cmocka_unit_test(test_unknown_option),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_env_secrets),
		cmocka_unit_test(test_file_secrets),
		cmocka_unit_test(test_warnings),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_add_identity),
		cmocka_unit_test(test_collect_csv),
		cmocka_unit_test(test_paths),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
