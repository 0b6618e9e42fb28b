/* libpq and libcurl are loaded when a source first needs them
 * (core/dynlib.h). Here neither can be: each is named by a soname that
 * does not exist, before anything else loads it (a process of its own).
 * Opening a PostgreSQL or REST source must then fail with the library,
 * the reason and the package to install; closing what the failed open
 * left must not touch the missing library; a second open gives the
 * same answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "collectors/http_json/hj.h"
#include "collectors/sql/sql_driver.h"
#include "portex/error.h"

static void test_no_libcurl(void **state)
{
	struct hj_http_opts o = { .base_url = "http://127.0.0.1:9/",
				  .max_response_bytes = 1 << 20 };
	struct hj_http h;
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		assert_int_equal(hj_http_open(&h, NULL, &o), PEX_ENOTFOUND);
		assert_non_null(strstr(pex_error_last(),
				       "libcurl-pex-missing.so.4"));
		assert_non_null(strstr(pex_error_last(),
				       "apt-get install libcurl4"));
		hj_http_close(&h); /* must not crash */
	}
	assert_null(hj_url_resolve("http://a.example/x", "y"));
}

static void test_no_libpq(void **state)
{
	struct pex_sql_stmt *st = (struct pex_sql_stmt *)&st;
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		assert_int_equal(pex_sql_driver_pg.open(NULL,
			"postgresql://127.0.0.1:9/x", "SELECT 1", 1000, &st),
			PEX_ENOTFOUND);
		assert_null(st);
		assert_non_null(strstr(pex_error_last(),
				       "libpq-pex-missing.so.5"));
		assert_non_null(strstr(pex_error_last(),
				       "apt-get install libpq5"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_libcurl),
		cmocka_unit_test(test_no_libpq),
	};

	hj_http_library("libcurl-pex-missing.so.4");
	pex_sql_pg_library("libpq-pex-missing.so.5");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
