/* Unit tests for the log scanner's read-ahead thread
 * (src/collectors/access_log/al_prefetch.c): every byte in order, at the
 * end 0, a failed read() as -1, and a stop in the middle that does not
 * wait for the rest of the file, and nothing read ahead before the
 * second block is asked for. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "collectors/access_log/al_prefetch.h"
#include "portex/error.h"

static char dir[] = "/tmp/pex-prefetch-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A file of n bytes whose byte i is a function of i. */
static char *make_file(const char *name, size_t n)
{
	static char path[256];
	FILE *f;
	size_t i;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	for (i = 0; i < n; i++)
		assert_int_not_equal(fputc((int)((i * 7 + i / 251) & 0xff), f),
				     EOF);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* Read all of path in blocks; check every byte; slow: sleep a little
 * per block so the reader runs ahead and waits for free blocks. */
static void read_all(const char *path, size_t size, size_t block, int slow)
{
	struct pex_al_prefetch *p = NULL;
	size_t got = 0, blocks = 0, i;
	const void *buf;
	ssize_t n;

	assert_int_equal(pex_al_prefetch_open(&p, path, block), 0);
	while ((n = pex_al_prefetch_next(p, &buf)) > 0) {
		const unsigned char *b = buf;

		assert_true((size_t)n <= block);
		for (i = 0; i < (size_t)n; i++)
			if (b[i] != (unsigned char)(((got + i) * 7 +
						     (got + i) / 251) & 0xff))
				fail_msg("byte %zu differs", got + i);
		got += (size_t)n;
		blocks++;
		if (slow) {
			struct timespec ts = {0, 200000};

			nanosleep(&ts, NULL);
		}
	}
	assert_int_equal(n, 0);
	assert_int_equal(got, size);
	/* at the end it stays at the end */
	assert_int_equal(pex_al_prefetch_next(p, &buf), 0);
	pex_al_prefetch_close(p);
	if (size)
		assert_true(blocks >= (size + block - 1) / block);
}

static void test_every_byte_in_order(void **state)
{
	static const size_t sizes[] = {1, 4095, 4096, 4097, 10 * 4096 + 123,
				       1u << 20};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *path = make_file("f", sizes[i]);

		read_all(path, sizes[i], 4096, 0);
		read_all(path, sizes[i], 4096, 1);
		read_all(path, sizes[i], 1000, 0);
	}
}

/* Without a thread (pthread_create failed): the same bytes. */
static void test_without_thread(void **state)
{
	char *path = make_file("direct", 10 * 4096 + 7);

	(void)state;
	pex_al_prefetch_direct(1);
	read_all(path, 10 * 4096 + 7, 4096, 0);
	read_all(make_file("direct0", 0), 0, 4096, 0);
	pex_al_prefetch_direct(0);
}

static void test_empty_file(void **state)
{
	(void)state;
	read_all(make_file("empty", 0), 0, 4096, 0);
}

/* Stopping after two blocks of a large file (the second starts the
 * reader, which then fills the ring and waits for a free block): the
 * reader must quit at once, not read on to the end. */
static void test_stop_early(void **state)
{
	struct pex_al_prefetch *p = NULL;
	char *path = make_file("big", 8u << 20);
	const void *buf;
	struct timespec a, b, nap = {0, 20000000};

	(void)state;
	assert_int_equal(pex_al_prefetch_open(&p, path, 4096), 0);
	assert_int_equal(pex_al_prefetch_next(p, &buf), 4096);
	assert_int_equal(pex_al_prefetch_next(p, &buf), 4096);
	nanosleep(&nap, NULL); /* the reader fills the ring and waits */
	clock_gettime(CLOCK_MONOTONIC, &a);
	pex_al_prefetch_close(p);
	clock_gettime(CLOCK_MONOTONIC, &b);
	/* generous: reading the 8 MiB in 4 KiB blocks would take longer on
	 * any machine than joining a waiting thread */
	assert_true((b.tv_sec - a.tv_sec) * 1000000000L +
		    (b.tv_nsec - a.tv_nsec) < 500000000L);
	pex_al_prefetch_close(NULL);
}

/* The first block is small and read on the caller's thread; nothing
 * more is read until the second is asked for (a plain file searched in
 * parts asks for one only). */
static void test_first_block_alone(void **state)
{
	struct pex_al_prefetch *p = NULL;
	char *path = make_file("first", 3u << 20);
	const unsigned char *b;
	const void *buf;
	ssize_t n;
	int fd;

	(void)state;
	assert_int_equal(pex_al_prefetch_open(&p, path, 1u << 20), 0);
	fd = pex_al_prefetch_fd(p);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
	n = pex_al_prefetch_next(p, &buf);
	assert_int_equal(n, 64 * 1024);
	b = buf;
	assert_int_equal(b[1000], (unsigned char)((1000 * 7 + 1000 / 251) &
						  0xff));
	/* no reader ran ahead: the descriptor is where the first read
	 * left it, also a while later */
	{
		struct timespec ts = {0, 20000000};

		nanosleep(&ts, NULL);
	}
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 64 * 1024);
	pex_al_prefetch_close(p);
	/* and the rest follows the first block in order */
	read_all(path, 3u << 20, 1u << 20, 0);
}

static void test_missing_file(void **state)
{
	struct pex_al_prefetch *p = NULL;
	char path[300];

	(void)state;
	snprintf(path, sizeof(path), "%s/no-such.log", dir);
	assert_int_equal(pex_al_prefetch_open(&p, path, 4096), PEX_EIO);
	assert_null(p);
	assert_non_null(strstr(pex_error_last(), "no-such.log"));
}

/* read() on a folder fails (EISDIR): the caller gets -1 and errno. */
static void test_read_error(void **state)
{
	struct pex_al_prefetch *p = NULL;
	const void *buf;

	(void)state;
	assert_int_equal(pex_al_prefetch_open(&p, dir, 4096), 0);
	errno = 0;
	assert_int_equal(pex_al_prefetch_next(p, &buf), -1);
	assert_int_equal(errno, EISDIR);
	pex_al_prefetch_close(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_byte_in_order),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_without_thread),
		cmocka_unit_test(test_stop_early),
		cmocka_unit_test(test_first_block_alone),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_read_error),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
