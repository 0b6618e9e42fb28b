/*
 * Column-to-field mapping shared by tabular collectors (sql, csv).
 *
 * A source's `fields` option maps a column name to a model field path:
 *   "full_name": "name.full"     an object member
 *   "email":     "emails[]"      appended to a list
 *   "created":   "collected_at"  timestamps are normalised to RFC 3339 UTC
 * Columns that are not mapped (and not listed in `ignore`) land in the
 * record's "extra" under their own name, so nothing the source holds about
 * the person is dropped. Empty values are left out of mapped fields but
 * kept (as "") in extra.
 */
#ifndef PEX_MAPPER_H
#define PEX_MAPPER_H

#include "portex/collector.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pex_mapper pex_mapper;

/* fields: borrowed JSON object {column: path} or NULL. Checks every path
 * against the record kind's known fields; an unknown path is an error
 * naming the column. */
int pex_mapper_new(pex_mapper **out, enum pex_record_kind kind,
		   const json_t *fields);
void pex_mapper_free(pex_mapper *m);

/* One cell of a row. value NULL means SQL NULL. */
struct pex_cell {
	const char *name;
	const char *value;
	size_t len;
};

/*
 * Build a record from one row. id: the record id within the source;
 * matched_by: the identity that matched. Text goes through
 * pex_source_text(). Returns a new reference in *out.
 */
int pex_mapper_build(const pex_mapper *m, struct pex_source *src,
		     const struct pex_cell *cells, size_t ncells,
		     const char *id, const struct pex_identity *matched_by,
		     json_t **out);

/* {"type":..,"value":..[,"window":..]} for an identity; new reference. */
json_t *pex_matched_by(const struct pex_identity *id);


#ifdef __cplusplus
}
#endif
#endif
