/*
 * The export pipeline; see include/portex/export.h.
 */
#include "portex/export.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <openssl/rand.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bundle/jsonout.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "model/kinds.h"
#include "portex/bundle.h"
#include "portex/engine.h"
#include "portex/error.h"
#include "portex/mapper.h"

#define PEX_PROGRESS_EVERY 4096

struct run {
	const struct pex_export_request *req;
	pex_bundle *bundle;
	json_t *src_cfg;       /* borrowed: the source's config entry */
	const char *source_id;
	json_t *source_json;   /* the same, made once per source */
	struct pex_source *src;
	const struct pex_identity_set *given; /* what the collector got */
	size_t nold;           /* given[0, nold) came in earlier rounds */
	int fatal;             /* the bundle itself could not be written */
	unsigned long long records;
	json_t *seen;          /* ids of non-event records already written */
	struct pex_buf idbuf;
	/* the last window written out by identity_index(), by its bounds:
	 * a subject's records name the same few windows over and over */
	int win_set;
	time_t win_from, win_to;
	char win[PEX_WINDOW_BUFSZ];
};

/* The window of id as text, from the last one made when it is the
 * same. */
static const char *window_text(struct run *r, const struct pex_identity *id)
{
	if (!r->win_set || r->win_from != id->not_before ||
	    r->win_to != id->not_after) {
		pex_identity_window(id, r->win);
		r->win_from = id->not_before;
		r->win_to = id->not_after;
		r->win_set = 1;
	}
	return r->win;
}

/* Index of the identity in ids that matched_by names, or -1. */
static long identity_index(struct run *r, const struct pex_identity_set *ids,
			   const json_t *mb)
{
	const char *type = json_string_value(json_object_get(mb, "type"));
	const char *value = json_string_value(json_object_get(mb, "value"));
	const char *window = json_string_value(json_object_get(mb,
							       "window"));
	size_t i;

	if (!type || !value)
		return -1;
	for (i = 0; i < ids->count; i++) {
		const struct pex_identity *id = &ids->items[i];

		if (strcmp(id->type, type) || strcmp(id->value, value))
			continue;
		if (!id->has_window) {
			if (!window)
				return (long)i;
			continue;
		}
		if (window && !strcmp(window, window_text(r, id)))
			return (long)i;
	}
	return -1;
}

static int emit(void *data, enum pex_record_kind kind, json_t *record)
{
	struct run *r = data;
	json_t *id, *mb;
	long which;
	int rc;

	if (!json_is_object(record)) {
		json_decref(record);
		pex_bundle_files_drop_pending(r->bundle);
		return pex_error_set(PEX_EUSAGE, "source %s emitted a record "
				     "that is not an object", r->source_id);
	}
	/* Privacy guard: whatever the collector did, a record reaches the
	 * bundle only when it names an identity this source was given. */
	mb = json_object_get(record, "matched_by");
	which = identity_index(r, r->given, mb);
	if (which < 0) {
		json_decref(record);
		pex_bundle_files_drop_pending(r->bundle);
		return pex_error_set(PEX_EINVALID,
				     "source %s emitted a %s record not "
				     "matched by any identity of the subject",
				     r->source_id,
				     pex_record_kind_name(kind));
	}
	if ((size_t)which < r->nold) {
		/* credited to an identity of an earlier round: written
		 * then (collectors credit the first identity that
		 * matches, and the old ones come first) */
		json_decref(record);
		pex_bundle_files_drop_pending(r->bundle);
		if (r->src)
			pex_source_settle(r->src, 0);
		return 0;
	}
	id = json_object_get(record, "id");
	pex_buf_reset(&r->idbuf);
	rc = pex_buf_printf(&r->idbuf, "%s:%s", r->source_id,
			    json_is_string(id) ? json_string_value(id) : "");
	if (rc) {
		json_decref(record);
		return rc;
	}
	if (kind != PEX_REC_USAGE_EVENT) {
		if (json_object_get(r->seen, r->idbuf.data)) {
			json_decref(record); /* found again by another id */
			pex_bundle_files_drop_pending(r->bundle);
			if (r->src)
				pex_source_settle(r->src, 0);
			return 0;
		}
		json_object_set_new(r->seen, r->idbuf.data, json_true());
	}
	json_object_set_new(record, "id", json_stringn_nocheck(r->idbuf.data,
							       r->idbuf.len));
	json_object_set(record, "source", r->source_json);
	if (r->src)
		pex_source_settle(r->src, 1);
	rc = pex_bundle_add(r->bundle, kind, record);
	json_decref(record);
	if (rc)
		pex_bundle_files_drop_pending(r->bundle);
	else
		pex_bundle_files_commit(r->bundle);
	if (rc == PEX_EIO || rc == PEX_ENOMEM)
		r->fatal = 1; /* not the source's fault: stop the export */
	if (rc)
		return pex_error_wrap(rc, "source %s", r->source_id);
	r->records++;
	if (r->req->progress && r->records % PEX_PROGRESS_EVERY == 0)
		r->req->progress(r->req->progress_data, r->source_id,
				 r->records, 0);
	return 0;
}

/* Batch mode: hand the records a shared pass spooled for this subject
 * to emit(), which checks them as if the collector had just made them. */
static int replay(const struct pex_precollected *pre, struct run *r)
{
	const char *name = pre->spool;
	FILE *f;
	char *line = NULL;
	size_t cap = 0, i;
	ssize_t len;
	int rc = 0;

	/* held as made: no text to read back */
	for (i = 0; !rc && i < pre->nrecs; i++) {
		json_t *rec = pre->recs[i];

		pre->recs[i] = NULL; /* emit() takes it */
		rc = emit(r, (enum pex_record_kind)pre->kinds[i], rec);
	}
	if (rc || !pre->spool)
		return rc; /* all in memory, or nothing found */
	f = fopen(pre->spool, "rb");
	if (!f)
		return pex_error_set(PEX_EIO, "source %s: cannot read %s: %s",
				     r->source_id, name, strerror(errno));
	while (!rc && (len = getline(&line, &cap, f)) > 0) {
		json_error_t err;
		json_t *rec;
		char *end;
		long kind = strtol(line, &end, 10);

		if (end == line || *end != ' ' || kind < 0 ||
		    kind >= PEX_REC__COUNT) {
			rc = pex_error_set(PEX_EIO, "source %s: spool %s is "
					   "damaged", r->source_id, name);
			break;
		}
		rec = json_loadb(end + 1, (size_t)(len - (end + 1 - line)),
				 0, &err);
		if (!rec) {
			rc = pex_error_set(PEX_EIO, "source %s: spool %s: %s",
					   r->source_id, name, err.text);
			break;
		}
		rc = emit(r, (enum pex_record_kind)kind, rec);
	}
	if (!rc && ferror(f))
		rc = pex_error_set(PEX_EIO, "source %s: cannot read %s",
				   r->source_id, name);
	free(line);
	fclose(f);
	return rc;
}

static int same_identity(const struct pex_identity *a,
			 const struct pex_identity *b)
{
	return !strcmp(a->type, b->type) && !strcmp(a->value, b->value) &&
	       a->has_window == b->has_window &&
	       a->not_before == b->not_before && a->not_after == b->not_after;
}

static int add_new_identities(struct pex_identity_set *all,
			      const struct pex_identity_set *found)
{
	size_t i, j;
	int rc;

	for (i = 0; i < found->count; i++) {
		for (j = 0; j < all->count; j++)
			if (same_identity(&all->items[j], &found->items[i]))
				break;
		if (j < all->count)
			continue;
		rc = pex_identity_set_add(all, &found->items[i]);
		if (rc)
			return rc;
	}
	return 0;
}

