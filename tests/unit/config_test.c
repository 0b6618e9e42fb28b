/* Unit tests for config/config.c: loading portex.yaml, checking it against
 * the config schema, and reporting FILE:LINE: PATH: MESSAGE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "portex/config.h"
#include "portex/error.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/pex_config_test_XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/portex.yaml", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return rmdir(dir);
}

static void write_config(const char *text)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

/* Load text that must fail with PEX_EINVALID; returns the message. */
static const char *load_bad(const char *text)
{
	pex_config *cfg = (pex_config *)1;
	int rc;

	write_config(text);
	rc = pex_config_load(&cfg, path);
	if (rc != PEX_EINVALID)
		fail_msg("rc %d for config:\n%s\nmessage: %s", rc, text,
			 pex_error_last());
	assert_null(cfg);
	return pex_error_last();
}

#define HEAD                                                                 \
	"version: 1\n"                                 /* 1 */               \
	"controller:\n"                                /* 2 */               \
	"  name: Example Ltd\n"                        /* 3 */               \
	"  contact: privacy@example.com\n"             /* 4 */               \
	"categories:\n"                                /* 5 */               \
	"  contact:\n"                                 /* 6 */               \
	"    purposes: [answering enquiries]\n"        /* 7 */               \
	"    lawful_basis: [contract]\n"               /* 8 */               \
	"    retention: 12 months\n"                   /* 9 */

#define SOURCES                                                              \
	"sources:\n"                                   /* 10 */              \
	"  - id: crm\n"                                /* 11 */              \
	"    collector: csv\n"                         /* 12 */              \
	"    category: contact\n"                      /* 13 */              \
	"    options:\n"                               /* 14 */              \
	"      path: crm.csv\n"                        /* 15 */              \
	"      match: {Email: email}\n"                /* 16 */

static void test_valid(void **state)
{
	pex_config *cfg = NULL;
	const json_t *root, *src;

	(void)state;
	write_config(HEAD SOURCES);
	assert_int_equal(pex_config_load(&cfg, path), 0);
	assert_non_null(cfg);
	assert_string_equal(pex_config_path(cfg), path);
	assert_string_equal(pex_config_dir(cfg), dir);
	root = pex_config_root(cfg);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    root, "controller"), "name")),
			    "Example Ltd");
	src = json_array_get(json_object_get(root, "sources"), 0);
	assert_string_equal(json_string_value(json_object_get(src, "id")),
			    "crm");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    json_object_get(src, "options"), "match"),
				    "Email")), "email");
	/* lines: exact, and walking up from a pointer the file lacks */
	assert_int_equal(pex_config_line(cfg, "/controller/name"), 3);
	assert_int_equal(pex_config_line(cfg, "/sources/0/options/path"), 15);
	assert_int_equal(pex_config_line(cfg, "/sources/0/options/query"),
			 pex_config_line(cfg, "/sources/0/options"));
	assert_int_equal(pex_config_line(cfg, "/sources/0/options"), 15);
	assert_int_equal(pex_config_line(cfg, "/sources/0/nothing/deeper"),
			 11);
	assert_int_equal(pex_config_line(cfg, "/categories/contact/x/y/z"), 7);
	assert_int_equal(pex_config_line(cfg, "/no/such/thing"), 1);
	assert_int_equal(pex_config_line(cfg, ""), 1);
	pex_config_free(cfg);
	pex_config_free(NULL);
}

/* A copy holds the same config and shares no value with the original
 * (batch threads each take one). */
