/*
 * The access_log collector: usage data (requests, visits) and technical
 * data (user agents, IP addresses) from web server access logs. See
 * docs/internals/access_log.md.
 *
 * A line belongs to the subject when the value a `match` rule reads from
 * it (the logged user, a cookie, a request header, the client address)
 * equals one of the subject's identities of that rule's type, after
 * pex_identity_normalize(); an identity with a time window (an IP address)
 * counts only for lines whose time lies inside it, bounds included.
 * Before any line is parsed, whole blocks are searched for the text of
 * those identities (al_files.c), so the cost of a large log is close to
 * the cost of reading it.
 *
 * Matching lines stream out as usage events; visits, devices and
 * addresses are built alongside (al_usage.c).
 *
 * A batch (collect_batch: many subjects, one pass) reads each file once:
 * the block search looks for every subject's values at once, a line that
 * holds one is parsed once, and a table of all subjects' (rule, value)
 * pairs says whose it is. A line can be several subjects' (a NAT address
 * two people used at the same time): each gets it, credited to their own
 * first matching identity. collect() is a batch of one. Lines that cannot be read
 * are skipped and counted per file in the manifest's warnings; a file
 * that is missing or cannot be decompressed fails the source.
 *
 * Ownership: the engine owns the option values in struct al_ctx; init
 * builds the derived fields below them and fini frees those. Everything
 * a collect call builds is freed before it returns, except the user-agent
 * parser, which is loaded on first need and kept until fini.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectors/access_log/al_files.h"
#include "collectors/access_log/al_usage.h"
#include "collectors/access_log/logformat.h"
#include "core/hash.h"
#include "core/timeutil.h"
#include "portex/collector.h"
#include "portex/error.h"
#include "portex/mapper.h"
#include "portex/uaparser.h"

#define AL_MATCH_MAX 16          /* rules in `match` */
#define AL_TRUSTED_MAX 256       /* networks in `trusted_proxies` */
#define AL_SUFFIX_MAX 256        /* entries in `static_suffixes` */
#define AL_TABLE_LIMIT 1000000   /* ceiling of the max_* options */
#define AL_ID_MAX 1024           /* record ids (schema maxLength) */
#define AL_BATCH_IDS_MAX 1000000 /* identities of all subjects of a batch */
#define AL_BATCH_TABLE_SHARE 4   /* a batch's device/address tables hold
				  * up to this many subjects' caps */

enum match_kind { M_USER, M_COOKIE, M_HEADER, M_IP };

struct matcher {
	enum match_kind kind;
	const char *type;  /* identity type; borrowed from options or static */
	const char *name;  /* cookie or header name (borrowed) */
	int slot;          /* pex_logrec.named[] index */
	int bytewise;      /* normalising the type changes nothing but
			    * surrounding blanks: compare bytes directly */
};

struct al_ctx {
	/* Options, filled by the engine from the config map. */
	char **paths;
	char *format;
	char *format_style;
	json_t *match;
	char **trusted_proxies;
	long long session_idle_minutes;
	char **static_suffixes;
	long long max_line_bytes;
	char *uap_regexes;
	long long max_devices;
	long long max_ips;
	long long max_open_sessions;
	long long max_session_pages;
	int prefilter;
	int allow_trailing;

	/* Derived in init, freed in fini. */
	struct pex_logformat *fmt;
	struct pex_cidr *trusted;
	size_t ntrusted;
	struct matcher matchers[AL_MATCH_MAX];
	size_t nmatchers;
	char *scratch;
	size_t scratch_cap;
	pex_uaparser *uap; /* loaded on first need */
};

static const struct pex_config_map al_config[] = {
	{PEX_OPT_STRLIST, "paths", NULL, PEX_OPT_REQUIRED,
	 offsetof(struct al_ctx, paths),
	 "log files and globs, relative to the configuration file's "
	 "directory; rotated and compressed files (access.log.2.gz) are "
	 "read oldest first"},
	{PEX_OPT_STR, "format", "combined", 0, offsetof(struct al_ctx, format),
	 "a preset (common, combined, vhost_combined, nginx, traefik) or an "
	 "Apache LogFormat / nginx log_format string"},
	{PEX_OPT_STR, "format_style", NULL, 0,
	 offsetof(struct al_ctx, format_style),
	 "apache or nginx: how to read `format` (default: nginx when it "
	 "holds $variables and no %directives)"},
	{PEX_OPT_JSON, "match", "[\"user\", \"ip\"]", 0,
	 offsetof(struct al_ctx, match),
	 "how lines are tied to the subject: a list of user, ip, "
	 "{cookie: NAME, type: TYPE}, {header: NAME, type: TYPE}"},
	{PEX_OPT_STRLIST, "trusted_proxies", NULL, 0,
	 offsetof(struct al_ctx, trusted_proxies),
	 "networks (CIDR) of proxies whose X-Forwarded-For is believed"},
	{PEX_OPT_INT, "session_idle_minutes", "30", 0,
	 offsetof(struct al_ctx, session_idle_minutes),
	 "idle minutes after which a new visit starts"},
	{PEX_OPT_STRLIST, "static_suffixes", NULL, 0,
	 offsetof(struct al_ctx, static_suffixes),
	 "path endings of static assets, kept as events but not pages "
	 "(default .css .js .png .jpg .jpeg .gif .svg .ico .woff .woff2 "
	 ".map)"},
	{PEX_OPT_INT, "max_line_bytes", "65536", 0,
	 offsetof(struct al_ctx, max_line_bytes),
	 "longest line read; longer ones are skipped and counted"},
	{PEX_OPT_STR, "uap_regexes", NULL, 0,
	 offsetof(struct al_ctx, uap_regexes),
	 "uap-core regexes.yaml (default: the uap-core package's)"},
	{PEX_OPT_INT, "max_devices", "10000", 0,
	 offsetof(struct al_ctx, max_devices),
	 "distinct user agents listed per collect"},
	{PEX_OPT_INT, "max_ips", "10000", 0, offsetof(struct al_ctx, max_ips),
	 "distinct client addresses listed per collect"},
	{PEX_OPT_INT, "max_open_sessions", "1000", 0,
	 offsetof(struct al_ctx, max_open_sessions),
	 "visits held open at once"},
	{PEX_OPT_INT, "max_session_pages", "10000", 0,
	 offsetof(struct al_ctx, max_session_pages),
	 "pages after which a visit is split"},
	{PEX_OPT_BOOL, "prefilter", "true", 0,
	 offsetof(struct al_ctx, prefilter),
	 "search blocks for the subject's values before parsing lines; "
	 "false parses every line (and counts every bad one)"},
	{PEX_OPT_BOOL, "allow_trailing_fields", "false", 0,
	 offsetof(struct al_ctx, allow_trailing),
	 "accept lines with extra fields after the format's last"},
	{.name = NULL},
};

