/* Unit tests for core/timeutil.c: parsing what sources write, printing
 * RFC 3339 UTC, ISO 8601 durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/timeutil.h"
#include "portex/error.h"

/* Parse s and return the time; fails the test when it does not parse. */
static time_t parse_ok(const char *s)
{
	time_t t = 0;
	int rc = pex_time_parse(s, strlen(s), &t);

	if (rc)
		fail_msg("\"%s\" did not parse: %s", s, pex_error_last());
	return t;
}

static void parse_bad(const char *s)
{
	time_t t = 12345;
	int rc = pex_time_parse(s, strlen(s), &t);

	if (rc != PEX_EINVALID)
		fail_msg("\"%s\" parsed (rc %d, t %lld)", s, rc, (long long)t);
	assert_int_equal(t, 12345); /* untouched on failure */
	assert_non_null(strstr(pex_error_last(), "not a date-time"));
}

static void test_rfc3339(void **state)
{
	(void)state;
	/* 2026-01-03T10:00:00Z = 1767434400 (20456 days * 86400 + 36000) */
	assert_int_equal(pex_days_from_civil(2026, 1, 3), 20456);
	assert_int_equal(parse_ok("2026-01-03T10:00:00Z"), 1767434400);
	assert_int_equal(parse_ok("2026-01-03t10:00:00z"), 1767434400);
	assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(parse_ok("1969-12-31T23:59:59Z"), -1);
	/* offsets move the instant to UTC */
	assert_int_equal(parse_ok("2026-01-03T11:00:00+01:00"), 1767434400);
	assert_int_equal(parse_ok("2026-01-03T05:30:00-04:30"), 1767434400);
	assert_int_equal(parse_ok("2026-01-03T11:00:00+0100"), 1767434400);
	assert_int_equal(parse_ok("2026-01-03T10:00:00+00:00"), 1767434400);
	/* fractions are dropped, in either separator */
	assert_int_equal(parse_ok("2026-01-03T10:00:00.999Z"), 1767434400);
	assert_int_equal(parse_ok("2026-01-03T11:00:00.123456789+01:00"),
			 1767434400);
	assert_int_equal(parse_ok("2026-01-03T10:00:00,5Z"), 1767434400);
	/* without seconds; a leap second stays in its minute */
	assert_int_equal(parse_ok("2026-01-03T10:00Z"), 1767434400);
	assert_int_equal(parse_ok("2016-12-31T23:59:60Z"),
			 parse_ok("2016-12-31T23:59:59Z"));
	/* the length given is what counts, not the NUL */
	{
		time_t t;

		assert_int_equal(pex_time_parse("2026-01-03T10:00:00Zjunk", 20,
						&t), 0);
		assert_int_equal(t, 1767434400);
	}
}

static void test_sql_and_dates(void **state)
{
	(void)state;
	/* SQLite's CURRENT_TIMESTAMP form, taken as UTC */
	assert_int_equal(parse_ok("2026-01-03 10:00:00"), 1767434400);
	assert_int_equal(parse_ok("2026-01-03 10:00:00.250"), 1767434400);
	/* bare dates are midnight UTC */
	assert_int_equal(parse_ok("2026-01-03"), 1767398400);
	assert_int_equal(parse_ok("2024-02-29"),
			 pex_days_from_civil(2024, 2, 29) * 86400LL);
	assert_int_equal(parse_ok("2000-02-29"),
			 pex_days_from_civil(2000, 2, 29) * 86400LL);
	/* surrounding blanks are ignored */
	assert_int_equal(parse_ok("  2026-01-03\t"), 1767398400);
	/* four-digit years at both ends */
	assert_int_equal(parse_ok("0000-01-01T00:00:00Z"), -62167219200LL);
	assert_int_equal(parse_ok("9999-12-31T23:59:59Z"), 253402300799LL);
}

