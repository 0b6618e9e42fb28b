/*
 * Validator: walks a compiled schema (read-only) over a jansson instance.
 *
 * All per-call state lives in struct vctx on the caller's stack, so one
 * compiled schema serves any number of threads at once. The instance path
 * is a chain of js_path frames on the C stack; it becomes a JSON Pointer
 * string only when an error is reported, so a valid instance costs no
 * allocation except one PCRE2 match block when a pattern is used.
 * Sub-schemas whose failures are not errors by themselves (anyOf, oneOf,
 * not, if, contains) run "quiet": they stop at the first failure and
 * report nothing.
 */
#include "jsonschema/js_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"
#include "portex/error.h"

/* Longest message and longest quoted instance text in a message. */
#define PEX_JS_MSG_MAX 512
#define PEX_JS_SHOW_MAX 48

struct js_path {
	const struct js_path *up;
	const char *key; /* NULL: array index */
	size_t klen;
	size_t index;
	int depth;
};

struct vctx {
	const pex_schema *s;
	int flags;
	pex_schema_error_cb cb;
	void *payload;
	int quiet;   /* > 0 inside anyOf/oneOf/not/if/contains */
	int stop;    /* first error seen, or the callback asked to stop */
	int invalid; /* an error was reported */
	int frames;
	pcre2_match_data *md;
};

static int v_node(struct vctx *c, const struct js_node *n, const json_t *x,
		  const struct js_path *p);

/* ---- error reporting ---- */

static char *pointer_string(const struct js_path *p)
{
	const struct js_path *q;
	size_t len = 1, o = 0, i;
	char *s;

	for (q = p; q && q->up; q = q->up) {
		len += 22;
		if (q->key)
			len += q->klen * 2;
	}
	s = malloc(len);
	if (!s)
		return NULL;
	/* write segments back to front */
	o = len - 1;
	s[o] = '\0';
	for (q = p; q && q->up; q = q->up) {
		if (q->key) {
			for (i = q->klen; i > 0; i--) {
				char ch = q->key[i - 1];

				if (ch == '~' || ch == '/') {
					s[--o] = ch == '~' ? '0' : '1';
					s[--o] = '~';
				} else {
					s[--o] = ch ? ch : '?';
				}
			}
		} else {
			char num[24];
			int nl = snprintf(num, sizeof(num), "%zu", q->index);

			o -= (size_t)nl;
			memcpy(s + o, num, (size_t)nl);
		}
		s[--o] = '/';
	}
	memmove(s, s + o, len - o);
	return s;
}