static json_t *identities_json(const struct pex_identity_set *ids)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; i < ids->count; i++) {
		json_t *o = pex_matched_by(&ids->items[i]);

		if (ids->items[i].from_source) {
			json_t *f = json_pack("{s:s}", "source",
					      ids->items[i].from_source);

			if (ids->items[i].from_record)
				json_object_set_new(f, "record", json_string(
					ids->items[i].from_record));
			json_object_set_new(o, "found_by", f);
		}
		json_array_append_new(arr, o);
	}
	return arr;
}

static void uuid_v4(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1) {
		/* libcrypto without entropy: fall back to the time */
		unsigned long long t = (unsigned long long)time(NULL);

		memset(b, 0, sizeof(b));
		memcpy(b, &t, sizeof(t));
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
}

static json_t *categories_json(const json_t *cfg)
{
	json_t *out = json_array(), *c;
	const char *name;

	json_object_foreach(json_object_get(cfg, "categories"), name, c) {
		json_t *o = json_pack("{s:s}", "name", name);

		json_object_update(o, c);
		json_array_append_new(out, o);
	}
	return out;
}

/* The identities a source may see: weak ones only when it accepts them.
 * Those it saw in earlier rounds (index < seen) come first; *nold says
 * how many. */
static void select_identities(const json_t *scfg,
			      const struct pex_identity_set *all,
			      size_t seen, struct pex_identity_set *out,
			      size_t *nold)
{
	int weak_ok = json_is_true(json_object_get(scfg, "weak_identities"));
	size_t i;

	out->count = 0;
	*nold = 0;
	for (i = 0; i < all->count; i++) {
		if (all->items[i].has_window && !weak_ok)
			continue;
		out->items[out->count++] = all->items[i];
		if (i < seen)
			(*nold)++;
	}
}

struct source_state {
	json_t *status;       /* the bundle's sources[] entry */
	struct pex_source *src;
	size_t seen_upto;     /* identities [0, seen_upto) already given */
	int failed;
};

static void set_failed(struct source_state *st, const char *why)
{
	st->failed = 1;
	json_object_set_new(st->status, "status", json_string("failed"));
	json_object_set_new(st->status, "error", json_string(why));
}

/* Identity types in common use: a source of a collector that cannot list
 * its own types counts as searching by those its options name, and
 * check's typo hints measure a source's types against them. */
static const char *const common[] = {
	"email", "phone", "customer_id", "username", "ip",
	"cookie_id", "user_id", "account_id", NULL
};

/*
 * Refuse an identity no source would search by, before anything is read:
 * a misspelt type ("emial:"), an email given to a config of web logs
 * only, or an address with a time window (a weak identity) where no
 * source accepts weak identities would otherwise give a bundle that
 * wrongly says nothing is held.
 */
int pex_export_check_identities(const pex_config *cfg,
				const struct pex_identity_set *ids)
{
	const json_t *sources = json_object_get(pex_config_root(cfg),
						"sources");
	json_t *strong = json_object(), *weak = json_object(),
	       *named = json_object();
	const json_t *s;
	size_t i, j;
	int rc = 0;

	if (!strong || !weak || !named) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	json_array_foreach(sources, i, s) {
		const struct pex_collector *col = pex_collector_find(
			json_string_value(json_object_get(s, "collector")));
		const json_t *opts = json_object_get(s, "options");
		json_t *t = json_object();
		const char *k;
		json_t *v;

		if (!t) {
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
			goto cleanup;
		}
		if (col && col->identity_types) {
			col->identity_types(opts, t);
			json_object_update(named, t);
		} else {
			pex_config_type_words(opts, t);
			for (j = 0; common[j]; j++)
				if (json_object_get(t, common[j]))
					json_object_set_new(named, common[j],
							    json_true());
		}
		json_object_foreach(t, k, v) {
			json_object_set_new(strong, k, json_true());
			if (json_is_true(json_object_get(s,
							 "weak_identities")))
				json_object_set_new(weak, k, json_true());
		}
		json_decref(t);
	}
	for (i = 0; !rc && i < ids->count; i++) {
		const struct pex_identity *id = &ids->items[i];
		struct pex_buf list = PEX_BUF_INIT(4096);
		const char *k;
		json_t *v;

		if (json_object_get(id->has_window ? weak : strong, id->type))
			continue;
		json_object_foreach(named, k, v)
			pex_buf_printf(&list, "%s%s", list.len ? ", " : "", k);
		if (id->has_window && json_object_get(strong, id->type))
			rc = pex_error_set(PEX_EUSAGE, "identity %s:%s: an "
				"identity with a time window is weak, and no "
				"source in %s accepts weak identities (set "
				"weak_identities: true on the source that "
				"should search by it)", id->type, id->value,
				pex_config_path(cfg));
		else
			rc = pex_error_set(PEX_EUSAGE, "identity %s:%s: no "
				"source in %s searches by identities of type "
				"'%s' (they search by: %s); check the spelling "
				"or the config", id->type, id->value,
				pex_config_path(cfg), id->type,
				list.data ? list.data : "none");
		pex_buf_free(&list);
	}
cleanup:
	json_decref(strong);
	json_decref(weak);
	json_decref(named);
	return rc;
}

