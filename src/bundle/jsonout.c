/* JSON model to compact JSON text; see jsonout.h. */
#include "bundle/jsonout.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"
#include "portex/error.h"

/* What each ASCII byte becomes inside a string: 0 itself, 1 a \u00XX
 * escape, else the letter after the backslash. */
static const char esc[128] = {
	1,   1,   1,   1,   1,   1,   1,   1,   'b', 't', 'n', 1,   'f', 'r',
	1,   1,   1,   1,   1,   1,   1,   1,   1,   1,   1,   1,   1,   1,
	1,   1,   1,   1,   0,   0,   '"', [92] = '\\',
};

static int put_string(struct pex_buf *out, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, start = 0;
	int rc = pex_buf_putc(out, '"');

	while (!rc && i < len) {
		unsigned c = s[i], cp;
		char seq[8];
		size_t n;

		if (c >= 0x80) {
			n = pex_utf8_decode(s + i, len - i, &cp);
			if (!n)
				return pex_error_set(PEX_EINVALID,
						     "a string is not valid "
						     "UTF-8 (byte %zu)", i);
			i += n;
			continue;
		}
		if (!esc[c]) {
			i++;
			continue;
		}
		rc = pex_buf_append(out, str + start, i - start);
		if (rc)
			break;
		if (esc[c] == 1) {
			snprintf(seq, sizeof(seq), "\\u%04X", c);
			rc = pex_buf_append(out, seq, 6);
		} else {
			seq[0] = '\\';
			seq[1] = esc[c];
			rc = pex_buf_append(out, seq, 2);
		}
		start = ++i;
	}
	if (!rc)
		rc = pex_buf_append(out, str + start, len - start);
	return rc ? rc : pex_buf_putc(out, '"');
}

static int put_integer(struct pex_buf *out, json_int_t v)
{
	char num[24], *p = num + sizeof(num);
	/* the magnitude, as unsigned so the most negative value works */
	unsigned long long m = v < 0 ? 0ull - (unsigned long long)v
				     : (unsigned long long)v;

	do {
		*--p = (char)('0' + m % 10);
		m /= 10;
	} while (m);
	if (v < 0)
		*--p = '-';
	return pex_buf_append(out, p, (size_t)(num + sizeof(num) - p));
}

static int put_real(struct pex_buf *out, const json_t *v)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	int rc;

	if (!s)
		return pex_error_set(PEX_EINVALID, "a number jansson cannot "
				     "write (not finite?)");
	rc = pex_buf_append(out, s, strlen(s));
	free(s);
	return rc;
}

static int put_value(struct pex_buf *out, const json_t *v, int depth)
{
	const char *key;
	json_t *child;
	size_t i;
	int rc, first = 1;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return put_string(out, json_string_value(v),
				  json_string_length(v));
	case JSON_INTEGER:
		return put_integer(out, json_integer_value(v));
	case JSON_REAL:
		return put_real(out, v);
	case JSON_TRUE:
		return pex_buf_append(out, "true", 4);
	case JSON_FALSE:
		return pex_buf_append(out, "false", 5);
	case JSON_NULL:
		return pex_buf_append(out, "null", 4);
	default:
		break;
	}
	if (depth >= PEX_JSON_MAX_DEPTH)
		return pex_error_set(PEX_EINVALID, "a value nested more than "
				     "%d deep (or holding itself)",
				     PEX_JSON_MAX_DEPTH);
	if (json_is_array(v)) {
		rc = pex_buf_putc(out, '[');
		json_array_foreach(v, i, child) {
			if (!rc && !first)
				rc = pex_buf_putc(out, ',');
			if (!rc)
				rc = put_value(out, child, depth + 1);
			if (rc)
				return rc;
			first = 0;
		}
		return rc ? rc : pex_buf_putc(out, ']');
	}
	rc = pex_buf_putc(out, '{');
	json_object_foreach((json_t *)v, key, child) {
		if (!rc && !first)
			rc = pex_buf_putc(out, ',');
		if (!rc)
			rc = put_string(out, key, strlen(key));
		if (!rc)
			rc = pex_buf_putc(out, ':');
		if (!rc)
			rc = put_value(out, child, depth + 1);
		if (rc)
			return rc;
		first = 0;
	}
	return rc ? rc : pex_buf_putc(out, '}');
}

int pex_json_write(struct pex_buf *out, const json_t *v)
{
	if (!v)
		return pex_error_set(PEX_EUSAGE, "no value to write");
	return put_value(out, v, 0);
}
