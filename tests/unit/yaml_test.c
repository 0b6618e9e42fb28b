/* Unit tests for config/yaml.c: YAML to a jansson tree with line numbers,
 * and its refusals (malformed, hostile and oversized input). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/yaml.h"
#include "portex/error.h"

/* Load text; on success the tree and lines are in *out / *lines. */
static int load(const char *text, json_t **out, json_t **lines)
{
	return pex_yaml_load_string("t.yaml", text, strlen(text), out, lines);
}

/* Load text that must fail; returns the message (borrowed) and checks
 * that nothing leaked out. */
static const char *load_bad(const char *text, size_t len, int want_rc)
{
	json_t *out = (json_t *)1, *lines = (json_t *)1;
	int rc = pex_yaml_load_string("t.yaml", text, len, &out, &lines);

	if (rc != want_rc)
		fail_msg("rc %d (want %d) for \"%.60s\": %s", rc, want_rc,
			 text, pex_error_last());
	assert_null(out);
	assert_null(lines);
	return pex_error_last();
}

static const char *load_bad_s(const char *text, int want_rc)
{
	return load_bad(text, strlen(text), want_rc);
}

static json_int_t line_of(const json_t *lines, const char *ptr)
{
	const json_t *l = json_object_get(lines, ptr);

	if (!json_is_integer(l))
		fail_msg("no line for pointer \"%s\"", ptr);
	return json_integer_value(l);
}

static void test_scalar_types(void **state)
{
	json_t *doc, *lines;
	const char *text =
		"t1: true\nt2: True\nf1: false\nf2: FALSE\n"
		"n1: null\nn2: ~\nn3:\n"
		"i1: 42\ni2: -7\ni3: +3\ni4: 0\n"
		"r1: 3.5\nr2: -0.25\nr3: 1.5e3\n"
		"s1: 'true'\ns2: \"42\"\ns3: '~'\ns4: \"null\"\n"
		"s5: hello world\n"
		"s6: 1.2.3\ns7: 0x1F\ns8: 12345678901234567890\ns9: yes\n"
		"s10: '3.5'\ns11: 1e5\n";

	(void)state;
	assert_int_equal(load(text, &doc, &lines), 0);
	assert_true(json_is_true(json_object_get(doc, "t1")));
	assert_true(json_is_true(json_object_get(doc, "t2")));
	assert_true(json_is_false(json_object_get(doc, "f1")));
	assert_true(json_is_false(json_object_get(doc, "f2")));
	assert_true(json_is_null(json_object_get(doc, "n1")));
	assert_true(json_is_null(json_object_get(doc, "n2")));
	assert_true(json_is_null(json_object_get(doc, "n3")));
	assert_int_equal(json_integer_value(json_object_get(doc, "i1")), 42);
	assert_int_equal(json_integer_value(json_object_get(doc, "i2")), -7);
	assert_int_equal(json_integer_value(json_object_get(doc, "i3")), 3);
	assert_true(json_is_integer(json_object_get(doc, "i4")));
	assert_true(json_is_real(json_object_get(doc, "r1")));
	assert_true(json_real_value(json_object_get(doc, "r1")) == 3.5);
	assert_true(json_real_value(json_object_get(doc, "r2")) == -0.25);
	assert_true(json_real_value(json_object_get(doc, "r3")) == 1500.0);
	/* quoted scalars stay strings whatever they look like */
	assert_string_equal(json_string_value(json_object_get(doc, "s1")),
			    "true");
	assert_string_equal(json_string_value(json_object_get(doc, "s2")),
			    "42");
	assert_string_equal(json_string_value(json_object_get(doc, "s3")),
			    "~");
	assert_string_equal(json_string_value(json_object_get(doc, "s4")),
			    "null");
	assert_string_equal(json_string_value(json_object_get(doc, "s5")),
			    "hello world");
	assert_string_equal(json_string_value(json_object_get(doc, "s6")),
			    "1.2.3");
	assert_string_equal(json_string_value(json_object_get(doc, "s7")),
			    "0x1F");
	/* too long for a 64-bit integer: kept as text, not truncated */
	assert_string_equal(json_string_value(json_object_get(doc, "s8")),
			    "12345678901234567890");
	/* YAML 1.1 "yes" is not a boolean here */
	assert_string_equal(json_string_value(json_object_get(doc, "s9")),
			    "yes");
	assert_string_equal(json_string_value(json_object_get(doc, "s10")),
			    "3.5");
	assert_true(json_is_string(json_object_get(doc, "s11")));
	json_decref(doc);
	json_decref(lines);
}

