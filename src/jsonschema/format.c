/*
 * "format" checks for draft-07: date-time, date, time (RFC 3339), email
 * (RFC 5321 mailbox, ASCII), hostname (RFC 1123), ipv4, ipv6 (inet_pton),
 * uri, uri-reference (RFC 3986 grammar), json-pointer (RFC 6901),
 * relative-json-pointer, regex (compiles with PCRE2 as "pattern" does),
 * uuid (RFC 4122 text form), plus the base64 check behind
 * contentEncoding. Every check reads only the len bytes it is given and
 * allocates nothing, except regex (PCRE2 compile) and base64 decoding
 * (only when the caller asks for the bytes; caller frees them).
 */
#include "jsonschema/js_internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	int fmt;
} formats[] = {
	{"date-time", FMT_DATE_TIME},
	{"date", FMT_DATE},
	{"time", FMT_TIME},
	{"email", FMT_EMAIL},
	{"hostname", FMT_HOSTNAME},
	{"ipv4", FMT_IPV4},
	{"ipv6", FMT_IPV6},
	{"uri", FMT_URI},
	{"uri-reference", FMT_URI_REFERENCE},
	{"json-pointer", FMT_JSON_POINTER},
	{"relative-json-pointer", FMT_REL_JSON_POINTER},
	{"regex", FMT_REGEX},
	{"uuid", FMT_UUID},
	{"idn-email", FMT_IDN_EMAIL},
	{"idn-hostname", FMT_IDN_HOSTNAME},
	{"iri", FMT_IRI},
	{"iri-reference", FMT_IRI_REFERENCE},
	{"uri-template", FMT_URI_TEMPLATE},
};

int pex_js_format_lookup(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (!strcmp(name, formats[i].name))
			return formats[i].fmt;
	return FMT_NONE; /* unknown formats are annotations */
}

const char *pex_js_format_name(int fmt)
{
	size_t i;

	for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (formats[i].fmt == fmt)
			return formats[i].name;
	return "?";
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* n digits at s -> value, or -1. */
static int digits(const char *s, size_t n)
{
	int v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static int check_date(const char *s, size_t len)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31};
	int y, m, d, max;

	if (len != 10 || s[4] != '-' || s[7] != '-')
		return 0;
	y = digits(s, 4);
	m = digits(s + 5, 2);
	d = digits(s + 8, 2);
	if (y < 0 || m < 1 || m > 12 || d < 1)
		return 0;
	max = mdays[m - 1];
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		max = 29;
	return d <= max;
}

/* RFC 3339 full-time: HH:MM:SS[.frac](Z|+HH:MM|-HH:MM). */
static int check_time(const char *s, size_t len)
{
	int h, m, sec, oh = 0, om = 0, sign = 0;
	size_t i = 8;

	if (len < 9 || s[2] != ':' || s[5] != ':')
		return 0;
	h = digits(s, 2);
	m = digits(s + 3, 2);
	sec = digits(s + 6, 2);
	if (h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 60)
		return 0;
	if (s[i] == '.') {
		i++;
		if (i >= len || !is_digit(s[i]))
			return 0;
		while (i < len && is_digit(s[i]))
			i++;
	}
	if (i >= len)
		return 0;
	if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
		sign = 0;
	} else if ((s[i] == '+' || s[i] == '-') && len - i == 6 &&
		   s[i + 3] == ':') {
		sign = s[i] == '+' ? 1 : -1;
		oh = digits(s + i + 1, 2);
		om = digits(s + i + 4, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return 0;
	} else {
		return 0;
	}
	if (sec == 60) {
		/* a leap second exists only at 23:59:60 UTC */
		int utc = (h * 60 + m - sign * (oh * 60 + om)) % 1440;

		if (utc < 0)
			utc += 1440;
		if (utc != 23 * 60 + 59)
			return 0;
	}
	return 1;
}

static int check_date_time(const char *s, size_t len)
{
	if (len < 20 || (s[10] != 'T' && s[10] != 't'))
		return 0;
	return check_date(s, 10) && check_time(s + 11, len - 11);
}

