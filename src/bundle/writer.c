/*
 * The bundle writer; see include/portex/bundle.h.
 *
 * Records are validated one by one and appended to per-kind section
 * files (JSON and XML) in a hidden work folder beside the output. At seal
 * time each data file is a concatenation (bundle/concat.h) of the
 * envelope and the sections; it is validated and hashed as a stream, and
 * libzip reads the same stream again to compress it. The zip goes to a
 * hidden temporary name, is fsynced and only then renamed to the name
 * the user asked for.
 */
#include "portex/bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

#include "bundle/concat.h"
#include "bundle/internal.h"
#include "bundle/xmlout.h"
#include "core/buf.h"
#include "core/hash.h"
#include "model/kinds.h"
#include "model/schemas.h"
#include "portex/error.h"
#include "portex/jsonschema.h"

#define PEX_RECORD_MAX (256u << 20) /* one serialised record */

struct section {
	FILE *json;
	FILE *xml;
	char *json_path;
	char *xml_path;
	unsigned long long count;
};

struct pex_bundle {
	struct pex_bundle_options opts;
	char *out_path;
	char *tmp_path;
	char *workdir;
	struct section sec[PEX_REC__COUNT];
	pex_schema *schema[PEX_REC__COUNT];
	pex_schema_registry *reg;
	struct pex_buf jb;
	struct pex_buf xb;
	int sealed;
};

/* ---- opening ----------------------------------------------------------- */

static char *join(const char *dir, const char *name)
{
	struct pex_buf b = PEX_BUF_INIT(8192);

	if (pex_buf_printf(&b, "%s/%s", dir, name)) {
		pex_buf_free(&b);
		return NULL;
	}
	return pex_buf_detach(&b);
}

int pex_bundle_open(pex_bundle **out, const char *out_path,
		    const struct pex_bundle_options *opts)
{
	struct pex_bundle_options defaults = PEX_BUNDLE_OPTIONS_INIT;
	char *tmp = NULL, *dir, *base, *work = NULL;
	pex_bundle *b;
	int rc, k;
	struct stat st;

	*out = NULL;
	if (!stat(out_path, &st) && S_ISDIR(st.st_mode))
		return pex_error_set(PEX_EINVALID,
				     "%s is a folder; give a file name for "
				     "the bundle, e.g. %s/bundle.zip",
				     out_path, out_path);
	b = calloc(1, sizeof(*b));
	if (!b)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	b->opts = opts ? *opts : defaults;
	if (b->opts.compression < 1 || b->opts.compression > 9)
		b->opts.compression = 6;
	pex_buf_init(&b->jb, PEX_RECORD_MAX);
	pex_buf_init(&b->xb, PEX_RECORD_MAX);
	b->out_path = strdup(out_path);
	tmp = strdup(out_path);
	if (!b->out_path || !tmp) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto fail;
	}
	dir = dirname(tmp);
	base = basename(b->out_path);
	{
		struct pex_buf p = PEX_BUF_INIT(8192);

		pex_buf_printf(&p, "%s/.%s.portex-work-XXXXXX", dir, base);
		work = pex_buf_detach(&p);
		pex_buf_printf(&p, "%s/.%s.portex-%ld.tmp", dir, base,
			       (long)getpid());
		b->tmp_path = pex_buf_detach(&p);
	}
	if (!work || !b->tmp_path) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto fail;
	}
	if (!mkdtemp(work)) {
		rc = pex_error_set(PEX_EIO,
				   "cannot write in %s (%s); choose an output "
				   "path in a folder you can write to",
				   dir, strerror(errno));
		goto fail;
	}
	b->workdir = work;
	work = NULL;
	rc = pex_schemas_registry(&b->reg);
	for (k = 0; !rc && k < PEX_REC__COUNT; k++) {
		char id[128];

		rc = pex_schema_compile_uri(&b->schema[k], b->reg,
					    pex_record_schema_id(k, id,
								 sizeof(id)));
	}
	if (rc)
		goto fail;
	free(tmp);
	*out = b;
	return 0;
fail:
	free(tmp);
	free(work);
	pex_bundle_free(b);
	return rc;
}

/* ---- records ----------------------------------------------------------- */

struct first_error {
	struct pex_buf msg;
};