static void test_invalid_dates(void **state)
{
	(void)state;
	parse_bad("2026-02-30");
	parse_bad("2026-02-29"); /* not a leap year */
	parse_bad("1900-02-29"); /* century, not leap */
	parse_bad("2026-13-01");
	parse_bad("2026-00-10");
	parse_bad("2026-04-31");
	parse_bad("2026-01-00");
	parse_bad("2026-01-03T24:00:00Z");
	parse_bad("2026-01-03T10:60:00Z");
	parse_bad("2026-01-03T10:00:61Z");
	parse_bad("2026-01-03T10:00:00+24:00");
	parse_bad("2026-01-03T10:00:00+01:60");
	parse_bad("2026-01-03T10:00:00+1");
	parse_bad("2026-01-03T10:00:00.Z");
	parse_bad("2026-01-03T");
	parse_bad("2026-01-03T10");
	parse_bad("2026-01-03X10:00:00Z");
	parse_bad("2026-01-03T10:00:00Z trailing");
	parse_bad("2026-01-03junk");
	parse_bad("2026-1-3");
	parse_bad("26-01-03");
	parse_bad("+2026-01-03");
	parse_bad("12026-01-03");
	parse_bad("03/01/2026");
	parse_bad("yesterday");
	parse_bad("");
	parse_bad("   ");
	parse_bad("2026-01-03T10:00:00\xC3\xA9");
}

static void test_format_round_trip(void **state)
{
	char buf[PEX_TIME_BUFSZ];
	static const char *const samples[] = {
		"1970-01-01T00:00:00Z", "2026-01-03T10:00:00Z",
		"2024-02-29T23:59:59Z", "1969-07-20T20:17:40Z",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
		"2038-01-19T03:14:08Z",
	};
	size_t i;

	(void)state;
	assert_string_equal(pex_time_format(0, buf), "1970-01-01T00:00:00Z");
	assert_string_equal(pex_time_format(1767434400, buf),
			    "2026-01-03T10:00:00Z");
	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		time_t t = parse_ok(samples[i]);

		assert_string_equal(pex_time_format(t, buf), samples[i]);
		assert_int_equal(strlen(buf), PEX_TIME_BUFSZ - 1);
		assert_int_equal(parse_ok(buf), t);
	}
	/* an offset time prints as its UTC instant */
	assert_string_equal(
		pex_time_format(parse_ok("2026-06-30T23:30:00-02:00"), buf),
		"2026-07-01T01:30:00Z");
}

/* t printed by pex_time_format() must be what gmtime_r() says. */
static void same_as_gmtime(long long t)
{
	char buf[PEX_TIME_BUFSZ], want[64];
	struct tm tm;

	assert_non_null(gmtime_r(&(time_t){ (time_t)t }, &tm));
	snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec);
	if (strcmp(pex_time_format((time_t)t, buf), want))
		fail_msg("%lld: %s, gmtime_r says %s", t, buf, want);
}

/* The calendar arithmetic against the C library's gmtime_r(): every day
 * from 0000 to 9999 at a second that changes with the day, and a spread
 * of random instants in between. */
static void test_format_matches_gmtime(void **state)
{
	unsigned long long x = 88172645463325252ull;
	long long t;
	int i;

	(void)state;
	for (t = -62167219200LL; t <= 253402300799LL; t += 86400 + 7)
		same_as_gmtime(t);
	for (i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		same_as_gmtime(-62167219200LL +
			       (long long)(x % 315569520000ull));
	}
}

static void test_format_out_of_range(void **state)
{
	char buf[PEX_TIME_BUFSZ];

	(void)state;
	/* Years RFC 3339 cannot write are clamped to its ends, never
	 * printed as a wrong date in range. */
	assert_string_equal(pex_time_format(253402300800LL, buf),
			    "9999-12-31T23:59:59Z");
	assert_string_equal(pex_time_format((time_t)1 << 60, buf),
			    "9999-12-31T23:59:59Z");
	assert_string_equal(pex_time_format(INT64_MAX, buf),
			    "9999-12-31T23:59:59Z");
	assert_string_equal(pex_time_format(-62167219201LL, buf),
			    "0000-01-01T00:00:00Z");
	assert_string_equal(pex_time_format(INT64_MIN, buf),
			    "0000-01-01T00:00:00Z");
}