static int report(struct vctx *c, const struct js_node *n, const char *kw,
		  const struct js_path *p, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int report(struct vctx *c, const struct js_node *n, const char *kw,
		  const struct js_path *p, const char *fmt, ...)
{
	char msg[PEX_JS_MSG_MAX];
	pex_schema_error err;
	char *ipath, *spath;
	size_t sl;
	va_list ap;
	int r;

	if (c->quiet)
		return 1;
	c->invalid = 1;
	if (!(c->flags & PEX_SCHEMA_ALL_ERRORS))
		c->stop = 1;
	if (!c->cb)
		return 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pex_utf8_mend(msg); /* a value quoted and cut: still text */
	ipath = pointer_string(p);
	sl = strlen(n->loc) + (kw ? strlen(kw) + 2 : 1);
	spath = malloc(sl);
	if (!ipath || !spath) {
		free(ipath);
		free(spath);
		return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	if (kw)
		snprintf(spath, sl, "%s/%s", n->loc, kw);
	else
		snprintf(spath, sl, "%s", n->loc);
	err.instance_path = ipath;
	err.schema_path = spath;
	err.message = msg;
	r = c->cb(&err, c->payload);
	free(ipath);
	free(spath);
	if (r)
		c->stop = 1;
	return 1;
}

/* Length of the valid UTF-8 sequence at s, or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	unsigned cp;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > len)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* Instance text fit for a one-line message: at most PEX_JS_SHOW_MAX
 * bytes, no control characters, invalid UTF-8 shown as '?'. */
static const char *shown(char *buf, size_t cap, const char *s, size_t len)
{
	size_t i = 0, o = 0, k;

	while (i < len && o + 8 < cap && o < PEX_JS_SHOW_MAX) {
		unsigned char ch = (unsigned char)s[i];

		k = utf8_seq((const unsigned char *)s + i, len - i);
		if (k == 0 || ch < 0x20 || ch == 0x7f || ch == '"') {
			buf[o++] = ch == '"' ? '\'' : '?';
			i++;
			continue;
		}
		memcpy(buf + o, s + i, k);
		o += k;
		i += k;
	}
	if (i < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

static const char *type_name(const json_t *x)
{
	switch (json_typeof(x)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	default:
		return "null";
	}
}

static const char *types_text(char *buf, size_t cap, unsigned types)
{
	static const struct {
		unsigned bit;
		const char *name;
	} t[] = {{JT_OBJ, "object"}, {JT_ARR, "array"},	  {JT_STR, "string"},
		 {JT_NUM, "number"}, {JT_INT, "integer"}, {JT_BOOL, "boolean"},
		 {JT_NULL, "null"}};
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (!(types & t[i].bit))
			continue;
		if (t[i].bit == JT_INT && (types & JT_NUM))
			continue; /* "number" already covers it */
		o += (size_t)snprintf(buf + o, cap - o, "%s%s",
				      o ? " or " : "", t[i].name);
		if (o >= cap)
			break;
	}
	if (!buf[0])
		snprintf(buf, cap, "nothing");
	return buf;
}

static const char *num_text(char *buf, size_t cap, const struct js_num *n)
{
	if (n->is_int)
		snprintf(buf, cap, "%lld", (long long)n->i);
	else
		snprintf(buf, cap, "%.17g", n->d);
	return buf;
}

/* ---- values ---- */

static unsigned inst_type(const json_t *x)
{
	double d;

	switch (json_typeof(x)) {
	case JSON_OBJECT:
		return JT_OBJ;
	case JSON_ARRAY:
		return JT_ARR;
	case JSON_STRING:
		return JT_STR;
	case JSON_INTEGER:
		return JT_INT | JT_NUM;
	case JSON_REAL:
		d = json_real_value(x);
		return (isfinite(d) && d == floor(d)) ? (JT_INT | JT_NUM)
						      : JT_NUM;
	case JSON_TRUE:
	case JSON_FALSE:
		return JT_BOOL;
	default:
		return JT_NULL;
	}
}

static long double num_ld(const json_t *x)
{
	if (json_is_integer(x))
		return (long double)json_integer_value(x);
	return (long double)json_real_value(x);
}

/* Sign of x - lim, exact for any two int64 / double values (x86-64 long
 * double holds every int64 exactly). */
static int num_cmp(const json_t *x, const struct js_num *lim)
{
	long double a, b;

	if (json_is_integer(x) && lim->is_int) {
		json_int_t v = json_integer_value(x);

		return v < lim->i ? -1 : v > lim->i;
	}
	a = num_ld(x);
	b = lim->is_int ? (long double)lim->i : (long double)lim->d;
	return a < b ? -1 : a > b;
}

static int depth_error(void)
{
	return pex_error_set(PEX_ELIMIT,
			     "instance nested deeper than %d levels",
			     PEX_JS_MAX_DEPTH);
}

/* 1 equal, 0 not, negative on too deep a value. Numbers compare by
 * value, so 1 and 1.0 are equal. */
static int js_equal(const json_t *a, const json_t *b, int depth)
{
	size_t i, n, klen;
	const char *key;
	json_t *v;
	int r;

	if (depth > PEX_JS_MAX_DEPTH)
		return depth_error();
	if (json_is_number(a) && json_is_number(b)) {
		if (json_is_integer(a) && json_is_integer(b))
			return json_integer_value(a) == json_integer_value(b);
		return num_ld(a) == num_ld(b);
	}
	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_STRING:
		n = json_string_length(a);
		return n == json_string_length(b) &&
		       !memcmp(json_string_value(a), json_string_value(b), n);
	case JSON_ARRAY:
		n = json_array_size(a);
		if (n != json_array_size(b))
			return 0;
		for (i = 0; i < n; i++) {
			r = js_equal(json_array_get(a, i),
				     json_array_get(b, i), depth + 1);
			if (r <= 0)
				return r;
		}
		return 1;
	case JSON_OBJECT:
		if (json_object_size(a) != json_object_size(b))
			return 0;
		json_object_keylen_foreach((json_t *)a, key, klen, v)
		{
			const json_t *w = json_object_getn(b, key, klen);

			if (!w)
				return 0;
			r = js_equal(v, w, depth + 1);
			if (r <= 0)
				return r;
		}
		return 1;
	default:
		return 1; /* true, false, null */
	}
}

/* Hash consistent with js_equal; 0 with *err set on too deep a value. */
static uint64_t js_hash(const json_t *x, int depth, int *err)
{
	uint64_t h = 1469598103934665603ULL, e;
	size_t i, klen;
	const char *key;
	json_t *v;
	double d;

	if (depth > PEX_JS_MAX_DEPTH) {
		*err = 1;
		return 0;
	}
	switch (json_typeof(x)) {
	case JSON_INTEGER:
		return (uint64_t)json_integer_value(x) * 0x9E3779B97F4A7C15ULL;
	case JSON_REAL:
		d = json_real_value(x);
		if (d == floor(d) && d >= -9.2e18 && d <= 9.2e18)
			return (uint64_t)(json_int_t)d * 0x9E3779B97F4A7C15ULL;
		memcpy(&e, &d, sizeof(e));
		return e * 0xff51afd7ed558ccdULL;
	case JSON_STRING:
		return pex_js_key_hash(json_string_value(x),
				       json_string_length(x));
	case JSON_ARRAY:
		for (i = 0; i < json_array_size(x); i++)
			h = (h ^
			     js_hash(json_array_get(x, i), depth + 1, err)) *
			    1099511628211ULL;
		return h ^ 0xA;
	case JSON_OBJECT:
		e = 0;
		json_object_keylen_foreach((json_t *)x, key, klen, v)
		{
			/* order-free: sum of per-member hashes */
			e += (pex_js_key_hash(key, klen) * 31u) ^
			     js_hash(v, depth + 1, err);
		}
		return e ^ 0x0B;
	case JSON_TRUE:
		return 0x71;
	case JSON_FALSE:
		return 0xF0;
	default:
		return 0x11;
	}
}

struct hidx {
	uint64_t h;
	size_t i;
};

static int hidx_cmp(const void *a, const void *b)
{
	const struct hidx *x = a, *y = b;

	return x->h < y->h ? -1 : x->h > y->h;
}

/* 1 when all items differ, 0 when two are equal (*i, *j), < 0 error. */
static int all_unique(const json_t *arr, size_t *di, size_t *dj)
{
	size_t n = json_array_size(arr), i, j;
	struct hidx *hs;
	int r, err = 0;

	if (n <= 16) {
		for (i = 0; i < n; i++)
			for (j = i + 1; j < n; j++) {
				r = js_equal(json_array_get(arr, i),
					     json_array_get(arr, j), 0);
				if (r < 0)
					return r;
				if (r) {
					*di = i;
					*dj = j;
					return 0;
				}
			}
		return 1;
	}
	hs = malloc(n * sizeof(*hs));
	if (!hs)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		hs[i].h = js_hash(json_array_get(arr, i), 0, &err);
		hs[i].i = i;
	}
	if (err) {
		free(hs);
		return depth_error();
	}
	qsort(hs, n, sizeof(*hs), hidx_cmp);
	for (i = 0; i < n; i++) {
		for (j = i + 1; j < n && hs[j].h == hs[i].h; j++) {
			r = js_equal(json_array_get(arr, hs[i].i),
				     json_array_get(arr, hs[j].i), 0);
			if (r < 0) {
				free(hs);
				return r;
			}
			if (r) {
				*di = hs[i].i < hs[j].i ? hs[i].i : hs[j].i;
				*dj = hs[i].i < hs[j].i ? hs[j].i : hs[i].i;
				free(hs);
				return 0;
			}
		}
	}
	free(hs);
	return 1;
}

/* ---- per-type keywords ---- */

#define CHECK(expr)                                                           \
	do {                                                                  \
		int r_ = (expr);                                              \
		if (r_ < 0)                                                   \
			return r_;                                            \
		if (r_ > 0) {                                                 \
			bad = 1;                                              \
			if (c->quiet || c->stop)                              \
				return 1;                                     \
		}                                                             \
	} while (0)

#define FAIL(...) CHECK(report(c, __VA_ARGS__))

/* v as compact JSON in out, cut at max bytes with "..."; 0 when it
 * cannot be written. */
static int enum_text(const json_t *v, char *out, size_t outsz, size_t max)
{
	char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	size_t n;

	if (!t)
		return 0;
	n = strlen(t);
	if (n > max && max + 4 <= outsz) {
		size_t cut = max;

		/* not inside a character */
		while (cut && ((unsigned char)t[cut] & 0xC0) == 0x80)
			cut--;
		snprintf(out, outsz, "%.*s...", (int)cut, t);
	}
	else
		snprintf(out, outsz, "%s", t);
	free(t);
	return n <= max || max + 4 <= outsz;
}

/* An enum's values, comma-separated, when they fit out whole. */
static int enum_list(const json_t *vals, char *out, size_t outsz)
{
	size_t i, used = 0;

	out[0] = '\0';
	for (i = 0; i < json_array_size(vals); i++) {
		char one[64];
		int w;

		if (!enum_text(json_array_get(vals, i), one, sizeof(one), 60))
			return 0;
		w = snprintf(out + used, outsz - used, "%s%s", i ? ", " : "",
			     one);
		if (w < 0 || (size_t)w >= outsz - used)
			return 0;
		used += (size_t)w;
	}
	return 1;
}

/* 1 match, 0 no match, 2 subject is not UTF-8, < 0 error. */
static int re_search(struct vctx *c, const pcre2_code *re, const char *s,
		     size_t len)
{
	int rc;

	if (!c->md) {
		c->md = pcre2_match_data_create(1, NULL);
		if (!c->md)
			return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, c->md, c->s->mctx);
	if (rc >= 0)
		return 1;
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	if (rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21)
		return 2;
	{
		PCRE2_UCHAR msg[128];

		pcre2_get_error_message(rc, msg, sizeof(msg));
		return pex_error_set(PEX_ELIMIT, "regex match failed: %s",
				     (char *)msg);
	}
}

static size_t code_points(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

static int content_ok(const struct js_node *n, const char *s, size_t len)
{
	unsigned char *dec = NULL;
	size_t dlen = 0;
	json_t *j;

	if (n->content_base64) {
		if (!pex_js_base64_check(s, len, n->content_json ? &dec : NULL,
					 &dlen))
			return 0;
		if (dec) {
			s = (const char *)dec;
			len = dlen;
		}
	}
	if (n->content_json) {
		j = json_loadb(s, len, JSON_DECODE_ANY, NULL);
		free(dec);
		if (!j)
			return 0;
		json_decref(j);
		return 1;
	}
	free(dec);
	return 1;
}

/* String keywords on raw bytes (also used for property names). */
static int v_string(struct vctx *c, const struct js_node *n, const char *s,
		    size_t len, const struct js_path *p)
{
	char sb[PEX_JS_SHOW_MAX + 16];
	int bad = 0, r;

	if (n->has & (HAS_MAXLEN | HAS_MINLEN)) {
		/* bytes bound code points from above: count only if needed */
		size_t cp = SIZE_MAX;

		if ((n->has & HAS_MAXLEN) && len > n->max_length) {
			cp = code_points(s, len);
			if (cp > n->max_length)
				FAIL(n, "maxLength", p,
				     "string is longer than %zu characters",
				     n->max_length);
		}
		if ((n->has & HAS_MINLEN) && len < n->min_length)
			FAIL(n, "minLength", p,
			     "string is shorter than %zu characters",
			     n->min_length);
		else if ((n->has & HAS_MINLEN) && n->min_length > 0 &&
			 len / 4 < n->min_length) {
			if (cp == SIZE_MAX)
				cp = code_points(s, len);
			if (cp < n->min_length)
				FAIL(n, "minLength", p,
				     "string is shorter than %zu characters",
				     n->min_length);
		}
	}
	if (n->pattern) {
		r = re_search(c, n->pattern, s, len);
		if (r < 0)
			return r;
		if (r == 2)
			FAIL(n, "pattern", p, "string is not valid UTF-8");
		else if (r == 0)
			FAIL(n, "pattern", p, "\"%s\" does not match \"%s\"",
			     shown(sb, sizeof(sb), s, len), n->pattern_src);
	}
	if (n->format && !(c->flags & PEX_SCHEMA_NO_FORMAT) &&
	    !pex_js_format_check(n->format, s, len))
		FAIL(n, "format", p, "\"%s\" is not a valid %s",
		     shown(sb, sizeof(sb), s, len),
		     pex_js_format_name(n->format));
	if ((n->content_base64 || n->content_json) &&
	    !(c->flags & PEX_SCHEMA_NO_FORMAT) && !content_ok(n, s, len))
		FAIL(n,
		     n->content_base64 ? "contentEncoding"
				       : "contentMediaType",
		     p, "string content does not match %s",
		     n->content_base64 ? "contentEncoding"
				       : "contentMediaType");
	return bad;
}

static int v_number(struct vctx *c, const struct js_node *n, const json_t *x,
		    const struct js_path *p)
{
	char nb[40];
	int bad = 0;

	if (n->has & HAS_MAXIMUM && num_cmp(x, &n->maximum) > 0)
		FAIL(n, "maximum", p, "value is greater than %s",
		     num_text(nb, sizeof(nb), &n->maximum));
	if (n->has & HAS_EXMAXIMUM && num_cmp(x, &n->ex_maximum) >= 0)
		FAIL(n, "exclusiveMaximum", p, "value is not less than %s",
		     num_text(nb, sizeof(nb), &n->ex_maximum));
	if (n->has & HAS_MINIMUM && num_cmp(x, &n->minimum) < 0)
		FAIL(n, "minimum", p, "value is less than %s",
		     num_text(nb, sizeof(nb), &n->minimum));
	if (n->has & HAS_EXMINIMUM && num_cmp(x, &n->ex_minimum) <= 0)
		FAIL(n, "exclusiveMinimum", p, "value is not greater than %s",
		     num_text(nb, sizeof(nb), &n->ex_minimum));
	if (n->has & HAS_MULTIPLE) {
		int ok;

		if (json_is_integer(x) && n->multiple_of.is_int) {
			ok = json_integer_value(x) % n->multiple_of.i == 0;
		} else {
			double q = (double)num_ld(x) / n->multiple_of.d;
			double r = nearbyint(q);

			ok = isfinite(q) &&
			     fabs(q - r) <= 1e-9 * fmax(1.0, fabs(r));
		}
		if (!ok)
			FAIL(n, "multipleOf", p,
			     "value is not a multiple of %s",
			     num_text(nb, sizeof(nb), &n->multiple_of));
	}
	return bad;
}

static int v_array(struct vctx *c, const struct js_node *n, const json_t *x,
		   const struct js_path *p)
{
	size_t size = json_array_size(x), i, di = 0, dj = 0;
	struct js_path cp = {p, NULL, 0, 0, p->depth + 1};
	int bad = 0, r;

	if (n->has & HAS_MAXITEMS && size > n->max_items)
		FAIL(n, "maxItems", p, "array has more than %zu items",
		     n->max_items);
	if (n->has & HAS_MINITEMS && size < n->min_items)
		FAIL(n, "minItems", p, "array has fewer than %zu items",
		     n->min_items);
	if ((n->items || n->items_arr || n->contains) && size > 0 &&
	    cp.depth > PEX_JS_MAX_DEPTH)
		return depth_error();
	if (n->items) {
		for (i = 0; i < size; i++) {
			cp.index = i;
			CHECK(v_node(c, n->items, json_array_get(x, i), &cp));
		}
	} else if (n->items_arr) {
		for (i = 0; i < size && i < n->n_items; i++) {
			cp.index = i;
			CHECK(v_node(c, n->items_arr[i], json_array_get(x, i),
				     &cp));
		}
		if (n->additional_items && size > n->n_items) {
			if (n->additional_items->boolean == 0) {
				FAIL(n, "additionalItems", p,
				     "array has more than %zu items",
				     n->n_items);
			} else {
				for (i = n->n_items; i < size; i++) {
					cp.index = i;
					CHECK(v_node(c, n->additional_items,
						     json_array_get(x, i),
						     &cp));
				}
			}
		}
	}
	if (n->contains) {
		int found = 0;

		c->quiet++;
		for (i = 0; i < size && !found; i++) {
			cp.index = i;
			r = v_node(c, n->contains, json_array_get(x, i), &cp);
			if (r < 0) {
				c->quiet--;
				return r;
			}
			found = r == 0;
		}
		c->quiet--;
		if (!found)
			FAIL(n, "contains", p,
			     "no item matches the \"contains\" schema");
	}
	if (n->has & HAS_UNIQUE && size > 1) {
		r = all_unique(x, &di, &dj);
		if (r < 0)
			return r;
		if (r == 0)
			FAIL(n, "uniqueItems", p,
			     "items %zu and %zu are equal", di, dj);
	}
	return bad;
}

static const struct js_node *prop_find(const struct js_node *n,
				       const char *key, size_t klen)
{
	size_t slot = pex_js_key_hash(key, klen) & n->prop_mask;
	uint32_t k;

	while ((k = n->prop_table[slot]) != 0) {
		const struct js_prop *pr = &n->props[k - 1];

		if (pr->klen == klen && !memcmp(pr->key, key, klen))
			return pr->node;
		slot = (slot + 1) & n->prop_mask;
	}
	return NULL;
}

static const struct js_node *follow(const struct js_node *n)
{
	while (n->ref)
		n = n->ref;
	return n;
}

static int v_property_name(struct vctx *c, const struct js_node *pn,
			   const char *key, size_t klen,
			   const struct js_path *cp)
{
	char sb[PEX_JS_SHOW_MAX + 16];
	json_t *js;
	int bad = 0, r;

	pn = follow(pn);
	if (pn->boolean == 1)
		return 0;
	if (pn->boolean == 0)
		return report(c, pn, NULL, cp,
			      "property name \"%s\" is not allowed",
			      shown(sb, sizeof(sb), key, klen));
	if (pn->has & HAS_ONLY_STRING_KW) {
		if (pn->types && !(pn->types & JT_STR))
			FAIL(pn, "type", cp,
			     "property name is a string, not allowed here");
		CHECK(v_string(c, pn, key, klen, cp));
		return bad;
	}
	/* the sub-schema needs a real JSON value: build one */
	js = json_stringn_nocheck(key, klen);
	if (!js)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	r = v_node(c, pn, js, cp);
	json_decref(js);
	return r;
}

static int v_object(struct vctx *c, const struct js_node *n, const json_t *x,
		    const struct js_path *p)
{
	char sb[PEX_JS_SHOW_MAX + 16], sb2[PEX_JS_SHOW_MAX + 16];
	size_t size = json_object_size(x), i, klen, j;
	struct js_path cp = {p, NULL, 0, 0, p->depth + 1};
	const char *key;
	json_t *val, *s;
	int bad = 0, r;

	if (n->has & HAS_MAXPROPS && size > n->max_props)
		FAIL(n, "maxProperties", p,
		     "object has more than %zu properties", n->max_props);
	if (n->has & HAS_MINPROPS && size < n->min_props)
		FAIL(n, "minProperties", p,
		     "object has fewer than %zu properties", n->min_props);
	if (n->required) {
		json_array_foreach(n->required, i, s)
		{
			if (!json_object_getn(x, json_string_value(s),
					      json_string_length(s)))
				FAIL(n, "required", p,
				     "required property \"%s\" is missing",
				     shown(sb, sizeof(sb),
					   json_string_value(s),
					   json_string_length(s)));
		}
	}
	if (size > 0 && cp.depth > PEX_JS_MAX_DEPTH &&
	    (n->n_props || n->n_pat || n->additional_props ||
	     n->property_names))
		return depth_error();
	if (n->n_pat || n->additional_props) {
		json_object_keylen_foreach((json_t *)x, key, klen, val)
		{
			const struct js_node *pn = NULL;
			int matched = 0;

			cp.key = key;
			cp.klen = klen;
			if (n->n_props)
				pn = prop_find(n, key, klen);
			if (pn) {
				matched = 1;
				CHECK(v_node(c, pn, val, &cp));
			}
			for (j = 0; j < n->n_pat; j++) {
				r = re_search(c, n->pat_props[j].re, key,
					      klen);
				if (r < 0)
					return r;
				if (r != 1)
					continue;
				matched = 1;
				CHECK(v_node(c, n->pat_props[j].node, val,
					     &cp));
			}
			if (matched || !n->additional_props)
				continue;
			if (n->additional_props->boolean == 0)
				FAIL(n, "additionalProperties", &cp,
				     "property \"%s\" is not allowed",
				     shown(sb, sizeof(sb), key, klen));
			else
				CHECK(v_node(c, n->additional_props, val,
					     &cp));
		}
	} else if (n->n_props) {
		for (i = 0; i < n->n_props; i++) {
			val = json_object_getn(x, n->props[i].key,
					       n->props[i].klen);
			if (!val)
				continue;
			cp.key = n->props[i].key;
			cp.klen = n->props[i].klen;
			CHECK(v_node(c, n->props[i].node, val, &cp));
		}
	}
	for (i = 0; i < n->n_deps; i++) {
		const struct js_dep *d = &n->deps[i];

		if (!json_object_getn(x, d->key, d->klen))
			continue;
		if (d->node) {
			CHECK(v_node(c, d->node, x, p));
			continue;
		}
		json_array_foreach(d->names, j, s)
		{
			if (!json_object_getn(x, json_string_value(s),
					      json_string_length(s)))
				FAIL(n, "dependencies", p,
				     "property \"%s\" requires property "
				     "\"%s\"",
				     shown(sb, sizeof(sb), d->key, d->klen),
				     shown(sb2, sizeof(sb2),
					   json_string_value(s),
					   json_string_length(s)));
		}
	}
	if (n->property_names) {
		json_object_keylen_foreach((json_t *)x, key, klen, val)
		{
			cp.key = key;
			cp.klen = klen;
			CHECK(v_property_name(c, n->property_names, key, klen,
					      &cp));
		}
	}
	return bad;
}

static int v_quiet(struct vctx *c, const struct js_node *n, const json_t *x,
		   const struct js_path *p)
{
	int r;

	c->quiet++;
	r = v_node(c, n, x, p);
	c->quiet--;
	return r;
}

static int v_applicators(struct vctx *c, const struct js_node *n,
			 const json_t *x, const struct js_path *p)
{
	size_t i, first = 0, hits = 0;
	int bad = 0, r;

	for (i = 0; i < n->n_all; i++)
		CHECK(v_node(c, n->all_of[i], x, p));
	if (n->n_any) {
		for (i = 0; i < n->n_any; i++) {
			r = v_quiet(c, n->any_of[i], x, p);
			if (r <= 0)
				break;
		}
		if (r < 0)
			return r;
		if (i == n->n_any)
			FAIL(n, "anyOf", p,
			     "value matches none of the anyOf schemas");
	}
	if (n->n_one) {
		for (i = 0; i < n->n_one && hits < 2; i++) {
			r = v_quiet(c, n->one_of[i], x, p);
			if (r < 0)
				return r;
			if (r == 0 && hits++ == 0)
				first = i;
		}
		if (hits == 0)
			FAIL(n, "oneOf", p,
			     "value matches none of the oneOf schemas");
		else if (hits > 1)
			FAIL(n, "oneOf", p,
			     "value matches oneOf schemas %zu and %zu, "
			     "only one is allowed",
			     first, i - 1);
	}
	if (n->not_s) {
		r = v_quiet(c, n->not_s, x, p);
		if (r < 0)
			return r;
		if (r == 0)
			FAIL(n, "not", p,
			     "value must not match the \"not\" schema");
	}
	if (n->if_s) {
		r = v_quiet(c, n->if_s, x, p);
		if (r < 0)
			return r;
		if (r == 0 && n->then_s)
			CHECK(v_node(c, n->then_s, x, p));
		else if (r > 0 && n->else_s)
			CHECK(v_node(c, n->else_s, x, p));
	}
	return bad;
}

static int v_body(struct vctx *c, const struct js_node *n, const json_t *x,
		  const struct js_path *p)
{
	char tb[80];
	int bad = 0, r;
	size_t i;

	if (n->types && !(n->types & inst_type(x)))
		FAIL(n, "type", p, "expected %s, got %s",
		     types_text(tb, sizeof(tb), n->types), type_name(x));
	switch (json_typeof(x)) {
	case JSON_STRING:
		if (n->has & HAS_STR_KW)
			CHECK(v_string(c, n, json_string_value(x),
				       json_string_length(x), p));
		break;
	case JSON_INTEGER:
	case JSON_REAL:
		if (n->has & HAS_NUM_KW)
			CHECK(v_number(c, n, x, p));
		break;
	case JSON_ARRAY:
		if (n->has & HAS_ARR_KW)
			CHECK(v_array(c, n, x, p));
		break;
	case JSON_OBJECT:
		if (n->has & HAS_OBJ_KW)
			CHECK(v_object(c, n, x, p));
		break;
	default:
		break;
	}
	if (n->has & HAS_ENUM) {
		size_t cnt = json_array_size(n->enum_v);

		for (i = 0; i < cnt; i++) {
			r = js_equal(x, json_array_get(n->enum_v, i), 0);
			if (r < 0)
				return r;
			if (r)
				break;
		}
		if (i == cnt) {
			char got[64], list[256];

			/* say what came and what would do, when short */
			if (!enum_text(x, got, sizeof(got), 48) ||
			    cnt > 12 || !enum_list(n->enum_v, list,
						   sizeof(list)))
				FAIL(n, "enum", p, "value is not one of the "
				     "%zu allowed values", cnt);
			else
				FAIL(n, "enum", p, "%s is not one of the "
				     "allowed values: %s", got, list);
		}
	}
	if (n->has & HAS_CONST) {
		r = js_equal(x, n->const_v, 0);
		if (r < 0)
			return r;
		if (!r)
			FAIL(n, "const", p,
			     "value does not equal the constant");
	}
	if (n->has & HAS_APPLICATOR)
		CHECK(v_applicators(c, n, x, p));
	return bad;
}

static int v_node(struct vctx *c, const struct js_node *n, const json_t *x,
		  const struct js_path *p)
{
	int r;

	n = follow(n);
	if (n->boolean >= 0)
		return n->boolean ? 0
				  : report(c, n, NULL, p,
					   "no value is allowed here");
	if (++c->frames > PEX_JS_MAX_FRAMES) {
		c->frames--;
		return pex_error_set(PEX_ELIMIT,
				     "schema applied more than %d levels deep",
				     PEX_JS_MAX_FRAMES);
	}
	r = v_body(c, n, x, p);
	c->frames--;
	return r;
}

int pex_schema_validate(const pex_schema *schema, const json_t *instance,
			int flags, pex_schema_error_cb cb, void *payload)
{
	struct js_path root = {NULL, NULL, 0, 0, 0};
	struct vctx c = {0};
	int r;

	if (!schema || !instance)
		return pex_error_set(PEX_EUSAGE,
				     "schema and instance required");
	c.s = schema;
	c.flags = flags;
	c.cb = cb;
	c.payload = payload;
	r = v_node(&c, schema->root, instance, &root);
	pcre2_match_data_free(c.md);
	if (r < 0)
		return r;
	return (r > 0 || c.invalid) ? 1 : 0;
}
