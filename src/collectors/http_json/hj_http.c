/*
 * HTTP for the http_json collector: one libcurl easy handle per source,
 * reused for every request so the connection stays open.
 *
 * Every response body is read into a bounded buffer (max_response_bytes;
 * a Content-Length over it is refused before the body is read, a body
 * that grows past it is cut off) and must be JSON with a JSON media type.
 * Faults that a later attempt may not meet (5xx, 429, timeouts, refused
 * or dropped connections) are retried with exponential backoff, or after
 * the server's Retry-After (capped by max_retry_after_ms); the rest fail
 * at once. Messages name the method and path only: the query carries the
 * subject's email and the headers carry the credentials.
 *
 * Attachment files go through hj_http_download() on the same handle:
 * the same credentials, TLS, timeouts, redirects, retries and origin
 * rule, but the body streams to a sink under its own size limit and its
 * messages name no path at all (a download URL can carry a token).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "collectors/http_json/hj.h"
#include "core/dynlib.h"
#include "core/timeutil.h"
#include "portex/error.h"

/* libcurl is loaded by the first REST source, not at start-up (see
 * core/dynlib.h); every call below goes through this table. curl.h makes
 * curl_easy_setopt and curl_easy_getinfo macros too, so those two are
 * called as (cu.curl_easy_setopt)(...), which the macros leave alone. */
#define CURL_FUNCS(X) \
	X(curl_easy_cleanup) \
	X(curl_easy_getinfo) \
	X(curl_easy_header) \
	X(curl_easy_init) \
	X(curl_easy_perform) \
	X(curl_easy_setopt) \
	X(curl_easy_strerror) \
	X(curl_free) \
	X(curl_global_init) \
	X(curl_slist_append) \
	X(curl_slist_free_all) \
	X(curl_url) \
	X(curl_url_cleanup) \
	X(curl_url_get) \
	X(curl_url_set)

static struct {
	CURL_FUNCS(PEX_DYNLIB_MEMBER)
} cu;

static struct pex_dynlib curl_lib = {
	.soname = PEX_LIBCURL_SONAME,
	.what = "the HTTP client library libcurl",
	.package = "libcurl4",
};
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

/* Load libcurl and run its global set-up, which is not safe to run from
 * two threads at once (exports of a batch run on several): once. */
static void curl_init_once(void)
{
	if (pex_dynlib_open(&curl_lib))
		return;
#define X(f) PEX_DYNLIB_LOAD(&curl_lib, cu, f)
	CURL_FUNCS(X)
#undef X
	if (cu.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		curl_lib.rc = PEX_ERROR;
		snprintf(curl_lib.msg, sizeof(curl_lib.msg),
			 "libcurl's global set-up failed");
	}
}

void hj_http_library(const char *soname)
{
	curl_lib.soname = soname;
}

/* 0 once libcurl is there; else its error, set for this thread. */
static int curl_ready(void)
{
	pthread_once(&curl_once, curl_init_once);
	return pex_dynlib_result(&curl_lib);
}

/* A redirect portex follows itself (perform()): its body is not the
 * response, and counts against no limit, as when curl follows. */
static int redirect_body(const struct hj_http *h)
{
	long status = 0;

	if (!h->follow_here)
		return 0;
	(cu.curl_easy_getinfo)(h->curl, CURLINFO_RESPONSE_CODE, &status);
	return status >= 300 && status <= 399;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	struct hj_http *h = ud;
	size_t len = size * n;

	if (redirect_body(h))
		return len;
	if ((long long)(h->body.len + len) > h->o.max_response_bytes ||
	    pex_buf_append(&h->body, data, len)) {
		h->oversize = 1;
		return 0; /* makes curl stop with CURLE_WRITE_ERROR */
	}
	return len;
}

static char *url_part(CURLU *u, CURLUPart part, unsigned flags)
{
	char *s = NULL;
	char *copy;

	if (cu.curl_url_get(u, part, &s, flags) != CURLUE_OK)
		return NULL;
	copy = strdup(s);
	cu.curl_free(s);
	return copy;
}

