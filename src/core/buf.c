/* Bounded growable buffer; see buf.h. */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portex/error.h"

void pex_buf_init(struct pex_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

/* Make room for add more bytes (and the NUL). b->len never exceeds
 * b->max, so the test below cannot wrap around as b->len + add could. */
static int grow(struct pex_buf *b, size_t add)
{
	size_t cap, need;
	char *p;

	if (add > b->max - b->len)
		return pex_error_set(PEX_ELIMIT,
				     "value longer than the limit of %zu bytes",
				     b->max);
	need = b->len + add;
	if (need + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need + 1 && cap <= b->max)
		cap *= 2;
	if (cap > b->max + 1 || cap < need + 1)
		cap = b->max + 1;
	p = realloc(b->data, cap);
	if (!p)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	b->data = p;
	b->cap = cap;
	return 0;
}

int pex_buf_append_grow(struct pex_buf *b, const void *data, size_t len)
{
	int rc = grow(b, len);

	if (rc)
		return rc;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int pex_buf_printf(struct pex_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return pex_error_set(PEX_ERROR, "format error");
	rc = grow(b, (size_t)n);
	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void pex_buf_reset(struct pex_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void pex_buf_free(struct pex_buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *pex_buf_detach(struct pex_buf *b)
{
	char *p = b->data;

	if (!p)
		p = calloc(1, 1);
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
