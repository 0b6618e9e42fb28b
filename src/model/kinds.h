/*
 * The record kinds of the model and the fields a tabular source may map
 * into each (mirrors schemas/v1/<kind>.schema.json; a test keeps the two
 * in step).
 */
#ifndef PEX_MODEL_KINDS_H
#define PEX_MODEL_KINDS_H

#include "portex/collector.h"

enum pex_field_type {
	PEX_F_TEXT,   /* "a" */
	PEX_F_LIST,   /* "a[]": list of text */
	PEX_F_TIME,   /* normalised to RFC 3339 UTC */
	PEX_F_INT,
	PEX_F_OBJECT, /* "a.b": members listed in sub */
	PEX_F_JSON,   /* "a": the column holds JSON text (e.g. json_agg) */
};

struct pex_field {
	const char *name;
	enum pex_field_type type;
	const char *const *sub; /* PEX_F_OBJECT: allowed members */
};

/* NULL-terminated field table of a kind (name == NULL ends it). */
const struct pex_field *pex_kind_fields(enum pex_record_kind kind);
/* Kind by name ("contact"); -1 when unknown. */
int pex_record_kind_from_name(const char *name);
/* The bundle's collection a kind lands in: "contacts", "tickets", ... */
const char *pex_record_kind_plural(enum pex_record_kind kind);

#endif
