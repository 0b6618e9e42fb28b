/*
 * What the access_log collector builds beside the events: visits
 * (sessions), devices (distinct user agents) and client IP addresses, for
 * one subject or for a batch of subjects at once.
 *
 * The collector feeds every matched request to pex_al_usage_add() in the
 * order it reads them (files oldest first, lines in file order). Each
 * identity belongs to one subject (struct pex_al_ident.subject), and a
 * subject's records go to emit(emit_data[subject], ...). Sessions are
 * keyed by (matched identity, user agent) and close after an idle gap,
 * judged per subject on that subject's requests only, so a subject's
 * visits come out the same whether it is collected alone or in a batch.
 * A closed session is emitted at once, so memory holds only the visits
 * still open. Devices and IP addresses are counted per subject in bounded
 * tables and emitted by pex_al_usage_finish().
 *
 * Every table is bounded (struct pex_al_limits): per subject, past a
 * bound its least recently active session is closed early, a session that
 * grows too long is split, and devices or addresses beyond the cap are
 * not listed; across the batch, open page text is capped (the least
 * recently active visit of any subject closes early) and so are the
 * device and address tables. Each case is reported once per collect with
 * pex_source_warn(), without naming a subject (a batch source's warnings
 * reach every subject's manifest).
 *
 * Ownership: the object is the caller's (pex_al_usage_free). add() copies
 * what it keeps; the identity table and emit_data array passed to new()
 * are borrowed and must outlive the object. Records go to emit, which
 * steals them.
 */
#ifndef PEX_AL_USAGE_H
#define PEX_AL_USAGE_H

#include <stddef.h>
#include <time.h>

#include "portex/collector.h"
#include "portex/uaparser.h"

struct pex_al_limits {
	long long idle_seconds;       /* gap that starts a new session */
	size_t max_devices;           /* distinct user agents, per subject */
	size_t max_ips;               /* distinct addresses, per subject */
	size_t max_devices_all;       /* ... and over all subjects */
	size_t max_ips_all;
	size_t max_open_sessions;     /* sessions open at once, per subject */
	size_t max_session_pages;     /* pages before a session is split */
	size_t max_open_bytes;        /* held by open sessions, all subjects */
};

/* One identity the collector matches with, as the usage tables see it. */
struct pex_al_ident {
	json_t *matched_by; /* owned by the collector */
	char tag[17];       /* short hash naming the identity in ids */
	size_t subject;     /* whose identity: index into emit_data */
};

/* One matched request. Pointers are borrowed for the call. */
struct pex_al_hit {
	size_t ident;          /* index into the identity table */
	time_t at;
	const char *event_id;  /* "<file>:<line>" */
	const char *path;      /* NULL: no usable request line */
	size_t path_len;
	int is_static;         /* a static asset: not a page */
	const char *ua;        /* NULL: not logged */
	size_t ua_len;
	const char *ip;        /* canonical client address or NULL */
};

struct pex_al_usage;

/* nsubjects: the length of emit_data; every idents[i].subject is below
 * it. */
int pex_al_usage_new(struct pex_al_usage **out, struct pex_source *src,
		     const struct pex_al_limits *lim,
		     const struct pex_al_ident *idents, size_t nidents,
		     size_t nsubjects, pex_emit_fn emit,
		     void *const *emit_data);

/* Count one request; may emit sessions it closes. */
int pex_al_usage_add(struct pex_al_usage *u, const struct pex_al_hit *h);

/* Emit the sessions still open, then devices (parsed with ua, which may
 * be NULL to leave browser/OS/device out) and addresses, each subject's
 * in the order it would get them alone. */
int pex_al_usage_finish(struct pex_al_usage *u, const pex_uaparser *ua);

/* Whether any device waits to be emitted (to load the parser lazily). */
int pex_al_usage_has_devices(const struct pex_al_usage *u);
/* How many distinct user agents the finish will parse (over all
 * subjects; one that two subjects share counts once). */
size_t pex_al_usage_agents(const struct pex_al_usage *u);

void pex_al_usage_free(struct pex_al_usage *u);

#endif