static int record_error(const pex_schema_error *e, void *payload)
{
	struct first_error *fe = payload;

	pex_buf_printf(&fe->msg, "%s: %s", e->instance_path[0] ?
		       e->instance_path : "(record)", e->message);
	return 1;
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
	return pex_buf_append(data, buffer, size) ? -1 : 0;
}

static int open_section(pex_bundle *b, enum pex_record_kind kind)
{
	struct section *s = &b->sec[kind];
	char name[64];

	snprintf(name, sizeof(name), "%s.json.part",
		 pex_record_kind_name(kind));
	s->json_path = join(b->workdir, name);
	snprintf(name, sizeof(name), "%s.xml.part",
		 pex_record_kind_name(kind));
	s->xml_path = join(b->workdir, name);
	if (!s->json_path || !s->xml_path)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	s->json = fopen(s->json_path, "wb");
	s->xml = b->opts.xml ? fopen(s->xml_path, "wb") : NULL;
	if (!s->json || (b->opts.xml && !s->xml))
		return pex_error_set(PEX_EIO, "cannot write in %s: %s",
				     b->workdir, strerror(errno));
	return 0;
}

int pex_bundle_add(pex_bundle *b, enum pex_record_kind kind,
		   const json_t *record)
{
	struct section *s;
	struct first_error fe;
	int rc;

	if ((unsigned)kind >= PEX_REC__COUNT || b->sealed)
		return pex_error_set(PEX_EUSAGE, "bad record kind or sealed");
	s = &b->sec[kind];
	pex_buf_init(&fe.msg, 4096);
	rc = pex_schema_validate(b->schema[kind], record,
				 PEX_SCHEMA_FIRST_ERROR, record_error, &fe);
	if (rc) {
		json_t *id = json_object_get(record, "id");

		if (rc == 1)
			rc = pex_error_set(PEX_EINVALID,
					   "%s record %s does not meet its "
					   "schema: %s",
					   pex_record_kind_name(kind),
					   json_is_string(id) ?
					   json_string_value(id) : "(no id)",
					   fe.msg.data ? fe.msg.data : "");
		pex_buf_free(&fe.msg);
		return rc;
	}
	pex_buf_free(&fe.msg);
	if (!s->json) {
		rc = open_section(b, kind);
		if (rc)
			return rc;
	}
	pex_buf_reset(&b->jb);
	rc = pex_buf_append(&b->jb, s->count ? ",\n    " : "\n    ",
			    s->count ? 6 : 5);
	if (!rc && json_dump_callback(record, dump_cb, &b->jb,
				      JSON_COMPACT))
		rc = pex_error_set(PEX_ELIMIT,
				   "a %s record is larger than %u bytes",
				   pex_record_kind_name(kind),
				   PEX_RECORD_MAX);
	if (rc)
		return rc;
	if (fwrite(b->jb.data, 1, b->jb.len, s->json) != b->jb.len)
		return pex_error_set(PEX_EIO, "cannot write %s: %s",
				     s->json_path, strerror(errno));
	if (s->xml) {
		pex_buf_reset(&b->xb);
		rc = pex_xml_write(&b->xb, pex_xml_item_name(
					   pex_record_kind_plural(kind)),
				   record);
		if (!rc)
			rc = pex_buf_putc(&b->xb, '\n');
		if (rc)
			return rc;
		if (fwrite(b->xb.data, 1, b->xb.len, s->xml) != b->xb.len)
			return pex_error_set(PEX_EIO, "cannot write %s: %s",
					     s->xml_path, strerror(errno));
	}
	s->count++;
	return 0;
}

unsigned long long pex_bundle_count(const pex_bundle *b,
				    enum pex_record_kind kind)
{
	return (unsigned)kind < PEX_REC__COUNT ? b->sec[kind].count : 0;
}

/* ---- assembling the data files ----------------------------------------- */

/* Where each kind sits in the document: top level, or inside a group. */
static const struct {
	const char *group; /* NULL: top level */
	enum pex_record_kind kinds[2];
	int nkinds;
} layout[] = {
	{ NULL, { PEX_REC_CONTACT }, 1 },
	{ NULL, { PEX_REC_TICKET }, 1 },
	{ "usage", { PEX_REC_USAGE_EVENT, PEX_REC_SESSION }, 2 },
	{ "technical", { PEX_REC_DEVICE, PEX_REC_IP_ADDRESS }, 2 },
};
#define NLAYOUT (sizeof(layout) / sizeof(layout[0]))