static void test_nested_and_lines(void **state)
{
	json_t *doc, *lines, *srcs, *opts;
	const char *text =
		"# comment\n"                         /* 1 */
		"version: 1\n"                        /* 2 */
		"controller:\n"                       /* 3 */
		"  name: Ex\n"                        /* 4 */
		"sources:\n"                          /* 5 */
		"  - id: a\n"                         /* 6 */
		"    options: {x: 1, y: [a, b]}\n"    /* 7 */
		"  - id: b\n"                         /* 8 */
		"    options:\n"                      /* 9 */
		"      query: >\n"                    /* 10 */
		"        SELECT 1\n"                  /* 11 */
		"      'a/b~c': v\n"                  /* 12 */
		"list: [1, [2, [3]], {k: v}]\n";      /* 13 */

	(void)state;
	assert_int_equal(load(text, &doc, &lines), 0);
	assert_int_equal(json_integer_value(json_object_get(doc, "version")),
			 1);
	srcs = json_object_get(doc, "sources");
	assert_true(json_is_array(srcs));
	assert_int_equal(json_array_size(srcs), 2);
	opts = json_object_get(json_array_get(srcs, 0), "options");
	assert_int_equal(json_integer_value(json_object_get(opts, "x")), 1);
	assert_string_equal(json_string_value(json_array_get(
				    json_object_get(opts, "y"), 1)), "b");
	opts = json_object_get(json_array_get(srcs, 1), "options");
	assert_string_equal(json_string_value(json_object_get(opts, "query")),
			    "SELECT 1\n");
	assert_string_equal(json_string_value(json_object_get(opts, "a/b~c")),
			    "v");
	{
		json_t *list = json_object_get(doc, "list");
		json_t *inner = json_array_get(json_array_get(list, 1), 1);

		assert_int_equal(json_integer_value(json_array_get(inner, 0)),
				 3);
	}

	assert_int_equal(line_of(lines, "/version"), 2);
	assert_int_equal(line_of(lines, "/controller"), 4);
	assert_int_equal(line_of(lines, "/controller/name"), 4);
	assert_int_equal(line_of(lines, "/sources/0"), 6);
	assert_int_equal(line_of(lines, "/sources/0/options/y/1"), 7);
	assert_int_equal(line_of(lines, "/sources/1"), 8);
	assert_int_equal(line_of(lines, "/sources/1/options/query"), 10);
	/* '/' and '~' in a key are escaped as in RFC 6901 */
	assert_int_equal(line_of(lines, "/sources/1/options/a~1b~0c"), 12);
	assert_int_equal(line_of(lines, "/list/1/1/0"), 13);
	assert_int_equal(line_of(lines, "/list/2/k"), 13);
	json_decref(doc);
	json_decref(lines);
}

static void test_empty_documents(void **state)
{
	static const char *const empties[] = { "", "# only a comment\n",
					       "---\n", "---\n...\n", "\n\n" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
		json_t *doc = NULL, *lines = NULL;

		assert_int_equal(load(empties[i], &doc, &lines), 0);
		assert_true(json_is_null(doc));
		assert_true(json_is_object(lines));
		json_decref(doc);
		json_decref(lines);
	}
}

static void test_malformed(void **state)
{
	const char *m;

	(void)state;
	/* a bad indentation on line 3: file:line:column and libyaml's
	 * reason */
	m = load_bad_s("a: 1\nb:\n  c: 1\n d: 2\n", PEX_EINVALID);
	assert_non_null(strstr(m, "t.yaml:4:"));
	m = load_bad_s("key: [1, 2\nother: 3\n", PEX_EINVALID);
	assert_non_null(strstr(m, "t.yaml:"));
	assert_non_null(strstr(m, "flow sequence"));
	m = load_bad_s("a: 'unterminated\n", PEX_EINVALID);
	assert_non_null(strstr(m, "t.yaml:"));
	assert_non_null(strstr(m, "quoted scalar"));
	m = load_bad_s("a: b: c\n", PEX_EINVALID);
	assert_non_null(strstr(m, "t.yaml:1:"));
	m = load_bad_s("\t- tab\n", PEX_EINVALID);
	assert_non_null(strstr(m, "t.yaml:1:"));
	/* a non-scalar key */
	m = load_bad_s("? [a, b]\n: 1\n", PEX_EINVALID);
	assert_non_null(strstr(m, "a key must be plain text"));
	assert_non_null(strstr(m, "t.yaml:1:"));
	/* truncated in every place of a valid document: never a crash, and
	 * either a clean error or a (shorter) valid tree */
	{
		const char *full = "a:\n  b: [1, {c: 'x'}]\n  d: \"q\"\n";
		size_t n;

		for (n = 0; n <= strlen(full); n++) {
			json_t *doc = NULL, *lines = NULL;
			int rc = pex_yaml_load_string("t.yaml", full, n, &doc,
						      &lines);

			if (rc) {
				assert_int_equal(rc, PEX_EINVALID);
				assert_null(doc);
				assert_non_null(strstr(pex_error_last(),
						       "t.yaml:"));
			} else {
				assert_non_null(doc);
				assert_non_null(lines);
			}
			json_decref(doc);
			json_decref(lines);
		}
	}
}

