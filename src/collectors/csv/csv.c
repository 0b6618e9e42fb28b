/*
 * The csv collector: contact records from CSV exports (address books, CRM
 * exports). See docs/internals/csv.md.
 *
 * A row belongs to the subject when one of the `match` columns holds, after
 * pex_identity_normalize(), exactly one of the subject's identities of that
 * column's type. Matching rows go through the shared mapper (`fields`;
 * every other column lands in "extra"); the values of `identities` columns
 * of matching rows are reported as further identities.
 *
 * The file is read as a stream (csv_reader.c); any error in it fails the
 * source, so a bundle never silently lacks rows the file holds.
 *
 * Ownership: the engine owns the option values in struct csv_ctx; init
 * allocates the derived fields below them and fini frees those.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectors/csv/csv_reader.h"
#include "model/kinds.h"
#include "portex/collector.h"
#include "portex/error.h"
#include "portex/mapper.h"

/* Identifying columns named in `match` or `identities`. */
struct id_column {
	const char *name; /* borrowed from the option's JSON */
	const char *type; /* borrowed from the option's JSON */
	size_t index;     /* in the file's columns, set per collect */
};

struct csv_ctx {
	/* Options, filled by the engine from the config map. */
	char *path;
	char *delimiter;
	char *encoding;
	int header;
	char **columns;
	json_t *match;
	json_t *fields;
	char *id_column;
	char *kind;
	json_t *identities;
	long long max_field_bytes;
	long long max_record_bytes;
	long long max_columns;

	/* Derived in init, freed in fini. */
	char *file;
	const char *basename; /* points into file */
	char sep;
	enum pex_record_kind rkind;
	pex_mapper *mapper;
	struct id_column *match_cols;
	size_t nmatch;
	struct id_column *id_cols;
	size_t nidcols;
};

static const struct pex_config_map csv_config[] = {
	{PEX_OPT_STR, "path", NULL, PEX_OPT_REQUIRED,
	 offsetof(struct csv_ctx, path),
	 "the CSV file, relative to the configuration file's directory"},
	{PEX_OPT_STR, "delimiter", ",", 0, offsetof(struct csv_ctx, delimiter),
	 "field separator: one ASCII character, or \"tab\""},
	{PEX_OPT_STR, "encoding", "utf-8", 0,
	 offsetof(struct csv_ctx, encoding),
	 "the file's character encoding (any iconv name: windows-1252, "
	 "iso-8859-1, shift_jis, utf-16, ...)"},
	{PEX_OPT_BOOL, "header", "true", 0, offsetof(struct csv_ctx, header),
	 "whether the first row names the columns"},
	{PEX_OPT_STRLIST, "columns", NULL, 0,
	 offsetof(struct csv_ctx, columns),
	 "column names, in order; required when header is false"},
	{PEX_OPT_JSON, "match", NULL, PEX_OPT_REQUIRED,
	 offsetof(struct csv_ctx, match),
	 "map of column: identity type whose values identify the subject, "
	 "e.g. {\"E-mail Address\": \"email\"}"},
	{PEX_OPT_JSON, "fields", NULL, 0, offsetof(struct csv_ctx, fields),
	 "map of column: model field (unmapped columns go to extra)"},
	{PEX_OPT_STR, "id_column", NULL, 0,
	 offsetof(struct csv_ctx, id_column),
	 "column holding the record id (default: <file name>:<line>)"},
	{PEX_OPT_STR, "kind", "contact", 0, offsetof(struct csv_ctx, kind),
	 "record kind the rows become"},
	{PEX_OPT_JSON, "identities", NULL, 0,
	 offsetof(struct csv_ctx, identities),
	 "map of column: identity type reported as further identities of "
	 "the subject from matching rows"},
	{PEX_OPT_INT, "max_field_bytes", "1048576", 0,
	 offsetof(struct csv_ctx, max_field_bytes),
	 "largest field accepted, in bytes"},
	{PEX_OPT_INT, "max_record_bytes", "16777216", 0,
	 offsetof(struct csv_ctx, max_record_bytes),
	 "largest record accepted, in bytes"},
	{PEX_OPT_INT, "max_columns", "10000", 0,
	 offsetof(struct csv_ctx, max_columns),
	 "most columns accepted"},
	{.name = NULL},
};

