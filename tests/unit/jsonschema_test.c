/*
 * Unit tests for the JSON Schema validator: error locations and messages,
 * first-error vs all-errors, hostile input (deep nesting, $ref cycles,
 * huge numbers, bad regexes, non-UTF-8 strings, runaway regexes), the
 * registry and pex_schema_compile_uri, and concurrent use of one
 * compiled schema.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "portex/error.h"
#include "portex/jsonschema.h"

#define MAX_ERRS 32

struct errs {
	int n;
	int stop_after; /* 0: never ask to stop */
	char ipath[MAX_ERRS][256];
	char spath[MAX_ERRS][256];
	char msg[MAX_ERRS][256];
};

static int collect(const pex_schema_error *e, void *payload)
{
	struct errs *c = payload;

	if (c->n < MAX_ERRS) {
		snprintf(c->ipath[c->n], 256, "%s", e->instance_path);
		snprintf(c->spath[c->n], 256, "%s", e->schema_path);
		snprintf(c->msg[c->n], 256, "%s", e->message);
		/* one line each */
		assert_null(strchr(e->message, '\n'));
	}
	c->n++;
	return c->stop_after && c->n >= c->stop_after;
}

static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);

	if (!j)
		fail_msg("bad test JSON: %s: %s", jerr.text, text);
	return j;
}

static pex_schema *compile_text(const char *text)
{
	json_t *j = parse(text);
	pex_schema *s = NULL;
	int rc = pex_schema_compile(&s, j, NULL, NULL);

	if (rc < 0)
		fail_msg("compile failed: %s", pex_error_last());
	json_decref(j);
	return s;
}

/* Compile expecting failure; returns the code. */
static int compile_fails(const char *text)
{
	json_t *j = parse(text);
	pex_schema *s = NULL;
	int rc = pex_schema_compile(&s, j, NULL, NULL);

	assert_null(s);
	json_decref(j);
	return rc;
}

static int check(pex_schema *s, const char *inst, int flags, struct errs *e)
{
	json_t *j = parse(inst);
	int rc = pex_schema_validate(s, j, flags, e ? collect : NULL, e);

	json_decref(j);
	return rc;
}

/* ---- error locations ---- */

static void test_error_locations(void **state)
{
	pex_schema *s = compile_text(
		"{\"properties\": {\"a\": {\"items\": {\"properties\":"
		" {\"b\": {\"type\": \"string\"}}}}},"
		" \"required\": [\"email\"]}");
	struct errs e = {0};

	assert_int_equal(check(s, "{\"a\": [{\"b\": \"ok\"}, {\"b\": 5}]}",
			       PEX_SCHEMA_ALL_ERRORS, &e),
			 1);
	assert_int_equal(e.n, 2);
	assert_string_equal(e.ipath[0], "");
	assert_string_equal(e.spath[0], "#/required");
	assert_string_equal(e.msg[0],
			    "required property \"email\" is missing");
	assert_string_equal(e.ipath[1], "/a/1/b");
	assert_string_equal(e.spath[1],
			    "#/properties/a/items/properties/b/type");
	assert_string_equal(e.msg[1], "expected string, got integer");
	pex_schema_free(s);
}

static void test_pointer_escaping(void **state)
{
	pex_schema *s = compile_text(
		"{\"properties\": {\"a/b~c\": {\"type\": \"null\"}},"
		" \"additionalProperties\": false}");
	struct errs e = {0};

	assert_int_equal(check(s, "{\"a/b~c\": 1, \"x~y\": 2}",
			       PEX_SCHEMA_ALL_ERRORS, &e),
			 1);
	assert_int_equal(e.n, 2);
	assert_string_equal(e.ipath[0], "/a~1b~0c");
	assert_string_equal(e.spath[0], "#/properties/a~1b~0c/type");
	assert_string_equal(e.ipath[1], "/x~0y");
	assert_string_equal(e.spath[1], "#/additionalProperties");
	assert_string_equal(e.msg[1], "property \"x~y\" is not allowed");
	pex_schema_free(s);
}