int pex_export(const struct pex_export_request *req, json_t **summary)
{
	const json_t *cfg = pex_config_root(req->cfg);
	const json_t *sources = json_object_get(cfg, "sources");
	struct pex_identity_set all = { 0 }, given = { 0 };
	struct source_state *st = NULL;
	struct run r = { 0 };
	json_t *envelope = NULL, *statuses = json_array(),
	       *warnings = json_array();
	struct pex_bundle_options bopts = PEX_BUNDLE_OPTIONS_INIT;
	char uuid[37], now[PEX_TIME_BUFSZ];
	size_t i, nsrc = json_array_size(sources), failed = 0;
	int rc = 0, round, complete;

	*summary = NULL;
	rc = pex_export_check_identities(req->cfg, req->identities);
	if (rc)
		goto cleanup;
	for (i = 0; i < req->identities->count; i++) {
		rc = pex_identity_set_add(&all, &req->identities->items[i]);
		if (rc)
			goto cleanup;
	}
	if (json_is_false(json_object_get(json_object_get(cfg, "bundle"),
					  "xml")))
		bopts.xml = 0;
	if (json_is_integer(json_object_get(json_object_get(cfg, "bundle"),
					    "compression")))
		bopts.compression = (int)json_integer_value(json_object_get(
			json_object_get(cfg, "bundle"), "compression"));
	if (req->single_thread)
		bopts.threads = 0;
	if (req->defer_dir_sync)
		bopts.sync_dir = 0;
	if (req->pending_tmp) {
		*req->pending_tmp = NULL;
		bopts.commit_later = 1;
	}
	rc = pex_bundle_open(&r.bundle, req->out_path, &bopts);
	if (rc)
		goto cleanup;
	r.req = req;
	r.seen = json_object();
	pex_buf_init(&r.idbuf, 64 * 1024);
	st = calloc(nsrc ? nsrc : 1, sizeof(*st));
	if (!st) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < nsrc; i++) {
		json_t *s = json_array_get(sources, i);

		st[i].status = json_pack("{s:O, s:O, s:O, s:s, s:i}",
			"id", json_object_get(s, "id"),
			"collector", json_object_get(s, "collector"),
			"category", json_object_get(s, "category"),
			"status", "ok", "records", 0);
		if (json_is_string(json_object_get(s, "description")))
			json_object_set(st[i].status, "description",
					json_object_get(s, "description"));
		if (json_is_false(json_object_get(s, "enabled")))
			json_object_set_new(st[i].status, "status",
					    json_string("skipped"));
		json_array_append(statuses, st[i].status);
	}

	for (round = 0; round < PEX_EXPORT_ROUNDS_MAX; round++) {
		size_t before = all.count;

		for (i = 0; i < nsrc; i++) {
			json_t *s = json_array_get(sources, i);
			const char *sid = json_string_value(json_object_get(s,
									"id"));
			const struct pex_precollected *pre;
			struct pex_identity *items;

			if (st[i].failed || json_is_false(json_object_get(s,
							   "enabled")))
				continue;
			items = calloc(all.count + 1, sizeof(*items));
			if (!items) {
				rc = pex_error_set(PEX_ENOMEM, "out of memory");
				goto cleanup;
			}
			given.items = items;
			select_identities(s, &all, st[i].seen_upto, &given,
					  &r.nold);
			st[i].seen_upto = all.count;
			if (given.count == r.nold) { /* nothing new for it */
				free(items);
				given.items = NULL;
				continue;
			}
			pre = req->pre ? req->pre[i] : NULL;
			if (pre && !st[i].src && r.nold == 0) {
				/* batch mode, first round: this source was
				 * read once for every subject; replay what it
				 * found for this one */
				if (pre->error) {
					set_failed(&st[i], pre->error);
					free(items);
					given.items = NULL;
					continue;
				}
			} else if (!st[i].src) {
				char line[32] = "";

				rc = pex_source_new(&st[i].src, sid,
					json_string_value(json_object_get(s,
						"collector")),
					json_object_get(s, "options"),
					pex_config_dir(req->cfg));
				if (rc) {
					snprintf(line, sizeof(line),
						 "/sources/%zu", i);
					pex_error_wrap(rc, "%s:%d",
						pex_config_path(req->cfg),
						pex_config_line(req->cfg,
								line));
					set_failed(&st[i], pex_error_last());
					rc = 0;
					free(items);
					given.items = NULL;
					continue;
				}
			}
			if (req->progress)
				req->progress(req->progress_data, sid,
					      r.records, 0);
			r.source_id = sid;
			json_decref(r.source_json);
			r.source_json = json_string(sid);
			r.src = st[i].src;
			if (st[i].src)
				pex_source_set_bundle(st[i].src, r.bundle);
			r.given = &given;
			r.records = json_integer_value(json_object_get(
				st[i].status, "records"));
			if (pre && !st[i].src)
				rc = replay(pre, &r);
			else
				rc = pex_source_collect(st[i].src, &given,
							emit, &r);
			/* files no written record names do not stay */
			pex_bundle_files_drop_pending(r.bundle);
			json_object_set_new(st[i].status, "records",
					    json_integer((json_int_t)r.records));
			if (req->progress)
				req->progress(req->progress_data, sid,
					      r.records, 1);
			free(items);
			given.items = NULL;
			if (r.fatal)
				goto cleanup; /* our own output failed */
			if (rc) {
				set_failed(&st[i], pex_error_last());
				rc = 0;
				continue;
			}
			if (!st[i].src)
				continue; /* batch sources report no
					     identities */
			rc = add_new_identities(&all, pex_source_identities(
						st[i].src));
			if (rc)
				goto cleanup;
		}
		if (all.count == before)
			break;
	}

	for (i = 0; i < nsrc; i++) {
		if (st[i].failed)
			failed++;
		if (st[i].src) {
			json_t *w = pex_source_warnings(st[i].src);

			json_array_extend(warnings, w);
			json_decref(w);
		} else if (req->pre && req->pre[i] && req->pre[i]->warnings) {
			/* shared by the batch's exports: copied */
			json_t *w = json_deep_copy(req->pre[i]->warnings);

			json_array_extend(warnings, w);
			json_decref(w);
		}
	}
	complete = failed == 0;
	uuid_v4(uuid);
	pex_time_format(time(NULL), now);
	envelope = json_object();
	json_object_set_new(envelope, "schema",
			    json_string("urn:portex:bundle:1"));
	json_object_set_new(envelope, "bundle_id", json_string(uuid));
	if (req->request_id)
		json_object_set_new(envelope, "request_id",
				    json_string(req->request_id));
	json_object_set_new(envelope, "generated_at", json_string(now));
	json_object_set_new(envelope, "complete", json_boolean(complete));
	json_object_set_new(envelope, "engine", json_pack("{s:s, s:s}",
			    "name", "portex", "version", PEX_VERSION));
	json_object_set(envelope, "controller",
			json_object_get(cfg, "controller"));
	json_object_set_new(envelope, "subject", json_pack("{s:o}",
			    "identities", identities_json(&all)));
	json_object_set_new(envelope, "categories", categories_json(cfg));
	/* The bundle is the person's: a failed source's reason there says
	 * what happened, not where (the detailed one, with the server's
	 * paths and config lines, is the operator's, in the summary). */
	{
		json_t *pub = json_deep_copy(statuses), *st_i;
		size_t j;

		json_array_foreach(pub, j, st_i)
			if (json_object_get(st_i, "error"))
				json_object_set_new(st_i, "error", json_string(
					"the source could not be read; the "
					"organisation has the technical "
					"details"));
		json_object_set_new(envelope, "sources", pub);
	}
	json_object_set(envelope, "warnings", warnings);

	*summary = json_pack("{s:s, s:s, s:b, s:O, s:O, s:{s:I, s:I, s:I, "
			     "s:I, s:I, s:I}}",
		"bundle", req->out_path, "bundle_id", uuid,
		"complete", complete, "sources", statuses,
		"warnings", warnings, "records",
		"contacts", (json_int_t)pex_bundle_count(r.bundle,
							 PEX_REC_CONTACT),
		"tickets", (json_int_t)pex_bundle_count(r.bundle,
							PEX_REC_TICKET),
		"events", (json_int_t)pex_bundle_count(r.bundle,
						       PEX_REC_USAGE_EVENT),
		"sessions", (json_int_t)pex_bundle_count(r.bundle,
							 PEX_REC_SESSION),
		"devices", (json_int_t)pex_bundle_count(r.bundle,
							PEX_REC_DEVICE),
		"ip_addresses", (json_int_t)pex_bundle_count(r.bundle,
						PEX_REC_IP_ADDRESS));
	if (!complete && !req->allow_partial) {
		json_object_set_new(*summary, "bundle", json_null());
		json_object_del(*summary, "bundle_id"); /* none was made */
		rc = pex_error_set(PEX_ERROR,
				   "%zu of %zu sources failed; no bundle was "
				   "written: put right what the failed source "
				   "says and run again (--allow-partial writes "
				   "one marked incomplete)", failed, nsrc);
		goto cleanup;
	}
	rc = pex_bundle_seal(r.bundle, envelope);
	if (!rc && req->pending_tmp &&
	    !(*req->pending_tmp = pex_bundle_take_pending(r.bundle)))
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
	if (rc) {
		json_object_set_new(*summary, "bundle", json_null());
		json_object_del(*summary, "bundle_id");
		goto cleanup;
	}
	rc = complete ? PEX_EXPORT_COMPLETE : PEX_EXPORT_PARTIAL;
