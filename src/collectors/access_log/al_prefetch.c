/*
 * Read-ahead for the log scanner; see al_prefetch.h.
 *
 * A ring of AL_PF_NBUF blocks. The reader thread fills block w % NBUF
 * while the scanner works on block r % NBUF (r < w); a block is the
 * scanner's from the read callback that returns it until the next call,
 * as libarchive's read callback contract has it, so the reader may be at
 * most NBUF - 1 blocks ahead. Counters only grow; the mutex guards them
 * and the condition variables say when one side may go on.
 *
 * The thread starts at the second block: the first (AL_PF_FIRST at
 * most) is read on the caller's, for libarchive to tell what the file
 * is, and a plain file big enough to be searched in parts is then read
 * by the parts instead (pex_al_scan), so a reader started at the open
 * would fill blocks nobody takes: 4 MiB read and thrown away, and a
 * thread to start and join, ahead of every search.
 */
#include "collectors/access_log/al_prefetch.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "portex/error.h"

#define AL_PF_NBUF 4
/* the first block, read on the caller's: enough for every format's bid */
#define AL_PF_FIRST (64u << 10)

static int force_direct; /* tests: the fallback without a thread */

void pex_al_prefetch_direct(int on)
{
	force_direct = on;
}

struct pex_al_prefetch {
	int fd;
	size_t block;
	off_t size;   /* at open */
	off_t got;    /* bytes read; at the end, less than size: it shrank */
	char *buf[AL_PF_NBUF];
	size_t len[AL_PF_NBUF];
	unsigned long long w, r; /* blocks filled; blocks handed out */
	int held;     /* the scanner still holds block r - 1 */
	int eof;      /* the reader got 0 from read() */
	int err;      /* errno of a failed read() */
	int stop;     /* the scanner is done: the reader quits */
	pthread_t thr;
	int started;
	int direct;   /* no thread could be had: read() in next() */
	int lazy;     /* the thread is started at the second block */
	pthread_mutex_t mu;
	pthread_cond_t filled, freed;
};

static void *reader(void *arg)
{
	struct pex_al_prefetch *p = arg;

	for (;;) {
		size_t k;
		ssize_t n;

		pthread_mutex_lock(&p->mu);
		/* the ring is full while NBUF blocks are unread or held */
		while (!p->stop &&
		       p->w - p->r + (unsigned)p->held >= AL_PF_NBUF)
			pthread_cond_wait(&p->freed, &p->mu);
		if (p->stop) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		k = (size_t)(p->w % AL_PF_NBUF);
		pthread_mutex_unlock(&p->mu);

		do
			n = read(p->fd, p->buf[k], p->block);
		while (n < 0 && errno == EINTR);

		pthread_mutex_lock(&p->mu);
		if (n < 0) {
			p->err = errno;
		} else if (n == 0) {
			p->eof = 1;
		} else {
			p->len[k] = (size_t)n;
			p->got += n;
			p->w++;
		}
		pthread_cond_signal(&p->filled);
		pthread_mutex_unlock(&p->mu);
		if (n <= 0)
			break;
	}
	return NULL;
}

int pex_al_prefetch_open(struct pex_al_prefetch **out, const char *path,
			 size_t block)
{
	struct pex_al_prefetch *p;
	int i, rc = 0;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	p->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (p->fd < 0) {
		rc = pex_error_set(PEX_EIO, "cannot open %s: %s", path,
				   strerror(errno));
		free(p);
		return rc;
	}
	/* the file is read once, front to back */
	posix_fadvise(p->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	{
		struct stat st;

		p->size = fstat(p->fd, &st) || !S_ISREG(st.st_mode) ? 0
								  : st.st_size;
	}
	p->block = block;
	for (i = 0; i < AL_PF_NBUF && !rc; i++) {
		p->buf[i] = malloc(block);
		if (!p->buf[i])
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->filled, NULL);
	pthread_cond_init(&p->freed, NULL);
	if (!rc) {
		p->direct = force_direct;
		p->lazy = !force_direct;
	}
	if (rc) {
		pex_al_prefetch_close(p);
		return rc;
	}
	*out = p;
	return 0;
}

/* The first block, on the caller's thread: handed out as the ring's
 * block 0, so the reader goes on from block 1. */
static ssize_t read_first(struct pex_al_prefetch *p, const void **buf)
{
	size_t want = p->block < AL_PF_FIRST ? p->block : AL_PF_FIRST;
	ssize_t n;

	do
		n = read(p->fd, p->buf[0], want);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		/* the end, or a failed read: no thread; the next calls
		 * read on the caller's (0 again at the end) */
		p->lazy = 0;
		p->direct = 1;
		if (n == 0)
			p->eof = 1;
		return n;
	}
	*buf = p->buf[0];
	p->len[0] = (size_t)n;
	p->got = n;
	p->w = p->r = 1;
	p->held = 1;
	return n;
}

/* The second block is asked for: start the reader. Without a thread
 * (the process is at its limit), read on the caller's: slower, never a
 * failed source. */
static void start_reader(struct pex_al_prefetch *p)
{
	p->lazy = 0;
	if (pthread_create(&p->thr, NULL, reader, p))
		p->direct = 1;
	else
		p->started = 1;
}

ssize_t pex_al_prefetch_next(struct pex_al_prefetch *p, const void **buf)
{
	ssize_t n;

	if (p->lazy) {
		if (!p->w)
			return read_first(p, buf);
		start_reader(p);
	}
	if (p->direct) {
		if (p->eof)
			return 0;
		do
			n = read(p->fd, p->buf[0], p->block);
		while (n < 0 && errno == EINTR);
		*buf = p->buf[0];
		if (n > 0)
			p->got += n;
		return n;
	}

	pthread_mutex_lock(&p->mu);
	if (p->held) { /* the block handed out last is free again */
		p->held = 0;
		pthread_cond_signal(&p->freed);
	}
	while (p->r == p->w && !p->eof && !p->err)
		pthread_cond_wait(&p->filled, &p->mu);
	if (p->r < p->w) {
		size_t k = (size_t)(p->r % AL_PF_NBUF);

		*buf = p->buf[k];
		n = (ssize_t)p->len[k];
		p->r++;
		p->held = 1;
	} else if (p->err) {
		errno = p->err;
		n = -1;
	} else {
		n = 0;
	}
	pthread_mutex_unlock(&p->mu);
	return n;
}

int pex_al_prefetch_shrunk(const struct pex_al_prefetch *p)
{
	int shrunk;

	pthread_mutex_lock((pthread_mutex_t *)&p->mu);
	shrunk = p->got < p->size;
	pthread_mutex_unlock((pthread_mutex_t *)&p->mu);
	return shrunk;
}

int pex_al_prefetch_fd(const struct pex_al_prefetch *p)
{
	return p->fd;
}

void pex_al_prefetch_close(struct pex_al_prefetch *p)
{
	int i;

	if (!p)
		return;
	if (p->started) {
		pthread_mutex_lock(&p->mu);
		p->stop = 1;
		pthread_cond_signal(&p->freed);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thr, NULL);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->filled);
	pthread_cond_destroy(&p->freed);
	if (p->fd >= 0)
		close(p->fd);
	for (i = 0; i < AL_PF_NBUF; i++)
		free(p->buf[i]);
	free(p);
}
