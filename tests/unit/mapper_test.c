/* Unit tests for model/mapper.c: column-to-field mapping of tabular rows
 * into records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "portex/engine.h"
#include "portex/error.h"
#include "portex/mapper.h"

#define FFFD "\xEF\xBF\xBD"

struct fixture {
	struct pex_source *src;
	struct pex_identity by;
};

static int setup(void **state)
{
	static struct fixture f;
	json_t *opts = json_pack("{s:s, s:{s:s}}", "path", "unused.csv",
				 "match", "Email", "email");
	int rc;

	/* any source will do: the mapper reports text and warnings to it */
	rc = pex_source_new(&f.src, "t", "csv", opts, "/nonexistent");
	json_decref(opts);
	if (rc)
		return -1;
	if (pex_identity_parse(&f.by, "email:alice@example.com"))
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	pex_source_free(f->src);
	pex_identity_clear(&f->by);
	return 0;
}

/* The count of the warning with this message; -1 when absent. */
static json_int_t warning_count(struct pex_source *src, const char *msg)
{
	json_t *arr = pex_source_warnings(src), *w;
	json_int_t n = -1;
	size_t i;

	json_array_foreach(arr, i, w)
		if (!strcmp(json_string_value(json_object_get(w, "message")),
			    msg))
			n = json_integer_value(json_object_get(w, "count"));
	json_decref(arr);
	return n;
}

static pex_mapper *mapper_ok(enum pex_record_kind kind, const char *fields)
{
	json_t *f = fields ? json_loads(fields, 0, NULL) : NULL;
	pex_mapper *m = NULL;

	if (fields)
		assert_non_null(f);
	if (pex_mapper_new(&m, kind, f))
		fail_msg("%s: %s", fields, pex_error_last());
	json_decref(f);
	assert_non_null(m);
	return m;
}

static const char *mapper_bad(enum pex_record_kind kind, const char *fields)
{
	json_t *f = json_loads(fields, JSON_DECODE_ANY, NULL);
	pex_mapper *m = (pex_mapper *)1;
	int rc;

	assert_non_null(f);
	rc = pex_mapper_new(&m, kind, f);
	json_decref(f);
	if (rc != PEX_EINVALID)
		fail_msg("%s: rc %d", fields, rc);
	assert_null(m);
	return pex_error_last();
}

#define CELL(n, v) { (n), (v), strlen(v) }
#define NULLCELL(n) { (n), NULL, 0 }
#define RAW(n, lit) { (n), (lit), sizeof(lit) - 1 }
#define NCELLS(a) (sizeof(a) / sizeof((a)[0]))

static json_t *build(const pex_mapper *m, struct fixture *f,
		     const struct pex_cell *cells, size_t n)
{
	json_t *rec = NULL;

	if (pex_mapper_build(m, f->src, cells, n, "row-1", &f->by, &rec))
		fail_msg("build: %s", pex_error_last());
	assert_non_null(rec);
	return rec;
}

static void test_paths_ok(void **state)
{
	struct fixture *f = *state;
	pex_mapper *m = mapper_ok(PEX_REC_CONTACT,
				  "{\"first\": \"name.given\","
				  " \"last\": \"name.family\","
				  " \"mail\": \"emails[]\","
				  " \"mail2\": \"emails[]\","
				  " \"org\": \"organisation\","
				  " \"created\": \"collected_at\"}");
	const struct pex_cell cells[] = {
		CELL("first", "Alice"),
		CELL("last", "Renouf"),
		CELL("mail", "alice@example.com"),
		CELL("org", "Harbour <Trust> & Co"),
		CELL("mail2", "a.r@example.org"),
		CELL("created", "2025-02-01 09:30:00"),
		CELL("notes", "prefers phone"),
	};
	json_t *rec = build(m, f, cells, NCELLS(cells)), *emails, *extra;

	assert_string_equal(json_string_value(json_object_get(rec, "id")),
			    "row-1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    rec, "matched_by"), "value")),
			    "alice@example.com");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    rec, "name"), "given")), "Alice");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    rec, "name"), "family")), "Renouf");
	emails = json_object_get(rec, "emails");
	assert_int_equal(json_array_size(emails), 2);
	assert_string_equal(json_string_value(json_array_get(emails, 0)),
			    "alice@example.com");
	assert_string_equal(json_string_value(json_array_get(emails, 1)),
			    "a.r@example.org");
	assert_string_equal(json_string_value(json_object_get(rec,
							      "organisation")),
			    "Harbour <Trust> & Co");
	assert_string_equal(json_string_value(json_object_get(rec,
							      "collected_at")),
			    "2025-02-01T09:30:00Z");
	/* unmapped columns land in extra under their own name */
	extra = json_object_get(rec, "extra");
	assert_int_equal(json_object_size(extra), 1);
	assert_string_equal(json_string_value(json_object_get(extra, "notes")),
			    "prefers phone");
	json_decref(rec);
	pex_mapper_free(m);
	pex_mapper_free(NULL);
}