cleanup:
	for (i = 0; st && i < nsrc; i++) {
		pex_source_free(st[i].src);
		json_decref(st[i].status);
	}
	free(st);
	pex_bundle_free(r.bundle);
	json_decref(r.seen);
	json_decref(r.source_json);
	pex_buf_free(&r.idbuf);
	json_decref(envelope);
	json_decref(statuses);
	json_decref(warnings);
	pex_identity_set_clear(&all);
	return rc;
}

/* Edits (insert, delete, change a character) from a to b; both short. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t prev[65], cur[65];

	if (la > 64 || lb > 64)
		return (size_t)-1;
	for (j = 0; j <= lb; j++)
		prev[j] = j;
	for (i = 1; i <= la; i++) {
		cur[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t d = prev[j - 1] + (a[i - 1] != b[j - 1]);

			if (prev[j] + 1 < d)
				d = prev[j] + 1;
			if (cur[j - 1] + 1 < d)
				d = cur[j - 1] + 1;
			cur[j] = d;
		}
		memcpy(prev, cur, (lb + 1) * sizeof(*prev));
	}
	return prev[lb];
}

/*
 * `portex check`: a source that searches by an identity type one or two
 * letters from a common one (":emali" in a query, "emial" in a match
 * map), or from another source's type that no other source shares, is
 * probably a typo: the source would find nothing for the subject's
 * email. Said as a warning on the source's row; a type of one's own
 * ("crm_id") is allowed.
 */
static void type_hints(const pex_config *cfg, json_t *report)
{
	const json_t *sources = json_object_get(pex_config_root(cfg),
						"sources");
	size_t n = json_array_size(sources), i, j, k;
	json_t **types = calloc(n + 1, sizeof(*types));

	for (i = 0; types && i < n; i++) {
		const json_t *s = json_array_get(sources, i);
		const struct pex_collector *col = pex_collector_find(
			json_string_value(json_object_get(s, "collector")));

		types[i] = json_object();
		if (types[i] && col && col->identity_types)
			col->identity_types(json_object_get(s, "options"),
					    types[i]);
	}
	for (i = 0; types && i < n; i++) {
		json_t *row = json_array_get(report, i), *v;
		const char *t;

		json_object_foreach(types[i], t, v) {
			const char *best = NULL;
			/* two edits, one for a short type: "uid" is no
			 * typo of "ip" */
			size_t bd = strlen(t) <= 4 ? 2 : 3, d;
			int used = 0, near_common;

			for (k = 0; common[k] && !used; k++)
				used = !strcmp(t, common[k]);
			if (used)
				continue;
			for (k = 0; common[k]; k++)
				if ((d = edit_distance(t, common[k])) < bd) {
					bd = d;
					best = common[k];
				}
			/* near another source's type: unless that source
			 * shares this one (two sources with one type of
			 * their own) */
			near_common = best != NULL;
			for (j = 0; j < n && !near_common; j++)
				used |= j != i && json_object_get(types[j], t);
			for (j = 0; j < n && !near_common && !used; j++) {
				const char *o;
				json_t *w;

				if (j == i)
					continue;
				json_object_foreach(types[j], o, w)
					if ((d = edit_distance(t, o)) < bd) {
						bd = d;
						best = o;
					}
			}
			if (!best || !row)
				continue;
			if (!json_object_get(row, "warnings"))
				json_object_set_new(row, "warnings",
						    json_array());
			json_array_append_new(json_object_get(row, "warnings"),
				json_sprintf("searches by identity type '%s': "
					     "did you mean '%s'? A subject's "
					     "%s:... never reaches it as "
					     "written", t, best, best));
		}
	}
	for (i = 0; types && i < n; i++)
		json_decref(types[i]);
	free(types);
}

int pex_check_sources(const pex_config *cfg, json_t **report)
{
	const json_t *sources = json_object_get(pex_config_root(cfg),
						"sources");
	json_t *s;
	size_t i;
	int bad = 0;

	*report = json_array();
	json_array_foreach(sources, i, s) {
		struct pex_source *src = NULL;
		json_t *row = json_pack("{s:O, s:O}", "id",
					json_object_get(s, "id"), "collector",
					json_object_get(s, "collector"));
		int rc;

		if (json_is_false(json_object_get(s, "enabled"))) {
			json_object_set_new(row, "status",
					    json_string("skipped"));
			json_array_append_new(*report, row);
			continue;
		}
		rc = pex_source_new(&src, json_string_value(json_object_get(
					    s, "id")),
				    json_string_value(json_object_get(
					    s, "collector")),
				    json_object_get(s, "options"),
				    pex_config_dir(cfg));
		if (!rc)
			rc = pex_source_check(src);
		if (rc) { /* where in the config, as the export says it */
			char ptr[32];

			snprintf(ptr, sizeof(ptr), "/sources/%zu", i);
			pex_error_wrap(rc, "%s:%d", pex_config_path(cfg),
				       pex_config_line(cfg, ptr));
		}
		json_object_set_new(row, "status", json_string(rc ? "failed"
								  : "ok"));
		if (rc) {
			json_object_set_new(row, "error",
					    json_string(pex_error_last()));
			bad++;
		}
		pex_source_free(src);
		json_array_append_new(*report, row);
	}
	type_hints(cfg, *report);
	return bad ? PEX_ERROR : 0;
}

/* ---- batch ------------------------------------------------------------ */

/*
 * A shared pass hands each subject's records to a spool. Spools keep the
 * records as made (jansson values, no text to parse again: the replay of
 * the bench's subject with 2701 requests spent 20 ms in json_loadb())
 * while all of them together hold less than PEX_BATCH_SPOOL_MEM bytes by
 * estimate (rec_cost); past that, the spool that would cross the line
 * moves to a file in the batch's work folder, as one "KIND JSON" line a
 * record, and goes on there. A hundred subjects with a few hundred
 * records each then cost no file at all, and a batch with millions of
 * records stays within bounded memory.
 *
 * A spool on file holds no descriptor: its lines wait in its own buffer
 * until the buffers of all spools reach a quarter of the budget, and are
 * then appended to their files, each opened and closed again. Thousands
 * of subjects past the budget once held a FILE each and failed at the
 * limit of open files (1024 by default), their stdio buffers 4 KB each.
 */
#define PEX_BATCH_SPOOL_MEM (12u << 20)
#define PEX_SPOOL_LINE_MAX (512u << 20) /* one record's line */
#define PEX_BATCH_SPOOL_MEM_MAX (1u << 30) /* PORTEX_BATCH_MEMORY */
#define PEX_SPOOL_OUT_MIN (64u << 10) /* lines buffered, at least */

struct spool;

struct spool_pool {
	size_t max;           /* PEX_BATCH_SPOOL_MEM or PORTEX_BATCH_MEMORY */
	size_t held;          /* bytes in memory over all spools */
	size_t out, out_max;  /* lines waiting for the files, and the cap */
	struct spool *spools; /* the pass's, for flushing them */
	size_t n;
	struct pex_buf line;  /* the record being written */
};

struct spool {
	struct spool_pool *pool;
	struct pex_source *src; /* the source in its pass */
	size_t subject;         /* whose records these are */
	const char *path;     /* where it goes when it leaves memory */
	int on_file;          /* it left memory: path holds its records */
	struct pex_buf out;   /* lines not yet appended to path */
	json_t **recs;        /* in memory: the records as made */
	unsigned char *kinds;
	size_t nrecs, cap;
	size_t cost;          /* their rec_cost, counted in pool->held */
	unsigned long long records;
};

