/*
 * Internals of the http_json collector, shared by its files:
 *
 *   hj_http.c     one libcurl easy handle per source: GET a URL and hand
 *                 back the parsed JSON, with timeouts, a size cap, TLS
 *                 checks, redirects, retries, 429 Retry-After and the
 *                 Link rel="next" of the response; or stream a file's
 *                 body to a sink (attachments) under the same rules
 *   hj_map.c      JSON Pointer, URL templates, and the mapping of one
 *                 ticket (with its messages) into the ticket model
 *   hj_html.c     the text of an HTML body (libxml2's HTML parser)
 *   hj_presets.c  the ready-made request and mapping definitions
 *
 * Ownership: functions returning json_t * or char * through an out
 * parameter hand a new reference / a malloc'd string to the caller;
 * const json_t * results of hj_pointer() and hj_pick() are borrowed from
 * the document they were picked from.
 */
#ifndef PEX_COLLECTORS_HTTP_JSON_HJ_H
#define PEX_COLLECTORS_HTTP_JSON_HJ_H

#include <stddef.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/buf.h"
#include "portex/collector.h"

#define HJ_URL_MAX 8192          /* longest URL built or followed */
#define HJ_TEXT_MAX (64u << 20)  /* longest value text handled */
#define HJ_BACKOFF_CAP_MS 30000  /* longest wait between two attempts */
#define HJ_LINK_TARGETS_MAX 64   /* Link header entries looked at */

enum hj_auth {
	HJ_AUTH_NONE = 0,
	HJ_AUTH_BEARER,
	HJ_AUTH_BASIC,
	HJ_AUTH_HEADER,
};

struct hj_http_opts {
	const char *base_url;
	enum hj_auth auth;
	const char *token;       /* bearer token or header value (secret) */
	const char *user;
	const char *password;    /* secret */
	const char *header_name; /* HJ_AUTH_HEADER */
	const char *ca_file;
	int tls_verify;
	long connect_timeout_ms;
	long timeout_ms;
	long long max_response_bytes;
	long max_attempts;
	long backoff_ms;
	long max_retry_after_ms;
	long max_redirects;
};

struct hj_http {
	CURL *curl;
	struct curl_slist *headers;    /* JSON requests */
	struct curl_slist *dl_headers; /* file downloads */
	/* auth: header only: the same without the credential, for a
	 * redirect off base_url's origin, which portex follows itself */
	struct curl_slist *headers_anon, *dl_headers_anon;
	int follow_here;
	struct pex_buf body;
	int oversize;            /* the body passed max_response_bytes */
	struct hj_http_opts o;
	struct pex_source *src;
	char *origin_scheme;
	char *origin_host;
	char *origin_port;
	unsigned long long requests; /* every attempt, for the log */
	unsigned long long retries;
};

/* Set up the handle. o's strings are borrowed and must outlive h. */
int hj_http_open(struct hj_http *h, struct pex_source *src,
		 const struct hj_http_opts *o);
/* Accepts a zeroed or closed h. Wipes the secrets curl was given. */
void hj_http_close(struct hj_http *h);

/* tests: load libcurl by this name instead (before any other call) */
void hj_http_library(const char *soname);

/*
 * GET url (absolute; it must have the base URL's origin) and parse the
 * body as JSON. *out: new reference. *next (may be NULL): a new string,
 * the absolute URL of the response's Link rel="next", or NULL. Transient
 * faults (5xx, 429, timeouts, refused or dropped connections) are retried
 * up to max_attempts; everything else fails at once. The error message
 * names the path, never the query (it carries the subject's identity).
 */
int hj_http_get(struct hj_http *h, const char *url, json_t **out,
		char **next);

/*
 * Where a download's body goes. write() gets the body of a 2xx response
 * in pieces, never the body of an error page; a non-zero return stops
 * the download and is handed back as it is. restart() is called before
 * an attempt that follows one which already wrote part of the body (a
 * connection dropped mid-file): the sink discards what it has.
 */
struct hj_sink {
	int (*write)(void *ud, const void *data, size_t len);
	int (*restart)(void *ud);
	void *ud;
};

