/*
 * The http_json collector: service tickets from a ticket tracker's REST
 * API (libcurl, JSON).
 *
 * For each identity of the subject whose type is in `identity_types`
 * (weak identities never), it optionally looks the person up (`lookup`:
 * a user search whose hits must carry exactly the identity), searches
 * their tickets (`search`), fetches each ticket's details (`details`) and
 * messages (`messages`), checks that the ticket's requester is the person
 * (`requester_check`), maps it (`fields`, `message_fields`,
 * `initial_message`) and emits one ticket record. A preset (zammad,
 * freshdesk) fills all of these; options beside it override.
 *
 * A ticket the search returned whose requester is someone else is not
 * emitted (a sloppy search must not leak another person's ticket); it is
 * counted in the warnings. Any HTTP or format fault fails the source:
 * there is no partial success that could look complete. The one
 * exception is an attachment file: it is downloaded into the bundle
 * (pex_source_attachment_begin) and, when it cannot be had, listed in
 * its message as withheld with the reason (see on_attachment()).
 *
 * Ownership: the engine owns the option values in struct hj_ctx; init()
 * builds the merged definition and the HTTP handle and releases them on
 * failure; fini() releases them after a successful init().
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collectors/http_json/hj.h"
#include "core/text.h"
#include "portex/collector.h"
#include "portex/error.h"

#define HJ_ID_MAX 1000 /* a ticket id longer than this is refused */
#define HJ_ATTACHMENT_MAX (1LL << 40) /* highest max_attachment_bytes */

struct hj_ctx {
	/* options (engine-owned) */
	char *base_url;
	char *preset;
	char *auth;
	char *auth_token;
	char *auth_user;
	char *auth_password;
	char *auth_header;
	char *ca_file;
	int tls_verify;
	json_t *o_lookup;
	json_t *o_search;
	json_t *o_details;
	json_t *o_messages;
	json_t *o_requester_check;
	json_t *o_fields;
	json_t *o_message_fields;
	json_t *o_initial_message;
	json_t *o_ignore;
	char *ticket_id;
	char **identity_types;
	long long max_pages;
	long long per_page;
	long long connect_timeout_ms;
	long long timeout_ms;
	long long max_response_bytes;
	long long max_attempts;
	long long retry_backoff_ms;
	long long max_retry_after_ms;
	long long max_redirects;
	long long max_attachment_bytes;
	int download_attachments;
	/* state (init/fini) */
	json_t *def;   /* the merged definition */
	json_t *tkeys; /* ticket members the mapping reads */
	json_t *mkeys; /* message members the mapping reads */
	char *base;    /* base_url without a trailing slash */
	char *ca_path;
	struct hj_http http;
	int http_open;
};

#define OFF(f) offsetof(struct hj_ctx, f)

static const struct pex_config_map hj_config[] = {
	{ PEX_OPT_STR, "base_url", NULL, PEX_OPT_REQUIRED, OFF(base_url),
	  "the tracker's address, https://host[:port][/prefix]" },
	{ PEX_OPT_STR, "preset", NULL, 0, OFF(preset),
	  "a ready-made definition: zammad or freshdesk" },
	{ PEX_OPT_STR, "auth", "none", 0, OFF(auth),
	  "none, bearer, basic or header" },
	{ PEX_OPT_STR, "auth_token", NULL, PEX_OPT_SECRET, OFF(auth_token),
	  "bearer token, or the value of the auth_header header" },
	{ PEX_OPT_STR, "auth_user", NULL, PEX_OPT_SECRET, OFF(auth_user),
	  "basic auth user name" },
	{ PEX_OPT_STR, "auth_password", NULL, PEX_OPT_SECRET,
	  OFF(auth_password), "basic auth password" },
	{ PEX_OPT_STR, "auth_header", NULL, 0, OFF(auth_header),
	  "header name for auth: header (e.g. Authorization, X-Api-Key)" },
	{ PEX_OPT_STR, "ca_file", NULL, 0, OFF(ca_file),
	  "PEM file of CA certificates to trust instead of the system's" },
	{ PEX_OPT_BOOL, "tls_verify", "true", 0, OFF(tls_verify),
	  "verify the server's certificate and name" },
	{ PEX_OPT_JSON, "lookup", NULL, 0, OFF(o_lookup),
	  "request finding the person's user id (or false)" },
	{ PEX_OPT_JSON, "search", NULL, 0, OFF(o_search),
	  "request listing the person's tickets" },
	{ PEX_OPT_JSON, "details", NULL, 0, OFF(o_details),
	  "request fetching one ticket, {id} (or false)" },
	{ PEX_OPT_JSON, "messages", NULL, 0, OFF(o_messages),
	  "request listing one ticket's messages, {id} (or false)" },
	{ PEX_OPT_JSON, "requester_check", NULL, 0, OFF(o_requester_check),
	  "{pointer, equals}: the ticket's requester must be the person" },
	{ PEX_OPT_JSON, "fields", NULL, 0, OFF(o_fields),
	  "ticket model field: JSON Pointer into the ticket" },
	{ PEX_OPT_JSON, "message_fields", NULL, 0, OFF(o_message_fields),
	  "message model field: JSON Pointer into a message" },
	{ PEX_OPT_JSON, "initial_message", NULL, 0, OFF(o_initial_message),
	  "message fields read from the ticket itself (its description)" },
	{ PEX_OPT_JSON, "ignore", NULL, 0, OFF(o_ignore),
	  "members left out of extra" },
	{ PEX_OPT_STR, "ticket_id", NULL, 0, OFF(ticket_id),
	  "JSON Pointer to a ticket's id (default /id)" },
	{ PEX_OPT_STRLIST, "identity_types", "email", 0, OFF(identity_types),
	  "identity types searched for" },
	{ PEX_OPT_INT, "max_pages", "1000", 0, OFF(max_pages),
	  "most pages read from one listing; more fails the source" },
	{ PEX_OPT_INT, "per_page", "100", 0, OFF(per_page),
	  "page size asked for" },
	{ PEX_OPT_INT, "connect_timeout_ms", "10000", 0,
	  OFF(connect_timeout_ms), "connection timeout" },
	{ PEX_OPT_INT, "timeout_ms", "60000", 0, OFF(timeout_ms),
	  "timeout of one whole request" },
	{ PEX_OPT_INT, "max_response_bytes", "33554432", 0,
	  OFF(max_response_bytes), "largest response body accepted" },
	{ PEX_OPT_INT, "max_attempts", "4", 0, OFF(max_attempts),
	  "attempts per request on transient faults" },
	{ PEX_OPT_INT, "retry_backoff_ms", "500", 0, OFF(retry_backoff_ms),
	  "first wait before a retry; doubles each time" },
	{ PEX_OPT_INT, "max_retry_after_ms", "60000", 0,
	  OFF(max_retry_after_ms), "longest Retry-After wait honoured" },
	{ PEX_OPT_INT, "max_redirects", "5", 0, OFF(max_redirects),
	  "redirects followed per request" },
	{ PEX_OPT_INT, "max_attachment_bytes", "26214400", 0,
	  OFF(max_attachment_bytes),
	  "largest attachment file kept; a larger one is withheld" },
	{ PEX_OPT_BOOL, "download_attachments", "true", 0,
	  OFF(download_attachments),
	  "download attachment files into the bundle" },
	{ .name = NULL },
};

