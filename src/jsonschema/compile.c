/*
 * Schema compiler: JSON Schema document(s) -> graph of js_node.
 *
 * Each schema object (a json_t) becomes exactly one node, found again
 * through a pointer-keyed memo table, so $ref cycles become cycles in the
 * node graph rather than endless compilation. Work is done from an
 * explicit work list, not by recursion, so a long chain of definitions
 * cannot exhaust the C stack. After compilation a pass rejects cycles that
 * never step into the instance ({"$ref": "#"}, a -> b -> a, allOf loops),
 * which would otherwise recurse for ever at validation time.
 */
#include "jsonschema/js_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portex/error.h"

/* Longest JSON Pointer token we decode from a $ref fragment. */
#define PEX_JS_MAX_TOKEN 1024

struct memo_ent {
	const json_t *k;
	struct js_node *v;
};

struct id_ent {
	char *uri;	    /* resolved $id (with fragment for anchors) */
	const json_t *json; /* the schema object carrying the $id */
	char *base;	    /* base URI in force *around* that object */
};

struct work {
	struct js_node *n;
	const json_t *json;
	char *base;
	int depth;
};

struct cctx {
	pex_schema *s;
	pex_schema_registry *reg;
	struct memo_ent *memo;
	size_t memo_cap, memo_n;
	struct id_ent *ids;
	size_t n_ids, cap_ids;
	const json_t **scanned;
	size_t n_scanned, cap_scanned;
	struct work *work;
	size_t n_work, cap_work;
};

static int oom(void)
{
	return pex_error_set(PEX_ENOMEM, "out of memory");
}

/* Grow *arr (of elem-size sz) so that it holds at least n + 1 items. */
static int grow(void *arr, size_t *cap, size_t n, size_t sz)
{
	void **p = arr;
	size_t nc;
	void *np;

	if (n < *cap)
		return 0;
	nc = *cap ? *cap * 2 : 16;
	np = realloc(*p, nc * sz);
	if (!np)
		return oom();
	*p = np;
	*cap = nc;
	return 0;
}

static int add_doc(struct cctx *c, json_t *doc)
{
	size_t i, cap;

	for (i = 0; i < c->s->n_docs; i++)
		if (c->s->docs[i] == doc)
			return 0;
	/* docs grows one by one; realloc to exact size is fine (few docs) */
	cap = c->s->n_docs + 1;
	{
		json_t **nd = realloc(c->s->docs, cap * sizeof(*nd));

		if (!nd)
			return oom();
		c->s->docs = nd;
	}
	c->s->docs[c->s->n_docs++] = json_incref(doc);
	return 0;
}

/* ---- memo: json_t* -> node ---- */

static size_t ptr_hash(const void *p, size_t mask)
{
	uint64_t h = (uint64_t)(uintptr_t)p;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (size_t)h & mask;
}

static struct js_node *memo_get(struct cctx *c, const json_t *k)
{
	size_t i;

	if (!c->memo_cap)
		return NULL;
	i = ptr_hash(k, c->memo_cap - 1);
	while (c->memo[i].k) {
		if (c->memo[i].k == k)
			return c->memo[i].v;
		i = (i + 1) & (c->memo_cap - 1);
	}
	return NULL;
}

static int memo_put(struct cctx *c, const json_t *k, struct js_node *v)
{
	size_t i;

	if ((c->memo_n + 1) * 2 > c->memo_cap) {
		size_t ncap = c->memo_cap ? c->memo_cap * 2 : 64, j;
		struct memo_ent *nm = calloc(ncap, sizeof(*nm));

		if (!nm)
			return oom();
		for (j = 0; j < c->memo_cap; j++) {
			if (!c->memo[j].k)
				continue;
			i = ptr_hash(c->memo[j].k, ncap - 1);
			while (nm[i].k)
				i = (i + 1) & (ncap - 1);
			nm[i] = c->memo[j];
		}
		free(c->memo);
		c->memo = nm;
		c->memo_cap = ncap;
	}
	i = ptr_hash(k, c->memo_cap - 1);
	while (c->memo[i].k)
		i = (i + 1) & (c->memo_cap - 1);
	c->memo[i].k = k;
	c->memo[i].v = v;
	c->memo_n++;
	return 0;
}

/* ---- $id index ---- */

static const struct id_ent *id_find(struct cctx *c, const char *uri)
{
	size_t i;

	for (i = 0; i < c->n_ids; i++)
		if (!strcmp(c->ids[i].uri, uri))
			return &c->ids[i];
	return NULL;
}

static int id_add(struct cctx *c, const char *uri, const json_t *json,
		  const char *base)
{
	struct id_ent *e;

	if (id_find(c, uri))
		return 0; /* first definition wins */
	if (grow(&c->ids, &c->cap_ids, c->n_ids, sizeof(*c->ids)) < 0)
		return PEX_ENOMEM;
	e = &c->ids[c->n_ids];
	e->uri = strdup(uri);
	e->base = strdup(base);
	e->json = json;
	if (!e->uri || !e->base) {
		free(e->uri);
		free(e->base);
		return oom();
	}
	c->n_ids++;
	return 0;
}

/* The base URI in force inside obj, given the base around it. Returns a
 * new string. */