static const char *const default_suffixes[] = {
	".css", ".js", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico",
	".woff", ".woff2", ".map", NULL,
};

/* Memory open sessions' pages may take, all subjects together (their
 * text, allocations and slots, as al_usage.c reckons them): with the
 * other caps this keeps a collect well under the 64 MB the design
 * allows. 16 MiB of text alone let a batch of heavy visitors reach
 * 81 MB. */
#define AL_OPEN_BYTES_MAX (8u << 20)

/* ---- init ------------------------------------------------------------ */

static int valid_type(const char *s)
{
	size_t i;

	if (!s || !(s[0] >= 'a' && s[0] <= 'z') || strlen(s) > 32)
		return 0;
	for (i = 1; s[i]; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

/* Whether values of type compare as bytes once trimmed: then the text in
 * the log is the identity's text and the block search can look for it. */
static int type_is_bytewise(const char *type)
{
	static const char probe[] = "Ab-1 +2";
	char *n = pex_identity_normalize(type, probe, sizeof(probe) - 1);
	int same = n && !strcmp(n, probe);

	free(n);
	return same;
}

static int add_matcher(struct al_ctx *c, enum match_kind kind,
		       const char *type, const char *name)
{
	struct matcher *m;
	int slot = 0;

	if (c->nmatchers >= AL_MATCH_MAX)
		return pex_error_set(PEX_ELIMIT, "match: more than %d rules",
				     AL_MATCH_MAX);
	if (!valid_type(type))
		return pex_error_set(PEX_EINVALID, "match: identity type "
				     "'%s' must be lower-case letters, "
				     "digits and _", type ? type : "");
	if (kind == M_COOKIE) {
		slot = pex_logformat_cookie_slot(c->fmt, name);
		if (slot < 0)
			return pex_error_set(PEX_EINVALID, "match: the format "
					     "does not log cookie '%s'", name);
	} else if (kind == M_HEADER) {
		slot = pex_logformat_header_slot(c->fmt, name);
		if (slot < 0)
			return pex_error_set(PEX_EINVALID, "match: the format "
					     "does not log header '%s'", name);
	}
	m = &c->matchers[c->nmatchers++];
	m->kind = kind;
	m->type = type;
	m->name = name;
	m->slot = slot;
	m->bytewise = kind == M_IP || type_is_bytewise(type);
	return 0;
}

/* "user", "ip", "cookie: NAME", "header: NAME". */
static int parse_match_string(struct al_ctx *c, const char *s)
{
	const char *colon = strchr(s, ':');
	const char *name;

	if (!strcmp(s, "user"))
		return add_matcher(c, M_USER, "username", NULL);
	if (!strcmp(s, "ip"))
		return add_matcher(c, M_IP, "ip", NULL);
	if (colon) {
		name = colon + 1;
		while (*name == ' ')
			name++;
		if (!strncmp(s, "cookie:", 7) && *name)
			return add_matcher(c, M_COOKIE, "cookie_id", name);
	}
	return pex_error_set(PEX_EINVALID, "match: '%s' is not user, ip, "
			     "cookie: NAME or {header: NAME, type: TYPE}",
			     s);
}

static int parse_match_object(struct al_ctx *c, json_t *o)
{
	const char *type = json_string_value(json_object_get(o, "type"));
	json_t *cookie = json_object_get(o, "cookie");
	json_t *header = json_object_get(o, "header");
	int kinds = !!json_object_get(o, "user") + !!json_object_get(o, "ip") +
		    !!cookie + !!header;
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v) {
		if (strcmp(key, "user") && strcmp(key, "ip") &&
		    strcmp(key, "cookie") && strcmp(key, "header") &&
		    strcmp(key, "type"))
			return pex_error_set(PEX_EINVALID, "match: unknown "
					     "key '%s'", key);
	}
	if (kinds != 1)
		return pex_error_set(PEX_EINVALID, "match: each rule names "
				     "one of user, ip, cookie, header");
	if (json_object_get(o, "type") && !type)
		return pex_error_set(PEX_EINVALID, "match: type must be a "
				     "string");
	if (json_object_get(o, "user"))
		return add_matcher(c, M_USER, type ? type : "username", NULL);
	if (json_object_get(o, "ip")) {
		if (type && strcmp(type, "ip"))
			return pex_error_set(PEX_EINVALID, "match: an ip rule "
					     "matches identities of type ip");
		return add_matcher(c, M_IP, "ip", NULL);
	}
	if (cookie) {
		if (!json_is_string(cookie) || !json_string_length(cookie))
			return pex_error_set(PEX_EINVALID, "match: cookie "
					     "must name the cookie");
		return add_matcher(c, M_COOKIE, type ? type : "cookie_id",
				   json_string_value(cookie));
	}
	if (!json_is_string(header) || !json_string_length(header))
		return pex_error_set(PEX_EINVALID, "match: header must name "
				     "the header");
	if (!type)
		return pex_error_set(PEX_EINVALID, "match: header '%s' needs "
				     "a type (the identity type its values "
				     "are)", json_string_value(header));
	return add_matcher(c, M_HEADER, type, json_string_value(header));
}

/* The identity types the match rules search by (default: user, ip),
 * following the rules parse_match applies; bad rules add nothing (the
 * source's init reports them). */
static void al_identity_types(const json_t *options, json_t *types)
{
	const json_t *match = json_object_get(options, "match");
	const json_t *r;
	size_t i, n = json_is_array(match) ? json_array_size(match) : 1;

	if (!match) {
		json_object_set_new(types, "username", json_true());
		json_object_set_new(types, "ip", json_true());
		return;
	}
	for (i = 0; i < n; i++) {
		const char *t = NULL;

		r = json_is_array(match) ? json_array_get(match, i) : match;
		if (json_is_string(r)) {
			const char *v = json_string_value(r);

			t = !strcmp(v, "user") ? "username"
			    : !strcmp(v, "ip") ? "ip"
			    : !strncmp(v, "cookie:", 7) ? "cookie_id" : NULL;
		} else if (json_is_object(r)) {
			t = json_string_value(json_object_get(r, "type"));
			if (!t && json_object_get(r, "user"))
				t = "username";
			else if (json_object_get(r, "ip"))
				t = "ip";
			else if (!t && json_object_get(r, "cookie"))
				t = "cookie_id";
		}
		if (t && valid_type(t))
			json_object_set_new(types, t, json_true());
	}
}

static int parse_match(struct al_ctx *c)
{
	size_t i;
	int rc;

	if (json_is_string(c->match))
		return parse_match_string(c, json_string_value(c->match));
	if (!json_is_array(c->match) || !json_array_size(c->match))
		return pex_error_set(PEX_EINVALID, "match must be a list of "
				     "rules (user, ip, {cookie: NAME}, ...)");
	for (i = 0; i < json_array_size(c->match); i++) {
		json_t *e = json_array_get(c->match, i);

		if (json_is_string(e))
			rc = parse_match_string(c, json_string_value(e));
		else if (json_is_object(e))
			rc = parse_match_object(c, e);
		else
			rc = pex_error_set(PEX_EINVALID, "match[%zu] must be "
					   "a name or a map", i);
		if (rc)
			return rc;
	}
	return 0;
}

static int compile_format(struct al_ctx *c)
{
	const char *f = c->format;
	enum pex_logformat_syntax syn;
	int rc;

	if (!strchr(f, '%') && !strchr(f, '$'))
		return pex_logformat_preset(&c->fmt, f);
	if (c->format_style && !strcmp(c->format_style, "apache"))
		syn = PEX_LOGFORMAT_APACHE;
	else if (c->format_style && !strcmp(c->format_style, "nginx"))
		syn = PEX_LOGFORMAT_NGINX;
	else if (c->format_style)
		return pex_error_set(PEX_EINVALID, "format_style must be "
				     "apache or nginx, not '%s'",
				     c->format_style);
	else
		syn = strchr(f, '$') && !strchr(f, '%') ?
		      PEX_LOGFORMAT_NGINX : PEX_LOGFORMAT_APACHE;
	rc = pex_logformat_compile(&c->fmt, syn, f);
	return rc ? pex_error_wrap(rc, "format") : 0;
}

static int check_range(const char *name, long long v, long long lo,
		       long long hi)
{
	if (v < lo || v > hi)
		return pex_error_set(PEX_EINVALID, "%s must be between %lld "
				     "and %lld", name, lo, hi);
	return 0;
}

static void al_fini(struct pex_source *src, void *ctx);

static int al_setup(struct al_ctx *c)
{
	size_t i, n = 0;
	int rc;

	rc = check_range("session_idle_minutes", c->session_idle_minutes, 1,
			 7 * 24 * 60);
	if (!rc)
		rc = check_range("max_line_bytes", c->max_line_bytes, 256,
				 PEX_LOGLINE_MAX_LIMIT);
	if (!rc)
		rc = check_range("max_devices", c->max_devices, 1,
				 AL_TABLE_LIMIT);
	if (!rc)
		rc = check_range("max_ips", c->max_ips, 1, AL_TABLE_LIMIT);
	if (!rc)
		rc = check_range("max_open_sessions", c->max_open_sessions, 1,
				 AL_TABLE_LIMIT);
	if (!rc)
		rc = check_range("max_session_pages", c->max_session_pages, 1,
				 AL_TABLE_LIMIT);
	if (rc)
		return rc;
	if (!c->paths || !c->paths[0])
		return pex_error_set(PEX_EINVALID, "paths: no file given");
	rc = compile_format(c);
	if (rc)
		return rc;
	if (!pex_logformat_has_time(c->fmt))
		return pex_error_set(PEX_EINVALID, "format logs no time: "
				     "requests could not be dated");
	rc = pex_logformat_set_max_line(c->fmt, (size_t)c->max_line_bytes);
	if (rc)
		return rc;
	pex_logformat_set_allow_trailing(c->fmt, c->allow_trailing);
	for (i = 0; c->static_suffixes && c->static_suffixes[i]; i++)
		if (i >= AL_SUFFIX_MAX)
			return pex_error_set(PEX_ELIMIT, "static_suffixes: "
					     "more than %d", AL_SUFFIX_MAX);
	rc = parse_match(c);
	if (rc)
		return rc;
	while (c->trusted_proxies && c->trusted_proxies[n])
		n++;
	if (n > AL_TRUSTED_MAX)
		return pex_error_set(PEX_ELIMIT, "trusted_proxies: more than "
				     "%d networks", AL_TRUSTED_MAX);
	if (n && pex_logformat_header_slot(c->fmt, "X-Forwarded-For") < 0)
		return pex_error_set(PEX_EINVALID, "trusted_proxies: the "
				     "format does not log X-Forwarded-For");
	if (n) {
		c->trusted = calloc(n, sizeof(*c->trusted));
		if (!c->trusted)
			return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++) {
		if (pex_cidr_parse(c->trusted_proxies[i], &c->trusted[i]))
			return pex_error_set(PEX_EINVALID, "trusted_proxies: "
					     "'%s' is no network (CIDR)",
					     c->trusted_proxies[i]);
	}
	c->ntrusted = n;
	c->scratch_cap = (size_t)c->max_line_bytes + 2;
	c->scratch = malloc(c->scratch_cap);
	if (!c->scratch)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	return 0;
}

/* The engine calls fini only after a successful init: a failed init
 * releases what it built itself. */
static int al_init(struct pex_source *src, void *ctx)
{
	int rc = al_setup(ctx);

	if (rc)
		al_fini(src, ctx);
	return rc;
}

static void al_fini(struct pex_source *src, void *ctx)
{
	struct al_ctx *c = ctx;

	pex_logformat_free(c->fmt);
	free(c->trusted);
	free(c->scratch);
	pex_uaparser_free(c->uap);
	c->fmt = NULL;
	c->trusted = NULL;
	c->scratch = NULL;
	c->uap = NULL;
}

/* ---- matching -------------------------------------------------------- */

/* One (identity, rule) pair a line is tested against. */
struct cand {
	const struct pex_identity *id;
	const struct matcher *m;
	size_t mi;      /* index of m in the context's matchers */
	size_t subject; /* whose identity */
	size_t ident;   /* index into the run's identity table */
	size_t vlen;
};

/* The candidates sorted by (rule, value), to find the ones a line's
 * value matches without testing each subject's in turn. */
struct cand_key {
	size_t mi;
	const char *v;
	size_t vlen;
	size_t cand; /* index into cands: lower is preferred */
};

/* The candidate a line is credited to, for one subject. */
struct best {
	size_t subject;
	size_t cand;
};

enum bad_reason { BAD_TRUNCATED, BAD_MISMATCH, BAD_BINARY, BAD_TOO_LONG,
		  BAD_XFF, BAD__COUNT };

static const char *const bad_text[BAD__COUNT] = {
	"truncated (the line ends before the format does)",
	"not in the configured format",
	"binary data",
	"longer than max_line_bytes",
	"X-Forwarded-For holds something that is no address, client unknown",
};

struct run {
	struct pex_source *src;
	struct al_ctx *c;
	pex_emit_fn emit;
	void *const *emit_data;
	size_t nsubjects;
	struct cand *cands; /* subject by subject, each in identity order */
	size_t ncands;
	struct cand_key *keys; /* ncands, sorted */
	int used[AL_MATCH_MAX]; /* some candidate uses matcher i */
	struct best *best;  /* ncands: the current line's winners */
	size_t nbest;
	struct pex_al_ident *idents;
	size_t nidents;
	struct pex_al_usage *usage;
	const char *const *suffixes;
	const struct pex_al_file *file;
	unsigned long long bad[BAD__COUNT];
	unsigned long long bad_first[BAD__COUNT];
	/* With the block search on, a line is seen only when it holds a
	 * value searched for: a bad one is then told to the subjects whose
	 * values it holds (nsubjects x BAD__COUNT), not to everyone. */
	int prefiltered;
	unsigned long long *sbad, *sbad_first;
	unsigned char *hit; /* nsubjects: the current bad line's */
	unsigned long long matched;
	struct uap_loader *loader; /* started at the first request found */
};

static void count_bad(struct run *r, enum bad_reason why,
		      unsigned long long lineno)
{
	if (!r->bad[why]++)
		r->bad_first[why] = lineno;
}

/* A bad line whose bytes we have: whose values does it hold? */
static void count_bad_line(struct run *r, enum bad_reason why,
			   unsigned long long lineno, const char *line,
			   size_t len)
{
	size_t i, any = 0;

	if (!r->prefiltered || !r->sbad) {
		count_bad(r, why, lineno);
		return;
	}
	memset(r->hit, 0, r->nsubjects);
	for (i = 0; i < r->ncands; i++) {
		const struct cand *k = &r->cands[i];
		const char *v = k->id->value;

		if (!r->hit[k->subject] && k->m->bytewise &&
		    memmem(line, len, v, strlen(v))) {
			r->hit[k->subject] = 1;
			any++;
		}
	}
	if (!any) { /* found by a spelling of a value: anyone's */
		count_bad(r, why, lineno);
		return;
	}
	for (i = 0; i < r->nsubjects; i++) {
		unsigned long long *c = &r->sbad[i * BAD__COUNT + why];

		if (r->hit[i] && !(*c)++)
			r->sbad_first[i * BAD__COUNT + why] = lineno;
	}
}

static int key_cmp3(size_t mi, const char *v, size_t vlen,
		    const struct cand_key *k)
{
	if (mi != k->mi)
		return mi < k->mi ? -1 : 1;
	if (vlen != k->vlen)
		return vlen < k->vlen ? -1 : 1;
	return memcmp(v, k->v, vlen);
}

static int key_cmp(const void *va, const void *vb)
{
	const struct cand_key *a = va, *b = vb;
	int d = key_cmp3(a->mi, a->v, a->vlen, b);

	if (d)
		return d;
	return a->cand < b->cand ? -1 : a->cand > b->cand;
}

/* Remember that the line matches candidate k: per subject, the earliest
 * candidate wins (see collector.h). */
static void note_best(struct run *r, size_t k)
{
	size_t subject = r->cands[k].subject, i;

	for (i = 0; i < r->nbest; i++) {
		if (r->best[i].subject == subject) {
			if (k < r->best[i].cand)
				r->best[i].cand = k;
			return;
		}
	}
	r->best[r->nbest++] = (struct best){.subject = subject, .cand = k};
}

/* The candidates of rule mi whose value is v[0..n) and whose window
 * holds t go to note_best. */
static void lookup(struct run *r, size_t mi, const char *v, size_t n,
		   time_t t)
{
	size_t lo = 0, hi = r->ncands;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (key_cmp3(mi, v, n, &r->keys[mid]) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < r->ncands && !key_cmp3(mi, v, n, &r->keys[lo]); lo++) {
		const struct cand *k = &r->cands[r->keys[lo].cand];

		/* A weak identity counts only inside its window. */
		if (k->id->has_window && (t < k->id->not_before ||
					  t > k->id->not_after))
			continue;
		note_best(r, r->keys[lo].cand);
	}
}

static void trim_space(const char **p, size_t *len)
{
	while (*len && isspace((unsigned char)**p)) {
		(*p)++;
		(*len)--;
	}
	while (*len && isspace((unsigned char)(*p)[*len - 1]))
		(*len)--;
}

/* Fill r->best with, per subject, the candidate the line is credited
 * to. */
static int match_line(struct run *r, const struct pex_logrec *rec,
		      const char *client)
{
	size_t mi;

	r->nbest = 0;
	for (mi = 0; mi < r->c->nmatchers; mi++) {
		const struct matcher *m = &r->c->matchers[mi];
		const struct pex_logslice *v;
		const char *p;
		size_t len;
		char *norm;

		if (!r->used[mi])
			continue;
		if (m->kind == M_IP) {
			if (client)
				lookup(r, mi, client, strlen(client),
				       rec->time);
			continue;
		}
		v = m->kind == M_USER ? &rec->user : &rec->named[m->slot];
		if (!v->ptr)
			continue;
		p = v->ptr;
		len = v->len;
		if (m->bytewise) {
			trim_space(&p, &len);
			lookup(r, mi, p, len, rec->time);
			continue;
		}
		norm = pex_identity_normalize(m->type, p, len);
		if (!norm)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		lookup(r, mi, norm, strlen(norm), rec->time);
		free(norm);
	}
	return 0;
}

/* The client's canonical address into out, or 0 when unknown. */
static int client_ip(struct run *r, const struct pex_logrec *rec,
		     unsigned long long lineno, char out[PEX_IP_TEXT_MAX])
{
	const struct pex_logslice *peer = rec->client.ptr ? &rec->client :
					  &rec->remote_addr;

	if (!peer->ptr)
		return 0;
	if (r->c->ntrusted) {
		if (pex_xff_client(rec->xff.ptr, rec->xff.len, peer->ptr,
				   peer->len, r->c->trusted, r->c->ntrusted,
				   out, PEX_IP_TEXT_MAX) == 0)
			return 1;
		/* The peer is a trusted proxy but the chain cannot be read:
		 * who the client was is unknown, so no address matches. */
		if (pex_ip_canonical(peer->ptr, peer->len, out,
				     PEX_IP_TEXT_MAX) == 0)
			count_bad(r, BAD_XFF, lineno);
		return 0;
	}
	return pex_ip_canonical(peer->ptr, peer->len, out,
				PEX_IP_TEXT_MAX) == 0;
}

static int is_static(const char *const *suffixes, const char *p, size_t n)
{
	size_t i;

	for (i = 0; suffixes[i]; i++) {
		size_t l = strlen(suffixes[i]);

		if (l && l <= n && !strncasecmp(p + n - l, suffixes[i], l))
			return 1;
	}
	return 0;
}

static int put_slice(struct run *r, json_t *o, const char *key,
		     const struct pex_logslice *v)
{
	if (!v->ptr)
		return 0;
	return json_object_set_new(o, key, pex_source_text(r->src, v->ptr,
							   v->len));
}

/* A value the schema bounds goes to extra when it is out of bounds, so
 * an odd line never fails the export. */
static int put_bounded(struct run *r, json_t *o, json_t *extra,
		       const char *key, const struct pex_logslice *v,
		       size_t max)
{
	return put_slice(r, v->len <= max ? o : extra, key, v);
}

static json_t *event_json(struct run *r, const struct pex_logrec *rec,
			  const char *id, size_t ident, const char *client)
{
	json_t *o = json_object(), *extra = json_object();
	char t[PEX_TIME_BUFSZ];
	int bad = !o || !extra;

	bad |= json_object_set_new(o, "id", json_string(id));
	/* shared, not copied (one per event was a tenth of the caller's
	 * time): an event is made and written on this thread, or (a batch)
	 * kept in its subject's spool and let go, after this pass, on the
	 * one thread that makes that subject's bundle; each subject has
	 * matched_by objects of its own, so the count of this object never
	 * changes on two threads at once */
	bad |= json_object_set(o, "matched_by", r->idents[ident].matched_by);
	bad |= json_object_set_new(o, "at", json_string(
		pex_time_format(rec->time, t)));
	if (client)
		bad |= json_object_set_new(o, "client_ip",
					   json_string(client));
	bad |= put_bounded(r, o, extra, "method", &rec->method, 64);
	bad |= put_slice(r, o, "path", &rec->path);
	if (rec->query.len)
		bad |= put_slice(r, o, "query", &rec->query);
	bad |= put_bounded(r, o, extra, "protocol", &rec->protocol, 32);
	if (rec->flags & PEX_LOGREC_BAD_REQUEST)
		bad |= put_slice(r, extra, "request", &rec->request);
	if (rec->flags & PEX_LOGREC_HAS_STATUS)
		bad |= json_object_set_new(rec->status >= 100 &&
					   rec->status <= 999 ? o : extra,
					   "status",
					   json_integer(rec->status));
	if (rec->flags & PEX_LOGREC_HAS_BYTES)
		bad |= json_object_set_new(o, "bytes", json_integer(
			(json_int_t)(rec->bytes > (uint64_t)INT64_MAX ?
				     INT64_MAX : rec->bytes)));
	if (rec->flags & PEX_LOGREC_HAS_DURATION)
		bad |= json_object_set_new(o, "duration_ms", json_real(
			(double)rec->duration_us / 1000.0));
	bad |= put_slice(r, o, "referrer", &rec->referer);
	bad |= put_slice(r, o, "user_agent", &rec->user_agent);
	bad |= put_slice(r, o, "host", &rec->vhost);
	bad |= put_slice(r, o, "user", &rec->user);
	bad |= json_object_set(o, "extra", extra);
	json_decref(extra);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/*
 * uap-core's rules take some 4 ms to load, and are needed only once the
 * scan has found a request of a subject's. They are loaded on a thread
 * of their own from the first such request on, while the scan goes on;
 * after it, the scan's thread waits for them only if it found devices.
 * A scan that finds nothing (most logs, for most people) never loads
 * them.
 */
#define AL_MSG_MAX 1024

/* User agents to parse from which the rules get JIT code first (see
 * al_collect_batch; docs/internals/uaparser.md has the figures). */
#define AL_UAP_JIT_MIN 100

struct uap_loader {
	pthread_t thr;
	int tried, started;
	const char *path;
	pex_uaparser *uap;
	int rc;
	char msg[AL_MSG_MAX];
};

static void *uap_load_main(void *arg)
{
	struct uap_loader *l = arg;

	l->rc = pex_uaparser_load_lazy(&l->uap, l->path);
	if (l->rc)
		snprintf(l->msg, sizeof(l->msg), "%s", pex_error_last());
	return NULL;
}

static void uap_load_start(struct uap_loader *l, const struct al_ctx *c)
{
	if (l->tried || c->uap)
		return;
	l->tried = 1;
	l->path = c->uap_regexes;
	if (!pthread_create(&l->thr, NULL, uap_load_main, l))
		l->started = 1;
}

/* Wait for the loader; keep what it made in c. Returns its result when
 * needed (the rules are wanted), else 0. */
static int uap_load_finish(struct uap_loader *l, struct al_ctx *c,
			   int needed)
{
	if (l->started) {
		pthread_join(l->thr, NULL);
		l->started = 0;
		if (!l->rc) {
			c->uap = l->uap;
			return 0;
		}
		if (needed)
			return pex_error_set(l->rc, "user agents: %s", l->msg);
		return 0;
	}
	if (needed && !c->uap) { /* no thread to be had: load here */
		int rc = pex_uaparser_load_lazy(&c->uap, c->uap_regexes);

		if (rc)
			return pex_error_wrap(rc, "user agents");
	}
	return 0;
}

static int on_line(void *data, const char *line, size_t len,
		   unsigned long long lineno)
{
	struct run *r = data;
	struct pex_logrec rec;
	enum pex_logline_status st;
	char client[PEX_IP_TEXT_MAX], id[AL_ID_MAX];
	const char *cl = NULL;
	struct pex_al_hit hit;
	json_t *ev;
	size_t i;
	int rc;

	if (!line) {
		count_bad(r, BAD_TOO_LONG, lineno);
		return 0;
	}
	st = pex_logline_parse(r->c->fmt, line, len, &rec, r->c->scratch,
			       r->c->scratch_cap);
	switch (st) {
	case PEX_LOGLINE_OK:
		break;
	case PEX_LOGLINE_EMPTY:
		return 0;
	case PEX_LOGLINE_TRUNCATED:
		count_bad_line(r, BAD_TRUNCATED, lineno, line,
			       len);
		return 0;
	case PEX_LOGLINE_BINARY:
		count_bad_line(r, BAD_BINARY, lineno, line,
			       len);
		return 0;
	case PEX_LOGLINE_TOO_LONG:
		count_bad_line(r, BAD_TOO_LONG, lineno, line,
			       len);
		return 0;
	default:
		count_bad_line(r, BAD_MISMATCH, lineno, line,
			       len);
		return 0;
	}
	if (!(rec.flags & PEX_LOGREC_HAS_TIME)) {
		count_bad_line(r, BAD_MISMATCH, lineno, line,
			       len);
		return 0;
	}
	if (client_ip(r, &rec, lineno, client))
		cl = client;
	rc = match_line(r, &rec, cl);
	if (rc || !r->nbest)
		return rc;
	snprintf(id, sizeof(id), "%s:%llu", r->file->name, lineno);
	/* A line may be several subjects' (a NAT address two people used
	 * at the same time): each gets it, credited to their own
	 * identity. */
	for (i = 0; i < r->nbest; i++) {
		const struct cand *k = &r->cands[r->best[i].cand];

		ev = event_json(r, &rec, id, k->ident, cl);
		if (!ev)
			return pex_error_set(PEX_ENOMEM, "out of memory "
					     "building an event");
		rc = r->emit(r->emit_data[k->subject], PEX_REC_USAGE_EVENT,
			     ev);
		if (rc)
			return rc;
		r->matched++;
		if (!r->loader->tried)
			uap_load_start(r->loader, r->c);
		hit = (struct pex_al_hit){
			.ident = k->ident,
			.at = rec.time,
			.event_id = id,
			.path = rec.path.ptr,
			.path_len = rec.path.len,
			.ua = rec.user_agent.ptr,
			.ua_len = rec.user_agent.len,
			.ip = cl,
		};
		hit.is_static = hit.path && is_static(r->suffixes, hit.path,
						      hit.path_len);
		rc = pex_al_usage_add(r->usage, &hit);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- is the file in the format at all --------------------------------- */

/*
 * A log in another format than the configured one (combined read as
 * common, an nginx log_format that differs) has every line skipped as
 * bad: the subject's too, and the bundle would tell the person that
 * nothing about them is held. Each file's first lines are therefore read
 * before it is searched: if none of up to AL_SAMPLE_LINES (all, in a
 * shorter file) is in the format, the source fails, saying so. One line
 * that is suffices; a bad line among good ones stays a counted warning.
 * Blank lines and lines too long to read are not judged (past
 * AL_SAMPLE_LONG of the latter, the file is not judged at all).
 */
#define AL_SAMPLE_LINES 16

#define AL_SAMPLE_LONG 64 /* over-long lines looked past, at most */

struct sample {
	struct al_ctx *c;
	unsigned seen, too_long;
	int gave_up; /* only over-long lines: no verdict */
	unsigned long long first_line;
	enum pex_logline_status first_st;
	int ok;
};

static int on_sample(void *data, const char *line, size_t len,
		     unsigned long long lineno)
{
	struct sample *s = data;
	struct pex_logrec rec;
	enum pex_logline_status st = PEX_LOGLINE_TOO_LONG;

	if (line)
		st = pex_logline_parse(s->c->fmt, line, len, &rec,
				       s->c->scratch, s->c->scratch_cap);
	if (st == PEX_LOGLINE_EMPTY)
		return 0;
	/* a line too long to read says nothing of the format */
	if (st == PEX_LOGLINE_TOO_LONG) {
		if (++s->too_long < AL_SAMPLE_LONG)
			return 0;
		s->gave_up = 1;
		return 1;
	}
	if (st == PEX_LOGLINE_OK && (rec.flags & PEX_LOGREC_HAS_TIME)) {
		s->ok = 1;
		return 1; /* enough */
	}
	if (st == PEX_LOGLINE_OK)
		st = PEX_LOGLINE_MISMATCH; /* no time: no request */
	if (!s->seen++) {
		s->first_line = lineno;
		s->first_st = st;
	}
	return s->seen >= AL_SAMPLE_LINES;
}

static int check_sample(struct al_ctx *c, const struct pex_al_file *f)
{
	struct pex_al_scan_opts so = {0};
	struct sample s = {.c = c};
	unsigned long long lines;
	const char *why;
	int rc;

	so.max_line = (size_t)c->max_line_bytes;
	rc = pex_al_scan(f->path, &so, on_sample, &s, &lines);
	if (rc < 0)
		return rc;
	if (s.ok || !s.seen || s.gave_up)
		return 0;
	why = s.first_st == PEX_LOGLINE_TRUNCATED ? bad_text[BAD_TRUNCATED] :
	      s.first_st == PEX_LOGLINE_BINARY ? bad_text[BAD_BINARY] :
	      bad_text[BAD_MISMATCH];
	return pex_error_set(PEX_EINVALID, "%s: none of its first %u line%s "
			     "is in the configured format (format: %s); "
			     "line %llu: %s. Check the source's format: a "
			     "log in another one would show nothing of "
			     "anyone's", f->name, s.seen, s.seen == 1 ? "" :
			     "s", c->format, s.first_line, why);
}

/* ---- needles --------------------------------------------------------- */

struct needles {
	char **v;
	size_t *lens;
	size_t n, cap;
	int off; /* some value cannot be searched for: parse every line */
};

/* Duplicates are dropped by needles_unique() once all are in: a batch
 * brings thousands. */
static int needle_add(struct needles *nd, const char *s, size_t len)
{
	if (!len || len > PEX_LOGNEEDLE_LEN_MAX || memchr(s, '\n', len) ||
	    memchr(s, '\0', len)) {
		nd->off = 1;
		return 0;
	}
	if (nd->n == nd->cap) {
		size_t nc = nd->cap ? 2 * nd->cap : 8;
		char **g = realloc(nd->v, nc * sizeof(*g));
		size_t *gl;

		if (!g)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		nd->v = g;
		gl = realloc(nd->lens, nc * sizeof(*gl));
		if (!gl)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		nd->lens = gl;
		nd->cap = nc;
	}
	nd->v[nd->n] = strndup(s, len);
	if (!nd->v[nd->n])
		return pex_error_set(PEX_ENOMEM, "out of memory");
	nd->lens[nd->n++] = len;
	return 0;
}

/* The value as Apache writes it: `"` and `\` escaped, bytes outside
 * printable ASCII as \xhh. */
static int needle_add_escaped(struct needles *nd, const char *s)
{
	char buf[4 * PEX_LOGNEEDLE_LEN_MAX + 1];
	size_t o = 0;

	for (; *s && o + 4 < sizeof(buf); s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch < 0x20 || ch >= 0x7f) {
			o += (size_t)snprintf(buf + o, sizeof(buf) - o,
					      "\\x%02x", ch);
		} else {
			buf[o++] = (char)ch;
		}
	}
	if (*s) {
		nd->off = 1;
		return 0;
	}
	return needle_add(nd, buf, o);
}

/* Whether some search value holds a ':' (an IPv6 address). */
static int needles_colon(const struct needles *nd)
{
	size_t i;

	for (i = 0; i < nd->n; i++)
		if (memchr(nd->v[i], ':', nd->lens[i]))
			return 1;
	return 0;
}

/* Whether every search value is a client address that can only matter
 * at a line's start (see pex_al_scan_opts.anchored): all rules are ip,
 * no proxy's X-Forwarded-For is believed, and the format starts with
 * the client. */
static int anchored(const struct al_ctx *c, const struct run *r)
{
	size_t i;

	if (c->ntrusted || !pex_logformat_client_first(c->fmt))
		return 0;
	for (i = 0; i < r->ncands; i++)
		if (r->cands[i].m->kind != M_IP)
			return 0;
	return 1;
}

static int needles_for(struct needles *nd, const struct cand *k)
{
	const char *v = k->id->value;
	char up[PEX_IP_TEXT_MAX];
	size_t i, n = strlen(v);
	int rc;

	if (!k->m->bytewise) {
		nd->off = 1;
		return 0;
	}
	rc = needle_add(nd, v, n);
	if (rc || k->m->kind != M_IP)
		return rc ? rc : needle_add_escaped(nd, v);
	/* Servers write addresses as inet_ntop does; some write IPv6 in
	 * upper case. Other spellings are found at line starts (see
	 * pex_al_scan_opts.anchored), elsewhere only with prefilter:
	 * false. */
	if (n >= sizeof(up))
		return 0;
	for (i = 0; i <= n; i++)
		up[i] = (char)toupper((unsigned char)v[i]);
	return needle_add(nd, up, n);
}

static int needle_cmp(const void *va, const void *vb)
{
	const char *a = *(const char *const *)va;
	const char *b = *(const char *const *)vb;

	return strcmp(a, b); /* needles hold no NUL */
}

/* Sort and drop duplicates (two subjects may share a value); too many
 * for the multi-needle search turns the block search off. */
static void needles_unique(struct needles *nd)
{
	size_t i, o = 0;

	if (!nd->n)
		return;
	qsort(nd->v, nd->n, sizeof(*nd->v), needle_cmp);
	for (i = 0; i < nd->n; i++) {
		if (o && !strcmp(nd->v[o - 1], nd->v[i])) {
			free(nd->v[i]);
			continue;
		}
		nd->v[o++] = nd->v[i];
	}
	nd->n = o;
	for (i = 0; i < o; i++)
		nd->lens[i] = strlen(nd->v[i]);
	if (nd->n > PEX_LOGNEEDLES_MAX)
		nd->off = 1;
}

static void needles_free(struct needles *nd)
{
	size_t i;

	for (i = 0; i < nd->n; i++)
		free(nd->v[i]);
	free(nd->v);
	free(nd->lens);
}

/* ---- collect --------------------------------------------------------- */

/* The index of id's entry in the identity table, among subject's entries
 * (from first on), added when new. */
static int ident_index(struct run *r, const struct pex_identity *id,
		       size_t subject, size_t first)
{
	char hex[PEX_SHA256_HEX], *dump;
	json_t *mb;
	size_t i;
	int rc;

	mb = pex_matched_by(id);
	if (!mb)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	for (i = first; i < r->nidents; i++) {
		if (json_equal(r->idents[i].matched_by, mb)) {
			json_decref(mb);
			return (int)i;
		}
	}
	dump = json_dumps(mb, JSON_COMPACT | JSON_SORT_KEYS);
	if (!dump) {
		json_decref(mb);
		return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	rc = pex_sha256_hex(dump, strlen(dump), hex);
	free(dump);
	if (rc) {
		json_decref(mb);
		return rc;
	}
	r->idents[r->nidents].matched_by = mb;
	memcpy(r->idents[r->nidents].tag, hex, 16);
	r->idents[r->nidents].tag[16] = '\0';
	r->idents[r->nidents].subject = subject;
	return (int)r->nidents++;
}

/* Pair each identity of each subject with the rules of its type. */
static int build_cands(struct run *r, const struct pex_identity_set *subs,
		       size_t nsubs)
{
	size_t total = 0, i, j, s;
	int ix;

	for (s = 0; s < nsubs; s++) {
		if (subs[s].count > AL_BATCH_IDS_MAX - total)
			return pex_error_set(PEX_ELIMIT, "more than %d "
					     "identities in one collect",
					     AL_BATCH_IDS_MAX);
		total += subs[s].count;
	}
	r->cands = calloc(total * r->c->nmatchers + 1, sizeof(*r->cands));
	r->keys = calloc(total * r->c->nmatchers + 1, sizeof(*r->keys));
	r->best = calloc(total * r->c->nmatchers + 1, sizeof(*r->best));
	r->idents = calloc(total + 1, sizeof(*r->idents));
	if (!r->cands || !r->keys || !r->best || !r->idents)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	for (s = 0; s < nsubs; s++) {
		size_t first = r->nidents;

		/* In the order given: the engine relies on a line being
		 * credited to the first identity that matches it (see
		 * collector.h), and the candidates' order is that. */
		for (i = 0; i < subs[s].count; i++) {
			const struct pex_identity *id = &subs[s].items[i];

			if (!id->value[0])
				continue;
			for (j = 0; j < r->c->nmatchers; j++) {
				const struct matcher *m = &r->c->matchers[j];
				struct cand *k;

				if (strcmp(m->type, id->type))
					continue;
				/* An address alone would match everyone
				 * who shared it: never without a window. */
				if (m->kind == M_IP && !id->has_window)
					continue;
				ix = ident_index(r, id, s, first);
				if (ix < 0)
					return ix;
				k = &r->cands[r->ncands];
				k->id = id;
				k->m = m;
				k->mi = j;
				k->subject = s;
				k->ident = (size_t)ix;
				k->vlen = strlen(id->value);
				r->keys[r->ncands] = (struct cand_key){
					.mi = j, .v = id->value,
					.vlen = k->vlen, .cand = r->ncands};
				r->used[j] = 1;
				r->ncands++;
			}
		}
	}
	qsort(r->keys, r->ncands, sizeof(*r->keys), key_cmp);
	return 0;
}

static void report_bad(struct run *r)
{
	size_t i, k;

	for (i = 0; i < BAD__COUNT; i++) {
		if (!r->bad[i])
			continue;
		pex_source_warn(r->src, "%s: %llu line%s skipped: %s (first "
				"at line %llu)", r->file->name, r->bad[i],
				r->bad[i] == 1 ? "" : "s", bad_text[i],
				r->bad_first[i]);
		r->bad[i] = 0;
	}
	for (k = 0; r->sbad && k < r->nsubjects; k++) {
		for (i = 0; i < BAD__COUNT; i++) {
			unsigned long long *c = &r->sbad[k * BAD__COUNT + i];

			if (!*c)
				continue;
			pex_source_warn_subject(r->src, k, "%s: %llu line%s "
				"skipped: %s (first at line %llu)",
				r->file->name, *c, *c == 1 ? "" : "s",
				bad_text[i],
				r->sbad_first[k * BAD__COUNT + i]);
			*c = 0;
		}
	}
}

/*
 * One pass over the logs for every subject: the block search looks for
 * all subjects' values at once, a line that holds one is parsed once,
 * and match_line() finds whose it is. collect() is this with one
 * subject, so the two cannot drift apart.
 */
static int al_collect_batch(struct pex_source *src, void *ctx,
			    const struct pex_identity_set *subjects,
			    size_t nsubjects, pex_emit_fn emit,
			    void *const *emit_data)
{
	struct al_ctx *c = ctx;
	struct run r = {.src = src, .c = c, .emit = emit,
			.emit_data = emit_data, .nsubjects = nsubjects};
	struct needles nd = {0};
	struct pex_logneedles *set = NULL;
	struct pex_al_multi *multi = NULL;
	struct pex_al_scan_opts so = {0};
	struct pex_al_file *files = NULL;
	struct pex_al_limits lim;
	struct uap_loader loader = {0};
	size_t nfiles = 0, i, share;
	unsigned long long lines = 0, total = 0;
	int rc;

	r.suffixes = c->static_suffixes ?
		     (const char *const *)c->static_suffixes :
		     default_suffixes;
	rc = build_cands(&r, subjects, nsubjects);
	if (rc)
		goto cleanup;
	/* Listed even when no identity applies, so that a missing file is
	 * reported whatever the subject. */
	rc = pex_al_files_list(src, c->paths, &files, &nfiles);
	if (rc || !r.ncands)
		goto cleanup;
	for (i = 0; i < r.ncands && !rc; i++)
		rc = needles_for(&nd, &r.cands[i]);
	if (rc)
		goto cleanup;
	needles_unique(&nd);
	if (c->prefilter && !nd.off) {
		so.needles = (const char *const *)nd.v;
		so.needle_lens = nd.lens;
		so.count = nd.n;
		/* by address alone at line starts: for one subject too, so
		 * that a bundle never depends on who else is in a batch */
		int anch = anchored(c, &r);

		if (nd.n > PEX_AL_DIRECT_NEEDLES || anch)
			rc = pex_al_multi_new(&multi,
					      (const char *const *)nd.v,
					      nd.lens, nd.n);
		if (rc == 1)
			rc = nd.n > PEX_AL_DIRECT_NEEDLES ?
			     pex_logneedles_new(&set,
						(const char *const *)nd.v,
						nd.n) : 0;
		if (rc)
			goto cleanup;
		so.multi = multi;
		so.set = set;
		if (multi && anch)
			so.anchored = needles_colon(&nd) ? 2 : 1;
		r.prefiltered = 1;
		r.sbad = calloc(nsubjects * BAD__COUNT, sizeof(*r.sbad));
		r.sbad_first = calloc(nsubjects * BAD__COUNT,
				      sizeof(*r.sbad_first));
		r.hit = calloc(nsubjects, 1);
		if (!r.sbad || !r.sbad_first || !r.hit) {
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	so.max_line = (size_t)c->max_line_bytes;
	/* The device and address tables are per subject as for one
	 * subject; over a batch they share a bound a few times one
	 * subject's, so memory stays bounded whatever the batch size. */
	share = nsubjects < AL_BATCH_TABLE_SHARE ? nsubjects :
		AL_BATCH_TABLE_SHARE;
	if (!share)
		share = 1;
	lim = (struct pex_al_limits){
		.idle_seconds = c->session_idle_minutes * 60,
		.max_devices = (size_t)c->max_devices,
		.max_ips = (size_t)c->max_ips,
		.max_devices_all = (size_t)c->max_devices * share,
		.max_ips_all = (size_t)c->max_ips * share,
		.max_open_sessions = (size_t)c->max_open_sessions,
		.max_session_pages = (size_t)c->max_session_pages,
		.max_open_bytes = AL_OPEN_BYTES_MAX,
	};
	rc = pex_al_usage_new(&r.usage, src, &lim, r.idents, r.nidents,
			      nsubjects, emit, emit_data);
	if (rc)
		goto cleanup;
	r.loader = &loader;
	for (i = 0; i < nfiles; i++) {
		r.file = &files[i];
		rc = check_sample(c, &files[i]);
		if (rc)
			goto cleanup;
		rc = pex_al_scan(files[i].path, &so, on_line, &r, &lines);
		report_bad(&r);
		total += lines;
		if (rc)
			goto cleanup;
	}
	rc = uap_load_finish(&loader, c,
			     pex_al_usage_has_devices(r.usage));
	if (rc)
		goto cleanup;
	/* The rules were compiled without JIT code, which is most of their
	 * cost (19 ms against 4 ms here); a parse without it costs 0.3 ms
	 * against 0.13 ms. A subject's few browsers are cheaper without;
	 * past AL_UAP_JIT_MIN user agents the JIT pays for itself. */
	if (c->uap && pex_al_usage_agents(r.usage) >= AL_UAP_JIT_MIN)
		pex_uaparser_jit(c->uap);
	rc = pex_al_usage_finish(r.usage, c->uap);
	if (!rc)
		pex_source_log(src, PEX_LOG_DEBUG, "%zu files, %llu lines, "
			       "%zu search values, %llu requests of %zu "
			       "subject%s", nfiles, total, so.count,
			       r.matched, nsubjects,
			       nsubjects == 1 ? "" : "s");
cleanup:
	if (loader.started) { /* the scan failed: still wait for it */
		char keep[AL_MSG_MAX];

		snprintf(keep, sizeof(keep), "%s", pex_error_last());
		uap_load_finish(&loader, c, 0);
		pex_error_set(rc, "%s", keep);
	}
	pex_al_usage_free(r.usage);
	pex_logneedles_free(set);
	pex_al_multi_free(multi);
	needles_free(&nd);
	pex_al_files_free(files, nfiles);
	for (i = 0; i < r.nidents; i++)
		json_decref(r.idents[i].matched_by);
	free(r.idents);
	free(r.cands);
	free(r.keys);
	free(r.best);
	free(r.sbad);
	free(r.sbad_first);
	free(r.hit);
	return rc;
}

static int al_collect(struct pex_source *src, void *ctx,
		      const struct pex_identity_set *ids, pex_emit_fn emit,
		      void *emit_data)
{
	void *const data[1] = {emit_data};

	return al_collect_batch(src, ctx, ids, 1, emit, data);
}

/* `portex check`: every path and glob names a file that opens and is in
 * the format (check_sample), and the rule file for user agents loads
 * (without JIT code: quick). */
static int al_check(struct pex_source *src, void *ctx)
{
	struct al_ctx *c = ctx;
	struct pex_al_file *files = NULL;
	pex_uaparser *uap = NULL;
	size_t n = 0, i;
	int rc = pex_al_files_list(src, c->paths, &files, &n);

	for (i = 0; !rc && i < n; i++) {
		FILE *f = fopen(files[i].path, "rb");

		if (!f)
			rc = pex_error_set(PEX_EIO, "cannot open %s: %s",
					   files[i].path, strerror(errno));
		else
			fclose(f);
		if (!rc)
			rc = check_sample(c, &files[i]);
	}
	pex_al_files_free(files, n);
	if (!rc && !c->uap) {
		rc = pex_uaparser_load_lazy(&uap, c->uap_regexes);
		if (rc)
			rc = pex_error_wrap(rc, "user agents");
		pex_uaparser_free(uap);
	}
	return rc;
}

const struct pex_collector pex_collector_access_log = {
	.name = "access_log",
	.description = "web server access logs (Apache, nginx, Traefik): "
		       "usage events, visits, devices, IP addresses",
	.config_map = al_config,
	.ctx_size = sizeof(struct al_ctx),
	.init = al_init,
	.collect = al_collect,
	.fini = al_fini,
	.collect_batch = al_collect_batch,
	.identity_types = al_identity_types,
	.check = al_check,
};
