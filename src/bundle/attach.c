/*
 * Attachment files: streamed to the work folder, hashed on the way, and
 * joined to the zip at seal time; see pex_bundle_file_* in
 * include/portex/bundle.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle/internal.h"
#include "core/hash.h"
#include "core/text.h"
#include "portex/bundle.h"
#include "portex/error.h"

#define PEX_ATT_NAME_MAX 120  /* bytes of the safe name */
#define PEX_ATT_GROUP_MAX 100

struct pex_bundle_file {
	struct pex_att_store *store;
	FILE *f;
	char *file;
	char *zip_name;
	char *group;  /* safe folder name */
	char *safe;   /* safe file name */
	char *name;   /* as the source gave it (clean UTF-8) */
	char *media;
	unsigned long long max;
	long long bytes;
	pex_sha256 *h;
	int over;
};

int pex_safe_name(const char *in, size_t max, struct pex_buf *out)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t len = strlen(in), i = 0, n;
	unsigned cp;
	int rc = 0;

	pex_buf_reset(out);
	while (i < len && !rc) {
		n = pex_utf8_decode(p + i, len - i, &cp);
		if (!n) { /* not UTF-8: one byte becomes '_' */
			rc = pex_buf_putc(out, '_');
			i++;
			continue;
		}
		if (out->len + n > max)
			break;
		if (cp < 0x20 || cp == 0x7f || strchr("/\\:*?\"<>|", (int)cp)
		    || (cp == '.' && (out->len == 0 ||
				      out->data[out->len - 1] == '.')))
			rc = pex_buf_putc(out, '_');
		else
			rc = pex_buf_append(out, in + i, n);
		i += n;
	}
	/* Over the limit: keep the head and the extension, which says what
	 * kind of file it is. */
	if (!rc && i < len) {
		const char *dot = strrchr(in, '.');
		size_t ext = dot ? strlen(dot) : 0, cut;

		if (ext > 1 && ext <= 16 && !strpbrk(dot, "/\\:*?\"<>|") &&
		    pex_text_is_clean(dot, ext) && max > ext + 8) {
			cut = max - ext;
			if (out->len > cut)
				out->len = cut;
			while (out->len &&
			       ((unsigned char)out->data[out->len] & 0xC0) ==
			       0x80)
				out->len--;
			rc = pex_buf_append(out, dot, ext);
		}
	}
	/* Windows drops trailing dots and spaces: make them visible */
	while (!rc && out->len && (out->data[out->len - 1] == '.' ||
				   out->data[out->len - 1] == ' '))
		out->data[out->len - 1] = '_';
	if (!rc && !out->len)
		rc = pex_buf_append(out, "file", 4);
	return rc;
}

void pex_att_init(struct pex_att_store *s,
		  const char *(*workdir)(void *data), void *workdir_data)
{
	memset(s, 0, sizeof(*s));
	s->workdir = workdir;
	s->workdir_data = workdir_data;
	s->per_group = json_object();
}

static void entry_free(struct pex_att_entry *e, int unlink_file)
{
	if (unlink_file && e->file)
		unlink(e->file);
	free(e->zip_name);
	free(e->file);
	free(e->media);
}

void pex_att_commit(struct pex_att_store *s)
{
	s->committed = s->count;
}

void pex_att_drop_pending(struct pex_att_store *s)
{
	while (s->count > s->committed)
		entry_free(&s->items[--s->count], 1);
}

void pex_att_free(struct pex_att_store *s)
{
	size_t i;

	for (i = 0; i < s->count; i++)
		entry_free(&s->items[i], 1);
	free(s->items);
	json_decref(s->per_group);
	memset(s, 0, sizeof(*s));
}

static char *clean_copy(const char *s)
{
	struct pex_buf b = PEX_BUF_INIT(64 * 1024);

	if (pex_text_sanitize(s, strlen(s), &b) < 0) {
		pex_buf_free(&b);
		return NULL;
	}
	return pex_buf_detach(&b);
}

