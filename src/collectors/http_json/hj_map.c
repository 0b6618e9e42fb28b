/*
 * Mapping for the http_json collector: JSON Pointer (RFC 6901), URL
 * templates, and one tracker ticket (with its messages) into the ticket
 * model of schemas/v1/ticket.schema.json.
 *
 * A field spec is a pointer ("/title"), a list of pointers tried in order
 * (["/size", "/file_size"]), or an object {"pointer": ..., "values":
 * {"2": "open", ...}} whose values translate the source's codes. Every
 * top-level member of the ticket or message that no one-segment pointer
 * reads goes into "extra" (objects and arrays as compact JSON text, as
 * common.schema.json wants scalars there), so nothing the tracker holds
 * about the person is dropped. All source text passes pex_source_text().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collectors/http_json/hj.h"
#include "core/text.h"
#include "core/timeutil.h"
#include "portex/error.h"
#include "portex/mapper.h"

#define HJ_VAR_NAME_MAX 64
#define HJ_EXTRA_KEY_MAX 256 /* common.schema.json propertyNames */
#define HJ_ATTACHMENT_NO_FN "attachment files are not downloaded here"

const json_t *hj_pointer(const json_t *doc, const char *ptr)
{
	const json_t *cur = doc;
	const char *p = ptr;

	if (!ptr || !doc)
		return NULL;
	if (!*p)
		return doc;
	if (*p != '/')
		return NULL;
	while (cur && *p == '/') {
		char tok[512];
		size_t n = 0;

		p++;
		while (*p && *p != '/') {
			char c = *p++;

			if (c == '~') {
				if (*p == '0')
					c = '~';
				else if (*p == '1')
					c = '/';
				else
					return NULL;
				p++;
			}
			if (n + 1 >= sizeof(tok))
				return NULL;
			tok[n++] = c;
		}
		tok[n] = '\0';
		if (json_is_object(cur)) {
			cur = json_object_get(cur, tok);
		} else if (json_is_array(cur)) {
			char *end;
			unsigned long long i;

			if (!n || (n > 1 && tok[0] == '0') ||
			    tok[0] < '0' || tok[0] > '9')
				return NULL;
			i = strtoull(tok, &end, 10);
			if (*end)
				return NULL;
			cur = json_array_get(cur, (size_t)i);
		} else {
			return NULL;
		}
	}
	return cur;
}

const json_t *hj_pick(const json_t *doc, const json_t *spec)
{
	const json_t *v;
	size_t i;

	if (json_is_object(spec))
		spec = json_object_get(spec, "pointer");
	if (json_is_string(spec)) {
		v = hj_pointer(doc, json_string_value(spec));
		return json_is_null(v) ? NULL : v;
	}
	if (!json_is_array(spec))
		return NULL;
	for (i = 0; i < json_array_size(spec); i++) {
		const json_t *p = json_array_get(spec, i);

		v = hj_pointer(doc, json_string_value(p));
		if (v && !json_is_null(v))
			return v;
	}
	return NULL;
}

int hj_scalar_text(const json_t *v, struct pex_buf *out)
{
	pex_buf_reset(out);
	if (!v)
		return PEX_EINVALID;
	switch (json_typeof(v)) {
	case JSON_STRING:
		return pex_buf_append(out, json_string_value(v),
				      json_string_length(v));
	case JSON_INTEGER:
		return pex_buf_printf(out, "%" JSON_INTEGER_FORMAT,
				      json_integer_value(v));
	case JSON_REAL:
		return pex_buf_printf(out, "%.17g", json_real_value(v));
	case JSON_TRUE:
		return pex_buf_append(out, "true", 4);
	case JSON_FALSE:
		return pex_buf_append(out, "false", 5);
	default:
		return PEX_EINVALID;
	}
}

/* ---- templates -------------------------------------------------------- */

static int is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_';
}

/* Walk tpl; cb gets each literal run (is_name 0) or variable name. */
typedef int (*tpl_cb)(void *ud, const char *s, size_t n, int is_name);

