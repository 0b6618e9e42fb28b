/*
 * Loading and checking portex.yaml; see include/portex/config.h.
 * Structure is checked by the config schema; each source's options are
 * checked later by its collector's config map (the engine reports those
 * with the source's line, see pex_config_line()).
 */
#include "portex/config.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "config/yaml.h"
#include "core/buf.h"
#include "model/schemas.h"
#include "portex/engine.h"
#include "portex/error.h"
#include "portex/jsonschema.h"

#define PEX_CONFIG_ERRORS_MAX 20

struct pex_config {
	char *path;
	char *dir;
	json_t *root;
	json_t *lines;
};

void pex_config_free(pex_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->dir);
	json_decref(cfg->root);
	json_decref(cfg->lines);
	free(cfg);
}

int pex_config_copy(pex_config **out, const pex_config *cfg)
{
	pex_config *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c) {
		c->path = strdup(cfg->path);
		c->dir = strdup(cfg->dir);
		c->root = json_deep_copy(cfg->root);
		c->lines = json_deep_copy(cfg->lines);
	}
	if (!c || !c->path || !c->dir || !c->root ||
	    (cfg->lines && !c->lines)) {
		pex_config_free(c);
		return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	*out = c;
	return 0;
}

const json_t *pex_config_root(const pex_config *cfg)
{
	return cfg->root;
}

const char *pex_config_path(const pex_config *cfg)
{
	return cfg->path;
}

const char *pex_config_dir(const pex_config *cfg)
{
	return cfg->dir;
}

int pex_config_line(const pex_config *cfg, const char *pointer)
{
	char *p = strdup(pointer);
	int line = 0;

	while (p) {
		json_t *l = json_object_get(cfg->lines, p);
		char *slash;

		if (l) {
			line = (int)json_integer_value(l);
			break;
		}
		slash = strrchr(p, '/');
		if (!slash)
			break;
		*slash = '\0';
	}
	free(p);
	return line;
}

char *pex_config_pointer_to_path(const char *pointer)
{
	struct pex_buf b = PEX_BUF_INIT(64 * 1024);
	const char *p = pointer;

	if (!*p)
		return strdup("(top level)");
	while (*p == '/') {
		const char *end = strchr(p + 1, '/');
		size_t n = end ? (size_t)(end - p - 1) : strlen(p + 1);
		int numeric = n > 0 && strspn(p + 1, "0123456789") >= n;

		if (numeric)
			pex_buf_printf(&b, "[%.*s]", (int)n, p + 1);
		else
			pex_buf_printf(&b, "%s%.*s", b.len ? "." : "",
				       (int)n, p + 1);
		p += n + 1;
	}
	/* undo ~1 and ~0 escapes for display */
	if (b.data) {
		char *r = b.data, *w = b.data;

		while (*r) {
			if (r[0] == '~' && (r[1] == '0' || r[1] == '1')) {
				*w++ = r[1] == '0' ? '~' : '/';
				r += 2;
			} else {
				*w++ = *r++;
			}
		}
		*w = '\0';
	}
	return pex_buf_detach(&b);
}

struct collect_errors {
	const pex_config *cfg;
	struct pex_buf out;
	int count;
};

static int on_error(const pex_schema_error *e, void *payload)
{
	struct collect_errors *c = payload;
	char *path;

	/* Past the limit keep counting (not stopping) so that the
	 * "(N more problems)" line tells the truth. */
	if (c->count++ >= PEX_CONFIG_ERRORS_MAX)
		return 0;
	path = pex_config_pointer_to_path(e->instance_path);
	pex_buf_printf(&c->out, "%s%s:%d: %s: %s", c->out.len ? "\n" : "",
		       c->cfg->path, pex_config_line(c->cfg, e->instance_path),
		       path ? path : e->instance_path, e->message);
	free(path);
	return 0;
}

/* Each source's options against its collector's config map, so that a
 * typo under options: is a config error with its own line, not a source
 * that fails at export time. */