static char *apply_id(const json_t *obj, const char *base)
{
	const json_t *id;
	char *full, *nb;

	if (!json_is_object(obj) || json_object_get(obj, "$ref"))
		return strdup(base);
	id = json_object_get(obj, "$id");
	if (!json_is_string(id))
		return strdup(base);
	full = pex_js_uri_resolve(base, json_string_value(id));
	if (!full)
		return NULL;
	nb = pex_js_uri_strip_fragment(full);
	free(full);
	return nb;
}

static const char *const single_kw[] = {"additionalItems",
					"items",
					"contains",
					"additionalProperties",
					"propertyNames",
					"if",
					"then",
					"else",
					"not",
					NULL};
static const char *const array_kw[] = {"allOf", "anyOf", "oneOf", "items",
				       NULL};
static const char *const map_kw[] = {"properties", "patternProperties",
				     "definitions", "dependencies", NULL};

/* Record every $id below obj (only in places that hold schemas, so an
 * "$id" inside an enum value is not taken for one). */
static int scan(struct cctx *c, const json_t *obj, const char *base, int depth)
{
	const json_t *id, *v, *sub;
	char *nb = NULL;
	size_t i, j;
	const char *key;
	int rc = 0;

	if (!json_is_object(obj))
		return 0;
	if (depth > PEX_JS_MAX_DEPTH)
		return pex_error_set(PEX_ELIMIT,
				     "schema nested deeper than %d levels",
				     PEX_JS_MAX_DEPTH);
	nb = apply_id(obj, base);
	if (!nb)
		return oom();
	id = json_object_get(obj, "$id");
	if (json_is_string(id) && !json_object_get(obj, "$ref")) {
		char *full = pex_js_uri_resolve(base, json_string_value(id));

		if (!full) {
			rc = oom();
			goto cleanup;
		}
		if (json_string_value(id)[0] != '#')
			rc = id_add(c, nb, obj, base);
		if (rc == 0 && strchr(full, '#'))
			rc = id_add(c, full, obj, base);
		free(full);
		if (rc < 0)
			goto cleanup;
	}
	for (i = 0; single_kw[i] && rc == 0; i++)
		rc = scan(c, json_object_get(obj, single_kw[i]), nb,
			  depth + 1);
	for (i = 0; array_kw[i] && rc == 0; i++) {
		v = json_object_get(obj, array_kw[i]);
		json_array_foreach(v, j, sub)
		{
			rc = scan(c, sub, nb, depth + 1);
			if (rc < 0)
				break;
		}
	}
	for (i = 0; map_kw[i] && rc == 0; i++) {
		v = json_object_get(obj, map_kw[i]);
		if (!json_is_object(v))
			continue;
		json_object_foreach((json_t *)v, key, sub)
		{
			rc = scan(c, sub, nb, depth + 1);
			if (rc < 0)
				break;
		}
	}
cleanup:
	free(nb);
	return rc;
}

/* Make a document (registry or root) known: keep it alive, index it. */
static int add_resource(struct cctx *c, json_t *doc, const char *uri)
{
	char *key;
	size_t i;
	int rc;

	for (i = 0; i < c->n_scanned; i++)
		if (c->scanned[i] == doc)
			goto index_uri;
	rc = add_doc(c, doc);
	if (rc < 0)
		return rc;
	rc = scan(c, doc, uri, 0);
	if (rc < 0)
		return rc;
	if (grow(&c->scanned, &c->cap_scanned, c->n_scanned,
		 sizeof(*c->scanned)) < 0)
		return PEX_ENOMEM;
	c->scanned[c->n_scanned++] = doc;
index_uri:
	key = pex_js_uri_strip_fragment(uri);
	if (!key)
		return oom();
	rc = id_add(c, key, doc, key);
	free(key);
	return rc;
}

/* ---- nodes ---- */

static struct js_node *new_node(struct cctx *c, char *loc)
{
	struct js_node *n;
	pex_schema *s = c->s;

	if (!loc)
		return NULL;
	n = calloc(1, sizeof(*n));
	if (!n) {
		free(loc);
		return NULL;
	}
	{
		struct js_node **nn =
			realloc(s->nodes, (s->n_nodes + 1) * sizeof(*nn));

		if (!nn) {
			free(loc);
			free(n);
			return NULL;
		}
		s->nodes = nn;
	}
	s->nodes[s->n_nodes++] = n;
	n->idx = s->n_nodes - 1;
	n->loc = loc;
	n->boolean = -1;
	return n;
}

/* Node for schema json (loc is taken over). Queues it for compilation. */
static int get_node(struct cctx *c, const json_t *json, const char *base,
		    char *loc, int depth, struct js_node **out)
{
	struct js_node *n = memo_get(c, json);
	struct work *w;

	if (n) {
		free(loc);
		*out = n;
		return 0;
	}
	if (!json_is_object(json) && !json_is_boolean(json)) {
		int rc = pex_error_set(PEX_EINVALID,
				       "%s: a schema must be an object or "
				       "a boolean",
				       loc ? loc : "?");

		free(loc);
		return rc;
	}
	if (depth > PEX_JS_MAX_DEPTH) {
		free(loc);
		return pex_error_set(PEX_ELIMIT,
				     "schema nested deeper than %d levels",
				     PEX_JS_MAX_DEPTH);
	}
	n = new_node(c, loc);
	if (!n || memo_put(c, json, n) < 0)
		return oom();
	if (json_is_boolean(json)) {
		n->boolean = json_is_true(json) ? 1 : 0;
		*out = n;
		return 0;
	}
	if (grow(&c->work, &c->cap_work, c->n_work, sizeof(*c->work)) < 0)
		return PEX_ENOMEM;
	w = &c->work[c->n_work];
	w->n = n;
	w->json = json;
	w->depth = depth;
	w->base = strdup(base);
	if (!w->base)
		return oom();
	c->n_work++;
	*out = n;
	return 0;
}