/* ---- init -------------------------------------------------------------- */

static int range(const char *name, long long v, long long lo, long long hi)
{
	if (v < lo || v > hi)
		return pex_error_set(PEX_EINVALID, "option '%s' must be "
				     "between %lld and %lld", name, lo, hi);
	return 0;
}

/* Options beside the preset: requests replace, field maps extend. */
static int merge(struct hj_ctx *c, const char *key, json_t *opt, int extend)
{
	json_t *cur = json_object_get(c->def, key);

	if (!opt)
		return 0;
	if (extend && json_is_object(cur) && json_is_object(opt)) {
		json_t *copy = json_copy(cur);

		if (!copy || json_object_update(copy, opt) ||
		    json_object_set_new(c->def, key, copy))
			return pex_error_set(PEX_ENOMEM, "out of memory");
		return 0;
	}
	return json_object_set(c->def, key, opt) ?
	       pex_error_set(PEX_ENOMEM, "out of memory") : 0;
}

static int is_pointer(const json_t *v)
{
	const char *s = json_string_value(v);

	return s && (!*s || *s == '/');
}

/* Names a template may use, and whether it must use an identity. */
struct tpl_rule {
	const json_t *allowed; /* object used as a set */
	int need_identity;
};

static int check_template(struct hj_ctx *c, const char *what,
			  const char *tpl, const struct tpl_rule *r)
{
	json_t *names = NULL;
	size_t i;
	int rc, has_id = 0;

	rc = hj_template_names(tpl, &names);
	if (rc)
		return pex_error_wrap(rc, "%s", what);
	for (i = 0; i < json_array_size(names); i++) {
		const char *n = json_string_value(json_array_get(names, i));
		const json_t *kind = json_object_get(r->allowed, n);

		if (!kind) {
			rc = pex_error_set(PEX_EINVALID, "%s: {%s} has no "
					   "value there", what, n);
			goto cleanup;
		}
		if (json_is_true(kind))
			has_id = 1;
	}
	if (r->need_identity && !has_id)
		rc = pex_error_set(PEX_EINVALID, "%s: the path uses no "
				   "identity ({email}, ...), so it would "
				   "return everyone's tickets", what);
cleanup:
	json_decref(names);
	(void)c;
	return rc;
}

static int check_request(struct hj_ctx *c, const char *what,
			 const json_t *req, const struct tpl_rule *r,
			 int has_list)
{
	const json_t *path = json_object_get(req, "path");
	const json_t *pag = json_object_get(req, "pagination");
	const char *type;
	int rc;

	if (!json_is_object(req))
		return pex_error_set(PEX_EINVALID, "%s must be a map with a "
				     "path", what);
	if (!json_is_string(path) || json_string_value(path)[0] != '/')
		return pex_error_set(PEX_EINVALID, "%s.path must be a string "
				     "starting with /", what);
	rc = check_template(c, what, json_string_value(path), r);
	if (rc)
		return rc;
	if (has_list && !is_pointer(json_object_get(req, "list")))
		return pex_error_set(PEX_EINVALID, "%s.list must be a JSON "
				     "Pointer (\"\" for the whole body)",
				     what);
	if (!has_list && json_object_get(req, "item") &&
	    !is_pointer(json_object_get(req, "item")))
		return pex_error_set(PEX_EINVALID, "%s.item must be a JSON "
				     "Pointer", what);
	if (!pag)
		return 0;
	type = json_string_value(json_object_get(pag, "type"));
	if (!type)
		return pex_error_set(PEX_EINVALID, "%s.pagination.type is "
				     "required", what);
	if (!strcmp(type, "cursor") &&
	    (!is_pointer(json_object_get(pag, "cursor")) ||
	     !json_is_string(json_object_get(pag, "param"))))
		return pex_error_set(PEX_EINVALID, "%s.pagination: cursor "
				     "needs cursor (a pointer) and param",
				     what);
	if (!strcmp(type, "next_url") && !is_pointer(json_object_get(pag,
								      "next")))
		return pex_error_set(PEX_EINVALID, "%s.pagination: next_url "
				     "needs next (a pointer)", what);
	if (strcmp(type, "none") && strcmp(type, "page") &&
	    strcmp(type, "offset") && strcmp(type, "link") &&
	    strcmp(type, "cursor") && strcmp(type, "next_url"))
		return pex_error_set(PEX_EINVALID, "%s.pagination.type '%s' "
				     "is not none, page, offset, link, "
				     "cursor or next_url", what, type);
	return 0;
}

static int has_crlf(const char *s)
{
	return s && strpbrk(s, "\r\n") != NULL;
}