static int flush_sections(pex_bundle *b)
{
	int k;

	for (k = 0; k < PEX_REC__COUNT; k++) {
		struct section *s = &b->sec[k];

		if (s->json && fclose(s->json))
			return pex_error_set(PEX_EIO, "cannot write %s: %s",
					     s->json_path, strerror(errno));
		s->json = NULL;
		if (s->xml && fclose(s->xml))
			return pex_error_set(PEX_EIO, "cannot write %s: %s",
					     s->xml_path, strerror(errno));
		s->xml = NULL;
	}
	return 0;
}

static int add_text(struct pex_concat *c, const char *s)
{
	return pex_concat_add_mem(c, s, strlen(s));
}

static int build_json(pex_bundle *b, const json_t *envelope,
		      struct pex_concat *c)
{
	char *head = json_dumps(envelope, JSON_INDENT(2));
	size_t len, i;
	int rc, j;

	if (!head)
		return pex_error_set(PEX_ENOMEM, "cannot write the envelope");
	len = strlen(head);
	while (len && head[len - 1] != '}')
		len--;
	if (len)
		len--; /* drop the closing brace: collections follow */
	while (len && (head[len - 1] == '\n' || head[len - 1] == ' '))
		len--;
	rc = pex_concat_add_owned(c, head, len);
	for (i = 0; !rc && i < NLAYOUT; i++) {
		const char *ind = layout[i].group ? "    " : "  ";

		if (layout[i].group) {
			rc = add_text(c, ",\n  \"");
			if (!rc)
				rc = add_text(c, layout[i].group);
			if (!rc)
				rc = add_text(c, "\": {");
		}
		for (j = 0; !rc && j < layout[i].nkinds; j++) {
			enum pex_record_kind k = layout[i].kinds[j];
			struct section *s = &b->sec[k];
			char open[96];

			snprintf(open, sizeof(open), "%s\n%s\"%s\": [",
				 layout[i].group && j == 0 ? "" : ",", ind,
				 pex_record_kind_plural(k));
			rc = add_text(c, open);
			if (!rc && s->count) {
				rc = pex_concat_add_file(c, s->json_path);
				if (!rc)
					rc = add_text(c, "\n");
				if (!rc)
					rc = add_text(c, ind);
			}
			if (!rc)
				rc = add_text(c, "]");
		}
		if (!rc && layout[i].group)
			rc = add_text(c, "\n  }");
	}
	return rc ? rc : add_text(c, "\n}\n");
}