/* What a record held as a jansson value costs in memory, by its text:
 * the text, and 56 bytes for each value in it (a member's pair and key,
 * a value's struct, a string's copy and the allocator's overhead). The
 * bench's batch held 2924 records: 10.25 MB by mallinfo2(), 10.7 MB by
 * this. */
static size_t rec_cost(const char *text, size_t len)
{
	size_t i, values = 1;

	for (i = 0; i < len; i++)
		values += text[i] == ',' || text[i] == ':' ||
			  text[i] == '[' || text[i] == '{';
	return len + 56 * values;
}

/* Let go of the records a spool still holds; during its pass (counted),
 * give back what they held to the pool. */
static void spool_drop_recs(struct spool *sp, int counted)
{
	size_t i;

	for (i = 0; i < sp->nrecs; i++)
		json_decref(sp->recs[i]);
	free(sp->recs);
	free(sp->kinds);
	sp->recs = NULL;
	sp->kinds = NULL;
	sp->nrecs = sp->cap = 0;
	if (counted)
		sp->pool->held -= sp->cost;
	sp->cost = 0;
}

/* Append the spool's waiting lines to its file. */
static int spool_flush(struct spool *sp)
{
	size_t done = 0;
	int fd, rc = 0;

	if (!sp->out.len)
		return 0;
	/* made by spool_to_file: gone only when an interruption removed
	 * the work folder, which a write must not make again */
	fd = open(sp->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	while (fd >= 0 && done < sp->out.len) {
		ssize_t w = write(fd, sp->out.data + done, sp->out.len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (!w)
				errno = EIO;
			break;
		}
		done += (size_t)w;
	}
	if (fd < 0 || done < sp->out.len)
		rc = pex_error_set(PEX_EIO, "cannot write %s: %s", sp->path,
				   strerror(errno));
	if (fd >= 0 && close(fd) && !rc)
		rc = pex_error_set(PEX_EIO, "cannot write %s: %s", sp->path,
				   strerror(errno));
	sp->pool->out -= sp->out.len;
	pex_buf_free(&sp->out);
	return rc;
}

/* Every spool's waiting lines to its file: when they fill their share of
 * the budget, and at the end of the pass. */
static int spool_flush_all(struct spool_pool *pool)
{
	size_t k;
	int rc = 0;

	for (k = 0; k < pool->n; k++) {
		int r = spool_flush(&pool->spools[k]);

		if (r && !rc)
			rc = r;
	}
	return rc;
}

static int spool_write(struct spool *sp, const char *p, size_t n)
{
	if (pex_buf_append(&sp->out, p, n))
		return pex_error_set(PEX_ENOMEM, "out of memory");
	sp->pool->out += n;
	return sp->pool->out > sp->pool->out_max
	       ? spool_flush_all(sp->pool) : 0;
}

/* One record as its spool line, "KIND JSON\n", in line. */
static int spool_line(struct pex_buf *line, enum pex_record_kind kind,
		      const json_t *record)
{
	int rc;

	pex_buf_reset(line);
	rc = pex_buf_printf(line, "%d ", (int)kind);
	if (!rc)
		rc = pex_json_write(line, record);
	if (rc == PEX_ELIMIT)
		rc = pex_error_set(PEX_ELIMIT, "a record is too large");
	else if (rc)
		rc = pex_error_wrap(rc, "a %s record",
				    pex_record_kind_name(kind));
	return rc ? rc : pex_buf_putc(line, '\n');
}

/* The spool leaves memory: its file, and what it held written there
 * first, in order. */
static int spool_to_file(struct spool *sp)
{
	struct pex_buf line = PEX_BUF_INIT(PEX_SPOOL_LINE_MAX);
	size_t i;
	int fd, rc = 0;

	/* made where an interruption's removal of the work folder cannot
	 * race it (see core/cleanup.h) */
	fd = pex_cleanup_create(sp->path, 0600);
	if (fd < 0 || close(fd))
		return pex_error_set(PEX_EIO, "cannot write %s: %s", sp->path,
				     strerror(errno));
	sp->on_file = 1;
	pex_buf_init(&sp->out, PEX_SPOOL_LINE_MAX * 2);
	for (i = 0; !rc && i < sp->nrecs; i++) {
		rc = spool_line(&line, (enum pex_record_kind)sp->kinds[i],
				sp->recs[i]);
		if (!rc)
			rc = spool_write(sp, line.data, line.len);
	}
	pex_buf_free(&line);
	spool_drop_recs(sp, 1);
	return rc;
}

/* Keep record (taken) in the spool's memory when its cost, and that of
 * the spool's lists growing for it, fits the pool's budget; returns 1
 * when kept, 0 when it does not fit, or an error. */
static int spool_keep(struct spool *sp, enum pex_record_kind kind,
		      json_t *record, size_t cost)
{
	size_t nc = sp->nrecs < sp->cap ? sp->cap
					: sp->cap ? 2 * sp->cap : 8;
	size_t grow = (nc - sp->cap) * (sizeof(*sp->recs) + 1);

	if (sp->pool->held + cost + grow > sp->pool->max)
		return 0;
	if (nc > sp->cap) {
		json_t **g = realloc(sp->recs, nc * sizeof(*g));
		unsigned char *gk;

		if (!g)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		sp->recs = g;
		gk = realloc(sp->kinds, nc);
		if (!gk)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		sp->kinds = gk;
		sp->cap = nc;
	}
	sp->recs[sp->nrecs] = record;
	sp->kinds[sp->nrecs++] = (unsigned char)kind;
	sp->cost += cost + grow;
	sp->pool->held += cost + grow;
	return 1;
}

static int spool_emit(void *data, enum pex_record_kind kind, json_t *record)
{
	struct spool *sp = data;
	struct pex_buf *line = &sp->pool->line;
	int rc;

	/* replacements in this record's text are this subject's */
	pex_source_settle_subject(sp->src, sp->subject);
	/* the text: what the record costs, what a file would hold, and
	 * the check a record must pass to be spooled at all */
	rc = spool_line(line, kind, record);
	if (rc) {
		json_decref(record);
		return rc;
	}
	sp->records++;
	if (!sp->on_file) {
		rc = spool_keep(sp, kind, record,
				rec_cost(line->data, line->len));
		if (rc == 1)
			return 0; /* kept as made */
		if (!rc)
			rc = spool_to_file(sp);
		if (rc) {
			json_decref(record);
			return rc;
		}
	}
	json_decref(record);
	return spool_write(sp, line->data, line->len);
}

/* Bundles written and waiting to be synced and renamed together (see
 * commit_pending): at most this many, or for at most this long. */
#define PEX_BATCH_COMMIT_MAX 32
#define PEX_BATCH_COMMIT_WAIT 0.25 /* seconds */

/*
 * The bundles of a batch are independent once the shared passes are
 * done: jobs threads take subjects in turn. Each export owns its sources,
 * its bundle and its error state (thread-local); what they share is
 * read-only (config, spools, compiled schemas) but for the row_done
 * callback, which is called under a lock.
 */
struct batch_run {
	const pex_config *cfg;
	const struct pex_batch_subject *subjects;
	size_t n, nsrc, next;
	const struct pex_precollected *pre;
	struct spool *spools;
	int allow_partial;
	unsigned jobs;
	pex_batch_row_fn row_done;
	void *row_data;
	int keep_sums; /* for *summaries; else each goes after row_done */
	pthread_mutex_t mu;
	json_t **sums;
	int *results;
	/* made, not yet synced and renamed: subject k's zip at tmp */
	size_t pend_k[PEX_BATCH_COMMIT_MAX];
	char *pend_tmp[PEX_BATCH_COMMIT_MAX];
	size_t npend;
	double pend_since; /* when the oldest of them was made */
	/* the committer thread (see committer_main), under mu */
	pthread_cond_t pend_cv;
	int pend_stop;
	int committer;     /* it runs: jobs leave the timing to it */
};

/* Tell the caller that subject k is done (see pex_export_batch). */
static void row_done(struct batch_run *br, size_t k)
{
	if (!br->row_done)
		return;
	pthread_mutex_lock(&br->mu);
	br->row_done(br->row_data, k, br->sums[k]);
	if (!br->keep_sums) { /* the caller has what it wants of it */
		json_decref(br->sums[k]);
		br->sums[k] = NULL;
	}
	pthread_mutex_unlock(&br->mu);
}

/*
 * Make a group of the batch's bundles durable and give them their names:
 * one syncfs per filesystem they are on (each bundle's own fsync was most
 * of what a small bundle's seal cost: a device flush each), then the
 * renames, then row_done for each. A bundle is renamed only once synced,
 * so that a crash never leaves a name the user asked for on a zip that is
 * not whole; one that cannot be synced or renamed fails, its zip removed.
 * An interruption meanwhile removes the zips not renamed yet (they are
 * registered) and reports their subjects as not done.
 */
static void commit_pending(struct batch_run *br, const size_t *ks,
			   char **tmps, size_t n)
{
	/* the filesystems synced so far, and how that went */
	dev_t *devs = calloc(n, sizeof(*devs));
	int *dev_err = calloc(n, sizeof(*dev_err));
	size_t i, j, ndev = 0;

	for (i = 0; i < n; i++) {
		size_t k = ks[i];
		const char *out = br->subjects[k].out_path;
		int fd = open(tmps[i], O_RDONLY | O_CLOEXEC), err = 0;
		struct stat st;

		if (fd < 0 || fstat(fd, &st)) {
			err = errno;
		} else if (!devs || !dev_err) {
			err = fsync(fd) ? errno : 0; /* no list: one by one */
		} else {
			for (j = 0; j < ndev && devs[j] != st.st_dev; j++)
				;
			if (j == ndev) {
				/* every bundle of the group is written: one
				 * syncfs is all of them on this filesystem */
				devs[ndev] = st.st_dev;
				dev_err[ndev++] = syncfs(fd) ? errno : 0;
			}
			err = dev_err[j];
		}
		if (fd >= 0)
			close(fd);
		if (!err && pex_cleanup_rename(tmps[i], out))
			err = -errno; /* the rename, not the sync */
		if (err) {
			char msg[1024];

			unlink(tmps[i]);
			pex_cleanup_forget(tmps[i]);
			snprintf(msg, sizeof(msg), err > 0 ?
				 "cannot sync %s: %s" : "cannot move the "
				 "bundle to %s: %s", err > 0 ? tmps[i] : out,
				 strerror(err > 0 ? err : -err));
			br->results[k] = PEX_EIO;
			json_object_set_new(br->sums[k], "result",
					    json_string("failed"));
			json_object_set_new(br->sums[k], "bundle",
					    json_null());
			json_object_del(br->sums[k], "bundle_id");
			json_object_set_new(br->sums[k], "error",
					    json_string(msg));
		}
		free(tmps[i]);
		row_done(br, k);
	}
	free(devs);
	free(dev_err);
}

/* Take the queue (under mu) into ks and tmps; returns how many. */
static size_t pend_take(struct batch_run *br, size_t *ks, char **tmps)
{
	size_t n = br->npend;

	memcpy(ks, br->pend_k, n * sizeof(*ks));
	memcpy(tmps, br->pend_tmp, n * sizeof(*tmps));
	br->npend = 0;
	return n;
}

/* Subject k's bundle waits at tmp: queue it. A full queue is committed
 * by the job that filled it; otherwise the committer thread commits the
 * queue once its oldest has waited PEX_BATCH_COMMIT_WAIT, so a finished
 * bundle is in place soon whatever the jobs do next. Without that
 * thread, a job commits an old queue when it adds to it, and final
 * (the batch's end, tmp NULL) whatever is left. */
static void pend_add(struct batch_run *br, size_t k, char *tmp, int final)
{
	size_t ks[PEX_BATCH_COMMIT_MAX], n = 0;
	char *tmps[PEX_BATCH_COMMIT_MAX];
	double now = pex_time_monotonic();

	pthread_mutex_lock(&br->mu);
	if (tmp) {
		if (!br->npend)
			br->pend_since = now;
		br->pend_k[br->npend] = k;
		br->pend_tmp[br->npend++] = tmp;
		/* a new queue: the committer learns when it is due; the
		 * others it need not hear of (a wake-up each took the
		 * bench's batch of 100 from 114.5 to 116.0 ms) */
		if (br->npend == 1)
			pthread_cond_signal(&br->pend_cv);
	}
	if (br->npend && (final || br->npend == PEX_BATCH_COMMIT_MAX ||
			  (!br->committer &&
			   now - br->pend_since >= PEX_BATCH_COMMIT_WAIT)))
		n = pend_take(br, ks, tmps);
	pthread_mutex_unlock(&br->mu);
	if (n)
		commit_pending(br, ks, tmps, n);
}

/* The committer: waits for a queue, then for its oldest to have waited
 * PEX_BATCH_COMMIT_WAIT (or for the batch's end), and commits it. */
static void *committer_main(void *arg)
{
	struct batch_run *br = arg;
	size_t ks[PEX_BATCH_COMMIT_MAX], n;
	char *tmps[PEX_BATCH_COMMIT_MAX];

	pthread_mutex_lock(&br->mu);
	for (;;) {
		while (!br->pend_stop && !br->npend)
			pthread_cond_wait(&br->pend_cv, &br->mu);
		if (!br->npend)
			break; /* the end, nothing left */
		while (!br->pend_stop && br->npend) {
			double due = br->pend_since + PEX_BATCH_COMMIT_WAIT;
			double left = due - pex_time_monotonic();
			struct timespec ts;

			if (left <= 0)
				break;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)left;
			ts.tv_nsec += (long)((left - (double)(time_t)left) *
					     1e9);
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&br->pend_cv, &br->mu, &ts);
		}
		if (!br->npend)
			continue; /* a job that filled it took it */
		n = pend_take(br, ks, tmps);
		pthread_mutex_unlock(&br->mu);
		commit_pending(br, ks, tmps, n);
		pthread_mutex_lock(&br->mu);
	}
	pthread_mutex_unlock(&br->mu);
	return NULL;
}