static int tpl_walk(const char *tpl, tpl_cb cb, void *ud)
{
	const char *p = tpl;
	int rc;

	while (*p) {
		if ((p[0] == '{' && p[1] == '{') ||
		    (p[0] == '}' && p[1] == '}')) {
			if ((rc = cb(ud, p, 1, 0)))
				return rc;
			p += 2;
		} else if (*p == '{') {
			size_t n = 0;

			while (is_name_char(p[1 + n]))
				n++;
			if (!n || n > HJ_VAR_NAME_MAX || p[1 + n] != '}')
				return pex_error_set(PEX_EINVALID, "template "
						     "'%.200s': bad {name} at "
						     "offset %zu", tpl,
						     (size_t)(p - tpl));
			if ((rc = cb(ud, p + 1, n, 1)))
				return rc;
			p += n + 2;
		} else if (*p == '}') {
			return pex_error_set(PEX_EINVALID,
					     "template '%.200s': "
					     "stray '}'", tpl);
		} else {
			size_t n = strcspn(p, "{}");

			if ((rc = cb(ud, p, n, 0)))
				return rc;
			p += n;
		}
	}
	return 0;
}

struct expand {
	const json_t *vars;
	int url_encode;
	struct pex_buf *out;
};

static int expand_cb(void *ud, const char *s, size_t n, int is_name)
{
	struct expand *e = ud;
	char name[HJ_VAR_NAME_MAX + 1];
	const json_t *v;
	const char *val;
	size_t i, len;

	if (!is_name)
		return pex_buf_append(e->out, s, n);
	memcpy(name, s, n);
	name[n] = '\0';
	v = json_object_get(e->vars, name);
	if (!json_is_string(v))
		return pex_error_set(PEX_EINVALID, "template variable {%s} "
				     "has no value here", name);
	val = json_string_value(v);
	len = json_string_length(v);
	if (!e->url_encode)
		return pex_buf_append(e->out, val, len);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)val[i];
		int rc;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~')
			rc = pex_buf_putc(e->out, (char)c);
		else
			rc = pex_buf_printf(e->out, "%%%02X", c);
		if (rc)
			return rc;
	}
	return 0;
}

int hj_template(const char *tpl, const json_t *vars, int url_encode,
		struct pex_buf *out)
{
	struct expand e = { vars, url_encode, out };

	pex_buf_reset(out);
	if (pex_buf_append(out, "", 0))
		return PEX_ENOMEM;
	return tpl_walk(tpl, expand_cb, &e);
}

static int names_cb(void *ud, const char *s, size_t n, int is_name)
{
	json_t *arr = ud;

	if (!is_name)
		return 0;
	return json_array_append_new(arr, json_stringn(s, n)) ?
	       pex_error_set(PEX_ENOMEM, "out of memory") : 0;
}

int hj_template_names(const char *tpl, json_t **out)
{
	int rc;

	*out = json_array();
	if (!*out)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	rc = tpl_walk(tpl, names_cb, *out);
	if (rc) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

/* ---- which keys a spec reads ------------------------------------------ */

static void add_key(const char *ptr, json_t *keys)
{
	char key[HJ_EXTRA_KEY_MAX + 1];
	size_t n = 0;
	const char *p;

	if (!ptr || ptr[0] != '/' || strchr(ptr + 1, '/'))
		return;
	for (p = ptr + 1; *p && n < HJ_EXTRA_KEY_MAX; p++) {
		if (*p == '~' && (p[1] == '0' || p[1] == '1')) {
			key[n++] = p[1] == '0' ? '~' : '/';
			p++;
		} else {
			key[n++] = *p;
		}
	}
	key[n] = '\0';
	json_object_set_new(keys, key, json_true());
}

void hj_spec_keys(const json_t *spec, json_t *keys)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_string(spec)) {
		add_key(json_string_value(spec), keys);
	} else if (json_is_array(spec)) {
		for (i = 0; i < json_array_size(spec); i++)
			hj_spec_keys(json_array_get(spec, i), keys);
	} else if (json_is_object(spec)) {
		json_object_foreach((json_t *)spec, k, v) {
			/* translation tables and constants are not pointers */
			if (!strcmp(k, "values") || !strcmp(k, "default") ||
			    !strcmp(k, "internal_when"))
				continue;
			/* an attachment spec points into each attachment
			 * (and at the message's id only to build a URL):
			 * of the message it reads just the list */
			if (!strcmp(k, "attachments") && json_is_object(v)) {
				hj_spec_keys(json_object_get(v, "list"),
					     keys);
				continue;
			}
			hj_spec_keys(v, keys);
		}
	}
}

