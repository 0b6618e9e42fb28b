/*
 * Sessions, devices and client addresses of the subjects' requests. See
 * al_usage.h and docs/internals/access_log.md.
 */
#include "collectors/access_log/al_usage.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/timeutil.h"
#include "portex/error.h"

/* ---- bounded tallies (devices, addresses) ---------------------------- */

struct tally {
	char *key;
	size_t len;
	uint64_t h;
	size_t subject;
	size_t ident;
	time_t first, last;
	unsigned long long requests;
};

/* One table for every subject: a key is distinct per subject. */
struct table {
	struct tally *items;
	size_t n, cap;
	size_t max;      /* per subject */
	size_t max_all;  /* over all subjects */
	uint32_t *slots; /* item index + 1; 0 is empty */
	size_t nslots;   /* a power of two, at least 2 * max_all */
};

enum tally_result { TALLY_FULL = 0, TALLY_COUNTED = 1, TALLY_FULL_ALL = 2 };

static uint64_t hash_bytes(const char *p, size_t n, uint64_t seed)
{
	uint64_t h = 1469598103934665603ull ^ seed;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* TALLY_COUNTED, or TALLY_FULL / TALLY_FULL_ALL when key is new and the
 * subject's (*count against t->max) or everyone's share is used up;
 * <0 on error. */
static int table_add(struct table *t, size_t *count, size_t subject,
		     const char *key, size_t len, size_t ident, time_t at)
{
	uint64_t h = hash_bytes(key, len, (uint64_t)subject);
	size_t i;
	struct tally *e;

	if (!t->slots) {
		t->nslots = 64;
		while (t->nslots < 2 * t->max_all)
			t->nslots *= 2;
		t->slots = calloc(t->nslots, sizeof(*t->slots));
		if (!t->slots)
			return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	for (i = h & (t->nslots - 1); t->slots[i];
	     i = (i + 1) & (t->nslots - 1)) {
		e = &t->items[t->slots[i] - 1];
		if (e->h == h && e->subject == subject && e->len == len &&
		    !memcmp(e->key, key, len)) {
			if (at < e->first)
				e->first = at;
			if (at > e->last)
				e->last = at;
			e->requests++;
			return TALLY_COUNTED;
		}
	}
	if (*count >= t->max)
		return TALLY_FULL;
	if (t->n >= t->max_all)
		return TALLY_FULL_ALL;
	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 16;
		struct tally *g;

		if (nc > t->max_all)
			nc = t->max_all;
		g = realloc(t->items, nc * sizeof(*g));
		if (!g)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		t->items = g;
		t->cap = nc;
	}
	e = &t->items[t->n];
	e->key = malloc(len ? len : 1);
	if (!e->key)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	memcpy(e->key, key, len);
	e->len = len;
	e->h = h;
	e->subject = subject;
	e->ident = ident;
	e->first = e->last = at;
	e->requests = 1;
	t->slots[i] = (uint32_t)++t->n;
	(*count)++;
	return TALLY_COUNTED;
}

static void table_free(struct table *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->items[i].key);
	free(t->items);
	free(t->slots);
}

/* ---- sessions -------------------------------------------------------- */

struct page {
	char *path;
	size_t len;
	time_t at;
};

/*
 * An open session sits in two lists, each least recently active first:
 * its subject's (idle closing, the per-subject cap) and everyone's (the
 * cap on page text held in memory, which is shared by the batch).
 */
struct session {
	struct session *prev, *next;   /* the subject's list */
	struct session *gprev, *gnext; /* everyone's list */
	size_t subject;
	size_t ident;
	uint64_t h;                  /* of the user agent */
	char *ua;                    /* NULL: not logged */
	size_t ua_len;
	char *first_id;              /* event id of the first request */
	time_t start, last;
	unsigned long long requests;
	struct page *pages;
	size_t npages, pcap;
	size_t bytes;                /* charged to open_bytes */
};