static void test_paths_bad(void **state)
{
	const char *m;

	(void)state;
	m = mapper_bad(PEX_REC_CONTACT, "{\"nick\": \"nickname\"}");
	assert_non_null(strstr(m, "fields: column 'nick' maps to 'nickname', "
				  "which a contact record does not have"));
	m = mapper_bad(PEX_REC_CONTACT, "{\"e\": \"emails\"}");
	assert_non_null(strstr(m, "column 'e': write 'emails[]' (a list)"));
	m = mapper_bad(PEX_REC_CONTACT, "{\"o\": \"organisation[]\"}");
	assert_non_null(strstr(m, "write 'organisation' (not a list)"));
	m = mapper_bad(PEX_REC_CONTACT, "{\"n\": \"name\"}");
	assert_non_null(strstr(m, "name a member, e.g. 'name.full'"));
	m = mapper_bad(PEX_REC_CONTACT, "{\"n\": \"name.maiden\"}");
	assert_non_null(strstr(m, "'name' has no member 'maiden'"));
	m = mapper_bad(PEX_REC_CONTACT, "{\"n\": \"name.\"}");
	assert_non_null(strstr(m, "has no member ''"));
	m = mapper_bad(PEX_REC_CONTACT, "{\"o\": \"organisation.x\"}");
	assert_non_null(strstr(m, "'organisation' has no members"));
	m = mapper_bad(PEX_REC_CONTACT, "{\"o\": \"name[].full\"}");
	assert_non_null(strstr(m, "column 'o'"));
	m = mapper_bad(PEX_REC_CONTACT, "{\"x\": \"\"}");
	assert_non_null(strstr(m, "column 'x'"));
	m = mapper_bad(PEX_REC_CONTACT, "{\"x\": \"[]\"}");
	assert_non_null(strstr(m, "column 'x'"));
	m = mapper_bad(PEX_REC_CONTACT, "{\"x\": 5}");
	assert_non_null(strstr(m, "column 'x' must map to a field name"));
	m = mapper_bad(PEX_REC_CONTACT, "[\"name.full\"]");
	assert_non_null(strstr(m, "fields must be a map"));
	/* a field of another kind */
	m = mapper_bad(PEX_REC_CONTACT, "{\"s\": \"status\"}");
	assert_non_null(strstr(m, "contact record does not have"));
	m = mapper_bad(PEX_REC_SESSION, "{\"s\": \"start\"}");
	assert_non_null(strstr(m, "session record does not have"));
	/* the first bad path is named even after good ones */
	m = mapper_bad(PEX_REC_TICKET,
		       "{\"t\": \"title\", \"u\": \"urgency\"}");
	assert_non_null(strstr(m, "column 'u'"));
}

static void test_times(void **state)
{
	struct fixture *f = *state;
	pex_mapper *m = mapper_ok(PEX_REC_TICKET,
				  "{\"c\": \"created_at\", \"u\": "
				  "\"updated_at\", \"x\": \"closed_at\"}");
	const struct pex_cell cells[] = {
		CELL("c", "2026-01-03T11:00:00+01:00"),
		CELL("u", "2026-01-03"),
		CELL("x", "last tuesday"),
	};
	const char *warn = "column 'x': value is not a date-time; kept in "
			   "extra";
	json_t *rec;

	assert_int_equal(warning_count(f->src, warn), -1);
	rec = build(m, f, cells, NCELLS(cells));
	assert_string_equal(json_string_value(json_object_get(rec,
							      "created_at")),
			    "2026-01-03T10:00:00Z");
	assert_string_equal(json_string_value(json_object_get(rec,
							      "updated_at")),
			    "2026-01-03T00:00:00Z");
	/* what the source holds is kept, with a reason */
	assert_null(json_object_get(rec, "closed_at"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    rec, "extra"), "x")), "last tuesday");
	assert_int_equal(warning_count(f->src, warn), 1);
	json_decref(rec);
	rec = build(m, f, cells, NCELLS(cells));
	assert_int_equal(warning_count(f->src, warn), 2);
	json_decref(rec);
	pex_mapper_free(m);
}