static void test_copy(void **state)
{
	pex_config *cfg = NULL, *copy = NULL;
	json_t *croot;

	(void)state;
	write_config(HEAD SOURCES);
	assert_int_equal(pex_config_load(&cfg, path), 0);
	assert_int_equal(pex_config_copy(&copy, cfg), 0);
	assert_non_null(copy);
	assert_true(json_equal((json_t *)pex_config_root(cfg),
			       (json_t *)pex_config_root(copy)));
	assert_ptr_not_equal(pex_config_root(cfg), pex_config_root(copy));
	assert_string_equal(pex_config_path(copy), path);
	assert_string_equal(pex_config_dir(copy), dir);
	assert_int_equal(pex_config_line(copy, "/sources/0/options/path"), 15);
	assert_ptr_not_equal(json_object_get(pex_config_root(cfg), "controller"),
			     json_object_get(pex_config_root(copy),
					     "controller"));
	/* changing the copy leaves the original as it was */
	croot = (json_t *)pex_config_root(copy);
	json_object_set_new(json_object_get(croot, "controller"), "name",
			    json_string("Changed Ltd"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    pex_config_root(cfg), "controller"), "name")),
			    "Example Ltd");
	pex_config_free(copy);
	assert_int_equal(pex_config_line(cfg, "/controller/name"), 3);
	pex_config_free(cfg);
}

/* The demo config shipped with the sources is valid as it stands. */
static void test_demo_config(void **state)
{
	const char *srcdir = getenv("PEX_SOURCE_DIR");
	char demo[4096];
	pex_config *cfg = NULL;
	const json_t *srcs;

	(void)state;
	if (!srcdir)
		fail_msg("PEX_SOURCE_DIR is not set (ctest sets it)");
	snprintf(demo, sizeof(demo), "%s/fixtures/demo/portex.yaml", srcdir);
	if (pex_config_load(&cfg, demo))
		fail_msg("%s: %s", demo, pex_error_last());
	srcs = json_object_get(pex_config_root(cfg), "sources");
	assert_int_equal(json_array_size(srcs), 3);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(srcs, 2), "collector")),
			    "csv");
	assert_true(pex_config_line(cfg, "/sources/2/options/path") > 0);
	pex_config_free(cfg);
}

static void test_unknown_key(void **state)
{
	const char *m;

	(void)state;
	m = load_bad("version: 1\n"
		     "controller:\n"
		     "  name: X\n"
		     "  contact: y\n"
		     "  colour: blue\n" /* 5 */
		     "categories:\n"
		     "  contact: {purposes: [p], lawful_basis: [contract], "
		     "retention: r}\n" SOURCES);
	assert_non_null(strstr(m, "portex.yaml:5: controller.colour: "));
	assert_non_null(strstr(m, "colour"));
	assert_true(strncmp(m, path, strlen(path)) == 0);
	/* top level */
	m = load_bad(HEAD SOURCES "unknown_top: 1\n"); /* 17 */
	assert_non_null(strstr(m, "portex.yaml:17: unknown_top: "));
	/* inside a source, as a list item */
	m = load_bad(HEAD SOURCES "    colour: red\n"); /* 17 */
	assert_non_null(strstr(m, "portex.yaml:17: sources[0].colour: "));
}

static void test_missing_required(void **state)
{
	const char *m;

	(void)state;
	/* no sources at all: reported at the top level */
	m = load_bad(HEAD);
	assert_non_null(strstr(m, "portex.yaml:1: (top level): "));
	assert_non_null(strstr(m, "sources"));
	/* a source without a collector: reported at the source's line */
	m = load_bad(HEAD "sources:\n  - id: crm\n    category: contact\n");
	assert_non_null(strstr(m, "portex.yaml:11: sources[0]: "));
	assert_non_null(strstr(m, "collector"));
	/* controller without contact, and a category without retention:
	 * every problem is listed, one per line */
	m = load_bad("controller: {name: X}\n"
		     "categories:\n"
		     "  usage: {purposes: [p], lawful_basis: [contract]}\n"
		     SOURCES);
	assert_non_null(strstr(m, "portex.yaml:1: controller: "));
	assert_non_null(strstr(m, "contact"));
	assert_non_null(strstr(m, "\n"));
	assert_non_null(strstr(m, "portex.yaml:3: categories.usage: "));
	assert_non_null(strstr(m, "retention"));
}