static void test_duplicate_keys(void **state)
{
	const char *m;

	(void)state;
	m = load_bad_s("a: 1\nb: 2\na: 3\n", PEX_EINVALID);
	assert_non_null(strstr(m, "t.yaml:3:1: duplicate key 'a'"));
	m = load_bad_s("x:\n  y: 1\n  y: 2\n", PEX_EINVALID);
	assert_non_null(strstr(m, "t.yaml:3:3: duplicate key 'y'"));
	m = load_bad_s("{k: 1, k: 2}", PEX_EINVALID);
	assert_non_null(strstr(m, "duplicate key 'k'"));
}

static void test_aliases_refused(void **state)
{
	const char *m;

	(void)state;
	m = load_bad_s("a: &x 1\nb: *x\n", PEX_EINVALID);
	assert_non_null(strstr(m, "t.yaml:2:4:"));
	assert_non_null(strstr(m, "aliases"));
	/* the "billion laughs" shape is refused at its first alias */
	m = load_bad_s("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
		       PEX_EINVALID);
	assert_non_null(strstr(m, "aliases"));
	/* an alias as a key */
	m = load_bad_s("a: &k key\n*k : 1\n", PEX_EINVALID);
	assert_non_null(strstr(m, "t.yaml:2:"));
}

static void test_multiple_documents(void **state)
{
	const char *m;

	(void)state;
	m = load_bad_s("a: 1\n---\nb: 2\n", PEX_EINVALID);
	assert_non_null(strstr(m, "t.yaml:2:1: only one YAML document"));
	m = load_bad_s("---\na: 1\n...\n---\n", PEX_EINVALID);
	assert_non_null(strstr(m, "only one YAML document"));
}

/* Build "[[[...]]]" or "a:\n  a:\n ..." of the given depth. */
static char *nested_flow(size_t depth)
{
	char *s = malloc(2 * depth + 1);
	size_t i;

	assert_non_null(s);
	for (i = 0; i < depth; i++) {
		s[i] = '[';
		s[2 * depth - 1 - i] = ']';
	}
	s[2 * depth] = '\0';
	return s;
}

static void test_depth(void **state)
{
	json_t *doc, *lines;
	char *s;
	const char *m;

	(void)state;
	/* within the limit: fine */
	s = nested_flow(PEX_YAML_DEPTH_MAX);
	assert_int_equal(load(s, &doc, &lines), 0);
	assert_true(json_is_array(doc));
	json_decref(doc);
	json_decref(lines);
	free(s);
	/* past it: an error naming the line, at any depth */
	s = nested_flow(PEX_YAML_DEPTH_MAX + 2);
	m = load_bad(s, strlen(s), PEX_EINVALID);
	assert_non_null(strstr(m, "nested too deeply"));
	assert_non_null(strstr(m, "t.yaml:1:"));
	free(s);
	s = nested_flow(1000000);
	m = load_bad(s, strlen(s), PEX_EINVALID);
	assert_non_null(strstr(m, "nested too deeply"));
	free(s);
	/* block mappings nested deeply */
	{
		size_t depth = 200, i, n = 0;
		char *b = malloc(depth * (depth + 4) + 16);

		assert_non_null(b);
		for (i = 0; i < depth; i++) {
			memset(b + n, ' ', i);
			n += i;
			memcpy(b + n, "a:\n", 3);
			n += 3;
		}
		b[n] = '\0';
		m = load_bad(b, n, PEX_EINVALID);
		assert_non_null(strstr(m, "nested too deeply"));
		assert_non_null(strstr(m, "t.yaml:66:"));
		free(b);
	}
}

