/*
 * The csv collector driven through the engine (pex_source_new / collect),
 * on the real address-book exports in $PEX_CORPUS/contacts_csv/ and on
 * small hostile files written by the tests themselves.
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

#include "portex/engine.h"
#include "portex/error.h"

static char tb_dir[4096]; /* $PEX_CORPUS/contacts_csv/thunderbird */
static char rc_dir[4096]; /* $PEX_CORPUS/contacts_csv/roundcube_csv2vcard */
static char tmp_dir[] = "/tmp/pex_csv_test_XXXXXX";
static json_t *contact_props; /* properties of contact.schema.json */

/* ---- helpers --------------------------------------------------------- */

struct sink {
	json_t *records;
	int kinds_ok;
};

static int sink_emit(void *data, enum pex_record_kind kind, json_t *rec)
{
	struct sink *s = data;

	if (kind != PEX_REC_CONTACT)
		s->kinds_ok = 0;
	return json_array_append_new(s->records, rec);
}

/* Every record has the required members and only members the contact
 * schema knows. */
static void check_shape(const json_t *rec)
{
	const char *key;
	json_t *v;

	assert_true(json_is_string(json_object_get(rec, "id")));
	assert_true(json_is_object(json_object_get(rec, "matched_by")));
	assert_true(json_is_object(json_object_get(rec, "extra")));
	json_object_foreach((json_t *)rec, key, v) {
		if (json_object_get(contact_props, key) == NULL)
			fail_msg("record has member '%s' the contact schema "
				 "lacks",
				 key);
	}
}

struct run {
	struct pex_source *src;
	json_t *records;
	int rc_new;
	int rc_collect;
	char err[1024];
};

/*
 * Create a source "src" from options (JSON text) with relative paths
 * resolved against basedir, and collect for the identities given as
 * "type:value" strings (NULL-terminated). The source is kept in r->src
 * for inspection; run_free() releases everything.
 */
static void run_ids(struct run *r, const char *basedir, const char *options,
		    const char *const *ids)
{
	struct pex_identity_set set = {0};
	struct sink s = {json_array(), 1};
	json_error_t jerr;
	json_t *opts;
	size_t i;

	memset(r, 0, sizeof(*r));
	opts = json_loads(options, 0, &jerr);
	if (opts == NULL)
		fail_msg("bad test options %s: %s", options, jerr.text);
	for (i = 0; ids && ids[i]; i++) {
		struct pex_identity id;

		assert_int_equal(pex_identity_parse(&id, ids[i]), 0);
		assert_int_equal(pex_identity_set_add(&set, &id), 0);
		pex_identity_clear(&id);
	}
	r->records = s.records;
	r->rc_new = pex_source_new(&r->src, "src", "csv", opts, basedir);
	if (r->rc_new == 0) {
		r->rc_collect = pex_source_collect(r->src, &set, sink_emit,
						   &s);
	}
	snprintf(r->err, sizeof(r->err), "%s", pex_error_last());
	assert_true(s.kinds_ok);
	for (i = 0; i < json_array_size(r->records); i++)
		check_shape(json_array_get(r->records, i));
	pex_identity_set_clear(&set);
	json_decref(opts);
}

static void run1(struct run *r, const char *basedir, const char *options,
		 const char *identity)
{
	const char *ids[] = {identity, NULL};

	run_ids(r, basedir, options, ids);
}

static void run_free(struct run *r)
{
	pex_source_free(r->src);
	json_decref(r->records);
}

static void assert_ok(const struct run *r)
{
	if (r->rc_new != 0 || r->rc_collect != 0)
		fail_msg("source failed (%d/%d): %s", r->rc_new,
			 r->rc_collect, r->err);
}

