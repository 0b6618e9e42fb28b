/*
 * The access_log collector driven through the engine (pex_source_new /
 * pex_source_collect), on the logs in $PEX_CORPUS/access_logs/ and on logs
 * the tests write themselves, where every subject's request is known:
 * time windows, IPv6 spellings, X-Forwarded-For, user / cookie / header
 * matching, visits, devices, rotated and compressed files, bad lines;
 * and batches (pex_source_collect_batch): several subjects in one pass,
 * each getting exactly what a collect for them alone gives.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/buf.h"
#include "collectors/access_log/al_files.h"
#include "portex/engine.h"
#include "portex/error.h"

static char tmp_dir[] = "/tmp/pex_access_log_test_XXXXXX";
static char corpus_dir[4096];
static json_t *schema_props[PEX_REC__COUNT]; /* properties per kind */
static json_t *schema_required[PEX_REC__COUNT];

/* 2026-01-03T10:00:00Z */
#define T0 ((time_t)1767434400)

#define UA_FIREFOX "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) " \
		   "Gecko/20100101 Firefox/121.0"
#define UA_IPHONE "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS " \
		  "X) AppleWebKit/605.1.15 (KHTML, like Gecko) " \
		  "Version/17.1 Mobile/15E148 Safari/604.1"

/* ---- helpers --------------------------------------------------------- */

struct coll {
	struct pex_source *src;
	struct pex_source *batch_src; /* in a batch: the source, for */
	size_t subject;               /* settling text counts per subject */
	json_t *recs[PEX_REC__COUNT]; /* arrays of records per kind */
	json_t *warnings;
	int rc_new, rc;
	char err[1024];
};

static int sink(void *data, enum pex_record_kind kind, json_t *rec)
{
	struct coll *c = data;

	if ((int)kind < 0 || kind >= PEX_REC__COUNT) {
		json_decref(rec);
		return -1;
	}
	/* as the engine's batch spool does */
	if (c->batch_src)
		pex_source_settle_subject(c->batch_src, c->subject);
	return json_array_append_new(c->recs[kind], rec);
}

/* Each record has its kind's required members and no member the kind's
 * schema lacks. */
static void check_shape(enum pex_record_kind kind, const json_t *rec)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach((json_t *)rec, key, v) {
		if (!json_object_get(schema_props[kind], key))
			fail_msg("%s record has member '%s' its schema lacks",
				 pex_record_kind_name(kind), key);
	}
	for (i = 0; i < json_array_size(schema_required[kind]); i++) {
		const char *k = json_string_value(json_array_get(
			schema_required[kind], i));

		if (!strcmp(k, "source"))
			continue; /* filled by the engine */
		if (!json_object_get(rec, k))
			fail_msg("%s record lacks '%s'",
				 pex_record_kind_name(kind), k);
	}
}

/* Create the source "weblog" from options (JSON text; relative paths
 * against the temporary directory, or dir) and collect for ids. */
static void collect_in(struct coll *c, const char *dir, const char *options,
		       const char *const *ids)
{
	struct pex_identity_set set = {0};
	json_error_t jerr;
	json_t *opts;
	size_t i, k;

	memset(c, 0, sizeof(*c));
	for (k = 0; k < PEX_REC__COUNT; k++)
		c->recs[k] = json_array();
	opts = json_loads(options, 0, &jerr);
	if (!opts)
		fail_msg("bad test options %s: %s", options, jerr.text);
	for (i = 0; ids && ids[i]; i++) {
		struct pex_identity id;

		if (pex_identity_parse(&id, ids[i]))
			fail_msg("identity %s: %s", ids[i], pex_error_last());
		assert_int_equal(pex_identity_set_add(&set, &id), 0);
		pex_identity_clear(&id);
	}
	c->rc_new = pex_source_new(&c->src, "weblog", "access_log", opts,
				   dir);
	if (c->rc_new == 0)
		c->rc = pex_source_collect(c->src, &set, sink, c);
	snprintf(c->err, sizeof(c->err), "%s", pex_error_last());
	if (c->src)
		c->warnings = pex_source_warnings(c->src);
	for (k = 0; k < PEX_REC__COUNT; k++)
		for (i = 0; i < json_array_size(c->recs[k]); i++)
			check_shape((enum pex_record_kind)k,
				    json_array_get(c->recs[k], i));
	pex_identity_set_clear(&set);
	json_decref(opts);
}

static void collect(struct coll *c, const char *options,
		    const char *const *ids)
{
	collect_in(c, tmp_dir, options, ids);
}

static void collect1(struct coll *c, const char *options, const char *id)
{
	const char *ids[] = {id, NULL};

	collect(c, options, ids);
}

static void coll_free(struct coll *c)
{
	size_t k;

	pex_source_free(c->src);
	for (k = 0; k < PEX_REC__COUNT; k++)
		json_decref(c->recs[k]);
	json_decref(c->warnings);
}

static void assert_ok(const struct coll *c)
{
	if (c->rc_new || c->rc)
		fail_msg("source failed (%d/%d): %s", c->rc_new, c->rc,
			 c->err);
}

static void assert_err(const struct coll *c, const char *needle)
{
	if (!c->rc_new && !c->rc)
		fail_msg("source succeeded; expected an error with \"%s\"",
			 needle);
	if (!strstr(c->err, needle))
		fail_msg("error \"%s\" lacks \"%s\"", c->err, needle);
}

static const json_t *events(const struct coll *c)
{
	return c->recs[PEX_REC_USAGE_EVENT];
}

static const json_t *rec_at(const struct coll *c, enum pex_record_kind k,
			    size_t i)
{
	const json_t *r = json_array_get(c->recs[k], i);

	if (!r)
		fail_msg("no %s record #%zu (%zu in all)",
			 pex_record_kind_name(k), i,
			 json_array_size(c->recs[k]));
	return r;
}

static const char *str(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		fail_msg("'%s' is not a string", key);
	return json_string_value(v);
}

static long long num(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		fail_msg("'%s' is not an integer", key);
	return json_integer_value(v);
}

/* The ids of the events, joined with spaces. */
static const char *event_ids(const struct coll *c)
{
	static char buf[8192];
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < json_array_size(events(c)); i++) {
		int w = snprintf(buf + n, sizeof(buf) - n, "%s%s",
				 i ? " " : "",
				 str(json_array_get(events(c), i), "id"));

		assert_true(w > 0 && (size_t)w < sizeof(buf) - n);
		n += (size_t)w;
	}
	return buf;
}

/* The count of the warning whose message holds needle, or 0. */
static long long warning_count(const struct coll *c, const char *needle)
{
	size_t i;

	for (i = 0; i < json_array_size(c->warnings); i++) {
		const json_t *w = json_array_get(c->warnings, i);

		if (strstr(str(w, "message"), needle))
			return num(w, "count");
	}
	return 0;
}

static void write_file(const char *name, const char *data, size_t len)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp_dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

#define write_text(name, text) write_file((name), (text), strlen(text))

/* Run a shell command in the temporary directory. */
static void sh(const char *fmt, ...)
{
	char cmd[8192];
	int n;
	va_list ap;

	n = snprintf(cmd, sizeof(cmd), "cd '%s' && ", tmp_dir);
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

/* CLF time of t with a zone offset in minutes. */
static const char *clf(time_t t, int offset_min, char out[32])
{
	struct tm tm;
	time_t local = t + offset_min * 60;
	int off = offset_min < 0 ? -offset_min : offset_min;

	gmtime_r(&local, &tm);
	strftime(out, 32, "%d/%b/%Y:%H:%M:%S", &tm);
	snprintf(out + strlen(out), 32 - strlen(out), " %c%02d%02d",
		 offset_min < 0 ? '-' : '+', off / 60, off % 60);
	return out;
}

/* A log being built in memory. */
struct logbuf {
	char *data;
	size_t len, cap;
};

static void lb_add(struct logbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->data ? b->data + b->len : NULL,
			      b->data ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if (b->data && (size_t)n < b->cap - b->len)
			break;
		b->cap = (b->cap + (size_t)n + 1) * 2;
		b->data = realloc(b->data, b->cap);
		assert_non_null(b->data);
	}
	b->len += (size_t)n;
}

/* One combined line. */
static void lb_combined(struct logbuf *b, const char *ip, const char *user,
			time_t t, const char *path, const char *ua)
{
	char ts[32];

	lb_add(b, "%s - %s [%s] \"GET %s HTTP/1.1\" 200 512 \"-\" \"%s\"\n",
	       ip, user, clf(t, 0, ts), path, ua);
}

