/* Unit tests for bundle/concat.c: a byte stream of memory and file
 * pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bundle/concat.h"
#include "portex/error.h"

static char dir[64];
static char f1[128], f2[128], fempty[128];
static char big_expect[300000];
static size_t big_len;

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/pex_concat_test_XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(f1, sizeof(f1), "%s/one", dir);
	snprintf(f2, sizeof(f2), "%s/two", dir);
	snprintf(fempty, sizeof(fempty), "%s/empty", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(f1);
	unlink(f2);
	unlink(fempty);
	return rmdir(dir);
}

/* Read c to the end in chunks of at most chunk bytes into out. */
static size_t read_all(struct pex_concat *c, size_t chunk, char *out,
		       size_t cap)
{
	char buf[70000];
	size_t total = 0;
	ssize_t n;

	assert_true(chunk <= sizeof(buf));
	while ((n = pex_concat_read(c, buf, chunk)) > 0) {
		assert_true((size_t)n <= chunk);
		assert_true(total + (size_t)n <= cap);
		memcpy(out + total, buf, (size_t)n);
		total += (size_t)n;
	}
	assert_int_equal(n, 0);
	/* at the end it stays at the end */
	assert_int_equal(pex_concat_read(c, buf, chunk), 0);
	return total;
}

/* Build: "<head>" + file one + "" + empty file + file two (big) +
 * owned "</tail>" + NULL/0 memory piece. */
static void build(struct pex_concat *c)
{
	static char two[250000];
	size_t i;
	char *tail;

	for (i = 0; i < sizeof(two); i++)
		two[i] = (char)('A' + (i * 7) % 26);
	write_file(f1, "first file\n", 11);
	write_file(f2, two, sizeof(two));
	write_file(fempty, "", 0);
	memset(c, 0, sizeof(*c));
	assert_int_equal(pex_concat_add_mem(c, "<head>", 6), 0);
	assert_int_equal(pex_concat_add_file(c, f1), 0);
	assert_int_equal(pex_concat_add_mem(c, "", 0), 0);
	assert_int_equal(pex_concat_add_file(c, fempty), 0);
	assert_int_equal(pex_concat_add_file(c, f2), 0);
	tail = strdup("</tail>");
	assert_non_null(tail);
	assert_int_equal(pex_concat_add_owned(c, tail, 7), 0);
	assert_int_equal(pex_concat_add_mem(c, NULL, 0), 0);
	big_len = 0;
	memcpy(big_expect, "<head>first file\n", 17);
	big_len = 17;
	memcpy(big_expect + big_len, two, sizeof(two));
	big_len += sizeof(two);
	memcpy(big_expect + big_len, "</tail>", 7);
	big_len += 7;
}

static void test_chunks(void **state)
{
	static const size_t chunks[] = { 1, 2, 3, 6, 7, 11, 17, 4096, 65536,
					 70000 };
	static char out[300000];
	struct pex_concat c;
	size_t i, n;

	(void)state;
	build(&c);
	assert_int_equal(pex_concat_size(&c), (int64_t)big_len);
	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		pex_concat_rewind(&c);
		memset(out, 0, sizeof(out));
		n = read_all(&c, chunks[i], out, sizeof(out));
		if (n != big_len)
			fail_msg("chunk %zu: read %zu, want %zu", chunks[i], n,
				 big_len);
		assert_memory_equal(out, big_expect, big_len);
	}
	pex_concat_free(&c);
	pex_concat_free(NULL);
}

static void test_rewind_midway(void **state)
{
	static char out[300000];
	struct pex_concat c;
	char buf[32];

	(void)state;
	build(&c);
	/* stop inside the first file (which is then open), rewind */
	assert_int_equal(pex_concat_read(&c, buf, 10), 10);
	assert_memory_equal(buf, "<head>firs", 10);
	pex_concat_rewind(&c);
	assert_null(c.f);
	assert_int_equal(read_all(&c, 1000, out, sizeof(out)), big_len);
	assert_memory_equal(out, big_expect, big_len);
	/* and from the very end */
	pex_concat_rewind(&c);
	assert_int_equal(pex_concat_read(&c, buf, 6), 6);
	assert_memory_equal(buf, "<head>", 6);
	pex_concat_free(&c);
	assert_int_equal(c.count, 0);
	assert_null(c.pieces);
}

static void test_empty_stream(void **state)
{
	struct pex_concat c = { 0 };
	char buf[4];

	(void)state;
	assert_int_equal(pex_concat_size(&c), 0);
	assert_int_equal(pex_concat_read(&c, buf, sizeof(buf)), 0);
	assert_int_equal(pex_concat_add_mem(&c, "", 0), 0);
	assert_int_equal(pex_concat_read(&c, buf, sizeof(buf)), 0);
	pex_concat_free(&c);
}

static void test_missing_file(void **state)
{
	struct pex_concat c = { 0 };
	char missing[160], buf[64];
	ssize_t n;

	(void)state;
	snprintf(missing, sizeof(missing), "%s/absent", dir);
	assert_int_equal(pex_concat_add_mem(&c, "abc", 3), 0);
	assert_int_equal(pex_concat_add_file(&c, missing), 0);
	assert_int_equal(pex_concat_add_mem(&c, "xyz", 3), 0);
	assert_int_equal(pex_concat_size(&c), PEX_EIO);
	assert_non_null(strstr(pex_error_last(), "cannot stat"));
	assert_non_null(strstr(pex_error_last(), "absent"));
	/* the bytes before the missing piece come out, then the error */
	n = pex_concat_read(&c, buf, 2);
	assert_int_equal(n, 2);
	n = pex_concat_read(&c, buf, sizeof(buf));
	assert_true(n < 0);
	assert_non_null(strstr(pex_error_last(), "cannot open"));
	assert_non_null(strstr(pex_error_last(), missing));
	assert_true(c.err);
	pex_concat_rewind(&c);
	assert_false(c.err);
	pex_concat_free(&c);
}

/* A file that vanishes between size and read. */
static void test_file_removed(void **state)
{
	struct pex_concat c = { 0 };
	char buf[16];

	(void)state;
	write_file(f1, "data", 4);
	assert_int_equal(pex_concat_add_file(&c, f1), 0);
	assert_int_equal(pex_concat_size(&c), 4);
	unlink(f1);
	assert_true(pex_concat_read(&c, buf, sizeof(buf)) < 0);
	pex_concat_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunks),
		cmocka_unit_test(test_rewind_midway),
		cmocka_unit_test(test_empty_stream),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_file_removed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