static void assert_err(const struct run *r, const char *needle)
{
	if (r->rc_new == 0 && r->rc_collect == 0)
		fail_msg("source succeeded; expected an error with \"%s\"",
			 needle);
	if (strstr(r->err, needle) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", r->err, needle);
}

/* The string at a "/"-separated path of object members. */
static const char *str_at(const json_t *rec, const char *path)
{
	char key[256];
	const json_t *v = rec;
	const char *p = path;

	while (v != NULL && *p != '\0') {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		assert_true(len < sizeof(key));
		memcpy(key, p, len);
		key[len] = '\0';
		v = json_object_get(v, key);
		p += len + (slash ? 1 : 0);
	}
	if (!json_is_string(v))
		fail_msg("%s is not a string in the record", path);
	return json_string_value(v);
}

static void assert_matched_by(const json_t *rec, const char *type,
			      const char *value)
{
	assert_string_equal(str_at(rec, "matched_by/type"), type);
	assert_string_equal(str_at(rec, "matched_by/value"), value);
}

/* Write a file into the test's temporary directory. */
static void write_file(const char *name, const char *data, size_t len)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp_dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

#define write_text(name, text) write_file((name), (text), strlen(text))

/* ---- Thunderbird exports ---------------------------------------------- */

#define TB_FIELDS                                                           \
	"\"fields\": {\"First Name\": \"name.given\", \"Last Name\": "     \
	"\"name.family\", \"Display Name\": \"name.full\", \"Primary "     \
	"Email\": \"emails[]\", \"Secondary Email\": \"emails[]\", "       \
	"\"Organization\": \"organisation\", \"Notes\": \"notes\"}"

static void check_contact_two(const json_t *rec)
{
	const json_t *extra = json_object_get(rec, "extra");
	const json_t *emails = json_object_get(rec, "emails");

	assert_matched_by(rec, "email", "contact2@invalid");
	assert_string_equal(str_at(rec, "name/given"), "contact");
	assert_string_equal(str_at(rec, "name/family"), "two");
	assert_string_equal(str_at(rec, "name/full"), "contact number two");
	assert_int_equal(json_array_size(emails), 1);
	assert_string_equal(json_string_value(json_array_get(emails, 0)),
			    "contact2@invalid");
	/* Quoted fields: a comma, a tab, a bare CR and a line break. */
	assert_string_equal(str_at(extra, "Custom 1"), "custom, 1");
	assert_string_equal(str_at(extra, "Custom 2"), "custom\t2");
	assert_string_equal(str_at(extra, "Custom 3"), "custom\r3");
	assert_string_equal(str_at(extra, "Custom 4"), "custom\n4");
	assert_string_equal(str_at(extra, "Job Title"), "\"worker\"");
	assert_string_equal(str_at(rec, "notes"),
			    "here's some unicode text\xE2\x80\xA6");
	/* Unmapped empty columns are kept as "" in extra; mapped ones are
	 * not repeated there. */
	assert_string_equal(str_at(extra, "Nickname"), "");
	assert_null(json_object_get(extra, "Primary Email"));
	assert_null(json_object_get(extra, "First Name"));
}

static void test_tb_addrbook_match(void **state)
{
	struct run r;

	run1(&r, tb_dir,
	     "{\"path\": \"addrbook_export.csv\", \"match\": {\"Primary "
	     "Email\": \"email\", \"Secondary Email\": \"email\"}, " TB_FIELDS
	     "}",
	     "email:contact2@invalid");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	check_contact_two(json_array_get(r.records, 0));
	assert_string_equal(str_at(json_array_get(r.records, 0), "id"),
			    "addrbook_export.csv:3");
	run_free(&r);
}

static void test_tb_other_people_not_returned(void **state)
{
	const char *ids[] = {"email:alice@example.com", "phone:+441534000000",
			     NULL};
	struct run r;

	run_ids(&r, tb_dir,
		"{\"path\": \"addrbook_export.csv\", \"match\": {\"Primary "
		"Email\": \"email\"}}",
		ids);
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 0);
	run_free(&r);
	/* contact1@invalid gets contact one only. */
	run1(&r, tb_dir,
	     "{\"path\": \"addrbook_export.csv\", \"match\": {\"Primary "
	     "Email\": \"email\"}}",
	     "email:contact1@invalid");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	assert_string_equal(str_at(json_array_get(r.records, 0),
				   "extra/Display Name"),
			    "contact number one");
	run_free(&r);
}

static void test_tb_tab_delimited(void **state)
{
	struct run r;

	run1(&r, tb_dir,
	     "{\"path\": \"addrbook_export_tab.txt\", \"delimiter\": \"tab\", "
	     "\"match\": {\"Primary Email\": \"email\"}, " TB_FIELDS "}",
	     "email:contact2@invalid");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	check_contact_two(json_array_get(r.records, 0));
	run_free(&r);
	/* A literal tab character works as well. */
	run1(&r, tb_dir,
	     "{\"path\": \"addrbook_export_tab.txt\", \"delimiter\": \"\\t\", "
	     "\"match\": {\"Primary Email\": \"email\"}}",
	     "email:contact2@invalid");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	run_free(&r);
	/* Read with the wrong delimiter the file is one column wide and
	 * has no "Primary Email" column: a clear error, not zero rows. */
	run1(&r, tb_dir,
	     "{\"path\": \"addrbook_export_tab.txt\", \"match\": {\"Primary "
	     "Email\": \"email\"}}",
	     "email:contact2@invalid");
	assert_err(&r, "match: column 'Primary Email' is not in");
	run_free(&r);
}

static void test_tb_semicolon(void **state)
{
	struct run r;
	const json_t *rec;

	run1(&r, tb_dir,
	     "{\"path\": \"csv_semicolon.csv\", \"delimiter\": \";\", "
	     "\"match\": {\"Primary Email\": \"email\"}, \"fields\": "
	     "{\"Display Name\": \"name.full\"}}",
	     "email:jane@doe.invalid");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	rec = json_array_get(r.records, 0);
	assert_string_equal(str_at(rec, "id"), "csv_semicolon.csv:3");
	assert_string_equal(str_at(rec, "name/full"), "Jane Doe");
	assert_string_equal(str_at(rec, "extra/First Name"), "Jane");
	assert_string_equal(str_at(rec, "extra/Primary Email"),
			    "jane@doe.invalid");
	assert_matched_by(rec, "email", "jane@doe.invalid");
	run_free(&r);
}

