/*
 * libFuzzer target: arbitrary bytes as a CSV file for the streaming reader
 * (src/collectors/csv/csv_reader.h). The first two bytes choose the
 * reader's shape: the size of the chunks the input arrives in (so buffer
 * boundaries fall anywhere), the delimiter, the declared encoding and
 * small limits, so the limit paths are reached too. Every record read is
 * checked against the header's promises: NUL-terminated values of the
 * stated length without NUL bytes, valid UTF-8, one field count, lines
 * that never go backwards.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* The build gives fuzz targets include/ only; the reader's header is
 * reached relative to this file. */
#include "collectors/csv/csv_reader.h"
#include "portex/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct src {
	const uint8_t *data;
	size_t len;
	size_t pos;
	size_t chunk;
};

static ssize_t src_read(void *p, void *buf, size_t n)
{
	struct src *s = p;
	size_t k = s->len - s->pos;

	if (k > n)
		k = n;
	if (k > s->chunk)
		k = s->chunk;
	memcpy(buf, s->data + s->pos, k);
	s->pos += k;
	return (ssize_t)k;
}

/* An oracle of its own, independent of the reader's: strict UTF-8 (no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
static int valid_utf8(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, n, k;
	unsigned long cp, min;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xC2 && s[i] <= 0xDF) {
			n = 2, cp = s[i] & 0x1F, min = 0x80;
		} else if (s[i] >= 0xE0 && s[i] <= 0xEF) {
			n = 3, cp = s[i] & 0x0F, min = 0x800;
		} else if (s[i] >= 0xF0 && s[i] <= 0xF4) {
			n = 4, cp = s[i] & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (len - i < n)
			return 0;
		for (k = 1; k < n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += n;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const encodings[] = { NULL, "utf-8",
						 "windows-1252", "utf-16" };
	static const char delims[] = { 0, ';', '\t', '|' };
	struct pex_csv_options opt = { 0 };
	struct pex_csv_reader *r = NULL;
	struct pex_csv_record rec;
	struct src s;
	size_t nfields = 0, i;
	unsigned long last_line = 0;
	int rc, again;

	if (size < 2)
		return 0;
	s.data = data + 2;
	s.len = size - 2;
	s.pos = 0;
	s.chunk = (size_t)(data[0] & 0x0F) + 1;
	if (data[0] & 0x10)
		s.chunk = 4096;
	opt.name = "fuzz.csv";
	opt.delimiter = delims[data[1] & 3];
	opt.encoding = encodings[(data[1] >> 2) & 3];
	if (data[1] & 0x10) {
		opt.max_field = 64;
		opt.max_record = 256;
		opt.max_fields = 8;
	}
	if (pex_csv_reader_new(&r, src_read, &s, &opt))
		abort(); /* every option chosen above is valid */
	while ((rc = pex_csv_reader_next(r, &rec)) == 1) {
		if (!nfields)
			nfields = rec.nfields;
		if (rec.nfields != nfields || !rec.nfields ||
		    rec.line < last_line || !rec.line)
			abort();
		last_line = rec.line;
		for (i = 0; i < rec.nfields; i++) {
			const struct pex_csv_field *f = &rec.fields[i];

			if (!f->value || f->value[f->len] != '\0' ||
			    strlen(f->value) != f->len ||
			    !valid_utf8(f->value, f->len))
				abort();
			if (opt.max_field && f->len > opt.max_field)
				abort();
		}
	}
	if (rc < 0) {
		if (rc != PEX_EINVALID && rc != PEX_ELIMIT)
			abort();
		if (!strstr(pex_error_last(), "fuzz.csv"))
			abort();
		/* errors are sticky */
		again = pex_csv_reader_next(r, &rec);
		if (again != rc)
			abort();
	}
	pex_csv_reader_free(r);
	return 0;
}
