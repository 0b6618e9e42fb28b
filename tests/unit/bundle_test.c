/*
 * The bundle writer on its own: records in, a sealed zip out, read back
 * with libzip and checked with pex_bundle_verify(); and the failures that
 * must leave nothing behind.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <zip.h>

#include "core/cleanup.h"
#include "portex/bundle.h"
#include "portex/error.h"

static char dir[] = "/tmp/pex-bundle-test-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *path(const char *name)
{
	static char p[512];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

/* Entries in dir other than the given files. */
static int dir_entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static json_t *contact(int i, const char *note)
{
	char id[32];

	snprintf(id, sizeof(id), "crm:%d", i);
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:[s], s:{s:s}}",
			 "id", id, "source", "crm", "matched_by", "type",
			 "email", "value", "alice@example.com", "emails",
			 "alice@example.com", "extra", "notes", note);
}

static json_t *envelope(void)
{
	return json_pack(
		"{s:s, s:s, s:s, s:b, s:{s:s, s:s}, s:{s:s, s:s},"
		" s:{s:[{s:s, s:s}]}, s:[], s:[{s:s, s:s, s:s, s:s, s:i}],"
		" s:[]}",
		"schema", "urn:portex:bundle:1",
		"bundle_id", "6f1c2a3e-1111-4222-8333-444455556666",
		"generated_at", "2026-11-24T10:00:00Z", "complete", 1,
		"engine", "name", "portex", "version", "test",
		"controller", "name", "Test Ltd", "contact", "privacy@test",
		"subject", "identities", "type", "email", "value",
		"alice@example.com", "categories", "sources", "id", "crm",
		"collector", "sql", "category", "contact", "status", "ok",
		"records", 3, "warnings");
}

static json_t *read_json(zip_t *za, const char *name)
{
	zip_stat_t st;
	zip_file_t *zf;
	char *buf;
	json_t *doc;

	assert_int_equal(zip_stat(za, name, 0, &st), 0);
	buf = malloc(st.size + 1);
	zf = zip_fopen(za, name, 0);
	assert_non_null(zf);
	assert_int_equal(zip_fread(zf, buf, st.size), (zip_int64_t)st.size);
	zip_fclose(zf);
	doc = json_loadb(buf, st.size, 0, NULL);
	free(buf);
	assert_non_null(doc);
	return doc;
}

/* One member of the zip at path as a string (caller frees). */
static char *unzip_entry(const char *zpath, const char *name)
{
	zip_t *za = zip_open(zpath, ZIP_RDONLY, NULL);
	zip_stat_t st;
	zip_file_t *zf;
	char *buf;

	assert_non_null(za);
	assert_int_equal(zip_stat(za, name, 0, &st), 0);
	buf = malloc(st.size + 1);
	assert_non_null(buf);
	zf = zip_fopen(za, name, 0);
	assert_non_null(zf);
	assert_int_equal(zip_fread(zf, buf, st.size), (zip_int64_t)st.size);
	buf[st.size] = '\0';
	zip_fclose(zf);
	zip_close(za);
	return buf;
}

static void test_seal_and_read_back(void **state)
{
	pex_bundle *b;
	json_t *env = envelope(), *rec, *doc, *problems, *man;
	const char *notes[] = { "plain", "<tag> & \"quotes\"",
				"line\r\nbreak" };
	zip_t *za;
	int err, i;

	(void)state;
	assert_int_equal(pex_bundle_open(&b, path("a.zip"), NULL), 0);
	for (i = 0; i < 3; i++) {
		rec = contact(i, notes[i]);
		assert_int_equal(pex_bundle_add(b, PEX_REC_CONTACT, rec), 0);
		json_decref(rec);
	}
	assert_int_equal(pex_bundle_count(b, PEX_REC_CONTACT), 3);
	assert_int_equal(pex_bundle_seal(b, env), 0);
	pex_bundle_free(b);
	assert_int_equal(dir_entries(), 1); /* a.zip and nothing else */

	za = zip_open(path("a.zip"), ZIP_RDONLY | ZIP_CHECKCONS, &err);
	assert_non_null(za);
	doc = read_json(za, "data/bundle.json");
	assert_int_equal(json_array_size(json_object_get(doc, "contacts")),
			 3);
	for (i = 0; i < 3; i++)
		assert_string_equal(json_string_value(json_object_get(
			json_object_get(json_array_get(json_object_get(doc,
			"contacts"), (size_t)i), "extra"), "notes")),
			notes[i]);
	man = read_json(za, "manifest.json");
	assert_true(json_is_true(json_object_get(man, "complete")));
	assert_true(json_array_size(json_object_get(man, "files")) >= 5);
	json_decref(man);
	json_decref(doc);
	zip_close(za);

	assert_int_equal(pex_bundle_verify(path("a.zip"), &problems), 0);
	assert_int_equal(json_array_size(problems), 0);
	json_decref(problems);
	json_decref(env);
	unlink(path("a.zip"));
}