static void test_tb_no_header(void **state)
{
	struct run r;
	const json_t *rec;

	run1(&r, tb_dir,
	     "{\"path\": \"csv_no_header.csv\", \"header\": false, "
	     "\"columns\": [\"Display Name\", \"First Name\", \"Last Name\", "
	     "\"Email\"], \"match\": {\"Email\": \"email\"}, \"fields\": "
	     "{\"Email\": \"emails[]\", \"Last Name\": \"name.family\"}}",
	     "email:john@doe.invalid");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	rec = json_array_get(r.records, 0);
	/* Without a header the first line is data: John is on line 1. */
	assert_string_equal(str_at(rec, "id"), "csv_no_header.csv:1");
	assert_string_equal(str_at(rec, "name/family"), "Doe");
	assert_string_equal(str_at(rec, "extra/Display Name"), "John Doe");
	run_free(&r);
	/* header: false needs columns. */
	run1(&r, tb_dir,
	     "{\"path\": \"csv_no_header.csv\", \"header\": false, "
	     "\"match\": {\"Email\": \"email\"}}",
	     "email:john@doe.invalid");
	assert_err(&r, "columns");
	assert_int_not_equal(r.rc_new, 0);
	run_free(&r);
	/* Too few columns named: the row count differs, with file:line. */
	run1(&r, tb_dir,
	     "{\"path\": \"csv_no_header.csv\", \"header\": false, "
	     "\"columns\": [\"Name\", \"Email\"], \"match\": {\"Email\": "
	     "\"email\"}}",
	     "email:john@doe.invalid");
	assert_err(&r, "csv_no_header.csv:1: record has 4 fields but the "
		       "columns given are 2");
	run_free(&r);
}

static void test_tb_shiftjis(void **state)
{
	static const char *opts_utf8 =
		"{\"path\": \"shiftjis_addressbook.csv\", \"match\": "
		"{\"Primary Email\": \"email\"}}";
	static const char *opts_sjis =
		"{\"path\": \"shiftjis_addressbook.csv\", \"encoding\": "
		"\"shift_jis\", \"match\": {\"Primary Email\": \"email\"}, "
		"\"fields\": {\"Display Name\": \"name.full\"}}";
	/* "名無しの権兵衛@host.invalid" */
	static const char *email =
		"email:\xE5\x90\x8D\xE7\x84\xA1\xE3\x81\x97\xE3\x81\xAE"
		"\xE6\xA8\xA9\xE5\x85\xB5\xE8\xA1\x9B@host.invalid";
	struct run r;
	const json_t *rec;

	run1(&r, tb_dir, opts_utf8, email);
	assert_err(&r, "shiftjis_addressbook.csv:2: not valid UTF-8 at byte "
		       "offset 428");
	assert_err(&r, "encoding");
	assert_int_equal(r.rc_collect, PEX_EINVALID);
	run_free(&r);

	run1(&r, tb_dir, opts_sjis, email);
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	rec = json_array_get(r.records, 0);
	assert_string_equal(str_at(rec, "name/full"),
			    "\xE5\x90\x8D\xE7\x84\xA1\xE3\x81\x97\xE3\x81\xAE"
			    "\xE6\xA8\xA9\xE5\x85\xB5\xE8\xA1\x9B");
	assert_string_equal(str_at(rec, "extra/First Name"),
			    "\xE6\xA8\xA9\xE5\x85\xB5\xE8\xA1\x9B");
	assert_string_equal(str_at(rec, "id"), "shiftjis_addressbook.csv:2");
	run_free(&r);
}

static void test_tb_utf16(void **state)
{
	struct run r;
	const json_t *rec;

	run1(&r, tb_dir,
	     "{\"path\": \"utf16_addressbook.csv\", \"match\": {\"Primary "
	     "Email\": \"email\"}}",
	     "email:johndoe@host.invalid");
	assert_err(&r, "utf16_addressbook.csv:1:");
	assert_err(&r, "set `encoding: utf-16`");
	run_free(&r);

	run1(&r, tb_dir,
	     "{\"path\": \"utf16_addressbook.csv\", \"encoding\": \"utf-16\", "
	     "\"match\": {\"Primary Email\": \"email\"}, \"fields\": "
	     "{\"First Name\": \"name.given\"}}",
	     "email:johndoe@host.invalid");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	rec = json_array_get(r.records, 0);
	assert_string_equal(str_at(rec, "name/given"), "John");
	assert_string_equal(str_at(rec, "extra/Display Name"), "John Doe");
	/* The header's trailing comma makes an unnamed last column. */
	assert_string_equal(str_at(rec, "extra/column_38"), "");
	run_free(&r);
}

static void test_tb_ragged_files_fail(void **state)
{
	struct run r;

	/* Its first line uses commas, the others tabs. */
	run1(&r, tb_dir,
	     "{\"path\": \"tab_comma_mixed.csv\", \"match\": "
	     "{\"1@host.invalid\": \"email\"}}",
	     "email:2@host.invalid");
	assert_err(&r, "tab_comma_mixed.csv:2: record has 1 fields but the "
		       "header has 26");
	run_free(&r);
	/* Header of 37 columns, rows of 38 (a trailing comma): strict. */
	run1(&r, tb_dir,
	     "{\"path\": \"basic_csv_addressbook.csv\", \"match\": "
	     "{\"Primary Email\": \"email\"}}",
	     "email:jane@doe.invalid");
	assert_err(&r, "basic_csv_addressbook.csv:2: record has 38 fields "
		       "but the header has 37");
	run_free(&r);
}