/* scheme, host (lower case) and port of an absolute URL. */
static int origin_of(const char *url, char **scheme, char **host,
		     char **port)
{
	CURLU *u = cu.curl_url();
	int rc = PEX_EINVALID;

	*scheme = *host = *port = NULL;
	if (!u)
		return PEX_ENOMEM;
	if (cu.curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto cleanup;
	*scheme = url_part(u, CURLUPART_SCHEME, 0);
	*host = url_part(u, CURLUPART_HOST, 0);
	*port = url_part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT);
	if (!*scheme || !*host || !*port)
		goto cleanup;
	{
		/* [fe80::1%eth0] and [fe80::1%eth1] may be two machines */
		char *zone = url_part(u, CURLUPART_ZONEID, 0);

		if (zone) {
			size_t n = strlen(*host) + strlen(zone) + 2;
			char *both = malloc(n);

			if (both)
				snprintf(both, n, "%s%%%s", *host, zone);
			free(*host);
			free(zone);
			*host = both;
			if (!both)
				goto cleanup;
		}
	}
	for (char *p = *host; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	rc = 0;
cleanup:
	if (rc) {
		free(*scheme);
		free(*host);
		free(*port);
		*scheme = *host = *port = NULL;
	}
	cu.curl_url_cleanup(u);
	return rc;
}

int hj_http_same_origin(const struct hj_http *h, const char *url)
{
	char *s, *host, *port;
	int same;

	if (origin_of(url, &s, &host, &port))
		return 0;
	same = !strcmp(s, h->origin_scheme) && !strcmp(host, h->origin_host) &&
	       !strcmp(port, h->origin_port);
	free(s);
	free(host);
	free(port);
	return same;
}

char *hj_url_resolve(const char *base, const char *ref)
{
	CURLU *u;
	char *out = NULL;

	if (curl_ready())
		return NULL;
	u = cu.curl_url();
	if (!u)
		return NULL;
	if (cu.curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
	    cu.curl_url_set(u, CURLUPART_URL, ref, 0) == CURLUE_OK)
		out = url_part(u, CURLUPART_URL, 0);
	cu.curl_url_cleanup(u);
	if (out && strlen(out) > HJ_URL_MAX) {
		free(out);
		out = NULL;
	}
	return out;
}

/* The path of url for messages; never the query or credentials. */
static void path_of(const char *url, char *buf, size_t size)
{
	CURLU *u = cu.curl_url();
	char *p = NULL;

	snprintf(buf, size, "(unparseable URL)");
	if (u && cu.curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    cu.curl_url_get(u, CURLUPART_PATH, &p, 0) == CURLUE_OK)
		snprintf(buf, size, "%s", p);
	cu.curl_free(p);
	cu.curl_url_cleanup(u);
}

static int set_auth(struct hj_http *h)
{
	const struct hj_http_opts *o = &h->o;
	struct pex_buf line = PEX_BUF_INIT(HJ_URL_MAX);
	struct curl_slist *l;
	int rc = 0;

	switch (o->auth) {
	case HJ_AUTH_NONE:
		return 0;
	case HJ_AUTH_BEARER:
		(cu.curl_easy_setopt)(h->curl, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
		(cu.curl_easy_setopt)(h->curl, CURLOPT_XOAUTH2_BEARER, o->token);
		return 0;
	case HJ_AUTH_BASIC:
		(cu.curl_easy_setopt)(h->curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		(cu.curl_easy_setopt)(h->curl, CURLOPT_USERNAME, o->user);
		(cu.curl_easy_setopt)(h->curl, CURLOPT_PASSWORD,
				 o->password ? o->password : "");
		return 0;
	case HJ_AUTH_HEADER:
		rc = pex_buf_printf(&line, "%s: %s", o->header_name, o->token);
		if (rc)
			goto cleanup;
		/* JSON requests and file downloads carry the same
		 * credentials */
		l = cu.curl_slist_append(h->headers, line.data);
		if (l)
			h->headers = l;
		l = l ? cu.curl_slist_append(h->dl_headers, line.data) : NULL;
		if (!l) {
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
			goto cleanup;
		}
		h->dl_headers = l;
		break;
	}
cleanup:
	if (line.data)
		explicit_bzero(line.data, line.len);
	pex_buf_free(&line);
	return rc;
}

int hj_http_open(struct hj_http *h, struct pex_source *src,
		 const struct hj_http_opts *o)
{
	struct curl_slist *l;
	int rc;

	memset(h, 0, sizeof(*h));
	h->o = *o;
	h->src = src;
	pex_buf_init(&h->body, (size_t)o->max_response_bytes + 1);
	rc = curl_ready();
	if (rc)
		return rc;
	rc = origin_of(o->base_url, &h->origin_scheme, &h->origin_host,
		       &h->origin_port);
	if (rc)
		return pex_error_set(PEX_EINVALID, "base_url is not an "
				     "absolute URL");
	if (strcmp(h->origin_scheme, "https") &&
	    strcmp(h->origin_scheme, "http"))
		return pex_error_set(PEX_EINVALID, "base_url must be http or "
				     "https, not %s", h->origin_scheme);
	/* loopback traffic never leaves the machine */
	if (!strcmp(h->origin_scheme, "http") && o->auth != HJ_AUTH_NONE &&
	    strcmp(h->origin_host, "127.0.0.1") &&
	    strcmp(h->origin_host, "localhost") &&
	    strcmp(h->origin_host, "[::1]"))
		pex_source_log(src, PEX_LOG_WARN, "credentials are sent "
			       "without TLS (base_url is http://)");
	h->curl = cu.curl_easy_init();
	if (!h->curl)
		return pex_error_set(PEX_ENOMEM, "cannot create a curl "
				     "handle");
	l = cu.curl_slist_append(NULL, "Accept: application/json");
	if (!l)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	h->headers = l;
	l = cu.curl_slist_append(NULL, "Accept: */*");
	if (!l)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	h->dl_headers = l;
	/* curl keeps the credentials it manages (basic, bearer) and an
	 * Authorization or Cookie header from other hosts when it follows a
	 * redirect, but sends a header of any other name (X-Api-Key) on to
	 * wherever the tracker points: with auth: header, redirects are
	 * followed by perform(), and off the origin without it */
	h->follow_here = o->auth == HJ_AUTH_HEADER;
	if (h->follow_here) {
		h->headers_anon = cu.curl_slist_append(NULL, "Accept: "
						       "application/json");
		h->dl_headers_anon = cu.curl_slist_append(NULL,
							  "Accept: */*");
		if (!h->headers_anon || !h->dl_headers_anon)
			return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	rc = set_auth(h);
	if (rc)
		return rc;
	(cu.curl_easy_setopt)(h->curl, CURLOPT_HTTPHEADER, h->headers);
	(cu.curl_easy_setopt)(h->curl, CURLOPT_USERAGENT, "portex/" PEX_VERSION);
	(cu.curl_easy_setopt)(h->curl, CURLOPT_NOSIGNAL, 1L);
	/* http and https only, redirects too: an older libcurl (before
	 * 7.85) without these options must not go on without the rule */
	if ((cu.curl_easy_setopt)(h->curl, CURLOPT_PROTOCOLS_STR,
				  "http,https") != CURLE_OK ||
	    (cu.curl_easy_setopt)(h->curl, CURLOPT_REDIR_PROTOCOLS_STR,
				  "http,https") != CURLE_OK)
		return pex_error_set(PEX_ERROR, "this libcurl cannot "
				     "be limited to http and https (7.85 "
				     "or later is needed)");
	(cu.curl_easy_setopt)(h->curl, CURLOPT_FOLLOWLOCATION,
			 h->follow_here ? 0L : 1L);
	(cu.curl_easy_setopt)(h->curl, CURLOPT_MAXREDIRS, o->max_redirects);
	/* credentials never follow a redirect to another host */
	(cu.curl_easy_setopt)(h->curl, CURLOPT_UNRESTRICTED_AUTH, 0L);
	(cu.curl_easy_setopt)(h->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 o->connect_timeout_ms);
	(cu.curl_easy_setopt)(h->curl, CURLOPT_TIMEOUT_MS, o->timeout_ms);
	(cu.curl_easy_setopt)(h->curl, CURLOPT_MAXFILESIZE_LARGE,
			 (curl_off_t)o->max_response_bytes);
	(cu.curl_easy_setopt)(h->curl, CURLOPT_ACCEPT_ENCODING, "");
	(cu.curl_easy_setopt)(h->curl, CURLOPT_SSL_VERIFYPEER,
			 o->tls_verify ? 1L : 0L);
	(cu.curl_easy_setopt)(h->curl, CURLOPT_SSL_VERIFYHOST,
			 o->tls_verify ? 2L : 0L);
	if (o->ca_file)
		(cu.curl_easy_setopt)(h->curl, CURLOPT_CAINFO, o->ca_file);
	(cu.curl_easy_setopt)(h->curl, CURLOPT_WRITEFUNCTION, on_body);
	(cu.curl_easy_setopt)(h->curl, CURLOPT_WRITEDATA, h);
	return 0;
}

void hj_http_close(struct hj_http *h)
{
	struct curl_slist *l;

	if (!h)
		return;
	if (h->curl)
		cu.curl_easy_cleanup(h->curl);
	for (l = h->headers; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	for (l = h->dl_headers; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	/* a handle opened without libcurl has none of these (and no
	 * table to free them with) */
	if (h->headers)
		cu.curl_slist_free_all(h->headers);
	if (h->dl_headers)
		cu.curl_slist_free_all(h->dl_headers);
	if (h->headers_anon)
		cu.curl_slist_free_all(h->headers_anon);
	if (h->dl_headers_anon)
		cu.curl_slist_free_all(h->dl_headers_anon);
	pex_buf_free(&h->body);
	free(h->origin_scheme);
	free(h->origin_host);
	free(h->origin_port);
	memset(h, 0, sizeof(*h));
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* application/json, or any type with the +json suffix (RFC 6839). */
static int is_json_type(const char *ct)
{
	size_t n;
	const char *semi;

	if (!ct)
		return 0;
	semi = strchr(ct, ';');
	n = semi ? (size_t)(semi - ct) : strlen(ct);
	while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	if (n == 16 && !strncasecmp(ct, "application/json", 16))
		return 1;
	return n > 5 && !strncasecmp(ct + n - 5, "+json", 5) &&
	       !strncasecmp(ct, "application/", 12);
}

/*
 * The rel="next" target of one Link header value (RFC 8288):
 * `<uri>; rel="next"; ..., <uri2>; rel=prev`. Returns a new string with
 * the URI as written, or NULL.
 */
static char *link_next(const char *v)
{
	const char *p = v;
	int entries = 0;

	while (*p && entries++ < HJ_LINK_TARGETS_MAX) {
		const char *lt, *gt, *end;
		int is_next = 0;

		lt = strchr(p, '<');
		if (!lt)
			return NULL;
		gt = strchr(lt, '>');
		if (!gt)
			return NULL;
		/* parameters run to the next comma outside quotes */
		end = gt + 1;
		{
			int quoted = 0;

			while (*end && (quoted || *end != ',')) {
				if (*end == '"')
					quoted = !quoted;
				end++;
			}
		}
		for (const char *q = gt + 1; q < end; q++) {
			const char *val;
			size_t vlen;

			if (strncasecmp(q, "rel", 3))
				continue;
			val = q + 3;
			while (val < end && *val == ' ')
				val++;
			if (val >= end || *val != '=')
				continue;
			val++;
			while (val < end && *val == ' ')
				val++;
			if (val < end && *val == '"')
				val++;
			/* rel may hold several space-separated types */
			while (val < end && *val != '"' && *val != ';') {
				vlen = strcspn(val, " \";,");
				if (vlen == 4 && !strncasecmp(val, "next", 4))
					is_next = 1;
				val += vlen;
				while (val < end && *val == ' ')
					val++;
			}
			break;
		}
		if (is_next)
			return strndup(lt + 1, (size_t)(gt - lt - 1));
		p = *end ? end + 1 : end;
	}
	return NULL;
}

/* The absolute URL of the response's Link rel="next", or NULL. */
static char *find_next(struct hj_http *h, const char *url, int *bad)
{
	struct curl_header *hdr;
	size_t i, amount = 1;
	char *eff = NULL;

	*bad = 0;
	for (i = 0; i < amount; i++) {
		char *ref;
		char *abs;

		if (cu.curl_easy_header(h->curl, "Link", i, CURLH_HEADER, -1,
				     &hdr) != CURLHE_OK)
			return NULL;
		amount = hdr->amount;
		ref = link_next(hdr->value);
		if (!ref)
			continue;
		(cu.curl_easy_getinfo)(h->curl, CURLINFO_EFFECTIVE_URL, &eff);
		abs = hj_url_resolve(eff ? eff : url, ref);
		free(ref);
		if (!abs)
			*bad = 1;
		return abs;
	}
	return NULL;
}

/* What to do after one attempt. */
enum outcome { DONE, RETRY, FAIL };

static enum outcome classify(struct hj_http *h, CURLcode cc, long status,
			     const char *what, long *wait_ms, int *code,
			     char *why, size_t whysz)
{
	curl_off_t ra = -1;

	*code = PEX_EIO;
	switch (cc) {
	case CURLE_OK:
		break;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(why, whysz, "%s: no complete response within %ld ms",
			 what, h->o.timeout_ms);
		return RETRY;
	case CURLE_COULDNT_CONNECT:
		snprintf(why, whysz, "%s: cannot connect to %s port %s "
			 "(connection refused or unreachable)", what,
			 h->origin_host, h->origin_port);
		return RETRY;
	case CURLE_COULDNT_RESOLVE_HOST:
		snprintf(why, whysz, "%s: cannot resolve host %s", what,
			 h->origin_host);
		return RETRY;
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		snprintf(why, whysz, "%s: connection dropped: %s", what,
			 cu.curl_easy_strerror(cc));
		return RETRY;
	case CURLE_FILESIZE_EXCEEDED:
	case CURLE_WRITE_ERROR:
		if (cc == CURLE_FILESIZE_EXCEEDED || h->oversize) {
			*code = PEX_ELIMIT;
			snprintf(why, whysz, "%s: response larger than "
				 "max_response_bytes (%lld)", what,
				 h->o.max_response_bytes);
			return FAIL;
		}
		snprintf(why, whysz, "%s: %s", what, cu.curl_easy_strerror(cc));
		return FAIL;
	case CURLE_TOO_MANY_REDIRECTS:
		*code = PEX_ELIMIT;
		snprintf(why, whysz, "%s: more than %ld redirects (a "
			 "redirect loop?)", what, h->o.max_redirects);
		return FAIL;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
		snprintf(why, whysz, "%s: TLS failed: %s", what,
			 cu.curl_easy_strerror(cc));
		return FAIL;
	default:
		snprintf(why, whysz, "%s: %s", what, cu.curl_easy_strerror(cc));
		return FAIL;
	}
	if (status >= 200 && status < 300)
		return DONE;
	if (status == 429 || status == 503) {
		(cu.curl_easy_getinfo)(h->curl, CURLINFO_RETRY_AFTER, &ra);
		if (ra > 0) {
			long long ms = (long long)ra * 1000;

			if (ms > h->o.max_retry_after_ms)
				ms = h->o.max_retry_after_ms;
			*wait_ms = (long)ms;
		}
		if (ra > 0)
			snprintf(why, whysz,
				 "%s: HTTP %ld, Retry-After %lld s", what,
				 status, (long long)ra);
		else
			snprintf(why, whysz, "%s: HTTP %ld", what, status);
		return RETRY;
	}
	if (status >= 500) {
		snprintf(why, whysz, "%s: HTTP %ld (server error)", what,
			 status);
		return RETRY;
	}
	if (status == 401 || status == 403) {
		snprintf(why, whysz, "%s: HTTP %ld: the tracker refused the "
			 "credentials", what, status);
		return FAIL;
	}
	if (status == 404)
		*code = PEX_ENOTFOUND;
	if (status >= 300 && status < 400)
		snprintf(why, whysz, "%s: HTTP %ld redirect without a usable "
			 "Location", what, status);
	else
		snprintf(why, whysz, "%s: HTTP %ld", what, status);
	return FAIL;
}

/* The wait before attempt + 1: backoff_ms doubled per attempt. */
static long backoff(const struct hj_http *h, long attempt)
{
	long wait_ms = h->o.backoff_ms << (attempt - 1 < 16 ? attempt - 1
							   : 16);

	if (wait_ms > HJ_BACKOFF_CAP_MS || wait_ms < 0)
		wait_ms = HJ_BACKOFF_CAP_MS;
	return wait_ms;
}

/* Where a redirect leads, as curl's own following would take it: the
 * Location resolved against the URL that answered, spaces and other
 * bytes a URL cannot hold encoded; http or https only. NULL (and *cc)
 * when there is none to follow. */
static char *redirect_target(struct hj_http *h, CURLcode *cc)
{
	struct curl_header *loc = NULL;
	char *eff = NULL, *out = NULL, *scheme = NULL;
	CURLU *u;

	*cc = CURLE_OK;
	if (cu.curl_easy_header(h->curl, "Location", 0, CURLH_HEADER, -1,
				&loc) != CURLHE_OK || !loc->value[0])
		return NULL; /* classify() says: without a usable Location */
	(cu.curl_easy_getinfo)(h->curl, CURLINFO_EFFECTIVE_URL, &eff);
	u = cu.curl_url();
	if (!u) {
		*cc = CURLE_OUT_OF_MEMORY;
		return NULL;
	}
	if ((eff && cu.curl_url_set(u, CURLUPART_URL, eff, 0) != CURLUE_OK) ||
	    cu.curl_url_set(u, CURLUPART_URL, loc->value,
			    CURLU_URLENCODE | CURLU_ALLOW_SPACE) !=
	    CURLUE_OK ||
	    cu.curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcasecmp(scheme, "http") && strcasecmp(scheme, "https")) ||
	    cu.curl_url_get(u, CURLUPART_URL, &out, 0) != CURLUE_OK) {
		*cc = CURLE_UNSUPPORTED_PROTOCOL;
		out = NULL;
	}
	if (scheme)
		cu.curl_free(scheme);
	cu.curl_url_cleanup(u);
	if (out) { /* ours to free() */
		char *copy = strdup(out);

		cu.curl_free(out);
		out = copy;
		if (!out)
			*cc = CURLE_OUT_OF_MEMORY;
	}
	return out;
}

/*
 * One request for url, with the headers given, following its redirects:
 * curl follows them itself unless h->follow_here (see hj_http_open);
 * then each hop is made here, up to max_redirects, and one off base_url's
 * origin goes with anon, the headers without the credential. As with
 * curl's following, timeout_ms bounds the whole attempt, not each hop,
 * and a redirect's body is dropped (redirect_body()).
 */
static CURLcode perform(struct hj_http *h, const char *url,
			struct curl_slist *with, struct curl_slist *anon)
{
	double deadline = pex_time_monotonic() + h->o.timeout_ms / 1000.0;
	char *hop = NULL;
	long hops = 0;
	CURLcode cc;

	(cu.curl_easy_setopt)(h->curl, CURLOPT_URL, url);
	(cu.curl_easy_setopt)(h->curl, CURLOPT_HTTPHEADER, with);
	for (;;) {
		long status = 0, left_ms;
		char *next;

		cc = cu.curl_easy_perform(h->curl);
		if (!h->follow_here || cc != CURLE_OK)
			break;
		(cu.curl_easy_getinfo)(h->curl, CURLINFO_RESPONSE_CODE, &status);
		if (status < 300 || status > 399)
			break;
		next = redirect_target(h, &cc);
		if (!next)
			break;
		free(hop);
		hop = next;
		if (++hops > h->o.max_redirects) {
			cc = CURLE_TOO_MANY_REDIRECTS;
			break;
		}
		left_ms = (long)((deadline - pex_time_monotonic()) * 1000.0);
		if (left_ms <= 0) {
			cc = CURLE_OPERATION_TIMEDOUT;
			break;
		}
		pex_buf_reset(&h->body);
		(cu.curl_easy_setopt)(h->curl, CURLOPT_TIMEOUT_MS, left_ms);
		(cu.curl_easy_setopt)(h->curl, CURLOPT_URL, hop);
		(cu.curl_easy_setopt)(h->curl, CURLOPT_HTTPHEADER,
				 hj_http_same_origin(h, hop) ? with : anon);
	}
	if (hops)
		(cu.curl_easy_setopt)(h->curl, CURLOPT_TIMEOUT_MS,
				 h->o.timeout_ms);
	free(hop);
	return cc;
}

int hj_http_get(struct hj_http *h, const char *url, json_t **out,
		char **next)
{
	char what[512], path[400], why[768] = "";
	long attempt, status = 0;
	int code = PEX_EIO;

	*out = NULL;
	if (next)
		*next = NULL;
	path_of(url, path, sizeof(path));
	snprintf(what, sizeof(what), "GET %s", path);
	if (strlen(url) > HJ_URL_MAX)
		return pex_error_set(PEX_ELIMIT, "%s: URL longer than %d "
				     "bytes", what, HJ_URL_MAX);
	if (!hj_http_same_origin(h, url))
		return pex_error_set(PEX_EINVALID, "%s: URL leaves the origin "
				     "of base_url; refused", what);
	for (attempt = 1;; attempt++) {
		CURLcode cc;
		long wait_ms;
		enum outcome oc;

		pex_buf_reset(&h->body);
		h->oversize = 0;
		h->requests++;
		cc = perform(h, url, h->headers, h->headers_anon);
		status = 0;
		(cu.curl_easy_getinfo)(h->curl, CURLINFO_RESPONSE_CODE, &status);
		wait_ms = backoff(h, attempt);
		oc = classify(h, cc, status, what, &wait_ms, &code, why,
			      sizeof(why));
		if (oc == DONE)
			break;
		if (oc == FAIL)
			return pex_error_set(code, "%s", why);
		if (attempt >= h->o.max_attempts)
			return pex_error_set(code, "%s; gave up after %ld "
					     "attempts", why, attempt);
		pex_source_log(h->src, PEX_LOG_WARN, "%s; retrying in %ld ms "
			       "(attempt %ld of %ld)", why, wait_ms,
			       attempt + 1, h->o.max_attempts);
		h->retries++;
		sleep_ms(wait_ms);
	}
	{
		char *ct = NULL;
		json_error_t err;
		int bad = 0;

		(cu.curl_easy_getinfo)(h->curl, CURLINFO_CONTENT_TYPE, &ct);
		if (!is_json_type(ct))
			return pex_error_set(PEX_EINVALID, "%s: HTTP %ld with "
					     "content type %.80s, not JSON",
					     what, status,
					     ct ? ct : "(none)");
		*out = json_loadb(h->body.data ? h->body.data : "",
				  h->body.len, 0, &err);
		if (!*out)
			return pex_error_set(PEX_EINVALID,
					     "%s: malformed JSON "
					     "(%zu bytes) at line %d column "
					     "%d: %s", what, h->body.len,
					     err.line, err.column, err.text);
		if (next) {
			*next = find_next(h, url, &bad);
			if (bad) {
				json_decref(*out);
				*out = NULL;
				return pex_error_set(PEX_EINVALID, "%s: "
						     "unusable Link rel=next",
						     what);
			}
		}
	}
	/* A page can be megabytes; keep the memory of the largest only
	 * while it is needed. */
	if (h->body.cap > (1u << 20)) {
		pex_buf_free(&h->body);
		pex_buf_init(&h->body, (size_t)h->o.max_response_bytes + 1);
	}
	return 0;
}

/* ---- file downloads ----------------------------------------------------- */

struct dl {
	struct hj_http *h;
	const struct hj_sink *sink;
	unsigned long long max;
	unsigned long long got;  /* body bytes the sink took this attempt */
	unsigned long long junk; /* bytes of an error page, dropped */
	int over;
	int sink_rc;
};

static size_t on_file(char *data, size_t size, size_t n, void *ud)
{
	struct dl *d = ud;
	size_t len = size * n;
	long status = 0;
	int rc;

	if (redirect_body(d->h))
		return len;
	(cu.curl_easy_getinfo)(d->h->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status >= 300) {
		/* an error page (or a redirect's body): not the file */
		d->junk += len;
		if (d->junk > (unsigned long long)d->h->o.max_response_bytes) {
			d->h->oversize = 1;
			return 0;
		}
		return len;
	}
	if (len > d->max - d->got) {
		d->over = 1;
		return 0; /* stops the transfer: CURLE_WRITE_ERROR */
	}
	rc = d->sink->write(d->sink->ud, data, len);
	if (rc) {
		d->sink_rc = rc;
		return 0;
	}
	d->got += len;
	return len;
}

int hj_http_download(struct hj_http *h, const char *url,
		     unsigned long long max_bytes, const struct hj_sink *sink,
		     int *too_large)
{
	/* never the path: a download URL can carry an access token */
	static const char what[] = "attachment download";
	struct dl d = { h, sink, max_bytes, 0, 0, 0, 0 };
	char why[768] = "";
	long attempt, status = 0;
	int code = PEX_EIO, rc = 0;

	*too_large = 0;
	if (strlen(url) > HJ_URL_MAX)
		return pex_error_set(PEX_ELIMIT, "%s: URL longer than %d "
				     "bytes", what, HJ_URL_MAX);
	if (!hj_http_same_origin(h, url))
		return pex_error_set(PEX_EINVALID, "%s: the URL is not on "
				     "the tracker (the origin of base_url), "
				     "so it was not fetched", what);
	(cu.curl_easy_setopt)(h->curl, CURLOPT_WRITEFUNCTION, on_file);
	(cu.curl_easy_setopt)(h->curl, CURLOPT_WRITEDATA, &d);
	(cu.curl_easy_setopt)(h->curl, CURLOPT_MAXFILESIZE_LARGE,
			 (curl_off_t)(max_bytes > (unsigned long long)
				      INT64_MAX ? INT64_MAX : max_bytes));
	for (attempt = 1;; attempt++) {
		CURLcode cc;
		long wait_ms;
		enum outcome oc;

		if (d.got) {
			/* part of the file arrived before the fault */
			rc = sink->restart(sink->ud);
			if (rc)
				goto cleanup;
			d.got = 0;
		}
		d.junk = 0;
		d.over = 0;
		h->oversize = 0;
		h->requests++;
		cc = perform(h, url, h->dl_headers, h->dl_headers_anon);
		status = 0;
		(cu.curl_easy_getinfo)(h->curl, CURLINFO_RESPONSE_CODE, &status);
		if (d.sink_rc) {
			rc = d.sink_rc; /* the sink's message stands */
			goto cleanup;
		}
		if (cc == CURLE_FILESIZE_EXCEEDED) {
			/* Content-Length over the limit: only a file is
			 * "too large"; an error page is judged by status */
			if (status >= 200 && status < 300)
				d.over = 1;
			else
				cc = CURLE_OK;
		}
		if (d.over) {
			*too_large = 1;
			rc = pex_error_set(PEX_ELIMIT, "larger than the limit "
					   "of %llu bytes", max_bytes);
			goto cleanup;
		}
		wait_ms = backoff(h, attempt);
		oc = classify(h, cc, status, what, &wait_ms, &code, why,
			      sizeof(why));
		if (oc == DONE)
			break;
		if (oc == FAIL) {
			rc = pex_error_set(code, "%s", why);
			goto cleanup;
		}
		if (attempt >= h->o.max_attempts) {
			rc = pex_error_set(code, "%s; gave up after %ld "
					   "attempts", why, attempt);
			goto cleanup;
		}
		pex_source_log(h->src, PEX_LOG_WARN, "%s; retrying in %ld ms "
			       "(attempt %ld of %ld)", why, wait_ms,
			       attempt + 1, h->o.max_attempts);
		h->retries++;
		sleep_ms(wait_ms);
	}
cleanup:
	/* back to JSON requests */
	(cu.curl_easy_setopt)(h->curl, CURLOPT_HTTPHEADER, h->headers);
	(cu.curl_easy_setopt)(h->curl, CURLOPT_WRITEFUNCTION, on_body);
	(cu.curl_easy_setopt)(h->curl, CURLOPT_WRITEDATA, h);
	(cu.curl_easy_setopt)(h->curl, CURLOPT_MAXFILESIZE_LARGE,
			 (curl_off_t)h->o.max_response_bytes);
	return rc;
}