/* ---- building records ------------------------------------------------- */

struct mctx {
	struct pex_source *src;
	const json_t *vars;
	struct pex_buf tmp;
	struct pex_buf tmp2;
	hj_att_fn att_fn;
	void *att_ud;
};

/* Text of the value spec picks, translated by spec's "values". Returns
 * 1 with the text in m->tmp, 0 when there is no value, or < 0. */
static int pick_text(struct mctx *m, const json_t *obj, const json_t *spec)
{
	const json_t *v = hj_pick(obj, spec);
	const json_t *values, *tr;
	int rc;

	if (!v)
		return 0;
	if (json_is_object(v) || json_is_array(v)) {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		if (!s)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		pex_buf_reset(&m->tmp);
		rc = pex_buf_append(&m->tmp, s, strlen(s));
		free(s);
		return rc ? rc : 1;
	}
	rc = hj_scalar_text(v, &m->tmp);
	if (rc)
		return rc;
	values = json_is_object(spec) ? json_object_get(spec, "values") : NULL;
	if (values) {
		tr = json_object_get(values, m->tmp.data);
		if (json_is_string(tr)) {
			pex_buf_reset(&m->tmp);
			rc = pex_buf_append(&m->tmp, json_string_value(tr),
					    json_string_length(tr));
			if (rc)
				return rc;
		}
	}
	return 1;
}

static int set_text(struct mctx *m, json_t *rec, const char *field,
		    const char *s, size_t len)
{
	json_t *t = pex_source_text(m->src, s, len);

	if (!t)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	return json_object_set_new(rec, field, t) ?
	       pex_error_set(PEX_ENOMEM, "out of memory") : 0;
}

static int map_text(struct mctx *m, json_t *rec, const char *field,
		    const json_t *obj, const json_t *spec)
{
	int rc = pick_text(m, obj, spec);

	if (rc <= 0)
		return rc;
	if (!m->tmp.len)
		return 0; /* an empty value says nothing */
	return set_text(m, rec, field, m->tmp.data, m->tmp.len);
}

/* Timestamps become RFC 3339 UTC; integers are taken as Unix seconds.
 * A value that does not parse is kept, as written, in extra. */
static int map_time(struct mctx *m, json_t *rec, json_t *extra,
		    const char *field, const json_t *obj, const json_t *spec)
{
	const json_t *v = hj_pick(obj, spec);
	char buf[PEX_TIME_BUFSZ];
	time_t t;
	int rc;

	if (!v)
		return 0;
	if (json_is_integer(v)) {
		t = (time_t)json_integer_value(v);
	} else if (json_is_string(v) && json_string_length(v)) {
		if (pex_time_parse(json_string_value(v),
				   json_string_length(v), &t)) {
			pex_source_warn(m->src, "a time that does not parse "
					"was kept in extra");
			if (!extra)
				return 0;
			rc = pick_text(m, obj, spec);
			if (rc <= 0)
				return rc;
			return set_text(m, extra, field, m->tmp.data,
					m->tmp.len);
		}
	} else {
		return 0;
	}
	return json_object_set_new(rec, field,
				   json_string(pex_time_format(t, buf))) ?
	       pex_error_set(PEX_ENOMEM, "out of memory") : 0;
}

