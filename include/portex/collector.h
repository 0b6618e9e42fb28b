/*
 * The collector interface.
 *
 * A collector is one const struct pex_collector in its own folder under
 * src/collectors/<name>/; the build registers every such folder. The engine
 * creates one source (an instance) per configured `sources[]` entry:
 *
 *   1. it allocates ctx_size zeroed bytes and fills the fields named by the
 *      config map (offsetof into that struct) from the entry's `options`,
 *      rejecting unknown keys and missing required ones;
 *   2. init(src, ctx) checks and opens what it needs;
 *   3. collect(src, ctx, ids, emit, emit_data) finds the subject's records
 *      and hands each one to emit(); it never writes output itself;
 *   4. fini(src, ctx) releases what init acquired; the engine then frees
 *      the option values it allocated and ctx itself.
 *
 * Records are jansson objects shaped by schemas/v1/<kind>.schema.json.
 * The collector sets every field but "source", which the engine fills, and
 * gives "id" as a value unique within the source (the engine prefixes it
 * with "<source id>:"). Every record must carry "matched_by".
 *
 * When a record matches several of the identities given to collect(),
 * its matched_by is the first of them in the order of the set. The engine
 * relies on this: in a later resolver round it passes the identities the
 * source has already seen first, followed by the new ones, and drops a
 * record credited to an old identity as already written.
 */
#ifndef PEX_COLLECTOR_H
#define PEX_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- identities ------------------------------------------------------ */

/*
 * One identity of the subject. Strong identities (email, customer_id,
 * phone, username) match anywhere. A weak identity (ip) carries a time
 * window and may only match events inside [not_before, not_after].
 * Values are normalised by pex_identity_normalize(): emails lower-cased,
 * IP addresses in canonical text form.
 */
struct pex_identity {
	char *type;
	char *value;
	int has_window;
	time_t not_before;
	time_t not_after;
	char *from_source; /* NULL when given with the request */
	char *from_record;
};

struct pex_identity_set {
	size_t count;
	struct pex_identity *items;
};

/* First identity of the given type, or NULL. Borrowed. */
const struct pex_identity *pex_identity_find(const struct pex_identity_set *s,
					     const char *type);

/* Normalise an identity value of a type for comparison (emails
 * lower-cased and trimmed, phones reduced to + and digits, others
 * trimmed). New string; caller frees. NULL on allocation failure. */
char *pex_identity_normalize(const char *type, const char *value, size_t len);

/* ---- records --------------------------------------------------------- */

enum pex_record_kind {
	PEX_REC_CONTACT = 0,
	PEX_REC_TICKET,
	PEX_REC_USAGE_EVENT,
	PEX_REC_SESSION,
	PEX_REC_DEVICE,
	PEX_REC_IP_ADDRESS,
	PEX_REC__COUNT
};

/* "contact", "ticket", "usage_event", ...: the schema file stem. */
const char *pex_record_kind_name(enum pex_record_kind kind);

/*
 * Hand one record to the engine. Steals the reference to record, also on
 * failure. Returns 0, or a negative PEX_E* code (a record that fails its
 * schema, a write error); the collector must then stop and return it.
 */
typedef int (*pex_emit_fn)(void *emit_data, enum pex_record_kind kind,
			   json_t *record);

/* ---- sources --------------------------------------------------------- */

/* One configured instance of a collector. Opaque; owned by the engine. */
struct pex_source;

const char *pex_source_id(const struct pex_source *src);
/* The directory relative paths in the config are resolved against. */
const char *pex_source_basedir(const struct pex_source *src);
/* Resolve path against the config's directory; new string, caller frees. */
char *pex_source_path(const struct pex_source *src, const char *path);

/* Log lines are tagged with the source id ("source crm: ..."). */
void pex_source_log(const struct pex_source *src, int level, const char *fmt,
		    ...) __attribute__((format(printf, 3, 4)));
#define PEX_LOG_ERROR 0
#define PEX_LOG_WARN 1
#define PEX_LOG_INFO 2
#define PEX_LOG_DEBUG 3

/* Count a warning for the manifest (e.g. a skipped malformed line).
 * Warnings with the same text are counted together. In a batch, such a
 * warning goes into every subject's bundle: it may concern any of them. */
void pex_source_warn(struct pex_source *src, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A warning about one subject's records only (a limit one subject's
 * visits reached): subject is the index into collect_batch's subjects,
 * 0 in collect. In a batch it goes into that subject's bundle alone. */
