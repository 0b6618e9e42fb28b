/*
 * libFuzzer target: arbitrary bytes as an instance. Input "SCHEMA\nDOC"
 * (first line a schema) validates DOC against that schema as well; every
 * input is also validated, whole, against a fixed schema that uses most
 * draft-07 keywords and formats.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "portex/jsonschema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixed_text[] =
	"{\"definitions\": {\"node\": {\"type\": [\"object\", \"array\","
	" \"string\", \"number\", \"boolean\", \"null\"],"
	" \"properties\": {\"next\": {\"$ref\": \"#/definitions/node\"},"
	" \"d\": {\"format\": \"date-time\"}, \"e\": {\"format\": \"email\"},"
	" \"h\": {\"format\": \"hostname\"}, \"i\": {\"format\": \"ipv6\"},"
	" \"u\": {\"format\": \"uri\"}, \"p\": {\"format\": \"json-pointer\"},"
	" \"r\": {\"format\": \"regex\"}, \"t\": {\"format\": \"time\"},"
	" \"n\": {\"multipleOf\": 0.01, \"maximum\": 1e10},"
	" \"x\": {\"contentEncoding\": \"base64\","
	" \"contentMediaType\": \"application/json\"}},"
	" \"patternProperties\": {\"^[a-z]+[0-9]$\": {\"maxLength\": 3}},"
	" \"additionalProperties\": {\"$ref\": \"#/definitions/node\"},"
	" \"propertyNames\": {\"pattern\": \"^\\\\p{L}*\\\\w*$\","
	" \"maxLength\": 20},"
	" \"dependencies\": {\"a\": [\"b\"], \"c\": {\"required\": [\"d\"]}},"
	" \"items\": [{\"$ref\": \"#/definitions/node\"}, {\"const\": 1}],"
	" \"additionalItems\": {\"$ref\": \"#/definitions/node\"},"
	" \"contains\": {\"type\": \"string\"}, \"uniqueItems\": true,"
	" \"if\": {\"type\": \"string\"}, \"then\": {\"minLength\": 1},"
	" \"else\": {\"not\": {\"enum\": [42, \"x\", [1], {\"a\": 1}]}},"
	" \"anyOf\": [{\"type\": \"object\"}, {\"not\": {\"type\":"
	" \"object\"}}], \"oneOf\": [true, false]}},"
	" \"$ref\": \"#/definitions/node\"}";

static pex_schema *fixed;

static int count_errors(const pex_schema_error *e, void *payload)
{
	size_t *n = payload;

	*n += strlen(e->instance_path) + strlen(e->schema_path) +
	      strlen(e->message);
	return 0;
}

static void run(const pex_schema *s, const json_t *x)
{
	size_t n = 0;

	pex_schema_validate(s, x, PEX_SCHEMA_FIRST_ERROR, NULL, NULL);
	pex_schema_validate(s, x, PEX_SCHEMA_ALL_ERRORS, count_errors, &n);
	pex_schema_validate(s, x, PEX_SCHEMA_ALL_ERRORS | PEX_SCHEMA_NO_FORMAT,
			    NULL, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nl = memchr(text, '\n', size);
	json_t *x;

	if (!fixed) {
		json_t *j = json_loads(fixed_text, 0, NULL);

		if (!j || pex_schema_compile(&fixed, j, NULL, NULL) != 0)
			__builtin_trap();
		json_decref(j);
	}
	x = json_loadb(text, size, JSON_DECODE_ANY, NULL);
	if (x) {
		run(fixed, x);
		json_decref(x);
	}
	if (nl) {
		json_t *sj = json_loadb(text, (size_t)(nl - text),
					JSON_DECODE_ANY, NULL);
		pex_schema *s = NULL;

		x = json_loadb(nl + 1, size - (size_t)(nl - text) - 1,
			       JSON_DECODE_ANY, NULL);
		if (sj && x && pex_schema_compile(&s, sj, NULL, NULL) == 0)
			run(s, x);
		pex_schema_free(s);
		json_decref(sj);
		json_decref(x);
	}
	return 0;
}