/* An attachments spec: a list pointer, and the download as either url
 * (a pointer to the attachment's URL) or path (a template on base_url
 * with {id}, {message_id}, {attachment_id}). */
static int check_attachments(struct hj_ctx *c, const char *what,
			     const json_t *spec, const struct tpl_rule *r)
{
	const json_t *path = json_object_get(spec, "path");
	const json_t *url = json_object_get(spec, "url");

	if (!spec)
		return 0;
	if (!json_is_object(spec) || !is_pointer(json_object_get(spec,
								   "list")))
		return pex_error_set(PEX_EINVALID, "%s must be a map with "
				     "list (a JSON Pointer)", what);
	if (path && url)
		return pex_error_set(PEX_EINVALID, "%s: give url or path, "
				     "not both", what);
	if (url && !is_pointer(url))
		return pex_error_set(PEX_EINVALID, "%s.url must be a JSON "
				     "Pointer to the attachment's URL", what);
	if (path && (!json_is_string(path) ||
		     json_string_value(path)[0] != '/'))
		return pex_error_set(PEX_EINVALID, "%s.path must be a string "
				     "starting with /", what);
	if (path)
		return check_template(c, what, json_string_value(path), r);
	return 0;
}

static int check_options(struct pex_source *src, struct hj_ctx *c,
			 struct hj_http_opts *o)
{
	int rc;

	memset(o, 0, sizeof(*o));
	if ((rc = range("max_pages", c->max_pages, 1, 1000000)) ||
	    (rc = range("per_page", c->per_page, 1, 10000)) ||
	    (rc = range("connect_timeout_ms", c->connect_timeout_ms, 1,
			3600000)) ||
	    (rc = range("timeout_ms", c->timeout_ms, 1, 86400000)) ||
	    (rc = range("max_response_bytes", c->max_response_bytes, 1,
			1LL << 30)) ||
	    (rc = range("max_attempts", c->max_attempts, 1, 20)) ||
	    (rc = range("retry_backoff_ms", c->retry_backoff_ms, 0,
			60000)) ||
	    (rc = range("max_retry_after_ms", c->max_retry_after_ms, 0,
			3600000)) ||
	    (rc = range("max_redirects", c->max_redirects, 0, 50)) ||
	    (rc = range("max_attachment_bytes", c->max_attachment_bytes, 1,
			HJ_ATTACHMENT_MAX)))
		return rc;
	o->base_url = c->base;
	if (!strcmp(c->auth, "none")) {
		o->auth = HJ_AUTH_NONE;
	} else if (!strcmp(c->auth, "bearer")) {
		o->auth = HJ_AUTH_BEARER;
	} else if (!strcmp(c->auth, "basic")) {
		o->auth = HJ_AUTH_BASIC;
	} else if (!strcmp(c->auth, "header")) {
		o->auth = HJ_AUTH_HEADER;
	} else {
		return pex_error_set(PEX_EINVALID, "option 'auth' must be "
				     "none, bearer, basic or header");
	}
	if ((o->auth == HJ_AUTH_BEARER || o->auth == HJ_AUTH_HEADER) &&
	    (!c->auth_token || !*c->auth_token))
		return pex_error_set(PEX_EINVALID, "auth %s needs auth_token",
				     c->auth);
	if (o->auth == HJ_AUTH_HEADER &&
	    (!c->auth_header || !*c->auth_header ||
	     strpbrk(c->auth_header, ": \t\r\n")))
		return pex_error_set(PEX_EINVALID, "auth header needs "
				     "auth_header, a header name");
	if (o->auth == HJ_AUTH_BASIC && (!c->auth_user || !*c->auth_user))
		return pex_error_set(PEX_EINVALID, "auth basic needs "
				     "auth_user");
	if (has_crlf(c->auth_token) || has_crlf(c->auth_user) ||
	    has_crlf(c->auth_password))
		return pex_error_set(PEX_EINVALID, "a credential contains a "
				     "line break");
	o->token = c->auth_token;
	o->user = c->auth_user;
	o->password = c->auth_password;
	o->header_name = c->auth_header;
	o->ca_file = c->ca_path;
	o->tls_verify = c->tls_verify;
	o->connect_timeout_ms = (long)c->connect_timeout_ms;
	o->timeout_ms = (long)c->timeout_ms;
	o->max_response_bytes = c->max_response_bytes;
	o->max_attempts = (long)c->max_attempts;
	o->backoff_ms = (long)c->retry_backoff_ms;
	o->max_retry_after_ms = (long)c->max_retry_after_ms;
	o->max_redirects = (long)c->max_redirects;
	if (!c->tls_verify)
		pex_source_log(src, PEX_LOG_WARN, "tls_verify is off: the "
			       "tracker's certificate is not checked");
	return 0;
}