static void test_tb_quote_file(void **state)
{
	struct run r;

	/* No e-mail in it at all; its phone, written with punctuation,
	 * matches the normalised identity. */
	run1(&r, tb_dir,
	     "{\"path\": \"quote.csv\", \"match\": {\"Primary Email\": "
	     "\"email\", \"Work Phone\": \"phone\"}}",
	     "phone:(800) 000-0000");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	assert_matched_by(json_array_get(r.records, 0), "phone",
			  "8000000000");
	assert_string_equal(str_at(json_array_get(r.records, 0),
				   "extra/Organization"),
			    "Acer America");
	run_free(&r);
}

/* ---- Roundcube's csv2vcard samples ------------------------------------ */

static void test_rc_gmail(void **state)
{
	struct run r;
	const json_t *rec;

	run1(&r, rc_dir,
	     "{\"path\": \"gmail.csv\", \"match\": {\"E-mail 1 - Value\": "
	     "\"email\", \"E-mail 2 - Value\": \"email\", \"E-mail 3 - "
	     "Value\": \"email\", \"E-mail 4 - Value\": \"email\"}, "
	     "\"fields\": {\"Name\": \"name.full\", \"Family Name\": "
	     "\"name.family\", \"Birthday\": \"birthday\"}}",
	     "email:Work@Email.PL");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	rec = json_array_get(r.records, 0);
	assert_matched_by(rec, "email", "work@email.pl");
	assert_string_equal(str_at(rec, "name/full"),
			    "Prefix Firstname Middle Lastname Suffix");
	assert_string_equal(str_at(rec, "birthday"), "1975-12-12");
	assert_string_equal(str_at(rec, "extra/Notes"), "note\"note");
	assert_string_equal(str_at(rec, "extra/Address 1 - Formatted"),
			    "home_street\nhome_pobox\n"
			    "home_city, home_state home_zip\nhome_country");
	assert_string_equal(str_at(rec, "id"), "gmail.csv:2");
	run_free(&r);
}

static void test_rc_email_single_column(void **state)
{
	struct run r;

	run1(&r, rc_dir,
	     "{\"path\": \"email.csv\", \"match\": {\"Primary Email\": "
	     "\"email\"}, \"fields\": {\"Primary Email\": \"emails[]\"}}",
	     "email:test3@domain.tld");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	assert_string_equal(str_at(json_array_get(r.records, 0), "id"),
			    "email.csv:4");
	run_free(&r);
}

static void test_rc_outlook_any_column(void **state)
{
	const char *ids[] = {"email:test3@domain.tld",
			     "email:test2@domain.tld", NULL};
	struct run r;

	run_ids(&r, rc_dir,
		"{\"path\": \"outlook.csv\", \"match\": {\"E-mail Address\": "
		"\"email\", \"E-mail 2 Address\": \"email\", \"E-mail 3 "
		"Address\": \"email\"}}",
		ids);
	assert_ok(&r);
	/* One row, emitted once, credited to the first identity in the
	 * order given that it matches (whatever the column). */
	assert_int_equal(json_array_size(r.records), 1);
	assert_matched_by(json_array_get(r.records, 0), "email",
			  "test3@domain.tld");
	run_free(&r);

	{
		const char *rev[] = {"email:test2@domain.tld",
				     "email:test3@domain.tld", NULL};

		run_ids(&r, rc_dir,
			"{\"path\": \"outlook.csv\", \"match\": {\"E-mail "
			"Address\": \"email\", \"E-mail 2 Address\": "
			"\"email\", \"E-mail 3 Address\": \"email\"}}",
			rev);
		assert_ok(&r);
		assert_int_equal(json_array_size(r.records), 1);
		assert_matched_by(json_array_get(r.records, 0), "email",
				  "test2@domain.tld");
		run_free(&r);
	}
}

static void test_rc_all_bom(void **state)
{
	struct run r;
	const json_t *rec;

	/* The header starts with a UTF-8 BOM; "Display Name" must still be
	 * found by name. */
	run1(&r, rc_dir,
	     "{\"path\": \"all.csv\", \"match\": {\"Email Work\": \"email\"}, "
	     "\"fields\": {\"Display Name\": \"name.full\", \"Company\": "
	     "\"organisation\"}}",
	     "email:work@example.com");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	rec = json_array_get(r.records, 0);
	assert_string_equal(str_at(rec, "name/full"), "Display Name");
	assert_string_equal(str_at(rec, "organisation"), "Company");
	assert_string_equal(str_at(rec, "extra/Website Work"),
			    "https://work");
	run_free(&r);
}