static int build_xml(pex_bundle *b, const json_t *envelope,
		     struct pex_concat *c)
{
	struct pex_buf x = PEX_BUF_INIT(64u << 20);
	const char *key;
	json_t *v;
	size_t i;
	int rc, j;
	static const char prolog[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<bundle xmlns=\"" PEX_BUNDLE_NS "\">\n";

	rc = pex_buf_append(&x, prolog, sizeof(prolog) - 1);
	json_object_foreach((json_t *)envelope, key, v) {
		if (rc)
			break;
		rc = pex_xml_write(&x, key, v);
		if (!rc)
			rc = pex_buf_putc(&x, '\n');
	}
	if (!rc) {
		size_t n = x.len;

		rc = pex_concat_add_owned(c, pex_buf_detach(&x), n);
	}
	pex_buf_free(&x);
	for (i = 0; !rc && i < NLAYOUT; i++) {
		if (layout[i].group) {
			rc = add_text(c, "<");
			if (!rc)
				rc = add_text(c, layout[i].group);
			if (!rc)
				rc = add_text(c, ">");
		}
		for (j = 0; !rc && j < layout[i].nkinds; j++) {
			enum pex_record_kind k = layout[i].kinds[j];
			const char *name = pex_record_kind_plural(k);
			char tag[64];

			snprintf(tag, sizeof(tag), "<%s>\n", name);
			rc = add_text(c, tag);
			if (!rc && b->sec[k].count)
				rc = pex_concat_add_file(c, b->sec[k].xml_path);
			snprintf(tag, sizeof(tag), "</%s>\n", name);
			if (!rc)
				rc = add_text(c, tag);
		}
		if (!rc && layout[i].group) {
			rc = add_text(c, "</");
			if (!rc)
				rc = add_text(c, layout[i].group);
			if (!rc)
				rc = add_text(c, ">\n");
		}
	}
	return rc ? rc : add_text(c, "</bundle>\n");
}

/* ---- sealing ----------------------------------------------------------- */

struct entry {
	const char *name;   /* path inside the zip */
	const char *media;  /* media type for the manifest */
	const char *schema; /* schema file that validates it, or NULL */
	const char *data;   /* memory entry */
	size_t len;
	struct pex_concat *stream; /* or a stream entry */
	int64_t bytes;
	char sha[PEX_SHA256_HEX];
	zip_t *packed;      /* a stream entry, already compressed */
};

/* Reads a stream once: hashes it and, for the XML, validates it. */
struct scan {
	struct entry *e;
	int xsd; /* validate against the bundle XSD while reading */
	struct pex_buf errors;
	int rc;
	char msg[4096];
	pex_sha256 *h;
};

static ssize_t hashing_reader(void *ctx, void *buf, size_t n)
{
	struct scan *s = ctx;
	ssize_t k = pex_concat_read(s->e->stream, buf, n);

	if (k > 0) {
		if (pex_sha256_update(s->h, buf, (size_t)k))
			return -1;
		s->e->bytes += k;
	}
	return k;
}

static void *scan_stream(void *arg)
{
	struct scan *s = arg;
	char buf[1 << 16];
	ssize_t k;
	int rc;

	s->e->bytes = 0;
	pex_concat_rewind(s->e->stream);
	rc = pex_sha256_new(&s->h);
	if (!rc && s->xsd) {
		const struct pex_schema_file *xsd =
			pex_schema_file_find(PEX_BUNDLE_XSD);

		pex_buf_init(&s->errors, 64 * 1024);
		rc = xsd ? pex_xsd_validate_stream(xsd->data, xsd->len,
						   hashing_reader, s,
						   s->e->name, &s->errors, 10)
			 : pex_error_set(PEX_ENOTFOUND, "no bundle XSD");
		if (rc == 1)
			rc = pex_error_set(PEX_EINVALID,
					   "%s does not meet %s: %s",
					   s->e->name, PEX_BUNDLE_XSD,
					   s->errors.data);
		/* the XML reader may stop before the end; hash the rest */
		while (!rc && (k = hashing_reader(s, buf, sizeof(buf))) > 0)
			;
		pex_buf_free(&s->errors);
	} else {
		while (!rc && (k = hashing_reader(s, buf, sizeof(buf))) > 0)
			;
		if (!rc && k < 0)
			rc = PEX_EIO;
	}
	if (!rc)
		rc = pex_sha256_final(s->h, s->e->sha);
	pex_sha256_free(s->h);
	s->rc = rc;
	if (rc)
		snprintf(s->msg, sizeof(s->msg), "%s", pex_error_last());
	return NULL;
}

struct zsrc {
	struct pex_concat *c;
	int64_t size;
	time_t mtime;
	pex_sha256 *h;  /* hash what libzip reads, when not NULL */
	zip_error_t err;
};

static zip_int64_t concat_cb(void *ud, void *data, zip_uint64_t len,
			     zip_source_cmd_t cmd)
{
	struct zsrc *z = ud;
	zip_stat_t *st;
	ssize_t n;

	switch (cmd) {
	case ZIP_SOURCE_OPEN:
		pex_concat_rewind(z->c);
		return 0;
	case ZIP_SOURCE_READ:
		n = pex_concat_read(z->c, data, len);
		if (n < 0 || (n > 0 && z->h &&
			      pex_sha256_update(z->h, data, (size_t)n))) {
			zip_error_set(&z->err, ZIP_ER_READ, EIO);
			return -1;
		}
		return n;
	case ZIP_SOURCE_CLOSE:
		return 0;
	case ZIP_SOURCE_STAT:
		st = data;
		zip_stat_init(st);
		st->size = (zip_uint64_t)z->size;
		st->mtime = z->mtime;
		st->valid |= ZIP_STAT_SIZE | ZIP_STAT_MTIME;
		return sizeof(*st);
	case ZIP_SOURCE_ERROR:
		return zip_error_to_data(&z->err, data, len);
	case ZIP_SOURCE_FREE:
		zip_error_fini(&z->err);
		free(z);
		return 0;
	case ZIP_SOURCE_SUPPORTS:
		return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN,
			ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE, ZIP_SOURCE_STAT,
			ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, -1);
	default:
		zip_error_set(&z->err, ZIP_ER_OPNOTSUPP, 0);
		return -1;
	}
}

