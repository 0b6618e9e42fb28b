/*
 * portex verify: check a bundle using only what is inside it; see
 * pex_bundle_verify() in include/portex/bundle.h.
 *
 * data/bundle.json is parsed whole (jansson has no streaming parser), so
 * verifying takes memory in proportion to that file; the XML is checked
 * as a stream.
 */
#include "portex/bundle.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "bundle/internal.h"
#include "core/buf.h"
#include "core/hash.h"
#include "core/text.h"
#include "portex/error.h"
#include "portex/jsonschema.h"

#define PEX_VERIFY_SMALL_MAX (64u << 20) /* schemas and manifest */

static void problem(json_t *list, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void problem(json_t *list, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pex_utf8_mend(msg); /* else json_string() drops it, and the problem */
	json_array_append_new(list, json_string(msg));
}

/* Read a whole (small) entry into memory. */
static int read_entry(zip_t *za, const char *name, struct pex_buf *out)
{
	zip_file_t *zf = zip_fopen(za, name, 0);
	char chunk[65536];
	zip_int64_t n;
	int rc = 0;

	pex_buf_reset(out);
	if (!zf)
		return pex_error_set(PEX_ENOTFOUND, "%s is missing", name);
	while (!rc && (n = zip_fread(zf, chunk, sizeof(chunk))) > 0)
		rc = pex_buf_append(out, chunk, (size_t)n);
	if (!rc && n < 0)
		rc = pex_error_set(PEX_EIO, "%s: %s", name,
				   zip_file_strerror(zf));
	zip_fclose(zf);
	return rc;
}

struct zread {
	zip_file_t *zf;
	pex_sha256 *h;
	long long bytes;
	int failed;
};

static ssize_t zip_reader(void *ctx, void *buf, size_t n)
{
	struct zread *z = ctx;
	zip_int64_t k = zip_fread(z->zf, buf, n);

	if (k < 0) {
		z->failed = 1;
		return pex_error_set(PEX_EIO, "%s", zip_file_strerror(z->zf));
	}
	if (k > 0) {
		pex_sha256_update(z->h, buf, (size_t)k);
		z->bytes += k;
	}
	return (ssize_t)k;
}

static size_t json_reader(void *buffer, size_t buflen, void *data)
{
	ssize_t k = zip_reader(data, buffer, buflen);

	return k < 0 ? (size_t)-1 : (size_t)k;
}

struct verr {
	json_t *list;
	const char *file;
	int count;
};

static int on_schema_error(const pex_schema_error *e, void *payload)
{
	struct verr *v = payload;

	if (v->count++ < 20)
		problem(v->list, "%s: %s: %s", v->file,
			e->instance_path[0] ? e->instance_path : "/",
			e->message);
	return 0;
}

/* Registry of the JSON schemas inside the bundle, keyed by $id and by
 * their path in the zip. */
static int bundle_registry(zip_t *za, pex_schema_registry **out,
			   json_t *problems)
{
	struct pex_buf b = PEX_BUF_INIT(PEX_VERIFY_SMALL_MAX);
	zip_int64_t i, n = zip_get_num_entries(za, 0);
	int rc = pex_schema_registry_new(out);

	for (i = 0; !rc && i < n; i++) {
		const char *name = zip_get_name(za, (zip_uint64_t)i, 0);
		size_t len = name ? strlen(name) : 0;
		json_error_t err;
		json_t *doc, *id;

		if (!name || strncmp(name, "schemas/", 8) || len < 5 ||
		    strcmp(name + len - 5, ".json"))
			continue;
		if (read_entry(za, name, &b)) {
			problem(problems, "%s", pex_error_last());
			continue;
		}
		doc = json_loadb(b.data, b.len, 0, &err);
		if (!doc) {
			problem(problems, "%s: not JSON: %s (line %d)", name,
				err.text, err.line);
			continue;
		}
		id = json_object_get(doc, "$id");
		if (json_is_string(id))
			pex_schema_registry_add(*out, json_string_value(id),
						doc);
		pex_schema_registry_add(*out, name, doc);
		json_decref(doc);
	}
	pex_buf_free(&b);
	return rc;
}

static int check_json(zip_t *za, pex_schema_registry *reg, const char *name,
		      const char *schema_path, struct zread *z,
		      json_t *problems, json_t **doc_out)
{
	json_error_t err;
	pex_schema *s = NULL;
	json_t *doc;
	struct verr v = { problems, name, 0 };

	doc = json_load_callback(json_reader, z, 0, &err);
	if (!doc) {
		problem(problems, "%s: not valid JSON: %s (line %d)", name,
			err.text, err.line);
		return 0;
	}
	if (schema_path) {
		if (pex_schema_compile_uri(&s, reg, schema_path)) {
			problem(problems, "%s: cannot load its schema %s: %s",
				name, schema_path, pex_error_last());
		} else if (pex_schema_validate(s, doc, PEX_SCHEMA_ALL_ERRORS,
					       on_schema_error, &v) < 0) {
			problem(problems, "%s: %s", name, pex_error_last());
		}
		pex_schema_free(s);
	}
	if (doc_out)
		*doc_out = doc;
	else
		json_decref(doc);
	(void)za;
	return 0;
}

static int safe_name(const char *name)
{
	return name[0] != '/' && !strstr(name, "..") && !strchr(name, '\\');
}

/*
 * README.txt gives the person each file's SHA-256 for `sha256sum -c`:
 * those lines must say what the manifest says, or one of the two was
 * changed after the bundle was made (the manifest's hashes are checked
 * against the files above; README.txt's own hash in the manifest only
 * ties it to the manifest, which can be rewritten with it).
 */
static void readme_hashes(zip_t *za, const json_t *files, json_t *problems)
{
	struct pex_buf b = PEX_BUF_INIT(PEX_VERIFY_SMALL_MAX);
	const char *p, *end;
	const json_t *f;
	size_t k;

	if (read_entry(za, "README.txt", &b))
		goto out; /* a missing README.txt is an unlisted or missing
			   * file, said above */
	for (p = b.data, end = b.data + b.len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		size_t i;

		/* "<64 hex>  <path>" */
		for (i = 0; i < 64 && i < len && isxdigit((unsigned char)p[i]);
		     i++)
			;
		if (i == 64 && len > 66 && p[64] == ' ' && p[65] == ' ') {
			const char *name = p + 66;
			size_t nlen = len - 66;
			int found = 0;

			json_array_foreach(files, k, f) {
				const char *fp = json_string_value(
					json_object_get(f, "path"));
				const char *sha = json_string_value(
					json_object_get(f, "sha256"));

				if (!fp || !sha || strlen(fp) != nlen ||
				    memcmp(fp, name, nlen))
					continue;
				found = 1;
				if (strncmp(sha, p, 64))
					problem(problems, "README.txt: the "
						"SHA-256 it gives for %s is not "
						"the manifest's", fp);
			}
			if (!found)
				problem(problems, "README.txt: gives a SHA-256 "
					"for %.*s, which the manifest does not "
					"list", (int)(nlen > 200 ? 200 : nlen),
					name);
		}
		p += len + 1;
	}
out:
	pex_buf_free(&b);
}

int pex_bundle_verify(const char *path, json_t **problems)
{
	struct pex_buf b = PEX_BUF_INIT(PEX_VERIFY_SMALL_MAX);
	pex_schema_registry *reg = NULL;
	json_t *manifest = NULL, *files, *f, *data = NULL, *listed;
	zip_int64_t i, n;
	zip_t *za;
	int err, rc = 0;
	size_t k;

	*problems = json_array();
	za = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &err);
	if (!za) {
		zip_error_t ze;

		zip_error_init_with_code(&ze, err);
		rc = pex_error_set(PEX_EIO, "cannot open as a zip: %s",
				   zip_error_strerror(&ze));
		zip_error_fini(&ze);
		return rc;
	}
	if (read_entry(za, "manifest.json", &b)) {
		problem(*problems, "manifest.json: %s", pex_error_last());
		goto done;
	}
	{
		json_error_t jerr;

		manifest = json_loadb(b.data, b.len, 0, &jerr);
		if (!manifest) {
			problem(*problems, "manifest.json: not valid JSON: "
				"%s (line %d)", jerr.text, jerr.line);
			goto done;
		}
	}
	bundle_registry(za, &reg, *problems);
	{
		pex_schema *ms = NULL;
		struct verr v = { *problems, "manifest.json", 0 };

		if (pex_schema_compile_uri(&ms, reg,
					   "schemas/v1/manifest.schema.json"))
			problem(*problems, "manifest.json: cannot load "
				"schemas/v1/manifest.schema.json: %s",
				pex_error_last());
		else
			pex_schema_validate(ms, manifest,
					    PEX_SCHEMA_ALL_ERRORS,
					    on_schema_error, &v);
		pex_schema_free(ms);
	}
	files = json_object_get(manifest, "files");
	listed = json_object();
	json_array_foreach(files, k, f) {
		const char *name = json_string_value(json_object_get(f,
								     "path"));
		const char *sha = json_string_value(json_object_get(f,
								    "sha256"));
		const char *schema = json_string_value(json_object_get(f,
								       "schema"));
		json_int_t bytes = json_integer_value(json_object_get(f,
								      "bytes"));
		struct zread z = { 0 };
		char hex[PEX_SHA256_HEX];
		size_t len;

		if (!name || !sha)
			continue;
		json_object_set_new(listed, name, json_true());
		z.zf = zip_fopen(za, name, 0);
		if (!z.zf) {
			problem(*problems, "%s: listed in the manifest but "
				"not in the zip", name);
			continue;
		}
		pex_sha256_new(&z.h);
		len = strlen(name);
		if (schema && len > 5 && !strcmp(name + len - 5, ".json")) {
			check_json(za, reg, name, schema, &z, *problems,
				   !strcmp(name, "data/bundle.json") ? &data
								     : NULL);
		} else if (schema && len > 4 &&
			   !strcmp(name + len - 4, ".xml")) {
			struct pex_buf xsd = PEX_BUF_INIT(PEX_VERIFY_SMALL_MAX);
			struct pex_buf errs = PEX_BUF_INIT(64 * 1024);
			int r;

			if (read_entry(za, schema, &xsd)) {
				problem(*problems, "%s: its schema %s is "
					"missing", name, schema);
			} else {
				r = pex_xsd_validate_stream(xsd.data, xsd.len,
					zip_reader, &z, name, &errs, 20);
				if (r == 1)
					problem(*problems, "%s: does not meet "
						"%s: %s", name, schema,
						errs.data);
				else if (r < 0)
					problem(*problems, "%s: %s", name,
						pex_error_last());
			}
			pex_buf_free(&xsd);
			pex_buf_free(&errs);
		}
		/* hash whatever the checks above did not read */
		{
			char chunk[65536];

			while (zip_reader(&z, chunk, sizeof(chunk)) > 0)
				;
		}
		pex_sha256_final(z.h, hex);
		pex_sha256_free(z.h);
		zip_fclose(z.zf);
		if (z.failed)
			problem(*problems, "%s: cannot be read: %s", name,
				pex_error_last());
		else if (z.bytes != bytes)
			problem(*problems, "%s: %lld bytes, the manifest says "
				"%" JSON_INTEGER_FORMAT, name, z.bytes, bytes);
		else if (strcmp(hex, sha))
			problem(*problems, "%s: SHA-256 %s, the manifest says "
				"%s", name, hex, sha);
	}
	n = zip_get_num_entries(za, 0);
	for (i = 0; i < n; i++) {
		const char *name = zip_get_name(za, (zip_uint64_t)i, 0);

		if (!name)
			continue;
		if (!safe_name(name))
			problem(*problems, "%s: unsafe name inside the zip",
				name);
		/* a folder entry (a re-zipped bundle has them) holds no
		 * data */
		if (strcmp(name, "manifest.json") && *name &&
		    name[strlen(name) - 1] != '/' &&
		    !json_object_get(listed, name))
			problem(*problems, "%s: in the zip but not listed in "
				"the manifest", name);
	}
	json_decref(listed);
	readme_hashes(za, files, *problems);
	if (data) {
		static const char *const same[] = { "bundle_id", "request_id",
			"generated_at", "complete", "sources", "subject",
			NULL };

		for (k = 0; same[k]; k++)
			if (!json_equal(json_object_get(data, same[k]),
					json_object_get(manifest, same[k])) &&
			    (json_object_get(data, same[k]) ||
			     json_object_get(manifest, same[k])))
				problem(*problems, "data/bundle.json and "
					"manifest.json disagree on \"%s\"",
					same[k]);
	} else if (json_is_array(files)) {
		problem(*problems, "data/bundle.json is missing or not JSON");
	}
done:
	json_decref(data);
	json_decref(manifest);
	pex_schema_registry_free(reg);
	pex_buf_free(&b);
	zip_discard(za);
	return json_array_size(*problems) ? 1 : 0;
}

int pex_bundle_complete(const char *path)
{
	struct pex_buf b = PEX_BUF_INIT(PEX_VERIFY_SMALL_MAX);
	json_t *m = NULL;
	int err, rc = -1;
	zip_t *za = zip_open(path, ZIP_RDONLY, &err);

	if (za && !read_entry(za, "manifest.json", &b))
		m = json_loadb(b.data, b.len, 0, NULL);
	if (json_is_boolean(json_object_get(m, "complete")))
		rc = json_is_true(json_object_get(m, "complete"));
	json_decref(m);
	pex_buf_free(&b);
	if (za)
		zip_discard(za);
	return rc;
}