static void test_rc_identities_reported(void **state)
{
	const struct pex_identity_set *found;
	struct run r;

	run1(&r, rc_dir,
	     "{\"path\": \"tb_plain.csv\", \"match\": {\"Primary Email\": "
	     "\"email\"}, \"identities\": {\"Secondary Email\": \"email\", "
	     "\"Mobile Number\": \"phone\", \"Screen Name\": \"username\", "
	     "\"Nickname\": \"username\"}}",
	     "email:test@domain.tld");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	found = pex_source_identities(r.src);
	/* Screen Name is empty and Mobile Number ("mobile") has no digit:
	 * no identity from them. */
	assert_int_equal(found->count, 2);
	assert_string_equal(found->items[0].type, "email");
	assert_string_equal(found->items[0].value, "next@domain.tld");
	assert_string_equal(found->items[0].from_record,
			    "src:tb_plain.csv:2");
	assert_string_equal(found->items[1].type, "username");
	assert_string_equal(found->items[1].value, "Nick");
	run_free(&r);

	/* Rows that do not match report nothing. */
	run1(&r, rc_dir,
	     "{\"path\": \"tb_plain.csv\", \"match\": {\"Primary Email\": "
	     "\"email\"}, \"identities\": {\"Secondary Email\": \"email\"}}",
	     "email:someone@else.tld");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 0);
	assert_int_equal(pex_source_identities(r.src)->count, 0);
	run_free(&r);
}

/* ---- hostile files of our own ----------------------------------------- */

static const char people_csv[] =
	"id,Name,Email,Phone,Note\r\n"
	"1,Alice,alice@example.com,+44 1534 000000,first\r\n"
	"2,Mallory,malice@example.com,,prefix\r\n"
	"3,Trudy,alice@example.co,,truncated\r\n"
	"4,Eve,alice@example.com.evil.net,,suffix\r\n"
	"5,Alice again,\" ALICE@Example.COM \",,case and spaces\r\n"
	"6,Sean,o'brien@example.com,,quote\r\n"
	"7,Bobby,\"o'brien@example.com' OR '1'='1\",,sql\r\n"
	"8,Percent,%,,like wildcard\r\n"
	"9,Star,*,,glob\r\n"
	"10,Nobody,,,empty\r\n"
	"11,Ctl,\"ctl\x01@example.com\",,\"bell\x07 here\"\r\n"
	"12,\"Multi\nLine\",alice@example.com,,\"a \"\"quoted\"\" note\"\r\n";

#define PEOPLE_OPTS                                                         \
	"{\"path\": \"people.csv\", \"id_column\": \"id\", \"match\": "     \
	"{\"Email\": \"email\", \"Phone\": \"phone\"}}"

static void test_exact_email_matching(void **state)
{
	struct run r;
	size_t i;
	static const char *want[] = {"1", "5", "12"};

	write_text("people.csv", people_csv);
	run1(&r, tmp_dir, PEOPLE_OPTS, "email:alice@example.com");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 3);
	for (i = 0; i < 3; i++) {
		const json_t *rec = json_array_get(r.records, i);

		assert_string_equal(str_at(rec, "id"), want[i]);
		assert_matched_by(rec, "email", "alice@example.com");
	}
	assert_string_equal(str_at(json_array_get(r.records, 2),
				   "extra/Name"),
			    "Multi\nLine");
	assert_string_equal(str_at(json_array_get(r.records, 2),
				   "extra/Note"),
			    "a \"quoted\" note");
	run_free(&r);
}

static void test_subject_identity_not_normalised(void **state)
{
	struct pex_identity_set set = {0};
	struct pex_identity id = {0};
	struct sink s = {json_array(), 1};
	struct pex_source *src = NULL;
	json_t *opts = json_loads(PEOPLE_OPTS, 0, NULL);

	/* An identity handed in raw (not via pex_identity_parse) is
	 * normalised by the collector too. */
	write_text("people.csv", people_csv);
	id.type = "email";
	id.value = "  Alice@EXAMPLE.com";
	assert_int_equal(pex_identity_set_add(&set, &id), 0);
	assert_int_equal(pex_source_new(&src, "src", "csv", opts, tmp_dir),
			 0);
	assert_int_equal(pex_source_collect(src, &set, sink_emit, &s), 0);
	assert_int_equal(json_array_size(s.records), 3);
	pex_source_free(src);
	pex_identity_set_clear(&set);
	json_decref(s.records);
	json_decref(opts);
}

static void test_quotes_and_sql_metacharacters(void **state)
{
	struct run r;

	write_text("people.csv", people_csv);
	run1(&r, tmp_dir, PEOPLE_OPTS, "email:o'brien@example.com");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	assert_string_equal(str_at(json_array_get(r.records, 0), "id"), "6");
	assert_matched_by(json_array_get(r.records, 0), "email",
			  "o'brien@example.com");
	run_free(&r);
	/* The injection text matches only itself. */
	run1(&r, tmp_dir, PEOPLE_OPTS,
	     "email:o'brien@example.com' OR '1'='1");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	assert_string_equal(str_at(json_array_get(r.records, 0), "id"), "7");
	run_free(&r);
	/* Wildcards of LIKE and globs are plain characters. */
	run1(&r, tmp_dir, PEOPLE_OPTS, "email:%");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	assert_string_equal(str_at(json_array_get(r.records, 0), "id"), "8");
	run_free(&r);
}

static void test_phone_matching(void **state)
{
	struct run r;

	write_text("people.csv", people_csv);
	run1(&r, tmp_dir, PEOPLE_OPTS, "phone:+441534000000");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	assert_string_equal(str_at(json_array_get(r.records, 0), "id"), "1");
	assert_matched_by(json_array_get(r.records, 0), "phone",
			  "+441534000000");
	run_free(&r);
	/* A type no match column uses matches nothing. */
	run1(&r, tmp_dir, PEOPLE_OPTS, "customer_id:1");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 0);
	run_free(&r);
}

