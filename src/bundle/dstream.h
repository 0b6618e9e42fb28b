/*
 * Deflate segments that can be joined: the bundle's data files are
 * compressed piece by piece (each section while its records are still
 * arriving, the envelope at the end) and the pieces are concatenated into
 * one deflate stream, as parallel gzip tools do. Every segment is a raw
 * deflate stream of its own, ended with a sync flush (byte-aligned, no
 * final block); the last segment of a file is ended with Z_FINISH. The
 * CRC-32 of the whole is combined from the segments' CRCs.
 *
 * A dstream owns its zlib state and writes compressed bytes to a FILE it
 * does not own.
 */
#ifndef PEX_BUNDLE_DSTREAM_H
#define PEX_BUNDLE_DSTREAM_H

#include <stdint.h>
#include <stdio.h>
#include <zlib.h>

struct pex_dstream {
	z_stream zs;
	int level;
	int open;       /* zs is set up (made by the first write) */
	int ended;
	FILE *out;
	uint32_t crc;
	uint64_t ulen; /* bytes in */
	uint64_t clen; /* bytes out */
};

int pex_dstream_init(struct pex_dstream *d, FILE *out, int level);
int pex_dstream_write(struct pex_dstream *d, const void *data, size_t len);
/* End the segment: sync flush (last == 0) or finish (last == 1). */
int pex_dstream_end(struct pex_dstream *d, int last);
void pex_dstream_free(struct pex_dstream *d);

/* Set up *zs for raw deflate of about len bytes: a window no larger
 * than the data needs (see dstream.c). */
int pex_deflate_init_for(z_stream *zs, int level, size_t len);

/* Compress one memory block as a complete segment into a new buffer
 * (*out, caller frees). */
int pex_deflate_segment(const void *data, size_t len, int level, int last,
			unsigned char **out, size_t *outlen, uint32_t *crc);

/* The same with a caller's raw-deflate state (fresh or just reset). */
int pex_deflate_with(z_stream *zs, const void *data, size_t len, int last,
		     unsigned char **out, size_t *outlen, uint32_t *crc);

#endif
