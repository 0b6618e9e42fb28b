/*
 * The schemas the engine validates with. They are compiled into the
 * binary from schemas/ (cmake/embed.cmake), so a bundle always carries
 * exactly the schemas that checked it, wherever the binary runs.
 */
#ifndef PEX_MODEL_SCHEMAS_H
#define PEX_MODEL_SCHEMAS_H

#include <stddef.h>

#include "portex/collector.h"
#include "portex/jsonschema.h"

struct pex_schema_file {
	const char *name; /* relative to schemas/, e.g. "v1/contact.schema.json" */
	const char *data;
	size_t len;
};

/* Ends with { NULL, NULL, 0 }. */
extern const struct pex_schema_file pex_schema_files[];

const struct pex_schema_file *pex_schema_file_find(const char *name);

/* A registry holding every embedded JSON schema under its $id. New;
 * caller frees with pex_schema_registry_free(). */
int pex_schemas_registry(pex_schema_registry **out);

/* Compile the embedded schema with the given $id ("urn:portex:schema:1:
 * contact"). */
int pex_schemas_compile(pex_schema **out, const char *id);

/* $id of the record schema of a kind: "urn:portex:schema:1:<name>". */
const char *pex_record_schema_id(enum pex_record_kind kind, char *buf,
				 size_t size);

#endif