static void test_ref_location_is_absolute(void **state)
{
	pex_schema *s = compile_text(
		"{\"$id\": \"urn:t:1\", \"properties\": {\"n\": {\"$ref\":"
		" \"#/definitions/pos\"}},"
		" \"definitions\": {\"pos\": {\"minimum\": 0}}}");
	struct errs e = {0};

	assert_int_equal(check(s, "{\"n\": -1}", 0, &e), 1);
	assert_int_equal(e.n, 1);
	assert_string_equal(e.ipath[0], "/n");
	assert_string_equal(e.spath[0], "urn:t:1#/definitions/pos/minimum");
	assert_string_equal(e.msg[0], "value is less than 0");
	pex_schema_free(s);
}

static void test_messages(void **state)
{
	pex_schema *s =
		compile_text("{\"type\": \"object\", \"properties\": {"
			     "\"s\": {\"maxLength\": 2, \"pattern\": \"^a\"},"
			     "\"e\": {\"enum\": [1, 2]},"
			     "\"o\": {\"oneOf\": [{\"type\": \"integer\"},"
			     " {\"minimum\": 0}]},"
			     "\"u\": {\"uniqueItems\": true},"
			     "\"f\": {\"format\": \"email\"}}}");
	struct errs e = {0};

	assert_int_equal(check(s,
			       "{\"s\": \"bcd\", \"e\": 3, \"o\": 4,"
			       " \"u\": [1, 1.0], \"f\": \"nope\"}",
			       PEX_SCHEMA_ALL_ERRORS, &e),
			 1);
	assert_int_equal(e.n, 6);
	assert_string_equal(e.msg[0], "string is longer than 2 characters");
	assert_string_equal(e.msg[1], "\"bcd\" does not match \"^a\"");
	assert_string_equal(e.spath[1], "#/properties/s/pattern");
	assert_string_equal(e.msg[2],
			    "3 is not one of the allowed values: 1, 2");
	{
		/* a long value is cut, never inside a character */
		struct errs e2 = {0};
		char inst[200];

		snprintf(inst, sizeof(inst), "{\"e\": \"%s\xc3\xa9yyyy\"}",
			 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		assert_int_equal(check(s, inst, PEX_SCHEMA_ALL_ERRORS, &e2),
				 1);
		/* 48 bytes would end inside the \xc3\xa9 */
		assert_string_equal(e2.msg[0], "\"xxxxxxxxxxxxxxxxxxxxxxxxxx"
				    "xxxxxxxxxxxxxxxxxxxx... is not one of the "
				    "allowed values: 1, 2");
	}
	assert_non_null(strstr(e.msg[3], "oneOf schemas 0 and 1"));
	assert_string_equal(e.msg[4], "items 0 and 1 are equal");
	assert_string_equal(e.msg[5], "\"nope\" is not a valid email");
	assert_string_equal(e.ipath[5], "/f");
	pex_schema_free(s);
}

/* ---- first vs all ---- */

static void test_first_vs_all(void **state)
{
	pex_schema *s = compile_text("{\"items\": {\"type\": \"string\"}}");
	struct errs first = {0}, all = {0}, stop = {.stop_after = 2};

	assert_int_equal(check(s, "[1, 2, 3, \"x\", 4]", 0, &first), 1);
	assert_int_equal(first.n, 1);
	assert_string_equal(first.ipath[0], "/0");
	assert_int_equal(
		check(s, "[1, 2, 3, \"x\", 4]", PEX_SCHEMA_ALL_ERRORS, &all),
		1);
	assert_int_equal(all.n, 4);
	assert_string_equal(all.ipath[3], "/4");
	/* the callback may stop the walk */
	assert_int_equal(
		check(s, "[1, 2, 3, \"x\", 4]", PEX_SCHEMA_ALL_ERRORS, &stop),
		1);
	assert_int_equal(stop.n, 2);
	/* no callback: just the verdict */
	assert_int_equal(check(s, "[1]", 0, NULL), 1);
	assert_int_equal(check(s, "[\"a\"]", 0, NULL), 0);
	pex_schema_free(s);
}

static void test_quiet_subschemas(void **state)
{
	/* failures inside anyOf/not/if are not errors by themselves */
	pex_schema *s = compile_text(
		"{\"anyOf\": [{\"type\": \"string\"}, {\"minimum\": 5}],"
		" \"if\": {\"type\": \"integer\"},"
		" \"then\": {\"maximum\": 10}}");
	struct errs e = {0};

	assert_int_equal(check(s, "7", PEX_SCHEMA_ALL_ERRORS, &e), 0);
	assert_int_equal(e.n, 0);
	assert_int_equal(check(s, "11", PEX_SCHEMA_ALL_ERRORS, &e), 1);
	assert_int_equal(e.n, 1);
	assert_string_equal(e.spath[0], "#/then/maximum");
	pex_schema_free(s);
}

/* ---- numbers ---- */

static void test_numbers(void **state)
{
	pex_schema *s = compile_text("{\"type\": \"integer\"}");
	pex_schema *e = compile_text("{\"enum\": [1, \"1\"]}");
	pex_schema *c = compile_text("{\"const\": {\"a\": [2.0]}}");
	pex_schema *m = compile_text("{\"multipleOf\": 0.123456789}");
	pex_schema *x = compile_text("{\"maximum\": 1e308,"
				     " \"exclusiveMinimum\": -1e308}");
	pex_schema *big = compile_text("{\"maximum\": 9223372036854775807}");

	assert_int_equal(check(s, "1.0", 0, NULL), 0);
	assert_int_equal(check(s, "1e300", 0, NULL), 0);
	assert_int_equal(check(s, "1.5", 0, NULL), 1);
	assert_int_equal(check(e, "1.0", 0, NULL), 0);
	assert_int_equal(check(e, "true", 0, NULL), 1);
	assert_int_equal(check(c, "{\"a\": [2]}", 0, NULL), 0);
	assert_int_equal(check(c, "{\"a\": [2.5]}", 0, NULL), 1);
	/* 1e308 / 0.123 overflows: invalid, not a crash */
	assert_int_equal(check(m, "1e308", 0, NULL), 1);
	assert_int_equal(check(x, "1e308", 0, NULL), 0);
	assert_int_equal(check(x, "-1e308", 0, NULL), 1);
	assert_int_equal(check(big, "9223372036854775807", 0, NULL), 0);
	assert_int_equal(check(big, "9.3e18", 0, NULL), 1);
	pex_schema_free(s);
	pex_schema_free(e);
	pex_schema_free(c);
	pex_schema_free(m);
	pex_schema_free(x);
	pex_schema_free(big);
}

/* ---- hostile input ---- */

static json_t *nested_arrays(int depth)
{
	json_t *j = json_array(), *inner;
	int i;

	for (i = 0; i < depth; i++) {
		inner = json_array();
		json_array_append_new(inner, j);
		j = inner;
	}
	return j;
}

static void free_nested(json_t *j)
{
	/* jansson frees recursively; unwind by hand to spare its stack */
	while (json_array_size(j) > 0) {
		json_t *inner = json_incref(json_array_get(j, 0));

		json_decref(j);
		j = inner;
	}
	json_decref(j);
}

static void test_deep_instance(void **state)
{
	pex_schema *s = compile_text("{\"items\": {\"$ref\": \"#\"}}");
	pex_schema *t = compile_text("{\"type\": \"array\"}");
	json_t *deep = nested_arrays(100000);
	json_t *ok = nested_arrays(100);
	json_t *es = json_pack("{s:[o]}", "enum", nested_arrays(1000));
	json_t *ei = nested_arrays(1000);
	pex_schema *e = NULL;

	assert_int_equal(pex_schema_compile(&e, es, NULL, NULL), 0);

	assert_int_equal(pex_schema_validate(s, deep, 0, NULL, NULL),
			 PEX_ELIMIT);
	assert_non_null(strstr(pex_error_last(), "nested deeper"));
	assert_int_equal(pex_schema_validate(s, ok, 0, NULL, NULL), 0);
	/* a schema that does not descend never looks down */
	assert_int_equal(pex_schema_validate(t, deep, 0, NULL, NULL), 0);
	/* comparing deep values is bounded too */
	assert_int_equal(pex_schema_validate(e, ei, 0, NULL, NULL),
			 PEX_ELIMIT);
	assert_int_equal(pex_schema_validate(e, ok, 0, NULL, NULL), 1);
	free_nested(ei);
	json_decref(es); /* 1000 levels: within jansson's own recursion */
	free_nested(deep);
	free_nested(ok);
	pex_schema_free(s);
	pex_schema_free(t);
	pex_schema_free(e);
}

static void test_deep_schema(void **state)
{
	json_t *j = json_object(), *outer;
	pex_schema *s = NULL;
	int i;

	for (i = 0; i < 5000; i++) {
		outer = json_object();
		json_object_set_new(outer, "items", j);
		j = outer;
	}
	assert_int_equal(pex_schema_compile(&s, j, NULL, NULL), PEX_ELIMIT);
	assert_null(s);
	assert_non_null(strstr(pex_error_last(), "nested deeper"));
	/* unwind by hand: jansson's free is recursive */
	while (json_object_get(j, "items")) {
		json_t *inner = json_incref(json_object_get(j, "items"));

		json_decref(j);
		j = inner;
	}
	json_decref(j);
}

static void test_ref_cycles(void **state)
{
	pex_schema *s;

	assert_int_equal(compile_fails("{\"$ref\": \"#\"}"), PEX_EINVALID);
	assert_non_null(strstr(pex_error_last(), "cycle"));
	assert_int_equal(
		compile_fails("{\"definitions\": {\"a\": {\"$ref\":"
			      " \"#/definitions/b\"}, \"b\": {\"$ref\":"
			      " \"#/definitions/a\"}}, \"$ref\":"
			      " \"#/definitions/a\"}"),
		PEX_EINVALID);
	assert_int_equal(compile_fails("{\"allOf\": [{\"$ref\": \"#\"}]}"),
			 PEX_EINVALID);
	assert_int_equal(compile_fails("{\"anyOf\": [{\"type\": \"null\"},"
				       " {\"not\": {\"$ref\": \"#\"}}]}"),
			 PEX_EINVALID);
	/* recursion that steps into the instance is fine */
	s = compile_text("{\"properties\": {\"next\": {\"$ref\": \"#\"}},"
			 " \"required\": [\"v\"]}");
	assert_int_equal(check(s, "{\"v\": 1, \"next\": {\"v\": 2}}", 0, NULL),
			 0);
	assert_int_equal(check(s, "{\"v\": 1, \"next\": {}}", 0, NULL), 1);
	pex_schema_free(s);
}

/* A long in-place chain (d0 -> allOf d1 -> ... d3999) compiles without
 * recursion and hits the frame limit at validation, not the stack. */
static void test_long_chain(void **state)
{
	json_t *defs = json_object(), *root = json_object();
	pex_schema *s = NULL;
	json_t *inst = json_integer(1);
	char name[32], ref[64];
	int i;

	for (i = 0; i < 4000; i++) {
		json_t *d = json_object();

		snprintf(name, sizeof(name), "d%d", i);
		if (i + 1 < 4000) {
			snprintf(ref, sizeof(ref), "#/definitions/d%d", i + 1);
			json_object_set_new(d, "allOf",
					    json_pack("[{s:s}]", "$ref", ref));
		} else {
			json_object_set_new(d, "type", json_string("integer"));
		}
		json_object_set_new(defs, name, d);
	}
	json_object_set_new(root, "definitions", defs);
	json_object_set_new(root, "$ref", json_string("#/definitions/d0"));
	assert_int_equal(pex_schema_compile(&s, root, NULL, NULL), 0);
	assert_int_equal(pex_schema_validate(s, inst, 0, NULL, NULL),
			 PEX_ELIMIT);
	pex_schema_free(s);
	json_decref(root);
	json_decref(inst);
}

static void test_bad_schemas(void **state)
{
	assert_int_equal(compile_fails("{\"pattern\": \"(unclosed\"}"),
			 PEX_EINVALID);
	assert_non_null(strstr(pex_error_last(), "invalid regex"));
	assert_int_equal(
		compile_fails("{\"patternProperties\": {\"[\": true}}"),
		PEX_EINVALID);
	assert_int_equal(compile_fails("{\"minLength\": \"3\"}"),
			 PEX_EINVALID);
	assert_non_null(strstr(pex_error_last(), "minLength"));
	assert_int_equal(compile_fails("{\"minLength\": -1}"), PEX_EINVALID);
	assert_int_equal(compile_fails("{\"type\": \"strung\"}"),
			 PEX_EINVALID);
	assert_int_equal(compile_fails("{\"multipleOf\": 0}"), PEX_EINVALID);
	assert_int_equal(compile_fails("{\"required\": [1]}"), PEX_EINVALID);
	assert_int_equal(compile_fails("{\"properties\": {\"a\": 3}}"),
			 PEX_EINVALID);
	assert_int_equal(compile_fails("{\"allOf\": []}"), PEX_EINVALID);
	assert_int_equal(compile_fails("{\"$ref\": \"#/nowhere\"}"),
			 PEX_ENOTFOUND);
	assert_int_equal(compile_fails("{\"$ref\": \"http://example.com/x\"}"),
			 PEX_ENOTFOUND);
	assert_int_equal(compile_fails("{\"$ref\": \"#/a%zz\"}"),
			 PEX_EINVALID);
	assert_int_equal(compile_fails("42"), PEX_EINVALID);
}

static void test_non_utf8(void **state)
{
	pex_schema *s = compile_text("{\"pattern\": \"^a\", \"maxLength\": 1,"
				     " \"format\": \"hostname\"}");
	pex_schema *p = compile_text(
		"{\"patternProperties\": {\"^x\": {\"type\": \"null\"}},"
		" \"propertyNames\": {\"pattern\": \"^.$\"}}");
	json_t *bad = json_stringn_nocheck("a\xff\xfe", 3);
	json_t *obj = json_object();
	struct errs e = {0};

	assert_int_equal(pex_schema_validate(s, bad, PEX_SCHEMA_ALL_ERRORS,
					     collect, &e),
			 1);
	assert_int_equal(e.n, 3);
	assert_string_equal(e.msg[1], "string is not valid UTF-8");
	/* messages stay printable: invalid bytes shown as '?' */
	assert_string_equal(e.msg[2], "\"a??\" is not a valid hostname");
	json_object_set_new_nocheck(obj, "\xc3", json_null());
	assert_int_equal(pex_schema_validate(p, obj, 0, NULL, NULL), 1);
	json_decref(bad);
	json_decref(obj);
	pex_schema_free(s);
	pex_schema_free(p);
}

static void test_runaway_regex(void **state)
{
	pex_schema *s = compile_text("{\"pattern\": \"^(a|a?)+$\"}");
	char buf[200];
	json_t *j;
	int rc;

	memset(buf, 'a', sizeof(buf) - 2);
	buf[sizeof(buf) - 2] = 'b';
	buf[sizeof(buf) - 1] = '\0';
	j = json_string(buf);
	rc = pex_schema_validate(s, j, 0, NULL, NULL);
	/* either PCRE2 proves no match, or its budget runs out: never a
	 * "valid" and never an endless run */
	assert_true(rc == 1 || rc == PEX_ELIMIT);
	json_decref(j);
	pex_schema_free(s);
}

static void test_no_format_flag(void **state)
{
	pex_schema *s = compile_text("{\"format\": \"date-time\"}");

	assert_int_equal(check(s, "\"yesterday\"", 0, NULL), 1);
	assert_int_equal(check(s, "\"yesterday\"", PEX_SCHEMA_NO_FORMAT, NULL),
			 0);
	assert_int_equal(check(s, "\"2026-01-03T09:30:00Z\"", 0, NULL), 0);
	/* leap second only at 23:59:60 UTC */
	assert_int_equal(check(s, "\"1998-12-31T23:59:60Z\"", 0, NULL), 0);
	assert_int_equal(check(s, "\"1998-12-31T22:59:60Z\"", 0, NULL), 1);
	pex_schema_free(s);
}

/* ---- registry ---- */

static void test_registry_and_uri(void **state)
{
	pex_schema_registry *reg = NULL;
	pex_schema *s = NULL;
	json_t *common =
		parse("{\"$id\": \"urn:x:common\", \"definitions\": {"
		      "\"id\": {\"type\": \"string\", \"minLength\": 1}}}");
	json_t *rec = parse(
		"{\"$id\": \"urn:x:rec\", \"properties\": {\"id\": {\"$ref\":"
		" \"urn:x:common#/definitions/id\"}}}");
	struct errs e = {0};

	assert_int_equal(pex_schema_registry_new(&reg), 0);
	assert_int_equal(pex_schema_registry_add(reg, NULL, common), 0);
	assert_int_equal(
		pex_schema_registry_add(reg, "file:///s/rec.json", rec), 0);
	/* found by $id and by its registered URI */
	assert_int_equal(pex_schema_compile_uri(&s, reg, "urn:x:rec"), 0);
	pex_schema_free(s);
	assert_int_equal(
		pex_schema_compile_uri(&s, reg, "file:///s/rec.json#"), 0);
	pex_schema_free(s);
	assert_int_equal(pex_schema_compile_uri(
				 &s, reg, "urn:x:common#/definitions/id"),
			 0);
	/* the schema outlives the registry and the caller's documents */
	pex_schema_registry_free(reg);
	json_decref(common);
	json_decref(rec);
	assert_int_equal(check(s, "\"\"", 0, &e), 1);
	assert_string_equal(e.spath[0],
			    "urn:x:common#/definitions/id/minLength");
	pex_schema_free(s);

	assert_int_equal(pex_schema_registry_new(&reg), 0);
	assert_int_equal(pex_schema_compile_uri(&s, reg, "urn:none"),
			 PEX_ENOTFOUND);
	assert_null(s);
	assert_int_equal(pex_schema_compile_uri(&s, reg, "urn:x:common#/nope"),
			 PEX_ENOTFOUND);
	pex_schema_registry_free(reg);
	pex_schema_registry_free(NULL);
	pex_schema_free(NULL);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_registry_files(void **state)
{
	char dir[] = "/tmp/pex_js_test_XXXXXX", path[512];
	pex_schema_registry *reg = NULL;
	pex_schema *s = NULL;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sub", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/sub/int.json", dir);
	write_file(path, "{\"type\": \"integer\"}");
	snprintf(path, sizeof(path), "%s/top.json", dir);
	write_file(path, "{\"$id\": \"urn:top\", \"items\": {\"$ref\":"
			 " \"http://h/sub/int.json\"}}");
	snprintf(path, sizeof(path), "%s/readme.txt", dir);
	write_file(path, "not json, not loaded");

	assert_int_equal(pex_schema_registry_new(&reg), 0);
	assert_int_equal(pex_schema_registry_add_dir(reg, "http://h/", dir),
			 0);
	assert_int_equal(pex_schema_compile_uri(&s, reg, "urn:top"), 0);
	assert_int_equal(check(s, "[1, 2]", 0, NULL), 0);
	assert_int_equal(check(s, "[1, \"2\"]", 0, NULL), 1);
	pex_schema_free(s);
	assert_int_equal(pex_schema_compile_uri(&s, reg, "http://h/top.json"),
			 0);
	pex_schema_free(s);

	/* missing, truncated, non-UTF-8 files */
	snprintf(path, sizeof(path), "%s/none.json", dir);
	assert_int_equal(pex_schema_registry_add_file(reg, "urn:n", path),
			 PEX_EIO);
	snprintf(path, sizeof(path), "%s/trunc.json", dir);
	write_file(path, "{\"type\": \"inte");
	assert_int_equal(pex_schema_registry_add_file(reg, "urn:t", path),
			 PEX_EINVALID);
	unlink(path);
	snprintf(path, sizeof(path), "%s/latin1.json", dir);
	write_file(path, "{\"title\": \"caf\xe9\"}");
	assert_int_equal(pex_schema_registry_add_file(reg, "urn:l", path),
			 PEX_EINVALID);
	/* a broken file makes add_dir fail loudly */
	assert_int_equal(pex_schema_registry_add_dir(reg, "http://h/", dir),
			 PEX_EINVALID);
	unlink(path);
	pex_schema_registry_free(reg);

	snprintf(path, sizeof(path), "%s/sub/int.json", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/sub", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/top.json", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/readme.txt", dir);
	unlink(path);
	rmdir(dir);
}

static void test_metaschema_builtin(void **state)
{
	pex_schema *s = compile_text(
		"{\"$ref\": \"http://json-schema.org/draft-07/schema#\"}");

	assert_int_equal(
		check(s, "{\"type\": \"string\", \"minLength\": 2}", 0, NULL),
		0);
	assert_int_equal(check(s, "{\"minLength\": -2}", 0, NULL), 1);
	assert_int_equal(check(s, "{\"type\": \"strung\"}", 0, NULL), 1);
	pex_schema_free(s);
}

/* ---- threads ---- */

struct thread_arg {
	const pex_schema *s;
	int bad;
};

static void *worker(void *p)
{
	struct thread_arg *a = p;
	json_t *good = json_loads("{\"a\": \"abc\", \"n\": [1, 2]}", 0, NULL);
	json_t *bad = json_loads("{\"a\": \"xbc\", \"n\": [1, 1]}", 0, NULL);
	int i;

	for (i = 0; i < 2000; i++) {
		if (pex_schema_validate(a->s, good, 0, NULL, NULL) != 0)
			a->bad++;
		if (pex_schema_validate(a->s, bad, PEX_SCHEMA_ALL_ERRORS, NULL,
					NULL) != 1)
			a->bad++;
	}
	json_decref(good);
	json_decref(bad);
	return NULL;
}

static void test_threads(void **state)
{
	pex_schema *s =
		compile_text("{\"properties\": {\"a\": {\"pattern\": \"^a\"},"
			     " \"n\": {\"uniqueItems\": true}}}");
	struct thread_arg args[4];
	pthread_t t[4];
	int i;

	for (i = 0; i < 4; i++) {
		args[i].s = s;
		args[i].bad = 0;
		assert_int_equal(pthread_create(&t[i], NULL, worker, &args[i]),
				 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(args[i].bad, 0);
	}
	pex_schema_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_locations),
		cmocka_unit_test(test_pointer_escaping),
		cmocka_unit_test(test_ref_location_is_absolute),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_first_vs_all),
		cmocka_unit_test(test_quiet_subschemas),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_deep_instance),
		cmocka_unit_test(test_deep_schema),
		cmocka_unit_test(test_ref_cycles),
		cmocka_unit_test(test_long_chain),
		cmocka_unit_test(test_bad_schemas),
		cmocka_unit_test(test_non_utf8),
		cmocka_unit_test(test_runaway_regex),
		cmocka_unit_test(test_no_format_flag),
		cmocka_unit_test(test_registry_and_uri),
		cmocka_unit_test(test_registry_files),
		cmocka_unit_test(test_metaschema_builtin),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