/* parent + "/" + escaped token (+ "/" + escaped token2). */
static char *loc_join(const char *parent, const char *tok, const char *tok2)
{
	size_t n = strlen(parent) + 3, o;
	const char *t;
	char *s;
	int k;

	for (k = 0; k < 2; k++) {
		t = k ? tok2 : tok;
		if (t)
			n += strlen(t) * 2 + 1;
	}
	s = malloc(n);
	if (!s)
		return NULL;
	o = strlen(parent);
	memcpy(s, parent, o);
	for (k = 0; k < 2; k++) {
		t = k ? tok2 : tok;
		if (!t)
			continue;
		s[o++] = '/';
		for (; *t; t++) {
			if (*t == '~' || *t == '/') {
				s[o++] = '~';
				s[o++] = *t == '~' ? '0' : '1';
			} else {
				s[o++] = *t;
			}
		}
	}
	s[o] = '\0';
	return s;
}

static char *loc_index(const char *parent, const char *kw, size_t i)
{
	char num[32];

	snprintf(num, sizeof(num), "%zu", i);
	return loc_join(parent, kw, num);
}

/* ---- $ref resolution ---- */

static json_t *builtin_meta(struct cctx *c)
{
	json_error_t jerr;
	json_t *m = json_loads(pex_js_metaschema_text, 0, &jerr);

	if (!m)
		pex_error_set(PEX_ERROR, "built-in meta-schema: %s",
			      jerr.text);
	return m;
}

/* Find the schema a reference names. *out_base is the base URI around
 * the target (its own $id is applied when it is compiled). */
static int resolve_ref(struct cctx *c, const char *base, const char *ref,
		       const json_t **out, char **out_base, char **out_loc)
{
	char *full = NULL, *docuri = NULL, *frag = NULL, *b = NULL;
	const char *hash;
	const struct id_ent *e;
	const json_t *cur;
	size_t flen;
	int rc = 0;

	full = pex_js_uri_resolve(base, ref);
	if (!full)
		return oom();
	docuri = pex_js_uri_strip_fragment(full);
	hash = strchr(full, '#');
	frag = pex_js_percent_decode(hash ? hash + 1 : "", &flen);
	if (!docuri || !frag) {
		rc = frag || !docuri ? oom()
				     : pex_error_set(PEX_EINVALID,
						     "$ref \"%s\": bad percent"
						     " escape",
						     ref);
		goto cleanup;
	}
	if (flen != strlen(frag)) {
		rc = pex_error_set(PEX_EINVALID,
				   "$ref \"%s\": NUL in fragment", ref);
		goto cleanup;
	}
	if (frag[0] && frag[0] != '/') {
		/* a plain-name fragment: location-independent $id */
		e = id_find(c, full);
		if (!e) {
			rc = pex_error_set(PEX_ENOTFOUND,
					   "cannot resolve $ref \"%s\" (%s)",
					   ref, full);
			goto cleanup;
		}
		*out = e->json;
		*out_base = strdup(e->base);
		*out_loc = strdup(full);
		if (!*out_base || !*out_loc)
			rc = oom();
		goto cleanup;
	}
	e = id_find(c, docuri);
	if (!e) {
		json_t *doc = pex_js_registry_find(c->reg, docuri);
		json_t *meta = NULL;

		if (!doc && !strcmp(docuri, pex_js_metaschema_uri)) {
			meta = builtin_meta(c);
			if (!meta) {
				rc = PEX_ERROR;
				goto cleanup;
			}
			doc = meta;
		}
		if (!doc) {
			rc = pex_error_set(PEX_ENOTFOUND,
					   "cannot resolve $ref \"%s\": no "
					   "schema registered as \"%s\"",
					   ref, docuri);
			goto cleanup;
		}
		rc = add_resource(c, doc, docuri);
		json_decref(meta);
		if (rc < 0)
			goto cleanup;
		e = id_find(c, docuri);
		if (!e) {
			rc = pex_error_set(PEX_ERROR,
					   "registry lookup failed");
			goto cleanup;
		}
	}
	cur = e->json;
	b = strdup(e->base);
	if (!b) {
		rc = oom();
		goto cleanup;
	}
	/* walk the JSON Pointer, applying each passed-through $id */
	{
		const char *p = frag, *end = frag + flen;
		char tok[PEX_JS_MAX_TOKEN];

		while (p < end) {
			const json_t *next = NULL;
			char *nb;
			long tl;

			p++; /* the '/' */
			tl = pex_js_pointer_token(&p, end, tok, sizeof(tok));
			if (tl < 0) {
				rc = pex_error_set(PEX_EINVALID,
						   "$ref \"%s\": bad JSON "
						   "Pointer",
						   ref);
				goto cleanup;
			}
			nb = apply_id(cur, b);
			if (!nb) {
				rc = oom();
				goto cleanup;
			}
			free(b);
			b = nb;
			if (json_is_object(cur)) {
				next = json_object_getn(cur, tok, (size_t)tl);
			} else if (json_is_array(cur)) {
				char *endp;
				unsigned long long idx;

				idx = strtoull(tok, &endp, 10);
				if (tl > 0 && *endp == '\0' &&
				    (tok[0] != '0' || tl == 1) &&
				    tok[0] != '-' && tok[0] != '+')
					next = json_array_get(cur, idx);
			}
			if (!next) {
				rc = pex_error_set(PEX_ENOTFOUND,
						   "cannot resolve $ref \"%s\""
						   ": no \"%s\" in %s",
						   ref, tok, docuri);
				goto cleanup;
			}
			cur = next;
		}
	}
	*out = cur;
	*out_base = b;
	b = NULL;
	if (hash) {
		*out_loc = strdup(full);
	} else {
		*out_loc = malloc(strlen(full) + 2);
		if (*out_loc)
			snprintf(*out_loc, strlen(full) + 2, "%s#", full);
	}
	if (!*out_loc)
		rc = oom();
cleanup:
	free(full);
	free(docuri);
	free(frag);
	free(b);
	return rc;
}