static int map_tags(struct mctx *m, json_t *rec, const json_t *obj,
		    const json_t *spec)
{
	const json_t *v = hj_pick(obj, spec);
	json_t *list;
	size_t i;
	int rc = 0;

	if (!v)
		return 0;
	list = json_array();
	if (!list)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	for (i = 0; json_is_array(v) ? i < json_array_size(v) : i < 1; i++) {
		const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
		json_t *t;

		if (hj_scalar_text(e, &m->tmp) || !m->tmp.len)
			continue;
		t = pex_source_text(m->src, m->tmp.data, m->tmp.len);
		if (!t || json_array_append_new(list, t)) {
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
			break;
		}
	}
	if (!rc && json_array_size(list))
		return json_object_set_new(rec, "tags", list) ?
		       pex_error_set(PEX_ENOMEM, "out of memory") : 0;
	json_decref(list);
	return rc;
}

/* Members of obj no mapping reads, as extra (scalars only). */
static int build_extra(struct mctx *m, const json_t *obj, const json_t *keys,
		       const json_t *ignore, json_t **out)
{
	json_t *extra = json_object();
	const char *k;
	json_t *v;
	size_t i;

	*out = NULL;
	if (!extra)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	json_object_foreach((json_t *)obj, k, v) {
		size_t klen = strlen(k);
		json_t *val = NULL;
		int skip = 0;

		if (json_object_get(keys, k))
			continue;
		for (i = 0; i < json_array_size(ignore); i++)
			if (!strcmp(k, json_string_value(
					       json_array_get(ignore, i))))
				skip = 1;
		if (skip)
			continue;
		if (!klen || klen > HJ_EXTRA_KEY_MAX ||
		    !pex_text_is_clean(k, klen)) {
			pex_source_warn(m->src, "a field whose name is empty, "
					"too long or not clean text was left "
					"out of extra");
			continue;
		}
		if (json_is_string(v)) {
			val = pex_source_text(m->src, json_string_value(v),
					      json_string_length(v));
		} else if (json_is_object(v) || json_is_array(v)) {
			char *s = json_dumps(v, JSON_COMPACT);

			if (s)
				val = pex_source_text(m->src, s, strlen(s));
			free(s);
		} else {
			val = json_incref(v);
		}
		if (!val || json_object_set_new(extra, k, val)) {
			json_decref(extra);
			return pex_error_set(PEX_ENOMEM, "out of memory");
		}
	}
	*out = extra;
	return 0;
}

/* The metadata of one attachment: {name, media_type?, bytes?}. */
static int attachment_meta(struct mctx *m, const json_t *a,
			   const json_t *spec, size_t i, json_t *att)
{
	const json_t *bytes;
	int rc;

	rc = pick_text(m, a, json_object_get(spec, "name"));
	if (rc < 0)
		return rc;
	if (rc == 0 || !m->tmp.len) {
		pex_buf_reset(&m->tmp);
		rc = pex_buf_printf(&m->tmp, "attachment %zu", i + 1);
		if (rc)
			return rc;
	}
	if ((rc = set_text(m, att, "name", m->tmp.data, m->tmp.len)) ||
	    (rc = map_text(m, att, "media_type", a,
			   json_object_get(spec, "media_type"))))
		return rc;
	bytes = hj_pick(a, json_object_get(spec, "bytes"));
	if (json_is_string(bytes)) {
		char *end;
		long long n = strtoll(json_string_value(bytes), &end, 10);

		if (*json_string_value(bytes) && !*end && n >= 0)
			json_object_set_new(att, "bytes", json_integer(n));
	} else if (json_is_integer(bytes) && json_integer_value(bytes) >= 0) {
		json_object_set_new(att, "bytes",
				    json_incref((json_t *)bytes));
	}
	return 0;
}

static int map_attachments(struct mctx *m, json_t *msg, const json_t *obj,
			   const json_t *spec)
{
	const json_t *list = hj_pick(obj, json_object_get(spec, "list"));
	json_t *out, *att = NULL;
	size_t i;
	int rc = 0;

	if (!json_is_array(list) || !json_array_size(list))
		return 0;
	out = json_array();
	if (!out)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	for (i = 0; i < json_array_size(list); i++) {
		const json_t *a = json_array_get(list, i);

		att = json_object();
		if (!att) {
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
			goto cleanup;
		}
		rc = attachment_meta(m, a, spec, i, att);
		if (rc)
			goto cleanup;
		if (m->att_fn) {
			/* the URL is read there and never copied here */
			rc = m->att_fn(m->att_ud, spec, a, obj, &att);
			if (rc)
				goto cleanup;
		} else if (json_object_set_new(att, "withheld", json_string(
					       HJ_ATTACHMENT_NO_FN))) {
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
			goto cleanup;
		}
		if (!att || json_array_append_new(out, att)) {
			att = NULL;
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
			goto cleanup;
		}
		att = NULL;
	}
	if (json_object_set_new(msg, "attachments", out))
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
	out = NULL;
cleanup:
	json_decref(att);
	json_decref(out);
	return rc;
}