static int add_entry(zip_t *za, const struct entry *e, time_t mtime,
		     int level, pex_sha256 *h)
{
	zip_source_t *src;
	zip_int64_t idx;

	if (e->packed) {
		/* copied as compressed bytes, not compressed again */
		src = zip_source_zip(za, e->packed, 0, 0, 0, -1);
		if (!src)
			return pex_error_set(PEX_ERROR, "zip: %s",
					     zip_strerror(za));
		idx = zip_file_add(za, e->name, src, ZIP_FL_ENC_UTF_8);
		if (idx < 0) {
			zip_source_free(src);
			return pex_error_set(PEX_ERROR, "zip: %s",
					     zip_strerror(za));
		}
		return 0;
	}
	if (e->stream) {
		struct zsrc *z = calloc(1, sizeof(*z));

		if (!z)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		z->c = e->stream;
		z->size = e->bytes;
		z->mtime = mtime;
		z->h = h;
		zip_error_init(&z->err);
		src = zip_source_function(za, concat_cb, z);
		if (!src)
			free(z);
	} else {
		src = zip_source_buffer(za, e->data, e->len, 0);
	}
	if (!src)
		return pex_error_set(PEX_ERROR, "zip: %s", zip_strerror(za));
	idx = zip_file_add(za, e->name, src, ZIP_FL_ENC_UTF_8);
	if (idx < 0) {
		zip_source_free(src);
		return pex_error_set(PEX_ERROR, "zip: %s", zip_strerror(za));
	}
	if (zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_DEFLATE,
				     (zip_uint32_t)level) ||
	    zip_file_set_mtime(za, (zip_uint64_t)idx, mtime, 0))
		return pex_error_set(PEX_ERROR, "zip: %s", zip_strerror(za));
	return 0;
}

/*
 * Compress a stream entry into a one-entry archive of its own, so that
 * the JSON and the XML can be compressed at the same time on two cores;
 * the final zip then copies the compressed bytes (zip_source_zip).
 * Hashes the data on the way when h is not NULL.
 */
static int pack_stream(struct entry *e, const char *path, time_t mtime,
		       int level, pex_sha256 *h)
{
	zip_t *za;
	int zerr, rc;

	za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
	if (!za)
		return pex_error_set(PEX_EIO, "cannot create %s", path);
	rc = add_entry(za, e, mtime, level, h);
	if (rc) {
		zip_discard(za);
		return rc;
	}
	if (zip_close(za)) {
		rc = pex_error_set(PEX_EIO, "cannot write %s: %s", path,
				   zip_strerror(za));
		zip_discard(za);
		return rc;
	}
	e->packed = zip_open(path, ZIP_RDONLY, &zerr);
	if (!e->packed)
		return pex_error_set(PEX_EIO, "cannot reopen %s", path);
	return 0;
}

struct prep {
	struct entry *e;
	int xsd;       /* validate against the bundle XSD first */
	char *path;    /* where to pack it */
	time_t mtime;
	int level;
	int rc;
	char msg[4096];
};

static void *prepare_stream(void *arg)
{
	struct prep *p = arg;
	pex_sha256 *h = NULL;
	int rc = 0;

	if (p->xsd) {
		/* one pass validates and hashes, a second compresses */
		struct scan sc = { 0 };

		sc.e = p->e;
		sc.xsd = 1;
		scan_stream(&sc);
		rc = sc.rc;
		if (rc)
			snprintf(p->msg, sizeof(p->msg), "%s", sc.msg);
		if (!rc)
			rc = pack_stream(p->e, p->path, p->mtime, p->level,
					 NULL);
	} else {
		rc = pex_sha256_new(&h);
		if (!rc)
			rc = pack_stream(p->e, p->path, p->mtime, p->level, h);
		if (!rc)
			rc = pex_sha256_final(h, p->e->sha);
		pex_sha256_free(h);
	}
	if (rc && !p->msg[0])
		snprintf(p->msg, sizeof(p->msg), "%s", pex_error_last());
	p->rc = rc;
	return NULL;
}