static void test_invalid_record_is_an_error(void **state)
{
	pex_bundle *b;
	json_t *rec = contact(1, "x");

	(void)state;
	json_object_del(rec, "matched_by");
	assert_int_equal(pex_bundle_open(&b, path("b.zip"), NULL), 0);
	assert_int_equal(pex_bundle_add(b, PEX_REC_CONTACT, rec),
			 PEX_EINVALID);
	assert_non_null(strstr(pex_error_last(), "crm:1"));
	assert_non_null(strstr(pex_error_last(), "matched_by"));
	json_decref(rec);
	/* a record of the wrong kind's shape */
	rec = json_pack("{s:s}", "id", "x");
	assert_int_equal(pex_bundle_add(b, PEX_REC_USAGE_EVENT, rec),
			 PEX_EINVALID);
	json_decref(rec);
	pex_bundle_free(b);
	assert_int_equal(dir_entries(), 0); /* nothing left behind */
}

static void test_unsealed_leaves_nothing(void **state)
{
	pex_bundle *b;
	json_t *rec;
	int i;

	(void)state;
	assert_int_equal(pex_bundle_open(&b, path("c.zip"), NULL), 0);
	for (i = 0; i < 2000; i++) {
		rec = contact(i, "some text to fill the sections");
		assert_int_equal(pex_bundle_add(b, PEX_REC_CONTACT, rec), 0);
		json_decref(rec);
	}
	pex_bundle_free(b);
	assert_int_equal(dir_entries(), 0);
}

/* commit_later: the seal leaves the whole zip at its temporary name,
 * 0600, not at the output path; taken, it is the caller's (free leaves
 * it) and renames into a bundle that verifies; not taken, free removes
 * it. Both ways a zip is written: in memory (a few records) and by
 * libzip from the work files (many). */
static void test_commit_later(void **state)
{
	struct pex_bundle_options o = PEX_BUNDLE_OPTIONS_INIT;
	int counts[] = { 2, 30000 }, c, i, take;
	unsigned seed = 7;
	char note[101];

	(void)state;
	o.commit_later = 1;
	for (c = 0; c < 2; c++) {
		for (take = 0; take < 2; take++) {
			json_t *env = envelope(), *rec, *problems;
			struct stat st;
			pex_bundle *b;
			char *tmp;

			assert_int_equal(pex_bundle_open(&b, path("l.zip"), &o),
					 0);
			for (i = 0; i < counts[c]; i++) {
				size_t j;

				/* hex noise: past 1 MiB deflated, libzip
				 * writes the zip from the work files */
				for (j = 0; j < sizeof(note) - 1; j++) {
					seed = seed * 1103515245u + 12345u;
					note[j] = "0123456789abcdef"[
						(seed >> 16) & 15];
				}
				note[j] = '\0';
				rec = contact(i, note);
				assert_int_equal(pex_bundle_add(b,
					PEX_REC_CONTACT, rec), 0);
				json_decref(rec);
			}
			assert_int_equal(pex_bundle_seal(b, env), 0);
			json_decref(env);
			assert_int_equal(access(path("l.zip"), F_OK), -1);
			if (!take) {
				pex_bundle_free(b);
				assert_int_equal(dir_entries(), 0);
				continue;
			}
			tmp = pex_bundle_take_pending(b);
			assert_non_null(tmp);
			assert_null(pex_bundle_take_pending(b));
			pex_bundle_free(b);
			assert_int_equal(stat(tmp, &st), 0);
			assert_int_equal(st.st_mode & 0777, 0600);
			assert_int_equal(dir_entries(), 1);
			assert_int_equal(rename(tmp, path("l.zip")), 0);
			pex_cleanup_forget(tmp);
			free(tmp);
			assert_int_equal(pex_bundle_verify(path("l.zip"),
							   &problems), 0);
			assert_int_equal(json_array_size(problems), 0);
			json_decref(problems);
			unlink(path("l.zip"));
		}
	}
	/* without commit_later there is nothing to take */
	{
		json_t *env = envelope();
		pex_bundle *b;

		assert_int_equal(pex_bundle_open(&b, path("m.zip"), NULL), 0);
		assert_int_equal(pex_bundle_seal(b, env), 0);
		assert_null(pex_bundle_take_pending(b));
		pex_bundle_free(b);
		json_decref(env);
		assert_int_equal(access(path("m.zip"), F_OK), 0);
		unlink(path("m.zip"));
	}
}

