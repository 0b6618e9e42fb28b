/*
 * The bundle writer: records stream in, a sealed zip comes out.
 *
 *   pex_bundle_open()   makes a hidden work folder beside the output
 *   pex_bundle_add()    validates one record against its schema and
 *                       appends it, as JSON and as XML, to its section
 *   pex_bundle_seal()   assembles data/bundle.json and data/bundle.xml
 *                       from the envelope and the sections, validates
 *                       them (JSON Schema, XSD), hashes every file,
 *                       writes the manifest and the zip to a temporary
 *                       file, fsyncs it and renames it into place (or
 *                       leaves that to the caller: commit_later)
 *   pex_bundle_free()   removes whatever is left of the work; an unsealed
 *                       bundle leaves nothing behind
 *
 * Memory does not grow with the number of records: each record is
 * written out as soon as it is checked.
 */
#ifndef PEX_BUNDLE_H
#define PEX_BUNDLE_H

#include <jansson.h>

#include "portex/collector.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pex_bundle pex_bundle;

struct pex_bundle_options {
	int xml;          /* write data/bundle.xml (default on) */
	int compression;  /* deflate level 1..9 (default 3) */
	/* 1 (default): the JSON and XML text is compressed and checked by
	 * two threads of the bundle's own while records arrive; 0: on the
	 * calling thread, for callers that run several bundles at once */
	int threads;
	/* 1 (default): the seal fsyncs the output folder after the rename,
	 * so that the bundle's name is durable when the seal returns; 0:
	 * the caller does, once for many bundles (a batch) */
	int sync_dir;
	/* 0 (default): the seal fsyncs the zip and renames it into place.
	 * 1: the seal leaves the finished zip at its temporary name, not
	 * yet synced, for pex_bundle_take_pending(): a caller making many
	 * bundles syncs them together (one syncfs, not an fsync each) and
	 * only then renames them, so that no name the user asked for ever
	 * holds a zip that a crash could leave half on disk. */
	int commit_later;
};
#define PEX_BUNDLE_OPTIONS_INIT { 1, 3, 1, 1, 0 }

int pex_bundle_open(pex_bundle **out, const char *out_path,
		    const struct pex_bundle_options *opts);

/* Borrowed record; it must carry id, source and matched_by. A record that
 * fails its schema is an error (PEX_EINVALID) naming the record, the
 * place in it and the rule. */
int pex_bundle_add(pex_bundle *b, enum pex_record_kind kind,
		   const json_t *record);

unsigned long long pex_bundle_count(const pex_bundle *b,
				    enum pex_record_kind kind);

/*
 * envelope (borrowed): the top-level members of data/bundle.json other
 * than the record collections: schema, bundle_id, request_id,
 * generated_at, complete, engine, controller, subject, categories,
 * sources, warnings. The manifest is derived from it.
 */
int pex_bundle_seal(pex_bundle *b, const json_t *envelope);

/*
 * After a successful seal of a bundle opened with commit_later: the
 * temporary name its zip waits under (a new string, the caller's), now
 * the caller's to fsync (or syncfs) and then move to the output path with
 * pex_cleanup_rename() (core/cleanup.h), which also drops it from the
 * interruption registry; until then an interruption removes it.
 * pex_bundle_free() then leaves it alone. NULL when there is nothing to
 * take (no such seal, or taken already, or out of memory).
 */
char *pex_bundle_take_pending(pex_bundle *b);

void pex_bundle_free(pex_bundle *b);

/*
 * Attachment files (ticket attachments), streamed into the bundle at
 * attachments/<group>/<n>-<name>. Both group and name are made safe by
 * the writer: no path separators, no "..", no control characters,
 * bounded length; the name the source gave is kept in the record.
 * A file is written to the work folder while it arrives and is hashed on
 * the way; it joins the zip and the manifest at seal time, unless it is
 * dropped (pex_bundle_file_drop) because its record was not written.
 */
typedef struct pex_bundle_file pex_bundle_file;

int pex_bundle_file_begin(pex_bundle *b, const char *group,
			  const char *name, const char *media_type,
			  unsigned long long max_bytes,
			  pex_bundle_file **out);
/* PEX_ELIMIT once the file would pass max_bytes (nothing is kept then:
 * withhold it). */
int pex_bundle_file_write(pex_bundle_file *f, const void *data, size_t len);
/* Finish: *att (new) is {name, path, bytes, media_type, sha256} for the
 * message's attachment list. f is consumed. */
int pex_bundle_file_end(pex_bundle_file *f, json_t **att);
/* Give up on the file: *att (new) is {name, withheld: reason}. f is
 * consumed. */
void pex_bundle_file_withhold(pex_bundle_file *f, const char *reason,
			      json_t **att);
/* Remove every attachment ended since the last call to
 * pex_bundle_files_commit() (their record was dropped). */
void pex_bundle_files_drop_pending(pex_bundle *b);
void pex_bundle_files_commit(pex_bundle *b);

/*
 * Check a sealed bundle as its receiver would, trusting nothing but the
 * zip: every file the manifest lists exists with its size and SHA-256,
 * no file is unlisted, every JSON and XML file meets the schema the
 * manifest names (taken from the bundle's own schemas/ folder), and
 * data/bundle.json agrees with the manifest. *problems: new array of
 * one-line strings. Returns 0 when all holds, 1 when there are problems,
 * negative when the bundle cannot be read at all.
 */
int pex_bundle_verify(const char *path, json_t **problems);

/* What a bundle's manifest says of itself: 1 complete, 0 written while a
 * source failed (--allow-partial), -1 unreadable. A bundle can verify
 * and be incomplete. */
int pex_bundle_complete(const char *path);

#ifdef __cplusplus
}
#endif
#endif