/* ---- keywords ---- */

static int kw_error(const struct js_node *n, const char *kw, const char *what)
{
	return pex_error_set(PEX_EINVALID, "%s: \"%s\" must be %s", n->loc, kw,
			     what);
}

static int get_num(const json_t *v, struct js_num *out)
{
	if (json_is_integer(v)) {
		out->is_int = 1;
		out->i = json_integer_value(v);
		out->d = (double)out->i;
		return 0;
	}
	if (json_is_real(v)) {
		out->d = json_real_value(v);
		out->is_int = 0;
		if (!isfinite(out->d))
			return -1;
		return 0;
	}
	return -1;
}

/* A non-negative integer (1.0 counts), clamped to SIZE_MAX. */
static int get_count(const json_t *v, size_t *out)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (size_t)json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);

		if (!(d >= 0) || d != floor(d))
			return -1;
		*out = d >= 1.8e19 ? SIZE_MAX : (size_t)d;
		return 0;
	}
	return -1;
}

static unsigned type_bit(const char *s)
{
	static const struct {
		const char *name;
		unsigned bit;
	} t[] = {{"null", JT_NULL},   {"boolean", JT_BOOL},
		 {"integer", JT_INT}, {"number", JT_NUM | JT_INT},
		 {"string", JT_STR},  {"array", JT_ARR},
		 {"object", JT_OBJ}};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(s, t[i].name))
			return t[i].bit;
	return 0;
}

static int compile_regex(const struct js_node *n, const char *kw,
			 const char *src, size_t len, pcre2_code **out)
{
	int err;
	PCRE2_SIZE off;
	pcre2_code *re;

	re = pcre2_compile((PCRE2_SPTR)src, len,
			   PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX,
			   &err, &off, NULL);
	if (!re) {
		PCRE2_UCHAR msg[256];

		pcre2_get_error_message(err, msg, sizeof(msg));
		return pex_error_set(PEX_EINVALID,
				     "%s: \"%s\": invalid regex at offset "
				     "%zu: %s",
				     n->loc, kw, (size_t)off, (char *)msg);
	}
	/* JIT is an optimisation: the interpreter still works without it */
	pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	*out = re;
	return 0;
}

/* Compile a sub-schema found at n->loc/kw[/tok]. */
static int sub(struct cctx *c, struct js_node *n, const json_t *json,
	       const char *base, int depth, const char *kw, const char *tok,
	       struct js_node **out)
{
	return get_node(c, json, base, loc_join(n->loc, kw, tok), depth + 1,
			out);
}

