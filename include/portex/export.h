/*
 * One export: every configured source, for one subject, into one bundle.
 *
 * Sources run in the order of the config. Identities a source reports
 * (a CRM row's customer id) are handed to the sources after it, and to
 * the ones before it in a further round, until no new identity appears
 * (at most PEX_EXPORT_ROUNDS_MAX rounds). Weak identities (ip) reach only
 * sources whose config says `weak_identities: true`.
 *
 * The engine checks every record a collector emits: it must meet its
 * schema and it must be matched by an identity that collector was given;
 * anything else fails the source. A failed source fails the export (no
 * bundle) unless allow_partial is set: then the bundle says
 * "complete": false and names the source and the reason.
 */
#ifndef PEX_EXPORT_H
#define PEX_EXPORT_H

#include <jansson.h>

#include "portex/collector.h"
#include "portex/config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PEX_EXPORT_ROUNDS_MAX 4

/* Progress: called when a source starts (records 0, done 0), every few
 * thousand records, and when it ends (done 1). */
typedef void (*pex_progress_fn)(void *data, const char *source_id,
				unsigned long long records, int done);

/* Batch mode: what one source found for one subject in a pass shared by
 * all subjects (see pex_export_batch). Internal to the engine. */
struct pex_precollected {
	/* the records: nrecs of them held as made (recs[i] of kinds[i];
	 * the replay takes each, leaving NULL), or one "KIND JSON" line
	 * each in the file spool */
	json_t **recs;
	const unsigned char *kinds;
	size_t nrecs;
	const char *spool;
	const char *error;     /* the source failed: why; else NULL */
	json_t *warnings;      /* the source's warnings about this subject:
				  its own and those that concern everyone */
};

struct pex_export_request {
	const pex_config *cfg;
	const struct pex_identity_set *identities;
	const char *request_id; /* may be NULL */
	const char *out_path;
	int allow_partial;
	pex_progress_fn progress;
	void *progress_data;
	/* batch mode only: per source (index in the config), or NULL */
	const struct pex_precollected *const *pre;
	/* make the bundle on the calling thread alone (a batch running
	 * several exports at once has no core to spare for more) */
	int single_thread;
	/* leave the fsync of out_path's folder to the caller, who does it
	 * before telling anyone the bundle exists (a batch: once for all
	 * its bundles, not once each) */
	int defer_dir_sync;
	/* not NULL: the bundle is left unsynced at a temporary name, given
	 * here (the caller's to free), for the caller to sync and rename
	 * to out_path (see commit_later in portex/bundle.h); a batch syncs
	 * many at once. NULL is stored when no bundle was written. */
	char **pending_tmp;
};

/* Export result codes (besides negative PEX_E* failures). */
#define PEX_EXPORT_COMPLETE 0
#define PEX_EXPORT_PARTIAL 1 /* bundle written, "complete": false */

/*
 * Runs the export. An identity of a type no source of the config uses
 * is refused with PEX_EUSAGE before anything is read. *summary (new reference, also on failure when it got
 * far enough to have one) describes the sources, the record counts, the
 * warnings and the bundle. On failure no file exists at out_path.
 */
int pex_export(const struct pex_export_request *req, json_t **summary);

/* 0 when every identity is one some source of cfg would search by
 * (pex_collector.identity_types; one with a time window only counts
 * sources with weak_identities: true); else PEX_EUSAGE saying which and
 * what to change. pex_export() and pex_export_batch() check this first;
 * callers may check earlier (the command line, row by row). */
int pex_export_check_identities(const pex_config *cfg,
				const struct pex_identity_set *ids);

/* One subject of a batch export. */
struct pex_batch_subject {
	const char *request_id; /* may be NULL */
	struct pex_identity_set identities;
	const char *out_path;
};

/*
 * Export several subjects, one bundle each, reading each source that can
 * (a collector with collect_batch) once for all of them. Every subject's
 * bundle is checked and sealed exactly as by pex_export(). *summaries:
 * new array, one summary per subject, each with "result": "complete",
 * "partial" or "failed" (and "error"); summaries may be NULL when
 * row_done takes what it needs of each (a big batch's summaries as JSON
 * values are most of its memory). Returns 0 when every bundle is
 * complete, PEX_EXPORT_PARTIAL when some are partial but none failed,
 * PEX_ERROR when any failed, PEX_EUSAGE (nothing done) for an identity
 * of a type no source uses.
 *
 * progress is called, on the calling thread, as each shared pass begins
 * and ends. After the shared passes, up to jobs bundles
 * (1..PEX_BATCH_JOBS_MAX) are made at a time, each on its own thread;
 * the summaries stay in subject order.
 * row_done (may be NULL) is called as each subject is done, with its
 * index and its summary (borrowed: with summaries, unchanged until
 * pex_export_batch returns; without, let go of when row_done returns),
 * from any of the jobs, never two at once: a caller that is interrupted
 * can tell which bundles were written.
 */
#define PEX_BATCH_JOBS_MAX 16
typedef void (*pex_batch_row_fn)(void *data, size_t row,
				 const json_t *summary);
int pex_export_batch(const pex_config *cfg,
		     const struct pex_batch_subject *subjects, size_t n,
		     int allow_partial, unsigned jobs,
		     pex_progress_fn progress, void *progress_data,
		     pex_batch_row_fn row_done, void *row_data,
		     json_t **summaries);

/* Try every source of a config: initialise it (open the database, read
 * the file header) without exporting anything. *report: new array of
 * {"id","collector","status","error"?,"warnings"?}, one per source in
 * order; "warnings" (strings) name a likely typo in an identity type.
 * Returns 0 when all are usable. */
int pex_check_sources(const pex_config *cfg, json_t **report);

#ifdef __cplusplus
}
#endif
#endif
