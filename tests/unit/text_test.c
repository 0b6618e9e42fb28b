/* Unit tests for core/text.c (UTF-8 / XML 1.0 hygiene) and core/buf.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/text.h"
#include "portex/error.h"

#define FFFD "\xEF\xBF\xBD"

/* Sanitize s (len bytes) and check the output and the count. */
static void check_sanitize(const char *s, size_t len, const char *want,
			   long want_count)
{
	struct pex_buf b = PEX_BUF_INIT(1 << 20);
	long n = pex_text_sanitize(s, len, &b);

	assert_int_equal(n, want_count);
	assert_non_null(b.data);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
	/* whatever came in, what comes out is clean */
	assert_true(pex_text_is_clean(b.data, b.len));
	pex_buf_free(&b);
}

#define SAN(lit, want, count) check_sanitize(lit, sizeof(lit) - 1, want, count)

static void test_clean_text_unchanged(void **state)
{
	(void)state;
	SAN("", "", 0);
	SAN("plain ASCII", "plain ASCII", 0);
	SAN("tab\tLF\nCR\r", "tab\tLF\nCR\r", 0);
	SAN("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80",
	    "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 0);
	/* the last code points XML allows in each plane */
	SAN("\xEF\xBF\xBD\xF4\x8F\xBF\xBF", "\xEF\xBF\xBD\xF4\x8F\xBF\xBF", 0);
	SAN("\x7F", "\x7F", 0); /* DEL is allowed in XML 1.0 */
	assert_true(pex_text_is_clean("caf\xC3\xA9", 5));
	assert_true(pex_text_is_clean("", 0));
	assert_true(pex_text_is_clean("a\tb\r\n", 5));
}

static void test_invalid_utf8_replaced(void **state)
{
	(void)state;
	/* a lone continuation byte */
	SAN("a\x80z", "a" FFFD "z", 1);
	/* overlong encodings of '/' (2 and 3 bytes) and of NUL: each byte
	 * of the sequence is replaced */
	SAN("\xC0\xAF", FFFD FFFD, 2);
	SAN("\xE0\x80\xAF", FFFD FFFD FFFD, 3);
	SAN("\xC1\xBF", FFFD FFFD, 2);
	/* UTF-16 surrogates encoded in UTF-8 */
	SAN("x\xED\xA0\x80y", "x" FFFD FFFD FFFD "y", 3);
	SAN("\xED\xBF\xBF", FFFD FFFD FFFD, 3);
	/* above U+10FFFF, and bytes that never appear in UTF-8 */
	SAN("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD, 4);
	SAN("\xF5\x80\x80\x80", FFFD FFFD FFFD FFFD, 4);
	SAN("\xFE\xFF", FFFD FFFD, 2);
	/* truncated sequences: at the end, and cut by the next character */
	SAN("ok\xE2\x82", "ok" FFFD FFFD, 2);
	SAN("\xE2\x82" "A", FFFD FFFD "A", 2);
	SAN("\xF0\x9F\x98", FFFD FFFD FFFD, 3);
	SAN("\xC3", FFFD, 1);
	/* a valid character right after a bad byte survives */
	SAN("\xC3\xC3\xA9", FFFD "\xC3\xA9", 1);
	assert_false(pex_text_is_clean("\xC0\xAF", 2));
	assert_false(pex_text_is_clean("\xED\xA0\x80", 3));
	assert_false(pex_text_is_clean("\xF4\x90\x80\x80", 4));
	assert_false(pex_text_is_clean("ab\xE2\x82", 4));
}

static void test_xml_forbidden_replaced(void **state)
{
	(void)state;
	/* C0 controls but tab, LF and CR; NUL inside the length */
	SAN("a\x01" "b", "a" FFFD "b", 1);
	SAN("\x1B[31mred", FFFD "[31mred", 1);
	check_sanitize("a\0b", 3, "a" FFFD "b", 1);
	SAN("\x0B\x0C\x1F", FFFD FFFD FFFD, 3);
	/* U+FFFE and U+FFFF */
	SAN("\xEF\xBF\xBE|\xEF\xBF\xBF", FFFD "|" FFFD, 2);
	assert_false(pex_text_is_clean("\x01", 1));
	assert_false(pex_text_is_clean("a\0b", 3));
	assert_false(pex_text_is_clean("\xEF\xBF\xBE", 3));
	assert_false(pex_text_is_clean("\xEF\xBF\xBF", 3));
}

static void test_decode(void **state)
{
	unsigned cp = 0;

	(void)state;
	assert_int_equal(pex_utf8_decode((const unsigned char *)"A", 1, &cp),
			 1);
	assert_int_equal(cp, 'A');
	assert_int_equal(pex_utf8_decode((const unsigned char *)"\xC3\xA9",
					 2, &cp), 2);
	assert_int_equal(cp, 0xE9);
	assert_int_equal(pex_utf8_decode((const unsigned char *)"\xE2\x82\xAC",
					 3, &cp), 3);
	assert_int_equal(cp, 0x20AC);
	assert_int_equal(pex_utf8_decode(
				 (const unsigned char *)"\xF4\x8F\xBF\xBF",
				 4, &cp), 4);
	assert_int_equal(cp, 0x10FFFF);
	/* the length given is respected even when more bytes follow */
	assert_int_equal(pex_utf8_decode((const unsigned char *)"\xE2\x82\xAC",
					 2, &cp), 0);
	assert_int_equal(pex_utf8_decode((const unsigned char *)"\xC0\x80",
					 2, &cp), 0);
}

static void test_sanitize_reports_limit(void **state)
{
	struct pex_buf b = PEX_BUF_INIT(8);
	long n;

	(void)state;
	/* 4 bad bytes become 12 bytes of output: over the 8-byte limit */
	n = pex_text_sanitize("\xFF\xFF\xFF\xFF", 4, &b);
	assert_int_equal(n, PEX_ELIMIT);
	/* a clean value within the limit still fits; out is reset first */
	n = pex_text_sanitize("abc", 3, &b);
	assert_int_equal(n, 0);
	assert_string_equal(b.data, "abc");
	n = pex_text_sanitize("x", 1, &b);
	assert_int_equal(n, 0);
	assert_string_equal(b.data, "x");
	pex_buf_free(&b);
}

/* Every 1- and 2-byte input: the output is always clean, and clean input
 * passes through unchanged with a count of 0. */
static void test_sanitize_exhaustive_short(void **state)
{
	struct pex_buf b = PEX_BUF_INIT(64);
	unsigned i, j;

	(void)state;
	for (i = 0; i < 256; i++) {
		for (j = 0; j < 256; j++) {
			char in[2] = { (char)i, (char)j };
			long n = pex_text_sanitize(in, 2, &b);

			assert_true(n >= 0 && n <= 2);
			assert_true(pex_text_is_clean(b.data, b.len));
			if (pex_text_is_clean(in, 2)) {
				assert_int_equal(n, 0);
				assert_int_equal(b.len, 2);
				assert_memory_equal(b.data, in, 2);
			} else {
				assert_true(n >= 1);
			}
		}
	}
	pex_buf_free(&b);
}

/* ---- buf ------------------------------------------------------------- */

static void test_buf_limit(void **state)
{
	struct pex_buf b;
	char *p;

	(void)state;
	pex_buf_init(&b, 10);
	assert_int_equal(pex_buf_append(&b, "0123456789", 10), 0);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "0123456789");
	assert_int_equal(pex_buf_putc(&b, 'x'), PEX_ELIMIT);
	assert_non_null(strstr(pex_error_last(), "limit of 10 bytes"));
	assert_int_equal(b.len, 10);
	/* a length that would wrap size_t around is refused, not copied */
	assert_int_equal(pex_buf_append(&b, "x", SIZE_MAX), PEX_ELIMIT);
	assert_int_equal(pex_buf_printf(&b, "%s", "x"), PEX_ELIMIT);
	pex_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	assert_int_equal(pex_buf_printf(&b, "%d-%s", 42, "ab"), 0);
	assert_string_equal(b.data, "42-ab");
	assert_int_equal(pex_buf_printf(&b, "%s", "12345"), 0);
	assert_string_equal(b.data, "42-ab12345");
	assert_int_equal(pex_buf_printf(&b, "!"), PEX_ELIMIT);
	p = pex_buf_detach(&b);
	assert_string_equal(p, "42-ab12345");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	free(p);
	/* detach of an empty buffer gives "" */
	p = pex_buf_detach(&b);
	assert_string_equal(p, "");
	free(p);
	pex_buf_free(&b);
	pex_buf_free(NULL);
}

static void test_buf_grows(void **state)
{
	struct pex_buf b = PEX_BUF_INIT(100000);
	size_t i;

	(void)state;
	assert_int_equal(pex_buf_append(&b, "", 0), 0);
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	for (i = 0; i < 100000; i++)
		assert_int_equal(pex_buf_putc(&b, (char)('a' + i % 26)), 0);
	assert_int_equal(b.len, 100000);
	assert_true(b.cap <= 100001);
	assert_int_equal(b.data[99999], 'a' + 99999 % 26);
	assert_int_equal(b.data[100000], '\0');
	assert_int_equal(pex_buf_putc(&b, 'x'), PEX_ELIMIT);
	pex_buf_free(&b);
}

/* A message cut inside a character, or quoting a Latin-1 byte, is made
 * text ('?' for each stray byte) so that jansson takes it. */
static void test_utf8_mend(void **state)
{
	char cut[] = "caf\xc3", latin[] = "zo\xe9 and \xc3\xa9 \xf0\x9f",
	     fine[] = "\xc3\xa9t\xc3\xa9 \xe2\x82\xac", empty[] = "";
	json_t *j;

	(void)state;
	pex_utf8_mend(cut);
	assert_string_equal(cut, "caf?");
	pex_utf8_mend(latin);
	assert_string_equal(latin, "zo? and \xc3\xa9 ??");
	pex_utf8_mend(fine);
	assert_string_equal(fine, "\xc3\xa9t\xc3\xa9 \xe2\x82\xac");
	pex_utf8_mend(empty);
	assert_string_equal(empty, "");
	/* and the error layer does it for every message */
	pex_error_set(PEX_EINVALID, "%.4s", "caf\xc3\xa9");
	assert_string_equal(pex_error_last(), "caf?");
	j = json_string(pex_error_last());
	assert_non_null(j);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_text_unchanged),
		cmocka_unit_test(test_utf8_mend),
		cmocka_unit_test(test_invalid_utf8_replaced),
		cmocka_unit_test(test_xml_forbidden_replaced),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_sanitize_reports_limit),
		cmocka_unit_test(test_sanitize_exhaustive_short),
		cmocka_unit_test(test_buf_limit),
		cmocka_unit_test(test_buf_grows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