static char *make_readme(const json_t *env, struct entry *ents, size_t n)
{
	struct pex_buf r = PEX_BUF_INIT(1u << 20);
	const json_t *srcs = json_object_get(env, "sources");
	const json_t *s;
	size_t i;

	pex_buf_printf(&r,
		"This archive holds the personal data that %s keeps about you,\n"
		"exported on %s in answer to request %s.\n\n",
		json_string_value(json_object_get(json_object_get(env,
				  "controller"), "name")),
		json_string_value(json_object_get(env, "generated_at")),
		json_is_string(json_object_get(env, "request_id")) ?
		json_string_value(json_object_get(env, "request_id")) :
		"(none given)");
	pex_buf_printf(&r, "%s\n\n", json_is_true(json_object_get(env,
		       "complete")) ?
		"The export is complete: every configured source was read." :
		"THE EXPORT IS NOT COMPLETE: at least one source could not "
		"be read.\nmanifest.json names each one and the reason.");
	pex_buf_printf(&r, "Files\n"
		"  manifest.json     what is inside: every file with its size "
		"and SHA-256,\n"
		"                    every source with its status and record "
		"count\n"
		"  data/bundle.json  all your data in one JSON document\n"
		"  data/bundle.xml   the same data as XML\n"
		"  schemas/          JSON Schema (draft-07) and XSD files that "
		"describe\n"
		"                    the documents, so any program can check "
		"them\n\n");
	pex_buf_printf(&r, "Sources\n");
	json_array_foreach(srcs, i, s) {
		pex_buf_printf(&r, "  %-16s %-8s %6" JSON_INTEGER_FORMAT
			       " records  (%s)\n",
			       json_string_value(json_object_get(s, "id")),
			       json_string_value(json_object_get(s, "status")),
			       json_integer_value(json_object_get(s,
								  "records")),
			       json_string_value(json_object_get(s,
								 "category")));
	}
	pex_buf_printf(&r, "\nChecking the files\n"
		"  sha256sum each file and compare with manifest.json, or run\n"
		"  `portex verify THIS.zip`. Validate data/bundle.json with\n"
		"  schemas/v1/bundle.schema.json and data/bundle.xml with\n"
		"  schemas/v1/bundle.xsd.\n\n");
	for (i = 0; i < n; i++)
		if (ents[i].stream)
			pex_buf_printf(&r, "  %s  %s\n", ents[i].sha,
				       ents[i].name);
	return pex_buf_detach(&r);
}

static json_t *make_manifest(const json_t *env, struct entry *ents,
			     size_t n)
{
	json_t *m = json_object(), *files = json_array();
	static const char *const copy[] = {
		"bundle_id", "request_id", "generated_at", "engine",
		"complete", "subject", "sources", "warnings", NULL
	};
	size_t i;

	json_object_set_new(m, "schema",
			    json_string("urn:portex:manifest:1"));
	for (i = 0; copy[i]; i++) {
		json_t *v = json_object_get(env, copy[i]);

		if (v)
			json_object_set(m, copy[i], v);
	}
	for (i = 0; i < n; i++) {
		json_t *f = json_pack("{s:s, s:I, s:s, s:s}",
				      "path", ents[i].name,
				      "bytes", (json_int_t)ents[i].bytes,
				      "sha256", ents[i].sha,
				      "media_type", ents[i].media);

		if (ents[i].schema)
			json_object_set_new(f, "schema",
					    json_string(ents[i].schema));
		json_array_append_new(files, f);
	}
	json_object_set_new(m, "files", files);
	return m;
}

static int validate_doc(pex_schema_registry *reg, const char *id,
			const json_t *doc, const char *what)
{
	struct first_error fe;
	pex_schema *s = NULL;
	int rc = pex_schema_compile_uri(&s, reg, id);

	if (rc)
		return rc;
	pex_buf_init(&fe.msg, 4096);
	rc = pex_schema_validate(s, doc, PEX_SCHEMA_FIRST_ERROR, record_error,
				 &fe);
	if (rc == 1)
		rc = pex_error_set(PEX_EINVALID, "%s does not meet its schema:"
				   " %s", what, fe.msg.data);
	pex_buf_free(&fe.msg);
	pex_schema_free(s);
	return rc;
}

