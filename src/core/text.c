/* UTF-8 / XML 1.0 text hygiene; see text.h. */
#include "core/text.h"

#include <string.h>

#include "portex/error.h"

size_t pex_utf8_decode(const unsigned char *s, size_t len, unsigned *cp)
{
	unsigned c = s[0];
	size_t n, i;
	unsigned v, min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		v = c & 0x1F;
		min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		v = c & 0x0F;
		min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		v = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return n;
}

static int xml_allowed(unsigned cp)
{
	if (cp < 0x20)
		return cp == 0x9 || cp == 0xA || cp == 0xD;
	if (cp >= 0xD800 && cp <= 0xDFFF)
		return 0;
	return cp != 0xFFFE && cp != 0xFFFF;
}

int pex_text_is_clean(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;
	unsigned cp;

	while (i < len) {
		if (p[i] >= 0x20 && p[i] < 0x80) {
			i++;
			continue;
		}
		n = pex_utf8_decode(p + i, len - i, &cp);
		if (!n || !xml_allowed(cp))
			return 0;
		i += n;
	}
	return 1;
}

void pex_utf8_mend(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t len = strlen(s), i = 0, n;
	unsigned cp;

	while (i < len) {
		n = pex_utf8_decode(p + i, len - i, &cp);
		if (!n) {
			p[i++] = '?';
			continue;
		}
		i += n;
	}
}

long pex_text_sanitize(const char *s, size_t len, struct pex_buf *out)
{
	static const char repl[] = "\xEF\xBF\xBD";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, start = 0, n;
	unsigned cp;
	long count = 0;
	int rc;

	pex_buf_reset(out);
	while (i < len) {
		if (p[i] >= 0x20 && p[i] < 0x80) {
			i++;
			continue;
		}
		n = pex_utf8_decode(p + i, len - i, &cp);
		if (n && xml_allowed(cp)) {
			i += n;
			continue;
		}
		rc = pex_buf_append(out, s + start, i - start);
		if (!rc)
			rc = pex_buf_append(out, repl, 3);
		if (rc)
			return rc;
		count++;
		i += n ? n : 1;
		start = i;
	}
	rc = pex_buf_append(out, s + start, len - start);
	if (rc)
		return rc;
	return count;
}