/* ---- init ------------------------------------------------------------ */

static int parse_delimiter(const char *s, char *out)
{
	unsigned char c;

	if (strcmp(s, "tab") == 0 || strcmp(s, "\\t") == 0) {
		*out = '\t';
		return 0;
	}
	if (strlen(s) != 1)
		return pex_error_set(PEX_EINVALID,
				     "delimiter must be one character (or "
				     "\"tab\"), not \"%s\"",
				     s);
	c = (unsigned char)s[0];
	if (c == '"' || c == '\r' || c == '\n' || c >= 0x80)
		return pex_error_set(PEX_EINVALID,
				     "delimiter must be an ASCII character "
				     "other than quote, CR and LF");
	*out = (char)c;
	return 0;
}

/* Copy {column: type} into an array of borrowed names and types. */
static int parse_id_map(const json_t *map, const char *what,
			struct id_column **out, size_t *count)
{
	const char *col;
	json_t *type;
	size_t n = 0;

	*out = NULL;
	*count = 0;
	if (map == NULL)
		return 0;
	if (!json_is_object(map))
		return pex_error_set(PEX_EINVALID,
				     "%s must be a map of column: identity "
				     "type",
				     what);
	if (json_object_size(map) == 0)
		return 0;
	*out = calloc(json_object_size(map), sizeof(**out));
	if (*out == NULL)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	json_object_foreach((json_t *)map, col, type) {
		if (!json_is_string(type) || json_string_length(type) == 0)
			return pex_error_set(PEX_EINVALID,
					     "%s: column '%s' must map to an "
					     "identity type such as \"email\"",
					     what, col);
		(*out)[n].name = col;
		(*out)[n].type = json_string_value(type);
		n++;
		*count = n;
	}
	return 0;
}

static int check_limit(const char *name, long long v,
		       unsigned long long ceiling)
{
	if (v < 0 || (unsigned long long)v > ceiling)
		return pex_error_set(PEX_EINVALID,
				     "%s must be between 0 (the default) and "
				     "%llu",
				     name, ceiling);
	return 0;
}

static int in_list(char **list, const char *name)
{
	for (; list && *list; list++)
		if (strcmp(*list, name) == 0)
			return 1;
	return 0;
}

/* With header: false the column names are known now: check them early. */
static int check_columns_given(const struct csv_ctx *c)
{
	const char *col;
	json_t *v;
	size_t i;

	for (i = 0; i < c->nmatch; i++)
		if (!in_list(c->columns, c->match_cols[i].name))
			return pex_error_set(PEX_EINVALID,
					     "match: '%s' is not one of "
					     "`columns`",
					     c->match_cols[i].name);
	for (i = 0; i < c->nidcols; i++)
		if (!in_list(c->columns, c->id_cols[i].name))
			return pex_error_set(PEX_EINVALID,
					     "identities: '%s' is not one of "
					     "`columns`",
					     c->id_cols[i].name);
	if (c->id_column && !in_list(c->columns, c->id_column))
		return pex_error_set(PEX_EINVALID,
				     "id_column '%s' is not one of `columns`",
				     c->id_column);
	json_object_foreach(c->fields, col, v) {
		if (!in_list(c->columns, col))
			return pex_error_set(PEX_EINVALID,
					     "fields: '%s' is not one of "
					     "`columns`",
					     col);
	}
	return 0;
}

static void csv_fini(struct pex_source *src, void *data)
{
	struct csv_ctx *c = data;

	free(c->file);
	c->file = NULL;
	pex_mapper_free(c->mapper);
	c->mapper = NULL;
	free(c->match_cols);
	c->match_cols = NULL;
	free(c->id_cols);
	c->id_cols = NULL;
}

