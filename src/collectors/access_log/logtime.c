/* Access-log time stamps; see logtime.h. Hand-written because the
 * library routines do not fit the hot path: strptime() depends on the
 * locale, cannot apply a "-0700" offset portably and is several times
 * slower than reading fixed positions; timegm() is replaced by the
 * closed-form day count below for the same reason. */
#include "collectors/access_log/logtime.h"

#include <stdbool.h>

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* n digits at s (the caller checked the length); -1 on a non-digit. */
static inline int digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static int days_in_month(int y, int m)
{
	static const unsigned char dm[12] = {31, 28, 31, 30, 31, 30,
					     31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dm[m - 1];
}

int64_t pex_logtime_days(int64_t y, int m, int d)
{
	/* Count from 0000-03-01 so that the leap day falls at the end of
	 * the counted year; 719468 is the number of days from there to
	 * 1970-01-01. Valid for y >= 0, which the callers ensure. */
	if (m <= 2)
		y -= 1;
	int64_t era = y / 400;
	int64_t yoe = y - era * 400;
	int mp = m > 2 ? m - 3 : m + 9;
	int64_t doy = (153 * mp + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

static bool valid_ymdhms(int y, int mo, int d, int h, int mi, int s)
{
	if (y < 1 || mo < 1 || mo > 12 || d < 1)
		return false;
	if (d > days_in_month(y, mo))
		return false;
	/* 60 is a leap second as some servers print it. */
	return h >= 0 && h <= 23 && mi >= 0 && mi <= 59 && s >= 0 && s <= 60;
}

static time_t make_time(int y, int mo, int d, int h, int mi, int s,
			int32_t off)
{
	int64_t t = pex_logtime_days(y, mo, d) * 86400 + h * 3600 + mi * 60 +
		    s - off;

	return (time_t)t;
}

static int month_index(const char *s)
{
	/* Fold to lower case and compare the three letters as one int. */
	unsigned a = (unsigned char)s[0] | 0x20;
	unsigned b = (unsigned char)s[1] | 0x20;
	unsigned c = (unsigned char)s[2] | 0x20;
	unsigned k = a << 16 | b << 8 | c;

	switch (k) {
	case 'j' << 16 | 'a' << 8 | 'n': return 1;
	case 'f' << 16 | 'e' << 8 | 'b': return 2;
	case 'm' << 16 | 'a' << 8 | 'r': return 3;
	case 'a' << 16 | 'p' << 8 | 'r': return 4;
	case 'm' << 16 | 'a' << 8 | 'y': return 5;
	case 'j' << 16 | 'u' << 8 | 'n': return 6;
	case 'j' << 16 | 'u' << 8 | 'l': return 7;
	case 'a' << 16 | 'u' << 8 | 'g': return 8;
	case 's' << 16 | 'e' << 8 | 'p': return 9;
	case 'o' << 16 | 'c' << 8 | 't': return 10;
	case 'n' << 16 | 'o' << 8 | 'v': return 11;
	case 'd' << 16 | 'e' << 8 | 'c': return 12;
	default: return 0;
	}
}

/* "+hhmm" / "+hh:mm" / "+hh" at s; returns bytes used or 0. */
static size_t zone(const char *s, size_t len, bool colon_ok, int32_t *off)
{
	int sign, hh, mm = 0;
	size_t used;

	if (len < 3 || (s[0] != '+' && s[0] != '-'))
		return 0;
	sign = s[0] == '-' ? -1 : 1;
	hh = digits(s + 1, 2);
	if (hh < 0)
		return 0;
	used = 3;
	if (len >= 5 && is_digit(s[3])) {
		mm = digits(s + 3, 2);
		used = 5;
	} else if (colon_ok && len >= 6 && s[3] == ':') {
		mm = digits(s + 4, 2);
		used = 6;
	} else if (!colon_ok) {
		return 0;
	}
	if (mm < 0 || hh > 23 || mm > 59)
		return 0;
	*off = sign * (hh * 3600 + mm * 60);
	return used;
}

size_t pex_logtime_clf(const char *s, size_t len, struct pex_logtime *out)
{
	int d, mo, y, h, mi, sec;
	int32_t off;

	if (len < 26 || s[2] != '/' || s[6] != '/' || s[11] != ':' ||
	    s[14] != ':' || s[17] != ':' || s[20] != ' ')
		return 0;
	d = digits(s, 2);
	mo = month_index(s + 3);
	y = digits(s + 7, 4);
	h = digits(s + 12, 2);
	mi = digits(s + 15, 2);
	sec = digits(s + 18, 2);
	if (d < 0 || y < 0 || h < 0 || mi < 0 || sec < 0 || mo == 0)
		return 0;
	if (!valid_ymdhms(y, mo, d, h, mi, sec))
		return 0;
	if (zone(s + 21, 5, false, &off) != 5)
		return 0;
	out->sec = make_time(y, mo, d, h, mi, sec, off);
	out->usec = 0;
	out->tz_offset = off;
	return 26;
}

/* ".ddd..." at s: up to 9 digits, kept to microseconds. */
static size_t fraction(const char *s, size_t len, uint32_t *usec)
{
	size_t i = 1;
	uint32_t v = 0;
	int n = 0;

	if (len < 2 || s[0] != '.' || !is_digit(s[1]))
		return 0;
	while (i < len && is_digit(s[i])) {
		if (++n > 9)
			return 0;
		if (n <= 6)
			v = v * 10 + (uint32_t)(s[i] - '0');
		i++;
	}
	for (; n < 6; n++)
		v *= 10;
	*usec = v;
	return i;
}

size_t pex_logtime_iso8601(const char *s, size_t len,
			   struct pex_logtime *out)
{
	int y, mo, d, h, mi, sec;
	uint32_t usec = 0;
	int32_t off = 0;
	size_t pos = 19, n;

	if (len < 20 || s[4] != '-' || s[7] != '-' ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' ||
	    s[16] != ':')
		return 0;
	y = digits(s, 4);
	mo = digits(s + 5, 2);
	d = digits(s + 8, 2);
	h = digits(s + 11, 2);
	mi = digits(s + 14, 2);
	sec = digits(s + 17, 2);
	if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || sec < 0)
		return 0;
	if (!valid_ymdhms(y, mo, d, h, mi, sec))
		return 0;
	if (s[pos] == '.') {
		n = fraction(s + pos, len - pos, &usec);
		if (n == 0)
			return 0;
		pos += n;
	}
	if (pos < len && (s[pos] == 'Z' || s[pos] == 'z')) {
		pos++;
	} else {
		n = zone(s + pos, len - pos, true, &off);
		if (n == 0)
			return 0;
		pos += n;
	}
	out->sec = make_time(y, mo, d, h, mi, sec, off);
	out->usec = usec;
	out->tz_offset = off;
	return pos;
}

size_t pex_logtime_epoch(const char *s, size_t len, struct pex_logtime *out)
{
	size_t i = 0, n;
	int64_t v = 0;
	uint32_t usec = 0;

	while (i < len && is_digit(s[i])) {
		if (i == 12)
			return 0;
		v = v * 10 + (s[i] - '0');
		i++;
	}
	if (i == 0)
		return 0;
	if (i < len && s[i] == '.') {
		n = fraction(s + i, len - i, &usec);
		if (n == 0)
			return 0;
		i += n;
	}
	out->sec = (time_t)v;
	out->usec = usec;
	out->tz_offset = 0;
	return i;
}
