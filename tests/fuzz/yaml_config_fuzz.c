/*
 * libFuzzer target: arbitrary bytes as portex.yaml. The text goes through
 * pex_yaml_load_string() (libyaml to a jansson tree with line numbers) and,
 * when it parses, is checked against the config schema the way
 * pex_config_load() does it, every error being turned into a
 * FILE:LINE: PATH message. Any crash, leak or sanitizer report is a bug;
 * refusals are expected.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The build gives fuzz targets include/ only; the engine's internal
 * headers are reached relative to this file. */
#include "config/yaml.h"
#include "model/schemas.h"
#include "portex/config.h"
#include "portex/error.h"
#include "portex/jsonschema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pex_schema *schema;

struct ctx {
	const json_t *lines;
	unsigned count;
};

/* What config.c does per error: the line of the nearest node that has
 * one, and the pointer as a readable path. */
static int on_error(const pex_schema_error *e, void *payload)
{
	struct ctx *c = payload;
	char ptr[4096], msg[8192], *path, *slash;
	const json_t *l = NULL;

	snprintf(ptr, sizeof(ptr), "%s", e->instance_path);
	for (;;) {
		l = json_object_get(c->lines, ptr);
		if (l)
			break;
		slash = strrchr(ptr, '/');
		if (!slash)
			break;
		*slash = '\0';
	}
	path = pex_config_pointer_to_path(e->instance_path);
	if (!path)
		abort();
	snprintf(msg, sizeof(msg), "fuzz.yaml:%d: %s: %s",
		 l ? (int)json_integer_value(l) : 0, path, e->message);
	free(path);
	c->count++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = NULL, *lines = NULL;
	struct ctx c = { 0 };
	int rc;

	if (!schema && pex_schemas_compile(&schema,
					   "urn:portex:schema:1:config"))
		abort();
	rc = pex_yaml_load_string("fuzz.yaml", (const char *)data, size, &doc,
				  &lines);
	if (rc) {
		/* a refusal leaves nothing behind and says where */
		if (doc || lines || !pex_error_last()[0])
			abort();
		return 0;
	}
	if (!doc || !json_is_object(lines))
		abort();
	c.lines = lines;
	rc = pex_schema_validate(schema, doc, PEX_SCHEMA_ALL_ERRORS, on_error,
				 &c);
	if (rc < 0 || (rc == 1) != (c.count > 0))
		abort();
	json_decref(doc);
	json_decref(lines);
	return 0;
}