static void export_subject(struct batch_run *br, const pex_config *cfg,
			   size_t k, const struct pex_precollected **per)
{
	char *tmp = NULL;
	const struct pex_batch_subject *sub = &br->subjects[k];
	struct pex_export_request req = { 0 };
	json_t *sum = NULL;
	size_t i;
	int r;

	for (i = 0; i < br->nsrc; i++)
		per[i] = br->spools[i * br->n + k].pool
			 ? &br->pre[i * br->n + k] : NULL;
	req.cfg = cfg;
	req.identities = &sub->identities;
	req.request_id = sub->request_id;
	req.out_path = sub->out_path;
	req.allow_partial = br->allow_partial;
	/* a bundle's sources are replays of the shared passes: quick, and
	 * a line per source per subject would bury the rest (row_done says
	 * how the bundles go) */
	req.progress = NULL;
	req.pre = per;
	req.single_thread = br->jobs > 1;
	req.defer_dir_sync = 1; /* see sync_out_dirs */
	req.pending_tmp = &tmp; /* see commit_pending */
	r = pex_export(&req, &sum);
	if (!sum)
		sum = json_pack("{s:s}", "bundle", req.out_path);
	if (sub->request_id)
		json_object_set_new(sum, "request_id",
				    json_string(sub->request_id));
	json_object_set_new(sum, "result", json_string(
		r < 0 ? "failed" : r == PEX_EXPORT_PARTIAL ? "partial"
							  : "complete"));
	if (r < 0)
		json_object_set_new(sum, "error",
				    json_string(pex_error_last()));
	br->sums[k] = sum;
	br->results[k] = r;
	if (tmp)
		pend_add(br, k, tmp, 0); /* row_done when renamed */
	else
		row_done(br, k);
	/* this subject's records are in its bundle now */
	for (i = 0; i < br->nsrc; i++)
		spool_drop_recs(&br->spools[i * br->n + k], 0);
}