static int check_source_options(pex_config *cfg, struct collect_errors *ce)
{
	const json_t *sources = json_object_get(cfg->root, "sources");
	const json_t *s;
	size_t i;

	pex_buf_reset(&ce->out);
	ce->count = 0;
	json_array_foreach(sources, i, s) {
		const char *bad = NULL, *id = json_string_value(
			json_object_get(s, "id"));
		char ptr[256];
		char *where;
		size_t j;
		int rc;

		/* ids name records ("crm:1"): two sources with one id would
		 * make one's records look like the other's */
		for (j = 0; id && j < i; j++) {
			const char *o = json_string_value(json_object_get(
				json_array_get(sources, j), "id"));

			if (o && !strcmp(o, id))
				break;
		}
		if (id && j < i) {
			snprintf(ptr, sizeof(ptr), "/sources/%zu/id", i);
			pex_buf_printf(&ce->out, "%s%s:%d: sources[%zu].id: "
				       "'%s' is the id of sources[%zu] too; "
				       "give each source its own",
				       ce->out.len ? "\n" : "", cfg->path,
				       pex_config_line(cfg, ptr), i, id, j);
			ce->count++;
			continue;
		}
		/* the bundle tells the person, per category, why it is held
		 * and for how long (Art. 15(1)): a source's category without
		 * those facts would be data shown without them */
		{
			const char *cat = json_string_value(
				json_object_get(s, "category"));

			if (cat && !json_object_get(json_object_get(
					cfg->root, "categories"), cat)) {
				snprintf(ptr, sizeof(ptr),
					 "/sources/%zu/category", i);
				pex_buf_printf(&ce->out, "%s%s:%d: sources[%zu]"
					       ".category: '%s' is not under "
					       "categories: give it its "
					       "purposes, lawful_basis and "
					       "retention there, which the "
					       "bundle tells the person",
					       ce->out.len ? "\n" : "",
					       cfg->path,
					       pex_config_line(cfg, ptr), i,
					       cat);
				ce->count++;
				continue;
			}
		}
		rc = pex_collector_check_options(
			json_string_value(json_object_get(s, "collector")),
			json_object_get(s, "options"), &bad);
		if (!rc)
			continue;
		if (bad)
			snprintf(ptr, sizeof(ptr), "/sources/%zu/options/%s", i,
				 bad);
		else if (strstr(pex_error_last(), "no collector named"))
			snprintf(ptr, sizeof(ptr), "/sources/%zu/collector", i);
		else
			snprintf(ptr, sizeof(ptr), "/sources/%zu/options", i);
		where = pex_config_pointer_to_path(ptr);
		pex_buf_printf(&ce->out, "%s%s:%d: %s: %s",
			       ce->out.len ? "\n" : "", cfg->path,
			       pex_config_line(cfg, ptr), where ? where : ptr,
			       pex_error_last());
		free(where);
		ce->count++;
	}
	if (ce->count)
		return pex_error_set(PEX_EINVALID, "%s", ce->out.data);
	return 0;
}

int pex_config_load(pex_config **out, const char *path)
{
	struct collect_errors ce = { 0 };
	pex_schema *schema = NULL;
	pex_config *cfg;
	char *tmp;
	int rc;

	*out = NULL;
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	cfg->path = strdup(path);
	tmp = strdup(path);
	cfg->dir = tmp ? strdup(dirname(tmp)) : NULL;
	free(tmp);
	if (!cfg->path || !cfg->dir) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	rc = pex_yaml_load_file(path, &cfg->root, &cfg->lines);
	if (rc)
		goto cleanup;
	rc = pex_schemas_compile(&schema, "urn:portex:schema:1:config");
	if (rc) {
		pex_error_wrap(rc, "config schema");
		goto cleanup;
	}
	ce.cfg = cfg;
	pex_buf_init(&ce.out, 64 * 1024);
	rc = pex_schema_validate(schema, cfg->root, PEX_SCHEMA_ALL_ERRORS,
				 on_error, &ce);
	if (rc == 1) {
		if (ce.count > PEX_CONFIG_ERRORS_MAX)
			pex_buf_printf(&ce.out, "\n(%d more problems)",
				       ce.count - PEX_CONFIG_ERRORS_MAX);
		rc = pex_error_set(PEX_EINVALID, "%s",
				   ce.out.data ? ce.out.data : path);
	} else if (rc < 0) {
		pex_error_wrap(rc, "%s", path);
	} else {
		rc = check_source_options(cfg, &ce);
	}
cleanup:
	pex_buf_free(&ce.out);
	pex_schema_free(schema);
	if (rc) {
		pex_config_free(cfg);
		return rc;
	}
	*out = cfg;
	return 0;
}

/* ---- identity types ------------------------------------------------------ */

static int is_type_word(const char *s, size_t n)
{
	size_t i;

	if (!n || n > 32 || s[0] < 'a' || s[0] > 'z')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

/* Every word of the options that could name an identity type: values
 * ("Email: email") and ":name" query parameters. */
static void collect_words(const json_t *v, json_t *set, int depth)
{
	const char *key;
	json_t *child;
	size_t i;

	if (depth > 16)
		return;
	if (json_is_string(v)) {
		const char *p = json_string_value(v);
		size_t n = json_string_length(v);

		if (is_type_word(p, n))
			json_object_set_new(set, p, json_true());
		for (i = 0; i + 1 < n; i++) {
			size_t k = i + 1;

			if (p[i] != ':')
				continue;
			while (k < n && ((p[k] >= 'a' && p[k] <= 'z') ||
					 (p[k] >= '0' && p[k] <= '9') ||
					 p[k] == '_'))
				k++;
			if (is_type_word(p + i + 1, k - i - 1)) {
				char w[40];

				snprintf(w, sizeof(w), "%.*s", (int)(k - i - 1),
					 p + i + 1);
				json_object_set_new(set, w, json_true());
			}
		}
	} else if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, child)
			collect_words(child, set, depth + 1);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child)
			collect_words(child, set, depth + 1);
	}
}

void pex_config_type_words(const json_t *options, json_t *set)
{
	collect_words(options, set, 0);
}