static void test_wrong_types(void **state)
{
	const char *m;

	(void)state;
	m = load_bad("version: 2\n" /* const 1 */
		     "controller: {name: X, contact: y}\n"
		     "categories:\n"
		     "  contact: {purposes: [p], lawful_basis: [contract], "
		     "retention: r}\n"
		     "sources:\n"
		     "  - id: Bad Id\n"         /* 6: pattern */
		     "    collector: csv\n"
		     "    category: marketing\n" /* 8: enum */
		     "    enabled: 'yes'\n"     /* 9: boolean */
		     "    options: [1, 2]\n");  /* 10: object */
	assert_non_null(strstr(m, "portex.yaml:1: version: "));
	assert_non_null(strstr(m, "portex.yaml:6: sources[0].id: "));
	assert_non_null(strstr(m, "portex.yaml:8: sources[0].category: "));
	assert_non_null(strstr(m, "portex.yaml:9: sources[0].enabled: "));
	assert_non_null(strstr(m, "portex.yaml:10: sources[0].options: "));
	/* the whole file is a list, or empty */
	m = load_bad("- a\n- b\n");
	assert_non_null(strstr(m, "(top level)"));
	m = load_bad("");
	assert_non_null(strstr(m, "(top level)"));
	/* a lawful basis the law does not have, deep in a list */
	m = load_bad("controller: {name: X, contact: y}\n"
		     "categories:\n"
		     "  contact:\n"
		     "    purposes: [p]\n"
		     "    lawful_basis:\n"
		     "      - contract\n"
		     "      - because\n" /* 7 */
		     "    retention: r\n" SOURCES);
	assert_non_null(strstr(m,
			       "portex.yaml:7: categories.contact.lawful_basis"
			       "[1]: "));
}

static void test_many_problems_counted(void **state)
{
	char text[16384];
	size_t n = 0, i;
	const char *m;
	const char *more;

	(void)state;
	n += (size_t)snprintf(text + n, sizeof(text) - n,
			      "controller: {name: X, contact: y}\n"
			      "categories:\n"
			      "  contact: {purposes: [p], lawful_basis: "
			      "[contract], retention: r}\n"
			      "sources:\n");
	for (i = 0; i < 30; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "  - {id: s%zu, collector: csv, "
				      "category: nope}\n", i);
	m = load_bad(text);
	/* 20 shown, the other 10 counted: not cut off at 21 */
	more = strstr(m, "(10 more problems)");
	if (!more)
		fail_msg("no count of the hidden problems in:\n%s", m);
	assert_non_null(strstr(m, "sources[19].category"));
	assert_null(strstr(m, "sources[20].category"));
}

static void test_yaml_errors_propagate(void **state)
{
	pex_config *cfg = (pex_config *)1;
	char missing[200];
	const char *m;

	(void)state;
	m = load_bad("controller: {name: X\n");
	assert_true(strncmp(m, path, strlen(path)) == 0);
	m = load_bad("a: 1\na: 2\n");
	assert_non_null(strstr(m, "portex.yaml:2:1: duplicate key 'a'"));
	m = load_bad("controller: caf\xE9\n");
	assert_non_null(strstr(m, "portex.yaml:1:"));
	snprintf(missing, sizeof(missing), "%s/absent.yaml", dir);
	assert_int_equal(pex_config_load(&cfg, missing), PEX_EIO);
	assert_null(cfg);
	assert_non_null(strstr(pex_error_last(), "absent.yaml"));
}

static void test_pointer_to_path(void **state)
{
	static const char *const cases[][2] = {
		{ "/sources/2/options/query", "sources[2].options.query" },
		{ "", "(top level)" },
		{ "/controller", "controller" },
		{ "/sources/0", "sources[0]" },
		{ "/a/10/20/b", "a[10][20].b" },
		{ "/a~1b/c~0d", "a/b.c~d" },
		{ "/x/1a", "x.1a" },
		{ "/x/", "x." },
		{ "/x//y", "x..y" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = pex_config_pointer_to_path(cases[i][0]);

		assert_non_null(p);
		if (strcmp(p, cases[i][1]))
			fail_msg("\"%s\" -> \"%s\", want \"%s\"", cases[i][0],
				 p, cases[i][1]);
		free(p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_demo_config),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_many_problems_counted),
		cmocka_unit_test(test_yaml_errors_propagate),
		cmocka_unit_test(test_pointer_to_path),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
