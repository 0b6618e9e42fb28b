/* Timestamp parsing and printing; see timeutil.h. */
#include "core/timeutil.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "portex/error.h"

long long pex_days_from_civil(long long y, unsigned m, unsigned d)
{
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int digits(const char *s, size_t len, size_t *pos, int n, int *out)
{
	int v = 0, i;

	if (*pos + (size_t)n > len)
		return -1;
	for (i = 0; i < n; i++) {
		char c = s[*pos + (size_t)i];

		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*pos += (size_t)n;
	*out = v;
	return 0;
}

static int expect(const char *s, size_t len, size_t *pos, char c)
{
	if (*pos >= len || s[*pos] != c)
		return -1;
	(*pos)++;
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int dm[] = { 31, 28, 31, 30, 31, 30,
				  31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dm[m - 1];
}

int pex_time_parse(const char *s, size_t len, time_t *out)
{
	size_t p = 0;
	int y, mo, d, h = 0, mi = 0, se = 0, oh = 0, om = 0, sign = 0;
	long long t;

	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	while (p < len && (s[p] == ' ' || s[p] == '\t'))
		p++;
	if (digits(s, len, &p, 4, &y) || expect(s, len, &p, '-') ||
	    digits(s, len, &p, 2, &mo) || expect(s, len, &p, '-') ||
	    digits(s, len, &p, 2, &d))
		goto bad;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		goto bad;
	if (p < len) {
		if (s[p] != 'T' && s[p] != 't' && s[p] != ' ')
			goto bad;
		p++;
		if (digits(s, len, &p, 2, &h) || expect(s, len, &p, ':') ||
		    digits(s, len, &p, 2, &mi))
			goto bad;
		if (p < len && s[p] == ':') {
			p++;
			if (digits(s, len, &p, 2, &se))
				goto bad;
			if (p < len && (s[p] == '.' || s[p] == ',')) {
				p++;
				if (p >= len || s[p] < '0' || s[p] > '9')
					goto bad;
				while (p < len && s[p] >= '0' && s[p] <= '9')
					p++;
			}
		}
		if (h > 23 || mi > 59 || se > 60)
			goto bad;
		if (p < len && (s[p] == 'Z' || s[p] == 'z')) {
			p++;
		} else if (p < len && (s[p] == '+' || s[p] == '-')) {
			sign = s[p] == '-' ? -1 : 1;
			p++;
			if (digits(s, len, &p, 2, &oh))
				goto bad;
			if (p < len && s[p] == ':')
				p++;
			if (digits(s, len, &p, 2, &om) || oh > 23 || om > 59)
				goto bad;
		}
	}
	if (p != len)
		goto bad;
	if (se == 60)
		se = 59; /* a leap second is kept inside its minute */
	t = pex_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400LL +
	    h * 3600LL + mi * 60LL + se;
	t -= sign * (oh * 3600LL + om * 60LL);
	*out = (time_t)t;
	return 0;
bad:
	return pex_error_set(PEX_EINVALID, "not a date-time: \"%.*s\"",
			     (int)(len > 64 ? 64 : len), s);
}

int pex_duration_parse(const char *s, size_t len, long long *out)
{
	/* Designators in the order ISO 8601 writes them, each at most once:
	 * that keeps "P1D1D1D..." from summing past LLONG_MAX. */
	static const char order[] = "WDHMS";
	static const long long unit[] = { 7 * 86400LL, 86400, 3600, 60, 1 };
	size_t p = 0, next = 0, k;
	long long total = 0, v;
	int in_time = 0, any = 0, time_any = 0;
	const char *at;
	char c;

	if (!len || (s[0] != 'P' && s[0] != 'p'))
		goto bad;
	p = 1;
	while (p < len) {
		if (s[p] == 'T' || s[p] == 't') {
			if (in_time)
				goto bad;
			in_time = 1;
			next = 2; /* H, M, S may follow */
			p++;
			continue;
		}
		v = 0;
		if (s[p] < '0' || s[p] > '9')
			goto bad;
		while (p < len && s[p] >= '0' && s[p] <= '9') {
			if (v > 1000000000LL)
				goto bad;
			v = v * 10 + (s[p] - '0');
			p++;
		}
		if (p >= len)
			goto bad;
		c = s[p] >= 'a' && s[p] <= 'z' ? s[p] - 'a' + 'A' : s[p];
		at = c ? strchr(order, c) : NULL;
		if (!at)
			goto bad;
		k = (size_t)(at - order);
		/* W and D belong before T, H M S after it */
		if (k < next || (k >= 2) != in_time)
			goto bad;
		next = k + 1;
		total += v * unit[k];
		any = 1;
		time_any |= in_time;
		p++;
	}
	if (!any || (in_time && !time_any))
		goto bad;
	*out = total;
	return 0;
bad:
	return pex_error_set(PEX_EINVALID,
			     "not an ISO 8601 duration (PT30M, P1D): \"%.*s\"",
			     (int)(len > 64 ? 64 : len), s);
}

/* Year, month and day of day z counted from 1970-01-01 (proleptic
 * Gregorian), by eras of 400 years (146097 days) that start on March 1,
 * so the leap day ends a year. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468; /* 0000-03-01 */
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void two(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
}

/* Written out by hand, not with gmtime_r() and snprintf(): every usage
 * event has its time printed, and gmtime_r() takes the time-zone lock.
 * Years outside 0..9999 cannot be written as RFC 3339: clamped to the
 * nearest end of that range rather than printed as a wrong date (a
 * window end of 1970 would read as ending before it starts). */
char *pex_time_format(time_t t, char buf[PEX_TIME_BUFSZ])
{
	/* -62167219200 is 0000-01-01T00:00:00Z, 253402300799 the last
	 * second of 9999 */
	int64_t s = (int64_t)t, days, y;
	unsigned sod, m, d;

	if (s < -62167219200LL)
		s = -62167219200LL;
	else if (s > 253402300799LL)
		s = 253402300799LL;
	days = (s >= 0 ? s : s - 86399) / 86400;
	sod = (unsigned)(s - days * 86400);
	civil_from_days(days, &y, &m, &d);
	buf[0] = (char)('0' + y / 1000);
	buf[1] = (char)('0' + y / 100 % 10);
	two(buf + 2, (unsigned)(y % 100));
	buf[4] = '-';
	two(buf + 5, m);
	buf[7] = '-';
	two(buf + 8, d);
	buf[10] = 'T';
	two(buf + 11, sod / 3600);
	buf[13] = ':';
	two(buf + 14, sod / 60 % 60);
	buf[16] = ':';
	two(buf + 17, sod % 60);
	buf[19] = 'Z';
	buf[20] = '\0';
	return buf;
}

double pex_time_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