static int check_definition(struct pex_source *src, struct hj_ctx *c)
{
	json_t *allowed = json_object();
	const json_t *lookup = json_object_get(c->def, "lookup");
	const json_t *details = json_object_get(c->def, "details");
	const json_t *messages = json_object_get(c->def, "messages");
	const json_t *check = json_object_get(c->def, "requester_check");
	struct tpl_rule r = { allowed, 1 };
	const char *var = NULL;
	size_t i;
	int rc = 0;

	if (!allowed)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	if (!c->identity_types || !c->identity_types[0]) {
		rc = pex_error_set(PEX_EINVALID, "identity_types is empty");
		goto cleanup;
	}
	for (i = 0; c->identity_types[i]; i++) {
		const char *t = c->identity_types[i];

		if (!*t || strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789_")
			   != strlen(t) || !strcmp(t, "id") ||
		    !strcmp(t, "identity") || !strcmp(t, "message_id") ||
		    !strcmp(t, "attachment_id")) {
			rc = pex_error_set(PEX_EINVALID, "identity_types: "
					   "'%s' is not an identity type", t);
			goto cleanup;
		}
		json_object_set_new(allowed, t, json_true());
	}
	json_object_set_new(allowed, "identity", json_true());
	if (lookup && !json_is_false(lookup)) {
		rc = check_request(c, "lookup", lookup, &r, 1);
		if (rc)
			goto cleanup;
		var = json_string_value(json_object_get(lookup, "var"));
		if (!var)
			var = "user_id";
		if (!is_pointer(json_object_get(lookup, "id")) ||
		    !is_pointer(json_object_get(lookup, "verify"))) {
			rc = pex_error_set(PEX_EINVALID, "lookup needs id and "
					   "verify (JSON Pointers): a user "
					   "is used only when verify holds "
					   "the identity");
			goto cleanup;
		}
		json_object_set_new(allowed, var, json_true());
	}
	rc = check_request(c, "search", json_object_get(c->def, "search"),
			   &r, 1);
	if (rc)
		goto cleanup;
	json_object_set_new(allowed, "id", json_false());
	r.need_identity = 0;
	if (details && !json_is_false(details) &&
	    (rc = check_request(c, "details", details, &r, 0)))
		goto cleanup;
	if (messages && !json_is_false(messages) &&
	    (rc = check_request(c, "messages", messages, &r, 1)))
		goto cleanup;
	json_object_set_new(allowed, "message_id", json_false());
	json_object_set_new(allowed, "attachment_id", json_false());
	if ((rc = check_attachments(c, "message_fields.attachments",
				    json_object_get(json_object_get(
					    c->def, "message_fields"),
					    "attachments"), &r)) ||
	    (rc = check_attachments(c, "initial_message.attachments",
				    json_object_get(json_object_get(
					    c->def, "initial_message"),
					    "attachments"), &r)))
		goto cleanup;
	if (!is_pointer(json_object_get(c->def, "ticket_id"))) {
		rc = pex_error_set(PEX_EINVALID, "ticket_id must be a JSON "
				   "Pointer");
		goto cleanup;
	}
	if (check && !json_is_false(check)) {
		const char *eq = json_string_value(json_object_get(check,
								   "equals"));

		if (!is_pointer(json_object_get(check, "pointer")) || !eq) {
			rc = pex_error_set(PEX_EINVALID, "requester_check "
					   "needs pointer and equals");
			goto cleanup;
		}
		r.need_identity = 1;
		rc = check_template(c, "requester_check.equals", eq, &r);
		if (rc)
			goto cleanup;
	} else {
		pex_source_log(src, PEX_LOG_WARN, "no requester_check: every "
			       "ticket the search returns is taken as the "
			       "subject's");
	}
	if (!json_is_object(json_object_get(c->def, "fields"))) {
		rc = pex_error_set(PEX_EINVALID, "fields must map ticket "
				   "model fields to JSON Pointers");
		goto cleanup;
	}
cleanup:
	json_decref(allowed);
	return rc;
}

static void hj_fini(struct pex_source *src, void *ctx);

static int hj_init(struct pex_source *src, void *ctx)
{
	struct hj_ctx *c = ctx;
	struct hj_http_opts o;
	size_t n;
	int rc;

	c->def = c->preset ? hj_preset(c->preset) : json_object();
	if (!c->def) {
		if (c->preset)
			return pex_error_set(PEX_EINVALID, "no preset named "
					     "'%s' (available: %s)", c->preset,
					     hj_preset_names());
		return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	c->base = strdup(c->base_url);
	if (!c->base) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto fail;
	}
	n = strlen(c->base);
	while (n && c->base[n - 1] == '/')
		c->base[--n] = '\0';
	if (c->ca_file) {
		c->ca_path = pex_source_path(src, c->ca_file);
		if (!c->ca_path) {
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
			goto fail;
		}
	}
	if ((rc = merge(c, "lookup", c->o_lookup, 0)) ||
	    (rc = merge(c, "search", c->o_search, 0)) ||
	    (rc = merge(c, "details", c->o_details, 0)) ||
	    (rc = merge(c, "messages", c->o_messages, 0)) ||
	    (rc = merge(c, "requester_check", c->o_requester_check, 0)) ||
	    (rc = merge(c, "fields", c->o_fields, 1)) ||
	    (rc = merge(c, "message_fields", c->o_message_fields, 1)) ||
	    (rc = merge(c, "initial_message", c->o_initial_message, 1)) ||
	    (rc = merge(c, "ignore", c->o_ignore, 0)))
		goto fail;
	if (c->ticket_id)
		json_object_set_new(c->def, "ticket_id",
				    json_string(c->ticket_id));
	else if (!json_object_get(c->def, "ticket_id"))
		json_object_set_new(c->def, "ticket_id", json_string("/id"));
	if (json_object_get(c->def, "ignore") &&
	    !json_is_array(json_object_get(c->def, "ignore"))) {
		rc = pex_error_set(PEX_EINVALID, "ignore must be a list");
		goto fail;
	}
	if ((rc = check_definition(src, c)) ||
	    (rc = check_options(src, c, &o)))
		goto fail;
	c->tkeys = json_object();
	c->mkeys = json_object();
	if (!c->tkeys || !c->mkeys) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto fail;
	}
	hj_spec_keys(json_object_get(c->def, "fields"), c->tkeys);
	hj_spec_keys(json_object_get(c->def, "initial_message"), c->tkeys);
	hj_spec_keys(json_object_get(c->def, "ticket_id"), c->tkeys);
	hj_spec_keys(json_object_get(c->def, "message_fields"), c->mkeys);
	c->http_open = 1;
	rc = hj_http_open(&c->http, src, &o);
	if (rc)
		goto fail;
	return 0;
fail:
	hj_fini(src, ctx);
	return rc;
}

static void hj_fini(struct pex_source *src, void *ctx)
{
	struct hj_ctx *c = ctx;

	(void)src;
	if (c->http_open)
		hj_http_close(&c->http);
	c->http_open = 0;
	json_decref(c->def);
	json_decref(c->tkeys);
	json_decref(c->mkeys);
	free(c->base);
	free(c->ca_path);
	c->def = c->tkeys = c->mkeys = NULL;
	c->base = c->ca_path = NULL;
}