static int csv_init(struct pex_source *src, void *data)
{
	struct csv_ctx *c = data;
	const char *slash;
	int kind;
	int rc;

	rc = parse_delimiter(c->delimiter, &c->sep);
	if (rc < 0)
		goto cleanup;
	rc = pex_csv_encoding_check(c->encoding);
	if (rc < 0)
		goto cleanup;
	rc = check_limit("max_field_bytes", c->max_field_bytes,
			 PEX_CSV_MAX_FIELD_CEILING);
	if (rc == 0)
		rc = check_limit("max_record_bytes", c->max_record_bytes,
				 PEX_CSV_MAX_RECORD_CEILING);
	if (rc == 0)
		rc = check_limit("max_columns", c->max_columns,
				 PEX_CSV_MAX_FIELDS_CEILING);
	if (rc < 0)
		goto cleanup;
	kind = pex_record_kind_from_name(c->kind);
	if (kind < 0) {
		rc = pex_error_set(PEX_EINVALID, "unknown record kind '%s'",
				   c->kind);
		goto cleanup;
	}
	c->rkind = (enum pex_record_kind)kind;
	rc = parse_id_map(c->match, "match", &c->match_cols, &c->nmatch);
	if (rc < 0)
		goto cleanup;
	if (c->nmatch == 0) {
		rc = pex_error_set(PEX_EINVALID,
				   "match must name at least one column, e.g. "
				   "{\"E-mail Address\": \"email\"}");
		goto cleanup;
	}
	rc = parse_id_map(c->identities, "identities", &c->id_cols,
			  &c->nidcols);
	if (rc < 0)
		goto cleanup;
	if (!c->header && (c->columns == NULL || c->columns[0] == NULL)) {
		rc = pex_error_set(PEX_EINVALID,
				   "header is false, so `columns` must list "
				   "the column names");
		goto cleanup;
	}
	if (c->header && c->columns != NULL) {
		rc = pex_error_set(PEX_EINVALID,
				   "`columns` is only used with header: "
				   "false; the header row names the columns");
		goto cleanup;
	}
	rc = pex_mapper_new(&c->mapper, c->rkind, c->fields);
	if (rc < 0)
		goto cleanup;
	if (!c->header) {
		rc = check_columns_given(c);
		if (rc < 0)
			goto cleanup;
	}
	c->file = pex_source_path(src, c->path);
	if (c->file == NULL) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	slash = strrchr(c->file, '/');
	c->basename = slash ? slash + 1 : c->file;
	return 0;
cleanup:
	csv_fini(src, data);
	return rc;
}

/* ---- collect ----------------------------------------------------------- */

/* One subject identity usable for matching, normalised once. */
struct wanted {
	const struct pex_identity *id;
	char *norm;
};

struct run {
	struct csv_ctx *c;
	struct pex_source *src;
	pex_emit_fn emit;
	void *emit_data;
	char **names; /* column names as the records show them */
	size_t ncols;
	struct pex_cell *cells;
	struct wanted *wanted;
	size_t nwanted;
	size_t id_index; /* id_column's index, or SIZE_MAX */
	unsigned long rows;
	unsigned long matched;
};

