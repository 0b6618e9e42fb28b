/*
 * Column-to-field mapping for tabular sources; see include/portex/mapper.h.
 * The mapping is compiled once per source into a small table so that
 * building a record costs one lookup per column.
 */
#include "portex/mapper.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "model/kinds.h"
#include "portex/error.h"

struct pex_mapping {
	char *column;
	const struct pex_field *field;
	char *member; /* PEX_F_OBJECT: the member name */
};

#define PEX_MAPPER_CACHE 64

struct pex_mapper {
	enum pex_record_kind kind;
	size_t count;
	struct pex_mapping *map;
	/* Rows of one source have the same columns in the same order:
	 * remember the lookup per position, so a row costs one comparison
	 * per column instead of one per mapping. */
	char *cache_name[PEX_MAPPER_CACHE];
	const struct pex_mapping *cache_map[PEX_MAPPER_CACHE];
};

void pex_mapper_free(pex_mapper *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->count; i++) {
		free(m->map[i].column);
		free(m->map[i].member);
	}
	for (i = 0; i < PEX_MAPPER_CACHE; i++)
		free(m->cache_name[i]);
	free(m->map);
	free(m);
}

static int compile_path(struct pex_mapping *e, enum pex_record_kind kind,
			const char *column, const char *path)
{
	const struct pex_field *f;
	const char *dot = strchr(path, '.');
	size_t plen = strlen(path);
	int list = plen > 2 && !strcmp(path + plen - 2, "[]");
	size_t nlen = dot ? (size_t)(dot - path) : list ? plen - 2 : plen;

	for (f = pex_kind_fields(kind); f->name; f++)
		if (strlen(f->name) == nlen && !strncmp(f->name, path, nlen))
			break;
	if (!f->name)
		return pex_error_set(PEX_EINVALID,
				     "fields: column '%s' maps to '%s', which "
				     "a %s record does not have", column, path,
				     pex_record_kind_name(kind));
	if ((f->type == PEX_F_LIST) != list)
		return pex_error_set(PEX_EINVALID,
				     "fields: column '%s': write '%s%s' (%s)",
				     column, f->name, list ? "" : "[]",
				     list ? "not a list" : "a list");
	if (f->type == PEX_F_OBJECT) {
		const char *const *s;

		if (!dot)
			return pex_error_set(PEX_EINVALID,
					     "fields: column '%s': name a "
					     "member, e.g. '%s.%s'", column,
					     f->name, f->sub[0]);
		for (s = f->sub; *s; s++)
			if (!strcmp(*s, dot + 1))
				break;
		if (!*s)
			return pex_error_set(PEX_EINVALID,
					     "fields: column '%s': '%s' has no "
					     "member '%s'", column, f->name,
					     dot + 1);
		e->member = strdup(dot + 1);
		if (!e->member)
			return pex_error_set(PEX_ENOMEM, "out of memory");
	} else if (dot) {
		return pex_error_set(PEX_EINVALID,
				     "fields: column '%s': '%s' has no members",
				     column, f->name);
	}
	e->field = f;
	e->column = strdup(column);
	return e->column ? 0 : pex_error_set(PEX_ENOMEM, "out of memory");
}