static void test_bad_envelope_fails_seal(void **state)
{
	pex_bundle *b;
	json_t *env = envelope(), *rec = contact(1, "x");

	(void)state;
	json_object_del(env, "controller");
	assert_int_equal(pex_bundle_open(&b, path("d.zip"), NULL), 0);
	assert_int_equal(pex_bundle_add(b, PEX_REC_CONTACT, rec), 0);
	assert_true(pex_bundle_seal(b, env) < 0);
	assert_non_null(strstr(pex_error_last(), "controller"));
	pex_bundle_free(b);
	assert_int_equal(dir_entries(), 0);
	json_decref(env);
	json_decref(rec);
}

static void test_unwritable_and_folder(void **state)
{
	pex_bundle *b = NULL;

	(void)state;
	assert_true(pex_bundle_open(&b, "/nonexistent-dir/x.zip", NULL) < 0);
	assert_null(b);
	assert_non_null(strstr(pex_error_last(), "/nonexistent-dir"));
	assert_true(pex_bundle_open(&b, dir, NULL) < 0);
	assert_non_null(strstr(pex_error_last(), "folder"));
}

/* 60000 records: past the chunk size and past the size a section keeps
 * in memory; with the bundle's two threads and without (threads = 0,
 * as a batch making several bundles at once asks): the same bundle. */
static void test_many_records_stream(void **state)
{
	struct pex_bundle_options opts = PEX_BUNDLE_OPTIONS_INIT;
	char *data[2];
	int i, t;

	(void)state;
	for (t = 0; t < 2; t++) {
		pex_bundle *b;
		json_t *env = envelope(), *rec, *problems;

		opts.threads = !t;
		assert_int_equal(pex_bundle_open(&b, path("e.zip"), &opts),
				 0);
		for (i = 0; i < 60000; i++) {
			rec = contact(i, "a note long enough to cross chunk "
				      "borders");
			assert_int_equal(pex_bundle_add(b, PEX_REC_CONTACT,
							rec), 0);
			json_decref(rec);
		}
		assert_int_equal(pex_bundle_seal(b, env), 0);
		pex_bundle_free(b);
		assert_int_equal(pex_bundle_verify(path("e.zip"), &problems),
				 0);
		json_decref(problems);
		json_decref(env);
		data[t] = unzip_entry(path("e.zip"), "data/bundle.xml");
		assert_non_null(data[t]);
		unlink(path("e.zip"));
	}
	/* bundle_id and the time differ; the records must not */
	assert_non_null(strstr(data[1], "<contacts>"));
	assert_string_equal(strstr(data[0], "<contacts>"),
			    strstr(data[1], "<contacts>"));
	free(data[0]);
	free(data[1]);
}

static json_t *ticket_text(const char *body)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:[{s:s}], s:{}}",
			 "id", "tracker:7", "source", "tracker", "matched_by",
			 "type", "email", "value", "alice@example.com",
			 "messages", "body_text", body, "extra");
}

/* A record the JSON Schema takes but XML cannot carry (U+FFFE is valid
 * UTF-8 and no XML character): the XSD check must fail the seal, name
 * the XSD and the records' kind, and leave no bundle. Both ways the XML
 * is checked: a small section held and checked at seal in the whole
 * document, a large one (5000 contacts, past 256 KiB of XML) chunk by
 * chunk on the XSD worker; and the two side by side, where the large
 * section stands empty in the seal's check. With the bundle's threads
 * and without. */