void pex_source_warn_subject(struct pex_source *src, size_t subject,
			     const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Make a JSON string from bytes read from the source: invalid UTF-8 and
 * characters XML 1.0 cannot carry are replaced with U+FFFD and counted in
 * the source's warnings. New reference; NULL only when out of memory.
 */
json_t *pex_source_text(struct pex_source *src, const char *s, size_t len);

/* Report a further identity of the subject found by this source (a CRM
 * row's customer id). Copies its arguments. */
int pex_source_add_identity(struct pex_source *src, const char *type,
			    const char *value, const char *record_id,
			    time_t not_before, time_t not_after,
			    int has_window);

/* ---- attachment files ------------------------------------------------ */

/*
 * A file that belongs to a record (a ticket's attachment), streamed into
 * the bundle as it is downloaded; collectors never write files themselves.
 * group is the record's id within the source; name is the file's name as
 * the source gives it (the engine makes the stored name safe). A file over
 * max_bytes makes pex_attachment_write() return PEX_ELIMIT: withhold it
 * with the reason. The JSON that end/withhold return (new reference) goes
 * into the record's attachment list; the files of a record that the
 * engine does not write are removed again.
 */
struct pex_attachment;

/* PEX_EUSAGE when the source is not exporting into a bundle (a check, a
 * batch pass): withhold the file then. */
int pex_source_attachment_begin(struct pex_source *src, const char *group,
				const char *name, const char *media_type,
				unsigned long long max_bytes,
				struct pex_attachment **out);
int pex_attachment_write(struct pex_attachment *a, const void *data,
			 size_t len);
/* Consumes a; *att: {name, path, bytes, media_type, sha256}. */
int pex_attachment_end(struct pex_attachment *a, json_t **att);
/* Consumes a (NULL allowed); *att: {name, withheld: reason}. */
void pex_attachment_withhold(struct pex_attachment *a, const char *name,
			     const char *reason, json_t **att);

/* ---- the descriptor -------------------------------------------------- */

enum pex_opt_type {
	PEX_OPT_STR,     /* char *          (engine-owned copy) */
	PEX_OPT_INT,     /* long long */
	PEX_OPT_BOOL,    /* int */
	PEX_OPT_STRLIST, /* char ** NULL-terminated (engine-owned) */
	PEX_OPT_JSON,    /* json_t * borrowed (any value, e.g. a map) */
};

#define PEX_OPT_REQUIRED 0x1
#define PEX_OPT_SECRET 0x2 /* resolve ${ENV} / file:PATH, never log */

struct pex_config_map {
	enum pex_opt_type type;
	const char *name;
	const char *def; /* default as text ("100", "true"), or NULL */
	int flags;
	size_t offset;   /* offsetof into the collector's context */
	const char *desc;
};

struct pex_collector {
	const char *name;
	const char *description;
	const struct pex_config_map *config_map; /* ends with { .name = NULL } */
	size_t ctx_size;
	int (*init)(struct pex_source *src, void *ctx);
	int (*collect)(struct pex_source *src, void *ctx,
		       const struct pex_identity_set *ids, pex_emit_fn emit,
		       void *emit_data);
	void (*fini)(struct pex_source *src, void *ctx);
	/*
	 * Optional: collect for several subjects in one pass over the
	 * source (a large log read once for a hundred people). subjects[i]
	 * are the identities of subject i; records of subject i go to
	 * emit(emit_data[i], ...). The same rules as collect() apply per
	 * subject. A batch collector does not report identities. NULL: the
	 * engine calls collect() once per subject instead.
	 */
	int (*collect_batch)(struct pex_source *src, void *ctx,
			     const struct pex_identity_set *subjects,
			     size_t nsubjects, pex_emit_fn emit,
			     void *const *emit_data);
	/*
	 * Optional: add to types (a JSON object used as a set) the identity
	 * types a source with these options (as written in the config,
	 * before defaults) searches by. The engine refuses a subject's
	 * identity that no source would search by before anything is read,
	 * so that "emial:..." or an email given to a log-only config cannot
	 * yield a bundle that wrongly says nothing is held. NULL: every
	 * word of the options that could name a type counts (the match maps
	 * and :name parameters of sql and csv).
	 */
	void (*identity_types)(const json_t *options, json_t *types);
	/* Optional, for `portex check` after init: what init leaves to
	 * collect (open the file, read its header) done now, so that a
	 * config's mistakes show before an export. 0 or a PEX_E* error. */
	int (*check)(struct pex_source *src, void *ctx);
};

/* NULL-terminated list of the collectors compiled in. */
const struct pex_collector *const *pex_collectors_builtin(void);
const struct pex_collector *pex_collector_find(const char *name);

#ifdef __cplusplus
}
#endif
#endif