static void free_names(char **names, size_t n)
{
	size_t i;

	for (i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

static int name_taken(char **names, size_t before, const char *name)
{
	size_t j;

	for (j = 0; j < before; j++)
		if (strcmp(names[j], name) == 0)
			return 1;
	return 0;
}

/*
 * Column names for the records: an empty header cell becomes "column_N"
 * and a repeated name gets " (2)", " (3)"... so that no value in extra
 * overwrites another.
 */
static int make_names(struct run *r, const struct pex_csv_record *hdr,
		      char **given)
{
	size_t i, n = r->ncols;
	char tmp[64];

	r->names = calloc(n, sizeof(*r->names));
	if (r->names == NULL)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		const char *name = hdr ? hdr->fields[i].value : given[i];

		if (name[0] == '\0') {
			snprintf(tmp, sizeof(tmp), "column_%zu", i + 1);
			name = tmp;
		}
		r->names[i] = strdup(name);
		if (r->names[i] == NULL)
			return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	for (i = 1; i < n; i++) {
		char *base = r->names[i];
		unsigned k = 1;

		while (name_taken(r->names, i, r->names[i])) {
			size_t len = strlen(base) + 16;
			char *renamed = malloc(len);

			if (renamed == NULL) {
				if (r->names[i] != base)
					free(base);
				return pex_error_set(PEX_ENOMEM,
						     "out of memory");
			}
			snprintf(renamed, len, "%s (%u)", base, ++k);
			if (r->names[i] != base)
				free(r->names[i]);
			r->names[i] = renamed;
		}
		if (r->names[i] != base)
			free(base);
	}
	return 0;
}

/* Index of a configured column among the file's columns. A name that
 * occurs twice is refused: matching only one of them could miss rows. */
static int find_column(const struct run *r, const struct pex_csv_record *hdr,
		       const char *what, const char *name, size_t *index)
{
	size_t i, found = SIZE_MAX;

	for (i = 0; i < r->ncols; i++) {
		const char *orig = hdr ? hdr->fields[i].value
				       : r->c->columns[i];

		if (strcmp(orig, name) != 0)
			continue;
		if (found != SIZE_MAX)
			return pex_error_set(PEX_EINVALID,
					     "%s: column '%s' occurs twice in "
					     "%s",
					     what, name, r->c->file);
		found = i;
	}
	if (found == SIZE_MAX)
		return pex_error_set(PEX_EINVALID,
				     "%s: column '%s' is not in %s (its "
				     "first column is '%s')",
				     what, name, r->c->file, r->names[0]);
	*index = found;
	return 0;
}

static int resolve_columns(struct run *r, const struct pex_csv_record *hdr)
{
	struct csv_ctx *c = r->c;
	const char *col;
	json_t *v;
	size_t i, idx;
	int rc;

	for (i = 0; i < c->nmatch; i++) {
		rc = find_column(r, hdr, "match", c->match_cols[i].name,
				 &c->match_cols[i].index);
		if (rc < 0)
			return rc;
	}
	for (i = 0; i < c->nidcols; i++) {
		rc = find_column(r, hdr, "identities", c->id_cols[i].name,
				 &c->id_cols[i].index);
		if (rc < 0)
			return rc;
	}
	r->id_index = SIZE_MAX;
	if (c->id_column) {
		rc = find_column(r, hdr, "id_column", c->id_column,
				 &r->id_index);
		if (rc < 0)
			return rc;
	}
	/* A mapped column missing from the file is a configuration
	 * mistake that would leave fields empty without a word. */
	json_object_foreach(c->fields, col, v) {
		rc = find_column(r, hdr, "fields", col, &idx);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The subject's identities of the types the match columns use. Weak
 * identities (with a time window) are left out: a CSV row has no time
 * to check the window against. */
static int collect_wanted(struct run *r, const struct pex_identity_set *ids)
{
	size_t i, j;

	if (ids == NULL || ids->count == 0)
		return 0;
	r->wanted = calloc(ids->count, sizeof(*r->wanted));
	if (r->wanted == NULL)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	for (i = 0; i < ids->count; i++) {
		const struct pex_identity *id = &ids->items[i];
		int used = 0;

		if (id->has_window || id->type == NULL || id->value == NULL)
			continue;
		for (j = 0; j < r->c->nmatch; j++)
			if (strcmp(r->c->match_cols[j].type, id->type) == 0)
				used = 1;
		if (!used)
			continue;
		r->wanted[r->nwanted].norm = pex_identity_normalize(
			id->type, id->value, strlen(id->value));
		if (r->wanted[r->nwanted].norm == NULL)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		if (r->wanted[r->nwanted].norm[0] == '\0') {
			free(r->wanted[r->nwanted].norm);
			r->wanted[r->nwanted].norm = NULL;
			continue;
		}
		r->wanted[r->nwanted].id = id;
		r->nwanted++;
	}
	return 0;
}

/* The identity a row matches, or NULL. */
static int match_row(const struct run *r, const struct pex_csv_record *rec,
		     const struct pex_identity **by)
{
	size_t i, k;

	size_t best = r->nwanted;

	/* The first identity in the order given wins, whichever column it
	 * is found in (see collector.h). */
	*by = NULL;
	for (i = 0; i < r->c->nmatch; i++) {
		const struct id_column *m = &r->c->match_cols[i];
		const struct pex_csv_field *f = &rec->fields[m->index];
		char *norm;

		if (f->len == 0)
			continue;
		norm = pex_identity_normalize(m->type, f->value, f->len);
		if (norm == NULL)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		/* Whole values only: alice@example.com is not
		 * malice@example.com nor alice@example.co. */
		for (k = 0; norm[0] != '\0' && k < best; k++)
			if (strcmp(r->wanted[k].id->type, m->type) == 0 &&
			    strcmp(r->wanted[k].norm, norm) == 0) {
				best = k;
				break;
			}
		free(norm);
	}
	if (best < r->nwanted)
		*by = r->wanted[best].id;
	return 0;
}

static int emit_row(struct run *r, const struct pex_csv_record *rec,
		    const struct pex_identity *by)
{
	struct csv_ctx *c = r->c;
	json_t *record = NULL;
	char *full_id = NULL;
	char line_id[4096];
	const char *id;
	size_t i, len;
	int rc;

	if (r->id_index != SIZE_MAX) {
		id = rec->fields[r->id_index].value;
		if (id[0] == '\0') {
			rc = pex_error_set(PEX_EINVALID,
					   "%s:%lu: id_column '%s' is empty",
					   c->file, rec->line, c->id_column);
			goto cleanup;
		}
	} else {
		snprintf(line_id, sizeof(line_id), "%s:%lu", c->basename,
			 rec->line);
		id = line_id;
	}
	for (i = 0; i < r->ncols; i++) {
		r->cells[i].name = r->names[i];
		r->cells[i].value = rec->fields[i].value;
		r->cells[i].len = rec->fields[i].len;
	}
	rc = pex_mapper_build(c->mapper, r->src, r->cells, r->ncols, id, by,
			      &record);
	if (rc < 0)
		goto cleanup;
	rc = r->emit(r->emit_data, c->rkind, record);
	record = NULL; /* stolen, also on failure */
	if (rc < 0 || c->nidcols == 0)
		goto cleanup;
	/* Identities cite the record as the bundle shows it. */
	len = strlen(pex_source_id(r->src)) + strlen(id) + 2;
	full_id = malloc(len);
	if (full_id == NULL) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	snprintf(full_id, len, "%s:%s", pex_source_id(r->src), id);
	for (i = 0; i < c->nidcols; i++) {
		const struct pex_csv_field *f =
			&rec->fields[c->id_cols[i].index];

		if (f->len == 0)
			continue;
		rc = pex_source_add_identity(r->src, c->id_cols[i].type,
					     f->value, full_id, 0, 0, 0);
		if (rc < 0)
			goto cleanup;
	}
cleanup:
	json_decref(record);
	free(full_id);
	return rc;
}

/* Open the file and name its columns (the header row, or `columns`),
 * checking that the columns the options name are there. */
static int open_table(struct run *r, pex_csv_reader **reader)
{
	struct csv_ctx *c = r->c;
	struct pex_csv_options opt = {0};
	struct pex_csv_record rec;
	int rc;

	opt.name = c->file;
	opt.delimiter = c->sep;
	opt.encoding = c->encoding;
	opt.max_field = (size_t)c->max_field_bytes;
	opt.max_record = (size_t)c->max_record_bytes;
	opt.max_fields = (size_t)c->max_columns;
	if (!c->header)
		for (opt.nfields = 0; c->columns[opt.nfields]; opt.nfields++)
			;
	rc = pex_csv_reader_open(reader, c->file, &opt);
	if (rc < 0)
		return rc;
	if (!c->header) {
		r->ncols = opt.nfields;
		rc = make_names(r, NULL, c->columns);
		return rc < 0 ? rc : resolve_columns(r, NULL);
	}
	rc = pex_csv_reader_next(*reader, &rec);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return pex_error_set(PEX_EINVALID, "%s: the file is empty, but "
				     "a header row was expected", c->file);
	r->ncols = rec.nfields;
	rc = make_names(r, &rec, NULL);
	return rc < 0 ? rc : resolve_columns(r, &rec);
}

/* For `portex check`: the file opens and holds the columns the options
 * name, so that a misspelt path or column shows there, not in the
 * export. */
static int csv_check(struct pex_source *src, void *data)
{
	struct csv_ctx *c = data;
	struct run r = {.c = c, .src = src};
	struct pex_csv_record rec;
	pex_csv_reader *reader = NULL;
	int rc = open_table(&r, &reader);

	/* every row, as an export reads them: a file whose header reads
	 * but whose rows do not (another encoding further down, a quote
	 * left open) fails here, not in the export */
	while (rc >= 0 && (rc = pex_csv_reader_next(reader, &rec)) == 1)
		;
	if (rc > 0)
		rc = 0;
	pex_csv_reader_free(reader);
	free_names(r.names, r.ncols);
	return rc;
}

static int csv_collect(struct pex_source *src, void *data,
		       const struct pex_identity_set *ids, pex_emit_fn emit,
		       void *emit_data)
{
	struct csv_ctx *c = data;
	struct run r = {.c = c, .src = src, .emit = emit,
			.emit_data = emit_data};
	struct pex_csv_record rec;
	const struct pex_identity *by;
	pex_csv_reader *reader = NULL;
	size_t i;
	int rc;

	rc = collect_wanted(&r, ids);
	if (rc < 0)
		goto cleanup;
	rc = open_table(&r, &reader);
	if (rc < 0)
		goto cleanup;
	r.cells = calloc(r.ncols, sizeof(*r.cells));
	if (r.cells == NULL) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	/* Every row is read even when nothing can match, so a broken
	 * file fails the source the same way every time. */
	while ((rc = pex_csv_reader_next(reader, &rec)) == 1) {
		r.rows++;
		rc = match_row(&r, &rec, &by);
		if (rc < 0)
			goto cleanup;
		if (by == NULL)
			continue;
		rc = emit_row(&r, &rec, by);
		if (rc < 0)
			goto cleanup;
		r.matched++;
	}
	if (rc < 0)
		goto cleanup;
	pex_source_log(src, PEX_LOG_DEBUG, "%s: %lu rows, %lu matched",
		       c->file, r.rows, r.matched);
cleanup:
	pex_csv_reader_free(reader);
	free_names(r.names, r.ncols);
	free(r.cells);
	for (i = 0; i < r.nwanted; i++)
		free(r.wanted[i].norm);
	free(r.wanted);
	return rc;
}

/* The types a CSV source searches by: the values of its match map. */
static void csv_identity_types(const json_t *options, json_t *types)
{
	const char *col;
	json_t *type;

	json_object_foreach((json_t *)json_object_get(options, "match"), col,
			    type)
		if (json_is_string(type))
			json_object_set_new(types, json_string_value(type),
					    json_true());
}

const struct pex_collector pex_collector_csv = {
	.name = "csv",
	.description = "contact records from CSV exports (address books, "
		       "CRM exports)",
	.config_map = csv_config,
	.ctx_size = sizeof(struct csv_ctx),
	.init = csv_init,
	.check = csv_check,
	.identity_types = csv_identity_types,
	.collect = csv_collect,
	.fini = csv_fini,
};