static int sub_array(struct cctx *c, struct js_node *n, const json_t *arr,
		     const char *base, int depth, const char *kw,
		     struct js_node ***out, size_t *count)
{
	size_t i, len;
	int rc;

	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return kw_error(n, kw, "a non-empty array of schemas");
	len = json_array_size(arr);
	*out = calloc(len, sizeof(**out));
	if (!*out)
		return oom();
	*count = len;
	for (i = 0; i < len; i++) {
		rc = get_node(c, json_array_get(arr, i), base,
			      loc_index(n->loc, kw, i), depth + 1, &(*out)[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static uint32_t key_hash(const char *k, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)k[i];
		h *= 16777619u;
	}
	return h;
}

uint32_t pex_js_key_hash(const char *k, size_t len)
{
	return key_hash(k, len);
}

static int compile_props(struct cctx *c, struct js_node *n, const json_t *v,
			 const char *base, int depth)
{
	const char *key;
	json_t *val;
	size_t i = 0, klen, tsize = 4;
	int rc;

	if (!json_is_object(v))
		return kw_error(n, "properties", "an object");
	n->n_props = json_object_size(v);
	if (!n->n_props)
		return 0;
	n->props = calloc(n->n_props, sizeof(*n->props));
	if (!n->props)
		return oom();
	while (tsize < n->n_props * 2)
		tsize *= 2;
	n->prop_table = calloc(tsize, sizeof(*n->prop_table));
	if (!n->prop_table)
		return oom();
	n->prop_mask = tsize - 1;
	json_object_keylen_foreach((json_t *)v, key, klen, val)
	{
		size_t slot = key_hash(key, klen) & n->prop_mask;

		n->props[i].key = key;
		n->props[i].klen = klen;
		rc = sub(c, n, val, base, depth, "properties", key,
			 &n->props[i].node);
		if (rc < 0)
			return rc;
		while (n->prop_table[slot])
			slot = (slot + 1) & n->prop_mask;
		n->prop_table[slot] = (uint32_t)(i + 1);
		i++;
	}
	return 0;
}

static int compile_pattern_props(struct cctx *c, struct js_node *n,
				 const json_t *v, const char *base, int depth)
{
	const char *key;
	json_t *val;
	size_t i = 0, klen;
	int rc;

	if (!json_is_object(v))
		return kw_error(n, "patternProperties", "an object");
	n->n_pat = json_object_size(v);
	if (!n->n_pat)
		return 0;
	n->pat_props = calloc(n->n_pat, sizeof(*n->pat_props));
	if (!n->pat_props)
		return oom();
	json_object_keylen_foreach((json_t *)v, key, klen, val)
	{
		n->pat_props[i].src = key;
		rc = compile_regex(n, "patternProperties", key, klen,
				   &n->pat_props[i].re);
		if (rc < 0)
			return rc;
		rc = sub(c, n, val, base, depth, "patternProperties", key,
			 &n->pat_props[i].node);
		if (rc < 0)
			return rc;
		i++;
	}
	return 0;
}

static int string_array(const json_t *v)
{
	size_t i;
	json_t *s;

	if (!json_is_array(v))
		return 0;
	json_array_foreach(v, i, s)
	{
		if (!json_is_string(s))
			return 0;
	}
	return 1;
}

static int compile_deps(struct cctx *c, struct js_node *n, const json_t *v,
			const char *base, int depth)
{
	const char *key;
	json_t *val;
	size_t i = 0, klen;
	int rc;

	if (!json_is_object(v))
		return kw_error(n, "dependencies", "an object");
	n->n_deps = json_object_size(v);
	if (!n->n_deps)
		return 0;
	n->deps = calloc(n->n_deps, sizeof(*n->deps));
	if (!n->deps)
		return oom();
	json_object_keylen_foreach((json_t *)v, key, klen, val)
	{
		n->deps[i].key = key;
		n->deps[i].klen = klen;
		if (json_is_array(val)) {
			if (!string_array(val))
				return kw_error(n, "dependencies",
						"an object of schemas or "
						"string arrays");
			n->deps[i].names = val;
		} else {
			rc = sub(c, n, val, base, depth, "dependencies", key,
				 &n->deps[i].node);
			if (rc < 0)
				return rc;
		}
		i++;
	}
	return 0;
}

static int compile_type(struct js_node *n, const json_t *v)
{
	size_t i;
	json_t *t;
	unsigned bit;

	if (json_is_string(v)) {
		n->types = type_bit(json_string_value(v));
		if (!n->types)
			goto bad;
		return 0;
	}
	if (!json_is_array(v))
		goto bad;
	json_array_foreach(v, i, t)
	{
		if (!json_is_string(t))
			goto bad;
		bit = type_bit(json_string_value(t));
		if (!bit)
			goto bad;
		n->types |= bit;
	}
	if (!n->types)
		n->types = 0x80; /* "type": [] matches nothing */
	return 0;
bad:
	return kw_error(n, "type", "a type name or an array of type names");
}

struct numkw {
	const char *name;
	unsigned bit;
	size_t off;
};

struct countkw {
	const char *name;
	unsigned bit, group;
	size_t off;
};

static int compile_object(struct cctx *c, struct js_node *n, const json_t *obj,
			  const char *outer_base, int depth)
{
	static const struct numkw nums[] = {
		{"multipleOf", HAS_MULTIPLE,
		 offsetof(struct js_node, multiple_of)},
		{"maximum", HAS_MAXIMUM, offsetof(struct js_node, maximum)},
		{"exclusiveMaximum", HAS_EXMAXIMUM,
		 offsetof(struct js_node, ex_maximum)},
		{"minimum", HAS_MINIMUM, offsetof(struct js_node, minimum)},
		{"exclusiveMinimum", HAS_EXMINIMUM,
		 offsetof(struct js_node, ex_minimum)},
	};
	static const struct countkw counts[] = {
		{"maxLength", HAS_MAXLEN, HAS_STR_KW,
		 offsetof(struct js_node, max_length)},
		{"minLength", HAS_MINLEN, HAS_STR_KW,
		 offsetof(struct js_node, min_length)},
		{"maxItems", HAS_MAXITEMS, HAS_ARR_KW,
		 offsetof(struct js_node, max_items)},
		{"minItems", HAS_MINITEMS, HAS_ARR_KW,
		 offsetof(struct js_node, min_items)},
		{"maxProperties", HAS_MAXPROPS, HAS_OBJ_KW,
		 offsetof(struct js_node, max_props)},
		{"minProperties", HAS_MINPROPS, HAS_OBJ_KW,
		 offsetof(struct js_node, min_props)},
	};
	const json_t *v;
	char *base = NULL;
	size_t i;
	int rc = 0;

	v = json_object_get(obj, "$ref");
	if (v) {
		/* draft-07: every keyword beside $ref is ignored */
		const json_t *target;
		char *tbase = NULL, *tloc = NULL;

		if (!json_is_string(v))
			return kw_error(n, "$ref", "a string");
		rc = resolve_ref(c, outer_base, json_string_value(v), &target,
				 &tbase, &tloc);
		if (rc < 0)
			return rc;
		/* a ref target's nesting is counted from its own document
		 * (scan() bounds it); chains of refs cost no stack here */
		rc = get_node(c, target, tbase, tloc, 0, &n->ref);
		free(tbase);
		return rc;
	}
	base = apply_id(obj, outer_base);
	if (!base)
		return oom();
	v = json_object_get(obj, "$id");
	if (json_is_string(v) && json_string_value(v)[0] != '#') {
		char *l = malloc(strlen(base) + 2);

		if (!l) {
			rc = oom();
			goto cleanup;
		}
		snprintf(l, strlen(base) + 2, "%s#", base);
		free(n->loc);
		n->loc = l;
	}

	v = json_object_get(obj, "type");
	if (v && (rc = compile_type(n, v)) < 0)
		goto cleanup;
	v = json_object_get(obj, "enum");
	if (v) {
		if (!json_is_array(v)) {
			rc = kw_error(n, "enum", "an array");
			goto cleanup;
		}
		n->enum_v = v;
		n->has |= HAS_ENUM;
	}
	v = json_object_get(obj, "const");
	if (v) {
		n->const_v = v;
		n->has |= HAS_CONST;
	}
	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		struct js_num *dst;

		v = json_object_get(obj, nums[i].name);
		if (!v)
			continue;
		dst = (struct js_num *)((char *)n + nums[i].off);
		if (get_num(v, dst) < 0) {
			rc = kw_error(n, nums[i].name, "a number");
			goto cleanup;
		}
		if (nums[i].bit == HAS_MULTIPLE && !(dst->d > 0)) {
			rc = kw_error(n, "multipleOf", "greater than 0");
			goto cleanup;
		}
		n->has |= nums[i].bit | HAS_NUM_KW;
	}
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		v = json_object_get(obj, counts[i].name);
		if (!v)
			continue;
		if (get_count(v, (size_t *)((char *)n + counts[i].off)) < 0) {
			rc = kw_error(n, counts[i].name,
				      "a non-negative integer");
			goto cleanup;
		}
		n->has |= counts[i].bit | counts[i].group;
	}
	v = json_object_get(obj, "pattern");
	if (v) {
		if (!json_is_string(v)) {
			rc = kw_error(n, "pattern", "a string");
			goto cleanup;
		}
		n->pattern_src = json_string_value(v);
		rc = compile_regex(n, "pattern", n->pattern_src,
				   json_string_length(v), &n->pattern);
		if (rc < 0)
			goto cleanup;
		n->has |= HAS_STR_KW;
	}
	v = json_object_get(obj, "format");
	if (v) {
		if (!json_is_string(v)) {
			rc = kw_error(n, "format", "a string");
			goto cleanup;
		}
		n->format = pex_js_format_lookup(json_string_value(v));
		if (n->format)
			n->has |= HAS_STR_KW;
	}
	v = json_object_get(obj, "contentEncoding");
	if (json_is_string(v) && !strcasecmp(json_string_value(v), "base64")) {
		n->content_base64 = 1;
		n->has |= HAS_STR_KW;
	}
	v = json_object_get(obj, "contentMediaType");
	if (json_is_string(v) &&
	    !strcmp(json_string_value(v), "application/json")) {
		n->content_json = 1;
		n->has |= HAS_STR_KW;
	}

