/*
 * Sources: one configured instance of a collector. The engine owns the
 * lifecycle (options from the config map, init, collect, fini) and the
 * per-source bookkeeping collectors report into: warnings, text
 * replacements and identities found on the way.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/text.h"
#include "portex/bundle.h"
#include "portex/engine.h"
#include "portex/error.h"

#define PEX_WARN_KINDS_MAX 64   /* distinct warning texts kept per source */
#define PEX_SECRET_FILE_MAX 65536
#define PEX_TEXT_MAX (64u << 20) /* one value read from a source */

/* In a batch, what concerns one subject alone. */
struct subject_notes {
	json_t *warnings;        /* {message: count}, bounded */
	unsigned long long warn_overflow;
	unsigned long long replaced_chars;
	unsigned long long replaced_values;
};

struct pex_source {
	char *id;
	const struct pex_collector *col;
	void *ctx;
	char *basedir;
	int inited;
	json_t *warnings;        /* {message: count}, bounded */
	unsigned long long warn_overflow;
	unsigned long long replaced_chars;
	unsigned long long replaced_values;
	unsigned long long pending_chars;  /* in the record being built */
	unsigned long long pending_values;
	struct pex_identity_set found;
	struct pex_buf text;
	pex_bundle *bundle;      /* where attachment files go, or NULL */
	int check_only;          /* options checked, secrets not read */
	const char *bad_key;     /* the option an error is about */
	struct subject_notes *subj; /* batch of several subjects, or NULL */
	size_t nsubj;
};

struct pex_attachment {
	pex_bundle_file *f;
};

const struct pex_collector *pex_collector_find(const char *name)
{
	const struct pex_collector *const *c;

	for (c = pex_collectors_builtin(); *c; c++)
		if (!strcmp((*c)->name, name))
			return *c;
	return NULL;
}

const char *pex_source_id(const struct pex_source *src)
{
	return src->id;
}

const char *pex_source_basedir(const struct pex_source *src)
{
	return src->basedir ? src->basedir : ".";
}

char *pex_source_path(const struct pex_source *src, const char *path)
{
	struct pex_buf b = PEX_BUF_INIT(PATH_MAX);

	if (path[0] == '/' || !src->basedir)
		return strdup(path);
	if (pex_buf_printf(&b, "%s/%s", src->basedir, path)) {
		pex_buf_free(&b);
		return NULL;
	}
	return pex_buf_detach(&b);
}

void pex_source_log(const struct pex_source *src, int level, const char *fmt,
		    ...)
{
	va_list ap;

	va_start(ap, fmt);
	pex_logv(level, src->id, fmt, ap);
	va_end(ap);
}

static void count_warning(json_t *warnings, unsigned long long *overflow,
			  const char *fmt, va_list ap)
{
	char msg[512];
	json_t *n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (!pex_text_is_clean(msg, strlen(msg))) {
		/* The message quoted source bytes; keep it printable. */
		struct pex_buf b = PEX_BUF_INIT(4 * sizeof(msg));
		size_t cut;

		if (pex_text_sanitize(msg, strlen(msg), &b) < 0) {
			pex_buf_free(&b);
			return;
		}
		/* Shorten at a character boundary: a cut U+FFFD would make
		 * the key invalid UTF-8 and jansson would drop the
		 * warning. */
		cut = b.len < sizeof(msg) - 1 ? b.len : sizeof(msg) - 1;
		while (cut && cut < b.len &&
		       ((unsigned char)b.data[cut] & 0xC0) == 0x80)
			cut--;
		memcpy(msg, b.data, cut);
		msg[cut] = '\0';
		pex_buf_free(&b);
	}
	n = json_object_get(warnings, msg);
	if (n) {
		json_integer_set(n, json_integer_value(n) + 1);
	} else if (json_object_size(warnings) < PEX_WARN_KINDS_MAX) {
		json_object_set_new(warnings, msg, json_integer(1));
	} else {
		(*overflow)++;
	}
}

void pex_source_warn(struct pex_source *src, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	count_warning(src->warnings, &src->warn_overflow, fmt, ap);
	va_end(ap);
}

void pex_source_warn_subject(struct pex_source *src, size_t subject,
			     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (src->subj && subject < src->nsubj)
		count_warning(src->subj[subject].warnings,
			      &src->subj[subject].warn_overflow, fmt, ap);
	else
		count_warning(src->warnings, &src->warn_overflow, fmt, ap);
	va_end(ap);
}