/* idn: also accept UTF-8 labels (U-labels). Their A-label form is
 * "xn--" plus at least one character per code point, so a U-label of
 * more than 59 code points cannot fit the 63-octet limit. The IDNA2008
 * code point tables and contextual rules are not checked. */
static int check_hostname_idn(const char *s, size_t len, int idn)
{
	size_t i, label = 0, cps = 0;
	int wide = 0;

	if (len == 0 || (!idn && len > 253))
		return 0;
	for (i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)s[i] : '.';

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			if (wide && cps > 59)
				return 0;
			label = cps = 0;
			wide = 0;
			continue;
		}
		if (c >= 0x80 && idn) {
			wide = 1;
			cps += (c & 0xc0) != 0x80;
			label++;
			continue;
		}
		if (!is_alpha((char)c) && !is_digit((char)c) && c != '-')
			return 0;
		if (c == '-' && label == 0)
			return 0;
		cps++;
		if (++label > 63 && !wide)
			return 0;
	}
	return 1;
}

static int check_hostname(const char *s, size_t len)
{
	return check_hostname_idn(s, len, 0);
}

static int check_ip(int af, const char *s, size_t len)
{
	char buf[INET6_ADDRSTRLEN + 1];
	unsigned char out[16];

	if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len))
		return 0;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(af, buf, out) == 1;
}