struct subject_state {
	struct session *head, *tail;
	size_t nopen;
	size_t ndevices, nips; /* distinct ones in the tables */
	/* each limit is said once per subject, in that subject's bundle
	 * (pex_source_warn_subject) */
	unsigned warned_open : 1, warned_split : 1, warned_bytes : 1;
	unsigned warned_dev : 1, warned_dev_all : 1;
	unsigned warned_ip : 1, warned_ip_all : 1;
};

struct pex_al_usage {
	struct pex_source *src;
	struct pex_al_limits lim;
	const struct pex_al_ident *idents;
	size_t nidents;
	pex_emit_fn emit;
	void *const *emit_data;
	struct subject_state *subjects;
	size_t nsubjects;
	struct session *ghead, *gtail;
	size_t nopen, open_bytes;
	struct table devices, ips;
};

int pex_al_usage_new(struct pex_al_usage **out, struct pex_source *src,
		     const struct pex_al_limits *lim,
		     const struct pex_al_ident *idents, size_t nidents,
		     size_t nsubjects, pex_emit_fn emit,
		     void *const *emit_data)
{
	struct pex_al_usage *u;
	size_t i;

	*out = NULL;
	for (i = 0; i < nidents; i++)
		if (idents[i].subject >= nsubjects)
			return pex_error_set(PEX_EUSAGE, "identity %zu of "
					     "subject %zu beyond %zu", i,
					     idents[i].subject, nsubjects);
	u = calloc(1, sizeof(*u));
	if (!u)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	u->subjects = calloc(nsubjects ? nsubjects : 1,
			     sizeof(*u->subjects));
	if (!u->subjects) {
		free(u);
		return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	u->nsubjects = nsubjects;
	u->src = src;
	u->lim = *lim;
	u->idents = idents;
	u->nidents = nidents;
	u->emit = emit;
	u->emit_data = emit_data;
	u->devices.max = lim->max_devices;
	u->devices.max_all = lim->max_devices_all;
	u->ips.max = lim->max_ips;
	u->ips.max_all = lim->max_ips_all;
	*out = u;
	return 0;
}

static void unlink_session(struct pex_al_usage *u, struct session *s)
{
	struct subject_state *st = &u->subjects[s->subject];

	if (s->prev)
		s->prev->next = s->next;
	else
		st->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		st->tail = s->prev;
	s->prev = s->next = NULL;
	if (s->gprev)
		s->gprev->gnext = s->gnext;
	else
		u->ghead = s->gnext;
	if (s->gnext)
		s->gnext->gprev = s->gprev;
	else
		u->gtail = s->gprev;
	s->gprev = s->gnext = NULL;
}

/* s becomes the most recently active, in both lists. */
static void append_session(struct pex_al_usage *u, struct session *s)
{
	struct subject_state *st = &u->subjects[s->subject];

	s->prev = st->tail;
	s->next = NULL;
	if (st->tail)
		st->tail->next = s;
	else
		st->head = s;
	st->tail = s;
	s->gprev = u->gtail;
	s->gnext = NULL;
	if (u->gtail)
		u->gtail->gnext = s;
	else
		u->ghead = s;
	u->gtail = s;
}

static void session_free(struct session *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->npages; i++)
		free(s->pages[i].path);
	free(s->pages);
	free(s->ua);
	free(s->first_id);
	free(s);
}

static int set_time(json_t *o, const char *key, time_t t)
{
	char buf[PEX_TIME_BUFSZ];

	return json_object_set_new(o, key, json_string(pex_time_format(t,
								       buf)));
}