static void lb_write(struct logbuf *b, const char *name)
{
	write_file(name, b->data ? b->data : "", b->len);
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static const char *window(const char *ip, time_t from, time_t to)
{
	static char buf[256];
	char a[32], z[32];
	struct tm tm;

	gmtime_r(&from, &tm);
	strftime(a, sizeof(a), "%Y-%m-%dT%H:%M:%SZ", &tm);
	gmtime_r(&to, &tm);
	strftime(z, sizeof(z), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(buf, sizeof(buf), "ip:%s@%s/%s", ip, a, z);
	return buf;
}

/* ---- the corpus ------------------------------------------------------ */

/*
 * The corpus files with their formats and counts of valid, bad and blank
 * lines, established independently of this code by a regular-expression
 * count (see tests/unit/logformat_corpus_test.c, which holds the same
 * table for the line parser alone). Here the whole collector must agree:
 * every valid line becomes an event when the subject's identities are
 * all the file's client addresses, and the skipped-line warnings add up
 * to the bad lines.
 */
struct corpus_file {
	const char *file;
	const char *format;
	const char *style;
	int client_field; /* 0-based space-separated field holding %h */
	int valid, bad, blank;
};

#define VHOST_COMBINED_NOPORT \
	"%v %h %l %u %t \\\"%r\\\" %>s %b \\\"%{Referer}i\\\" " \
	"\\\"%{User-Agent}i\\\""
#define NGINX_XFF \
	"$remote_addr - $remote_user [$time_local] \\\"$request\\\" $status " \
	"$body_bytes_sent \\\"$http_referer\\\" \\\"$http_user_agent\\\" " \
	"\\\"$http_x_forwarded_for\\\""

static const struct corpus_file corpus[] = {
	{"basjes_hackers-access.log", "combined", NULL, 0, 3456, 0, 0},
	{"beats_apache_test.log", "combined", NULL, 0, 2, 5, 0},
	{"beats_nginx_access.log", "nginx", NULL, 0, 12, 1, 0},
	{"beats_nginx_test.log", "nginx", NULL, 0, 2, 5, 0},
	{"elastic_apache_logs.log", "combined", NULL, 0, 9999, 1, 0},
	{"elastic_integrations_apache_test-access-basic.log", "combined",
	 NULL, 0, 4, 13, 0},
	{"fail2ban/apache-badbots.log", "combined", NULL, 0, 3, 5, 3},
	{"fail2ban/apache-fakegooglebot.log", VHOST_COMBINED_NOPORT, "apache",
	 1, 1, 6, 0},
	{"fail2ban/nginx-bad-request.log", NGINX_XFF, "nginx", 0, 8, 8, 7},
	{"fail2ban/nginx-botsearch.log", NGINX_XFF, "nginx", 0, 8, 21, 14},
	{"fail2ban/traefik-auth.log", "traefik", NULL, 0, 6, 10, 7},
	{"lnav_bad_access_log.0.log", "combined", NULL, 0, 2, 1, 0},
	{"matomo/common.log", "common", NULL, 0, 1, 0, 0},
	{"matomo/common_complete.log", VHOST_COMBINED_NOPORT, "apache", 1, 1,
	 0, 0},
	{"matomo/common_encoding_big5.log", VHOST_COMBINED_NOPORT, "apache",
	 1, 1, 0, 0},
	{"matomo/common_vhost.log", "%v %h %l %u %t \\\"%r\\\" %>s %b",
	 "apache", 1, 1, 0, 0},
	{"matomo/gandi.log", "%v %h %l %u %t (%T s) \\\"%r\\\" %>s %b "
	 "\\\"%{Referer}i\\\" \\\"%{User-Agent}i\\\"", "apache", 1, 2, 0, 0},
	{"matomo/logs_to_tests.log", "combined", NULL, 0, 4, 1, 1},
	{"matomo/ncsa_extended.log", "combined", NULL, 0, 1, 0, 0},
	{"matomo/static_ignores.log", VHOST_COMBINED_NOPORT, "apache", 1, 4,
	 0, 0},
};

/* Identities for every distinct client address of a file, each with a
 * window over all time: read by splitting lines on spaces, not by the
 * collector's parser. */
static char **corpus_ids(const char *path, int field, size_t *count)
{
	FILE *f = fopen(path, "rb");
	char line[70000];
	char **ids = NULL;
	size_t n = 0, i;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *tok = line, *end;
		char id[512];
		struct pex_identity pid;
		int k;

		for (k = 0; k < field && tok; k++) {
			tok = strchr(tok, ' ');
			tok = tok ? tok + 1 : NULL;
		}
		if (!tok)
			continue;
		end = strpbrk(tok, " \n");
		if (!end || end - tok > 100)
			continue;
		snprintf(id, sizeof(id), "ip:%.*s@1970-01-01T00:00:00Z/"
			 "2100-01-01T00:00:00Z", (int)(end - tok), tok);
		if (pex_identity_parse(&pid, id))
			continue;
		pex_identity_clear(&pid);
		for (i = 0; i < n; i++)
			if (!strcmp(ids[i], id))
				break;
		if (i < n)
			continue;
		ids = realloc(ids, (n + 2) * sizeof(*ids));
		assert_non_null(ids);
		ids[n] = strdup(id);
		assert_non_null(ids[n]);
		ids[++n] = NULL;
	}
	fclose(f);
	*count = n;
	return ids;
}

static long long skipped_total(const struct coll *c)
{
	long long total = 0;
	size_t i;

	for (i = 0; i < json_array_size(c->warnings); i++) {
		const json_t *w = json_array_get(c->warnings, i);
		const char *m = str(w, "message");
		const char *p = strstr(m, ": ");

		if (p && strstr(m, " skipped: "))
			total += strtoll(p + 2, NULL, 10);
	}
	return total;
}

static void test_corpus(void **state)
{
	size_t f, i;
	int off = 0;

	for (f = 0; f < sizeof(corpus) / sizeof(corpus[0]); f++) {
		const struct corpus_file *x = &corpus[f];
		char path[8192], opts[16384];
		char **ids;
		size_t nids;
		long long ev[2], bad;
		struct coll c;
		int pre;

		snprintf(path, sizeof(path), "%s/%s", corpus_dir, x->file);
		ids = corpus_ids(path, x->client_field, &nids);
		for (pre = 0; pre < 2; pre++) {
			snprintf(opts, sizeof(opts),
				 "{\"paths\": [\"%s\"], \"format\": \"%s\", "
				 "%s%s%s \"match\": [\"ip\"], "
				 "\"prefilter\": %s}", path, x->format,
				 x->style ? "\"format_style\": \"" : "",
				 x->style ? x->style : "",
				 x->style ? "\"," : "",
				 pre ? "true" : "false");
			collect_in(&c, corpus_dir, opts,
				   (const char *const *)ids);
			assert_ok(&c);
			ev[pre] = (long long)json_array_size(events(&c));
			if (!pre)
				bad = skipped_total(&c);
			coll_free(&c);
		}
		printf("  %-52s %5lld events (valid %d), %3lld skipped "
		       "(bad %d), %zu addresses\n", x->file, ev[0], x->valid,
		       bad, x->bad, nids);
		/* With the block search on, no event may go missing. */
		if (ev[0] != x->valid || ev[1] != x->valid || bad != x->bad)
			off++;
		for (i = 0; i < nids; i++)
			free(ids[i]);
		free(ids);
	}
	assert_int_equal(off, 0);
}

/* The odd cases of the corpus one by one, through the collector. */
#define EIA "elastic_integrations_apache_test-access-basic.log"
#define EIA_FORMAT "%h %l %u %t \\\"%r\\\" %>s %b \\\"%{Referer}i\\\" " \
	"\\\"%{User-Agent}i\\\" X-Forwarded-For=\\\"%{X-Forwarded-For}i\\\""

static void test_corpus_odd_lines(void **state)
{
	struct coll c;
	char opts[8192];
	const json_t *e;

	/* An IPv6 client, asked for in upper case: line 9 (line 11 has a
	 * field too many). */
	snprintf(opts, sizeof(opts), "{\"paths\": [\"%s/" EIA "\"], "
		 "\"format\": \"%s\"}", corpus_dir, EIA_FORMAT);
	collect1(&c, opts, "ip:2A02:CF40:ADD:4002:91F2:A9B2:E09A:6FC6@"
		 "2017-05-29T19:02:48Z/PT0S");
	assert_ok(&c);
	assert_string_equal(event_ids(&c), EIA ":9");
	e = rec_at(&c, PEX_REC_USAGE_EVENT, 0);
	assert_string_equal(str(e, "client_ip"),
			    "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6");
	assert_string_equal(str(e, "path"),
			    "/A%20Beka%20G1%20Howe/029_AND_30/"
			    "15%20reading%20elephants.mp4");
	assert_int_equal(warning_count(&c, EIA ": 1 line skipped: not in the "
				       "configured format (first at line "
				       "11)"), 1);
	coll_free(&c);

	/* An X-Forwarded-For chain behind two trusted hops (line 8): the
	 * client is the first untrusted address from the right. */
	snprintf(opts, sizeof(opts), "{\"paths\": [\"%s/" EIA "\"], "
		 "\"format\": \"%s\", \"trusted_proxies\": "
		 "[\"89.160.20.112\", \"10.0.0.1/32\"]}", corpus_dir,
		 EIA_FORMAT);
	collect1(&c, opts, "ip:10.0.0.2@2017-05-29T00:00:00Z/P1D");
	assert_ok(&c);
	assert_string_equal(event_ids(&c), EIA ":8");
	assert_string_equal(str(rec_at(&c, PEX_REC_USAGE_EVENT, 0),
				"client_ip"), "10.0.0.2");
	coll_free(&c);
	/* Without trusting them, the peer is the client. */
	snprintf(opts, sizeof(opts), "{\"paths\": [\"%s/" EIA "\"], "
		 "\"format\": \"%s\"}", corpus_dir, EIA_FORMAT);
	collect1(&c, opts, "ip:10.0.0.2@2017-05-29T00:00:00Z/P1D");
	assert_ok(&c);
	assert_int_equal(json_array_size(events(&c)), 0);
	coll_free(&c);

	/* "::1" with "-" as request and byte count (common format). */
	snprintf(opts, sizeof(opts), "{\"paths\": [\"%s/beats_apache_test"
		 ".log\"], \"format\": \"common\"}", corpus_dir);
	collect1(&c, opts, "ip:0:0::1@2016-12-26T00:00:00Z/P1D");
	assert_ok(&c);
	assert_string_equal(event_ids(&c), "beats_apache_test.log:1 "
			    "beats_apache_test.log:3");
	e = rec_at(&c, PEX_REC_USAGE_EVENT, 1);
	assert_string_equal(str(e, "at"), "2016-12-26T14:16:48Z");
	assert_int_equal(num(e, "status"), 408);
	assert_null(json_object_get(e, "bytes"));
	assert_null(json_object_get(e, "method"));
	assert_null(json_object_get(e, "path"));
	assert_int_equal(num(rec_at(&c, PEX_REC_USAGE_EVENT, 0), "bytes"),
			 209);
	coll_free(&c);

	/* A client written with its port (line 14) and a TLS handshake as
	 * request (line 15, vhost_combined). */
	snprintf(opts, sizeof(opts), "{\"paths\": [\"%s/" EIA "\"]}",
		 corpus_dir);
	collect1(&c, opts, "ip:127.0.0.1@2023-11-13T10:44:01Z/PT0S");
	assert_ok(&c);
	assert_string_equal(event_ids(&c), EIA ":14");
	e = rec_at(&c, PEX_REC_USAGE_EVENT, 0);
	assert_string_equal(str(e, "client_ip"), "127.0.0.1");
	assert_int_equal(num(e, "status"), 400);
	coll_free(&c);
	snprintf(opts, sizeof(opts), "{\"paths\": [\"%s/" EIA "\"], "
		 "\"format\": \"vhost_combined\"}", corpus_dir);
	collect1(&c, opts, "ip:127.0.0.1@2023-11-13T10:44:31Z/PT0S");
	assert_ok(&c);
	assert_string_equal(event_ids(&c), EIA ":15");
	e = rec_at(&c, PEX_REC_USAGE_EVENT, 0);
	assert_null(json_object_get(e, "path"));
	assert_string_equal(str(json_object_get(e, "extra"), "request"),
			    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
			    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	coll_free(&c);

	/* elastic_apache_logs.log line 8899 ends inside the user agent:
	 * with its client as the subject it is counted, not emitted. */
	snprintf(opts, sizeof(opts), "{\"paths\": [\"%s/elastic_apache_logs"
		 ".log\"]}", corpus_dir);
	collect1(&c, opts, "ip:46.118.127.106@2000-01-01T00:00:00Z/"
		 "2100-01-01T00:00:00Z");
	assert_ok(&c);
	assert_int_equal(warning_count(&c, "elastic_apache_logs.log: 1 line "
				       "skipped: truncated"), 1);
	coll_free(&c);
}

/* ---- IP windows ------------------------------------------------------ */

static void test_ip_window_bounds(void **state)
{
	struct logbuf b = {0};
	struct coll c;
	const json_t *mb;

	/* A NAT address: the subject from T0 to T0+30m, others before and
	 * after. The window's bounds are inside it. */
	lb_combined(&b, "203.0.113.7", "-", T0 - 1, "/before", "other");
	lb_combined(&b, "203.0.113.7", "-", T0, "/start", "subject");
	lb_combined(&b, "198.51.100.1", "-", T0 + 60, "/someone-else",
		    "other");
	lb_combined(&b, "203.0.113.70", "-", T0 + 70, "/prefix-trap",
		    "other");
	lb_combined(&b, "203.0.113.7", "-", T0 + 600, "/middle", "subject");
	lb_combined(&b, "203.0.113.7", "-", T0 + 1800, "/end", "subject");
	lb_combined(&b, "203.0.113.7", "-", T0 + 1801, "/after", "other");
	lb_combined(&b, "203.0.113.7", "-", T0 + 86400, "/next-day", "other");
	lb_write(&b, "nat.log");
	collect1(&c, "{\"paths\": [\"nat.log\"], \"match\": [\"ip\"]}",
		 window("203.0.113.7", T0, T0 + 1800));
	assert_ok(&c);
	assert_string_equal(event_ids(&c), "nat.log:2 nat.log:5 nat.log:6");
	mb = json_object_get(rec_at(&c, PEX_REC_USAGE_EVENT, 0),
			     "matched_by");
	assert_string_equal(str(mb, "type"), "ip");
	assert_string_equal(str(mb, "value"), "203.0.113.7");
	assert_string_equal(str(mb, "window"),
			    "2026-01-03T10:00:00Z/2026-01-03T10:30:00Z");
	assert_string_equal(str(rec_at(&c, PEX_REC_USAGE_EVENT, 0), "at"),
			    "2026-01-03T10:00:00Z");
	/* Visits, devices and addresses only from the window's lines. */
	assert_int_equal(json_array_size(c.recs[PEX_REC_SESSION]), 1);
	assert_int_equal(num(rec_at(&c, PEX_REC_SESSION, 0), "requests"), 3);
	assert_int_equal(json_array_size(c.recs[PEX_REC_DEVICE]), 1);
	assert_string_equal(str(rec_at(&c, PEX_REC_DEVICE, 0), "user_agent"),
			    "subject");
	assert_int_equal(json_array_size(c.recs[PEX_REC_IP_ADDRESS]), 1);
	assert_int_equal(num(rec_at(&c, PEX_REC_IP_ADDRESS, 0), "requests"),
			 3);
	coll_free(&c);

	/* Two windows for the same address: each line carries its own. */
	{
		const char *ids[] = {
			"ip:203.0.113.7@2026-01-03T09:59:59Z/PT0S",
			"ip:203.0.113.7@2026-01-03T10:30:01Z/PT1S",
			NULL,
		};

		collect(&c, "{\"paths\": [\"nat.log\"]}", ids);
		assert_ok(&c);
		assert_string_equal(event_ids(&c), "nat.log:1 nat.log:7");
		assert_string_equal(str(json_object_get(rec_at(&c,
			PEX_REC_USAGE_EVENT, 1), "matched_by"), "window"),
			"2026-01-03T10:30:01Z/2026-01-03T10:30:02Z");
		coll_free(&c);
	}

	/* Times written in another zone are compared in UTC. */
	{
		char ts[32];

		lb_add(&b, "203.0.113.7 - - [%s] \"GET /zoned HTTP/1.1\" 200 "
		       "1 \"-\" \"z\"\n", clf(T0 + 60, 120, ts));
		lb_add(&b, "203.0.113.7 - - [%s] \"GET /zoned-out HTTP/1.1\" "
		       "200 1 \"-\" \"z\"\n", clf(T0 + 7200, -300, ts));
		lb_write(&b, "zoned.log");
		collect1(&c, "{\"paths\": [\"zoned.log\"]}",
			 window("203.0.113.7", T0, T0 + 1800));
		assert_ok(&c);
		assert_string_equal(event_ids(&c), "zoned.log:1");
		coll_free(&c);
	}
}

/* An ip identity that reaches the collector without a window (another
 * source could report one) must not match anything. */
static void test_ip_without_window_ignored(void **state)
{
	struct logbuf b = {0};
	struct pex_identity_set set = {0};
	struct pex_identity id = {0};
	struct coll c = {0};
	json_t *opts;
	size_t k;

	lb_combined(&b, "203.0.113.7", "-", T0, "/", "x");
	lb_write(&b, "nowin.log");
	id.type = (char *)"ip";
	id.value = (char *)"203.0.113.7";
	assert_int_equal(pex_identity_set_add(&set, &id), 0);
	for (k = 0; k < PEX_REC__COUNT; k++)
		c.recs[k] = json_array();
	opts = json_pack("{s:[s]}", "paths", "nowin.log");
	assert_int_equal(pex_source_new(&c.src, "weblog", "access_log", opts,
					tmp_dir), 0);
	assert_int_equal(pex_source_collect(c.src, &set, sink, &c), 0);
	assert_int_equal(json_array_size(events(&c)), 0);
	assert_int_equal(json_array_size(c.recs[PEX_REC_SESSION]), 0);
	json_decref(opts);
	pex_identity_set_clear(&set);
	coll_free(&c);
}

static void test_ipv6_canonical(void **state)
{
	struct logbuf b = {0};
	struct coll c;
	const char *ids[] = {
		"ip:2001:DB8:0::1@2026-01-03T00:00:00Z/P1D",
		"ip:::ffff:192.0.2.1@2026-01-03T00:00:00Z/P1D",
		NULL,
	};

	lb_combined(&b, "2001:db8::1", "-", T0, "/canonical", "a");
	lb_combined(&b, "2001:DB8::1", "-", T0 + 1, "/upper", "a");
	lb_combined(&b, "2001:db8::10", "-", T0 + 2, "/other", "a");
	lb_combined(&b, "2001:0db8:0000:0000:0000:0000:0000:0001", "-",
		    T0 + 3, "/expanded", "a");
	lb_combined(&b, "192.0.2.1", "-", T0 + 4, "/v4", "a");
	lb_combined(&b, "::ffff:192.0.2.1", "-", T0 + 5, "/mapped", "a");
	lb_combined(&b, "192.0.2.10", "-", T0 + 6, "/v4-other", "a");
	lb_combined(&b, "::ffff:c000:201", "-", T0 + 7, "/mapped-hex", "a");
	lb_combined(&b, "2001:db8:0::1", "-", T0 + 8, "/part", "a");
	lb_write(&b, "v6.log");
	/* With the block search at line starts (the format starts with the
	 * client, by address alone): every spelling, as without it. */
	collect(&c, "{\"paths\": [\"v6.log\"]}", ids);
	assert_ok(&c);
	assert_string_equal(event_ids(&c), "v6.log:1 v6.log:2 v6.log:4 "
			    "v6.log:5 v6.log:6 v6.log:8 v6.log:9");
	assert_string_equal(str(rec_at(&c, PEX_REC_USAGE_EVENT, 1),
				"client_ip"), "2001:db8::1");
	assert_string_equal(str(json_object_get(rec_at(&c,
		PEX_REC_USAGE_EVENT, 3), "matched_by"), "value"),
		"192.0.2.1");
	/* One address record per canonical address. */
	assert_int_equal(json_array_size(c.recs[PEX_REC_IP_ADDRESS]), 2);
	coll_free(&c);
	/* Without it, the same. */
	collect(&c, "{\"paths\": [\"v6.log\"], \"prefilter\": false}", ids);
	assert_ok(&c);
	assert_string_equal(event_ids(&c), "v6.log:1 v6.log:2 v6.log:4 "
			    "v6.log:5 v6.log:6 v6.log:8 v6.log:9");
	coll_free(&c);
	/* With the whole-line search (the client second), the spellings
	 * servers write, as the needles are written: not the expanded
	 * ones, nor the mapped address in hexadecimal. */
	b = (struct logbuf){0};
	{
		static const char *const cl[] = {
			"2001:db8::1", "2001:DB8::1", "2001:db8::10",
			"2001:0db8:0000:0000:0000:0000:0000:0001",
			"192.0.2.1", "::ffff:192.0.2.1", "192.0.2.10",
			"::ffff:c000:201", "2001:db8:0::1",
		};
		size_t i;

		for (i = 0; i < 9; i++) {
			lb_add(&b, "www.example.org:80 ");
			lb_combined(&b, cl[i], "-", T0 + (time_t)i, "/x",
				    "a");
		}
	}
	lb_write(&b, "v6v.log");
	collect(&c, "{\"paths\": [\"v6v.log\"], "
		"\"format\": \"vhost_combined\"}", ids);
	assert_ok(&c);
	assert_string_equal(event_ids(&c),
			    "v6v.log:1 v6v.log:2 v6v.log:5 v6v.log:6");
	coll_free(&c);
}

/* ---- X-Forwarded-For ------------------------------------------------- */

static void test_xff_trusted_proxies(void **state)
{
	struct logbuf b = {0};
	struct coll c;
	char ts[32];
	static const struct {
		const char *peer, *xff, *path;
	} lines[] = {
		/* through our proxy: the client is the header's */
		{"10.0.0.5", "203.0.113.7", "/via-proxy"},
		/* two proxies of ours */
		{"10.0.0.5", "203.0.113.7, 10.0.0.6", "/two-proxies"},
		/* a forged entry left of the real client is ignored */
		{"10.0.0.5", "1.2.3.4, 203.0.113.7", "/forged-left"},
		/* someone else through the proxy */
		{"10.0.0.5", "198.51.100.9", "/other"},
		/* an untrusted peer claiming to be the subject */
		{"198.51.100.20", "203.0.113.7", "/forged"},
		/* the subject without a proxy */
		{"203.0.113.7", "-", "/direct"},
		/* an unreadable hop right of the client: unknown client */
		{"10.0.0.5", "203.0.113.7, junk", "/junk"},
		/* IPv6 with port in the header */
		{"10.0.0.5", "[2001:db8::7]:4711", "/v6-port"},
	};
	size_t i;
	const char *ids[] = {
		"ip:203.0.113.7@2026-01-03T00:00:00Z/P1D",
		"ip:2001:db8::7@2026-01-03T00:00:00Z/P1D",
		NULL,
	};

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		lb_add(&b, "%s - - [%s] \"GET %s HTTP/1.1\" 200 5 \"-\" "
		       "\"ua\" \"%s\"\n", lines[i].peer,
		       clf(T0 + (time_t)i, 0, ts), lines[i].path,
		       lines[i].xff);
	lb_write(&b, "xff.log");
	collect(&c, "{\"paths\": [\"xff.log\"], \"format\": \"$remote_addr - "
		"$remote_user [$time_local] \\\"$request\\\" $status "
		"$body_bytes_sent \\\"$http_referer\\\" \\\"$http_user_agent"
		"\\\" \\\"$http_x_forwarded_for\\\"\", \"trusted_proxies\": "
		"[\"10.0.0.0/24\"]}", ids);
	assert_ok(&c);
	assert_string_equal(event_ids(&c), "xff.log:1 xff.log:2 xff.log:3 "
			    "xff.log:6 xff.log:8");
	assert_string_equal(str(rec_at(&c, PEX_REC_USAGE_EVENT, 0),
				"client_ip"), "203.0.113.7");
	assert_string_equal(str(rec_at(&c, PEX_REC_USAGE_EVENT, 4),
				"client_ip"), "2001:db8::7");
	assert_int_equal(warning_count(&c, "xff.log: 1 line skipped: "
				       "X-Forwarded-For"), 1);
	coll_free(&c);

	/* Without trusted proxies the peer is the client. */
	collect(&c, "{\"paths\": [\"xff.log\"], \"format\": \"$remote_addr - "
		"$remote_user [$time_local] \\\"$request\\\" $status "
		"$body_bytes_sent \\\"$http_referer\\\" \\\"$http_user_agent"
		"\\\" \\\"$http_x_forwarded_for\\\"\"}", ids);
	assert_ok(&c);
	assert_string_equal(event_ids(&c), "xff.log:6");
	coll_free(&c);
}

/* ---- strong identities ----------------------------------------------- */

static void test_user_match(void **state)
{
	struct logbuf b = {0};
	struct coll c;
	const json_t *e;

	lb_combined(&b, "192.0.2.1", "alice", T0, "/a", "ua");
	lb_combined(&b, "192.0.2.2", "bob", T0 + 1, "/b", "ua");
	lb_combined(&b, "192.0.2.3", "alice2", T0 + 2, "/c", "ua");
	lb_combined(&b, "192.0.2.4", "Alice", T0 + 3, "/d", "ua");
	/* a year later: strong identities have no window */
	lb_combined(&b, "198.51.100.4", "alice", T0 + 366 * 86400, "/e",
		    "ua");
	/* Apache escapes bytes outside ASCII in %u */
	lb_combined(&b, "192.0.2.5", "zo\\xc3\\xab", T0 + 5, "/f", "ua");
	lb_combined(&b, "192.0.2.6", "-", T0 + 6, "/alice", "alice");
	lb_write(&b, "users.log");
	collect1(&c, "{\"paths\": [\"users.log\"]}", "username:alice");
	assert_ok(&c);
	assert_string_equal(event_ids(&c), "users.log:1 users.log:5");
	e = rec_at(&c, PEX_REC_USAGE_EVENT, 0);
	assert_string_equal(str(e, "user"), "alice");
	assert_string_equal(str(e, "method"), "GET");
	assert_string_equal(str(e, "path"), "/a");
	assert_string_equal(str(e, "protocol"), "HTTP/1.1");
	assert_int_equal(num(e, "status"), 200);
	assert_int_equal(num(e, "bytes"), 512);
	assert_null(json_object_get(e, "referrer"));
	assert_string_equal(str(json_object_get(e, "matched_by"), "type"),
			    "username");
	assert_null(json_object_get(json_object_get(e, "matched_by"),
				    "window"));
	coll_free(&c);

	collect1(&c, "{\"paths\": [\"users.log\"]}", "username:zo\xc3\xab");
	assert_ok(&c);
	assert_string_equal(event_ids(&c), "users.log:6");
	assert_string_equal(str(rec_at(&c, PEX_REC_USAGE_EVENT, 0), "user"),
			    "zo\xc3\xab");
	coll_free(&c);

	/* A rule with another identity type. */
	collect1(&c, "{\"paths\": [\"users.log\"], \"match\": [{\"user\": "
		 "true, \"type\": \"login\"}]}", "login:bob");
	assert_ok(&c);
	assert_string_equal(event_ids(&c), "users.log:2");
	coll_free(&c);

	/* Identities of types no rule reads find nothing. */
	collect1(&c, "{\"paths\": [\"users.log\"]}", "email:alice@x.org");
	assert_ok(&c);
	assert_int_equal(json_array_size(events(&c)), 0);
	coll_free(&c);
}

/* A line matched by both the user name and the address goes, once, to
 * the first of them in the order given (the engine's resolver relies on
 * that order; see collector.h). */
static void test_first_identity_wins(void **state)
{
	struct logbuf b = {0};
	struct coll c;
	const char *ids[] = {
		"username:alice",
		"ip:192.0.2.1@2026-01-03T00:00:00Z/P1D",
		NULL,
	};
	const char *rev[] = {
		"ip:192.0.2.1@2026-01-03T00:00:00Z/P1D",
		"username:alice",
		NULL,
	};

	lb_combined(&b, "192.0.2.1", "alice", T0, "/both", "ua");
	lb_combined(&b, "192.0.2.1", "-", T0 + 1, "/ip-only", "ua");
	lb_write(&b, "both.log");
	collect(&c, "{\"paths\": [\"both.log\"]}", ids);
	assert_ok(&c);
	assert_string_equal(event_ids(&c), "both.log:1 both.log:2");
	assert_string_equal(str(json_object_get(rec_at(&c,
		PEX_REC_USAGE_EVENT, 0), "matched_by"), "type"), "username");
	assert_string_equal(str(json_object_get(rec_at(&c,
		PEX_REC_USAGE_EVENT, 1), "matched_by"), "type"), "ip");
	/* one visit per identity */
	assert_int_equal(json_array_size(c.recs[PEX_REC_SESSION]), 2);
	coll_free(&c);

	collect(&c, "{\"paths\": [\"both.log\"]}", rev);
	assert_ok(&c);
	assert_string_equal(event_ids(&c), "both.log:1 both.log:2");
	assert_string_equal(str(json_object_get(rec_at(&c,
		PEX_REC_USAGE_EVENT, 0), "matched_by"), "type"), "ip");
	assert_string_equal(str(json_object_get(rec_at(&c,
		PEX_REC_USAGE_EVENT, 1), "matched_by"), "type"), "ip");
	coll_free(&c);
}

static void test_cookie_and_header_match(void **state)
{
	struct logbuf b = {0};
	struct coll c;
	char ts[32];
	const char *ids[] = {"cookie_id:abc123", "customer_id:C-17", NULL};

	lb_add(&b, "192.0.2.1 - - [%s] \"GET /one HTTP/1.1\" 200 1 \"abc123\" "
	       "\"-\"\n", clf(T0, 0, ts));
	lb_add(&b, "192.0.2.2 - - [%s] \"GET /two HTTP/1.1\" 200 1 \"zzz\" "
	       "\"C-17\"\n", clf(T0 + 1, 0, ts));
	lb_add(&b, "192.0.2.3 - - [%s] \"GET /three HTTP/1.1\" 200 1 "
	       "\"abc1234\" \"C-170\"\n", clf(T0 + 2, 0, ts));
	lb_add(&b, "192.0.2.4 - - [%s] \"GET /four?abc123 HTTP/1.1\" 200 1 "
	       "\"-\" \"-\"\n", clf(T0 + 3, 0, ts));
	lb_write(&b, "cookie.log");
	collect(&c, "{\"paths\": [\"cookie.log\"], \"format\": \"%h %l %u %t "
		"\\\"%r\\\" %>s %b \\\"%{sid}C\\\" \\\"%{X-Customer}i\\\"\", "
		"\"match\": [{\"cookie\": \"sid\"}, {\"header\": "
		"\"X-Customer\", \"type\": \"customer_id\"}]}", ids);
	assert_ok(&c);
	assert_string_equal(event_ids(&c), "cookie.log:1 cookie.log:2");
	assert_string_equal(str(json_object_get(rec_at(&c,
		PEX_REC_USAGE_EVENT, 0), "matched_by"), "type"), "cookie_id");
	assert_string_equal(str(json_object_get(rec_at(&c,
		PEX_REC_USAGE_EVENT, 1), "matched_by"), "type"),
		"customer_id");
	coll_free(&c);

	/* nginx's $cookie_NAME */
	lb_add(&b, "192.0.2.1 - - [%s] \"GET /n HTTP/1.1\" 200 1 sid=abc123 "
	       "abc123\n", clf(T0, 0, ts));
	lb_write(&b, "cookie-nginx.log");
	collect1(&c, "{\"paths\": [\"cookie-nginx.log\"], \"format\": "
		 "\"$remote_addr - $remote_user [$time_local] "
		 "\\\"$request\\\" $status $body_bytes_sent $http_cookie "
		 "$cookie_sid\", "
		 "\"match\": [\"cookie: sid\"]}", "cookie_id:abc123");
	assert_ok(&c);
	assert_string_equal(event_ids(&c), "cookie-nginx.log:1");
	coll_free(&c);
}

/* ---- sessions -------------------------------------------------------- */

static void test_sessions(void **state)
{
	struct logbuf b = {0};
	struct coll c;
	const json_t *s, *pages;
	time_t t2 = T0 + 100 + 31 * 60;

	lb_combined(&b, "192.0.2.1", "alice", T0, "/", UA_FIREFOX);
	lb_combined(&b, "192.0.2.1", "alice", T0 + 1, "/style.css",
		    UA_FIREFOX);
	lb_combined(&b, "192.0.2.1", "alice", T0 + 2, "/img/Logo.PNG",
		    UA_FIREFOX);
	lb_combined(&b, "192.0.2.9", "bob", T0 + 20, "/bob", UA_FIREFOX);
	lb_combined(&b, "192.0.2.1", "alice", T0 + 40, "/about?x=1",
		    UA_FIREFOX);
	/* the same person on a phone meanwhile: a visit of its own */
	lb_combined(&b, "192.0.2.77", "alice", T0 + 50, "/m", UA_IPHONE);
	lb_combined(&b, "192.0.2.1", "alice", T0 + 100, "/contact",
		    UA_FIREFOX);
	lb_combined(&b, "192.0.2.1", "alice", T0 + 130, "/app.js",
		    UA_FIREFOX);
	/* 31 idle minutes later: a new visit */
	lb_combined(&b, "192.0.2.1", "alice", t2, "/again", UA_FIREFOX);
	lb_write(&b, "visits.log");
	collect1(&c, "{\"paths\": [\"visits.log\"]}", "username:alice");
	assert_ok(&c);
	assert_int_equal(json_array_size(events(&c)), 8);
	assert_int_equal(json_array_size(c.recs[PEX_REC_SESSION]), 3);

	s = rec_at(&c, PEX_REC_SESSION, 0);
	assert_string_equal(str(s, "id"), "session:visits.log:1");
	assert_string_equal(str(s, "start"), "2026-01-03T10:00:00Z");
	assert_string_equal(str(s, "end"), "2026-01-03T10:02:10Z");
	assert_int_equal(num(s, "requests"), 6);
	assert_string_equal(str(s, "entry_page"), "/");
	assert_string_equal(str(s, "exit_page"), "/contact");
	pages = json_object_get(s, "pages");
	assert_int_equal(json_array_size(pages), 3);
	assert_string_equal(str(json_array_get(pages, 0), "path"), "/");
	assert_int_equal(num(json_array_get(pages, 0), "seconds"), 40);
	assert_string_equal(str(json_array_get(pages, 1), "path"), "/about");
	assert_string_equal(str(json_array_get(pages, 1), "at"),
			    "2026-01-03T10:00:40Z");
	assert_int_equal(num(json_array_get(pages, 1), "seconds"), 60);
	assert_string_equal(str(json_array_get(pages, 2), "path"),
			    "/contact");
	assert_null(json_object_get(json_array_get(pages, 2), "seconds"));
	assert_string_equal(str(json_object_get(s, "extra"), "user_agent"),
			    UA_FIREFOX);
	assert_string_equal(str(json_object_get(s, "matched_by"), "value"),
			    "alice");

	s = rec_at(&c, PEX_REC_SESSION, 1);
	assert_string_equal(str(s, "id"), "session:visits.log:6");
	assert_int_equal(json_array_size(json_object_get(s, "pages")), 1);

	s = rec_at(&c, PEX_REC_SESSION, 2);
	assert_string_equal(str(s, "id"), "session:visits.log:9");
	assert_string_equal(str(s, "entry_page"), "/again");
	assert_string_equal(str(s, "exit_page"), "/again");
	assert_int_equal(num(s, "requests"), 1);
	coll_free(&c);

	/* A longer idle limit joins the two desktop visits. */
	collect1(&c, "{\"paths\": [\"visits.log\"], \"session_idle_minutes\": "
		 "60, \"static_suffixes\": [\".css\"]}", "username:alice");
	assert_ok(&c);
	assert_int_equal(json_array_size(c.recs[PEX_REC_SESSION]), 2);
	s = rec_at(&c, PEX_REC_SESSION, 0);
	pages = json_object_get(s, "pages");
	/* only .css is static now */
	assert_int_equal(json_array_size(pages), 6);
	assert_string_equal(str(json_array_get(pages, 1), "path"),
			    "/img/Logo.PNG");
	assert_string_equal(str(s, "exit_page"), "/again");
	coll_free(&c);
}

/* A server logs a request when it ends, stamped with when it began: a
 * slow page is logged after a quick one asked for later. The visit's
 * pages go in the order they were asked for, entry first. */
static void test_session_out_of_order(void **state)
{
	struct logbuf b = {0};
	struct coll c;
	const json_t *s, *pages;

	(void)state;
	lb_combined(&b, "192.0.2.1", "alice", T0 + 10, "/b", UA_FIREFOX);
	lb_combined(&b, "192.0.2.1", "alice", T0, "/a", UA_FIREFOX);
	lb_combined(&b, "192.0.2.1", "alice", T0 + 50, "/c", UA_FIREFOX);
	lb_combined(&b, "192.0.2.1", "alice", T0 + 50, "/d", UA_FIREFOX);
	lb_combined(&b, "192.0.2.1", "alice", T0 + 45, "/e", UA_FIREFOX);
	lb_write(&b, "late.log");
	collect1(&c, "{\"paths\": [\"late.log\"]}", "username:alice");
	assert_ok(&c);
	assert_int_equal(json_array_size(c.recs[PEX_REC_SESSION]), 1);
	s = rec_at(&c, PEX_REC_SESSION, 0);
	assert_string_equal(str(s, "start"), "2026-01-03T10:00:00Z");
	assert_string_equal(str(s, "end"), "2026-01-03T10:00:50Z");
	assert_string_equal(str(s, "entry_page"), "/a");
	assert_string_equal(str(s, "exit_page"), "/d");
	pages = json_object_get(s, "pages");
	assert_int_equal(json_array_size(pages), 5);
	assert_string_equal(str(json_array_get(pages, 0), "path"), "/a");
	assert_int_equal(num(json_array_get(pages, 0), "seconds"), 10);
	assert_string_equal(str(json_array_get(pages, 1), "path"), "/b");
	assert_int_equal(num(json_array_get(pages, 1), "seconds"), 35);
	assert_string_equal(str(json_array_get(pages, 2), "path"), "/e");
	assert_int_equal(num(json_array_get(pages, 2), "seconds"), 5);
	/* equal times keep the log's order */
	assert_string_equal(str(json_array_get(pages, 3), "path"), "/c");
	assert_int_equal(num(json_array_get(pages, 3), "seconds"), 0);
	assert_string_equal(str(json_array_get(pages, 4), "path"), "/d");
	assert_null(json_object_get(json_array_get(pages, 4), "seconds"));
	coll_free(&c);
}

/* Memory bounds: beyond them visits close early or split and devices are
 * not listed, each with a warning, never silently. */
static void test_limits(void **state)
{
	struct logbuf b = {0};
	struct coll c;
	int i;

	for (i = 0; i < 6; i++) {
		char ua[16], path[16];

		snprintf(ua, sizeof(ua), "agent-%d", i % 3);
		snprintf(path, sizeof(path), "/p%d", i);
		lb_combined(&b, "192.0.2.1", "alice", T0 + i, path, ua);
	}
	lb_write(&b, "limits.log");
	collect1(&c, "{\"paths\": [\"limits.log\"], \"max_devices\": 2, "
		 "\"max_open_sessions\": 2}", "username:alice");
	assert_ok(&c);
	assert_int_equal(json_array_size(events(&c)), 6);
	assert_int_equal(json_array_size(c.recs[PEX_REC_DEVICE]), 2);
	assert_int_equal(warning_count(&c, "more than 2 distinct user "
				       "agents"), 1);
	assert_int_equal(warning_count(&c, "more than 2 visits open"), 1);
	/* every request is in exactly one visit */
	{
		long long total = 0;
		size_t k;

		for (k = 0; k < json_array_size(c.recs[PEX_REC_SESSION]); k++)
			total += num(rec_at(&c, PEX_REC_SESSION, k),
				     "requests");
		assert_int_equal(total, 6);
	}
	coll_free(&c);

	collect1(&c, "{\"paths\": [\"limits.log\"], \"max_session_pages\": "
		 "1}", "username:alice");
	assert_ok(&c);
	assert_int_equal(json_array_size(c.recs[PEX_REC_SESSION]), 6);
	assert_int_equal(warning_count(&c, "longer than 1 pages was split"),
			 1);
	coll_free(&c);
}

/* ---- devices and addresses ------------------------------------------- */

/* Past 100 distinct user agents the rules get JIT code before the
 * parses (below, the interpreter does them): the same answers. */
static void test_many_devices(void **state)
{
	struct logbuf b = {0};
	struct coll c;
	size_t i;

	for (i = 0; i < 120; i++) {
		char ua[160];

		snprintf(ua, sizeof(ua), "Mozilla/5.0 (Windows NT 10.0; "
			 "Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
			 "Chrome/%zu.0.%zu.0 Safari/537.36", 20 + i, i);
		lb_combined(&b, "192.0.2.1", "alice", T0 + (time_t)i, "/", ua);
	}
	lb_write(&b, "many-ua.log");
	collect1(&c, "{\"paths\": [\"many-ua.log\"]}", "username:alice");
	assert_ok(&c);
	assert_int_equal(json_array_size(c.recs[PEX_REC_DEVICE]), 120);
	for (i = 0; i < 120; i++) {
		const json_t *d = rec_at(&c, PEX_REC_DEVICE, i);
		char want[32];

		snprintf(want, sizeof(want), "%zu.0.%zu.0", 20 + i, i);
		assert_string_equal(str(d, "browser"), "Chrome");
		assert_string_equal(str(d, "browser_version"), want);
		assert_string_equal(str(d, "os"), "Windows");
	}
	coll_free(&c);
}

static void test_devices(void **state)
{
	struct logbuf b = {0};
	struct coll c;
	const json_t *d;
	size_t i;

	lb_combined(&b, "192.0.2.1", "alice", T0, "/", UA_FIREFOX);
	lb_combined(&b, "192.0.2.1", "alice", T0 + 5, "/a", UA_FIREFOX);
	lb_combined(&b, "2001:db8::5", "alice", T0 + 9, "/b", UA_IPHONE);
	lb_combined(&b, "192.0.2.1", "alice", T0 + 3600, "/c", UA_FIREFOX);
	lb_combined(&b, "192.0.2.1", "alice", T0 + 3601, "/d", "-");
	lb_write(&b, "devices.log");
	collect1(&c, "{\"paths\": [\"devices.log\"]}", "username:alice");
	assert_ok(&c);
	assert_int_equal(json_array_size(c.recs[PEX_REC_DEVICE]), 2);
	d = rec_at(&c, PEX_REC_DEVICE, 0);
	assert_string_equal(str(d, "user_agent"), UA_FIREFOX);
	assert_string_equal(str(d, "browser"), "Firefox");
	assert_string_equal(str(d, "browser_version"), "121.0");
	assert_string_equal(str(d, "os"), "Ubuntu");
	assert_string_equal(str(d, "device"), "Other");
	assert_string_equal(str(d, "first_seen"), "2026-01-03T10:00:00Z");
	assert_string_equal(str(d, "last_seen"), "2026-01-03T11:00:00Z");
	assert_int_equal(num(d, "requests"), 3);
	assert_non_null(strstr(str(d, "id"), "device:"));
	d = rec_at(&c, PEX_REC_DEVICE, 1);
	assert_string_equal(str(d, "browser"), "Mobile Safari");
	assert_string_equal(str(d, "browser_version"), "17.1");
	assert_string_equal(str(d, "os"), "iOS");
	assert_string_equal(str(d, "os_version"), "17.1");
	assert_string_equal(str(d, "device"), "iPhone");
	assert_string_equal(str(d, "device_brand"), "Apple");
	assert_string_equal(str(d, "device_model"), "iPhone");
	assert_int_equal(num(d, "requests"), 1);

	assert_int_equal(json_array_size(c.recs[PEX_REC_IP_ADDRESS]), 2);
	for (i = 0; i < 2; i++) {
		const json_t *a = rec_at(&c, PEX_REC_IP_ADDRESS, i);

		if (!strcmp(str(a, "ip"), "192.0.2.1")) {
			assert_int_equal(num(a, "requests"), 4);
			assert_string_equal(str(a, "last_seen"),
					    "2026-01-03T11:00:01Z");
		} else {
			assert_string_equal(str(a, "ip"), "2001:db8::5");
			assert_int_equal(num(a, "requests"), 1);
		}
	}
	coll_free(&c);

	/* A rule file that does not exist fails the source, naming it. */
	collect1(&c, "{\"paths\": [\"devices.log\"], \"uap_regexes\": "
		 "\"/nonexistent/regexes.yaml\"}", "username:alice");
	assert_err(&c, "/nonexistent/regexes.yaml");
	coll_free(&c);
	/* ... but only when a device needs it: no request, no failure
	 * (the rules load on a thread of their own during the scan). */
	collect1(&c, "{\"paths\": [\"devices.log\"], \"uap_regexes\": "
		 "\"/nonexistent/regexes.yaml\"}", "username:nobody-here");
	assert_ok(&c);
	assert_int_equal(json_array_size(c.recs[PEX_REC_DEVICE]), 0);
	coll_free(&c);
}

/* ---- files ----------------------------------------------------------- */

static int have(const char *tool)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

static void test_rotated_compressed(void **state)
{
	static const char *const tools[] = {"gzip", "bzip2", "xz", "zstd"};
	/* (file, compressor or NULL), oldest first after sorting */
	static const char *const files[][2] = {
		{"access.log.5", "zstd -q --rm"},
		{"access.log.4", "xz"},
		{"access.log.3", "bzip2"},
		{"access.log.2", "gzip"},
		{"access.log.1", NULL},
		{"access.log", NULL},
	};
	struct coll c;
	size_t i;
	char want[1024] = "";

	for (i = 0; i < 4; i++)
		if (!have(tools[i]))
			fail_msg("%s is not installed: install the Debian "
				 "packages gzip bzip2 xz-utils zstd",
				 tools[i]);
	sh("mkdir -p rot");
	for (i = 0; i < 6; i++) {
		struct logbuf b = {0};
		char name[64], path[16];
		time_t day = T0 + (time_t)i * 86400;

		snprintf(path, sizeof(path), "/day%zu", i);
		lb_combined(&b, "198.51.100.1", "-", day, "/other", "x");
		lb_combined(&b, "192.0.2.1", "alice", day + 1, path, "x");
		snprintf(name, sizeof(name), "rot/%s", files[i][0]);
		lb_write(&b, name);
		if (files[i][1])
			sh("%s rot/%s", files[i][1], files[i][0]);
	}
	/* A visit across the rotation: the last line of access.log.1 and
	 * the first of access.log are one session. */
	sh("printf '%%s\\n' '192.0.2.1 - alice [07/Jan/2026:23:59:50 +0000] "
	   "\"GET /late HTTP/1.1\" 200 1 \"-\" \"x\"' >> rot/access.log.1");
	sh("printf '%%s\\n%%s\\n' '192.0.2.1 - alice [08/Jan/2026:00:00:10 "
	   "+0000] \"GET /early HTTP/1.1\" 200 1 \"-\" \"x\"' \"$(cat "
	   "rot/access.log)\" > rot/tmp && mv rot/tmp rot/access.log");
	collect1(&c, "{\"paths\": [\"rot/access.log*\"]}", "username:alice");
	assert_ok(&c);
	snprintf(want, sizeof(want), "access.log.5.zst:2 access.log.4.xz:2 "
		 "access.log.3.bz2:2 access.log.2.gz:2 access.log.1:2 "
		 "access.log.1:3 access.log:1 access.log:3");
	assert_string_equal(event_ids(&c), want);
	for (i = 1; i < json_array_size(events(&c)); i++)
		assert_true(strcmp(str(rec_at(&c, PEX_REC_USAGE_EVENT, i - 1),
				       "at"),
				   str(rec_at(&c, PEX_REC_USAGE_EVENT, i),
				       "at")) < 0);
	/* day0..day4 alone; day4 + /late + /early together; day5 */
	assert_int_equal(json_array_size(c.recs[PEX_REC_SESSION]), 7);
	{
		const json_t *s = rec_at(&c, PEX_REC_SESSION, 5);

		assert_string_equal(str(s, "id"), "session:access.log.1:3");
		assert_string_equal(str(s, "entry_page"), "/late");
		assert_string_equal(str(s, "exit_page"), "/early");
	}
	coll_free(&c);

	/* Date-stamped rotations and a list of patterns naming a file
	 * twice: date order, each file once. */
	sh("mkdir -p dated && cp rot/access.log dated/site.log && "
	   "zcat rot/access.log.2.gz | gzip > dated/site.log-20260105.gz && "
	   "cp rot/access.log.1 dated/site.log-20260107");
	collect1(&c, "{\"paths\": [\"dated/site.log\", \"dated/site.log-*\", "
		 "\"dated/*\"]}", "username:alice");
	assert_ok(&c);
	assert_string_equal(event_ids(&c), "site.log-20260105.gz:2 "
			    "site.log-20260107:2 site.log-20260107:3 "
			    "site.log:1 site.log:3");
	coll_free(&c);
}

static void test_missing_and_broken_files(void **state)
{
	struct coll c;

	collect1(&c, "{\"paths\": [\"no-such.log\"]}", "username:alice");
	assert_err(&c, "no-such.log");
	coll_free(&c);
	/* Missing files fail also when no identity applies. */
	collect1(&c, "{\"paths\": [\"no-such.log\"]}", "email:a@b.c");
	assert_err(&c, "no-such.log");
	coll_free(&c);
	collect1(&c, "{\"paths\": [\"nothing-here-*.log\"]}",
		 "username:alice");
	assert_err(&c, "no log file matches");
	coll_free(&c);
	/* A .gz whose data is damaged */
	write_text("plain-for-gz.log", "192.0.2.1 - alice [03/Jan/2026:10:00"
		   ":00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"x\"\n");
	sh("gzip -n -c plain-for-gz.log > broken.log.gz && "
	   "printf 'XXXXXXXXXXXXXXXX' | dd of=broken.log.gz bs=1 seek=12 "
	   "conv=notrunc 2>/dev/null");
	collect1(&c, "{\"paths\": [\"broken.log.gz\"]}", "username:alice");
	assert_err(&c, "broken.log.gz");
	coll_free(&c);
	/* A truncated .xz */
	sh("xz -c plain-for-gz.log | head -c 40 > cut.log.xz");
	collect1(&c, "{\"paths\": [\"cut.log.xz\"]}", "username:alice");
	assert_err(&c, "cut.log.xz");
	coll_free(&c);
	/* A directory is not a log */
	sh("mkdir -p adir");
	collect1(&c, "{\"paths\": [\"adir\"]}", "username:alice");
	assert_err(&c, "not a regular file");
	coll_free(&c);
	/* Empty files are fine, compressed or not. */
	write_text("empty.log", "");
	sh("gzip -c empty.log > empty2.log.gz");
	collect1(&c, "{\"paths\": [\"empty.log\", \"empty2.log.gz\"]}",
		 "username:alice");
	assert_ok(&c);
	assert_int_equal(json_array_size(events(&c)), 0);
	coll_free(&c);
}

/* ---- bad lines ------------------------------------------------------- */

static void test_bad_lines(void **state)
{
	struct logbuf b = {0};
	struct coll c;
	char ts[32], *huge;
	size_t hlen = 3u << 20;
	int pre;

	lb_combined(&b, "192.0.2.1", "alice", T0, "/ok1", "ua");
	/* truncated: the last line of a log being written */
	lb_add(&b, "192.0.2.1 - alice [%s] \"GET /trunc HTTP/1.1\" 200\n",
	       clf(T0 + 1, 0, ts));
	/* wrong field count */
	lb_add(&b, "192.0.2.1 alice [%s] \"GET /fields HTTP/1.1\" 200 1 \"-\" "
	       "\"ua\"\n", clf(T0 + 2, 0, ts));
	/* binary junk with the user name in it */
	lb_add(&b, "\x16\x03\x01 alice \x01\x02\n");
	/* too long for max_line_bytes (300) */
	lb_add(&b, "192.0.2.1 - alice [%s] \"GET /%0400d HTTP/1.1\" 200 1 "
	       "\"-\" \"ua\"\n", clf(T0 + 3, 0, ts), 7);
	/* blank lines are no trouble */
	lb_add(&b, "\n\r\n");
	/* non-UTF-8 in quoted fields is kept, replaced */
	lb_add(&b, "192.0.2.1 - alice [%s] \"GET /caf\xe9 HTTP/1.1\" 200 1 "
	       "\"-\" \"b\xff\"\n", clf(T0 + 4, 0, ts));
	/* a bad time */
	lb_add(&b, "192.0.2.1 - alice [31/Apr/2026:10:00:00 +0000] \"GET /x "
	       "HTTP/1.1\" 200 1 \"-\" \"ua\"\n");
	/* a request line that is no request: kept, raw text in extra */
	lb_add(&b, "192.0.2.1 - alice [%s] \"\\x16\\x03\\x01\" 400 0 \"-\" "
	       "\"-\"\n", clf(T0 + 5, 0, ts));
	lb_combined(&b, "192.0.2.1", "alice", T0 + 6, "/ok2", "ua");
	/* an over-long method */
	lb_add(&b, "192.0.2.1 - alice [%s] \"%070d / HTTP/1.1\" 200 1 \"-\" "
	       "\"-\"\n", clf(T0 + 7, 0, ts), 1);
	/* the last line has no newline */
	lb_add(&b, "192.0.2.1 - alice [%s] \"GET /last HTTP/1.1\" 200 1 \"-\" "
	       "\"ua\"", clf(T0 + 8, 0, ts));
	lb_write(&b, "bad.log");
	for (pre = 0; pre < 2; pre++) {
		char opts[256];

		snprintf(opts, sizeof(opts), "{\"paths\": [\"bad.log\"], "
			 "\"max_line_bytes\": 300, \"prefilter\": %s}",
			 pre ? "true" : "false");
		collect1(&c, opts, "username:alice");
		assert_ok(&c);
		assert_string_equal(event_ids(&c), "bad.log:1 bad.log:8 "
				    "bad.log:10 bad.log:11 bad.log:12 "
				    "bad.log:13");
		assert_int_equal(warning_count(&c, "bad.log: 1 line skipped: "
					       "truncated (the line ends "
					       "before the format does) "
					       "(first at line 2)"), 1);
		assert_int_equal(warning_count(&c, "bad.log: 2 lines skipped: "
					       "not in the configured format "
					       "(first at line 3)"), 1);
		assert_int_equal(warning_count(&c, "bad.log: 1 line skipped: "
					       "binary data"), 1);
		assert_int_equal(warning_count(&c, "bad.log: 1 line skipped: "
					       "longer than max_line_bytes"),
				 1);
		assert_string_equal(str(rec_at(&c, PEX_REC_USAGE_EVENT, 1),
					"path"), "/caf\xef\xbf\xbd");
		assert_string_equal(str(rec_at(&c, PEX_REC_USAGE_EVENT, 1),
					"user_agent"), "b\xef\xbf\xbd");
		assert_null(json_object_get(rec_at(&c, PEX_REC_USAGE_EVENT,
						   2), "path"));
		/* control characters XML cannot carry are replaced */
		assert_string_equal(str(json_object_get(rec_at(&c,
			PEX_REC_USAGE_EVENT, 2), "extra"), "request"),
			"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
		/* a 70-byte method is no method: the request is kept */
		assert_null(json_object_get(rec_at(&c, PEX_REC_USAGE_EVENT,
						   4), "method"));
		assert_non_null(strstr(str(json_object_get(rec_at(&c,
			PEX_REC_USAGE_EVENT, 4), "extra"), "request"),
			"0000001 / HTTP/1.1"));
		assert_string_equal(str(rec_at(&c, PEX_REC_USAGE_EVENT, 5),
					"path"), "/last");
		coll_free(&c);
	}

	/* A line far longer than a read block, holding the subject's
	 * value, between good lines. */
	huge = malloc(hlen + 512);
	assert_non_null(huge);
	{
		size_t n = (size_t)snprintf(huge, 512, "192.0.2.1 - alice "
					    "[%s] \"GET /", clf(T0, 0, ts));

		memset(huge + n, 'a', hlen);
		n += hlen;
		n += (size_t)snprintf(huge + n, 512, " HTTP/1.1\" 200 1 \"-\" "
				      "\"ua\"\n");
		lb_combined(&b, "192.0.2.1", "alice", T0, "/before", "ua");
		lb_add(&b, "%s", huge);
		lb_combined(&b, "192.0.2.1", "alice", T0 + 1, "/after", "ua");
	}
	free(huge);
	lb_write(&b, "huge.log");
	collect1(&c, "{\"paths\": [\"huge.log\"]}", "username:alice");
	assert_ok(&c);
	assert_string_equal(event_ids(&c), "huge.log:1 huge.log:3");
	assert_int_equal(warning_count(&c, "huge.log: 1 line skipped: longer "
				       "than max_line_bytes"), 1);
	coll_free(&c);
}

/* Random bytes, NULs and long lines with the needle sprinkled in: the
 * collector must neither crash nor emit a line whose user differs. */
static void test_hostile_file(void **state)
{
	size_t n = 1u << 20, i;
	char *junk = malloc(n);
	struct coll c;
	unsigned seed = 12345;

	assert_non_null(junk);
	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		junk[i] = (char)(seed >> 16);
		if (i % 97 == 0 && i + 6 < n) {
			memcpy(junk + i, " alice", 6);
			i += 5;
		}
	}
	/* junk from its first byte is no log in the format at all: the
	 * source fails (test_format_sample) */
	write_file("junk.log", junk, n);
	collect1(&c, "{\"paths\": [\"junk.log\"]}", "username:alice");
	assert_err(&c, "junk.log: none of its first 16 lines is in the "
		   "configured format");
	coll_free(&c);
	/* after a line in the format, the junk is bad lines, skipped */
	{
		static const char good[] = "1.2.3.4 - bob [01/Jan/2026:"
			"00:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" "
			"\"x\"\n";

		memcpy(junk, good, sizeof(good) - 1);
	}
	write_file("junk.log", junk, n);
	free(junk);
	collect1(&c, "{\"paths\": [\"junk.log\"]}", "username:alice");
	assert_ok(&c);
	for (i = 0; i < json_array_size(events(&c)); i++)
		assert_string_equal(str(rec_at(&c, PEX_REC_USAGE_EVENT, i),
					"user"), "alice");
	assert_true(skipped_total(&c) > 0);
	coll_free(&c);
}

/*
 * A log in another format than the configured one would have every line
 * skipped, the subject's too, and the bundle say nothing is held: each
 * file's first lines must show the format, or the source fails naming
 * the file. One line in the format is enough; a shorter file's lines
 * all count; blank lines do not.
 */
static void test_format_sample(void **state)
{
	static const char combined[] =
		"10.0.0.1 - - [01/Jan/2026:10:00:00 +0000] \"GET /a HTTP/1.1\""
		" 200 5 \"-\" \"Mozilla/5.0\"\n";
	struct coll c;
	struct pex_buf b = PEX_BUF_INIT(1 << 20);
	int i;

	(void)state;
	for (i = 0; i < 40; i++)
		pex_buf_append(&b, combined, sizeof(combined) - 1);
	write_file("fmt.log", b.data, b.len);
	/* combined read as nginx's main format: no line fits */
	collect1(&c, "{\"paths\": [\"fmt.log\"], \"format\": "
		 "\"$remote_addr [$time_local] $request\"}",
		 "ip:10.0.0.1@2026-01-01T09:00:00Z/PT2H");
	assert_err(&c, "fmt.log: none of its first 16 lines is in the "
		   "configured format (format: $remote_addr [$time_local] "
		   "$request); line 1: not in the configured format. Check "
		   "the source's format");
	assert_int_equal(json_array_size(events(&c)), 0);
	coll_free(&c);
	/* as combined: the subject's 40 requests */
	collect1(&c, "{\"paths\": [\"fmt.log\"]}",
		 "ip:10.0.0.1@2026-01-01T09:00:00Z/PT2H");
	assert_ok(&c);
	assert_int_equal(json_array_size(events(&c)), 40);
	coll_free(&c);
	/* a short file of two bad lines and blank ones: all it has */
	write_file("fmt.log", "\n\nnot a log line\n\nnor this\n", 26);
	collect1(&c, "{\"paths\": [\"fmt.log\"]}",
		 "ip:10.0.0.1@2026-01-01T09:00:00Z/PT2H");
	assert_err(&c, "none of its first 2 lines is in the configured "
		   "format (format: combined); line 3:");
	coll_free(&c);
	/* fifteen bad lines, then one in the format: a log, with warnings */
	pex_buf_reset(&b);
	for (i = 0; i < 15; i++)
		pex_buf_append(&b, "10.0.0.1 garbage\n", 17);
	pex_buf_append(&b, combined, sizeof(combined) - 1);
	write_file("fmt.log", b.data, b.len);
	collect1(&c, "{\"paths\": [\"fmt.log\"]}",
		 "ip:10.0.0.1@2026-01-01T09:00:00Z/PT2H");
	assert_ok(&c);
	assert_int_equal(json_array_size(events(&c)), 1);
	assert_int_equal(skipped_total(&c), 15);
	coll_free(&c);
	/* lines too long to read say nothing of the format: sixteen of
	 * them before a good line are passed over */
	pex_buf_reset(&b);
	for (i = 0; i < 16; i++) {
		int k;

		for (k = 0; k < 8; k++)
			pex_buf_append(&b, combined, sizeof(combined) - 2);
		pex_buf_append(&b, "\n", 1);
	}
	pex_buf_append(&b, combined, sizeof(combined) - 1);
	write_file("fmt.log", b.data, b.len);
	collect1(&c, "{\"paths\": [\"fmt.log\"], \"max_line_bytes\": 256}",
		 "ip:10.0.0.1@2026-01-01T09:00:00Z/PT2H");
	assert_ok(&c);
	assert_int_equal(json_array_size(events(&c)), 1);
	coll_free(&c);
	/* an empty file is a log that holds nothing */
	write_file("fmt.log", "", 0);
	collect1(&c, "{\"paths\": [\"fmt.log\"]}",
		 "ip:10.0.0.1@2026-01-01T09:00:00Z/PT2H");
	assert_ok(&c);
	coll_free(&c);
	pex_buf_free(&b);
}

/* ---- configuration --------------------------------------------------- */

static void test_bad_options(void **state)
{
	static const struct {
		const char *opts, *msg;
	} cases[] = {
		{"{}", "'paths' is required"},
		{"{\"paths\": [\"x\"], \"format\": \"nosuch\"}", "nosuch"},
		{"{\"paths\": [\"x\"], \"format\": \"%h %Z\"}", "%Z"},
		{"{\"paths\": [\"x\"], \"format\": \"%h %b\"}",
		 "logs no time"},
		{"{\"paths\": [\"x\"], \"format\": \"$remote_addr $status\", "
		 "\"format_style\": \"iis\"}", "apache or nginx"},
		{"{\"paths\": [\"x\"], \"match\": [\"email\"]}", "'email'"},
		{"{\"paths\": [\"x\"], \"match\": [{\"header\": \"X-Id\", "
		 "\"type\": \"t\"}]}", "does not log header 'X-Id'"},
		{"{\"paths\": [\"x\"], \"match\": [{\"header\": "
		 "\"User-Agent\"}]}", "needs a type"},
		{"{\"paths\": [\"x\"], \"match\": [{\"cookie\": \"sid\"}]}",
		 "does not log cookie 'sid'"},
		{"{\"paths\": [\"x\"], \"match\": [{\"user\": true, \"type\": "
		 "\"Bad-Type\"}]}", "identity type"},
		{"{\"paths\": [\"x\"], \"match\": [{\"user\": true, \"ip\": "
		 "true}]}", "one of"},
		{"{\"paths\": [\"x\"], \"match\": [{\"ip\": true, \"type\": "
		 "\"username\"}]}", "type ip"},
		{"{\"paths\": [\"x\"], \"match\": []}", "list of rules"},
		{"{\"paths\": [\"x\"], \"trusted_proxies\": [\"10.0.0.0/8\"]}",
		 "X-Forwarded-For"},
		{"{\"paths\": [\"x\"], \"format\": \"%h %t %{X-Forwarded-For}i"
		 "\", \"trusted_proxies\": [\"10.0.0.0/99\"]}", "10.0.0.0/99"},
		{"{\"paths\": [\"x\"], \"session_idle_minutes\": 0}",
		 "session_idle_minutes"},
		{"{\"paths\": [\"x\"], \"max_line_bytes\": 100000000}",
		 "max_line_bytes"},
		{"{\"paths\": [\"x\"], \"max_devices\": 0}", "max_devices"},
		{"{\"paths\": [\"x\"], \"colour\": \"red\"}", "colour"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct coll c;

		collect1(&c, cases[i].opts, "username:alice");
		if (c.rc_new == 0)
			fail_msg("options %s were accepted", cases[i].opts);
		assert_err(&c, cases[i].msg);
		coll_free(&c);
	}
}

/* ---- the scanner ----------------------------------------------------- */

struct seen {
	char lines[64][128];
	unsigned long long nums[64];
	size_t n;
	size_t too_long;
};

static int seen_line(void *data, const char *line, size_t len,
		     unsigned long long lineno)
{
	struct seen *s = data;

	if (!line) {
		s->too_long++;
		return 0;
	}
	assert_true(s->n < 64 && len < 128);
	memcpy(s->lines[s->n], line, len);
	s->lines[s->n][len] = '\0';
	s->nums[s->n++] = lineno;
	return 0;
}

/* ---- batches --------------------------------------------------------- */

/* Collect for n subjects in one pex_source_collect_batch() call: the
 * records of subject i land in cs[i]; cs[0] owns the source and gets its
 * result; each cs[i] the warnings its bundle would get. subjects[i] is a
 * NULL-terminated identity list. */
static void collect_batch(struct coll *cs, size_t n, const char *options,
			  const char *const *const *subjects)
{
	struct pex_identity_set *sets = calloc(n + 1, sizeof(*sets));
	void **data = calloc(n + 1, sizeof(*data));
	json_error_t jerr;
	json_t *opts;
	size_t i, j, k;

	assert_non_null(sets);
	assert_non_null(data);
	for (i = 0; i < n; i++) {
		memset(&cs[i], 0, sizeof(cs[i]));
		for (k = 0; k < PEX_REC__COUNT; k++)
			cs[i].recs[k] = json_array();
		for (j = 0; subjects[i][j]; j++) {
			struct pex_identity id;

			if (pex_identity_parse(&id, subjects[i][j]))
				fail_msg("identity %s: %s", subjects[i][j],
					 pex_error_last());
			assert_int_equal(pex_identity_set_add(&sets[i], &id),
					 0);
			pex_identity_clear(&id);
		}
		data[i] = &cs[i];
	}
	opts = json_loads(options, 0, &jerr);
	if (!opts)
		fail_msg("bad test options %s: %s", options, jerr.text);
	cs[0].rc_new = pex_source_new(&cs[0].src, "weblog", "access_log",
				      opts, tmp_dir);
	for (i = 0; cs[0].rc_new == 0 && i < n; i++) {
		cs[i].batch_src = cs[0].src;
		cs[i].subject = i;
	}
	if (cs[0].rc_new == 0)
		cs[0].rc = pex_source_collect_batch(cs[0].src, sets, n, sink,
						    data);
	snprintf(cs[0].err, sizeof(cs[0].err), "%s", pex_error_last());
	/* each subject's warnings as its bundle gets them: the source's,
	 * and its own */
	for (i = 0; cs[0].src && i < n; i++) {
		json_t *own = pex_source_subject_warnings(cs[0].src, i);

		cs[i].warnings = pex_source_warnings(cs[0].src);
		json_array_extend(cs[i].warnings, own);
		json_decref(own);
	}
	for (i = 0; i < n; i++) {
		for (k = 0; k < PEX_REC__COUNT; k++)
			for (j = 0; j < json_array_size(cs[i].recs[k]); j++)
				check_shape((enum pex_record_kind)k,
					    json_array_get(cs[i].recs[k], j));
		pex_identity_set_clear(&sets[i]);
	}
	json_decref(opts);
	free(sets);
	free(data);
}

/* Every record of c was matched by one of ids (as "type:value"). */
static void assert_matched_by_one_of(const struct coll *c,
				     const char *const *ids)
{
	size_t k, i, j;

	for (k = 0; k < PEX_REC__COUNT; k++) {
		for (i = 0; i < json_array_size(c->recs[k]); i++) {
			const json_t *mb = json_object_get(json_array_get(
				c->recs[k], i), "matched_by");
			char tv[300];

			snprintf(tv, sizeof(tv), "%s:%s", str(mb, "type"),
				 str(mb, "value"));
			for (j = 0; ids[j]; j++)
				if (!strncmp(ids[j], tv, strlen(tv)) &&
				    (ids[j][strlen(tv)] == '\0' ||
				     ids[j][strlen(tv)] == '@'))
					break;
			if (!ids[j])
				fail_msg("%s record %s matched by %s, not one "
					 "of the subject's",
					 pex_record_kind_name(
						 (enum pex_record_kind)k),
					 str(json_array_get(c->recs[k], i),
					     "id"), tv);
		}
	}
}

/* The batch gave subject exactly what a collect for it alone gives. */
static void assert_same_as_alone(const struct coll *got, const char *options,
				 const char *const *ids)
{
	struct coll one;
	size_t k;

	collect(&one, options, ids);
	assert_ok(&one);
	for (k = 0; k < PEX_REC__COUNT; k++) {
		if (!json_equal(got->recs[k], one.recs[k])) {
			char *a = json_dumps(got->recs[k], JSON_COMPACT);
			char *b = json_dumps(one.recs[k], JSON_COMPACT);

			fail_msg("%s records differ from a collect alone:\n"
				 "batch %s\nalone %s",
				 pex_record_kind_name((enum pex_record_kind)k),
				 a, b);
		}
	}
	coll_free(&one);
}

#define NAT "198.51.100.50"

/* A NAT address that three people used (two of them at overlapping
 * times), user names, a subject with no requests at all. */
static void test_batch_subjects(void **state)
{
	static const char *const alice[] = {
		"username:alice", "ip:" NAT "@2026-01-03T10:00:00Z/PT30M",
		NULL};
	static const char *const bob[] = {
		"ip:" NAT "@2026-01-03T12:00:00Z/PT30M", NULL};
	static const char *const dave[] = {
		"ip:" NAT "@2026-01-03T10:20:00Z/PT30M", NULL};
	static const char *const carol[] = {"username:carol", NULL};
	static const char *const nobody[] = {
		"ip:192.0.2.99@2026-01-03T00:00:00Z/P1D", "username:zed",
		NULL};
	static const char *const *const subjects[] = {
		alice, bob, dave, carol, nobody};
	static const char *const want[] = {
		"batch.log:2 batch.log:3 batch.log:5 batch.log:11",
		"batch.log:8 batch.log:9",
		"batch.log:5 batch.log:6",
		"batch.log:4 batch.log:9",
		"",
	};
	static const char *const options[] = {
		"{\"paths\": [\"batch.log\"]}",
		"{\"paths\": [\"batch.log\"], \"prefilter\": false}",
	};
	struct logbuf b = {0};
	struct coll cs[5];
	size_t i, o;

	lb_combined(&b, NAT, "-", T0 - 60, "/before", "ua-other");
	lb_combined(&b, NAT, "-", T0 + 10, "/a1", "ua-alice");
	lb_combined(&b, NAT, "alice", T0 + 20, "/a2", "ua-alice");
	lb_combined(&b, "203.0.113.9", "carol", T0 + 30, "/c1", "ua-carol");
	lb_combined(&b, NAT, "-", T0 + 1300, "/shared", "ua-shared");
	lb_combined(&b, NAT, "-", T0 + 2000, "/d1", "ua-dave");
	lb_combined(&b, NAT, "-", T0 + 4000, "/gap", "ua-other");
	lb_combined(&b, NAT, "-", T0 + 7300, "/b1", "ua-bob");
	lb_combined(&b, NAT, "carol", T0 + 7400, "/b2", "ua-carol");
	lb_combined(&b, "10.0.0.1", "-", T0 + 7500, "/x", "ua-other");
	lb_combined(&b, NAT, "alice", T0 + 9500, "/a3", "ua-alice");
	lb_combined(&b, "198.51.100.5", "-", T0 + 100, "/trap", "ua-other");
	lb_write(&b, "batch.log");

	for (o = 0; o < 2; o++) {
		collect_batch(cs, 5, options[o], subjects);
		assert_ok(&cs[0]);
		for (i = 0; i < 5; i++) {
			assert_string_equal(event_ids(&cs[i]), want[i]);
			assert_matched_by_one_of(&cs[i], subjects[i]);
			assert_same_as_alone(&cs[i], options[o],
					     subjects[i]);
		}
		/* Alice's second request is credited to her user name, the
		 * first of her identities; the shared line to each of the
		 * two by their own window. */
		assert_string_equal(str(json_object_get(rec_at(&cs[0],
			PEX_REC_USAGE_EVENT, 1), "matched_by"), "type"),
			"username");
		assert_string_equal(str(json_object_get(rec_at(&cs[0],
			PEX_REC_USAGE_EVENT, 2), "matched_by"), "window"),
			"2026-01-03T10:00:00Z/2026-01-03T10:30:00Z");
		assert_string_equal(str(json_object_get(rec_at(&cs[2],
			PEX_REC_USAGE_EVENT, 0), "matched_by"), "window"),
			"2026-01-03T10:20:00Z/2026-01-03T10:50:00Z");
		/* Line 9 is Bob's by address and Carol's by name. */
		assert_string_equal(str(json_object_get(rec_at(&cs[1],
			PEX_REC_USAGE_EVENT, 1), "matched_by"), "type"), "ip");
		assert_string_equal(str(json_object_get(rec_at(&cs[3],
			PEX_REC_USAGE_EVENT, 1), "matched_by"), "type"),
			"username");
		/* Visits, devices, addresses: each subject's own. Dave has
		 * two user agents: two visits and two devices. */
		assert_int_equal(json_array_size(cs[2].recs[PEX_REC_SESSION]),
				 2);
		assert_int_equal(json_array_size(cs[2].recs[PEX_REC_DEVICE]),
				 2);
		assert_string_equal(str(rec_at(&cs[1], PEX_REC_IP_ADDRESS, 0),
					"ip"), NAT);
		assert_int_equal(num(rec_at(&cs[1], PEX_REC_IP_ADDRESS, 0),
				     "requests"), 2);
		for (i = 0; i < PEX_REC__COUNT; i++)
			assert_int_equal(json_array_size(cs[4].recs[i]), 0);
		for (i = 0; i < 5; i++)
			coll_free(&cs[i]);
	}
}

/*
 * Many subjects: enough search values for the many-needle block search,
 * with the SIMD path and without. Forty people behind six NAT addresses
 * in consecutive, sometimes overlapping windows, plus noise; which lines
 * are whose is worked out here from what was written, and every subject
 * must also get what a collect for them alone gives.
 */
#define MANY 40
static void test_batch_many(void **state)
{
	static const char *const nats[6] = {
		"198.51.100.50", "198.51.100.51", "203.0.113.7",
		"2001:db8::7", "10.1.2.3", "10.1.2.30"};
	char ids[MANY][2][128];
	const char *lists[MANY][2];
	const char *const *subjects[MANY];
	time_t from[MANY];
	char *want[MANY];
	size_t wlen[MANY] = {0}, i, s, pass;
	struct logbuf b = {0};
	struct coll *cs = calloc(MANY, sizeof(*cs));
	unsigned seed = 7;
	const char *opts = "{\"paths\": [\"many.log\"]}";

	assert_non_null(cs);
	for (s = 0; s < MANY; s++) {
		from[s] = T0 + (time_t)(s / 6) * 1500;
		snprintf(ids[s][0], sizeof(ids[s][0]), "%s",
			 window(nats[s % 6], from[s], from[s] + 1800));
		lists[s][0] = ids[s][0];
		lists[s][1] = NULL;
		subjects[s] = lists[s];
		want[s] = calloc(1, 8192);
		assert_non_null(want[s]);
	}
	for (i = 0; i < 3000; i++) {
		time_t t = T0 - 600 + (time_t)i * 5;
		const char *ip;
		char other[32], ua[16], line_id[32];

		seed = seed * 1103515245u + 12345u;
		if ((seed >> 16) % 3) {
			ip = nats[(seed >> 8) % 6];
		} else {
			snprintf(other, sizeof(other), "10.1.2.%u",
				 (seed >> 4) % 40);
			ip = other; /* 10.1.2.3 and .30 among them */
		}
		snprintf(ua, sizeof(ua), "ua-%u", (seed >> 12) % 3);
		lb_combined(&b, ip, "-", t, "/p", ua);
		snprintf(line_id, sizeof(line_id), "many.log:%zu", i + 1);
		for (s = 0; s < MANY; s++) {
			if (strcmp(ip, nats[s % 6]) || t < from[s] ||
			    t > from[s] + 1800)
				continue;
			wlen[s] += (size_t)snprintf(want[s] + wlen[s],
						    8192 - wlen[s], "%s%s",
						    wlen[s] ? " " : "",
						    line_id);
			assert_true(wlen[s] < 8192);
		}
	}
	lb_write(&b, "many.log");
	for (pass = 0; pass <= PEX_AL_SIMD_BEST; pass++) {
		/* the best SIMD path, AVX-512 alone, AVX2, then none */
		pex_al_multi_simd(PEX_AL_SIMD_BEST - pass);
		collect_batch(cs, MANY, opts, subjects);
		assert_ok(&cs[0]);
		for (s = 0; s < MANY; s++) {
			assert_string_equal(event_ids(&cs[s]), want[s]);
			assert_matched_by_one_of(&cs[s], subjects[s]);
			if (pass == 0)
				assert_same_as_alone(&cs[s], opts,
						     subjects[s]);
		}
		for (s = 0; s < MANY; s++)
			coll_free(&cs[s]);
	}
	pex_al_multi_simd(PEX_AL_SIMD_BEST);
	/* Some windows must hold requests, or this proves little. */
	for (i = s = 0; s < MANY; s++)
		i += wlen[s] > 0;
	assert_true(i > MANY / 2);
	for (s = 0; s < MANY; s++)
		free(want[s]);
	free(cs);
}

/* A batch by address alone over a format that starts with the client
 * is searched at line starts only (pex_al_scan_opts.anchored): every
 * spelling of the client address a server writes must still be found,
 * and an address elsewhere in a line must not count. The same batch
 * with prefilter: false is the reference; a vhost_combined log (the
 * client second: the whole-line search) must agree too. */
#define ANCH 12
static void test_batch_anchored(void **state)
{
	static const char *const forms[] = {
		"%s", "%s:51234", "[%s]:443", "::ffff:%s", "UPPER",
	};
	char ids[ANCH][128], ips[ANCH][40];
	const char *lists[ANCH][2];
	const char *const *subjects[ANCH];
	struct coll *on = calloc(ANCH, sizeof(*on));
	struct coll *off = calloc(ANCH, sizeof(*off));
	struct logbuf b = {0}, v = {0};
	unsigned seed = 5;
	size_t i, s, total = 0;
	int fmt;

	assert_non_null(on);
	assert_non_null(off);
	for (s = 0; s < ANCH; s++) {
		if (s % 4 == 3)
			snprintf(ips[s], sizeof(ips[s]), "2001:db8::a%zu", s);
		else
			snprintf(ips[s], sizeof(ips[s]), "192.0.2.%zu", s + 1);
		snprintf(ids[s], sizeof(ids[s]), "%s",
			 window(ips[s], T0 - 100, T0 + 100000));
		lists[s][0] = ids[s];
		lists[s][1] = NULL;
		subjects[s] = lists[s];
	}
	for (i = 0; i < 4000; i++) {
		char client[80], path[80];
		unsigned r;
		const char *ip;

		seed = seed * 1103515245u + 12345u;
		r = seed >> 8;
		ip = ips[r % ANCH];
		if (r % 7 == 0)
			snprintf(client, sizeof(client), "198.51.100.%u",
				 r % 200);
		else if (r / 7 % 5 == 4) {
			size_t k;

			for (k = 0; ip[k] && k + 1 < sizeof(client); k++)
				client[k] = (char)toupper((unsigned char)ip[k]);
			client[k] = '\0';
		} else if (r / 7 % 5 == 2 && strchr(ip, ':'))
			snprintf(client, sizeof(client), "[%s]:443", ip);
		else if (r / 7 % 5 == 3 && !strchr(ip, ':'))
			snprintf(client, sizeof(client), "::ffff:%s", ip);
		else if (r / 7 % 5 == 1 && strchr(ip, ':'))
			/* a leading zero: "2001:0db8::a3" */
			snprintf(client, sizeof(client), "2001:0db8%s",
				 ip + 8);
		else
			snprintf(client, sizeof(client), forms[r / 7 % 2],
				 ip);
		/* someone else's request naming a subject's address */
		snprintf(path, sizeof(path), "/p?from=%s", ips[r / 3 % ANCH]);
		lb_combined(&b, client, "-", T0 + (time_t)i * 20, path, "ua");
		lb_add(&v, "www.example.org:80 ");
		lb_combined(&v, client, "-", T0 + (time_t)i * 20, path, "ua");
	}
	lb_write(&b, "anch.log");
	lb_write(&v, "anchv.log");
	for (fmt = 0; fmt < 2; fmt++) {
		char o1[256], o2[256];

		snprintf(o1, sizeof(o1), "{\"paths\": [\"%s\"], \"match\": "
			 "[\"ip\"]%s}", fmt ? "anchv.log" : "anch.log",
			 fmt ? ", \"format\": \"vhost_combined\"" : "");
		snprintf(o2, sizeof(o2), "{\"paths\": [\"%s\"], \"match\": "
			 "[\"ip\"], \"prefilter\": false%s}",
			 fmt ? "anchv.log" : "anch.log",
			 fmt ? ", \"format\": \"vhost_combined\"" : "");
		collect_batch(on, ANCH, o1, subjects);
		collect_batch(off, ANCH, o2, subjects);
		assert_ok(&on[0]);
		assert_ok(&off[0]);
		for (s = 0; s < ANCH; s++) {
			char want[8192];

			snprintf(want, sizeof(want), "%s", event_ids(&off[s]));
			assert_string_equal(event_ids(&on[s]), want);
			total += json_array_size(events(&on[s]));
			coll_free(&on[s]);
			coll_free(&off[s]);
		}
	}
	/* most of the 8000 lines are some subject's */
	assert_true(total > 5000);
	free(on);
	free(off);
}

/* Caps hold per subject as for a collect alone, and the device table is
 * also bounded over the whole batch. */
static void test_batch_limits(void **state)
{
	static const char *const ips[6] = {
		"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4",
		"192.0.2.5", "192.0.2.6"};
	char ids[6][128];
	const char *lists[6][2];
	const char *const *subjects[6];
	struct logbuf b = {0};
	struct coll cs[6];
	const char *opts = "{\"paths\": [\"caps.log\"], \"max_devices\": 2, "
			   "\"max_open_sessions\": 1}";
	size_t s, u, listed = 0;

	for (s = 0; s < 6; s++) {
		snprintf(ids[s], sizeof(ids[s]), "%s",
			 window(ips[s], T0, T0 + 86400));
		lists[s][0] = ids[s];
		lists[s][1] = NULL;
		subjects[s] = lists[s];
		/* Three user agents each, alternating: with one visit
		 * open at a time they close each other. */
		for (u = 0; u < 6; u++) {
			char ua[16];

			snprintf(ua, sizeof(ua), "ua-%zu", u % 3);
			lb_combined(&b, ips[s], "-",
				    T0 + (time_t)(s * 100 + u), "/p", ua);
		}
	}
	lb_write(&b, "caps.log");
	collect_batch(cs, 6, opts, subjects);
	assert_ok(&cs[0]);
	for (s = 0; s < 6; s++) {
		assert_int_equal(json_array_size(cs[s].recs[
			PEX_REC_USAGE_EVENT]), 6);
		assert_int_equal(json_array_size(cs[s].recs[PEX_REC_SESSION]),
				 6);
		assert_true(json_array_size(cs[s].recs[PEX_REC_DEVICE]) <= 2);
		listed += json_array_size(cs[s].recs[PEX_REC_DEVICE]);
		if (s < 4) /* the batch's share is 4 subjects' caps */
			assert_same_as_alone(&cs[s], opts, subjects[s]);
	}
	assert_int_equal(listed, 8);
	assert_int_equal(json_array_size(cs[4].recs[PEX_REC_DEVICE]), 0);
	/* each limit is told to the subjects it cut short, once each */
	for (s = 0; s < 4; s++) {
		assert_int_equal(warning_count(&cs[s], "more than 2 distinct "
					       "user agents: "), 1);
		assert_int_equal(warning_count(&cs[s], "the most this "
					       "export keeps"), 0);
	}
	for (s = 4; s < 6; s++)
		assert_int_equal(warning_count(&cs[s], "the most this "
					       "export keeps"), 1);
	for (s = 0; s < 6; s++)
		assert_int_equal(warning_count(&cs[s],
					       "more than 1 visits open"), 1);
	for (s = 0; s < 6; s++)
		coll_free(&cs[s]);
}

/* In a batch, a limit one subject reached is in that subject's warnings
 * only; so is a bad line that holds only that subject's value. With the
 * block search off, every line is parsed and a bad one could have been
 * anyone's: it is in everyone's warnings. */
static void test_batch_warnings_per_subject(void **state)
{
	const char *a[] = {NULL, NULL}, *b[] = {NULL, NULL};
	const char *const *subjects[2] = {a, b};
	char wa[128], wb[128];
	struct logbuf lb = {0};
	struct coll cs[2];
	int u;

	(void)state;
	snprintf(wa, sizeof(wa), "%s", window("192.0.2.10", T0, T0 + 3600));
	snprintf(wb, sizeof(wb), "%s", window("192.0.2.20", T0, T0 + 3600));
	a[0] = wa;
	b[0] = wb;
	for (u = 0; u < 3; u++) {
		char ua[16];

		snprintf(ua, sizeof(ua), "agent-%d", u);
		lb_combined(&lb, "192.0.2.10", "-", T0 + u, "/a", ua);
	}
	lb_combined(&lb, "192.0.2.20", "-", T0 + 10, "/b", "agent-0");
	/* bad lines are seen where they hold a value searched for */
	lb_add(&lb, "192.0.2.20 this is not a log line\n");
	lb_write(&lb, "per.log");
	collect_batch(cs, 2, "{\"paths\": [\"per.log\"], "
		      "\"max_devices\": 2}", subjects);
	assert_ok(&cs[0]);
	assert_int_equal(json_array_size(cs[0].recs[PEX_REC_USAGE_EVENT]),
			 3);
	assert_int_equal(json_array_size(cs[1].recs[PEX_REC_USAGE_EVENT]),
			 1);
	assert_int_equal(warning_count(&cs[0], "distinct user agents"), 1);
	assert_int_equal(warning_count(&cs[1], "distinct user agents"), 0);
	assert_int_equal(warning_count(&cs[0], "skipped"), 0);
	assert_int_equal(warning_count(&cs[1], "skipped"), 1);
	coll_free(&cs[0]);
	coll_free(&cs[1]);

	collect_batch(cs, 2, "{\"paths\": [\"per.log\"], "
		      "\"max_devices\": 2, \"prefilter\": false}", subjects);
	assert_ok(&cs[0]);
	assert_int_equal(warning_count(&cs[0], "skipped"), 1);
	assert_int_equal(warning_count(&cs[1], "skipped"), 1);
	coll_free(&cs[0]);
	coll_free(&cs[1]);
}

/* Characters replaced in a device's parsed fields count in the warnings
 * of every subject whose bundle holds them, not only of the first
 * (each distinct user agent is parsed once per batch). */
static void test_batch_replaced_per_subject(void **state)
{
	static const char *const ips[3] = {"192.0.2.31", "192.0.2.32",
					   "192.0.2.33"};
	/* U+FFFE is not allowed in XML: replaced in the user agent and in
	 * the device model uap-core takes from it */
	const char *ua = "Mozilla/5.0 (Linux; Android 10; Acer Iconia Tab "
			 "A1\xEF\xBF\xBE" "00 Build/QQ1A) AppleWebKit/537.36 "
			 "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
	char ids[3][128];
	const char *lists[3][2];
	const char *const *subjects[3];
	struct logbuf lb = {0};
	struct coll cs[3];
	long long first = -1;
	size_t s;

	(void)state;
	for (s = 0; s < 3; s++) {
		snprintf(ids[s], sizeof(ids[s]), "%s",
			 window(ips[s], T0, T0 + 3600));
		lists[s][0] = ids[s];
		lists[s][1] = NULL;
		subjects[s] = lists[s];
		lb_combined(&lb, ips[s], "-", T0 + (time_t)s, "/p", ua);
	}
	lb_write(&lb, "repl.log");
	collect_batch(cs, 3, "{\"paths\": [\"repl.log\"]}", subjects);
	assert_ok(&cs[0]);
	for (s = 0; s < 3; s++) {
		long long n = warning_count(&cs[s], "replaced with U+FFFD");
		const json_t *d = rec_at(&cs[s], PEX_REC_DEVICE, 0);

		assert_non_null(strstr(str(d, "device_model"),
				       "\xEF\xBF\xBD"));
		assert_true(n >= 2); /* the agent and at least the model */
		if (first < 0)
			first = n;
		assert_int_equal(n, first);
	}
	for (s = 0; s < 3; s++)
		coll_free(&cs[s]);
}

/* The many-needle search finds the first occurrence of any needle, as
 * a naive search does, on each SIMD path (AVX-512, AVX2, none; the
 * ones this CPU lacks fall back to the next). */
static void test_multi_find_like_naive(void **state)
{
	char hay[4000], nd[40][16], *ndp[40];
	size_t lens[40];
	unsigned seed = 1234;
	size_t i, j, trial;
	struct pex_al_multi *m = NULL;
	const char *short_one[] = {"abc"}, *high[] = {"ab\xc3\xa9z"};
	size_t short_len[] = {3}, high_len[] = {5};
	int lv;

	for (i = 0; i < sizeof(hay); i++) {
		seed = seed * 1103515245u + 12345u;
		hay[i] = "0123.\n a"[(seed >> 16) % 8];
	}
	for (trial = 0; trial < 400; trial++) {
		size_t n, off, len;

		seed = seed * 1103515245u + 12345u;
		n = 9 + (seed >> 16) % 30;
		for (j = 0; j < n; j++) {
			seed = seed * 1103515245u + 12345u;
			lens[j] = 4 + (seed >> 16) % 11;
			for (i = 0; i < lens[j]; i++) {
				seed = seed * 1103515245u + 12345u;
				nd[j][i] = "0123. a"[(seed >> 16) % 7];
			}
			ndp[j] = nd[j];
		}
		assert_int_equal(pex_al_multi_new(&m,
			(const char *const *)ndp, lens, n), 0);
		for (i = 0; i < 20; i++) {
			const char *want = NULL, *x;

			seed = seed * 1103515245u + 12345u;
			off = (seed >> 16) % 300;
			seed = seed * 1103515245u + 12345u;
			len = (seed >> 16) % (sizeof(hay) - off);
			for (j = 0; j < n; j++) {
				x = memmem(hay + off, len, nd[j], lens[j]);
				if (x && (!want || x < want))
					want = x;
			}
			for (lv = PEX_AL_SIMD_BEST; lv >= 0; lv--) {
				pex_al_multi_simd(lv);
				assert_ptr_equal(pex_al_multi_find(m,
						 hay + off, len), want);
			}
		}
		pex_al_multi_free(m);
		m = NULL;
	}
	pex_al_multi_simd(PEX_AL_SIMD_BEST);
	/* Needles it does not take: the caller falls back. */
	assert_int_equal(pex_al_multi_new(&m, short_one, short_len, 1), 1);
	assert_null(m);
	assert_int_equal(pex_al_multi_new(&m, high, high_len, 1), 1);
	assert_null(m);
	pex_al_multi_free(NULL);
}

/* A batch of one network's addresses over lines that all start with
 * that network (every line passes a test of the needles' first bytes):
 * each needle, planted in turn, is found where a naive search finds the
 * first of any, so no needle is lost from its bucket. */
static void test_multi_find_shared_prefix(void **state)
{
	enum { N = 100, LINES = 300 };
	char nd[N][20], *ndp[N], *hay, *x;
	size_t lens[N], i, j, k, len;
	unsigned seed = 99;
	struct pex_al_multi *m = NULL;
	int lv;

	for (i = 0; i < N; i++) {
		seed = seed * 1103515245u + 12345u;
		lens[i] = (size_t)snprintf(nd[i], sizeof(nd[i]),
					   "10.%u.%u.%u", (seed >> 8) % 256,
					   (seed >> 16) % 256,
					   (unsigned)(i * 7 % 256));
		ndp[i] = nd[i];
	}
	assert_int_equal(pex_al_multi_new(&m, (const char *const *)ndp,
					  lens, N), 0);
	hay = malloc(LINES * 64);
	assert_non_null(hay);
	for (k = 0; k < N; k++) {
		const char *want = NULL;

		len = 0;
		for (j = 0; j < LINES; j++) {
			seed = seed * 1103515245u + 12345u;
			if (j == 100 + k)
				len += (size_t)snprintf(hay + len, 64,
							"%s - - GET /\n",
							nd[k]);
			else
				len += (size_t)snprintf(
					hay + len, 64, "10.%u.%u.%u - - GET /"
					"\n", (seed >> 8) % 256,
					(seed >> 16) % 256, seed % 251);
		}
		for (i = 0; i < N; i++) {
			x = memmem(hay, len, nd[i], lens[i]);
			if (x && (!want || x < want))
				want = x;
		}
		assert_non_null(want);
		for (lv = PEX_AL_SIMD_BEST; lv >= 0; lv--) {
			pex_al_multi_simd(lv);
			assert_ptr_equal(pex_al_multi_find(m, hay, len),
					 want);
		}
		/* From just past the first hit on, as the scanner goes. */
		want = NULL;
		for (i = 0; i < N; i++) {
			x = memmem(hay + 2000, len - 2000, nd[i], lens[i]);
			if (x && (!want || x < want))
				want = x;
		}
		for (lv = PEX_AL_SIMD_BEST; lv >= 0; lv--) {
			pex_al_multi_simd(lv);
			assert_ptr_equal(pex_al_multi_find(m, hay + 2000,
							   len - 2000), want);
		}
	}
	pex_al_multi_simd(PEX_AL_SIMD_BEST);
	free(hay);
	pex_al_multi_free(m);
}

static void test_count_newlines(void **state)
{
	char buf[5000];
	size_t i, off, len, want;
	unsigned seed = 7;

	for (i = 0; i < sizeof(buf); i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (seed >> 16) % 5 == 0 ? '\n' : (char)(seed >> 8);
	}
	for (off = 0; off < 20; off++) {
		for (len = 0; len + off <= sizeof(buf); len += 61) {
			want = 0;
			for (i = 0; i < len; i++)
				want += buf[off + i] == '\n';
			assert_int_equal(pex_al_count_newlines(buf + off, len),
					 want);
		}
	}
}

/* The SIMD search against glibc's memmem on text of a small alphabet,
 * where near-misses are everywhere, at every alignment and length, on
 * every SIMD path the CPU has (AVX-512, AVX2, SSE2). */
static void test_find_like_memmem(void **state)
{
	char hay[3000], nd[16];
	unsigned seed = 99;
	size_t i, trial;
	int lv;

	for (i = 0; i < sizeof(hay); i++) {
		seed = seed * 1103515245u + 12345u;
		hay[i] = "0123.\n"[(seed >> 16) % 6];
	}
	for (trial = 0; trial < 20000; trial++) {
		size_t m, off, len;

		seed = seed * 1103515245u + 12345u;
		m = 1 + (seed >> 16) % 12;
		seed = seed * 1103515245u + 12345u;
		off = (seed >> 16) % 200;
		seed = seed * 1103515245u + 12345u;
		len = (seed >> 16) % (sizeof(hay) - off);
		for (i = 0; i < m; i++) {
			seed = seed * 1103515245u + 12345u;
			nd[i] = "0123."[(seed >> 16) % 5];
		}
		for (lv = PEX_AL_SIMD_BEST; lv >= 0; lv--) {
			pex_al_multi_simd(lv);
			assert_ptr_equal(pex_al_find(hay + off, len, nd, m),
					 memmem(hay + off, len, nd, m));
		}
	}
	pex_al_multi_simd(PEX_AL_SIMD_BEST);
}

static void test_scan_lines(void **state)
{
	const char *needles[] = {"needle", "other"};
	size_t lens[] = {6, 5};
	struct pex_al_scan_opts o = {.needles = needles,
				      .needle_lens = lens, .count = 2,
				      .max_line = 64};
	struct pex_al_scan_opts all = {.max_line = 64};
	struct seen s;
	unsigned long long lines;
	char path[4200];

	snprintf(path, sizeof(path), "%s/scan.txt", tmp_dir);
	write_text("scan.txt", "a\nneedle one\r\nb\n\nc other d needle\n"
		   "needleneedle\nlast needle");
	memset(&s, 0, sizeof(s));
	assert_int_equal(pex_al_scan(path, &o, seen_line, &s, &lines), 0);
	assert_int_equal(lines, 7);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.lines[0], "needle one\r");
	assert_int_equal(s.nums[0], 2);
	assert_string_equal(s.lines[1], "c other d needle");
	assert_int_equal(s.nums[1], 5);
	assert_string_equal(s.lines[2], "needleneedle");
	assert_string_equal(s.lines[3], "last needle");
	assert_int_equal(s.nums[3], 7);

	memset(&s, 0, sizeof(s));
	assert_int_equal(pex_al_scan(path, &all, seen_line, &s, &lines), 0);
	assert_int_equal(s.n, 7);
	assert_string_equal(s.lines[3], "");

	/* only newlines; nothing at all */
	write_text("scan.txt", "\n\n\n");
	memset(&s, 0, sizeof(s));
	assert_int_equal(pex_al_scan(path, &all, seen_line, &s, &lines), 0);
	assert_int_equal(lines, 3);
	write_text("scan.txt", "");
	assert_int_equal(pex_al_scan(path, &all, seen_line, &s, &lines), 0);
	assert_int_equal(lines, 0);
}

/* Lines cut by the read block boundary: a long file of numbered lines,
 * every line found with its right number. */
static void test_scan_block_boundaries(void **state)
{
	struct logbuf b = {0};
	const char *needles[] = {"#7#"};
	size_t lens[] = {3};
	struct pex_al_scan_opts o = {.needles = needles,
				      .needle_lens = lens, .count = 1,
				      .max_line = 1000};
	unsigned long long lines, i, n = 300000;
	struct seen s;
	char path[4200];

	for (i = 1; i <= n; i++)
		lb_add(&b, "%llu %s\n", i, i % 50000 == 0 ? "#7#" : "x");
	lb_write(&b, "blocks.txt");
	snprintf(path, sizeof(path), "%s/blocks.txt", tmp_dir);
	memset(&s, 0, sizeof(s));
	assert_int_equal(pex_al_scan(path, &o, seen_line, &s, &lines), 0);
	assert_int_equal(lines, n);
	assert_int_equal(s.n, 6);
	for (i = 0; i < 6; i++) {
		char want[32];

		assert_int_equal(s.nums[i], (i + 1) * 50000);
		snprintf(want, sizeof(want), "%llu #7#", (i + 1) * 50000);
		assert_string_equal(s.lines[i], want);
	}
}

/* ---- a plain file in parts ------------------------------------------- */

/* What a scan hands to its callback, folded into a hash: the split scan
 * must give the same sequence as a scan in one piece. A callback stops
 * the scan with trace_stop_rc at call stop_at (1-based). */
static int trace_stop_rc = -42;

struct trace {
	uint64_t h;
	unsigned long long n, last, too_long, over_200;
	unsigned long long stop_at; /* return trace_stop_rc at this call */
	size_t max_line;
};

static void trace_mix(struct trace *t, const void *p, size_t len)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		t->h = (t->h ^ b[i]) * 1099511628211ull;
}

static int trace_line(void *data, const char *line, size_t len,
		      unsigned long long lineno)
{
	struct trace *t = data;

	assert_true(lineno > t->last); /* in file order */
	t->last = lineno;
	t->n++;
	t->over_200 += len > 200;
	trace_mix(t, &lineno, sizeof(lineno));
	/* a line over max_line comes whole when it lies in one read block
	 * and as NULL when carried across two, which depends on where the
	 * blocks start; the collector counts both as too long */
	if (line && len <= t->max_line) {
		trace_mix(t, &len, sizeof(len));
		trace_mix(t, line, len);
	} else {
		t->too_long++;
	}
	assert_true(!t->stop_at || t->n <= t->stop_at); /* not after */
	if (t->stop_at && t->n == t->stop_at)
		return trace_stop_rc;
	return 0;
}

static void trace_scan(const char *path, const struct pex_al_scan_opts *o,
		       struct trace *t, unsigned long long *lines)
{
	unsigned long long stop_at = t->stop_at;

	memset(t, 0, sizeof(*t));
	t->h = 14695981039346656037ull;
	t->stop_at = stop_at;
	t->max_line = o->max_line;
	assert_int_equal(pex_al_scan(path, o, trace_line, t, lines),
			 stop_at ? trace_stop_rc : 0);
}

/* Random lines of a small alphabet: some hold a needle, some are longer
 * than max_line (with and without one), some end in CR or are empty. */
static void split_file(const char *name, size_t bytes, unsigned seed,
		       int every_line, int final_newline)
{
	static const char *const words[] = {
		"10.0.0.1", "10.0.0.12", "needle", "203.0.113.7", "x", "GET",
	};
	struct logbuf b = {0};

	while (b.len < bytes) {
		unsigned r;
		size_t k, n;

		seed = seed * 1103515245u + 12345u;
		r = seed >> 8;
		n = r % 97 == 0 ? 300 + r % 5000 : r % 120;
		for (k = 0; k < n; k += 8) {
			seed = seed * 1103515245u + 12345u;
			lb_add(&b, "%s ", words[(seed >> 16) % 6]);
		}
		if (every_line)
			lb_add(&b, "needle");
		lb_add(&b, r % 13 == 0 ? "\r\n" : "\n");
	}
	if (!final_newline && b.len)
		lb_add(&b, "tail needle 10.0.0.1");
	lb_write(&b, name);
}

static void split_compare(const char *path, const struct pex_al_scan_opts *o,
			  unsigned long long stop_at)
{
	struct trace one = {.stop_at = stop_at}, cut;
	unsigned long long lines1, lines;
	int parts;

	pex_al_split(SIZE_MAX, 0); /* never cut */
	trace_scan(path, o, &one, &lines1);
	for (parts = 2; parts <= 5; parts++) {
		pex_al_split(1, parts);
		cut.stop_at = stop_at;
		trace_scan(path, o, &cut, &lines);
		assert_int_equal(cut.n, one.n);
		assert_true(cut.h == one.h);
		assert_int_equal(cut.too_long, one.too_long);
		/* stopped too: up to the line that stopped it */
		assert_int_equal(lines, lines1);
	}
	pex_al_split(32u << 20, 0);
}

static void test_scan_split_like_one_piece(void **state)
{
	const char *needles[] = {"needle", "10.0.0.12", "203.0.113.7"};
	size_t lens[] = {6, 9, 11};
	struct pex_al_scan_opts o1 = {.needles = needles,
				       .needle_lens = lens, .count = 1,
				       .max_line = 200};
	struct pex_al_scan_opts o3 = o1;
	struct pex_al_scan_opts om = o1;
	const char *many[40];
	size_t mlens[40], i;
	char bufs[40][24], path[4200];
	struct pex_al_multi *m = NULL;
	struct trace t = {0};
	unsigned long long lines;

	o3.count = 3;
	for (i = 0; i < 40; i++) {
		snprintf(bufs[i], sizeof(bufs[i]), "10.0.0.%zu ", i + 1);
		many[i] = bufs[i];
		mlens[i] = strlen(bufs[i]);
	}
	assert_int_equal(pex_al_multi_new(&m, many, mlens, 40), 0);
	assert_non_null(m);
	om.needles = many;
	om.needle_lens = mlens;
	om.count = 40;
	om.multi = m;

	snprintf(path, sizeof(path), "%s/split.txt", tmp_dir);
	/* about 3 MiB, with and without a last newline */
	split_file("split.txt", 3u << 20, 1, 0, 1);
	split_compare(path, &o1, 0);
	split_compare(path, &o3, 0);
	split_compare(path, &om, 0);
	split_file("split.txt", 3u << 20, 2, 0, 0);
	split_compare(path, &o3, 0);
	split_compare(path, &om, 0);

	/* the scan actually found lines, long ones among them (handed over
	 * whole within a block, as NULL when carried across blocks) */
	pex_al_split(1, 3);
	trace_scan(path, &o3, &t, &lines);
	assert_true(t.n > 1000);
	assert_true(t.over_200 > 10);

	/* every line a candidate: 13 MiB of them, more than a part may
	 * queue, so the parts wait for the caller */
	split_file("split.txt", 13u << 20, 3, 1, 1);
	split_compare(path, &o1, 0);

	/* the callback stops the scan: in the first part, in a later one,
	 * at the very last line; nothing is called after */
	split_compare(path, &o1, 5);
	split_compare(path, &o1, t.n / 2 + 1000);
	/* ... and early in a later part of sparse lines, while its worker
	 * is still reading */
	split_file("split2.txt", 6u << 20, 5, 0, 1);
	snprintf(path, sizeof(path), "%s/split2.txt", tmp_dir);
	pex_al_split(SIZE_MAX, 0);
	trace_scan(path, &o1, &t, &lines);
	for (i = 1; i < 6; i++)
		split_compare(path, &o1, t.n * i / 6 + 1);
	/* any code of the callback's stops it, also those the split scan
	 * uses inside (a 2 was once taken for "nothing queued yet") */
	for (trace_stop_rc = 1; trace_stop_rc <= 4; trace_stop_rc++)
		for (i = 1; i < 6; i++)
			split_compare(path, &o1, t.n * i / 6 + 1);
	trace_stop_rc = -42;
	snprintf(path, sizeof(path), "%s/split.txt", tmp_dir);
	split_file("split.txt", 13u << 20, 3, 1, 1);
	pex_al_split(SIZE_MAX, 0);
	trace_scan(path, &o1, &t, &lines);
	split_compare(path, &o1, t.n);

	/* no line start to cut at: one line of 3 MiB, no newline */
	{
		char *big = malloc(3u << 20);

		assert_non_null(big);
		memset(big, 'a', 3u << 20);
		memcpy(big + 100, "needle", 6);
		write_file("split.txt", big, 3u << 20);
		free(big);
		split_compare(path, &o1, 0);
		o1.max_line = 4u << 20;
		pex_al_split(1, 4);
		trace_scan(path, &o1, &t, &lines);
		assert_int_equal(t.n, 1);
		assert_int_equal(lines, 1);
		o1.max_line = 200;
	}

	/* a line longer than a part spans some cuts, not the later ones:
	 * 1 MiB of lines, one of 5 MiB, 2 MiB of lines (the cuts within it
	 * are skipped, the parts after it stay parts) */
	{
		struct logbuf b = {0};
		char *big = malloc(5u << 20);
		size_t j;

		assert_non_null(big);
		memset(big, 'b', 5u << 20);
		memcpy(big + 7, "needle", 6);
		for (j = 0; b.len < (1u << 20); j++)
			lb_add(&b, "%zu %s\n", j, j % 7 ? "x" : "needle");
		lb_add(&b, "%.*s\n", 5 << 20, big);
		for (; b.len < (8u << 20); j++)
			lb_add(&b, "%zu %s\n", j, j % 5 ? "y" : "needle");
		lb_write(&b, "split.txt");
		free(big);
		split_compare(path, &o1, 0);
	}

	/* tiny and empty files; a file of fewer bytes than parts */
	write_text("split.txt", "needle\n");
	split_compare(path, &o1, 0);
	write_text("split.txt", "a\nneedle");
	split_compare(path, &o1, 0);
	write_text("split.txt", "");
	split_compare(path, &o1, 0);
	pex_al_multi_free(m);
}

/* Each line says its own number; the callback checks it, and on its
 * first call waits for the parts to read ahead, then cuts the file
 * short, as logrotate's copytruncate does under a reader. Read in one
 * piece (through the read-ahead) or in parts, the scan must fail. */
/* A scan for the one word "needle", lines of up to 200 bytes. */
static struct pex_al_scan_opts needle_opts(void)
{
	static const char *const needles[] = {"needle"};
	static const size_t lens[] = {6};

	return (struct pex_al_scan_opts){.needles = needles,
					 .needle_lens = lens, .count = 1,
					 .max_line = 200};
}

struct cut_check {
	const char *path;
	off_t cut_to;
	unsigned long long calls, wrong, last, pieces;
};

static int cut_line(void *data, const char *line, size_t len,
		    unsigned long long lineno)
{
	struct cut_check *c = data;
	unsigned long long said = 0;
	size_t i;

	if (c->calls++ == 0) {
		usleep(300 * 1000);
		assert_int_equal(truncate(c->path, c->cut_to), 0);
	}
	for (i = 7; line && i < len && line[i] >= '0' && line[i] <= '9'; i++)
		said = said * 10 + (unsigned)(line[i] - '0');
	c->wrong += said != lineno;
	/* a line cut where the file was cut is not handed on */
	c->pieces += line && (len < 8 || memcmp(line + len - 8, "a little", 8));
	c->last = lineno;
	return 0;
}

static void test_scan_split_file_cut_short(void **state)
{
	struct pex_al_scan_opts o = needle_opts();
	char path[4200];
	int parts;

	snprintf(path, sizeof(path), "%s/cut.txt", tmp_dir);
	for (parts = 1; parts <= 4; parts *= 2) {
		struct cut_check c = {.path = path, .cut_to = 4096};
		struct logbuf b = {0};
		unsigned long long i, lines;

		for (i = 1; b.len < (16u << 20); i++)
			lb_add(&b, "needle %llu and some text to fill the "
			       "line up a little\n", i);
		lb_write(&b, "cut.txt");
		pex_al_split(1, parts);
		/* the scan fails, saying why, rather than look whole */
		assert_int_equal(pex_al_scan(path, &o, cut_line, &c, &lines),
				 PEX_EIO);
		assert_non_null(strstr(pex_error_last(), "got shorter while"));
		/* and every line it handed on was whole, with its own
		 * number */
		assert_int_equal(c.wrong, 0);
		assert_int_equal(c.pieces, 0);
		assert_true(c.calls > 0);
	}
	pex_al_split(32u << 20, 0);
}

/* Count lines: a split scan to put the scanner's SIGBUS handler in. */
static int count_line(void *data, const char *line, size_t len,
		      unsigned long long lineno)
{
	(void)line;
	(void)len;
	(void)lineno;
	++*(unsigned long long *)data;
	return 0;
}

static void split_scan_once(const char *path)
{
	struct pex_al_scan_opts o = needle_opts();
	unsigned long long n = 0, lines;

	pex_al_split(1, 2);
	if (pex_al_scan(path, &o, count_line, &n, &lines) || n != 2000)
		_exit(3);
}

static volatile sig_atomic_t host_calls;
static struct sigaction host_prev;

/* A host program's handler that passes SIGBUS on to the one before it,
 * as many do. */
static void host_bus(int sig, siginfo_t *si, void *uc)
{
	host_calls++;
	if ((host_prev.sa_flags & SA_SIGINFO) && host_prev.sa_sigaction)
		host_prev.sa_sigaction(sig, si, uc);
	else if (host_prev.sa_handler != SIG_DFL &&
		 host_prev.sa_handler != SIG_IGN)
		host_prev.sa_handler(sig);
	else {
		signal(SIGBUS, SIG_DFL);
		raise(SIGBUS);
	}
}

/* How a child that ran a split scan (so the scanner's SIGBUS handler is
 * in) and was then sent SIGBUS ends; with host, a host handler that
 * passes signals on was set up after the scanner's, and a second scan
 * put the scanner's back on top. */
static int sigbus_child(const char *path, int host)
{
	pid_t pid = fork();
	int st = 0;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct sigaction sa;

		signal(SIGBUS, SIG_DFL); /* not the test framework's */
		split_scan_once(path);
		if (host) {
			memset(&sa, 0, sizeof(sa));
			sa.sa_sigaction = host_bus;
			sa.sa_flags = SA_SIGINFO;
			sigemptyset(&sa.sa_mask);
			sigaction(SIGBUS, &sa, &host_prev);
			split_scan_once(path);
		}
		kill(getpid(), SIGBUS);
		_exit(host_calls > 1 ? 4 : 0); /* should not get here */
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

/* SIGBUS that is no fault of a scan's goes where it went before the
 * scanner set its handler: sent by another process to a program that
 * left it at the default, it still ends the program (it once left the
 * program running and the default back in place); passed round by a
 * host's handler that was set up between two scans, it reaches the
 * default once, not the two handlers in turn until the stack ends. */
static void test_scan_split_sigbus_not_ours(void **state)
{
	char path[4200];
	struct logbuf b = {0};
	int i, st;

	(void)state;
	for (i = 0; i < 2000; i++)
		lb_add(&b, "needle %d with some text after it\n", i);
	lb_write(&b, "bus.txt");
	snprintf(path, sizeof(path), "%s/bus.txt", tmp_dir);
	st = sigbus_child(path, 0);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGBUS);
	st = sigbus_child(path, 1);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGBUS);
	pex_al_split(32u << 20, 0);
}