static int sync_and_rename(const char *tmp, const char *out)
{
	char *d = strdup(out);
	int fd, rc = 0;

	fd = open(tmp, O_RDONLY);
	if (fd < 0 || fsync(fd))
		rc = pex_error_set(PEX_EIO, "cannot sync %s: %s", tmp,
				   strerror(errno));
	if (fd >= 0)
		close(fd);
	if (!rc && rename(tmp, out))
		rc = pex_error_set(PEX_EIO, "cannot move the bundle to %s: %s",
				   out, strerror(errno));
	if (!rc && d) {
		fd = open(dirname(d), O_RDONLY | O_DIRECTORY);
		if (fd >= 0) {
			fsync(fd); /* make the rename itself durable */
			close(fd);
		}
	}
	free(d);
	return rc;
}

int pex_bundle_seal(pex_bundle *b, const json_t *envelope)
{
	struct pex_concat jc = { 0 }, xc = { 0 };
	struct entry ents[64];
	size_t n = 0, i, nschemas = 0;
	const struct pex_schema_file *sf;
	struct prep pj = { 0 }, px = { 0 };
	char *names[64] = { 0 };
	pthread_t thr;
	int threaded = 0, rc;
	char *readme = NULL, *manifest_text = NULL;
	json_t *manifest = NULL, *check = NULL;
	time_t mtime = time(NULL);
	zip_t *za = NULL;
	int zerr;

	memset(ents, 0, sizeof(ents));
	rc = flush_sections(b);
	if (rc)
		goto cleanup;
	{
		json_t *g = json_object_get(envelope, "generated_at");

		if (json_is_string(g)) {
			struct tm tm = { 0 };

			if (strptime(json_string_value(g),
				     "%Y-%m-%dT%H:%M:%SZ", &tm))
				mtime = timegm(&tm);
		}
	}
	/* the envelope with empty collections must meet the bundle schema */
	check = json_deep_copy(envelope);
	json_object_set_new(check, "contacts", json_array());
	json_object_set_new(check, "tickets", json_array());
	json_object_set_new(check, "usage", json_pack("{s:[], s:[]}",
		"events", "sessions"));
	json_object_set_new(check, "technical", json_pack("{s:[], s:[]}",
		"devices", "ip_addresses"));
	rc = validate_doc(b->reg, "urn:portex:schema:1:bundle", check,
			  "data/bundle.json");
	if (rc)
		goto cleanup;

	rc = build_json(b, envelope, &jc);
	if (!rc && b->opts.xml)
		rc = build_xml(b, envelope, &xc);
	if (rc)
		goto cleanup;
	ents[n++] = (struct entry){ .name = "data/bundle.json",
				    .media = "application/json",
				    .schema = "schemas/v1/bundle.schema.json",
				    .stream = &jc };
	if (b->opts.xml)
		ents[n++] = (struct entry){ .name = "data/bundle.xml",
					    .media = "application/xml",
					    .schema = "schemas/" PEX_BUNDLE_XSD,
					    .stream = &xc };
	for (i = 0; i < n; i++) {
		ents[i].bytes = pex_concat_size(ents[i].stream);
		if (ents[i].bytes < 0) {
			rc = (int)ents[i].bytes;
			goto cleanup;
		}
	}
	/* The JSON is hashed and compressed here while another thread
	 * validates, hashes and compresses the XML. */
	pj.e = &ents[0];
	pj.path = join(b->workdir, "json.zip");
	pj.mtime = px.mtime = mtime;
	pj.level = px.level = b->opts.compression;
	if (b->opts.xml) {
		px.e = &ents[1];
		px.xsd = 1;
		px.path = join(b->workdir, "xml.zip");
		threaded = !pthread_create(&thr, NULL, prepare_stream, &px);
		if (!threaded)
			prepare_stream(&px);
	}
	prepare_stream(&pj);
	if (threaded)
		pthread_join(thr, NULL);
	if (pj.rc || px.rc) {
		rc = pex_error_set(pj.rc ? pj.rc : px.rc, "%s",
				   pj.rc ? pj.msg : px.msg);
		goto cleanup;
	}
	for (sf = pex_schema_files; sf->name; sf++) {
		size_t len = strlen(sf->name);

		if (n + 2 >= sizeof(ents) / sizeof(ents[0])) {
			rc = pex_error_set(PEX_ELIMIT, "too many schemas");
			goto cleanup;
		}
		names[nschemas] = join("schemas", sf->name);
		if (!names[nschemas]) {
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
			goto cleanup;
		}
		ents[n] = (struct entry){ .name = names[nschemas++],
			.media = len > 4 && !strcmp(sf->name + len - 4, ".xsd")
				 ? "application/xml"
				 : "application/schema+json",
			.data = sf->data, .len = sf->len,
			.bytes = (int64_t)sf->len };
		rc = pex_sha256_hex(sf->data, sf->len, ents[n].sha);
		if (rc)
			goto cleanup;
		n++;
	}
	readme = make_readme(envelope, ents, n);
	if (!readme) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	memmove(&ents[1], &ents[0], n * sizeof(ents[0]));
	ents[0] = (struct entry){ .name = "README.txt",
				  .media = "text/plain; charset=utf-8",
				  .data = readme, .len = strlen(readme),
				  .bytes = (int64_t)strlen(readme) };
	rc = pex_sha256_hex(readme, strlen(readme), ents[0].sha);
	n++;
	if (rc)
		goto cleanup;
	manifest = make_manifest(envelope, ents, n);
	rc = validate_doc(b->reg, "urn:portex:schema:1:manifest", manifest,
			  "manifest.json");
	if (rc)
		goto cleanup;
	manifest_text = json_dumps(manifest, JSON_INDENT(2));
	if (!manifest_text) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}

	unlink(b->tmp_path);
	za = zip_open(b->tmp_path, ZIP_CREATE | ZIP_EXCL, &zerr);
	if (!za) {
		zip_error_t ze;

		zip_error_init_with_code(&ze, zerr);
		rc = pex_error_set(PEX_EIO, "cannot create %s: %s",
				   b->tmp_path, zip_error_strerror(&ze));
		zip_error_fini(&ze);
		goto cleanup;
	}
	{
		struct entry me = { .name = "manifest.json",
				    .media = "application/json",
				    .data = manifest_text,
				    .len = strlen(manifest_text) };

		rc = add_entry(za, &ents[0], mtime, b->opts.compression,
			       NULL);
		if (!rc)
			rc = add_entry(za, &me, mtime, b->opts.compression,
				       NULL);
	}
	for (i = 1; !rc && i < n; i++)
		rc = add_entry(za, &ents[i], mtime, b->opts.compression,
			       NULL);
	if (rc)
		goto cleanup;
	if (zip_close(za)) {
		rc = pex_error_set(PEX_EIO, "cannot write %s: %s",
				   b->out_path, zip_strerror(za));
		goto cleanup;
	}
	za = NULL;
	rc = sync_and_rename(b->tmp_path, b->out_path);
	if (!rc)
		b->sealed = 1;
