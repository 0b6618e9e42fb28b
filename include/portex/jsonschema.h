/*
 * JSON Schema (draft-07) validation over jansson.
 *
 * A schema is compiled once (pex_schema_compile) into an internal form and
 * can then validate any number of instances; a compiled schema is read-only
 * and may be shared by threads. References to other documents resolve only
 * through a registry the caller fills; the validator never opens a URL.
 *
 * Ownership: the registry keeps its own reference to every document added
 * to it. A compiled schema keeps the registry's documents alive it needs, so
 * the registry may be freed before the schema. Error strings handed to the
 * callback are borrowed and valid only during the call.
 */
#ifndef PEX_JSONSCHEMA_H
#define PEX_JSONSCHEMA_H

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pex_schema_registry pex_schema_registry;
typedef struct pex_schema pex_schema;

int pex_schema_registry_new(pex_schema_registry **out);
void pex_schema_registry_free(pex_schema_registry *reg);

/* Register doc under uri (its "$id" is registered as well, when present).
 * Does not steal: the registry takes its own reference. */
int pex_schema_registry_add(pex_schema_registry *reg, const char *uri,
			    json_t *doc);
/* Load a JSON file and register it under uri. */
int pex_schema_registry_add_file(pex_schema_registry *reg, const char *uri,
				 const char *path);
/* Register every *.json below dir (recursively) as base_uri + relative
 * path, e.g. base "http://localhost:1234/" + "folder/x.json". */
int pex_schema_registry_add_dir(pex_schema_registry *reg,
				const char *base_uri, const char *dir);

/*
 * Compile schema (borrowed) with base URI base_uri (may be NULL; the
 * schema's own "$id" wins). reg may be NULL when no remote refs are used.
 * On failure (*out stays NULL) pex_error_last() says why: an invalid
 * regex, an unresolvable $ref, a keyword of the wrong type.
 */
int pex_schema_compile(pex_schema **out, json_t *schema,
		       const char *base_uri, pex_schema_registry *reg);
/* Compile the schema found at uri (with an optional "#/json/pointer"
 * fragment) in reg, e.g. "urn:portex:bundle:1#/definitions/contact". */
int pex_schema_compile_uri(pex_schema **out, pex_schema_registry *reg,
			   const char *uri);
void pex_schema_free(pex_schema *schema);

typedef struct pex_schema_error {
	/* JSON Pointer into the instance, "" = root */
	const char *instance_path;
	/* absolute keyword location: document URI + "#" + JSON Pointer into
	 * the schema, e.g. "urn:portex:schema:1:common#/definitions/x/type" */
	const char *schema_path;
	const char *message;       /* one line, e.g. "required property
				      \"email\" is missing" */
} pex_schema_error;

/* Return non-zero from the callback to stop early. */
typedef int (*pex_schema_error_cb)(const pex_schema_error *err, void *payload);

#define PEX_SCHEMA_FIRST_ERROR 0 /* stop at the first error */
#define PEX_SCHEMA_ALL_ERRORS 1  /* report every error */
#define PEX_SCHEMA_NO_FORMAT 2   /* treat "format" as an annotation only */

/*
 * Validate instance against schema. Returns 0 when valid, 1 when invalid
 * (cb, if not NULL, was called once per error), negative PEX_E* when
 * validation could not be carried out (e.g. nesting deeper than the
 * built-in limit; pex_error_last() says why).
 */
int pex_schema_validate(const pex_schema *schema, const json_t *instance,
			int flags, pex_schema_error_cb cb, void *payload);

#ifdef __cplusplus
}
#endif
#endif
