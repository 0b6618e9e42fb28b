/*
 * Running sources: the engine side of the collector interface.
 *
 * pex_source_new() makes one instance of a collector from its options
 * (a JSON object, borrowed), applying the collector's config map. The
 * export pipeline and the tests both drive collectors through this.
 */
#ifndef PEX_ENGINE_H
#define PEX_ENGINE_H

#include "portex/collector.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates and initialises (calls init) a source. basedir: directory that
 * relative paths in the options are resolved against (may be NULL: cwd).
 * On failure *out is NULL and pex_error_last() names the source. */
int pex_source_new(struct pex_source **out, const char *id,
		   const char *collector, const json_t *options,
		   const char *basedir);
/* What the collector can check beyond init without collecting (a CSV
 * file's header against the columns named): for `portex check`. */
int pex_source_check(struct pex_source *src);
/* Check a source's options against its collector's config map without
 * opening anything (unknown, missing, mistyped options). *bad_key names
 * the option a failure is about (borrowed from options), or NULL. */
int pex_collector_check_options(const char *collector, const json_t *options,
				const char **bad_key);
/* Calls collect. Returns its result. */
int pex_source_collect(struct pex_source *src,
		       const struct pex_identity_set *ids, pex_emit_fn emit,
		       void *emit_data);
/* The bundle the source's attachment files go to (borrowed; NULL:
 * none). */
struct pex_bundle;
void pex_source_set_bundle(struct pex_source *src, struct pex_bundle *b);

/* Calls collect_batch (the collector must have one). */
int pex_source_collect_batch(struct pex_source *src,
			     const struct pex_identity_set *subjects,
			     size_t n, pex_emit_fn emit,
			     void *const *emit_data);
/* Calls fini and frees. Accepts NULL. */
void pex_source_free(struct pex_source *src);

/* The warnings counted so far: new JSON array of
 * {"source":..,"message":..,"count":N}. */
json_t *pex_source_warnings(struct pex_source *src);

/* Text replacements (pex_source_text) are counted per record: the engine
 * keeps the count of a record it writes and drops that of a record it
 * discards as already written (found again through another identity). */
void pex_source_settle(struct pex_source *src, int keep);
/* Batch mode (after pex_source_collect_batch for several subjects): keep
 * the pending replacements as the given subject's, and that subject's
 * own warnings (pex_source_warn_subject), as a new array like
 * pex_source_warnings(); empty outside a batch. */
void pex_source_settle_subject(struct pex_source *src, size_t subject);
json_t *pex_source_subject_warnings(struct pex_source *src, size_t subject);
/* Identities the source reported (pex_source_add_identity); borrowed. */
const struct pex_identity_set *pex_source_identities(
	const struct pex_source *src);

/* Parse "type:value" (and for ip "ip:ADDR@START/END" or
 * "ip:ADDR@START/PT30M") into id; normalises the value. */
int pex_identity_parse(struct pex_identity *id, const char *text);
/* The window of a weak identity as matched_by writes it:
 * "START/END" in RFC 3339 UTC. Returns buf. */
#define PEX_WINDOW_BUFSZ 48
char *pex_identity_window(const struct pex_identity *id,
			  char buf[PEX_WINDOW_BUFSZ]);
/* Append a copy of id to set. */
int pex_identity_set_add(struct pex_identity_set *set,
			 const struct pex_identity *id);
void pex_identity_clear(struct pex_identity *id);
void pex_identity_set_clear(struct pex_identity_set *set);

#ifdef __cplusplus
}
#endif
#endif