static void test_xsd_failure_fails_seal(void **state)
{
	static const char bad_text[] = "not XML: \xef\xbf\xbe";
	static const struct {
		int contacts, bad_contact; /* -1: none bad */
		int ticket;                /* 0 none, 1 good, 2 bad */
		const char *says;          /* NULL: the seal succeeds */
	} cases[] = {
		{ 1, 0, 0, "the contact records do not meet" },   /* held */
		{ 5000, 4000, 0, "the contact records do not meet" },
		{ 5000, -1, 1, NULL },          /* streamed + held, valid */
		{ 5000, -1, 2, "the ticket records do not meet" },
		{ 1, -1, 2, "the ticket records do not meet" },
	};
	struct pex_bundle_options opts = PEX_BUNDLE_OPTIONS_INIT;
	struct stat st;
	size_t c;
	int i, t;

	(void)state;
	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		for (t = 0; t < 2; t++) {
			pex_bundle *b;
			json_t *env = envelope(), *rec, *problems;

			opts.threads = !t;
			assert_int_equal(pex_bundle_open(&b, path("x.zip"),
							 &opts), 0);
			for (i = 0; i < cases[c].contacts; i++) {
				rec = contact(i, i == cases[c].bad_contact
					? bad_text
					: "a note long enough to cross chunk "
					  "borders");
				assert_int_equal(pex_bundle_add(b,
					PEX_REC_CONTACT, rec), 0);
				json_decref(rec);
			}
			if (cases[c].ticket) {
				rec = ticket_text(cases[c].ticket == 2
						  ? bad_text : "hello");
				assert_int_equal(pex_bundle_add(b,
					PEX_REC_TICKET, rec), 0);
				json_decref(rec);
			}
			if (!cases[c].says) {
				assert_int_equal(pex_bundle_seal(b, env), 0);
				pex_bundle_free(b);
				json_decref(env);
				assert_int_equal(pex_bundle_verify(
					path("x.zip"), &problems), 0);
				json_decref(problems);
				unlink(path("x.zip"));
				continue;
			}
			assert_int_equal(pex_bundle_seal(b, env),
					 PEX_EINVALID);
			if (!strstr(pex_error_last(), cases[c].says) ||
			    !strstr(pex_error_last(), "bundle.xsd"))
				fail_msg("case %zu: %s", c, pex_error_last());
			pex_bundle_free(b);
			json_decref(env);
			assert_int_equal(stat(path("x.zip"), &st), -1);
		}
	}
}

static json_t *ticket_with(json_t *atts)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:[{s:s, s:o}], s:{}}",
			 "id", "tracker:7", "source", "tracker", "matched_by",
			 "type", "email", "value", "alice@example.com",
			 "messages", "body_text", "see files", "attachments",
			 atts, "extra");
}