/*
 * GET url (absolute, same origin as base_url) with the same credentials,
 * TLS, timeouts, redirects and retries as hj_http_get(), streaming the
 * body to sink; nothing is held in memory. A body longer than max_bytes
 * (by its Content-Length, or as it arrives) stops the download with
 * PEX_ELIMIT "larger than the limit of N bytes" and *too_large set
 * (otherwise 0). Other failures after
 * the retries give a negative code; the message never names the URL
 * (download URLs can carry access tokens). A sink error is returned
 * as the sink gave it.
 */
int hj_http_download(struct hj_http *h, const char *url,
		     unsigned long long max_bytes, const struct hj_sink *sink,
		     int *too_large);

/* 1 when url (absolute) has the same scheme, host and port as the base
 * URL, 0 when not or when it does not parse. */
int hj_http_same_origin(const struct hj_http *h, const char *url);

/* Resolve ref (absolute or relative) against base. New string or NULL
 * (unparseable, or longer than HJ_URL_MAX). */
char *hj_url_resolve(const char *base, const char *ref);

/* ---- mapping ---------------------------------------------------------- */

/* RFC 6901 JSON Pointer; "" is the whole document. Borrowed; NULL when
 * absent or when ptr is not a pointer. */
const json_t *hj_pointer(const json_t *doc, const char *ptr);

/* spec: a pointer string, an array of pointers (the first that yields a
 * non-null value wins), or an object with "pointer" holding either.
 * Borrowed; NULL when nothing is there or the value is null. */
const json_t *hj_pick(const json_t *doc, const json_t *spec);

/* Text of a scalar: strings as they are, integers in decimal, reals
 * with %.17g, booleans as true/false. Resets out. Returns 0, or
 * PEX_EINVALID for null, objects and arrays. */
int hj_scalar_text(const json_t *v, struct pex_buf *out);

/*
 * Expand {name} in tpl from vars (an object of strings); with url_encode
 * each value is percent-encoded (RFC 3986 unreserved characters kept).
 * "{{" and "}}" stand for braces. An unknown name fails (PEX_EINVALID).
 */
int hj_template(const char *tpl, const json_t *vars, int url_encode,
		struct pex_buf *out);

/* Names used in tpl: new array of strings. PEX_EINVALID on a stray
 * brace or an empty or overlong name. */
int hj_template_names(const char *tpl, json_t **out);

/* The top-level keys a mapping spec reads with one-segment pointers
 * ("/title" reads "title"): added to keys (an object used as a set). */
void hj_spec_keys(const json_t *spec, json_t *keys);

/*
 * Called for each attachment of a message while a ticket is mapped.
 * spec: the "attachments" spec; att: the source's attachment object;
 * msg: the message object it belongs to. *entry holds, on entry, a new
 * object {name, media_type?, bytes?} from the source's metadata; the
 * callback replaces it (releasing the old one) with the entry the
 * message lists: the stored file or the reason it is withheld. A
 * non-zero return fails the ticket (and the source).
 */
typedef int (*hj_att_fn)(void *ud, const json_t *spec, const json_t *att,
			 const json_t *msg, json_t **entry);

/*
 * Build one ticket record. map: the merged definition ("fields",
 * "message_fields", "initial_message", "ignore"); ticket: the ticket
 * object; messages: array of message objects (may be NULL); id: the
 * ticket's id text; vars: template variables of this run (for direction
 * values like "{user_id}"); tkeys/mkeys: keys the mapping reads (they do
 * not go into extra); att_fn (may be NULL: attachments are listed as
 * withheld) and att_ud: what becomes of each attachment. *out: new
 * reference.
 */
int hj_map_ticket(struct pex_source *src, const json_t *map,
		  const json_t *ticket, const json_t *messages,
		  const char *id, const json_t *vars,
		  const struct pex_identity *matched_by, const json_t *tkeys,
		  const json_t *mkeys, hj_att_fn att_fn, void *att_ud,
		  json_t **out);

/* The readable text of an HTML fragment: text nodes in document order,
 * line breaks for <br> and block elements, <script>/<style> dropped,
 * runs of blank lines collapsed. Resets out. */
int hj_html_text(const char *html, size_t len, struct pex_buf *out);

/* ---- presets ---------------------------------------------------------- */

/* The definition of a named preset: new reference, or NULL when there is
 * no such preset. hj_preset_names(): "zammad, freshdesk". */
json_t *hj_preset(const char *name);
const char *hj_preset_names(void);

#endif