/* ---- collect ----------------------------------------------------------- */

struct run {
	struct pex_source *src;
	struct hj_ctx *c;
	const struct pex_identity *id;
	json_t *vars;        /* template variables of this run */
	json_t *seen;        /* ticket ids emitted, across identities */
	pex_emit_fn emit;
	void *emit_data;
	unsigned long long tickets;
	unsigned long long refused;
	unsigned long long users;
	unsigned long long files_stored;
	unsigned long long files_withheld;
	const char *ticket_id; /* of the ticket being mapped */
};

typedef int (*item_fn)(struct run *r, const json_t *item, void *ud);

/* url + (?|&) name=value, both percent-encoded. */
static int add_param(struct pex_buf *b, const char *name, const char *value)
{
	json_t *v = json_pack("{s:s, s:s}", "n", name, "v", value);
	struct pex_buf t = PEX_BUF_INIT(HJ_URL_MAX);
	int rc;

	if (!v)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	rc = hj_template("{n}={v}", v, 1, &t);
	if (!rc)
		rc = pex_buf_printf(b, "%c%s",
				    strchr(b->data, '?') ? '&' : '?', t.data);
	json_decref(v);
	pex_buf_free(&t);
	return rc;
}

static int build_url(struct run *r, const json_t *req, struct pex_buf *out)
{
	struct pex_buf path = PEX_BUF_INIT(HJ_URL_MAX);
	int rc;

	rc = hj_template(json_string_value(json_object_get(req, "path")),
			 r->vars, 1, &path);
	pex_buf_reset(out);
	if (!rc)
		rc = pex_buf_printf(out, "%s%s", r->c->base, path.data);
	pex_buf_free(&path);
	if (rc == PEX_ELIMIT)
		rc = pex_error_set(PEX_ELIMIT, "URL longer than %d bytes",
				   HJ_URL_MAX);
	return rc;
}

/*
 * GET req's listing page by page and call fn for each item of the list.
 * Pagination: none; page (page_param/size_param); offset
 * (offset_param/limit_param); link (Link rel="next"); cursor (a body
 * member, sent back as param; has_more may stop it); next_url (a body
 * member holding the next URL). More than max_pages pages fails.
 */
static int each_item(struct run *r, const json_t *req, item_fn fn, void *ud)
{
	const json_t *pag = json_object_get(req, "pagination");
	const char *type = json_string_value(json_object_get(pag, "type"));
	const char *listp = json_string_value(json_object_get(req, "list"));
	long long size = r->c->per_page, page, offset = 0, pages = 0;
	struct pex_buf first = PEX_BUF_INIT(HJ_URL_MAX);
	struct pex_buf url = PEX_BUF_INIT(HJ_URL_MAX);
	char *next = NULL, *cursor = NULL, num[32];
	const char *sp;
	json_t *doc = NULL;
	int rc;

	if (!type)
		type = "none";
	sp = json_string_value(json_object_get(pag, "size_param"));
	page = json_is_integer(json_object_get(pag, "first")) ?
	       json_integer_value(json_object_get(pag, "first")) : 1;
	rc = build_url(r, req, &first);
	if (rc)
		goto cleanup;
	for (;;) {
		const json_t *list, *more;
		size_t i, n;
		int has_next = 0;

		pex_buf_reset(&url);
		if (next) {
			rc = pex_buf_append(&url, next, strlen(next));
		} else {
			rc = pex_buf_append(&url, first.data, first.len);
			snprintf(num, sizeof(num), "%lld", size);
			if (!rc && sp && strcmp(type, "none"))
				rc = add_param(&url, sp, num);
			if (!rc && !strcmp(type, "page")) {
				const char *p = json_string_value(
					json_object_get(pag, "page_param"));

				snprintf(num, sizeof(num), "%lld", page);
				rc = add_param(&url, p ? p : "page", num);
			} else if (!rc && !strcmp(type, "offset")) {
				const char *p = json_string_value(
					json_object_get(pag, "offset_param"));
				const char *l = json_string_value(
					json_object_get(pag, "limit_param"));

				snprintf(num, sizeof(num), "%lld", offset);
				rc = add_param(&url, p ? p : "offset", num);
				snprintf(num, sizeof(num), "%lld", size);
				if (!rc)
					rc = add_param(&url, l ? l : "limit",
						       num);
			} else if (!rc && cursor) {
				rc = add_param(&url, json_string_value(
					json_object_get(pag, "param")),
					cursor);
			}
		}
		if (rc)
			goto cleanup;
		if (pages++ >= r->c->max_pages) {
			rc = pex_error_set(PEX_ELIMIT, "more than max_pages "
					   "(%lld) pages in one listing; "
					   "raise max_pages",
					   r->c->max_pages);
			goto cleanup;
		}
		free(next);
		next = NULL;
		json_decref(doc);
		rc = hj_http_get(&r->c->http, url.data, &doc,
				 !strcmp(type, "link") ? &next : NULL);
		if (rc)
			goto cleanup;
		list = hj_pointer(doc, listp ? listp : "");
		if (!json_is_array(list)) {
			rc = pex_error_set(PEX_EINVALID, "the response has no "
					   "list at '%s'", listp ? listp : "");
			goto cleanup;
		}
		n = json_array_size(list);
		for (i = 0; i < n; i++) {
			rc = fn(r, json_array_get(list, i), ud);
			if (rc)
				goto cleanup;
		}
		more = hj_pick(doc, json_object_get(pag, "has_more"));
		if (!strcmp(type, "page")) {
			page++;
			has_next = n > 0 && (long long)n >= size;
		} else if (!strcmp(type, "offset")) {
			offset += (long long)n;
			has_next = n > 0 && (long long)n >= size;
		} else if (!strcmp(type, "link")) {
			has_next = next != NULL;
		} else if (!strcmp(type, "cursor")) {
			const json_t *cv = hj_pick(doc, json_object_get(
						   pag, "cursor"));

			free(cursor);
			cursor = NULL;
			if (json_is_string(cv) && json_string_length(cv) &&
			    !json_is_false(more)) {
				cursor = strdup(json_string_value(cv));
				has_next = cursor != NULL;
			}
		} else if (!strcmp(type, "next_url")) {
			const json_t *nv = hj_pick(doc, json_object_get(
						   pag, "next"));

			if (json_is_string(nv) && json_string_length(nv) &&
			    !json_is_false(more)) {
				next = hj_url_resolve(url.data,
						      json_string_value(nv));
				if (!next) {
					rc = pex_error_set(PEX_EINVALID,
							   "unusable next "
							   "page URL");
					goto cleanup;
				}
				has_next = 1;
			}
		}
		if (!has_next)
			break;
	}
cleanup:
	json_decref(doc);
	free(next);
	free(cursor);
	pex_buf_free(&first);
	pex_buf_free(&url);
	return rc;
}