static long long dur_ok(const char *s)
{
	long long v = -1;
	int rc = pex_duration_parse(s, strlen(s), &v);

	if (rc)
		fail_msg("duration \"%s\" refused: %s", s, pex_error_last());
	return v;
}

static void dur_bad(const char *s)
{
	long long v = -1;
	int rc = pex_duration_parse(s, strlen(s), &v);

	if (rc != PEX_EINVALID)
		fail_msg("duration \"%s\" accepted as %lld", s, v);
	assert_int_equal(v, -1);
	assert_non_null(strstr(pex_error_last(), "not an ISO 8601 duration"));
}

static void test_durations(void **state)
{
	(void)state;
	assert_int_equal(dur_ok("PT30M"), 1800);
	assert_int_equal(dur_ok("P1D"), 86400);
	assert_int_equal(dur_ok("P1DT2H"), 86400 + 7200);
	assert_int_equal(dur_ok("PT1H30M15S"), 5415);
	assert_int_equal(dur_ok("P2W"), 14 * 86400);
	assert_int_equal(dur_ok("pt5m"), 300);
	assert_int_equal(dur_ok("PT0S"), 0);
	assert_int_equal(dur_ok("PT90M"), 5400);
	assert_int_equal(dur_ok("P1000000000D"), 86400000000000LL);
}

static void test_bad_durations(void **state)
{
	(void)state;
	dur_bad("");
	dur_bad("P");
	dur_bad("PT");
	dur_bad("P1DT"); /* T must be followed by a time part */
	dur_bad("30M");
	dur_bad("PT30");
	dur_bad("P30M"); /* months are not supported; M after T is minutes */
	dur_bad("PT1D");
	dur_bad("P1H");
	dur_bad("P1Y");
	dur_bad("PT-5M");
	dur_bad("PT1.5H");
	dur_bad("PT5M ");
	dur_bad("PTT5M");
	dur_bad("PT5MT1S");
	dur_bad("P1DT2H1D");
	/* order and repetition: each designator once, largest first */
	dur_bad("PT1M1H");
	dur_bad("PT1S1S");
	dur_bad("P1D1D");
	dur_bad("P1D1W");
	dur_bad("PT1 S"); /* a space is no designator */
	/* digit runs past the bound */
	dur_bad("P99999999999999999999D");
	dur_bad("PT100000000000S");
	{
		long long v = -1;

		/* a NUL inside the length is no designator either */
		assert_int_equal(pex_duration_parse("PT1\0S", 5, &v),
				 PEX_EINVALID);
	}
}

/* Repeating a designator many times used to sum past LLONG_MAX (undefined
 * behaviour; UBSan aborts). It must be refused. */
static void test_duration_no_overflow(void **state)
{
	char s[8192];
	size_t n = 1;
	long long v = -1;

	(void)state;
	s[0] = 'P';
	while (n + 12 < sizeof(s)) {
		memcpy(s + n, "9999999999W", 11);
		n += 11;
	}
	assert_int_equal(pex_duration_parse(s, n, &v), PEX_EINVALID);
	assert_int_equal(v, -1);
	/* the largest accepted value of every part together still fits */
	v = dur_ok("P9999999999W9999999999DT9999999999H9999999999M"
		   "9999999999S");
	assert_true(v > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_sql_and_dates),
		cmocka_unit_test(test_invalid_dates),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_format_matches_gmtime),
		cmocka_unit_test(test_format_out_of_range),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_bad_durations),
		cmocka_unit_test(test_duration_no_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