static void test_control_characters_replaced(void **state)
{
	json_t *warnings;
	struct run r;

	/* Control characters in values are replaced with U+FFFD and
	 * counted as a warning; the row itself is kept whole. */
	write_text("ctl.csv", "Email,Note\nbob@example.com,\"x\x01y\x1Fz\"\n");
	run1(&r, tmp_dir,
	     "{\"path\": \"ctl.csv\", \"match\": {\"Email\": \"email\"}}",
	     "email:bob@example.com");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	assert_string_equal(str_at(json_array_get(r.records, 0),
				   "extra/Note"),
			    "x\xEF\xBF\xBDy\xEF\xBF\xBDz");
	warnings = pex_source_warnings(r.src);
	assert_int_equal(json_array_size(warnings), 1);
	json_decref(warnings);
	run_free(&r);
}

static void test_weak_identity_not_used(void **state)
{
	struct run r;

	/* A CSV row carries no time to check an IP's window against, so
	 * a windowed identity never matches (a shared NAT address must not
	 * hand over other people's rows). */
	write_text("ip.csv", "IP,Email\n203.0.113.7,x@example.com\n");
	run1(&r, tmp_dir,
	     "{\"path\": \"ip.csv\", \"match\": {\"IP\": \"ip\"}}",
	     "ip:203.0.113.7@2026-01-03T09:30:00Z/PT30M");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 0);
	run_free(&r);
}

static void test_strong_ip_identity_matches(void **state)
{
	struct pex_identity_set set = {0};
	struct pex_identity id = {0};
	struct sink s = {json_array(), 1};
	struct pex_source *src = NULL;
	json_t *opts = json_loads("{\"path\": \"ip.csv\", \"match\": "
				  "{\"IP\": \"ip\"}}",
				  0, NULL);

	/* The same address without a window (as a caller could build it
	 * by hand) does match: the window is what keeps the row out
	 * above. */
	write_text("ip.csv", "IP,Email\n203.0.113.7,x@example.com\n");
	id.type = "ip";
	id.value = "203.0.113.7";
	assert_int_equal(pex_identity_set_add(&set, &id), 0);
	assert_int_equal(pex_source_new(&src, "src", "csv", opts, tmp_dir),
			 0);
	assert_int_equal(pex_source_collect(src, &set, sink_emit, &s), 0);
	assert_int_equal(json_array_size(s.records), 1);
	pex_source_free(src);
	pex_identity_set_clear(&set);
	json_decref(s.records);
	json_decref(opts);
}

static void test_broken_file_fails_source(void **state)
{
	struct run r;

	/* The matching row comes first; the broken one later still fails
	 * the whole source. */
	write_text("broken.csv", "Email,Note\n"
				 "bob@example.com,ok\n"
				 "carol@example.com,bad \"quote\n");
	run1(&r, tmp_dir,
	     "{\"path\": \"broken.csv\", \"match\": {\"Email\": \"email\"}}",
	     "email:bob@example.com");
	assert_err(&r, "broken.csv:3: quote inside an unquoted field");
	assert_err(&r, "source src");
	run_free(&r);

	write_text("open.csv", "Email,Note\nbob@example.com,\"never closed\n");
	run1(&r, tmp_dir,
	     "{\"path\": \"open.csv\", \"match\": {\"Email\": \"email\"}}",
	     "email:bob@example.com");
	assert_err(&r, "open.csv:2: quoted field opened on line 2 is not "
		       "closed");
	run_free(&r);

	write_text("latin1.csv", "Email,City\nbob@example.com,M\xFCnchen\n");
	run1(&r, tmp_dir,
	     "{\"path\": \"latin1.csv\", \"match\": {\"Email\": \"email\"}}",
	     "email:bob@example.com");
	assert_err(&r, "latin1.csv:2: not valid UTF-8 at byte offset 28");
	run_free(&r);
	run1(&r, tmp_dir,
	     "{\"path\": \"latin1.csv\", \"encoding\": \"iso-8859-1\", "
	     "\"match\": {\"Email\": \"email\"}}",
	     "email:bob@example.com");
	assert_ok(&r);
	assert_string_equal(str_at(json_array_get(r.records, 0),
				   "extra/City"),
			    "M\xC3\xBCnchen");
	run_free(&r);

	write_file("nul.csv", "Email\nbob@example.com\0\n", 22);
	run1(&r, tmp_dir,
	     "{\"path\": \"nul.csv\", \"match\": {\"Email\": \"email\"}}",
	     "email:bob@example.com");
	assert_err(&r, "nul.csv:2: NUL byte at byte offset 21");
	run_free(&r);
}