json_t *pex_source_text(struct pex_source *src, const char *s, size_t len)
{
	long n;

	if (pex_text_is_clean(s, len))
		return json_stringn_nocheck(s, len);
	n = pex_text_sanitize(s, len, &src->text);
	if (n < 0)
		return NULL;
	src->pending_chars += (unsigned long long)n;
	src->pending_values++;
	return json_stringn_nocheck(src->text.data, src->text.len);
}

int pex_source_add_identity(struct pex_source *src, const char *type,
			    const char *value, const char *record_id,
			    time_t not_before, time_t not_after,
			    int has_window)
{
	struct pex_identity id = { 0 };
	size_t i;
	int rc;

	id.type = (char *)type;
	id.value = pex_identity_normalize(type, value, strlen(value));
	if (!id.value)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	if (!id.value[0] || !pex_text_is_clean(id.value, strlen(id.value))) {
		free(id.value);
		return 0; /* nothing usable to search by */
	}
	for (i = 0; i < src->found.count; i++) {
		const struct pex_identity *o = &src->found.items[i];

		if (!strcmp(o->type, type) && !strcmp(o->value, id.value) &&
		    o->has_window == has_window &&
		    o->not_before == not_before && o->not_after == not_after) {
			free(id.value);
			return 0;
		}
	}
	id.from_source = src->id;
	id.from_record = (char *)record_id;
	id.has_window = has_window;
	id.not_before = not_before;
	id.not_after = not_after;
	rc = pex_identity_set_add(&src->found, &id);
	free(id.value);
	return rc;
}

void pex_source_settle(struct pex_source *src, int keep)
{
	if (keep) {
		src->replaced_chars += src->pending_chars;
		src->replaced_values += src->pending_values;
	}
	src->pending_chars = 0;
	src->pending_values = 0;
}

const struct pex_identity_set *pex_source_identities(
	const struct pex_source *src)
{
	return &src->found;
}

static json_t *list_warnings(const char *id, json_t *warnings,
			     unsigned long long overflow,
			     unsigned long long chars,
			     unsigned long long values)
{
	json_t *arr = json_array();
	const char *msg;
	json_t *count;
	char text[160];

	json_object_foreach(warnings, msg, count) {
		json_array_append_new(arr, json_pack("{s:s, s:s, s:O}",
						     "source", id,
						     "message", msg,
						     "count", count));
	}
	if (values) {
		snprintf(text, sizeof(text),
			 "%llu characters that were not valid UTF-8 or not "
			 "allowed in XML 1.0 were replaced with U+FFFD", chars);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:I}",
			"source", id, "message", text, "count",
			(json_int_t)values));
	}
	if (overflow)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:I}",
			"source", id, "message",
			"further warnings of other kinds", "count",
			(json_int_t)overflow));
	return arr;
}

json_t *pex_source_warnings(struct pex_source *src)
{
	pex_source_settle(src, 1);
	return list_warnings(src->id, src->warnings, src->warn_overflow,
			     src->replaced_chars, src->replaced_values);
}

void pex_source_settle_subject(struct pex_source *src, size_t subject)
{
	struct subject_notes *sn;

	if (!src->subj || subject >= src->nsubj) {
		pex_source_settle(src, 1);
		return;
	}
	sn = &src->subj[subject];
	sn->replaced_chars += src->pending_chars;
	sn->replaced_values += src->pending_values;
	src->pending_chars = 0;
	src->pending_values = 0;
}

json_t *pex_source_subject_warnings(struct pex_source *src, size_t subject)
{
	struct subject_notes *sn;

	if (!src->subj || subject >= src->nsubj)
		return json_array();
	sn = &src->subj[subject];
	return list_warnings(src->id, sn->warnings, sn->warn_overflow,
			     sn->replaced_chars, sn->replaced_values);
}

static void subjects_free(struct pex_source *src)
{
	size_t i;

	for (i = 0; src->subj && i < src->nsubj; i++)
		json_decref(src->subj[i].warnings);
	free(src->subj);
	src->subj = NULL;
	src->nsubj = 0;
}

/* ---- options ---------------------------------------------------------- */