	/* arrays */
	v = json_object_get(obj, "items");
	if (v) {
		if (json_is_array(v)) {
			n->n_items = json_array_size(v);
			n->has |= HAS_ITEMS_ARRAY;
			n->items_arr =
				calloc(n->n_items + 1, sizeof(*n->items_arr));
			if (!n->items_arr) {
				rc = oom();
				goto cleanup;
			}
			for (i = 0; i < n->n_items && rc == 0; i++)
				rc = get_node(c, json_array_get(v, i), base,
					      loc_index(n->loc, "items", i),
					      depth + 1, &n->items_arr[i]);
		} else {
			rc = sub(c, n, v, base, depth, "items", NULL,
				 &n->items);
		}
		if (rc < 0)
			goto cleanup;
		n->has |= HAS_ARR_KW;
	}
	v = json_object_get(obj, "additionalItems");
	if (v && (n->has & HAS_ITEMS_ARRAY)) {
		/* without an items array it has no effect */
		rc = sub(c, n, v, base, depth, "additionalItems", NULL,
			 &n->additional_items);
		if (rc < 0)
			goto cleanup;
	}
	v = json_object_get(obj, "contains");
	if (v) {
		rc = sub(c, n, v, base, depth, "contains", NULL, &n->contains);
		if (rc < 0)
			goto cleanup;
		n->has |= HAS_ARR_KW;
	}
	v = json_object_get(obj, "uniqueItems");
	if (v) {
		if (!json_is_boolean(v)) {
			rc = kw_error(n, "uniqueItems", "a boolean");
			goto cleanup;
		}
		if (json_is_true(v))
			n->has |= HAS_UNIQUE | HAS_ARR_KW;
	}