/* One job: takes subjects until none is left. Without memory for its
 * own config, a helper thread leaves the subjects to the others; the
 * calling thread (main) says so for the ones it takes. */
static void batch_loop(struct batch_run *br, int is_main)
{
	const struct pex_precollected **per = calloc(br->nsrc + 1,
						     sizeof(*per));
	pex_config *cfg = NULL;

	/* this thread's own config: see pex_config_copy */
	if (per && pex_config_copy(&cfg, br->cfg)) {
		free(per);
		per = NULL;
	}
	if (!per && !is_main)
		return;
	for (;;) {
		size_t k;

		pthread_mutex_lock(&br->mu);
		k = br->next < br->n ? br->next++ : br->n;
		pthread_mutex_unlock(&br->mu);
		if (k == br->n)
			break;
		if (!per) { /* out of memory: say so for this subject */
			br->sums[k] = json_pack("{s:s, s:s, s:s}", "bundle",
						br->subjects[k].out_path,
						"result", "failed", "error",
						"out of memory");
			br->results[k] = PEX_ENOMEM;
			row_done(br, k);
			continue;
		}
		export_subject(br, cfg, k, per);
	}
	pex_config_free(cfg);
	free(per);
}

static void *batch_worker(void *arg)
{
	batch_loop(arg, 0);
	return NULL;
}

/*
 * Make the renames of the batch's bundles durable: one fsync per output
 * folder for the whole batch instead of one per bundle (a hundred small
 * bundles spent more on it than on anything else but compression). It
 * runs before pex_export_batch returns, so before any caller can report
 * a bundle as written; a crash earlier loses at most bundles that no one
 * was told about, which the batch, failing, did not vouch for either.
 * Errors are ignored as pex_bundle_seal ignores them.
 */
static void sync_out_dirs(const struct pex_batch_subject *subjects,
			  const int *results, size_t n)
{
	char **done = calloc(n ? n : 1, sizeof(*done));
	size_t k, j, ndone = 0;

	for (k = 0; k < n; k++) {
		char *d, *dir;
		int fd;

		if (results[k] < 0)
			continue; /* no bundle */
		d = strdup(subjects[k].out_path);
		if (!d)
			continue;
		dir = dirname(d);
		for (j = 0; j < ndone && strcmp(done[j], dir); j++)
			;
		if (j < ndone) {
			free(d);
			continue;
		}
		fd = open(dir, O_RDONLY | O_DIRECTORY);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
		/* without memory for the list, a folder is synced again:
		 * slower, no less safe */
		if (done && (done[ndone] = strdup(dir)) != NULL)
			ndone++;
		free(d);
	}
	for (j = 0; j < ndone; j++)
		free(done[j]);
	free(done);
}

/* A failed source's reason, kept for its subjects. Never NULL: a
 * source whose error could not be copied must still count as failed. */
static char oom_reason[] = "out of memory";

static char *err_copy(const char *msg)
{
	char *c = strdup(msg);

	return c ? c : oom_reason;
}

