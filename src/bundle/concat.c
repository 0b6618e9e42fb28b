/* Piece-wise byte stream; see concat.h. */
#include "bundle/concat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "portex/error.h"

static struct pex_concat_piece *grow(struct pex_concat *c)
{
	struct pex_concat_piece *p;

	p = realloc(c->pieces, (c->count + 1) * sizeof(*p));
	if (!p)
		return NULL;
	c->pieces = p;
	memset(&p[c->count], 0, sizeof(*p));
	return &p[c->count++];
}

int pex_concat_add_owned(struct pex_concat *c, char *data, size_t len)
{
	struct pex_concat_piece *p = grow(c);

	if (!p) {
		free(data);
		return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	p->data = data;
	p->len = len;
	return 0;
}

int pex_concat_add_mem(struct pex_concat *c, const char *data, size_t len)
{
	char *copy = malloc(len ? len : 1);

	if (!copy)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	if (len)
		memcpy(copy, data, len);
	return pex_concat_add_owned(c, copy, len);
}

int pex_concat_add_borrowed(struct pex_concat *c, const char *data,
			    size_t len)
{
	struct pex_concat_piece *p = grow(c);

	if (!p)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	p->data = (char *)data;
	p->len = len;
	p->borrowed = 1;
	return 0;
}

int pex_concat_add_file(struct pex_concat *c, const char *path)
{
	struct pex_concat_piece *p = grow(c);

	if (!p)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	p->path = strdup(path);
	if (!p->path) {
		c->count--;
		return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	return 0;
}

int64_t pex_concat_size(const struct pex_concat *c)
{
	int64_t total = 0;
	size_t i;

	for (i = 0; i < c->count; i++) {
		struct stat st;

		if (!c->pieces[i].path) {
			total += (int64_t)c->pieces[i].len;
			continue;
		}
		if (stat(c->pieces[i].path, &st))
			return pex_error_set(PEX_EIO, "cannot stat %s: %s",
					     c->pieces[i].path,
					     strerror(errno));
		total += st.st_size;
	}
	return total;
}

void pex_concat_rewind(struct pex_concat *c)
{
	if (c->f)
		fclose(c->f);
	c->f = NULL;
	c->cur = 0;
	c->off = 0;
	c->err = 0;
}

ssize_t pex_concat_read(struct pex_concat *c, void *buf, size_t n)
{
	size_t done = 0;

	while (done < n && c->cur < c->count) {
		struct pex_concat_piece *p = &c->pieces[c->cur];
		size_t k;

		if (!p->path) {
			k = p->len - c->off;
			if (k > n - done)
				k = n - done;
			memcpy((char *)buf + done, p->data + c->off, k);
			c->off += k;
			done += k;
			if (c->off == p->len) {
				c->cur++;
				c->off = 0;
			}
			continue;
		}
		if (!c->f) {
			c->f = fopen(p->path, "rb");
			if (!c->f) {
				c->err = 1;
				return pex_error_set(PEX_EIO,
						     "cannot open %s: %s",
						     p->path, strerror(errno));
			}
		}
		k = fread((char *)buf + done, 1, n - done, c->f);
		done += k;
		if (k == 0) {
			if (ferror(c->f)) {
				c->err = 1;
				return pex_error_set(PEX_EIO,
						     "cannot read %s", p->path);
			}
			fclose(c->f);
			c->f = NULL;
			c->cur++;
		}
	}
	return (ssize_t)done;
}

void pex_concat_free(struct pex_concat *c)
{
	size_t i;

	if (!c)
		return;
	if (c->f)
		fclose(c->f);
	for (i = 0; i < c->count; i++) {
		if (!c->pieces[i].borrowed)
			free(c->pieces[i].data);
		free(c->pieces[i].path);
	}
	free(c->pieces);
	memset(c, 0, sizeof(*c));
}