/* The anchored search (client addresses at line starts) against the
 * rule it stands for, worked out here line by line: a needle at the
 * start, a first field that starts with '[' or ':', and with colon
 * (anchored = 2) a first field holding a ':'. */
static int anchored_want(const char *const *nd, size_t n, const char *l,
			 size_t len, int colon)
{
	const char *sp = memchr(l, ' ', len);
	size_t i, f = sp ? (size_t)(sp - l) : len;

	if (len && (l[0] == '[' || l[0] == ':'))
		return 1;
	if (colon && memchr(l, ':', f))
		return 1;
	for (i = 0; i < n; i++) {
		size_t m = strlen(nd[i]);

		if (m <= len && !memcmp(l, nd[i], m))
			return 1;
	}
	return 0;
}

/* The lines hold 24 addresses; the first nn of them are searched for
 * (the others are near-misses then). One needle makes step 1's tables
 * exact, 24 spread them over buckets. (The addresses were once
 * 10.x.y.(7y): "10.1.1.7" hashed as the zero bytes short lines are
 * hashed as, and so let a fault in their handling through.) */
static void scan_anchored_with(size_t nn)
{
	static const char *const firsts[] = {
		"%s", "%s:4431", "[%s]:443", "::ffff:%s", "[::ffff:%s]:80",
		"%s0", "x%s", "-", "", "2001:0db8::%.0s5", "fe80::%.0s1",
	};
	const char *nd[24];
	char ndbuf[24][40], path[4200];
	size_t lens[24], i;
	unsigned long long k;
	struct pex_al_multi *m = NULL;
	struct pex_al_scan_opts o = {.max_line = 300, .anchored = 1};
	struct trace want[2] = {
		{.h = 14695981039346656037ull, .max_line = 300},
		{.h = 14695981039346656037ull, .max_line = 300},
	};
	int colon;
	struct logbuf b = {0};
	unsigned seed = 11;
	int lv, parts;

	for (i = 0; i < 24; i++) {
		if (i % 6 == 5)
			snprintf(ndbuf[i], sizeof(ndbuf[i]), "2001:db8::%zx",
				 i);
		else
			snprintf(ndbuf[i], sizeof(ndbuf[i]), "10.%zu.%zu.%zu",
				 i % 3, i, (i * 7 + 1) % 250);
		nd[i] = ndbuf[i];
		lens[i] = strlen(nd[i]);
	}
	assert_int_equal(pex_al_multi_new(&m, nd, lens, nn), 0);
	o.needles = nd;
	o.needle_lens = lens;
	o.count = nn;
	o.multi = m;
	/* 3 MiB: needles at the start in every spelling a server writes,
	 * near-misses ("10.1.2.30" for "10.1.2.3"), needles only in the
	 * path or the referrer, CRLF, long lines across read blocks (each
	 * with a needle first: a long line carried across two blocks is
	 * reported as too long whatever it holds) */
	for (k = 1; b.len < (3u << 20); k++) {
		char ip[40], first[80], line[1200];
		unsigned r;
		size_t len;

		seed = seed * 1103515245u + 12345u;
		r = seed >> 8;
		if (r % 53 == 0) {
			/* a run of short lines: blank ones (dozens of
			 * newlines in 64 bytes), a needle alone, part of
			 * one, a lone '[' or ':' */
			unsigned j;

			for (j = 0; j < r / 53 % 40; j++, k++) {
				const char *sl[] = {"", "[", ":", nd[j % 24],
						    "x", "", "10.0.", ""};

				len = (size_t)snprintf(line, sizeof(line),
					"%.*s", j % 8 == 7 ? (int)j % 9 : 40,
					sl[j % 8 == 7 ? 3 : j % 7]);
				lb_add(&b, "%s\n", line);
				for (colon = 0; colon < 2; colon++)
					if (anchored_want(nd, nn, line, len,
							  colon))
						trace_line(&want[colon], line,
							   len, k);
			}
		}
		if (r % 4)
			snprintf(ip, sizeof(ip), "%s", nd[r % 24]);
		else
			snprintf(ip, sizeof(ip), "10.%u.%u.%u", r % 3,
				 r / 7 % 30, r / 11 % 250);
		if (r % 89 == 0) /* a long line: a needle with any nn */
			snprintf(ip, sizeof(ip), "%s", nd[0]);
		snprintf(first, sizeof(first), r % 89 ? firsts[r / 13 % 11]
						      : "%s", ip);
		len = (size_t)snprintf(line, sizeof(line),
			"%s - - [01/Jan/2026:00:00:00 +0000] \"GET /%s HTTP/"
			"1.1\" 200 5 \"http://%s/\" \"ua\"%s", first,
			r % 5 ? "p" : nd[r / 17 % 24], nd[r / 19 % 24],
			r % 31 ? "" : "\r");
		if (r % 89 == 0) {
			memset(line + len, 'y', 700);
			len += 700;
			line[len] = '\0';
		}
		lb_add(&b, "%s\n", line);
		for (colon = 0; colon < 2; colon++)
			if (anchored_want(nd, nn, line, len, colon))
				trace_line(&want[colon], line, len, k);
	}
	lb_write(&b, "anchored.txt");
	snprintf(path, sizeof(path), "%s/anchored.txt", tmp_dir);
	assert_true(want[0].n > (nn > 1 ? 1000 : 100));
	assert_true(want[1].n > want[0].n);
	assert_true(want[0].too_long > 10);
	for (lv = PEX_AL_SIMD_BEST; lv >= 0; lv--) {
		pex_al_multi_simd(lv);
		/* one piece; three threads; three whose queues hold 2 KB,
		 * so that parts the caller scans are given back and the
		 * workers wait for it */
		for (parts = 0; parts < 3; parts++) {
			for (colon = 0; colon < 2; colon++) {
				struct trace t = {0};
				unsigned long long lines;

				o.anchored = 1 + colon;
				pex_al_split(parts ? 1 : SIZE_MAX,
					     parts ? 3 : 1);
				pex_al_split_queue(parts == 2 ? 2048 : 0);
				trace_scan(path, &o, &t, &lines);
				assert_int_equal(lines, k - 1);
				assert_int_equal(t.n, want[colon].n);
				assert_int_equal(t.too_long,
						 want[colon].too_long);
				assert_true(t.h == want[colon].h);
			}
		}
	}
	pex_al_multi_simd(PEX_AL_SIMD_BEST);
	pex_al_split(32u << 20, 0);
	pex_al_split_queue(0);
	pex_al_multi_free(m);
}