static void test_ints(void **state)
{
	struct fixture *f = *state;
	pex_mapper *m = mapper_ok(PEX_REC_USAGE_EVENT,
				  "{\"s\": \"status\", \"b\": \"bytes\"}");
	const char *warn_s = "column 's': value is not an integer; kept in "
			     "extra";
	const char *warn_b = "column 'b': value is not an integer; kept in "
			     "extra";
	json_t *rec, *extra;

	{
		const struct pex_cell cells[] = { CELL("s", "200"),
						  CELL("b", "-5") };

		rec = build(m, f, cells, NCELLS(cells));
		assert_true(json_is_integer(json_object_get(rec, "status")));
		assert_int_equal(json_integer_value(json_object_get(rec,
								    "status")),
				 200);
		assert_int_equal(json_integer_value(json_object_get(rec,
								    "bytes")),
				 -5);
		json_decref(rec);
	}
	{
		/* not numbers, or out of range: kept as text in extra
		 * rather than turned into a wrong number */
		const struct pex_cell cells[] = {
			CELL("s", "2OO"),
			CELL("b", "99999999999999999999"),
		};

		rec = build(m, f, cells, NCELLS(cells));
		assert_null(json_object_get(rec, "status"));
		assert_null(json_object_get(rec, "bytes"));
		extra = json_object_get(rec, "extra");
		assert_string_equal(json_string_value(json_object_get(extra,
								      "s")),
				    "2OO");
		assert_string_equal(json_string_value(json_object_get(extra,
								      "b")),
				    "99999999999999999999");
		assert_int_equal(warning_count(f->src, warn_s), 1);
		assert_int_equal(warning_count(f->src, warn_b), 1);
		json_decref(rec);
	}
	{
		/* longer than any integer, and -9223372036854775809 */
		const struct pex_cell cells[] = {
			CELL("s", "1234567890123456789012345678901234567890"),
			CELL("b", "-9223372036854775809"),
		};

		rec = build(m, f, cells, NCELLS(cells));
		assert_null(json_object_get(rec, "status"));
		assert_null(json_object_get(rec, "bytes"));
		assert_int_equal(warning_count(f->src, warn_b), 2);
		json_decref(rec);
	}
	{
		const struct pex_cell cells[] = {
			CELL("b", "-9223372036854775808"),
		};

		rec = build(m, f, cells, NCELLS(cells));
		assert_int_equal(json_integer_value(json_object_get(rec,
								    "bytes")),
				 INT64_MIN);
		json_decref(rec);
	}
	pex_mapper_free(m);
}

static void test_nulls_and_empties(void **state)
{
	struct fixture *f = *state;
	pex_mapper *m = mapper_ok(PEX_REC_CONTACT,
				  "{\"org\": \"organisation\", \"mail\": "
				  "\"emails[]\", \"first\": \"name.given\","
				  " \"at\": \"collected_at\"}");
	const struct pex_cell cells[] = {
		NULLCELL("org"),      /* SQL NULL, mapped: left out */
		CELL("mail", ""),     /* empty, mapped: left out */
		CELL("first", ""),
		NULLCELL("at"),
		NULLCELL("fax"),      /* SQL NULL, unmapped: JSON null */
		CELL("nickname", ""), /* empty, unmapped: kept as "" */
	};
	json_t *rec = build(m, f, cells, NCELLS(cells)), *extra;

	assert_null(json_object_get(rec, "organisation"));
	assert_null(json_object_get(rec, "emails"));
	assert_null(json_object_get(rec, "name"));
	assert_null(json_object_get(rec, "collected_at"));
	extra = json_object_get(rec, "extra");
	assert_int_equal(json_object_size(extra), 2);
	assert_true(json_is_null(json_object_get(extra, "fax")));
	assert_string_equal(json_string_value(json_object_get(extra,
							      "nickname")),
			    "");
	json_decref(rec);
	pex_mapper_free(m);
}