static int collect_message(struct run *r, const json_t *item, void *ud)
{
	(void)r;
	return json_array_append((json_t *)ud, (json_t *)item) ?
	       pex_error_set(PEX_ENOMEM, "out of memory") : 0;
}

static int same_text(const char *a, const char *b)
{
	return !strcasecmp(a, b);
}

/* 1 when the ticket's requester is the person this run is for. */
static int requester_ok(struct run *r, const json_t *ticket, int *rc)
{
	const json_t *check = json_object_get(r->c->def, "requester_check");
	struct pex_buf want = PEX_BUF_INIT(HJ_URL_MAX);
	struct pex_buf have = PEX_BUF_INIT(HJ_URL_MAX);
	int ok = 0;

	*rc = 0;
	if (!check || json_is_false(check))
		return 1;
	*rc = hj_template(json_string_value(json_object_get(check, "equals")),
			  r->vars, 0, &want);
	if (*rc)
		goto cleanup;
	if (hj_scalar_text(hj_pick(ticket, check), &have))
		goto cleanup; /* no requester to compare: not trusted */
	ok = same_text(have.data, want.data);
cleanup:
	pex_buf_free(&want);
	pex_buf_free(&have);
	return ok;
}

/* ---- attachment files ------------------------------------------------- */

/*
 * Each attachment of a ticket the subject was found to own is downloaded
 * (never before the requester check) and streamed into the bundle
 * through pex_source_attachment_begin(); the message lists the stored
 * file, or the reason it is not there. A file that cannot be had (over
 * max_attachment_bytes, a URL off the tracker, a download that failed
 * after its retries) is withheld with the reason and counted in the
 * warnings; the source stays ok, since the ticket itself is complete
 * and says what is missing. Only our own failures (writing the bundle,
 * memory) fail the source. No download URL is ever copied into a record:
 * such URLs often carry access tokens.
 */

#define HJ_WARN_FAILED "attachments that could not be downloaded were " \
	"withheld (the message gives each reason)"
#define HJ_WARN_LARGE "attachments larger than max_attachment_bytes were " \
	"withheld"
#define HJ_WARN_NO_URL "attachments without a usable download URL on " \
	"the tracker were withheld"

/* Replace *entry by the withheld entry of a (may be NULL), keeping the
 * source's media_type and size. */
static int withhold(struct run *r, struct pex_attachment *a, json_t **entry,
		    const char *reason, const char *warning)
{
	const char *name = json_string_value(json_object_get(*entry,
							     "name"));
	json_t *res = NULL, *v;

	pex_attachment_withhold(a, name, reason, &res);
	if (!res)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	v = json_object_get(*entry, "media_type");
	if (v && !json_object_get(res, "media_type"))
		json_object_set(res, "media_type", v);
	v = json_object_get(*entry, "bytes");
	if (v && !json_object_get(res, "bytes"))
		json_object_set(res, "bytes", v);
	json_decref(*entry);
	*entry = res;
	r->files_withheld++;
	if (warning)
		pex_source_warn(r->src, "%s", warning);
	return 0;
}

/* Text of the value at spec's member key (default "/id") in obj, as the
 * template variable name; 0 when there is none. */
static int set_id_var(struct run *r, const char *name, const json_t *obj,
		      const json_t *spec, const char *key)
{
	const json_t *ptr = json_object_get(spec, key);
	struct pex_buf t = PEX_BUF_INIT(HJ_ID_MAX + 1);
	json_t *dflt = json_string("/id");
	int rc = 0;

	if (!dflt)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	if (!hj_scalar_text(hj_pick(obj, ptr ? ptr : dflt), &t) && t.len &&
	    json_object_set_new(r->vars, name, json_stringn(t.data, t.len)))
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
	json_decref(dflt);
	pex_buf_free(&t);
	return rc;
}

/*
 * The absolute download URL of att into url. Returns 0, 1 with *why set
 * when there is no usable URL (the file is withheld), or < 0.
 */
static int attachment_url(struct run *r, const json_t *spec,
			  const json_t *att, const json_t *msg,
			  struct pex_buf *url, const char **why)
{
	const json_t *path = json_object_get(spec, "path");
	const json_t *uspec = json_object_get(spec, "url");
	struct pex_buf base = PEX_BUF_INIT(HJ_URL_MAX + 2);
	char *abs = NULL;
	int rc = 0;

	pex_buf_reset(url);
	*why = NULL;
	if (json_is_string(path)) {
		if ((rc = set_id_var(r, "message_id", msg, spec,
				     "message_id")) ||
		    (rc = set_id_var(r, "attachment_id", att, spec, "id")))
			goto cleanup;
		if (build_url(r, spec, url)) {
			pex_error_clear();
			*why = "no download URL: the attachment lacks a "
			       "value its download path needs";
			rc = 1;
		}
		goto cleanup;
	}
	if (!uspec) {
		*why = "no download URL: the source definition gives none "
		       "for attachments";
		rc = 1;
		goto cleanup;
	}
	path = hj_pick(att, uspec);
	if (!json_is_string(path) || !json_string_length(path) ||
	    pex_buf_printf(&base, "%s/", r->c->base) ||
	    !(abs = hj_url_resolve(base.data, json_string_value(path))) ||
	    pex_buf_append(url, abs, strlen(abs))) {
		pex_error_clear();
		*why = "no download URL: the attachment has no usable URL";
		rc = 1;
	}
cleanup:
	json_object_del(r->vars, "message_id");
	json_object_del(r->vars, "attachment_id");
	free(abs);
	pex_buf_free(&base);
	return rc;
}

