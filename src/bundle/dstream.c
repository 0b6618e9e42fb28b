/* Joinable deflate segments; see dstream.h. */
#include "bundle/dstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "portex/error.h"

#define CHUNK (256u << 10)

/*
 * zlib's default state (a 32 KiB window, memLevel 8) costs about 270 KB
 * to set up, some fifty microseconds; a bundle holds a dozen streams and
 * most of them are a few kilobytes. A stream sized to its input costs a
 * tenth of that and compresses as well: the window need not be larger
 * than the data. The output is plain deflate whatever the window.
 */
int pex_deflate_init_for(z_stream *zs, int level, size_t len)
{
	int wbits = 9, mem;

	while (wbits < 15 && ((size_t)1 << wbits) < len)
		wbits++;
	mem = wbits - 7; /* 8 at the full window, as zlib's default */
	if (mem < 1)
		mem = 1;
	memset(zs, 0, sizeof(*zs));
	/* negative: raw deflate, no zlib header; zip stores raw deflate */
	if (deflateInit2(zs, level, Z_DEFLATED, -wbits, mem,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return pex_error_set(PEX_ENOMEM, "cannot start deflate");
	return 0;
}

int pex_dstream_init(struct pex_dstream *d, FILE *out, int level)
{
	memset(d, 0, sizeof(*d));
	/* the zlib state is made by the first write, sized to it */
	d->level = level;
	d->out = out;
	d->crc = (uint32_t)crc32(0L, Z_NULL, 0);
	return 0;
}

static int start(struct pex_dstream *d, size_t len)
{
	int rc;

	if (d->open || d->ended)
		return 0;
	rc = pex_deflate_init_for(&d->zs, d->level, len);
	if (!rc)
		d->open = 1;
	return rc;
}

static int pump(struct pex_dstream *d, int flush)
{
	unsigned char buf[64 << 10];
	int zrc;

	do {
		size_t n;

		d->zs.next_out = buf;
		d->zs.avail_out = sizeof(buf);
		zrc = deflate(&d->zs, flush);
		if (zrc == Z_STREAM_ERROR)
			return pex_error_set(PEX_ERROR, "deflate failed");
		n = sizeof(buf) - d->zs.avail_out;
		if (n && fwrite(buf, 1, n, d->out) != n)
			return pex_error_set(PEX_EIO, "cannot write: %s",
					     strerror(errno));
		d->clen += n;
	} while (d->zs.avail_out == 0 ||
		 (flush == Z_FINISH && zrc != Z_STREAM_END));
	return 0;
}

int pex_dstream_write(struct pex_dstream *d, const void *data, size_t len)
{
	const unsigned char *p = data;

	int rc0 = start(d, len);

	if (rc0)
		return rc0;
	d->crc = (uint32_t)crc32_z(d->crc, p, len);
	d->ulen += len;
	while (len) {
		size_t n = len > CHUNK ? CHUNK : len;
		int rc;

		d->zs.next_in = (unsigned char *)p;
		d->zs.avail_in = (uInt)n;
		rc = pump(d, Z_NO_FLUSH);
		if (rc)
			return rc;
		p += n;
		len -= n;
	}
	return 0;
}

int pex_dstream_end(struct pex_dstream *d, int last)
{
	int rc = start(d, 0);

	if (rc)
		return rc;
	d->zs.next_in = NULL;
	d->zs.avail_in = 0;
	rc = pump(d, last ? Z_FINISH : Z_SYNC_FLUSH);
	pex_dstream_free(d);
	d->ended = 1;
	return rc;
}

void pex_dstream_free(struct pex_dstream *d)
{
	if (d && d->open) {
		deflateEnd(&d->zs);
		d->open = 0;
	}
}

int pex_deflate_with(z_stream *zs, const void *data, size_t len, int last,
		     unsigned char **out, size_t *outlen, uint32_t *crc)
{
	size_t cap = deflateBound(zs, (uLong)len) + 16, used = 0;
	unsigned char *buf = malloc(cap);
	int zrc;

	*out = NULL;
	if (!buf)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	zs->next_in = (unsigned char *)data;
	zs->avail_in = (uInt)len;
	do {
		if (used == cap) {
			unsigned char *p = realloc(buf, cap * 2);

			if (!p) {
				free(buf);
				return pex_error_set(PEX_ENOMEM,
						     "out of memory");
			}
			buf = p;
			cap *= 2;
		}
		zs->next_out = buf + used;
		zs->avail_out = (uInt)(cap - used);
		zrc = deflate(zs, last ? Z_FINISH : Z_SYNC_FLUSH);
		if (zrc == Z_STREAM_ERROR) {
			free(buf);
			return pex_error_set(PEX_ERROR, "deflate failed");
		}
		used = cap - zs->avail_out;
	} while (zs->avail_out == 0 || (last && zrc != Z_STREAM_END));
	*out = buf;
	*outlen = used;
	*crc = (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), data, len);
	return 0;
}

int pex_deflate_segment(const void *data, size_t len, int level, int last,
			unsigned char **out, size_t *outlen, uint32_t *crc)
{
	z_stream zs;
	int rc = pex_deflate_init_for(&zs, level, len);

	if (rc)
		return rc;
	rc = pex_deflate_with(&zs, data, len, last, out, outlen, crc);
	deflateEnd(&zs);
	return rc;
}