/* "inbound", "outbound" or "internal" from a direction spec:
 * {"pointer", "values" (may hold {templates}), "default", "internal",
 *  "internal_when"}. A constant string spec is taken as it is. */
static int map_direction(struct mctx *m, json_t *msg, const json_t *obj,
			 const json_t *spec)
{
	const char *dir = NULL;
	const json_t *iv;
	int rc;

	if (json_is_string(spec) && json_string_value(spec)[0] != '/') {
		dir = json_string_value(spec);
		goto set;
	}
	if (!json_is_object(spec))
		return 0;
	iv = hj_pick(obj, json_object_get(spec, "internal"));
	if (iv && json_equal((json_t *)iv, json_object_get(spec,
							   "internal_when"))) {
		dir = "internal";
		goto set;
	}
	rc = hj_scalar_text(hj_pick(obj, json_object_get(spec, "pointer")),
			    &m->tmp);
	if (!rc) {
		const char *k;
		json_t *v;

		json_object_foreach(json_object_get(spec, "values"), k, v) {
			if (hj_template(k, m->vars, 0, &m->tmp2))
				continue;
			if (!strcmp(m->tmp2.data, m->tmp.data)) {
				dir = json_string_value(v);
				break;
			}
		}
	}
	if (!dir)
		dir = json_string_value(json_object_get(spec, "default"));
set:
	if (!dir)
		return 0;
	if (strcmp(dir, "inbound") && strcmp(dir, "outbound") &&
	    strcmp(dir, "internal"))
		return pex_error_set(PEX_EINVALID, "direction '%.40s' is not "
				     "inbound, outbound or internal", dir);
	return json_object_set_new(msg, "direction", json_string(dir)) ?
	       pex_error_set(PEX_ENOMEM, "out of memory") : 0;
}

static int map_body(struct mctx *m, json_t *msg, const json_t *obj,
		    const json_t *spec)
{
	const json_t *html = hj_pick(obj, json_object_get(spec, "body_html"));
	const json_t *text = hj_pick(obj, json_object_get(spec, "body_text"));
	const json_t *body = hj_pick(obj, json_object_get(spec, "body"));
	int rc;

	if (json_is_string(body)) {
		/* one body whose content type says what it is (Zammad) */
		rc = pick_text(m, obj, json_object_get(spec, "content_type"));
		if (rc < 0)
			return rc;
		if (rc > 0 && !strncasecmp(m->tmp.data, "text/html", 9)) {
			if (!html)
				html = body;
		} else if (!text) {
			text = body;
		}
	}
	if (json_is_string(html) && json_string_length(html)) {
		rc = set_text(m, msg, "body_html", json_string_value(html),
			      json_string_length(html));
		if (rc)
			return rc;
		if (!json_is_string(text)) {
			rc = hj_html_text(json_string_value(html),
					  json_string_length(html), &m->tmp);
			if (rc)
				return rc;
			return set_text(m, msg, "body_text", m->tmp.data,
					m->tmp.len);
		}
	}
	if (json_is_string(text))
		return set_text(m, msg, "body_text", json_string_value(text),
				json_string_length(text));
	return 0;
}