int pex_mapper_new(pex_mapper **out, enum pex_record_kind kind,
		   const json_t *fields)
{
	pex_mapper *m;
	const char *col;
	json_t *path;
	int rc;

	*out = NULL;
	if (fields && !json_is_object(fields))
		return pex_error_set(PEX_EINVALID,
				     "fields must be a map of column: field");
	m = calloc(1, sizeof(*m));
	if (!m)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	m->kind = kind;
	m->map = calloc(json_object_size(fields) + 1, sizeof(*m->map));
	if (!m->map) {
		pex_mapper_free(m);
		return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	json_object_foreach((json_t *)fields, col, path) {
		if (!json_is_string(path)) {
			pex_mapper_free(m);
			return pex_error_set(PEX_EINVALID,
					     "fields: column '%s' must map to "
					     "a field name", col);
		}
		rc = compile_path(&m->map[m->count], kind, col,
				  json_string_value(path));
		if (rc) {
			m->count++;
			pex_mapper_free(m);
			return rc;
		}
		m->count++;
	}
	*out = m;
	return 0;
}

static const struct pex_mapping *lookup(const pex_mapper *m, const char *c)
{
	size_t i;

	for (i = 0; i < m->count; i++)
		if (!strcmp(m->map[i].column, c))
			return &m->map[i];
	return NULL;
}

static int put_json(json_t *rec, const struct pex_mapping *e,
		    struct pex_source *src, const struct pex_cell *c);

static int put_mapped(json_t *rec, const struct pex_mapping *e,
		      struct pex_source *src, const struct pex_cell *c)
{
	json_t *v, *slot;

	if (!c->value || !c->len)
		return 0;
	switch (e->field->type) {
	case PEX_F_TIME: {
		time_t t;
		char buf[PEX_TIME_BUFSZ];

		if (pex_time_parse(c->value, c->len, &t)) {
			/* Keep what the source holds; say why it is not
			 * in the field. */
			pex_source_warn(src, "column '%s': value is not a "
					"date-time; kept in extra", c->name);
			v = pex_source_text(src, c->value, c->len);
			return json_object_set_new(json_object_get(rec,
						   "extra"), c->name, v);
		}
		return json_object_set_new(rec, e->field->name,
					   json_string(pex_time_format(t,
								       buf)));
	}
	case PEX_F_INT: {
		char tmp[32], *end;
		long long n;

		if (c->len >= sizeof(tmp))
			goto as_extra;
		memcpy(tmp, c->value, c->len);
		tmp[c->len] = '\0';
		errno = 0;
		n = strtoll(tmp, &end, 10);
		/* out of range: strtoll would hand back LLONG_MAX */
		if (*end || end == tmp || errno == ERANGE)
			goto as_extra;
		return json_object_set_new(rec, e->field->name,
					   json_integer(n));
	}
	case PEX_F_LIST:
		slot = json_object_get(rec, e->field->name);
		if (!slot) {
			slot = json_array();
			json_object_set_new(rec, e->field->name, slot);
		}
		return json_array_append_new(slot, pex_source_text(src,
					     c->value, c->len));
	case PEX_F_OBJECT:
		slot = json_object_get(rec, e->field->name);
		if (!slot) {
			slot = json_object();
			json_object_set_new(rec, e->field->name, slot);
		}
		return json_object_set_new(slot, e->member,
					   pex_source_text(src, c->value,
							   c->len));
	case PEX_F_JSON:
		return put_json(rec, e, src, c);
	case PEX_F_TEXT:
		return json_object_set_new(rec, e->field->name,
					   pex_source_text(src, c->value,
							   c->len));
	}
as_extra:
	pex_source_warn(src, "column '%s': value is not an integer; kept in "
			"extra", c->name);
	return json_object_set_new(json_object_get(rec, "extra"), c->name,
				   pex_source_text(src, c->value, c->len));
}

/* Strings of a parsed JSON value pass through pex_source_text() like any
 * other text from the source; returns the cleaned copy (new). */
static json_t *clean_tree(struct pex_source *src, json_t *v, int depth)
{
	json_t *out, *child;
	const char *key;
	size_t i;

	if (depth > 32)
		return NULL;
	switch (json_typeof(v)) {
	case JSON_STRING:
		return pex_source_text(src, json_string_value(v),
				       json_string_length(v));
	case JSON_OBJECT:
		out = json_object();
		json_object_foreach(v, key, child) {
			json_t *c = clean_tree(src, child, depth + 1);

			if (!c || json_object_set_new(out, key, c)) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	case JSON_ARRAY:
		out = json_array();
		json_array_foreach(v, i, child) {
			json_t *c = clean_tree(src, child, depth + 1);

			if (!c || json_array_append_new(out, c)) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	default:
		return json_incref(v);
	}
}

/* A column holding JSON text (a database's json_agg of child rows): the
 * value lands in the field as structure; the record's schema then says
 * whether its shape is right. Text that is not JSON stays in extra. */
static int put_json(json_t *rec, const struct pex_mapping *e,
		    struct pex_source *src, const struct pex_cell *c)
{
	json_error_t err;
	json_t *v = json_loadb(c->value, c->len,
			       JSON_DECODE_ANY | JSON_ALLOW_NUL, &err), *clean;

	if (!v) {
		pex_source_warn(src, "column '%s': value is not JSON; kept in "
				"extra", c->name);
		return json_object_set_new(json_object_get(rec, "extra"),
					   c->name, pex_source_text(src,
					   c->value, c->len));
	}
	clean = json_is_null(v) ? NULL : clean_tree(src, v, 0);
	json_decref(v);
	if (!clean)
		return 0; /* null, or nested deeper than any model field */
	return json_object_set_new(rec, e->field->name, clean);
}

int pex_mapper_build(const pex_mapper *m, struct pex_source *src,
		     const struct pex_cell *cells, size_t ncells,
		     const char *id, const struct pex_identity *matched_by,
		     json_t **out)
{
	json_t *rec, *extra;
	size_t i;
	int rc = 0;

	*out = NULL;
	rec = json_object();
	extra = json_object();
	if (!rec || !extra)
		goto nomem;
	if (json_object_set_new(rec, "id", pex_source_text(src, id,
							   strlen(id))) ||
	    json_object_set_new(rec, "matched_by",
				pex_matched_by(matched_by)) ||
	    json_object_set(rec, "extra", extra))
		goto nomem;
	for (i = 0; i < ncells; i++) {
		const struct pex_cell *c = &cells[i];
		const struct pex_mapping *e;

		if (i < PEX_MAPPER_CACHE && m->cache_name[i] &&
		    !strcmp(m->cache_name[i], c->name)) {
			e = m->cache_map[i];
		} else {
			e = lookup(m, c->name);
			if (i < PEX_MAPPER_CACHE) {
				/* the mapper is the source's own; only its
				 * thread builds with it */
				pex_mapper *w = (pex_mapper *)m;

				free(w->cache_name[i]);
				w->cache_name[i] = strdup(c->name);
				w->cache_map[i] = e;
			}
		}

		if (e) {
			rc = put_mapped(rec, e, src, c);
		} else {
			json_t *name = pex_source_text(src, c->name,
						       strlen(c->name));

			rc = json_object_set_new(extra, json_string_value(name),
				c->value ? pex_source_text(src, c->value,
							   c->len)
					 : json_null());
			json_decref(name);
		}
		if (rc)
			goto nomem;
	}
	json_decref(extra);
	*out = rec;
	return 0;
nomem:
	json_decref(rec);
	json_decref(extra);
	return pex_error_set(PEX_ENOMEM, "out of memory building a record");
}