static void test_limits_configurable(void **state)
{
	struct run r;

	write_text("long.csv", "Email,Note\nbob@example.com,"
			       "0123456789012345678901234567890123456789\n");
	run1(&r, tmp_dir,
	     "{\"path\": \"long.csv\", \"max_field_bytes\": 32, \"match\": "
	     "{\"Email\": \"email\"}}",
	     "email:bob@example.com");
	assert_err(&r, "long.csv:2: field 2 is longer than the limit of 32 "
		       "bytes");
	assert_int_equal(r.rc_collect, PEX_ELIMIT);
	run_free(&r);
	run1(&r, tmp_dir,
	     "{\"path\": \"long.csv\", \"max_columns\": 1, \"match\": "
	     "{\"Email\": \"email\"}}",
	     "email:bob@example.com");
	assert_err(&r, "more than the limit of 1 fields");
	run_free(&r);
	run1(&r, tmp_dir,
	     "{\"path\": \"long.csv\", \"max_record_bytes\": -1, \"match\": "
	     "{\"Email\": \"email\"}}",
	     "email:bob@example.com");
	assert_err(&r, "max_record_bytes must be between");
	run_free(&r);
}

static void test_empty_and_header_only(void **state)
{
	struct run r;

	write_text("empty.csv", "");
	run1(&r, tmp_dir,
	     "{\"path\": \"empty.csv\", \"match\": {\"Email\": \"email\"}}",
	     "email:bob@example.com");
	assert_err(&r, "empty.csv: the file is empty, but a header row was "
		       "expected");
	run_free(&r);
	write_text("header.csv", "\xEF\xBB\xBF" "Email,Name\r\n");
	run1(&r, tmp_dir,
	     "{\"path\": \"header.csv\", \"match\": {\"Email\": \"email\"}}",
	     "email:bob@example.com");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 0);
	run_free(&r);
}

static void test_columns_resolved(void **state)
{
	struct run r;
	const json_t *extra;

	write_text("dup.csv", "Email,Note,Note,,Note (2)\n"
			      "bob@example.com,a,b,c,d\n");
	run1(&r, tmp_dir,
	     "{\"path\": \"dup.csv\", \"match\": {\"Email\": \"email\"}}",
	     "email:bob@example.com");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	extra = json_object_get(json_array_get(r.records, 0), "extra");
	/* No value in extra overwrites another. */
	assert_int_equal(json_object_size(extra), 5);
	assert_string_equal(str_at(extra, "Note"), "a");
	assert_string_equal(str_at(extra, "Note (2)"), "b");
	assert_string_equal(str_at(extra, "column_4"), "c");
	assert_string_equal(str_at(extra, "Note (2) (2)"), "d");
	run_free(&r);
	/* Matching on a repeated column is ambiguous: refused. */
	write_text("dupmail.csv", "Email,Email\na@x.org,bob@example.com\n");
	run1(&r, tmp_dir,
	     "{\"path\": \"dupmail.csv\", \"match\": {\"Email\": \"email\"}}",
	     "email:bob@example.com");
	assert_err(&r, "match: column 'Email' occurs twice");
	run_free(&r);
	/* A mapped column the file lacks. */
	run1(&r, tmp_dir,
	     "{\"path\": \"dup.csv\", \"match\": {\"Email\": \"email\"}, "
	     "\"fields\": {\"Phone\": \"phones[]\"}}",
	     "email:bob@example.com");
	assert_err(&r, "fields: column 'Phone' is not in");
	run_free(&r);
}

static void test_id_column(void **state)
{
	const struct pex_identity_set *found;
	struct run r;

	write_text("crm.csv", "Customer,Email\nC-17,bob@example.com\n"
			      ",carol@example.com\n");
	run1(&r, tmp_dir,
	     "{\"path\": \"crm.csv\", \"id_column\": \"Customer\", \"match\": "
	     "{\"Email\": \"email\"}, \"identities\": {\"Customer\": "
	     "\"customer_id\"}}",
	     "email:bob@example.com");
	assert_ok(&r);
	assert_int_equal(json_array_size(r.records), 1);
	assert_string_equal(str_at(json_array_get(r.records, 0), "id"),
			    "C-17");
	found = pex_source_identities(r.src);
	assert_int_equal(found->count, 1);
	assert_string_equal(found->items[0].type, "customer_id");
	assert_string_equal(found->items[0].value, "C-17");
	assert_string_equal(found->items[0].from_record, "src:C-17");
	run_free(&r);
	run1(&r, tmp_dir,
	     "{\"path\": \"crm.csv\", \"id_column\": \"Customer\", \"match\": "
	     "{\"Email\": \"email\"}}",
	     "email:carol@example.com");
	assert_err(&r, "crm.csv:3: id_column 'Customer' is empty");
	run_free(&r);
}

