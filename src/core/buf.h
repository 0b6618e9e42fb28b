/*
 * A growable byte buffer with a mandatory maximum size, for anything whose
 * length comes from outside (a field, a line, a response). Appending past
 * the maximum fails with PEX_ELIMIT instead of growing without bound.
 * The buffer owns its memory; pex_buf_free() releases it (NULL-safe).
 * data is always NUL-terminated after a successful append.
 */
#ifndef PEX_CORE_BUF_H
#define PEX_CORE_BUF_H

#include <stddef.h>
#include <string.h>

struct pex_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

#define PEX_BUF_INIT(maxsize) { NULL, 0, 0, (maxsize) }

void pex_buf_init(struct pex_buf *b, size_t max);
/* The out-of-line part of pex_buf_append(): growing the buffer. */
int pex_buf_append_grow(struct pex_buf *b, const void *data, size_t len);

/* Append len bytes. Inline for the common case, room already there
 * (cap <= max + 1, so this never passes the limit): the record writers
 * append a few bytes at a time, a call each. */
static inline int pex_buf_append(struct pex_buf *b, const void *data,
				 size_t len)
{
	if (len < b->cap - b->len) {
		memcpy(b->data + b->len, data, len);
		b->len += len;
		b->data[b->len] = '\0';
		return 0;
	}
	return pex_buf_append_grow(b, data, len);
}

static inline int pex_buf_putc(struct pex_buf *b, char c)
{
	return pex_buf_append(b, &c, 1);
}

int pex_buf_printf(struct pex_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void pex_buf_reset(struct pex_buf *b);
void pex_buf_free(struct pex_buf *b);
/* Hand the data to the caller (who frees it) and reset the buffer. */
char *pex_buf_detach(struct pex_buf *b);

#endif