static int map_message(struct mctx *m, const json_t *obj, const json_t *spec,
		       const json_t *keys, const json_t *ignore, json_t **out)
{
	json_t *msg = json_object();
	json_t *extra = NULL;
	int rc;

	*out = NULL;
	if (!msg)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	if ((rc = map_time(m, msg, NULL, "at", obj,
			   json_object_get(spec, "at"))) ||
	    (rc = map_text(m, msg, "from", obj,
			   json_object_get(spec, "from"))) ||
	    (rc = map_direction(m, msg, obj,
				json_object_get(spec, "direction"))) ||
	    (rc = map_body(m, msg, obj, spec)) ||
	    (rc = map_attachments(m, msg, obj,
				  json_object_get(spec, "attachments"))))
		goto cleanup;
	if (keys) {
		rc = build_extra(m, obj, keys, ignore, &extra);
		if (rc)
			goto cleanup;
		if (json_object_size(extra))
			json_object_set(msg, "extra", extra);
	}
	*out = msg;
	msg = NULL;
cleanup:
	json_decref(extra);
	json_decref(msg);
	return rc;
}

static const char *const ticket_text_fields[] = {
	"number", "title", "status", "priority", "requester", "assignee",
	NULL
};
static const char *const ticket_time_fields[] = {
	"created_at", "updated_at", "closed_at", NULL
};

int hj_map_ticket(struct pex_source *src, const json_t *map,
		  const json_t *ticket, const json_t *messages,
		  const char *id, const json_t *vars,
		  const struct pex_identity *matched_by, const json_t *tkeys,
		  const json_t *mkeys, hj_att_fn att_fn, void *att_ud,
		  json_t **out)
{
	struct mctx m = { src, vars, PEX_BUF_INIT(HJ_TEXT_MAX),
			  PEX_BUF_INIT(HJ_TEXT_MAX), att_fn, att_ud };
	const json_t *fields = json_object_get(map, "fields");
	const json_t *mspec = json_object_get(map, "message_fields");
	const json_t *ispec = json_object_get(map, "initial_message");
	const json_t *ignore = json_object_get(map, "ignore");
	json_t *rec = json_object();
	json_t *extra = NULL, *msgs = json_array();
	size_t i;
	int rc = 0;

	*out = NULL;
	if (!rec || !msgs) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = build_extra(&m, ticket, tkeys, ignore, &extra);
	if (rc)
		goto cleanup;
	json_object_set_new(rec, "id", json_string(id));
	json_object_set_new(rec, "matched_by", pex_matched_by(matched_by));
	for (i = 0; ticket_text_fields[i]; i++) {
		rc = map_text(&m, rec, ticket_text_fields[i], ticket,
			      json_object_get(fields, ticket_text_fields[i]));
		if (rc)
			goto cleanup;
	}
	for (i = 0; ticket_time_fields[i]; i++) {
		rc = map_time(&m, rec, extra, ticket_time_fields[i], ticket,
			      json_object_get(fields, ticket_time_fields[i]));
		if (rc)
			goto cleanup;
	}
	rc = map_tags(&m, rec, ticket, json_object_get(fields, "tags"));
	if (rc)
		goto cleanup;
	if (json_is_object(ispec)) {
		json_t *msg;

		/* the ticket's own description is its first message; its
		 * members are already in the ticket's extra */
		rc = map_message(&m, ticket, ispec, NULL, NULL, &msg);
		if (rc)
			goto cleanup;
		if (json_object_size(msg) &&
		    json_array_append_new(msgs, msg)) {
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	for (i = 0; i < json_array_size(messages); i++) {
		const json_t *mo = json_array_get(messages, i);
		json_t *msg;

		if (!json_is_object(mo)) {
			pex_source_warn(src, "a message that is not a JSON "
					"object was skipped");
			continue;
		}
		rc = map_message(&m, mo, mspec, mkeys, ignore, &msg);
		if (rc)
			goto cleanup;
		if (json_array_append_new(msgs, msg)) {
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	if (json_array_size(msgs))
		json_object_set(rec, "messages", msgs);
	json_object_set(rec, "extra", extra);
	*out = rec;
	rec = NULL;
cleanup:
	if (rc)
		pex_error_wrap(rc, "ticket %.100s", id);
	json_decref(rec);
	json_decref(extra);
	json_decref(msgs);
	pex_buf_free(&m.tmp);
	pex_buf_free(&m.tmp2);
	return rc;
}