	/* objects */
	v = json_object_get(obj, "required");
	if (v) {
		if (!string_array(v)) {
			rc = kw_error(n, "required", "an array of strings");
			goto cleanup;
		}
		n->required = v;
		n->has |= HAS_OBJ_KW;
	}
	v = json_object_get(obj, "properties");
	if (v) {
		rc = compile_props(c, n, v, base, depth);
		if (rc < 0)
			goto cleanup;
		n->has |= HAS_OBJ_KW;
	}
	v = json_object_get(obj, "patternProperties");
	if (v) {
		rc = compile_pattern_props(c, n, v, base, depth);
		if (rc < 0)
			goto cleanup;
		n->has |= HAS_OBJ_KW;
	}
	v = json_object_get(obj, "additionalProperties");
	if (v) {
		rc = sub(c, n, v, base, depth, "additionalProperties", NULL,
			 &n->additional_props);
		if (rc < 0)
			goto cleanup;
		n->has |= HAS_OBJ_KW;
	}
	v = json_object_get(obj, "dependencies");
	if (v) {
		rc = compile_deps(c, n, v, base, depth);
		if (rc < 0)
			goto cleanup;
		n->has |= HAS_OBJ_KW;
	}
	v = json_object_get(obj, "propertyNames");
	if (v) {
		rc = sub(c, n, v, base, depth, "propertyNames", NULL,
			 &n->property_names);
		if (rc < 0)
			goto cleanup;
		n->has |= HAS_OBJ_KW;
	}

	/* applicators on the same instance */
	{
		static const char *const kws[] = {"allOf", "anyOf", "oneOf"};
		struct js_node ***dst[] = {&n->all_of, &n->any_of, &n->one_of};
		size_t *cnt[] = {&n->n_all, &n->n_any, &n->n_one};

		for (i = 0; i < 3; i++) {
			v = json_object_get(obj, kws[i]);
			if (!v)
				continue;
			rc = sub_array(c, n, v, base, depth, kws[i], dst[i],
				       cnt[i]);
			if (rc < 0)
				goto cleanup;
			n->has |= HAS_APPLICATOR;
		}
	}
	{
		static const char *const kws[] = {"not", "if", "then", "else"};
		struct js_node **dst[] = {&n->not_s, &n->if_s, &n->then_s,
					  &n->else_s};

		for (i = 0; i < 4; i++) {
			v = json_object_get(obj, kws[i]);
			if (!v)
				continue;
			rc = sub(c, n, v, base, depth, kws[i], NULL, dst[i]);
			if (rc < 0)
				goto cleanup;
			n->has |= HAS_APPLICATOR;
		}
		/* then/else without if have no effect */
		if (!n->if_s)
			n->then_s = n->else_s = NULL;
	}
	if (!(n->has & (HAS_ENUM | HAS_CONST | HAS_APPLICATOR)))
		n->has |= HAS_ONLY_STRING_KW;
cleanup:
	free(base);
	return rc;
}

/* ---- in-place cycle check ---- */

static size_t inplace_edges(const struct js_node *n, struct js_node **out,
			    size_t max)
{
	size_t k = 0, i;

#define EDGE(x)                                                               \
	do {                                                                  \
		if ((x) && k < max)                                           \
			out[k++] = (x);                                       \
	} while (0)
	EDGE(n->ref);
	for (i = 0; i < n->n_all; i++)
		EDGE(n->all_of[i]);
	for (i = 0; i < n->n_any; i++)
		EDGE(n->any_of[i]);
	for (i = 0; i < n->n_one; i++)
		EDGE(n->one_of[i]);
	EDGE(n->not_s);
	EDGE(n->if_s);
	EDGE(n->then_s);
	EDGE(n->else_s);
	for (i = 0; i < n->n_deps; i++)
		EDGE(n->deps[i].node);
#undef EDGE
	return k;
}

static size_t inplace_count(const struct js_node *n)
{
	size_t i, k = n->n_all + n->n_any + n->n_one + 5;

	for (i = 0; i < n->n_deps; i++)
		k += n->deps[i].node != NULL;
	return k;
}

/* Iterative DFS over in-place edges; marks: 0 new, 1 on stack, 2 done. */
static int check_cycles(pex_schema *s, unsigned char *mark)
{
	struct frame {
		size_t node, next;
	} *stack = NULL;
	struct js_node **edges = NULL;
	size_t top = 0, root, cap_e = 0;
	int rc = 0;

	stack = calloc(s->n_nodes + 1, sizeof(*stack));
	if (!stack)
		return oom();
	for (root = 0; root < s->n_nodes && rc == 0; root++) {
		if (mark[root])
			continue;
		stack[0].node = root;
		stack[0].next = 0;
		top = 1;
		mark[root] = 1;
		while (top > 0) {
			struct frame *f = &stack[top - 1];
			struct js_node *n = s->nodes[f->node];
			size_t ne = inplace_count(n), t;

			if (ne > cap_e) {
				struct js_node **e =
					realloc(edges, ne * sizeof(*e));

				if (!e) {
					rc = oom();
					goto cleanup;
				}
				edges = e;
				cap_e = ne;
			}
			ne = inplace_edges(n, edges, ne);
			if (f->next >= ne) {
				mark[f->node] = 2;
				top--;
				continue;
			}
			t = edges[f->next]->idx;
			f->next++;
			if (mark[t] == 2)
				continue;
			if (mark[t] == 1) {
				rc = pex_error_set(
					PEX_EINVALID,
					"%s: $ref cycle: the schema "
					"applies itself to the same"
					" value without end",
					s->nodes[t]->loc);
				goto cleanup;
			}
			mark[t] = 1;
			stack[top].node = t;
			stack[top].next = 0;
			top++;
		}
	}
cleanup:
	free(stack);
	free(edges);
	return rc;
}