static void test_scan_anchored(void **state)
{
	(void)state;
	scan_anchored_with(24);
	scan_anchored_with(2);
	scan_anchored_with(1);
}

/* A compressed file is never cut (its bytes are not its lines): the same
 * lines with the split on as off. */
static void test_scan_split_compressed(void **state)
{
	struct pex_al_scan_opts o = needle_opts();
	char path[4200];

	split_file("splitz.txt", 2u << 20, 4, 0, 1);
	sh("gzip -f -1 splitz.txt");
	snprintf(path, sizeof(path), "%s/splitz.txt.gz", tmp_dir);
	split_compare(path, &o, 0);
}

/* ---- setup ----------------------------------------------------------- */

static int load_schemas(const char *srcdir)
{
	int k;

	for (k = 0; k < PEX_REC__COUNT; k++) {
		char path[4200];
		json_t *s;

		snprintf(path, sizeof(path), "%s/schemas/v1/%s.schema.json",
			 srcdir,
			 pex_record_kind_name((enum pex_record_kind)k));
		s = json_load_file(path, 0, NULL);
		if (!s)
			return -1;
		schema_props[k] = json_incref(json_object_get(s,
							      "properties"));
		schema_required[k] = json_incref(json_object_get(s,
								 "required"));
		json_decref(s);
	}
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	return remove(path);
}