static void test_attachments(void **state)
{
	static const char *const hostile[] = {
		"../../etc/passwd", "C:\\evil\\x.exe", ".hidden",
		"caf\xc3\xa9 r\xc3\xa9sum\xc3\xa9.pdf", "bad\xff\x01name",
	};
	char longname[301];
	pex_bundle *b;
	pex_bundle_file *f;
	json_t *atts = json_array(), *att, *rec, *env = envelope(), *problems;
	zip_t *za;
	size_t i;
	int err;

	(void)state;
	memset(longname, 'n', 300);
	longname[300] = '\0';
	assert_int_equal(pex_bundle_open(&b, path("f.zip"), NULL), 0);
	for (i = 0; i < 6; i++) {
		const char *name = i < 5 ? hostile[i] : longname;

		assert_int_equal(pex_bundle_file_begin(b, "tracker_7", name,
			"text/plain", 1000, &f), 0);
		assert_int_equal(pex_bundle_file_write(f, "hello ", 6), 0);
		assert_int_equal(pex_bundle_file_write(f, name,
						       strlen(name)), 0);
		assert_int_equal(pex_bundle_file_end(f, &att), 0);
		json_array_append_new(atts, att);
	}
	/* over the limit: withheld with the reason */
	assert_int_equal(pex_bundle_file_begin(b, "tracker_7", "big.bin",
					       NULL, 4, &f), 0);
	assert_int_equal(pex_bundle_file_write(f, "12345", 5), PEX_ELIMIT);
	pex_bundle_file_withhold(f, "larger than the limit of 4 bytes", &att);
	assert_string_equal(json_string_value(json_object_get(att,
			    "withheld")), "larger than the limit of 4 bytes");
	json_array_append_new(atts, att);

	rec = ticket_with(atts);
	assert_int_equal(pex_bundle_add(b, PEX_REC_TICKET, rec), 0);
	pex_bundle_files_commit(b);
	json_decref(rec);

	/* a file whose record is not written does not stay */
	assert_int_equal(pex_bundle_file_begin(b, "tracker_8", "orphan.txt",
					       NULL, 100, &f), 0);
	assert_int_equal(pex_bundle_file_end(f, &att), 0);
	json_decref(att);
	pex_bundle_files_drop_pending(b);

	assert_int_equal(pex_bundle_seal(b, env), 0);
	pex_bundle_free(b);

	za = zip_open(path("f.zip"), ZIP_RDONLY | ZIP_CHECKCONS, &err);
	assert_non_null(za);
	for (i = 0; i < (size_t)zip_get_num_entries(za, 0); i++) {
		const char *n = zip_get_name(za, i, 0);
		const char *base;

		assert_null(strstr(n, "orphan"));
		if (strncmp(n, "attachments/", 12))
			continue;
		base = strrchr(n, '/') + 1;
		assert_int_equal(strncmp(n, "attachments/tracker_7/", 22), 0);
		assert_null(strstr(base, ".."));
		assert_null(strchr(base, '\\'));
		assert_null(strchr(base, ':'));
		assert_true(strlen(base) <= 130);
		assert_true(base[0] != '.');
	}
	zip_close(za);
	assert_int_equal(pex_bundle_verify(path("f.zip"), &problems), 0);
	json_decref(problems);
	json_decref(env);
	unlink(path("f.zip"));
}

static void test_safe_name_examples(void **state)
{
	pex_bundle *b;
	pex_bundle_file *f;
	json_t *att;

	(void)state;
	assert_int_equal(pex_bundle_open(&b, path("g.zip"), NULL), 0);
	assert_int_equal(pex_bundle_file_begin(b, "../t", "../../etc/passwd",
					       NULL, 10, &f), 0);
	assert_int_equal(pex_bundle_file_end(f, &att), 0);
	assert_string_equal(json_string_value(json_object_get(att, "path")),
			    "attachments/_._t/1-_._.__etc_passwd");
	assert_string_equal(json_string_value(json_object_get(att, "name")),
			    "../../etc/passwd");
	json_decref(att);
	assert_int_equal(pex_bundle_file_begin(b, "../t", "", NULL, 10, &f),
			 0);
	assert_int_equal(pex_bundle_file_end(f, &att), 0);
	assert_string_equal(json_string_value(json_object_get(att, "path")),
			    "attachments/_._t/2-file");
	json_decref(att);
	/* a long name keeps its extension; a withheld file takes no number */
	{
		char name[310];
		const char *p;

		memset(name, 'q', 300);
		memcpy(name + 300, ".pdf", 5);
		assert_int_equal(pex_bundle_file_begin(b, "t", "skip.bin",
						       NULL, 1, &f), 0);
		pex_bundle_file_withhold(f, "too big", &att);
		json_decref(att);
		assert_int_equal(pex_bundle_file_begin(b, "t", name, NULL, 10,
						       &f), 0);
		assert_int_equal(pex_bundle_file_end(f, &att), 0);
		p = json_string_value(json_object_get(att, "path"));
		assert_int_equal(strncmp(p, "attachments/t/1-qqq", 19), 0);
		assert_string_equal(p + strlen(p) - 4, ".pdf");
		assert_true(strlen(strrchr(p, '/') + 1) <= 130);
		json_decref(att);
	}
	pex_bundle_free(b);
	assert_int_equal(dir_entries(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_and_read_back),
		cmocka_unit_test(test_invalid_record_is_an_error),
		cmocka_unit_test(test_unsealed_leaves_nothing),
		cmocka_unit_test(test_commit_later),
		cmocka_unit_test(test_bad_envelope_fails_seal),
		cmocka_unit_test(test_unwritable_and_folder),
		cmocka_unit_test(test_many_records_stream),
		cmocka_unit_test(test_xsd_failure_fails_seal),
		cmocka_unit_test(test_attachments),
		cmocka_unit_test(test_safe_name_examples),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