/* ---- driver ---- */

static void cctx_free(struct cctx *c)
{
	size_t i;

	for (i = 0; i < c->n_ids; i++) {
		free(c->ids[i].uri);
		free(c->ids[i].base);
	}
	for (i = 0; i < c->n_work; i++)
		free(c->work[i].base);
	free(c->ids);
	free(c->work);
	free(c->memo);
	free(c->scanned);
}

static int run_work(struct cctx *c)
{
	int rc = 0;

	while (c->n_work > 0 && rc == 0) {
		struct work w = c->work[--c->n_work];

		rc = compile_object(c, w.n, w.json, w.base, w.depth);
		free(w.base);
	}
	return rc;
}

static int finish(struct cctx *c)
{
	pex_schema *s = c->s;
	unsigned char *mark;
	int rc;

	rc = run_work(c);
	if (rc < 0)
		return rc;
	mark = calloc(s->n_nodes + 1, 1);
	if (!mark)
		return oom();
	rc = check_cycles(s, mark);
	free(mark);
	if (rc < 0)
		return rc;
	s->mctx = pcre2_match_context_create(NULL);
	if (!s->mctx)
		return oom();
	pcre2_set_match_limit(s->mctx, PEX_JS_MATCH_LIMIT);
	pcre2_set_depth_limit(s->mctx, PEX_JS_DEPTH_LIMIT);
	return 0;
}

int pex_schema_compile(pex_schema **out, json_t *schema, const char *base_uri,
		       pex_schema_registry *reg)
{
	struct cctx c = {0};
	char *loc = NULL, *doc_uri = NULL;
	const char *base = base_uri ? base_uri : "";
	int rc;

	if (!out || !schema)
		return pex_error_set(PEX_EUSAGE, "schema required");
	*out = NULL;
	c.reg = reg;
	c.s = calloc(1, sizeof(*c.s));
	if (!c.s)
		return oom();
	doc_uri = pex_js_uri_strip_fragment(base);
	if (!doc_uri) {
		rc = oom();
		goto cleanup;
	}
	rc = add_resource(&c, schema, doc_uri);
	if (rc < 0)
		goto cleanup;
	loc = malloc(strlen(doc_uri) + 2);
	if (!loc) {
		rc = oom();
		goto cleanup;
	}
	snprintf(loc, strlen(doc_uri) + 2, "%s#", doc_uri);
	rc = get_node(&c, schema, doc_uri, loc, 0, &c.s->root);
	if (rc < 0)
		goto cleanup;
	rc = finish(&c);
cleanup:
	free(doc_uri);
	cctx_free(&c);
	if (rc < 0) {
		pex_schema_free(c.s);
		return rc;
	}
	*out = c.s;
	return 0;
}

int pex_schema_compile_uri(pex_schema **out, pex_schema_registry *reg,
			   const char *uri)
{
	struct cctx c = {0};
	const json_t *target;
	char *tbase = NULL, *tloc = NULL;
	int rc;

	if (!out || !uri)
		return pex_error_set(PEX_EUSAGE, "uri required");
	*out = NULL;
	c.reg = reg;
	c.s = calloc(1, sizeof(*c.s));
	if (!c.s)
		return oom();
	rc = resolve_ref(&c, "", uri, &target, &tbase, &tloc);
	if (rc < 0)
		goto cleanup;
	rc = get_node(&c, target, tbase, tloc, 0, &c.s->root);
	if (rc < 0)
		goto cleanup;
	rc = finish(&c);
cleanup:
	free(tbase);
	cctx_free(&c);
	if (rc < 0) {
		pex_schema_free(c.s);
		return rc;
	}
	*out = c.s;
	return 0;
}

void pex_schema_free(pex_schema *s)
{
	size_t i, j;

	if (!s)
		return;
	for (i = 0; i < s->n_nodes; i++) {
		struct js_node *n = s->nodes[i];

		free(n->loc);
		pcre2_code_free(n->pattern);
		free(n->items_arr);
		free(n->props);
		free(n->prop_table);
		for (j = 0; j < n->n_pat; j++)
			pcre2_code_free(n->pat_props[j].re);
		free(n->pat_props);
		free(n->deps);
		free(n->all_of);
		free(n->any_of);
		free(n->one_of);
		free(n);
	}
	free(s->nodes);
	for (i = 0; i < s->n_docs; i++)
		json_decref(s->docs[i]);
	free(s->docs);
	pcre2_match_context_free(s->mctx);
	free(s);
}