static json_t *session_json(struct pex_al_usage *u, const struct session *s)
{
	json_t *rec = json_object(), *pages = json_array(),
	       *extra = json_object();
	char id[1100];
	size_t i;
	int bad = !rec || !pages || !extra;

	snprintf(id, sizeof(id), "session:%s", s->first_id);
	bad |= json_object_set_new(rec, "id", json_string(id));
	bad |= json_object_set_new(rec, "matched_by", json_deep_copy(
		u->idents[s->ident].matched_by));
	bad |= set_time(rec, "start", s->start);
	bad |= set_time(rec, "end", s->last);
	bad |= json_object_set_new(rec, "requests",
				   json_integer((json_int_t)s->requests));
	for (i = 0; i < s->npages && !bad; i++) {
		const struct page *p = &s->pages[i];
		json_t *pg = json_object();

		bad |= json_object_set_new(pg, "path", pex_source_text(
			u->src, p->path, p->len));
		bad |= set_time(pg, "at", p->at);
		/* Time on a page runs until the next page of the visit
		 * (static assets load with their page and say nothing
		 * about reading time); the last page's is unknown. */
		if (i + 1 < s->npages) {
			time_t d = s->pages[i + 1].at - p->at;

			bad |= json_object_set_new(pg, "seconds", json_integer(
				d > 0 ? (json_int_t)d : 0));
		}
		bad |= json_array_append_new(pages, pg);
	}
	if (s->npages) {
		const struct page *f = &s->pages[0],
				  *l = &s->pages[s->npages - 1];

		bad |= json_object_set_new(rec, "entry_page",
			pex_source_text(u->src, f->path, f->len));
		bad |= json_object_set_new(rec, "exit_page",
			pex_source_text(u->src, l->path, l->len));
	}
	if (s->ua)
		bad |= json_object_set_new(extra, "user_agent",
			pex_source_text(u->src, s->ua, s->ua_len));
	bad |= json_object_set(rec, "pages", pages);
	bad |= json_object_set(rec, "extra", extra);
	json_decref(pages);
	json_decref(extra);
	if (bad) {
		json_decref(rec);
		return NULL;
	}
	return rec;
}

/* Emit s to its subject and forget it. */
static int close_session(struct pex_al_usage *u, struct session *s)
{
	json_t *rec = session_json(u, s);
	size_t subject = s->subject;

	unlink_session(u, s);
	u->subjects[subject].nopen--;
	u->nopen--;
	u->open_bytes -= s->bytes;
	session_free(s);
	if (!rec)
		return pex_error_set(PEX_ENOMEM, "out of memory building a "
				     "session");
	return u->emit(u->emit_data[subject], PEX_REC_SESSION, rec);
}