static void test_bad_options(void **state)
{
	static const char *bad[][2] = {
		{"{\"match\": {\"E\": \"email\"}}", "'path' is required"},
		{"{\"path\": \"x.csv\"}", "'match' is required"},
		{"{\"path\": \"x.csv\", \"match\": {}}",
		 "at least one column"},
		{"{\"path\": \"x.csv\", \"match\": {\"E\": 1}}",
		 "identity type"},
		{"{\"path\": \"x.csv\", \"match\": {\"E\": \"email\"}, "
		 "\"delimiter\": \";;\"}",
		 "delimiter must be one character"},
		{"{\"path\": \"x.csv\", \"match\": {\"E\": \"email\"}, "
		 "\"delimiter\": \"\\\"\"}",
		 "delimiter must be an ASCII character"},
		{"{\"path\": \"x.csv\", \"match\": {\"E\": \"email\"}, "
		 "\"encoding\": \"klingon\"}",
		 "unknown encoding 'klingon'"},
		{"{\"path\": \"x.csv\", \"match\": {\"E\": \"email\"}, "
		 "\"kind\": \"pizza\"}",
		 "unknown record kind 'pizza'"},
		{"{\"path\": \"x.csv\", \"match\": {\"E\": \"email\"}, "
		 "\"fields\": {\"E\": \"shoe_size\"}}",
		 "shoe_size"},
		{"{\"path\": \"x.csv\", \"match\": {\"E\": \"email\"}, "
		 "\"columns\": [\"E\"]}",
		 "only used with header: false"},
		{"{\"path\": \"x.csv\", \"header\": false, \"columns\": "
		 "[\"A\"], \"match\": {\"E\": \"email\"}}",
		 "match: 'E' is not one of `columns`"},
		{"{\"path\": \"x.csv\", \"match\": {\"E\": \"email\"}, "
		 "\"colour\": \"red\"}",
		 "unknown option 'colour'"},
	};
	struct run r;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		run1(&r, tmp_dir, bad[i][0], "email:bob@example.com");
		assert_int_not_equal(r.rc_new, 0);
		assert_null(r.src);
		assert_err(&r, bad[i][1]);
		assert_err(&r, "source src");
		run_free(&r);
	}
}

static void test_missing_file(void **state)
{
	struct run r;

	run1(&r, tmp_dir,
	     "{\"path\": \"no/such.csv\", \"match\": {\"E\": \"email\"}}",
	     "email:bob@example.com");
	assert_int_equal(r.rc_new, 0);
	assert_int_equal(r.rc_collect, PEX_EIO);
	assert_err(&r, "no/such.csv");
	run_free(&r);
}

/* ---- setup ------------------------------------------------------------ */

static int load_schema(const char *srcdir)
{
	char path[4200];
	json_t *schema;

	snprintf(path, sizeof(path), "%s/schemas/v1/contact.schema.json",
		 srcdir);
	schema = json_load_file(path, 0, NULL);
	if (schema == NULL)
		return -1;
	contact_props = json_incref(json_object_get(schema, "properties"));
	json_decref(schema);
	return contact_props ? 0 : -1;
}

static void remove_tmp(void)
{
	static const char *files[] = {
		"people.csv", "ctl.csv",  "broken.csv",  "open.csv",
		"latin1.csv", "nul.csv",  "long.csv",    "empty.csv",
		"header.csv", "dup.csv",  "dupmail.csv", "crm.csv",
		"ip.csv",
	};
	char path[4200];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmp_dir, files[i]);
		unlink(path);
	}
	rmdir(tmp_dir);
}

int main(void)
{
	const char *corpus = getenv("PEX_CORPUS");
	const char *srcdir = getenv("PEX_SOURCE_DIR");
	struct stat st;
	int failed;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tb_addrbook_match),
		cmocka_unit_test(test_tb_other_people_not_returned),
		cmocka_unit_test(test_tb_tab_delimited),
		cmocka_unit_test(test_tb_semicolon),
		cmocka_unit_test(test_tb_no_header),
		cmocka_unit_test(test_tb_shiftjis),
		cmocka_unit_test(test_tb_utf16),
		cmocka_unit_test(test_tb_ragged_files_fail),
		cmocka_unit_test(test_tb_quote_file),
		cmocka_unit_test(test_rc_gmail),
		cmocka_unit_test(test_rc_email_single_column),
		cmocka_unit_test(test_rc_outlook_any_column),
		cmocka_unit_test(test_rc_all_bom),
		cmocka_unit_test(test_rc_identities_reported),
		cmocka_unit_test(test_exact_email_matching),
		cmocka_unit_test(test_subject_identity_not_normalised),
		cmocka_unit_test(test_quotes_and_sql_metacharacters),
		cmocka_unit_test(test_phone_matching),
		cmocka_unit_test(test_control_characters_replaced),
		cmocka_unit_test(test_weak_identity_not_used),
		cmocka_unit_test(test_strong_ip_identity_matches),
		cmocka_unit_test(test_broken_file_fails_source),
		cmocka_unit_test(test_limits_configurable),
		cmocka_unit_test(test_empty_and_header_only),
		cmocka_unit_test(test_columns_resolved),
		cmocka_unit_test(test_id_column),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_missing_file),
	};

	if (corpus == NULL || stat(corpus, &st) != 0 || !S_ISDIR(st.st_mode)) {
		printf("csv_test: skipped: the test corpus is absent "
		       "(PEX_CORPUS=%s); it lives in ../shared/corpus\n",
		       corpus ? corpus : "(unset)");
		return 77;
	}
	snprintf(tb_dir, sizeof(tb_dir), "%s/contacts_csv/thunderbird",
		 corpus);
	snprintf(rc_dir, sizeof(rc_dir),
		 "%s/contacts_csv/roundcube_csv2vcard", corpus);
	if (load_schema(srcdir ? srcdir : ".") < 0) {
		fprintf(stderr, "csv_test: cannot load "
				"schemas/v1/contact.schema.json (set "
				"PEX_SOURCE_DIR)\n");
		return 1;
	}
	if (mkdtemp(tmp_dir) == NULL) {
		fprintf(stderr, "csv_test: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	remove_tmp();
	json_decref(contact_props);
	return failed;
}