static int is_atext(char c)
{
	return is_alpha(c) || is_digit(c) ||
	       (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static int check_email_idn(const char *s, size_t len, int idn)
{
	const char *at = NULL, *dom;
	size_t i, llen, dlen;

	for (i = len; i > 0; i--) {
		if (s[i - 1] == '@') {
			at = s + i - 1;
			break;
		}
	}
	if (!at)
		return 0;
	llen = (size_t)(at - s);
	dom = at + 1;
	dlen = len - llen - 1;
	if (llen == 0 || llen > 64 || dlen == 0)
		return 0;
	if (s[0] == '"') {
		/* quoted local part: printable ASCII, \-escapes */
		if (llen < 2 || s[llen - 1] != '"')
			return 0;
		for (i = 1; i + 1 < llen; i++) {
			if (s[i] == '\\') {
				i++;
				if (i + 1 >= llen)
					return 0;
				continue;
			}
			if (s[i] == '"' || (unsigned char)s[i] < 0x20 ||
			    (unsigned char)s[i] > 0x7e)
				return 0;
		}
	} else {
		for (i = 0; i < llen; i++) {
			if (s[i] == '.') {
				if (i == 0 || i + 1 == llen || s[i + 1] == '.')
					return 0;
			} else if (!is_atext(s[i]) &&
				   !(idn && (unsigned char)s[i] >= 0x80)) {
				return 0;
			}
		}
	}
	if (dom[0] == '[') {
		if (dom[dlen - 1] != ']' || dlen < 3)
			return 0;
		if (dlen > 6 && !strncmp(dom + 1, "IPv6:", 5))
			return check_ip(AF_INET6, dom + 6, dlen - 7);
		return check_ip(AF_INET, dom + 1, dlen - 2);
	}
	return check_hostname_idn(dom, dlen, idn);
}

/* RFC 3986 character classes. */
static int is_unreserved(char c)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '.' ||
	       c == '_' || c == '~';
}

static int is_subdelim(char c)
{
	return c && strchr("!$&'()*+,;=", c) != NULL;
}

/* Accept chars from the class (unreserved, sub-delims, pct-encoded, and
 * the extra characters in more) over s[i..end). */
static int uri_chars(const char *s, size_t i, size_t end, const char *more,
		     int iri)
{
	for (; i < end; i++) {
		char c = s[i];

		/* IRIs (RFC 3987) add the non-ASCII characters */
		if (iri && (unsigned char)c >= 0x80)
			continue;
		if (c == '%') {
			if (i + 2 >= end)
				return 0;
			if (!is_hex(s[i + 1]) || !is_hex(s[i + 2]))
				return 0;
			i += 2;
			continue;
		}
		if (is_unreserved(c) || is_subdelim(c))
			continue;
		if (c && strchr(more, c))
			continue;
		return 0;
	}
	return 1;
}

static int check_authority(const char *s, size_t a, size_t e, int iri)
{
	size_t at = SIZE_MAX, i, hs, he;

	for (i = a; i < e; i++)
		if (s[i] == '@')
			at = i;
	if (at != SIZE_MAX) {
		if (!uri_chars(s, a, at, ":", iri))
			return 0;
		hs = at + 1;
	} else {
		hs = a;
	}
	if (hs < e && s[hs] == '[') {
		for (he = hs; he < e && s[he] != ']'; he++)
			;
		if (he >= e)
			return 0;
		if (he > hs + 1 && (s[hs + 1] == 'v' || s[hs + 1] == 'V')) {
			if (!uri_chars(s, hs + 1, he, ":", 0))
				return 0;
		} else if (!check_ip(AF_INET6, s + hs + 1, he - hs - 1)) {
			return 0;
		}
		he++;
	} else {
		for (he = hs; he < e && s[he] != ':'; he++)
			;
		if (!uri_chars(s, hs, he, "", iri))
			return 0;
	}
	if (he < e) {
		if (s[he] != ':')
			return 0;
		for (i = he + 1; i < e; i++)
			if (!is_digit(s[i]))
				return 0;
	}
	return 1;
}

static int check_uri(const char *s, size_t len, int need_scheme, int iri)
{
	size_t i = 0, e;

	if (memchr(s, '\0', len))
		return 0;
	/* scheme, if a ':' comes before any of "/?#" */
	e = 0;
	while (e < len && !strchr("/?#:", s[e]))
		e++;
	if (e < len && s[e] == ':') {
		if (e == 0 || !is_alpha(s[0]))
			return 0;
		for (i = 1; i < e; i++)
			if (!is_alpha(s[i]) && !is_digit(s[i]) &&
			    !strchr("+-.", s[i]))
				return 0;
		i = e + 1;
	} else if (need_scheme) {
		return 0;
	}
	if (len - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
		i += 2;
		for (e = i; e < len && !strchr("/?#", s[e]); e++)
			;
		if (!check_authority(s, i, e, iri))
			return 0;
		i = e;
	}
	for (e = i; e < len && s[e] != '?' && s[e] != '#'; e++)
		;
	if (!uri_chars(s, i, e, ":@/", iri))
		return 0;
	i = e;
	if (i < len && s[i] == '?') {
		for (e = i + 1; e < len && s[e] != '#'; e++)
			;
		if (!uri_chars(s, i + 1, e, ":@/?", iri))
			return 0;
		i = e;
	}
	if (i < len && s[i] == '#') {
		if (!uri_chars(s, i + 1, len, ":@/?", iri))
			return 0;
	}
	return 1;
}

static int check_json_pointer(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return 1;
	if (s[0] != '/')
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '~' &&
		    (i + 1 >= len || (s[i + 1] != '0' && s[i + 1] != '1')))
			return 0;
	}
	return 1;
}

static int check_rel_json_pointer(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && is_digit(s[i]))
		i++;
	if (i == 0 || (s[0] == '0' && i > 1))
		return 0;
	if (i == len)
		return 1;
	if (s[i] == '#')
		return i + 1 == len;
	return check_json_pointer(s + i, len - i);
}

/* ECMA-262 lacks several PCRE escapes; "format": "regex" means an
 * ECMA-262 regex, so refuse those (outside and inside classes). */
static int ecma_escapes_ok(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (s[i] != '\\')
			continue;
		i++;
		if (strchr("AZzGQEKRhHXCNaeglLoU", s[i]) && s[i])
			return 0;
	}
	return 1;
}