int pex_export_batch(const pex_config *cfg,
		     const struct pex_batch_subject *subjects, size_t n,
		     int allow_partial, unsigned jobs,
		     pex_progress_fn progress, void *progress_data,
		     pex_batch_row_fn row_done_fn, void *row_data,
		     json_t **summaries)
{
	const json_t *sources = json_object_get(pex_config_root(cfg),
						"sources");
	size_t nsrc = json_array_size(sources), i, k;
	struct pex_precollected *pre = NULL;
	struct spool_pool pool = {0};
	struct spool *spools = NULL;
	char **paths = NULL, **errors = NULL, *work = NULL, *tmp = NULL;
	json_t **warns = NULL;
	int rc = 0, any_failed = 0, any_partial = 0;
	double t0;

	if (summaries)
		*summaries = json_array();
	if (!n)
		return 0;
	for (k = 0; k < n; k++) {
		rc = pex_export_check_identities(cfg, &subjects[k].identities);
		if (rc)
			return rc;
	}
	pex_buf_init(&pool.line, PEX_SPOOL_LINE_MAX);
	pool.max = PEX_BATCH_SPOOL_MEM;
	{
		const char *e = getenv("PORTEX_BATCH_MEMORY");
		char *end;
		unsigned long long v;

		if (e && *e) {
			errno = 0;
			v = strtoull(e, &end, 10);
			/* digits only: strtoull takes " 5", "+5" and "-0" */
			if (errno || *end || *e < '0' || *e > '9' ||
			    v > PEX_BATCH_SPOOL_MEM_MAX)
				pex_log(PEX_LOG_WARN, NULL, "PORTEX_BATCH_MEMORY"
					"=%s is not a number of bytes up to "
					"%u; using %u", e,
					PEX_BATCH_SPOOL_MEM_MAX,
					PEX_BATCH_SPOOL_MEM);
			else
				pool.max = (size_t)v;
		}
	}
	pool.out_max = pool.max / 4 > PEX_SPOOL_OUT_MIN ? pool.max / 4
							: PEX_SPOOL_OUT_MIN;
	pre = calloc(nsrc * n + 1, sizeof(*pre));
	spools = calloc(nsrc * n + 1, sizeof(*spools));
	paths = calloc(nsrc * n + 1, sizeof(*paths));
	errors = calloc(nsrc + 1, sizeof(*errors));
	warns = calloc(nsrc + 1, sizeof(*warns));
	tmp = strdup(subjects[0].out_path);
	if (!pre || !spools || !paths || !errors || !warns || !tmp) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	{
		struct pex_buf w = PEX_BUF_INIT(8192);

		pex_buf_printf(&w, "%s/.%s-batch-XXXXXX", dirname(tmp),
			       pex_cleanup_tag());
		work = pex_buf_detach(&w);
	}
	if (!work || pex_cleanup_mkdtemp(work)) {
		rc = pex_error_set(PEX_EIO, "cannot make a work folder beside "
				   "%s: %s", subjects[0].out_path,
				   strerror(errno));
		free(work);
		work = NULL;
		goto cleanup;
	}

	/* one pass per batch-capable source, spooling each subject's
	 * records */
	for (i = 0; i < nsrc; i++) {
		json_t *s = json_array_get(sources, i);
		const char *cname = json_string_value(json_object_get(s,
							       "collector"));
		const char *sid = json_string_value(json_object_get(s, "id"));
		const struct pex_collector *col = pex_collector_find(cname);
		struct pex_identity_set *sets = NULL;
		struct spool *sp = spools + i * n;
		void **data = NULL;
		struct pex_source *src = NULL;
		size_t ignored;

		if (!col || !col->collect_batch ||
		    json_is_false(json_object_get(s, "enabled")))
			continue;
		t0 = pex_time_monotonic();
		sets = calloc(n, sizeof(*sets));
		data = calloc(n, sizeof(*data));
		rc = sets && data ? 0
			: pex_error_set(PEX_ENOMEM, "out of memory");
		for (k = 0; !rc && k < n; k++) {
			struct pex_buf pb = PEX_BUF_INIT(8192);

			pex_buf_printf(&pb, "%s/s%zu-%zu.spool", work, i, k);
			paths[i * n + k] = pex_buf_detach(&pb);
			sets[k].items = calloc(subjects[k].identities.count +
					       1, sizeof(*sets[k].items));
			if (!paths[i * n + k] || !sets[k].items) {
				rc = pex_error_set(PEX_ENOMEM,
						   "out of memory");
				break;
			}
			select_identities(s, &subjects[k].identities, 0,
					  &sets[k], &ignored);
			sp[k].pool = &pool;
			sp[k].path = paths[i * n + k];
			data[k] = &sp[k];
		}
		if (!rc) {
			if (progress)
				progress(progress_data, sid, 0, 0);
			pool.spools = sp;
			pool.n = n;
			rc = pex_source_new(&src, sid, cname,
					    json_object_get(s, "options"),
					    pex_config_dir(cfg));
			for (k = 0; !rc && k < n; k++) {
				sp[k].src = src;
				sp[k].subject = k;
			}
			if (!rc)
				rc = pex_source_collect_batch(src, sets, n,
							      spool_emit,
							      data);
			if (progress)
				progress(progress_data, sid, 0, 1);
			if (rc) {
				errors[i] = err_copy(pex_error_last());
				rc = 0;
			}
			if (src)
				warns[i] = pex_source_warnings(src);
		}
		/* what is left for the files; a spool that cannot take it
		 * fails the source for every subject, as a failure during
		 * the pass does */
		if (spool_flush_all(&pool) && !errors[i])
			errors[i] = err_copy(pex_error_last());
		pool.spools = NULL;
		pool.n = 0;
		for (k = 0; k < n; k++) {
			struct pex_precollected *p = &pre[i * n + k];

			if (sets)
				free(sets[k].items);
			if (sp[k].pool && sp[k].nrecs) {
				p->recs = sp[k].recs;
				p->kinds = sp[k].kinds;
				p->nrecs = sp[k].nrecs;
			} else if (sp[k].pool) {
				/* left memory for a file, or found nothing */
				p->spool = sp[k].records ? paths[i * n + k]
							 : NULL;
			}
			p->error = errors[i];
			/* the source's warnings, and this subject's own */
			p->warnings = json_array();
			if (p->warnings && warns[i])
				json_array_extend(p->warnings, warns[i]);
			if (p->warnings && src) {
				json_t *own = pex_source_subject_warnings(src,
									  k);

				json_array_extend(p->warnings, own);
				json_decref(own);
			}
		}
		pex_source_free(src);
		free(sets);
		free(data);
		if (rc)
			goto cleanup;
		pex_log(PEX_LOG_DEBUG, sid, "batch: one pass for %zu subjects "
			"in %.3f s; %zu bytes of records held in memory", n,
			pex_time_monotonic() - t0, pool.held);
	}
	pex_buf_free(&pool.line);
#ifdef __GLIBC__
	/* What the passes freed (their read blocks, visits, tables) goes
	 * back to the system before the bundles' threads take memory of
	 * their own: glibc keeps freed memory for the thread that had it,
	 * and a batch of heavy visitors measured 62 MB at its peak instead
	 * of 55. */
	malloc_trim(0);
#endif

	/* then each subject on its own, batch sources replayed */
	t0 = pex_time_monotonic();
	{
		struct batch_run br = {
			.cfg = cfg, .subjects = subjects, .n = n,
			.nsrc = nsrc, .pre = pre, .spools = spools,
			.allow_partial = allow_partial,
			.row_done = row_done_fn, .row_data = row_data,
			.keep_sums = summaries != NULL,
		};
		pthread_t thr[PEX_BATCH_JOBS_MAX], committer;
		unsigned w, started = 0;

		if (jobs < 1)
			jobs = 1;
		if (jobs > PEX_BATCH_JOBS_MAX)
			jobs = PEX_BATCH_JOBS_MAX;
		if (jobs > n)
			jobs = (unsigned)n;
		br.jobs = jobs;
		br.sums = calloc(n, sizeof(*br.sums));
		br.results = calloc(n, sizeof(*br.results));
		if (!br.sums || !br.results) {
			free(br.sums);
			free(br.results);
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
			goto cleanup;
		}
		pthread_mutex_init(&br.mu, NULL);
		{
			pthread_condattr_t ca;

			pthread_condattr_init(&ca);
			pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
			pthread_cond_init(&br.pend_cv, &ca);
			pthread_condattr_destroy(&ca);
		}
		br.committer = !pthread_create(&committer, NULL,
					       committer_main, &br);
		/* this thread is one of the jobs */
		for (w = 1; w < jobs; w++)
			if (!pthread_create(&thr[started], NULL, batch_worker,
					    &br))
				started++;
		batch_loop(&br, 1);
		for (w = 0; w < started; w++)
			pthread_join(thr[w], NULL);
		if (br.committer) { /* it commits what is left, then ends */
			pthread_mutex_lock(&br.mu);
			br.pend_stop = 1;
			pthread_cond_signal(&br.pend_cv);
			pthread_mutex_unlock(&br.mu);
			pthread_join(committer, NULL);
		} else {
			pend_add(&br, 0, NULL, 1); /* the last group */
		}
		pthread_cond_destroy(&br.pend_cv);
		pthread_mutex_destroy(&br.mu);
		sync_out_dirs(subjects, br.results, n);
		for (k = 0; k < n; k++) {
			if (br.results[k] < 0)
				any_failed = 1;
			else if (br.results[k] == PEX_EXPORT_PARTIAL)
				any_partial = 1;
			if (summaries)
				json_array_append_new(*summaries, br.sums[k]);
			else
				json_decref(br.sums[k]);
		}
		free(br.sums);
		free(br.results);
	}
	pex_log(PEX_LOG_DEBUG, NULL, "batch: %zu bundles in %.3f s, %u at "
		"a time", n, pex_time_monotonic() - t0, jobs);
cleanup:
	for (i = 0; paths && i < nsrc * n; i++) {
		if (paths[i])
			unlink(paths[i]);
		free(paths[i]);
	}
	for (i = 0; spools && i < nsrc * n; i++) {
		pex_buf_free(&spools[i].out);
		spool_drop_recs(&spools[i], 0);
	}
	for (i = 0; i < nsrc; i++) {
		if (errors && errors[i] != oom_reason)
			free(errors[i]);
		if (warns)
			json_decref(warns[i]);
	}
	for (i = 0; pre && i < nsrc * n; i++)
		json_decref(pre[i].warnings);
	if (work && !rmdir(work))
		pex_cleanup_forget(work);
	pex_buf_free(&pool.line);
	free(work);
	free(tmp);
	free(spools);
	free(paths);
	free(errors);
	free(warns);
	free(pre);
	if (rc)
		return rc;
	return any_failed ? PEX_ERROR : any_partial ? PEX_EXPORT_PARTIAL : 0;
}