cleanup:
	if (za)
		zip_discard(za);
	if (rc)
		unlink(b->tmp_path);
	for (i = 0; i < n; i++)
		if (ents[i].packed)
			zip_discard(ents[i].packed);
	if (pj.path)
		unlink(pj.path);
	if (px.path)
		unlink(px.path);
	free(pj.path);
	free(px.path);
	for (i = 0; i < nschemas; i++)
		free(names[i]);
	pex_concat_free(&jc);
	pex_concat_free(&xc);
	json_decref(check);
	json_decref(manifest);
	free(manifest_text);
	free(readme);
	return rc;
}

void pex_bundle_free(pex_bundle *b)
{
	int k;

	if (!b)
		return;
	for (k = 0; k < PEX_REC__COUNT; k++) {
		struct section *s = &b->sec[k];

		if (s->json)
			fclose(s->json);
		if (s->xml)
			fclose(s->xml);
		if (s->json_path)
			unlink(s->json_path);
		if (s->xml_path)
			unlink(s->xml_path);
		free(s->json_path);
		free(s->xml_path);
		pex_schema_free(b->schema[k]);
	}
	if (b->workdir)
		rmdir(b->workdir);
	if (!b->sealed && b->tmp_path)
		unlink(b->tmp_path);
	pex_schema_registry_free(b->reg);
	pex_buf_free(&b->jb);
	pex_buf_free(&b->xb);
	free(b->workdir);
	free(b->tmp_path);
	free(b->out_path);
	free(b);
}