/* The sink of one download: the bundle's attachment file. */
struct file_sink {
	struct run *r;
	const char *name;
	const char *media;
	unsigned long long max;
	struct pex_attachment *a;
	int failed; /* our side failed: the source fails */
};

static int sink_write(void *ud, const void *data, size_t len)
{
	struct file_sink *f = ud;
	int rc = pex_attachment_write(f->a, data, len);

	if (rc)
		f->failed = 1;
	return rc;
}

/* A connection dropped mid-file: start the file again. */
static int sink_restart(void *ud)
{
	struct file_sink *f = ud;
	json_t *gone = NULL;
	int rc;

	pex_attachment_withhold(f->a, f->name, "restarted", &gone);
	json_decref(gone);
	f->a = NULL;
	rc = pex_source_attachment_begin(f->r->src, f->r->ticket_id, f->name,
					 f->media, f->max, &f->a);
	if (rc)
		f->failed = 1;
	return rc;
}

static int on_attachment(void *ud, const json_t *spec, const json_t *att,
			 const json_t *msg, json_t **entry)
{
	struct run *r = ud;
	struct hj_ctx *c = r->c;
	struct file_sink f = { 0 };
	struct hj_sink sink = { sink_write, sink_restart, &f };
	struct pex_buf url = PEX_BUF_INIT(HJ_URL_MAX);
	const json_t *declared = json_object_get(*entry, "bytes");
	char reason[160], failure[800];
	const char *why;
	json_t *res = NULL;
	int rc, too_large = 0;

	f.r = r;
	f.name = json_string_value(json_object_get(*entry, "name"));
	f.media = json_string_value(json_object_get(*entry, "media_type"));
	f.max = (unsigned long long)c->max_attachment_bytes;
	snprintf(reason, sizeof(reason), "larger than the limit of %llu "
		 "bytes", f.max);
	if (!c->download_attachments) {
		rc = withhold(r, NULL, entry, "attachment downloads are "
			      "switched off (download_attachments: false)",
			      NULL);
		goto cleanup;
	}
	rc = attachment_url(r, spec, att, msg, &url, &why);
	if (rc < 0)
		goto cleanup;
	if (!rc && !hj_http_same_origin(&c->http, url.data)) {
		/* the credentials go to the tracker only */
		why = "the download URL is not on the tracker (the origin of "
		      "base_url), so it was not fetched";
		rc = 1;
	}
	if (rc > 0) {
		rc = withhold(r, NULL, entry, why, HJ_WARN_NO_URL);
		goto cleanup;
	}
	if (json_is_integer(declared) &&
	    (unsigned long long)json_integer_value(declared) > f.max) {
		/* the tracker says so: no need to start the download */
		rc = withhold(r, NULL, entry, reason, HJ_WARN_LARGE);
		goto cleanup;
	}
	rc = pex_source_attachment_begin(r->src, r->ticket_id, f.name,
					 f.media, f.max, &f.a);
	if (rc == PEX_EUSAGE) {
		/* no bundle to put it in (a check, a batch pass) */
		snprintf(failure, sizeof(failure), "%s", pex_error_last());
		rc = withhold(r, NULL, entry, failure, NULL);
		goto cleanup;
	}
	if (rc)
		goto cleanup;
	rc = hj_http_download(&c->http, url.data, f.max, &sink, &too_large);
	if (f.failed) {
		pex_error_wrap(rc, "ticket %s: storing an attachment",
			       r->ticket_id);
		goto cleanup;
	}
	if (!rc) {
		rc = pex_attachment_end(f.a, &res);
		f.a = NULL;
		if (rc)
			goto cleanup;
		json_decref(*entry);
		*entry = res;
		r->files_stored++;
	} else if (too_large) {
		/* the tracker's size was wrong: do not repeat it */
		json_object_del(*entry, "bytes");
		rc = withhold(r, f.a, entry, reason, HJ_WARN_LARGE);
		f.a = NULL;
	} else {
		snprintf(failure, sizeof(failure), "%s", pex_error_last());
		pex_source_log(r->src, PEX_LOG_WARN, "ticket %s: an "
			       "attachment was withheld: %s", r->ticket_id,
			       failure);
		rc = withhold(r, f.a, entry, failure, HJ_WARN_FAILED);
		f.a = NULL;
	}
cleanup:
	if (f.a) {
		json_t *gone = NULL;

		pex_attachment_withhold(f.a, f.name, "", &gone);
		json_decref(gone);
	}
	pex_buf_free(&url);
	return rc;
}