int pex_att_begin(struct pex_att_store *s, const char *group,
		  const char *name, const char *media,
		  unsigned long long max, pex_bundle_file **out)
{
	struct pex_buf g = PEX_BUF_INIT(4 * PEX_ATT_GROUP_MAX);
	struct pex_buf n = PEX_BUF_INIT(4 * PEX_ATT_NAME_MAX);
	struct pex_buf z = PEX_BUF_INIT(8192);
	pex_bundle_file *f;
	int rc;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	f->store = s;
	f->max = max;
	f->name = clean_copy(name ? name : "");
	f->media = clean_copy(media && *media ? media
				      : "application/octet-stream");
	rc = f->name && f->media ? 0 : pex_error_set(PEX_ENOMEM,
						    "out of memory");
	if (!rc)
		rc = pex_safe_name(group, PEX_ATT_GROUP_MAX, &g);
	if (!rc)
		rc = pex_safe_name(f->name, PEX_ATT_NAME_MAX, &n);
	if (!rc) {
		/* numbered when it is kept (pex_bundle_file_end), so
		 * withheld files leave no gaps */
		f->group = pex_buf_detach(&g);
		f->safe = pex_buf_detach(&n);
		rc = f->group && f->safe ? 0 : pex_error_set(PEX_ENOMEM,
							     "out of memory");
	}
	if (!rc) {
		const char *dir = s->workdir(s->workdir_data);

		if (!dir)
			rc = PEX_EIO;
		else
			pex_buf_printf(&z, "%s/att-%llu", dir, ++s->seq);
		f->file = rc ? NULL : pex_buf_detach(&z);
		f->f = f->file ? fopen(f->file, "wb") : NULL;
		if (!rc && !f->f)
			rc = pex_error_set(PEX_EIO, "cannot write in %s: %s",
					   dir, strerror(errno));
	}
	if (!rc)
		rc = pex_sha256_new(&f->h);
	pex_buf_free(&g);
	pex_buf_free(&n);
	pex_buf_free(&z);
	if (rc) {
		json_t *ignored = NULL;

		pex_bundle_file_withhold(f, "", &ignored);
		json_decref(ignored);
		return rc;
	}
	*out = f;
	return 0;
}

int pex_bundle_file_write(pex_bundle_file *f, const void *data, size_t len)
{
	if (f->over || f->bytes + (long long)len > (long long)f->max) {
		f->over = 1;
		return pex_error_set(PEX_ELIMIT, "%s: larger than the limit "
				     "of %llu bytes", f->name, f->max);
	}
	if (fwrite(data, 1, len, f->f) != len)
		return pex_error_set(PEX_EIO, "cannot write %s: %s", f->file,
				     strerror(errno));
	f->bytes += (long long)len;
	return pex_sha256_update(f->h, data, len);
}

static void file_free(pex_bundle_file *f, int unlink_file)
{
	if (f->f)
		fclose(f->f);
	if (unlink_file && f->file)
		unlink(f->file);
	pex_sha256_free(f->h);
	free(f->file);
	free(f->zip_name);
	free(f->group);
	free(f->safe);
	free(f->name);
	free(f->media);
	free(f);
}

void pex_bundle_file_withhold(pex_bundle_file *f, const char *reason,
			      json_t **att)
{
	*att = json_pack("{s:s, s:s}", "name", f->name ? f->name : "",
			 "withheld", reason);
	file_free(f, 1);
}

int pex_bundle_file_end(pex_bundle_file *f, json_t **att)
{
	struct pex_att_store *s = f->store;
	struct pex_att_entry *e, *items;
	char sha[65];
	int rc;

	*att = NULL;
	if (f->over) {
		file_free(f, 1);
		return pex_error_set(PEX_EUSAGE, "an attachment over its "
				     "limit must be withheld");
	}
	rc = pex_sha256_final(f->h, sha);
	if (!rc) {
		struct pex_buf z = PEX_BUF_INIT(8192);
		json_t *cnt = json_object_get(s->per_group, f->group);
		long long k = cnt ? json_integer_value(cnt) + 1 : 1;

		json_object_set_new(s->per_group, f->group, json_integer(k));
		rc = pex_buf_printf(&z, "attachments/%s/%lld-%s", f->group, k,
				    f->safe);
		f->zip_name = rc ? NULL : pex_buf_detach(&z);
		pex_buf_free(&z);
	}
	if (!rc && fclose(f->f))
		rc = pex_error_set(PEX_EIO, "cannot write %s", f->file);
	f->f = NULL;
	items = rc ? NULL : realloc(s->items, (s->count + 1) *
				    sizeof(*items));
	if (!rc && !items)
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
	if (rc) {
		file_free(f, 1);
		return rc;
	}
	s->items = items;
	e = &items[s->count++];
	e->zip_name = f->zip_name;
	e->file = f->file;
	e->media = f->media;
	e->bytes = f->bytes;
	memcpy(e->sha, sha, sizeof(sha));
	*att = json_pack("{s:s, s:s, s:I, s:s, s:s}", "name", f->name,
			 "path", e->zip_name, "bytes", (json_int_t)f->bytes,
			 "media_type", f->media, "sha256", sha);
	f->zip_name = f->file = f->media = NULL;
	file_free(f, 0);
	return *att ? 0 : pex_error_set(PEX_ENOMEM, "out of memory");
}
