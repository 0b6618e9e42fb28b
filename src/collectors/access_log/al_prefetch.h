/*
 * Read-ahead for the log scanner: a thread of its own reads the next
 * blocks of a file while the scanner searches the current one, so the
 * copy out of the page cache (or the wait for the disk) and the search
 * overlap instead of taking turns. pex_al_scan() feeds the blocks to
 * libarchive through its read callback, for plain and compressed files
 * alike.
 *
 * Memory: four blocks of the size given. A block returned by
 * pex_al_prefetch_next() stays valid until the next call. When no thread
 * can be started, the blocks are read on the caller's thread instead.
 * pex_al_prefetch_direct() (tests) asks for that.
 */
#ifndef PEX_AL_PREFETCH_H
#define PEX_AL_PREFETCH_H

#include <stddef.h>
#include <sys/types.h>

struct pex_al_prefetch;

/* Open path. The first block is read on the caller's thread (64 KiB at
 * most); the reader thread starts when the second one is asked for. */
int pex_al_prefetch_open(struct pex_al_prefetch **out, const char *path,
			 size_t block);
/* The next block: its size, 0 at the end of the file, -1 with errno set
 * when reading failed. */
ssize_t pex_al_prefetch_next(struct pex_al_prefetch *p, const void **buf);
/* After the end (0 from pex_al_prefetch_next): whether fewer bytes were
 * read than the file held when it was opened, i.e. it was truncated
 * under the reader (a copytruncate rotation). */
int pex_al_prefetch_shrunk(const struct pex_al_prefetch *p);
/* The open file's descriptor (owned by p). */
int pex_al_prefetch_fd(const struct pex_al_prefetch *p);
/* Tests: the next opens read without a thread (1) or with one (0). */
void pex_al_prefetch_direct(int on);
/* Stop the reader (wherever it is) and free everything; NULL-safe. */
void pex_al_prefetch_close(struct pex_al_prefetch *p);

#endif