/* Expand ${NAME} references and a whole-value file:PATH reference. */
static int resolve_secret(const struct pex_source *src, const char *name,
			  const char *in, char **out)
{
	struct pex_buf b = PEX_BUF_INIT(PEX_SECRET_FILE_MAX);
	const char *p = in;
	int rc = 0;

	if (!strncmp(in, "file:", 5)) {
		char *path = pex_source_path(src, in + 5);
		FILE *f = path ? fopen(path, "rb") : NULL;
		char chunk[4096];
		size_t n;

		if (!f) {
			rc = pex_error_set(PEX_EIO,
					   "option '%s': cannot read secret "
					   "file %s: %s", name,
					   path ? path : in + 5,
					   strerror(errno));
			free(path);
			goto cleanup;
		}
		while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			rc = pex_buf_append(&b, chunk, n);
		fclose(f);
		if (rc)
			pex_error_wrap(rc, "option '%s': secret file %s", name,
				       path);
		free(path);
		if (rc)
			goto cleanup;
		/* a NUL would silently cut the secret short */
		if (b.len && memchr(b.data, '\0', b.len)) {
			rc = pex_error_set(PEX_EINVALID,
					   "option '%s': secret file holds a "
					   "NUL byte", name);
			goto cleanup;
		}
		while (b.len && (b.data[b.len - 1] == '\n' ||
				 b.data[b.len - 1] == '\r'))
			b.data[--b.len] = '\0';
		goto done;
	}
	while (*p) {
		const char *end;

		if (p[0] == '$' && p[1] == '{' && (end = strchr(p, '}'))) {
			char var[256];
			const char *val;
			size_t vlen = (size_t)(end - p - 2);

			if (vlen == 0 || vlen >= sizeof(var)) {
				rc = pex_error_set(PEX_EINVALID,
						   "option '%s': bad ${...} "
						   "reference", name);
				goto cleanup;
			}
			memcpy(var, p + 2, vlen);
			var[vlen] = '\0';
			val = getenv(var);
			if (!val) {
				rc = pex_error_set(PEX_EINVALID,
						   "option '%s': environment "
						   "variable %s is not set",
						   name, var);
				goto cleanup;
			}
			rc = pex_buf_append(&b, val, strlen(val));
			p = end + 1;
		} else {
			rc = pex_buf_putc(&b, *p++);
		}
		if (rc)
			goto cleanup;
	}
done:
	*out = pex_buf_detach(&b);
	return *out ? 0 : pex_error_set(PEX_ENOMEM, "out of memory");
cleanup:
	pex_buf_free(&b);
	return rc;
}

static int set_option(struct pex_source *src,
		      const struct pex_config_map *m, const json_t *v)
{
	char *base = (char *)src->ctx + m->offset;
	int rc;

	switch (m->type) {
	case PEX_OPT_STR: {
		char *s;

		if (!json_is_string(v))
			return pex_error_set(PEX_EINVALID,
					     "option '%s' must be a string",
					     m->name);
		if ((m->flags & PEX_OPT_SECRET) && !src->check_only) {
			rc = resolve_secret(src, m->name, json_string_value(v),
					    &s);
			if (rc)
				return rc;
		} else {
			s = strdup(json_string_value(v));
			if (!s)
				return pex_error_set(PEX_ENOMEM,
						     "out of memory");
		}
		*(char **)base = s;
		return 0;
	}
	case PEX_OPT_INT:
		if (!json_is_integer(v))
			return pex_error_set(PEX_EINVALID,
					     "option '%s' must be an integer",
					     m->name);
		*(long long *)base = json_integer_value(v);
		return 0;
	case PEX_OPT_BOOL:
		if (!json_is_boolean(v))
			return pex_error_set(PEX_EINVALID,
					     "option '%s' must be true or "
					     "false", m->name);
		*(int *)base = json_is_true(v);
		return 0;
	case PEX_OPT_STRLIST: {
		size_t i, n;
		char **list;

		if (json_is_string(v)) {
			n = 1;
		} else if (json_is_array(v)) {
			n = json_array_size(v);
		} else {
			return pex_error_set(PEX_EINVALID,
					     "option '%s' must be a list of "
					     "strings", m->name);
		}
		list = calloc(n + 1, sizeof(*list));
		if (!list)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		*(char ***)base = list;
		for (i = 0; i < n; i++) {
			const json_t *e = json_is_array(v) ?
					  json_array_get(v, i) : v;

			if (!json_is_string(e))
				return pex_error_set(PEX_EINVALID,
						     "option '%s'[%zu] must be "
						     "a string", m->name, i);
			list[i] = strdup(json_string_value(e));
			if (!list[i])
				return pex_error_set(PEX_ENOMEM,
						     "out of memory");
		}
		return 0;
	}
	case PEX_OPT_JSON:
		*(json_t **)base = json_incref((json_t *)v);
		return 0;
	}
	return pex_error_set(PEX_EUSAGE, "option '%s': unknown type",
			     m->name);
}