static void test_unclean_text(void **state)
{
	struct fixture *f = *state;
	pex_mapper *m = mapper_ok(PEX_REC_CONTACT,
				  "{\"org\": \"organisation\", \"mail\": "
				  "\"emails[]\", \"n\": \"name.full\"}");
	const struct pex_cell cells[] = {
		RAW("org", "Caf\xE9 Ltd"), /* Latin-1, not UTF-8 */
		RAW("mail", "a\x01@example.com"),
		RAW("n", "A\0B"),           /* NUL inside the value */
		RAW("col\xFF", "v\xFE"),    /* bad name and value */
	};
	json_t *rec = build(m, f, cells, NCELLS(cells)), *extra;

	assert_string_equal(json_string_value(json_object_get(rec,
							      "organisation")),
			    "Caf" FFFD " Ltd");
	assert_string_equal(json_string_value(json_array_get(json_object_get(
				    rec, "emails"), 0)),
			    "a" FFFD "@example.com");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    rec, "name"), "full")), "A" FFFD "B");
	extra = json_object_get(rec, "extra");
	assert_string_equal(json_string_value(json_object_get(extra,
							      "col" FFFD)),
			    "v" FFFD);
	/* every value is valid JSON text: it dumps and loads back */
	{
		char *s = json_dumps(rec, 0);
		json_t *back = json_loads(s, 0, NULL);

		assert_non_null(back);
		assert_true(json_equal(back, rec));
		json_decref(back);
		free(s);
	}
	json_decref(rec);
	pex_mapper_free(m);
}

static void test_no_fields_and_window(void **state)
{
	struct fixture *f = *state;
	pex_mapper *m = mapper_ok(PEX_REC_CONTACT, NULL);
	struct pex_identity ip;
	const struct pex_cell cells[] = { CELL("a", "1"), CELL("b", "2") };
	json_t *rec = NULL, *mb;

	assert_int_equal(pex_identity_parse(&ip, "ip:203.0.113.7@"
					    "2026-01-03T10:00:00Z/PT1H"), 0);
	assert_int_equal(pex_mapper_build(m, f->src, cells, NCELLS(cells),
					  "r\xFF", &ip, &rec), 0);
	/* no mapping: all in extra, as text */
	assert_int_equal(json_object_size(json_object_get(rec, "extra")), 2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    rec, "extra"), "b")), "2");
	assert_string_equal(json_string_value(json_object_get(rec, "id")),
			    "r" FFFD);
	mb = json_object_get(rec, "matched_by");
	assert_string_equal(json_string_value(json_object_get(mb, "window")),
			    "2026-01-03T10:00:00Z/2026-01-03T11:00:00Z");
	json_decref(rec);
	pex_identity_clear(&ip);
	pex_mapper_free(m);
}


/* A column holding JSON (a database's json_agg of a ticket's messages)
 * lands as structure, its strings cleaned; text that is not JSON stays in
 * extra with a warning. */
static void test_json_column(void **state)
{
	struct fixture *f = *state;
	pex_mapper *m = mapper_ok(PEX_REC_TICKET,
				  "{\"msgs\": \"messages\"}");
	static const char good[] =
		"[{\"at\": \"2026-01-03T10:00:00Z\", \"body_text\": "
		"\"VPN\\u0001 drops\"}, {\"body_text\": \"ok\"}]";
	struct pex_cell cells[] = { { "msgs", good, sizeof(good) - 1 } };
	struct pex_cell bad[] = { { "msgs", "[{not json", 10 } };
	json_t *rec, *msgs;

	assert_int_equal(pex_mapper_build(m, f->src, cells, 1, "7", &f->by,
					  &rec), 0);
	msgs = json_object_get(rec, "messages");
	assert_int_equal(json_array_size(msgs), 2);
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(msgs, 0), "body_text")), "VPN" FFFD " drops");
	json_decref(rec);

	assert_int_equal(pex_mapper_build(m, f->src, bad, 1, "8", &f->by,
					  &rec), 0);
	assert_null(json_object_get(rec, "messages"));
	assert_string_equal(json_string_value(json_object_get(
		json_object_get(rec, "extra"), "msgs")), "[{not json");
	assert_true(warning_count(f->src, "column 'msgs': value is not "
				  "JSON; kept in extra") >= 1);
	json_decref(rec);
	pex_mapper_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths_ok),
		cmocka_unit_test(test_paths_bad),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_ints),
		cmocka_unit_test(test_nulls_and_empties),
		cmocka_unit_test(test_unclean_text),
		cmocka_unit_test(test_no_fields_and_window),
		cmocka_unit_test(test_json_column),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
