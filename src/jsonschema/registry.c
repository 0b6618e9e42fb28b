/*
 * The schema registry: URI -> JSON document, filled by the caller from
 * memory or from files on disk. It is the only way a remote $ref resolves;
 * nothing here touches the network. The registry holds one reference per
 * entry; a document registered under several URIs (its path and its $id)
 * holds one reference per URI.
 */
#include "jsonschema/js_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "portex/error.h"

/* Largest schema file we read, and how deep add_dir descends. */
#define PEX_JS_MAX_FILE (16u * 1024u * 1024u)
#define PEX_JS_MAX_DIR_DEPTH 16
#define PEX_JS_MAX_PATH 4096

int pex_schema_registry_new(pex_schema_registry **out)
{
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	return 0;
}

void pex_schema_registry_free(pex_schema_registry *reg)
{
	size_t i;

	if (!reg)
		return;
	for (i = 0; i < reg->n; i++) {
		free(reg->e[i].uri);
		json_decref(reg->e[i].doc);
	}
	free(reg->e);
	free(reg);
}

json_t *pex_js_registry_find(const pex_schema_registry *reg, const char *uri)
{
	size_t i, n;

	if (!reg || !uri)
		return NULL;
	n = strcspn(uri, "#");
	for (i = 0; i < reg->n; i++) {
		if (strlen(reg->e[i].uri) == n &&
		    !memcmp(reg->e[i].uri, uri, n))
			return reg->e[i].doc;
	}
	return NULL;
}

/* Put doc under uri (fragment dropped), replacing an older entry. */
static int reg_put(pex_schema_registry *reg, const char *uri, json_t *doc)
{
	char *key = pex_js_uri_strip_fragment(uri);
	size_t i;

	if (!key)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	for (i = 0; i < reg->n; i++) {
		if (!strcmp(reg->e[i].uri, key)) {
			json_decref(reg->e[i].doc);
			reg->e[i].doc = json_incref(doc);
			free(key);
			return 0;
		}
	}
	if (reg->n == reg->cap) {
		size_t cap = reg->cap ? reg->cap * 2 : 16;
		struct pex_js_reg_entry *e = realloc(reg->e, cap * sizeof(*e));

		if (!e) {
			free(key);
			return pex_error_set(PEX_ENOMEM, "out of memory");
		}
		reg->e = e;
		reg->cap = cap;
	}
	reg->e[reg->n].uri = key;
	reg->e[reg->n].doc = json_incref(doc);
	reg->n++;
	return 0;
}

int pex_schema_registry_add(pex_schema_registry *reg, const char *uri,
			    json_t *doc)
{
	json_t *id;
	int rc;

	if (!reg || !doc)
		return pex_error_set(PEX_EUSAGE, "registry and doc required");
	id = json_is_object(doc) ? json_object_get(doc, "$id") : NULL;
	if (!json_is_string(id))
		id = NULL;
	if (!uri && !id)
		return pex_error_set(PEX_EINVALID,
				     "schema has no $id and no URI given");
	if (uri) {
		rc = reg_put(reg, uri, doc);
		if (rc < 0)
			return rc;
	}
	if (id) {
		char *full = pex_js_uri_resolve(uri ? uri : "",
						json_string_value(id));

		if (!full)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		rc = reg_put(reg, full, doc);
		free(full);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int pex_schema_registry_add_file(pex_schema_registry *reg, const char *uri,
				 const char *path)
{
	struct stat st;
	json_error_t jerr;
	json_t *doc;
	int rc;

	if (!reg || !path)
		return pex_error_set(PEX_EUSAGE, "registry and path required");
	if (stat(path, &st) != 0)
		return pex_error_set(PEX_EIO, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return pex_error_set(PEX_EIO, "%s: not a regular file", path);
	if ((unsigned long long)st.st_size > PEX_JS_MAX_FILE)
		return pex_error_set(PEX_ELIMIT,
				     "%s: schema larger than %u bytes", path,
				     PEX_JS_MAX_FILE);
	doc = json_load_file(path, JSON_DECODE_ANY, &jerr);
	if (!doc)
		return pex_error_set(PEX_EINVALID, "%s:%d:%d: %s", path,
				     jerr.line, jerr.column, jerr.text);
	rc = pex_schema_registry_add(reg, uri, doc);
	json_decref(doc);
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/* rel is the path below the top directory ("" at the top, else "a/b/"). */
static int add_dir_rec(pex_schema_registry *reg, const char *base_uri,
		       const char *dir, const char *rel, int depth)
{
	DIR *d = NULL;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	int rc = 0;

	if (depth > PEX_JS_MAX_DIR_DEPTH)
		return pex_error_set(PEX_ELIMIT, "%s: nested deeper than %d",
				     dir, PEX_JS_MAX_DIR_DEPTH);
	d = opendir(dir);
	if (!d) {
		rc = pex_error_set(PEX_EIO, "%s: %s", dir, strerror(errno));
		goto cleanup;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **nn;

			cap = cap ? cap * 2 : 32;
			nn = realloc(names, cap * sizeof(*nn));
			if (!nn) {
				rc = pex_error_set(PEX_ENOMEM,
						   "out of memory");
				goto cleanup;
			}
			names = nn;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
			goto cleanup;
		}
		n++;
	}
	/* sorted, so that a later file with the same $id wins predictably */
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n && rc == 0; i++) {
		char path[PEX_JS_MAX_PATH], sub[PEX_JS_MAX_PATH];
		struct stat st;

		if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >=
			    (int)sizeof(path) ||
		    snprintf(sub, sizeof(sub), "%s%s", rel, names[i]) >=
			    (int)sizeof(sub)) {
			rc = pex_error_set(PEX_ELIMIT, "%s: path too long",
					   dir);
			break;
		}
		/* lstat: symbolic links to folders could loop */
		if (lstat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			char subdir[PEX_JS_MAX_PATH];

			if (snprintf(subdir, sizeof(subdir), "%s/", sub) >=
			    (int)sizeof(subdir)) {
				rc = pex_error_set(PEX_ELIMIT,
						   "%s: path too long", dir);
				break;
			}
			rc = add_dir_rec(reg, base_uri, path, subdir,
					 depth + 1);
		} else if (ends_with(names[i], ".json") &&
			   (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))) {
			char uri[PEX_JS_MAX_PATH * 2];

			if (snprintf(uri, sizeof(uri), "%s%s",
				     base_uri ? base_uri : "",
				     sub) >= (int)sizeof(uri)) {
				rc = pex_error_set(PEX_ELIMIT,
						   "%s: URI too long", dir);
				break;
			}
			rc = pex_schema_registry_add_file(reg, uri, path);
		}
	}
cleanup:
	if (d)
		closedir(d);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

int pex_schema_registry_add_dir(pex_schema_registry *reg, const char *base_uri,
				const char *dir)
{
	if (!reg || !dir)
		return pex_error_set(PEX_EUSAGE, "registry and dir required");
	return add_dir_rec(reg, base_uri, dir, "", 0);
}