static int open_session(struct pex_al_usage *u, const struct pex_al_hit *h,
			uint64_t uah, struct session **out)
{
	size_t subject = u->idents[h->ident].subject;
	struct subject_state *st = &u->subjects[subject];
	struct session *s;
	int rc;

	*out = NULL;
	if (st->nopen >= u->lim.max_open_sessions && st->head) {
		if (!st->warned_open) {
			st->warned_open = 1;
			pex_source_warn_subject(u->src, subject, "more than "
				"%zu visits open at once: the least recently "
				"active were closed early",
				u->lim.max_open_sessions);
		}
		rc = close_session(u, st->head);
		if (rc)
			return rc;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	s->subject = subject;
	s->ident = h->ident;
	s->h = uah;
	s->first_id = strdup(h->event_id);
	if (h->ua) {
		s->ua = malloc(h->ua_len ? h->ua_len : 1);
		if (s->ua)
			memcpy(s->ua, h->ua, h->ua_len);
		s->ua_len = h->ua_len;
	}
	if (!s->first_id || (h->ua && !s->ua)) {
		session_free(s);
		return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	s->start = s->last = h->at;
	s->bytes = sizeof(*s) + s->ua_len;
	u->open_bytes += s->bytes;
	u->nopen++;
	st->nopen++;
	append_session(u, s);
	*out = s;
	return 0;
}

static int add_page(struct session *s, const struct pex_al_hit *h)
{
	struct page *p;
	char *path;
	size_t i;

	if (s->npages == s->pcap) {
		size_t nc = s->pcap ? s->pcap * 2 : 8;
		struct page *g = realloc(s->pages, nc * sizeof(*g));

		if (!g)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		s->pages = g;
		s->pcap = nc;
	}
	path = malloc(h->path_len ? h->path_len : 1);
	if (!path)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	memcpy(path, h->path, h->path_len);
	/* The pages in the order they were asked for. A server writes a
	 * line when the request ends, stamped with when it began, so a log
	 * is only nearly in time order: a slow page is logged after a quick
	 * one asked for later. Among equal times, the log's order. */
	for (i = s->npages; i > 0 && s->pages[i - 1].at > h->at; i--)
		s->pages[i] = s->pages[i - 1];
	p = &s->pages[i];
	p->path = path;
	p->len = h->path_len;
	p->at = h->at;
	s->npages++;
	return 0;
}

static int same_key(const struct session *s, const struct pex_al_hit *h,
		    uint64_t uah)
{
	if (s->ident != h->ident || s->h != uah || !s->ua != !h->ua)
		return 0;
	return !s->ua || (s->ua_len == h->ua_len &&
			  !memcmp(s->ua, h->ua, h->ua_len));
}

static int count_tables(struct pex_al_usage *u, const struct pex_al_hit *h)
{
	size_t subject = u->idents[h->ident].subject;
	struct subject_state *st = &u->subjects[subject];
	int rc;

	if (h->ua) {
		rc = table_add(&u->devices, &st->ndevices, subject, h->ua,
			       h->ua_len, h->ident, h->at);
		if (rc < 0)
			return rc;
		if (rc == TALLY_FULL && !st->warned_dev) {
			st->warned_dev = 1;
			pex_source_warn_subject(u->src, subject, "more than "
				"%zu distinct user agents: the rest are not "
				"listed as devices (every request is among the "
				"usage events, with its user agent)",
				u->devices.max);
		}
		if (rc == TALLY_FULL_ALL && !st->warned_dev_all) {
			st->warned_dev_all = 1;
			pex_source_warn_subject(u->src, subject, "the list "
				"of devices was cut at %zu entries, the most "
				"this export keeps in memory: the rest are not "
				"listed (every request is among the usage "
				"events, with its user agent)",
				u->devices.max_all);
		}
	}
	if (h->ip) {
		rc = table_add(&u->ips, &st->nips, subject, h->ip,
			       strlen(h->ip), h->ident, h->at);
		if (rc < 0)
			return rc;
		if (rc == TALLY_FULL && !st->warned_ip) {
			st->warned_ip = 1;
			pex_source_warn_subject(u->src, subject, "more than "
				"%zu distinct client addresses: the rest are "
				"not listed (every request is among the usage "
				"events, with its address)", u->ips.max);
		}
		if (rc == TALLY_FULL_ALL && !st->warned_ip_all) {
			st->warned_ip_all = 1;
			pex_source_warn_subject(u->src, subject, "the list "
				"of client addresses was cut at %zu entries, "
				"the most this export keeps in memory: the "
				"rest are not listed (every request is among "
				"the usage events, with its address)",
				u->ips.max_all);
		}
	}
	return 0;
}

static int session_cmp(const void *va, const void *vb)
{
	const struct session *a = *(const struct session *const *)va;
	const struct session *b = *(const struct session *const *)vb;

	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	if (a->subject != b->subject)
		return a->subject < b->subject ? -1 : 1;
	return strcmp(a->first_id, b->first_id);
}

/* Close, in start order, the subject's open sessions idle at now, or
 * every open session of every subject (all). */
static int close_where(struct pex_al_usage *u, size_t subject, time_t now,
		       int all)
{
	struct session **v, *s;
	size_t i = 0, n = all ? u->nopen : u->subjects[subject].nopen;
	int rc = 0;

	if (!n)
		return 0;
	v = calloc(n, sizeof(*v));
	if (!v)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	if (all)
		for (s = u->ghead; s && i < n; s = s->gnext)
			v[i++] = s;
	else
		for (s = u->subjects[subject].head; s && i < n; s = s->next)
			if ((long long)s->last + u->lim.idle_seconds <
			    (long long)now)
				v[i++] = s;
	qsort(v, i, sizeof(*v), session_cmp);
	for (n = i, i = 0; i < n && !rc; i++)
		rc = close_session(u, v[i]);
	free(v);
	return rc;
}

/* Close the subject's visits that went idle. Files are read oldest
 * first, so a visit this far behind the subject's current request is
 * over. Other subjects' requests do not count: a subject's visits are
 * the same alone or in a batch. */
static int close_idle(struct pex_al_usage *u, size_t subject, time_t now)
{
	struct session *s;

	for (s = u->subjects[subject].head; s; s = s->next)
		if ((long long)s->last + u->lim.idle_seconds < (long long)now)
			return close_where(u, subject, now, 0);
	return 0;
}

int pex_al_usage_add(struct pex_al_usage *u, const struct pex_al_hit *h)
{
	uint64_t uah = h->ua ? hash_bytes(h->ua, h->ua_len, 1) : 0;
	long long idle = u->lim.idle_seconds;
	struct session *s;
	size_t subject;
	int rc;

	if (h->ident >= u->nidents)
		return pex_error_set(PEX_EUSAGE, "bad identity index");
	subject = u->idents[h->ident].subject;
	rc = close_idle(u, subject, h->at);
	if (rc)
		return rc;
	for (s = u->subjects[subject].head; s; s = s->next)
		if (same_key(s, h, uah) &&
		    (long long)h->at + idle >= (long long)s->start)
			break;
	if (!s) {
		rc = open_session(u, h, uah, &s);
		if (rc)
			return rc;
	}
	if (h->path && !h->is_static) {
		if (s->npages >= u->lim.max_session_pages) {
			struct subject_state *st = &u->subjects[subject];

			if (!st->warned_split) {
				st->warned_split = 1;
				pex_source_warn_subject(u->src, subject,
					"a visit longer than %zu pages was "
					"split", u->lim.max_session_pages);
			}
			rc = close_session(u, s);
			if (!rc)
				rc = open_session(u, h, uah, &s);
			if (rc)
				return rc;
		}
		rc = add_page(s, h);
		if (rc)
			return rc;
		/* what the page takes: its path's allocation (glibc's
		 * chunks: the size plus 8, in 16-byte steps, 32 at least)
		 * and its slot, twice over while the array grows by
		 * doubling */
		size_t cost = ((h->path_len + 8 + 15) & ~(size_t)15) < 32 ?
			      32 : (h->path_len + 8 + 15) & ~(size_t)15;

		cost += 2 * sizeof(struct page);
		s->bytes += cost;
		u->open_bytes += cost;
	}
	if (h->at < s->start)
		s->start = h->at;
	if (h->at > s->last)
		s->last = h->at;
	s->requests++;
	unlink_session(u, s);
	append_session(u, s);
	/* Page text is the one thing that grows: keep it within bounds by
	 * closing the least recently active visits, whoever's they are
	 * (this one last). */
	while (u->open_bytes > u->lim.max_open_bytes && u->ghead) {
		/* said to the one whose visit closes early */
		struct subject_state *st = &u->subjects[u->ghead->subject];

		if (!st->warned_bytes) {
			st->warned_bytes = 1;
			pex_source_warn_subject(u->src, u->ghead->subject,
				"open visits held more than %zu bytes of "
				"pages: the least recently active were closed "
				"early", u->lim.max_open_bytes);
		}
		rc = close_session(u, u->ghead);
		if (rc)
			return rc;
	}
	return count_tables(u, h);
}

/* ---- finishing ------------------------------------------------------- */

static int close_all(struct pex_al_usage *u)
{
	return close_where(u, 0, 0, 1);
}

/* "121.0.1": the version parts that are present, dot-joined. */
static void join_version(char *out, size_t outsz, const char *a,
			 const char *b, const char *c, const char *d)
{
	const char *parts[4] = {a, b, c, d};
	size_t i, n = 0;

	out[0] = '\0';
	for (i = 0; i < 4 && parts[i][0]; i++) {
		int w = snprintf(out + n, outsz - n, "%s%s", i ? "." : "",
				 parts[i]);

		if (w < 0 || (size_t)w >= outsz - n)
			break;
		n += (size_t)w;
	}
}

static int put_text(struct pex_al_usage *u, json_t *o, const char *key,
		    const char *s)
{
	if (!s[0])
		return 0;
	return json_object_set_new(o, key, pex_source_text(u->src, s,
							   strlen(s)));
}

static int tally_common(struct pex_al_usage *u, json_t *rec,
			const struct tally *t, const char *id)
{
	int bad = 0;

	bad |= json_object_set_new(rec, "id", json_string(id));
	bad |= json_object_set_new(rec, "matched_by", json_deep_copy(
		u->idents[t->ident].matched_by));
	bad |= set_time(rec, "first_seen", t->first);
	bad |= set_time(rec, "last_seen", t->last);
	bad |= json_object_set_new(rec, "requests",
				   json_integer((json_int_t)t->requests));
	bad |= json_object_set_new(rec, "extra", json_object());
	return bad;
}

/* The parsed fields of one user agent, as text (NULL: absent). */
enum { UA_BROWSER, UA_BROWSER_VERSION, UA_OS, UA_OS_VERSION, UA_DEVICE,
       UA_BRAND, UA_MODEL, UA__COUNT };
static const char *const ua_keys[UA__COUNT] = {
	"browser", "browser_version", "os", "os_version", "device",
	"device_brand", "device_model",
};

struct ua_fields {
	char *v[UA__COUNT];
};

static void ua_fields_free(struct ua_fields *f)
{
	int i;

	for (i = 0; f && i < UA__COUNT; i++)
		free(f->v[i]);
	free(f);
}

static int parse_device(const pex_uaparser *uap, pex_uaparser_scratch *scr,
			const struct tally *t, struct ua_fields **out)
{
	char bver[4 * PEX_UA_FIELD_MAX], over[4 * PEX_UA_FIELD_MAX];
	struct pex_ua_result *r = malloc(sizeof(*r));
	struct ua_fields *f = calloc(1, sizeof(*f));
	const char *src[UA__COUNT];
	int rc, i;

	*out = NULL;
	rc = r && f ? pex_uaparser_parse(uap, scr, t->key, t->len, r)
		    : pex_error_set(PEX_ENOMEM, "out of memory");
	if (!rc) {
		join_version(bver, sizeof(bver), r->browser.major,
			     r->browser.minor, r->browser.patch,
			     r->browser.patch_minor);
		join_version(over, sizeof(over), r->os.major, r->os.minor,
			     r->os.patch, r->os.patch_minor);
		src[UA_BROWSER] = r->browser.family;
		src[UA_BROWSER_VERSION] = bver;
		src[UA_OS] = r->os.family;
		src[UA_OS_VERSION] = over;
		src[UA_DEVICE] = r->device.family;
		src[UA_BRAND] = r->device.brand;
		src[UA_MODEL] = r->device.model;
		/* an empty value is an absent one */
		for (i = 0; i < UA__COUNT && !rc; i++)
			if (src[i][0] && !(f->v[i] = strdup(src[i])))
				rc = pex_error_set(PEX_ENOMEM,
						   "out of memory");
	}
	free(r);
	if (rc) {
		ua_fields_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

/*
 * A batch's subjects mostly share a few browsers, and one uap-core parse
 * costs about a tenth of a millisecond: each distinct user agent is
 * parsed once per finish, its fields kept as text for the other devices
 * that carry it. Each device makes its own JSON strings from them, so
 * characters replaced in them count in every subject's warnings and no
 * value is shared between records (a batch hands them to other
 * threads). Slots hold item index + 1 of the first device with that
 * agent; first[] that device's index for every device, parsed[] its
 * fields.
 */
struct ua_memo {
	uint32_t *slots;
	size_t nslots;
	size_t *first;             /* by device index */
	struct ua_fields **parsed; /* by device index */
};

/* Slots for the user agents of n devices: a power of two, at least
 * twice n, so that probing stays short. */
static size_t agent_nslots(size_t n)
{
	size_t nslots = 64;

	while (nslots < 2 * n)
		nslots *= 2;
	return nslots;
}

/* The slot that holds device k's user agent (slots[i] != 0: the device
 * index + 1 of the first with it), or the free one where it would go. */
static size_t agent_slot(const struct pex_al_usage *u,
			 const uint32_t *slots, size_t nslots, size_t k)
{
	const struct tally *t = &u->devices.items[k];
	size_t i;

	for (i = hash_bytes(t->key, t->len, 0) & (nslots - 1); slots[i];
	     i = (i + 1) & (nslots - 1)) {
		const struct tally *e = &u->devices.items[slots[i] - 1];

		if (e->len == t->len && !memcmp(e->key, t->key, t->len))
			break;
	}
	return i;
}

/* Find each device's first device with the same user agent (first[]);
 * list in todo[] those first devices, the ones to parse. */
static void agents_plan(const struct pex_al_usage *u, struct ua_memo *m,
			size_t *todo, size_t *ntodo)
{
	size_t k, i;

	*ntodo = 0;
	for (k = 0; k < u->devices.n; k++) {
		i = agent_slot(u, m->slots, m->nslots, k);
		if (!m->slots[i]) {
			m->slots[i] = (uint32_t)k + 1;
			todo[(*ntodo)++] = k;
		}
		m->first[k] = m->slots[i] - 1;
	}
}

/*
 * The distinct user agents are parsed on a thread of their own while the
 * caller closes and emits the sessions (parsing without JIT code costs
 * about 0.3 ms an agent; a batch's subjects brought 9 to the bench, one
 * subject's 2701 requests one long session). The parser is read-only
 * once loaded; the thread has its own scratch and writes only parsed[]
 * of the devices in todo[], read by the caller after the join.
 */
struct agents_job {
	const struct pex_al_usage *u;
	const pex_uaparser *ua;
	struct ua_memo *m;
	const size_t *todo;
	size_t ntodo;
	int rc;
	char msg[512];
};

static void *agents_parse(void *arg)
{
	struct agents_job *j = arg;
	pex_uaparser_scratch *scr = NULL;
	size_t i;

	j->rc = pex_uaparser_scratch_new(j->ua, &scr);
	for (i = 0; i < j->ntodo && !j->rc; i++) {
		size_t k = j->todo[i];

		j->rc = parse_device(j->ua, scr, &j->u->devices.items[k],
				     &j->m->parsed[k]);
	}
	if (j->rc)
		snprintf(j->msg, sizeof(j->msg), "%s", pex_error_last());
	pex_uaparser_scratch_free(scr);
	return NULL;
}

static int emit_device(struct pex_al_usage *u, const struct tally *t,
		       const struct ua_fields *fields)
{
	char hex[PEX_SHA256_HEX], id[64];
	json_t *rec = json_object();
	int bad = !rec, rc, i;

	rc = pex_sha256_hex(t->key, t->len, hex);
	if (rc) {
		json_decref(rec);
		return rc;
	}
	snprintf(id, sizeof(id), "device:%.16s:%s", hex,
		 u->idents[t->ident].tag);
	bad |= tally_common(u, rec, t, id);
	bad |= json_object_set_new(rec, "user_agent", pex_source_text(
		u->src, t->key, t->len));
	for (i = 0; fields && !bad && i < UA__COUNT; i++)
		if (fields->v[i])
			bad |= put_text(u, rec, ua_keys[i], fields->v[i]);
	if (bad) {
		json_decref(rec);
		return pex_error_set(PEX_ENOMEM, "out of memory building a "
				     "device");
	}
	return u->emit(u->emit_data[t->subject], PEX_REC_DEVICE, rec);
}

static int emit_ip(struct pex_al_usage *u, const struct tally *t)
{
	json_t *rec = json_object();
	char id[128];
	int bad = !rec;

	snprintf(id, sizeof(id), "ip:%.*s:%s", (int)t->len, t->key,
		 u->idents[t->ident].tag);
	bad |= tally_common(u, rec, t, id);
	bad |= json_object_set_new(rec, "ip", json_stringn(t->key, t->len));
	if (bad) {
		json_decref(rec);
		return pex_error_set(PEX_ENOMEM, "out of memory building an "
				     "address");
	}
	return u->emit(u->emit_data[t->subject], PEX_REC_IP_ADDRESS, rec);
}

int pex_al_usage_finish(struct pex_al_usage *u, const pex_uaparser *ua)
{
	struct ua_memo m = {0};
	struct agents_job job = {0};
	size_t *todo = NULL, i;
	pthread_t thr;
	int rc = 0, threaded = 0;

	if (ua && u->devices.n) {
		m.nslots = agent_nslots(u->devices.n);
		m.slots = calloc(m.nslots, sizeof(*m.slots));
		m.parsed = calloc(u->devices.n, sizeof(*m.parsed));
		m.first = calloc(u->devices.n, sizeof(*m.first));
		todo = calloc(u->devices.n, sizeof(*todo));
		if (!m.slots || !m.parsed || !m.first || !todo) {
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
			goto cleanup;
		}
		job = (struct agents_job){ .u = u, .ua = ua, .m = &m,
					   .todo = todo };
		agents_plan(u, &m, todo, &job.ntodo);
		threaded = !pthread_create(&thr, NULL, agents_parse, &job);
	}
	rc = close_all(u);
	if (ua && u->devices.n) {
		if (threaded)
			pthread_join(thr, NULL);
		else
			agents_parse(&job);
		if (!rc && job.rc)
			rc = pex_error_set(job.rc, "%s", job.msg);
	}
	for (i = 0; i < u->devices.n && !rc; i++) {
		const struct ua_fields *fields = NULL;

		if (ua)
			fields = m.parsed[m.first[i]];
		rc = emit_device(u, &u->devices.items[i], fields);
	}
	for (i = 0; i < u->ips.n && !rc; i++)
		rc = emit_ip(u, &u->ips.items[i]);
cleanup:
	for (i = 0; m.parsed && i < u->devices.n; i++)
		ua_fields_free(m.parsed[i]);
	free(m.parsed);
	free(m.slots);
	free(m.first);
	free(todo);
	return rc;
}

int pex_al_usage_has_devices(const struct pex_al_usage *u)
{
	return u && u->devices.n > 0;
}

size_t pex_al_usage_agents(const struct pex_al_usage *u)
{
	uint32_t *slots;
	size_t nslots, n = 0, k, i;

	if (!u || !u->devices.n)
		return 0;
	nslots = agent_nslots(u->devices.n);
	slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return u->devices.n; /* at most that many */
	for (k = 0; k < u->devices.n; k++) {
		i = agent_slot(u, slots, nslots, k);
		if (!slots[i]) {
			slots[i] = (uint32_t)k + 1;
			n++;
		}
	}
	free(slots);
	return n;
}

void pex_al_usage_free(struct pex_al_usage *u)
{
	struct session *s, *next;

	if (!u)
		return;
	for (s = u->ghead; s; s = next) {
		next = s->gnext;
		session_free(s);
	}
	free(u->subjects);
	table_free(&u->devices);
	table_free(&u->ips);
	free(u);
}
