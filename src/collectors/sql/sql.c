/*
 * The sql collector: records from a SQL database, found by running the
 * configured SELECT once per identity of the subject, with the identity's
 * value bound to the query parameter named after its type (:email,
 * :customer_id, ...). Values are always bound by the driver, never spliced
 * into the SQL text.
 *
 * This file holds what does not depend on the database: options, the
 * choice of driver (a postgresql:// or postgres:// DSN selects libpq,
 * anything else is a SQLite file), the runs, deduplication, mapping and
 * identities found. The drivers (sql_sqlite.c, sql_pg.c) stream rows.
 *
 * Ownership: the engine owns the option values in struct sql_ctx; init()
 * allocates the rest of the context and releases it on failure, fini()
 * releases it after a successful init().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "collectors/sql/sql_driver.h"
#include "core/text.h"
#include "core/timeutil.h"
#include "model/kinds.h"
#include "portex/collector.h"
#include "portex/error.h"
#include "portex/mapper.h"

/* Most distinct record ids remembered while deduplicating the rows of one
 * collect() (about 50 bytes each, see docs/internals/sql.md). */
#define PEX_SQL_SEEN_MAX ((size_t)1 << 24)
/* Longest parameter name, after the identity type rule ^[a-z][a-z0-9_]*$ */
#define PEX_SQL_PARAM_NAME_MAX 32
#define PEX_SQL_TIMEOUT_MAX 86400000LL /* one day */

enum param_role {
	PARAM_IDENTITY = 0, /* :<identity type> */
	PARAM_NOT_BEFORE,   /* start of a weak identity's window */
	PARAM_NOT_AFTER,    /* end of it */
};

struct sql_param {
	enum param_role role;
	const char *type; /* borrowed from the driver: the name without ':' */
};

struct sql_idcol {
	size_t col;
	char *type;
};

/* Distinct record ids seen in this collect(): open addressing on FNV-1a. */
struct sql_seen {
	char **slots;
	size_t cap; /* a power of two, or 0 */
	size_t count;
};

struct sql_ctx {
	/* options, filled and freed by the engine */
	char *database;
	char *query;
	json_t *fields;
	char *id_column;
	char *kind;
	json_t *identities;
	long long timeout_ms;

	/* state, from init() to fini() */
	const struct pex_sql_driver *drv;
	struct pex_sql_stmt *st;
	pex_mapper *mapper;
	enum pex_record_kind rkind;
	size_t nparams;
	struct sql_param *params;
	const char **values; /* nparams, rebuilt for every run */
	int has_window;      /* :not_before and :not_after both present */
	size_t ncols;
	const char **colnames; /* borrowed from the driver */
	size_t id_col;
	size_t nidcols;
	struct sql_idcol *idcols;
	struct pex_cell *cells; /* ncols, reused for every row */
	char **b64;             /* ncols base64 buffers for BLOB cells */
	size_t *b64cap;
	char *idbuf; /* NUL-terminated identity value */
	size_t idbufcap;
};

static const struct pex_config_map sql_config[] = {
	{ PEX_OPT_STR, "database", NULL, PEX_OPT_REQUIRED | PEX_OPT_SECRET,
	  offsetof(struct sql_ctx, database),
	  "SQLite file (relative to the config) or postgresql:// DSN" },
	{ PEX_OPT_STR, "query", NULL, PEX_OPT_REQUIRED,
	  offsetof(struct sql_ctx, query),
	  "SELECT with parameters named after identity types (:email)" },
	{ PEX_OPT_JSON, "fields", NULL, 0, offsetof(struct sql_ctx, fields),
	  "map of column: model field" },
	{ PEX_OPT_STR, "id_column", NULL, PEX_OPT_REQUIRED,
	  offsetof(struct sql_ctx, id_column),
	  "column whose value identifies a row (the record id)" },
	{ PEX_OPT_STR, "kind", "contact", 0, offsetof(struct sql_ctx, kind),
	  "record kind the rows become" },
	{ PEX_OPT_JSON, "identities", NULL, 0,
	  offsetof(struct sql_ctx, identities),
	  "map of column: identity type the row yields" },
	{ PEX_OPT_INT, "timeout_ms", "5000", 0,
	  offsetof(struct sql_ctx, timeout_ms),
	  "lock wait (SQLite) or statement timeout (PostgreSQL)" },
	{ .name = NULL },
};