static int on_ticket(struct run *r, const json_t *item, void *ud)
{
	const json_t *def = r->c->def;
	const json_t *details = json_object_get(def, "details");
	const json_t *messages = json_object_get(def, "messages");
	struct pex_buf id = PEX_BUF_INIT(HJ_ID_MAX + 1);
	struct pex_buf url = PEX_BUF_INIT(HJ_URL_MAX);
	json_t *ddoc = NULL, *msgs = NULL, *rec = NULL;
	const json_t *ticket = item;
	int rc;

	(void)ud;
	if (!json_is_object(item))
		return pex_error_set(PEX_EINVALID, "a search result is not a "
				     "JSON object");
	rc = hj_scalar_text(hj_pick(item, json_object_get(def, "ticket_id")),
			    &id);
	if (rc || !id.len || !pex_text_is_clean(id.data, id.len)) {
		rc = pex_error_set(PEX_EINVALID, "a search result has no "
				   "usable id at %s (or it is longer than %d "
				   "bytes)",
				   json_string_value(json_object_get(
					   def, "ticket_id")), HJ_ID_MAX);
		goto cleanup;
	}
	if (json_object_get(r->seen, id.data))
		goto cleanup; /* found by an earlier identity */
	if (json_object_set_new(r->vars, "id", json_string(id.data))) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (details && !json_is_false(details)) {
		const char *ip = json_string_value(json_object_get(details,
								   "item"));

		if ((rc = build_url(r, details, &url)) ||
		    (rc = hj_http_get(&r->c->http, url.data, &ddoc, NULL)))
			goto cleanup;
		ticket = hj_pointer(ddoc, ip ? ip : "");
		if (!json_is_object(ticket)) {
			rc = pex_error_set(PEX_EINVALID, "ticket %s: the "
					   "details response has no object "
					   "at '%s'", id.data, ip ? ip : "");
			goto cleanup;
		}
	}
	if (!requester_ok(r, ticket, &rc)) {
		if (rc)
			goto cleanup;
		r->refused++;
		pex_source_warn(r->src, "tickets the search returned whose "
				"requester is not the subject were left out");
		goto cleanup;
	}
	msgs = json_array();
	if (!msgs) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (messages && !json_is_false(messages)) {
		rc = each_item(r, messages, collect_message, msgs);
		if (rc) {
			pex_error_wrap(rc, "ticket %s: messages", id.data);
			goto cleanup;
		}
	}
	r->ticket_id = id.data;
	rc = hj_map_ticket(r->src, def, ticket, msgs, id.data, r->vars, r->id,
			   r->c->tkeys, r->c->mkeys, on_attachment, r, &rec);
	r->ticket_id = NULL;
	if (rc)
		goto cleanup;
	json_object_set_new(r->seen, id.data, json_true());
	r->tickets++;
	rc = r->emit(r->emit_data, PEX_REC_TICKET, rec);
	rec = NULL;
cleanup:
	json_object_del(r->vars, "id");
	json_decref(rec);
	json_decref(msgs);
	json_decref(ddoc);
	pex_buf_free(&id);
	pex_buf_free(&url);
	return rc;
}

static int run_search(struct run *r)
{
	return each_item(r, json_object_get(r->c->def, "search"), on_ticket,
			 NULL);
}

static int on_user(struct run *r, const json_t *item, void *ud)
{
	const json_t *lookup = ud;
	const char *var = json_string_value(json_object_get(lookup, "var"));
	struct pex_buf t = PEX_BUF_INIT(HJ_ID_MAX + 1);
	int rc;

	if (!var)
		var = "user_id";
	/* only a user whose own record holds the identity is the person */
	if (hj_scalar_text(hj_pick(item, json_object_get(lookup, "verify")),
			   &t) || !same_text(t.data, r->id->value)) {
		pex_buf_free(&t);
		return 0;
	}
	rc = hj_scalar_text(hj_pick(item, json_object_get(lookup, "id")), &t);
	if (rc || !t.len) {
		pex_buf_free(&t);
		return pex_error_set(PEX_EINVALID, "lookup: a matching user "
				     "has no id");
	}
	r->users++;
	rc = json_object_set_new(r->vars, var, json_string(t.data)) ?
	     pex_error_set(PEX_ENOMEM, "out of memory") : run_search(r);
	json_object_del(r->vars, var);
	pex_buf_free(&t);
	return rc;
}

static int wanted(const struct hj_ctx *c, const struct pex_identity *id)
{
	if (id->has_window)
		return 0;
	for (size_t i = 0; c->identity_types[i]; i++)
		if (!strcmp(c->identity_types[i], id->type))
			return 1;
	return 0;
}

static int hj_collect(struct pex_source *src, void *ctx,
		      const struct pex_identity_set *ids, pex_emit_fn emit,
		      void *emit_data)
{
	struct hj_ctx *c = ctx;
	const json_t *lookup = json_object_get(c->def, "lookup");
	struct run r = { 0 };
	size_t i;
	int rc = 0;

	r.src = src;
	r.c = c;
	r.emit = emit;
	r.emit_data = emit_data;
	r.seen = json_object();
	if (!r.seen)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	for (i = 0; i < ids->count && !rc; i++) {
		const struct pex_identity *id = &ids->items[i];

		if (!wanted(c, id))
			continue;
		r.id = id;
		r.vars = json_pack("{s:s, s:s}", id->type, id->value,
				   "identity", id->value);
		if (!r.vars) {
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
			break;
		}
		if (lookup && !json_is_false(lookup))
			rc = each_item(&r, lookup, on_user, (void *)lookup);
		else
			rc = run_search(&r);
		json_decref(r.vars);
		r.vars = NULL;
	}
	pex_source_log(src, PEX_LOG_INFO, "%llu tickets, %llu left out "
		       "(requester not the subject), %llu attachment files "
		       "stored, %llu withheld, %llu requests, %llu retries",
		       r.tickets, r.refused, r.files_stored, r.files_withheld,
		       c->http.requests, c->http.retries);
	json_decref(r.seen);
	return rc;
}

/* identity_types as configured (a string or a list), else email. */
static void hj_identity_types(const json_t *options, json_t *types)
{
	const json_t *t = json_object_get(options, "identity_types");
	const json_t *v;
	size_t i;

	if (json_is_string(t))
		json_object_set_new(types, json_string_value(t), json_true());
	else if (json_is_array(t))
		json_array_foreach(t, i, v)
			if (json_is_string(v))
				json_object_set_new(types,
						    json_string_value(v),
						    json_true());
	if (!t)
		json_object_set_new(types, "email", json_true());
}

const struct pex_collector pex_collector_http_json = {
	.name = "http_json",
	.description = "service tickets from a ticket tracker's REST API",
	.config_map = hj_config,
	.ctx_size = sizeof(struct hj_ctx),
	.init = hj_init,
	.collect = hj_collect,
	.fini = hj_fini,
	.identity_types = hj_identity_types,
};
