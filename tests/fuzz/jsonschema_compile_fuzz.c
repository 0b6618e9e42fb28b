/*
 * libFuzzer target: arbitrary bytes as a JSON Schema. Compiles them (no
 * registry, so only local refs and the built-in meta-schema resolve) and,
 * when that works, validates a few fixed instances in both error modes.
 * Finds crashes, leaks, hangs on hostile schemas ($ref loops, deep
 * nesting, bad regexes).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "portex/jsonschema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const instances[] = {
	"null",	   "true",
	"0",	   "-1.5",
	"1e300",   "\"\"",
	"\"abc\"", "\"2026-01-03T09:30:00Z\"",
	"[]",	   "[1, 1, \"a\", [null]]",
	"{}",	   "{\"a\": 1, \"b\": [\"x\"], \"c\": {\"d\": null}}",
};

static int count_errors(const pex_schema_error *e, void *payload)
{
	size_t *n = payload;

	/* touch every string the callback hands out */
	*n += strlen(e->instance_path) + strlen(e->schema_path) +
	      strlen(e->message);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *schema =
		json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	pex_schema *s = NULL;
	size_t i, n = 0;

	if (!schema)
		return 0;
	if (pex_schema_compile(&s, schema, "http://fuzz/root.json", NULL) ==
	    0) {
		for (i = 0; i < sizeof(instances) / sizeof(instances[0]);
		     i++) {
			json_t *x = json_loads(instances[i], JSON_DECODE_ANY,
					       NULL);

			pex_schema_validate(s, x, PEX_SCHEMA_FIRST_ERROR, NULL,
					    NULL);
			pex_schema_validate(s, x, PEX_SCHEMA_ALL_ERRORS,
					    count_errors, &n);
			json_decref(x);
		}
	}
	pex_schema_free(s);
	json_decref(schema);
	return 0;
}