static int check_regex(const char *s, size_t len)
{
	int err;
	PCRE2_SIZE off;
	pcre2_code *re;

	if (!ecma_escapes_ok(s, len))
		return 0;
	re = pcre2_compile((PCRE2_SPTR)s, len,
			   PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX,
			   &err, &off, NULL);
	if (!re)
		return 0;
	pcre2_code_free(re);
	return 1;
}

/* RFC 6570: literals and {expressions}, braces balanced, not nested. */
static int check_uri_template(const char *s, size_t len)
{
	size_t i;
	int open = 0, empty = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '{') {
			if (open)
				return 0;
			open = 1;
			empty = 1;
		} else if (c == '}') {
			if (!open || empty)
				return 0;
			open = 0;
		} else if (open) {
			if (!is_alpha((char)c) && !is_digit((char)c) &&
			    (!c || !strchr("_.,:*%+#./;?&=!@|$", c)))
				return 0;
			empty = 0;
		} else if (c <= 0x20 || strchr("\"'<>\\^`|", c)) {
			return 0;
		}
	}
	return !open;
}

static int check_uuid(const char *s, size_t len)
{
	size_t i;

	if (len != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!is_hex(s[i])) {
			return 0;
		}
	}
	return 1;
}

int pex_js_format_check(int fmt, const char *s, size_t len)
{
	switch (fmt) {
	case FMT_DATE_TIME:
		return check_date_time(s, len);
	case FMT_DATE:
		return check_date(s, len);
	case FMT_TIME:
		return check_time(s, len);
	case FMT_EMAIL:
		return check_email_idn(s, len, 0);
	case FMT_HOSTNAME:
		return check_hostname(s, len);
	case FMT_IPV4:
		return check_ip(AF_INET, s, len);
	case FMT_IPV6:
		return check_ip(AF_INET6, s, len);
	case FMT_URI:
		return check_uri(s, len, 1, 0);
	case FMT_URI_REFERENCE:
		return check_uri(s, len, 0, 0);
	case FMT_IRI:
		return check_uri(s, len, 1, 1);
	case FMT_IRI_REFERENCE:
		return check_uri(s, len, 0, 1);
	case FMT_IDN_EMAIL:
		return check_email_idn(s, len, 1);
	case FMT_IDN_HOSTNAME:
		return check_hostname_idn(s, len, 1);
	case FMT_URI_TEMPLATE:
		return check_uri_template(s, len);
	case FMT_JSON_POINTER:
		return check_json_pointer(s, len);
	case FMT_REL_JSON_POINTER:
		return check_rel_json_pointer(s, len);
	case FMT_REGEX:
		return check_regex(s, len);
	case FMT_UUID:
		return check_uuid(s, len);
	default:
		return 1;
	}
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (is_digit(c))
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int pex_js_base64_check(const char *s, size_t len, unsigned char **out,
			size_t *out_len)
{
	unsigned char *buf = NULL;
	size_t i, o = 0, pad = 0;

	if (len % 4)
		return 0;
	if (len >= 1 && s[len - 1] == '=')
		pad++;
	if (len >= 2 && s[len - 2] == '=')
		pad++;
	if (out) {
		buf = malloc(len / 4 * 3 + 1);
		if (!buf)
			return 0;
	}
	for (i = 0; i < len; i += 4) {
		int v[4], k;
		unsigned long w;

		for (k = 0; k < 4; k++) {
			v[k] = b64val(s[i + k]);
			if (v[k] < 0) {
				if (s[i + k] != '=' || i + 4 != len ||
				    k < 4 - (int)pad)
					goto bad;
				v[k] = 0;
			}
		}
		w = ((unsigned long)v[0] << 18) | ((unsigned long)v[1] << 12) |
		    ((unsigned long)v[2] << 6) | (unsigned long)v[3];
		if (buf) {
			buf[o++] = (unsigned char)(w >> 16);
			buf[o++] = (unsigned char)(w >> 8);
			buf[o++] = (unsigned char)w;
		}
	}
	if (buf) {
		*out = buf;
		*out_len = o - pad;
	}
	return 1;
bad:
	free(buf);
	return 0;
}