static int apply_default(struct pex_source *src,
			 const struct pex_config_map *m)
{
	json_t *v;
	int rc;

	switch (m->type) {
	case PEX_OPT_INT:
		v = json_integer(strtoll(m->def, NULL, 10));
		break;
	case PEX_OPT_BOOL:
		v = json_boolean(!strcmp(m->def, "true"));
		break;
	case PEX_OPT_JSON:
		v = json_loads(m->def, JSON_DECODE_ANY, NULL);
		break;
	default:
		v = json_string(m->def);
		break;
	}
	if (!v)
		return pex_error_set(PEX_EUSAGE, "option '%s': bad default",
				     m->name);
	rc = set_option(src, m, v);
	json_decref(v);
	return rc;
}

static void free_options(struct pex_source *src);

static int apply_options(struct pex_source *src, const json_t *options)
{
	const struct pex_config_map *m;
	const char *key;
	json_t *v;

	if (options && !json_is_object(options))
		return pex_error_set(PEX_EINVALID, "options must be a map");
	json_object_foreach((json_t *)options, key, v) {
		for (m = src->col->config_map; m->name; m++)
			if (!strcmp(m->name, key))
				break;
		if (!m->name) {
			struct pex_buf known = PEX_BUF_INIT(4096);

			for (m = src->col->config_map; m->name; m++)
				pex_buf_printf(&known, "%s%s",
					       known.len ? ", " : "", m->name);
			pex_error_set(PEX_EINVALID,
				      "unknown option '%s' for collector %s "
				      "(known: %s)", key, src->col->name,
				      known.data ? known.data : "none");
			pex_buf_free(&known);
			src->bad_key = key;
			return PEX_EINVALID;
		}
	}
	for (m = src->col->config_map; m->name; m++) {
		int rc;

		v = options ? json_object_get(options, m->name) : NULL;
		if (v && !json_is_null(v))
			rc = set_option(src, m, v);
		else if (m->flags & PEX_OPT_REQUIRED)
			rc = pex_error_set(PEX_EINVALID,
					   "option '%s' is required (%s)",
					   m->name, m->desc);
		else if (m->def)
			rc = apply_default(src, m);
		else
			rc = 0;
		if (rc) {
			src->bad_key = v ? m->name : NULL;
			return rc;
		}
	}
	return 0;
}

/* PEX_EINVALID naming the collectors that were built in. */
static int no_such_collector(const char *name)
{
	struct pex_buf known = PEX_BUF_INIT(4096);
	const struct pex_collector *const *c;
	int rc;

	for (c = pex_collectors_builtin(); *c; c++)
		pex_buf_printf(&known, "%s%s", known.len ? ", " : "",
			       (*c)->name);
	rc = pex_error_set(PEX_EINVALID, "no collector named '%s' "
			   "(available: %s)", name,
			   known.data ? known.data : "none");
	pex_buf_free(&known);
	return rc;
}

int pex_collector_check_options(const char *collector, const json_t *options,
				const char **bad_key)
{
	struct pex_source src = { 0 };
	int rc;

	*bad_key = NULL;
	src.col = pex_collector_find(collector);
	if (!src.col)
		return no_such_collector(collector);
	src.id = (char *)"check";
	src.check_only = 1;
	src.ctx = calloc(1, src.col->ctx_size ? src.col->ctx_size : 1);
	if (!src.ctx)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	rc = apply_options(&src, options);
	*bad_key = src.bad_key;
	free_options(&src);
	free(src.ctx);
	return rc;
}

static void free_options(struct pex_source *src)
{
	const struct pex_config_map *m;

	if (!src->ctx || !src->col)
		return;
	for (m = src->col->config_map; m->name; m++) {
		char *base = (char *)src->ctx + m->offset;

		switch (m->type) {
		case PEX_OPT_STR:
			if (*(char **)base && (m->flags & PEX_OPT_SECRET))
				explicit_bzero(*(char **)base,
					       strlen(*(char **)base));
			free(*(char **)base);
			break;
		case PEX_OPT_STRLIST: {
			char **l = *(char ***)base;

			for (size_t i = 0; l && l[i]; i++)
				free(l[i]);
			free(l);
			break;
		}
		case PEX_OPT_JSON:
			json_decref(*(json_t **)base);
			break;
		default:
			break;
		}
	}
}

int pex_source_new(struct pex_source **out, const char *id,
		   const char *collector, const json_t *options,
		   const char *basedir)
{
	struct pex_source *src;
	int rc;

	*out = NULL;
	src = calloc(1, sizeof(*src));
	if (!src)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	pex_buf_init(&src->text, PEX_TEXT_MAX);
	src->id = strdup(id);
	src->basedir = basedir ? strdup(basedir) : NULL;
	src->warnings = json_object();
	src->col = pex_collector_find(collector);
	if (!src->id || (basedir && !src->basedir) || !src->warnings) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto fail;
	}
	if (!src->col) {
		rc = pex_error_wrap(no_such_collector(collector), "source %s",
				    id);
		goto fail;
	}
	src->ctx = calloc(1, src->col->ctx_size ? src->col->ctx_size : 1);
	if (!src->ctx) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto fail;
	}
	rc = apply_options(src, options);
	if (rc) {
		pex_error_wrap(rc, "source %s", id);
		goto fail;
	}
	rc = src->col->init ? src->col->init(src, src->ctx) : 0;
	if (rc) {
		pex_error_wrap(rc, "source %s", id);
		goto fail;
	}
	src->inited = 1;
	*out = src;
	return 0;
