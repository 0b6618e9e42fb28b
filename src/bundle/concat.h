/*
 * A byte stream made of pieces: memory blocks and files, read one after
 * the other. The bundle's data files are assembled this way from the
 * envelope and the per-kind section files, so no document is ever copied
 * whole in memory or on disk. The stream owns its memory pieces; files
 * are borrowed by path.
 */
#ifndef PEX_BUNDLE_CONCAT_H
#define PEX_BUNDLE_CONCAT_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct pex_concat_piece {
	char *data;  /* memory piece, or NULL */
	size_t len;
	int borrowed; /* data is not the stream's to free */
	char *path;  /* file piece (owned copy of the path), or NULL */
};

struct pex_concat {
	struct pex_concat_piece *pieces;
	size_t count;
	/* read state */
	size_t cur;
	size_t off;
	FILE *f;
	int err;
};

int pex_concat_add_mem(struct pex_concat *c, const char *data, size_t len);
/* Takes ownership of data (malloc'd). */
int pex_concat_add_owned(struct pex_concat *c, char *data, size_t len);
int pex_concat_add_file(struct pex_concat *c, const char *path);
/* Memory that outlives the stream; not copied, not freed. */
int pex_concat_add_borrowed(struct pex_concat *c, const char *data,
			    size_t len);
/* Total size in bytes; negative on a stat error. */
int64_t pex_concat_size(const struct pex_concat *c);
void pex_concat_rewind(struct pex_concat *c);
/* Like fread: bytes read, 0 at the end; -1 on error (pex_error_last). */
ssize_t pex_concat_read(struct pex_concat *c, void *buf, size_t n);
void pex_concat_free(struct pex_concat *c);

#endif