static void test_invalid_utf8(void **state)
{
	const char *m;

	(void)state;
	m = load_bad_s("a: caf\xE9\n", PEX_EINVALID);
	assert_non_null(strstr(m, "t.yaml:"));
	assert_non_null(strstr(m, "UTF-8"));
	m = load_bad_s("k\xFF: v\n", PEX_EINVALID);
	assert_non_null(strstr(m, "UTF-8"));
	m = load_bad_s("a: \"\xED\xA0\x80\"\n", PEX_EINVALID);
	assert_non_null(strstr(m, "t.yaml:"));
	/* an escaped NUL would cut every C string taken from the value */
	m = load_bad_s("a: \"x.csv\\0y\"\n", PEX_EINVALID);
	assert_non_null(strstr(m, "t.yaml:1:4:"));
	assert_non_null(strstr(m, "NUL"));
	m = load_bad_s("\"k\\0x\": 1\n", PEX_EINVALID);
	assert_non_null(strstr(m, "NUL"));
	/* a raw NUL byte */
	m = load_bad("a: x\0y\n", 7, PEX_EINVALID);
	assert_non_null(strstr(m, "t.yaml:"));
	/* valid non-ASCII text is kept */
	{
		json_t *doc, *lines;

		const char *t = "n: \"Ren\xC3\xA9\"\n\xC3\xA9: 1\n";
		json_t *v;

		assert_int_equal(load(t, &doc, &lines), 0);
		v = json_object_get(doc, "n");
		assert_string_equal(json_string_value(v), "Ren\xC3\xA9");
		v = json_object_get(doc, "\xC3\xA9");
		assert_int_equal(json_integer_value(v), 1);
		json_decref(doc);
		json_decref(lines);
	}
}

static void test_huge_refused(void **state)
{
	size_t n = PEX_YAML_SIZE_MAX + 1;
	char *big = malloc(n + 1);
	char path[] = "/tmp/pex_yaml_test_XXXXXX";
	const char *m;
	json_t *doc, *lines;
	FILE *f;
	int fd;

	(void)state;
	assert_non_null(big);
	memset(big, '#', n);
	big[n] = '\0';
	m = load_bad(big, n, PEX_ELIMIT);
	assert_non_null(strstr(m, "larger than"));
	/* the same from a file: refused while reading, not after */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(big, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(pex_yaml_load_file(path, &doc, &lines), PEX_ELIMIT);
	assert_null(doc);
	assert_non_null(strstr(pex_error_last(), path));
	assert_non_null(strstr(pex_error_last(), "larger than"));
	/* exactly at the limit is accepted (all comment: an empty doc) */
	assert_int_equal(pex_yaml_load_string("t.yaml", big, n - 1, &doc,
					      &lines), 0);
	assert_true(json_is_null(doc));
	json_decref(doc);
	json_decref(lines);
	unlink(path);
	free(big);
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/pex_yaml_test_XXXXXX";
	json_t *doc, *lines;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "a:\n  - 1\n  - x: y\n", 18), 18);
	close(fd);
	assert_int_equal(pex_yaml_load_file(path, &doc, &lines), 0);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
				    json_object_get(doc, "a"), 1), "x")), "y");
	assert_int_equal(line_of(lines, "/a/1/x"), 3);
	json_decref(doc);
	json_decref(lines);
	/* errors name the file */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "a: [\n", 5), 5);
	close(fd);
	assert_int_equal(pex_yaml_load_file(path, &doc, &lines),
			 PEX_EINVALID);
	assert_true(strncmp(pex_error_last(), path, strlen(path)) == 0);
	unlink(path);
	assert_int_equal(pex_yaml_load_file(path, &doc, &lines), PEX_EIO);
	assert_non_null(strstr(pex_error_last(), "cannot open"));
	assert_null(doc);
	assert_null(lines);
}


/* An explicit !!str tag keeps a plain scalar as text. */
static void test_str_tag(void **state)
{
	json_t *doc = NULL, *lines = NULL;
	static const char y[] = "a: !!str 123\nb: 123\nc: !!str true\n";

	(void)state;
	assert_int_equal(pex_yaml_load_string("t.yaml", y, sizeof(y) - 1,
					      &doc, &lines), 0);
	assert_string_equal(json_string_value(json_object_get(doc, "a")),
			    "123");
	assert_true(json_is_integer(json_object_get(doc, "b")));
	assert_string_equal(json_string_value(json_object_get(doc, "c")),
			    "true");
	json_decref(doc);
	json_decref(lines);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalar_types),
		cmocka_unit_test(test_nested_and_lines),
		cmocka_unit_test(test_empty_documents),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_aliases_refused),
		cmocka_unit_test(test_multiple_documents),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_huge_refused),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_str_tag),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