/* ---- small helpers --------------------------------------------------- */

static int valid_type_name(const char *s)
{
	size_t i;

	if (!(s[0] >= 'a' && s[0] <= 'z'))
		return 0;
	for (i = 1; s[i]; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return i <= PEX_SQL_PARAM_NAME_MAX;
}

static int is_dsn(const char *s)
{
	return !strncmp(s, "postgresql://", 13) ||
	       !strncmp(s, "postgres://", 11);
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void seen_free(struct sql_seen *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slots[i]);
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

static int seen_grow(struct sql_seen *s)
{
	size_t ncap = s->cap ? s->cap * 2 : 1024;
	char **n = calloc(ncap, sizeof(*n));

	if (!n)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	for (size_t i = 0; i < s->cap; i++) {
		size_t j;

		if (!s->slots[i])
			continue;
		j = (size_t)fnv1a(s->slots[i]) & (ncap - 1);
		while (n[j])
			j = (j + 1) & (ncap - 1);
		n[j] = s->slots[i];
	}
	free(s->slots);
	s->slots = n;
	s->cap = ncap;
	return 0;
}

/* 1 when id was added, 0 when it was already there, <0 on error. */
static int seen_add(struct sql_seen *s, const char *id)
{
	size_t j;
	int rc;

	if (s->count >= PEX_SQL_SEEN_MAX)
		return pex_error_set(PEX_ELIMIT,
				     "more than %zu distinct rows matched; "
				     "cannot deduplicate them",
				     PEX_SQL_SEEN_MAX);
	/* Keep the table at most half full so probes stay short. */
	if ((s->count + 1) * 2 > s->cap) {
		rc = seen_grow(s);
		if (rc)
			return rc;
	}
	j = (size_t)fnv1a(id) & (s->cap - 1);
	while (s->slots[j]) {
		if (!strcmp(s->slots[j], id))
			return 0;
		j = (j + 1) & (s->cap - 1);
	}
	s->slots[j] = strdup(id);
	if (!s->slots[j])
		return pex_error_set(PEX_ENOMEM, "out of memory");
	s->count++;
	return 1;
}

/* ---- rows ------------------------------------------------------------ */

struct sql_run {
	struct pex_source *src;
	struct sql_ctx *c;
	const struct pex_identity *by;
	pex_emit_fn emit;
	void *emit_data;
	struct sql_seen *seen; /* NULL when only one run happens */
};

/* The bytes a cell contributes: text as it is, a BLOB as base64 (binary
 * data is still the person's data; base64 keeps it whole in JSON/XML). */
static int cell_bytes(struct sql_run *r, size_t i,
		      const struct pex_sql_value *v, const char **p,
		      size_t *len)
{
	struct sql_ctx *c = r->c;
	size_t need;

	if (v->type != PEX_SQL_BLOB) {
		*p = v->data;
		*len = v->len;
		return 0;
	}
	need = 4 * ((v->len + 2) / 3) + 1;
	if (need > c->b64cap[i]) {
		char *n = realloc(c->b64[i], need);

		if (!n)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		c->b64[i] = n;
		c->b64cap[i] = need;
	}
	*len = (size_t)EVP_EncodeBlock((unsigned char *)c->b64[i],
				       (const unsigned char *)v->data,
				       (int)v->len);
	*p = c->b64[i];
	pex_source_warn(r->src, "column '%s': binary value given as base64",
			c->colnames[i]);
	return 0;
}

/* Report the identities a row yields. A value that is not clean text
 * could never match anything, so it is not reported (the cell itself
 * still reaches the record, with its replacement counted). */
static int report_identities(struct sql_run *r, const struct pex_sql_value
			     *vals, const char *record_id)
{
	struct sql_ctx *c = r->c;

	for (size_t k = 0; k < c->nidcols; k++) {
		const struct pex_sql_value *v = &vals[c->idcols[k].col];
		int rc;

		if (v->type != PEX_SQL_TEXT || v->len == 0 ||
		    !pex_text_is_clean(v->data, v->len))
			continue;
		if (v->len + 1 > c->idbufcap) {
			char *n = realloc(c->idbuf, v->len + 1);

			if (!n)
				return pex_error_set(PEX_ENOMEM,
						     "out of memory");
			c->idbuf = n;
			c->idbufcap = v->len + 1;
		}
		memcpy(c->idbuf, v->data, v->len);
		c->idbuf[v->len] = '\0';
		rc = pex_source_add_identity(r->src, c->idcols[k].type,
					     c->idbuf, record_id, 0, 0, 0);
		if (rc)
			return rc;
	}
	return 0;
}

static int on_row(void *data, const struct pex_sql_value *vals)
{
	struct sql_run *r = data;
	struct sql_ctx *c = r->c;
	const struct pex_sql_value *idv = &vals[c->id_col];
	json_t *idj = NULL;
	json_t *rec = NULL;
	char *full_id = NULL;
	const char *p;
	const char *id;
	size_t len;
	int ret;

	if (idv->type == PEX_SQL_NULL)
		return pex_error_set(PEX_EINVALID,
				     "a row has NULL in id_column '%s'; it "
				     "must name a column that is never NULL",
				     c->id_column);
	ret = cell_bytes(r, c->id_col, idv, &p, &len);
	if (ret)
		goto cleanup;
	idj = pex_source_text(r->src, p, len);
	if (!idj) {
		ret = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	id = json_string_value(idj);
	if (!id[0]) {
		ret = pex_error_set(PEX_EINVALID,
				    "a row has an empty id_column '%s'",
				    c->id_column);
		goto cleanup;
	}
	if (r->seen) {
		ret = seen_add(r->seen, id);
		if (ret <= 0)
			goto cleanup; /* 0: found by an earlier identity */
		ret = 0;
	}
	for (size_t i = 0; i < c->ncols; i++) {
		struct pex_cell *cell = &c->cells[i];

		cell->name = c->colnames[i];
		if (vals[i].type == PEX_SQL_NULL) {
			cell->value = NULL;
			cell->len = 0;
			continue;
		}
		ret = cell_bytes(r, i, &vals[i], &cell->value, &cell->len);
		if (ret)
			goto cleanup;
	}
	ret = pex_mapper_build(c->mapper, r->src, c->cells, c->ncols, id,
			       r->by, &rec);
	if (ret)
		goto cleanup;
	ret = r->emit(r->emit_data, c->rkind, rec);
	rec = NULL; /* stolen, also on failure */
	if (ret || !c->nidcols)
		goto cleanup;
	/* The record's id as the bundle shows it: "<source>:<id>". */
	len = strlen(pex_source_id(r->src)) + strlen(id) + 2;
	full_id = malloc(len);
	if (!full_id) {
		ret = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	snprintf(full_id, len, "%s:%s", pex_source_id(r->src), id);
	ret = report_identities(r, vals, full_id);
cleanup:
	free(full_id);
	json_decref(rec);
	json_decref(idj);
	return ret;
}

/* ---- collect --------------------------------------------------------- */

static const struct sql_param *param_for(const struct sql_ctx *c,
					 const char *type)
{
	for (size_t i = 0; i < c->nparams; i++)
		if (c->params[i].role == PARAM_IDENTITY &&
		    !strcmp(c->params[i].type, type))
			return &c->params[i];
	return NULL;
}

/* Whether the query can search by this identity. A weak identity (one
 * with a time window) counts only inside its window, so it needs a query
 * that takes :not_before and :not_after. */
static int usable(struct pex_source *src, const struct sql_ctx *c,
		  const struct pex_identity *id, int warn)
{
	if (!param_for(c, id->type))
		return 0;
	if (id->has_window && !c->has_window) {
		if (warn)
			pex_source_warn(src, "identity %s has a time window "
					"but the query takes no :not_before "
					"and :not_after; not used", id->type);
		return 0;
	}
	return 1;
}

static int sql_collect(struct pex_source *src, void *ctx,
		       const struct pex_identity_set *ids, pex_emit_fn emit,
		       void *emit_data)
{
	struct sql_ctx *c = ctx;
	struct sql_seen seen = { 0 };
	struct sql_run r = { .src = src, .c = c, .emit = emit,
			     .emit_data = emit_data };
	size_t runs = 0;
	int ret = 0;

	for (size_t i = 0; ids && i < ids->count; i++)
		runs += (size_t)usable(src, c, &ids->items[i], 1);
	if (runs == 0) {
		pex_source_log(src, PEX_LOG_DEBUG,
			       "no identity of the subject names a parameter "
			       "of the query");
		return 0;
	}
	/* Only several runs can find the same row twice. */
	r.seen = runs > 1 ? &seen : NULL;
	for (size_t i = 0; i < ids->count; i++) {
		const struct pex_identity *id = &ids->items[i];
		char nb[PEX_TIME_BUFSZ], na[PEX_TIME_BUFSZ];

		if (!usable(src, c, id, 0))
			continue;
		pex_time_format(id->not_before, nb);
		pex_time_format(id->not_after, na);
		for (size_t k = 0; k < c->nparams; k++) {
			const struct sql_param *p = &c->params[k];

			if (p->role == PARAM_IDENTITY)
				c->values[k] = strcmp(p->type, id->type)
						       ? NULL
						       : id->value;
			else if (!id->has_window)
				c->values[k] = NULL;
			else
				c->values[k] = p->role == PARAM_NOT_BEFORE
						       ? nb
						       : na;
		}
		r.by = id;
		ret = c->drv->run(c->st, c->values, on_row, &r);
		if (ret)
			goto cleanup;
	}
cleanup:
	seen_free(&seen);
	return ret;
}

/* ---- init / fini ----------------------------------------------------- */

static void release(struct sql_ctx *c)
{
	if (c->drv)
		c->drv->close(c->st);
	c->st = NULL;
	pex_mapper_free(c->mapper);
	c->mapper = NULL;
	for (size_t i = 0; i < c->nidcols; i++)
		free(c->idcols[i].type);
	free(c->idcols);
	c->idcols = NULL;
	c->nidcols = 0;
	for (size_t i = 0; c->b64 && i < c->ncols; i++)
		free(c->b64[i]);
	free(c->b64);
	free(c->b64cap);
	free(c->cells);
	free(c->colnames);
	free(c->params);
	free(c->values);
	free(c->idbuf);
	c->b64 = NULL;
	c->b64cap = NULL;
	c->cells = NULL;
	c->colnames = NULL;
	c->params = NULL;
	c->values = NULL;
	c->idbuf = NULL;
}

static int find_column(const struct sql_ctx *c, const char *name,
		       size_t *out)
{
	for (size_t i = 0; i < c->ncols; i++)
		if (!strcmp(c->colnames[i], name)) {
			*out = i;
			return 0;
		}
	return PEX_ENOTFOUND;
}

static int init_params(struct sql_ctx *c)
{
	size_t nident = 0, nb = 0, na = 0;

	c->nparams = c->drv->param_count(c->st);
	c->params = calloc(c->nparams + 1, sizeof(*c->params));
	c->values = calloc(c->nparams + 1, sizeof(*c->values));
	if (!c->params || !c->values)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	for (size_t i = 0; i < c->nparams; i++) {
		const char *name = c->drv->param_name(c->st, i);
		struct sql_param *p = &c->params[i];

		if (!name || name[0] != ':')
			return pex_error_set(PEX_EINVALID,
					     "query parameter %zu (%s) is not "
					     "named with ':'; name each after "
					     "an identity type, e.g. :email",
					     i + 1, name ? name : "?");
		p->type = name + 1;
		if (!valid_type_name(p->type))
			return pex_error_set(PEX_EINVALID,
					     "query parameter %s: an identity "
					     "type is lower-case letters, "
					     "digits and _ (at most %d)",
					     name, PEX_SQL_PARAM_NAME_MAX);
		if (!strcmp(p->type, "not_before")) {
			p->role = PARAM_NOT_BEFORE;
			nb++;
		} else if (!strcmp(p->type, "not_after")) {
			p->role = PARAM_NOT_AFTER;
			na++;
		} else {
			p->role = PARAM_IDENTITY;
			nident++;
		}
	}
	if (!nident)
		return pex_error_set(PEX_EINVALID,
				     "query takes no identity parameter (such "
				     "as :email or :customer_id); it would "
				     "export every row");
	if (nb != na)
		return pex_error_set(PEX_EINVALID,
				     "query must take both :not_before and "
				     ":not_after, or neither");
	c->has_window = nb > 0;
	return 0;
}

static int init_columns(struct sql_ctx *c)
{
	const char *key;
	json_t *v;
	size_t k;

	c->ncols = c->drv->column_count(c->st);
	c->colnames = calloc(c->ncols + 1, sizeof(*c->colnames));
	c->cells = calloc(c->ncols + 1, sizeof(*c->cells));
	c->b64 = calloc(c->ncols + 1, sizeof(*c->b64));
	c->b64cap = calloc(c->ncols + 1, sizeof(*c->b64cap));
	if (!c->colnames || !c->cells || !c->b64 || !c->b64cap)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	for (size_t i = 0; i < c->ncols; i++) {
		c->colnames[i] = c->drv->column_name(c->st, i);
		if (!c->colnames[i] || !c->colnames[i][0])
			return pex_error_set(PEX_EINVALID,
					     "query column %zu has no name",
					     i + 1);
		/* Two columns of one name would overwrite each other in
		 * the record: a silent loss. */
		for (size_t j = 0; j < i; j++)
			if (!strcmp(c->colnames[i], c->colnames[j]))
				return pex_error_set(PEX_EINVALID,
						     "query returns two "
						     "columns named '%s'; "
						     "rename one with AS",
						     c->colnames[i]);
	}
	if (find_column(c, c->id_column, &c->id_col))
		return pex_error_set(PEX_EINVALID,
				     "id_column '%s' is not a column the "
				     "query returns",
				     c->id_column);
	if (c->fields && json_is_object(c->fields))
		json_object_foreach(c->fields, key, v)
			if (find_column(c, key, &k))
				return pex_error_set(PEX_EINVALID,
						     "fields: '%s' is not a "
						     "column the query "
						     "returns", key);
	if (!c->identities)
		return 0;
	if (!json_is_object(c->identities))
		return pex_error_set(PEX_EINVALID,
				     "identities must be a map of column: "
				     "identity type");
	c->idcols = calloc(json_object_size(c->identities) + 1,
			   sizeof(*c->idcols));
	if (!c->idcols)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	json_object_foreach(c->identities, key, v) {
		struct sql_idcol *ic = &c->idcols[c->nidcols];

		if (!json_is_string(v) ||
		    !valid_type_name(json_string_value(v)))
			return pex_error_set(PEX_EINVALID,
					     "identities: column '%s' must "
					     "map to an identity type "
					     "(lower-case, e.g. customer_id)",
					     key);
		if (find_column(c, key, &ic->col))
			return pex_error_set(PEX_EINVALID,
					     "identities: '%s' is not a "
					     "column the query returns",
					     key);
		ic->type = strdup(json_string_value(v));
		if (!ic->type)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		c->nidcols++;
	}
	return 0;
}

static int sql_init(struct pex_source *src, void *ctx)
{
	struct sql_ctx *c = ctx;
	char *path = NULL;
	int kind;
	int ret;

	if (!c->database || !c->database[0] || !c->query || !c->id_column)
		return pex_error_set(PEX_EINVALID, "database, query and "
				     "id_column are required");
	if (c->timeout_ms < 0 || c->timeout_ms > PEX_SQL_TIMEOUT_MAX)
		return pex_error_set(PEX_EINVALID,
				     "timeout_ms must be 0..%lld",
				     PEX_SQL_TIMEOUT_MAX);
	kind = pex_record_kind_from_name(c->kind ? c->kind : "contact");
	if (kind < 0)
		return pex_error_set(PEX_EINVALID, "kind '%s' is unknown",
				     c->kind);
	c->rkind = (enum pex_record_kind)kind;
	ret = pex_mapper_new(&c->mapper, c->rkind, c->fields);
	if (ret)
		goto cleanup;
	if (is_dsn(c->database)) {
		c->drv = &pex_sql_driver_pg;
		ret = c->drv->open(src, c->database, c->query, c->timeout_ms,
				   &c->st);
	} else {
		c->drv = &pex_sql_driver_sqlite;
		path = pex_source_path(src, c->database);
		if (!path) {
			ret = pex_error_set(PEX_ENOMEM, "out of memory");
			goto cleanup;
		}
		ret = c->drv->open(src, path, c->query, c->timeout_ms,
				   &c->st);
	}
	if (ret)
		goto cleanup;
	ret = init_params(c);
	if (ret)
		goto cleanup;
	ret = init_columns(c);
cleanup:
	free(path);
	if (ret)
		release(c);
	return ret;
}

static void sql_fini(struct pex_source *src, void *ctx)
{
	(void)src;
	release(ctx);
}

/*
 * The identity types the query searches by: its :name parameters (not
 * :not_before / :not_after), found by a lexical scan that skips quoted
 * text, comments and "::" casts. For the engine's check before anything
 * is read; the driver's own parse at init is the authority. Types the
 * source reports (the identities map) are not searched by.
 */
static void sql_identity_types(const json_t *options, json_t *types)
{
	const char *q = json_string_value(json_object_get(options, "query"));
	size_t i, n;

	if (!q)
		return;
	n = strlen(q);
	for (i = 0; i < n; i++) {
		char c = q[i];

		if (c == '-' && q[i + 1] == '-') {
			while (i < n && q[i] != '\n')
				i++;
		} else if (c == '/' && q[i + 1] == '*') {
			const char *e = strstr(q + i + 2, "*/");

			i = e ? (size_t)(e - q) + 1 : n;
		} else if (c == '\'' || c == '"') {
			for (i++; i < n && q[i] != c; i++)
				;
		} else if (c == ':' && q[i + 1] == ':') {
			i++; /* a cast */
		} else if (c == ':' && (q[i + 1] == '_' ||
					(q[i + 1] >= 'a' && q[i + 1] <= 'z'))) {
			char name[PEX_SQL_PARAM_NAME_MAX + 1];
			size_t k = 0;

			for (i++; i < n && k < sizeof(name) - 1 &&
				  (q[i] == '_' || (q[i] >= 'a' && q[i] <= 'z') ||
				   (q[i] >= '0' && q[i] <= '9')); i++)
				name[k++] = q[i];
			name[k] = '\0';
			i--;
			if (strcmp(name, "not_before") &&
			    strcmp(name, "not_after"))
				json_object_set_new(types, name, json_true());
		}
	}
}

const struct pex_collector pex_collector_sql = {
	.name = "sql",
	.description = "records from a SQL database (SQLite file or "
		       "PostgreSQL), one query per identity of the subject",
	.config_map = sql_config,
	.ctx_size = sizeof(struct sql_ctx),
	.init = sql_init,
	.collect = sql_collect,
	.fini = sql_fini,
	.identity_types = sql_identity_types,
};
