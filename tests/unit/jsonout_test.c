/* Unit tests for bundle/jsonout.c: every value must come out byte for byte
 * as json_dumps(v, JSON_COMPACT) writes it, since bundles written before
 * and after it must not differ, and a string jansson refuses to write must
 * be refused here too (jsonout.h says where it refuses more). The JSON
 * files of the shared corpus (ticket-tracker responses, jCard) are the
 * breadth check. */
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "bundle/jsonout.h"
#include "core/buf.h"
#include "portex/error.h"

/* v (stolen) written both ways must give the same text. */
static void same_as_jansson(json_t *v)
{
	struct pex_buf out = PEX_BUF_INIT(1u << 24);
	char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	assert_non_null(want);
	assert_int_equal(pex_json_write(&out, v), 0);
	assert_non_null(out.data);
	if (strlen(want) != out.len || memcmp(want, out.data, out.len))
		fail_msg("differs:\n jansson: %s\n ours:    %s", want,
			 out.data);
	free(want);
	pex_buf_free(&out);
	json_decref(v);
}

/* v (stolen) must be refused with code, as jansson refuses it. */
static void refused(json_t *v, int code)
{
	struct pex_buf out = PEX_BUF_INIT(1u << 24);
	char *j = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	assert_null(j);
	assert_int_equal(pex_json_write(&out, v), code);
	assert_non_null(pex_error_last());
	pex_buf_free(&out);
	json_decref(v);
}

static void test_scalars(void **state)
{
	(void)state;
	same_as_jansson(json_true());
	same_as_jansson(json_false());
	same_as_jansson(json_null());
	same_as_jansson(json_integer(0));
	same_as_jansson(json_integer(-1));
	same_as_jansson(json_integer(1234567890123LL));
	same_as_jansson(json_integer(INT64_MAX));
	same_as_jansson(json_integer(INT64_MIN));
	same_as_jansson(json_real(1.5));
	same_as_jansson(json_real(-0.0));
	same_as_jansson(json_real(0.1));
	same_as_jansson(json_real(1e100));
	same_as_jansson(json_real(3.0));
	same_as_jansson(json_string(""));
}

/* Every ASCII byte, alone and inside text, and the escapes around it. */
static void test_every_ascii_byte(void **state)
{
	int c;

	(void)state;
	for (c = 0; c < 128; c++) {
		char s[8] = { 'a', (char)c, 'b', (char)c, (char)c };

		same_as_jansson(json_stringn(s + 1, 1));
		same_as_jansson(json_stringn(s, 5));
	}
}

static void test_utf8(void **state)
{
	(void)state;
	same_as_jansson(json_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
	same_as_jansson(json_string("\xe2\x80\xa8 line separator"));
	same_as_jansson(json_string("\xef\xbf\xbd replacement"));
	same_as_jansson(json_string("\xf4\x8f\xbf\xbf last code point"));
}

/* Strings made without jansson's check (as collectors make them from
 * text already cleaned) that are not UTF-8 after all. */
static void test_invalid_utf8_refused(void **state)
{
	static const char *bad[] = {
		"\x80",             /* a lone continuation byte */
		"ab\xc3",           /* cut short */
		"\xc0\xaf",         /* overlong '/' */
		"\xed\xa0\x80",     /* a surrogate */
		"\xf4\x90\x80\x80", /* past U+10FFFF */
		"\xff",
	};
	size_t i;
	json_t *o;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(json_stringn_nocheck(bad[i], strlen(bad[i])),
			PEX_EINVALID);
	/* and deep inside a record */
	o = json_object();
	json_object_set_new(o, "ok", json_string("fine"));
	json_object_set_new(o, "list", json_pack("[s, o]", "x",
						 json_stringn_nocheck("\xe2\x82",
								      2)));
	refused(o, PEX_EINVALID);
}

static void test_embedded_nul(void **state)
{
	(void)state;
	same_as_jansson(json_stringn("a\0b", 3));
}

static void test_containers(void **state)
{
	json_t *o;

	(void)state;
	same_as_jansson(json_object());
	same_as_jansson(json_array());
	same_as_jansson(json_loads("[[],{},[[]],{\"a\":{}}]", 0, NULL));
	/* members stay in the order they were set, as jansson keeps them */
	o = json_object();
	json_object_set_new(o, "zeta", json_integer(1));
	json_object_set_new(o, "alpha", json_pack("[i,s,n,b]", 2, "x", 0));
	json_object_set_new(o, "mid\"dle\\", json_real(2.25));
	json_object_set_new(o, "\xc3\xa9t\xc3\xa9", json_string("\t\n"));
	same_as_jansson(o);
}

static void test_too_deep(void **state)
{
	struct pex_buf out = PEX_BUF_INIT(1u << 20);
	json_t *v = json_array(), *in = v;
	int i;

	(void)state;
	for (i = 0; i < PEX_JSON_MAX_DEPTH + 10; i++) {
		json_t *a = json_array();

		json_array_append_new(in, a);
		in = a;
	}
	assert_int_equal(pex_json_write(&out, v), PEX_EINVALID);
	assert_non_null(strstr(pex_error_last(), "nested"));
	pex_buf_free(&out);
	json_decref(v);
}

/* A value that contains itself: refused, not recursed into for ever. */
static void test_cycle(void **state)
{
	struct pex_buf out = PEX_BUF_INIT(1u << 20);
	json_t *a = json_array(), *b = json_array();

	(void)state;
	/* jansson refuses a value inside itself, but not one level down */
	assert_int_equal(json_array_append(a, b), 0);
	assert_int_equal(json_array_append(b, a), 0);
	assert_int_equal(pex_json_write(&out, a), PEX_EINVALID);
	pex_buf_free(&out);
	json_array_clear(b);
	json_decref(a);
	json_decref(b);
}

/* The buffer's maximum holds: a value longer than it is refused. */
static void test_limit(void **state)
{
	struct pex_buf out = PEX_BUF_INIT(16);
	json_t *v = json_pack("{s:s}", "key", "a value longer than sixteen");

	(void)state;
	assert_int_equal(pex_json_write(&out, v), PEX_ELIMIT);
	assert_true(out.len <= 16);
	pex_buf_free(&out);
	json_decref(v);
}

/* Every JSON file of the corpus, loaded by jansson and written back. */
static unsigned corpus_walk(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;
		size_t len = strlen(e->d_name);

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			n += corpus_walk(path);
		} else if (len > 5 && !strcmp(e->d_name + len - 5, ".json")) {
			json_error_t err;
			json_t *v = json_load_file(path, JSON_DECODE_ANY, &err);

			if (!v)
				continue; /* deliberately broken files */
			same_as_jansson(v);
			n++;
		}
	}
	closedir(d);
	return n;
}

static void test_corpus(void **state)
{
	const char *c = getenv("PEX_CORPUS");
	struct stat st;
	unsigned n;

	(void)state;
	if (!c || stat(c, &st)) {
		printf("jsonout_test: corpus check skipped: %s is absent "
		       "(PEX_CORPUS unset or shared/corpus missing)\n",
		       c ? c : "PEX_CORPUS");
		skip();
	}
	n = corpus_walk(c);
	printf("jsonout_test: %u corpus JSON files written the same\n", n);
	assert_true(n >= 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalars),
		cmocka_unit_test(test_every_ascii_byte),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_invalid_utf8_refused),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_containers),
		cmocka_unit_test(test_too_deep),
		cmocka_unit_test(test_cycle),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_corpus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