fail:
	pex_source_free(src);
	return rc;
}

int pex_source_check(struct pex_source *src)
{
	int rc;

	if (!src->col->check)
		return 0;
	rc = src->col->check(src, src->ctx);
	if (rc)
		pex_error_wrap(rc, "source %s", src->id);
	return rc;
}

int pex_source_collect(struct pex_source *src,
		       const struct pex_identity_set *ids, pex_emit_fn emit,
		       void *emit_data)
{
	int rc = src->col->collect(src, src->ctx, ids, emit, emit_data);
	char prefix[128];

	/* name the source once, whoever produced the message */
	snprintf(prefix, sizeof(prefix), "source %s:", src->id);
	if (rc && strncmp(pex_error_last(), prefix, strlen(prefix)))
		pex_error_wrap(rc, "source %s", src->id);
	return rc;
}

int pex_source_collect_batch(struct pex_source *src,
			     const struct pex_identity_set *subjects,
			     size_t n, pex_emit_fn emit,
			     void *const *emit_data)
{
	char prefix[128];
	int rc;

	if (!src->col->collect_batch)
		return pex_error_set(PEX_EUSAGE, "source %s: collector %s "
				     "cannot collect in batch", src->id,
				     src->col->name);
	subjects_free(src);
	if (n > 1) {
		size_t i;

		src->subj = calloc(n, sizeof(*src->subj));
		if (!src->subj)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		src->nsubj = n;
		for (i = 0; i < n; i++)
			if (!(src->subj[i].warnings = json_object()))
				return pex_error_set(PEX_ENOMEM,
						     "out of memory");
	}
	rc = src->col->collect_batch(src, src->ctx, subjects, n, emit,
				     emit_data);
	snprintf(prefix, sizeof(prefix), "source %s:", src->id);
	if (rc && strncmp(pex_error_last(), prefix, strlen(prefix)))
		pex_error_wrap(rc, "source %s", src->id);
	return rc;
}

void pex_source_set_bundle(struct pex_source *src, struct pex_bundle *b)
{
	src->bundle = b;
}

int pex_source_attachment_begin(struct pex_source *src, const char *group,
				const char *name, const char *media_type,
				unsigned long long max_bytes,
				struct pex_attachment **out)
{
	struct pex_buf g = PEX_BUF_INIT(4096);
	struct pex_attachment *a;
	int rc;

	*out = NULL;
	if (!src->bundle)
		return pex_error_set(PEX_EUSAGE, "attachment files are only "
				     "kept when exporting one subject");
	a = calloc(1, sizeof(*a));
	if (!a)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	/* the source id keeps two sources' ticket 7 apart */
	rc = pex_buf_printf(&g, "%s_%s", src->id, group);
	if (!rc)
		rc = pex_bundle_file_begin(src->bundle, g.data, name,
					   media_type, max_bytes, &a->f);
	pex_buf_free(&g);
	if (rc) {
		free(a);
		return rc;
	}
	*out = a;
	return 0;
}

int pex_attachment_write(struct pex_attachment *a, const void *data,
			 size_t len)
{
	return pex_bundle_file_write(a->f, data, len);
}

int pex_attachment_end(struct pex_attachment *a, json_t **att)
{
	int rc = pex_bundle_file_end(a->f, att);

	free(a);
	return rc;
}

void pex_attachment_withhold(struct pex_attachment *a, const char *name,
			     const char *reason, json_t **att)
{
	if (a && a->f) {
		pex_bundle_file_withhold(a->f, reason, att);
	} else {
		*att = json_pack("{s:s, s:s}", "name", name ? name : "",
				 "withheld", reason);
	}
	free(a);
}

void pex_source_free(struct pex_source *src)
{
	if (!src)
		return;
	if (src->inited && src->col->fini)
		src->col->fini(src, src->ctx);
	free_options(src);
	free(src->ctx);
	free(src->id);
	free(src->basedir);
	json_decref(src->warnings);
	subjects_free(src);
	pex_identity_set_clear(&src->found);
	pex_buf_free(&src->text);
	free(src);
}
