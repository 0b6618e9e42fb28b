/* Access to the embedded schemas; see schemas.h. */
#include "model/schemas.h"

#include <stdio.h>
#include <string.h>

#include "portex/error.h"

const struct pex_schema_file *pex_schema_file_find(const char *name)
{
	const struct pex_schema_file *f;

	for (f = pex_schema_files; f->name; f++)
		if (!strcmp(f->name, name))
			return f;
	return NULL;
}

int pex_schemas_registry(pex_schema_registry **out)
{
	const struct pex_schema_file *f;
	pex_schema_registry *reg;
	int rc;

	*out = NULL;
	rc = pex_schema_registry_new(&reg);
	if (rc)
		return rc;
	for (f = pex_schema_files; f->name; f++) {
		json_error_t err;
		json_t *doc, *id;
		size_t n = strlen(f->name);

		if (n < 5 || strcmp(f->name + n - 5, ".json"))
			continue;
		doc = json_loadb(f->data, f->len, 0, &err);
		if (!doc) {
			pex_schema_registry_free(reg);
			return pex_error_set(PEX_EINVALID,
					     "embedded schema %s: %s", f->name,
					     err.text);
		}
		id = json_object_get(doc, "$id");
		rc = pex_schema_registry_add(reg, json_is_string(id) ?
					     json_string_value(id) : f->name,
					     doc);
		json_decref(doc);
		if (rc) {
			pex_schema_registry_free(reg);
			return rc;
		}
	}
	*out = reg;
	return 0;
}

int pex_schemas_compile(pex_schema **out, const char *id)
{
	pex_schema_registry *reg;
	int rc;

	*out = NULL;
	rc = pex_schemas_registry(&reg);
	if (rc)
		return rc;
	rc = pex_schema_compile_uri(out, reg, id);
	pex_schema_registry_free(reg);
	return rc;
}

const char *pex_record_schema_id(enum pex_record_kind kind, char *buf,
				 size_t size)
{
	snprintf(buf, size, "urn:portex:schema:1:%s",
		 pex_record_kind_name(kind));
	return buf;
}
