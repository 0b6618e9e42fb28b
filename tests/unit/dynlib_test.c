/* Unit tests for core/dynlib.c: a library that is there loads and gives
 * its symbols; one that is not, or lacks a symbol, gives an error that
 * names the library and the package to install, the same to every later
 * caller. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "core/dynlib.h"
#include "portex/error.h"

static void test_loads(void **state)
{
	struct pex_dynlib l = { .soname = "libz.so.1", .what = "zlib",
				.package = "zlib1g" };
	const char *(*version)(void);

	(void)state;
	assert_int_equal(pex_dynlib_open(&l), 0);
	version = (const char *(*)(void))pex_dynlib_sym(&l, "zlibVersion");
	assert_non_null(version);
	assert_string_equal(version(), zlibVersion());
	assert_int_equal(pex_dynlib_result(&l), 0);
}

static void test_missing_library(void **state)
{
	struct pex_dynlib l = { .soname = "libpex-no-such.so.9",
				.what = "the test library",
				.package = "pex-no-such9" };

	(void)state;
	assert_int_equal(pex_dynlib_open(&l), PEX_ENOTFOUND);
	assert_non_null(strstr(pex_error_last(), "libpex-no-such.so.9"));
	assert_non_null(strstr(pex_error_last(),
			       "apt-get install pex-no-such9"));
	assert_null(pex_dynlib_sym(&l, "anything"));
	/* a later caller gets the same answer */
	pex_error_set(PEX_ERROR, "something else");
	assert_int_equal(pex_dynlib_result(&l), PEX_ENOTFOUND);
	assert_non_null(strstr(pex_error_last(), "libpex-no-such.so.9"));
}

static void test_missing_symbol(void **state)
{
	struct pex_dynlib l = { .soname = "libz.so.1", .what = "zlib",
				.package = "zlib1g" };

	(void)state;
	assert_int_equal(pex_dynlib_open(&l), 0);
	assert_null(pex_dynlib_sym(&l, "pex_no_such_function"));
	assert_non_null(strstr(pex_error_last(), "pex_no_such_function"));
	assert_non_null(strstr(pex_error_last(), "newer zlib1g"));
	assert_int_equal(pex_dynlib_result(&l), PEX_ENOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loads),
		cmocka_unit_test(test_missing_library),
		cmocka_unit_test(test_missing_symbol),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