int main(void)
{
	const char *c = getenv("PEX_CORPUS");
	const char *srcdir = getenv("PEX_SOURCE_DIR");
	struct stat st;
	int failed, k;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_corpus_odd_lines),
		cmocka_unit_test(test_ip_window_bounds),
		cmocka_unit_test(test_ip_without_window_ignored),
		cmocka_unit_test(test_ipv6_canonical),
		cmocka_unit_test(test_xff_trusted_proxies),
		cmocka_unit_test(test_user_match),
		cmocka_unit_test(test_first_identity_wins),
		cmocka_unit_test(test_cookie_and_header_match),
		cmocka_unit_test(test_sessions),
		cmocka_unit_test(test_session_out_of_order),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_devices),
		cmocka_unit_test(test_many_devices),
		cmocka_unit_test(test_rotated_compressed),
		cmocka_unit_test(test_missing_and_broken_files),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_hostile_file),
		cmocka_unit_test(test_format_sample),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_count_newlines),
		cmocka_unit_test(test_find_like_memmem),
		cmocka_unit_test(test_scan_lines),
		cmocka_unit_test(test_scan_block_boundaries),
		cmocka_unit_test(test_scan_split_like_one_piece),
		cmocka_unit_test(test_scan_split_compressed),
		cmocka_unit_test(test_scan_split_file_cut_short),
		cmocka_unit_test(test_scan_anchored),
		cmocka_unit_test(test_scan_split_sigbus_not_ours),
		cmocka_unit_test(test_batch_subjects),
		cmocka_unit_test(test_batch_many),
		cmocka_unit_test(test_batch_anchored),
		cmocka_unit_test(test_batch_limits),
		cmocka_unit_test(test_batch_warnings_per_subject),
		cmocka_unit_test(test_batch_replaced_per_subject),
		cmocka_unit_test(test_multi_find_like_naive),
		cmocka_unit_test(test_multi_find_shared_prefix),
	};

	if (!c || stat(c, &st) != 0 || !S_ISDIR(st.st_mode)) {
		printf("access_log_test: skipped: the test corpus is absent "
		       "(PEX_CORPUS=%s); it lives in ../shared/corpus\n",
		       c ? c : "(unset)");
		return 77;
	}
	snprintf(corpus_dir, sizeof(corpus_dir), "%s/access_logs", c);
	if (load_schemas(srcdir ? srcdir : ".") < 0) {
		fprintf(stderr, "access_log_test: cannot load schemas/v1/ "
				"(set PEX_SOURCE_DIR)\n");
		return 1;
	}
	if (!mkdtemp(tmp_dir)) {
		fprintf(stderr, "access_log_test: mkdtemp: %s\n",
			strerror(errno));
		return 1;
	}
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	for (k = 0; k < PEX_REC__COUNT; k++) {
		json_decref(schema_props[k]);
		json_decref(schema_required[k]);
	}
	return failed;
}
