/* Streaming RFC 4180 reader; see csv_reader.h for the contract. */
#include "collectors/csv/csv_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "portex/error.h"

/* Input and conversion buffers. Fixed: memory does not grow with the
 * file. The conversion buffer must hold a few whole characters at least. */
#define RAW_SIZE 65536u
#define DEC_SIZE 65536u
#define ERRMSG_MAX 1024u

enum parse_state {
	ST_FIELD_START,
	ST_UNQUOTED,
	ST_QUOTED,
	ST_QUOTE_SEEN, /* a quote inside a quoted field: end or "" */
};

enum pending_error {
	PEND_NONE,
	PEND_ILSEQ, /* iconv: byte sequence invalid in the declared encoding */
	PEND_TRUNC, /* iconv: incomplete sequence at end of file */
	PEND_OTHER,
};

struct field_loc {
	size_t off;
	size_t len;
};

struct pex_csv_reader {
	char *name;
	pex_csv_read_fn read_fn;
	void *read_data;
	int fd; /* owned when >= 0 */

	char sep;
	size_t nfields_expected;
	int nfields_given; /* by the caller, not by the first record */
	size_t max_field;
	size_t max_record;
	size_t max_fields;

	/* Conversion (only when an encoding other than UTF-8 is declared). */
	int convert;
	iconv_t cd;
	char *encoding;
	unsigned char *raw;
	size_t raw_pos;
	size_t raw_len;
	unsigned long long raw_base; /* file offset of raw[0] */
	int raw_eof;
	int flushed;
	enum pending_error pending;
	int pending_errno;
	unsigned long long pending_off;

	/* Decoded UTF-8 bytes handed to the parser. */
	unsigned char *dec;
	size_t dec_pos;
	size_t dec_len;
	unsigned long long dec_base; /* stream offset of dec[0] */
	int eof;

	/* UTF-8 validation carried across buffer boundaries. */
	unsigned need;
	unsigned char lo;
	unsigned char hi;
	unsigned long cp;
	unsigned long long seq_off;

	/* Parser. */
	enum parse_state state;
	unsigned long line;
	unsigned long quote_line;
	int skip_lf;
	size_t rec_bytes;
	char *buf;
	size_t buf_len;
	size_t buf_cap;
	size_t data_bytes;
	size_t field_start;
	struct field_loc *locs;
	size_t nlocs;
	size_t locs_cap;
	struct pex_csv_field *out;
	size_t out_cap;

	int error;
	char errmsg[ERRMSG_MAX];
};

int pex_csv_encoding_is_utf8(const char *encoding)
{
	return encoding == NULL || encoding[0] == '\0' ||
	       strcasecmp(encoding, "utf-8") == 0 ||
	       strcasecmp(encoding, "utf8") == 0;
}

int pex_csv_encoding_check(const char *encoding)
{
	iconv_t cd;

	if (pex_csv_encoding_is_utf8(encoding))
		return 0;
	cd = iconv_open("UTF-8", encoding);
	if (cd == (iconv_t)-1)
		return pex_error_set(PEX_EINVALID,
				     "unknown encoding '%s' (iconv has no "
				     "converter from it to UTF-8)",
				     encoding);
	iconv_close(cd);
	return 0;
}

/* Record a sticky error: every later call reports the same failure. */
static int fail(pex_csv_reader *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(pex_csv_reader *r, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pex_error_setv(code, fmt, ap);
	va_end(ap);
	snprintf(r->errmsg, sizeof(r->errmsg), "%s", pex_error_last());
	r->error = code;
	return code;
}

static ssize_t fd_read(void *data, void *buf, size_t n)
{
	const int *fd = data;

	return read(*fd, buf, n);
}

static ssize_t do_read(pex_csv_reader *r, void *buf, size_t n)
{
	ssize_t got;

	do {
		got = r->read_fn(r->read_data, buf, n);
	} while (got < 0 && errno == EINTR);
	return got;
}

static int read_error(pex_csv_reader *r)
{
	return fail(r, PEX_EIO, "%s:%lu: read failed: %s", r->name, r->line,
		    strerror(errno));
}

static int report_pending(pex_csv_reader *r)
{
	switch (r->pending) {
	case PEND_ILSEQ:
		return fail(r, PEX_EINVALID,
			    "%s:%lu: byte sequence at byte offset %llu is "
			    "not valid %s",
			    r->name, r->line, r->pending_off, r->encoding);
	case PEND_TRUNC:
		return fail(r, PEX_EINVALID,
			    "%s:%lu: file ends inside a %s character "
			    "(byte offset %llu): truncated file?",
			    r->name, r->line, r->encoding, r->pending_off);
	default:
		return fail(r, PEX_EIO,
			    "%s:%lu: converting from %s failed at byte "
			    "offset %llu: %s",
			    r->name, r->line, r->encoding, r->pending_off,
			    strerror(r->pending_errno));
	}
}

/* Refill r->dec straight from the input (UTF-8 input). */
static int fill_plain(pex_csv_reader *r)
{
	ssize_t got;

	r->dec_base += r->dec_len;
	r->dec_pos = 0;
	r->dec_len = 0;
	got = do_read(r, r->dec, DEC_SIZE);
	if (got < 0)
		return read_error(r);
	r->dec_len = (size_t)got;
	return got > 0;
}

/* Read more raw bytes after what is left in r->raw. */
static int read_raw(pex_csv_reader *r)
{
	ssize_t got;

	if (r->raw_pos > 0) {
		/* Keep an incomplete character for the next iconv call. */
		memmove(r->raw, r->raw + r->raw_pos, r->raw_len - r->raw_pos);
		r->raw_base += r->raw_pos;
		r->raw_len -= r->raw_pos;
		r->raw_pos = 0;
	}
	got = do_read(r, r->raw + r->raw_len, RAW_SIZE - r->raw_len);
	if (got < 0)
		return read_error(r);
	if (got == 0)
		r->raw_eof = 1;
	r->raw_len += (size_t)got;
	return 0;
}

/*
 * Refill r->dec by converting raw input with iconv. A conversion error is
 * kept pending until the parser has consumed the text before it, so the
 * error names the line the bad bytes are on.
 */
static int fill_convert(pex_csv_reader *r)
{
	char *op = (char *)r->dec;
	size_t ol = DEC_SIZE;
	int rc;

	r->dec_base += r->dec_len;
	r->dec_pos = 0;
	r->dec_len = 0;
	if (r->pending != PEND_NONE)
		return report_pending(r);
	for (;;) {
		if (r->raw_pos < r->raw_len) {
			char *ip = (char *)r->raw + r->raw_pos;
			size_t il = r->raw_len - r->raw_pos;
			size_t n = iconv(r->cd, &ip, &il, &op, &ol);
			int e = errno;

			r->raw_pos = (size_t)(ip - (char *)r->raw);
			if (n == (size_t)-1 && e == E2BIG)
				break;
			if (n == (size_t)-1 && e == EINVAL && !r->raw_eof) {
				rc = read_raw(r);
				if (rc < 0)
					return rc;
				continue;
			}
			if (n == (size_t)-1) {
				r->pending = e == EILSEQ ? PEND_ILSEQ
					   : e == EINVAL ? PEND_TRUNC
							 : PEND_OTHER;
				r->pending_errno = e;
				r->pending_off = r->raw_base + r->raw_pos;
				break;
			}
		}
		if (ol < DEC_SIZE)
			break; /* hand over what we have */
		if (r->raw_eof) {
			if (!r->flushed) {
				/* Stateful encodings may emit a last shift. */
				iconv(r->cd, NULL, NULL, &op, &ol);
				r->flushed = 1;
				continue;
			}
			break;
		}
		rc = read_raw(r);
		if (rc < 0)
			return rc;
	}
	r->dec_len = DEC_SIZE - ol;
	if (r->dec_len == 0 && r->pending != PEND_NONE)
		return report_pending(r);
	return r->dec_len > 0;
}

/* Next decoded byte: 1 and *c, 0 at end of input, or an error. */
static inline int next_byte(pex_csv_reader *r, int *c)
{
	int rc;

	if (r->dec_pos == r->dec_len) {
		if (r->eof)
			return 0;
		rc = r->convert ? fill_convert(r) : fill_plain(r);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			r->eof = 1;
			return 0;
		}
	}
	*c = r->dec[r->dec_pos++];
	return 1;
}

static unsigned long long cur_off(const pex_csv_reader *r)
{
	return r->dec_base + r->dec_pos - 1;
}

static int bad_utf8(pex_csv_reader *r, unsigned long long off, int c)
{
	if (off == 0 && (c == 0xFF || c == 0xFE))
		return fail(r, PEX_EINVALID,
			    "%s:1: file starts with a UTF-16/UTF-32 byte "
			    "order mark; set `encoding: utf-16` (or utf-32) "
			    "in the source's options",
			    r->name);
	if (r->convert)
		return fail(r, PEX_EINVALID,
			    "%s:%lu: invalid UTF-8 at byte offset %llu of the "
			    "text converted from %s",
			    r->name, r->line, off, r->encoding);
	return fail(r, PEX_EINVALID,
		    "%s:%lu: not valid UTF-8 at byte offset %llu; if the "
		    "file is in another encoding, declare it (e.g. "
		    "`encoding: windows-1252`)",
		    r->name, r->line, off);
}

/*
 * Check one byte of the UTF-8 stream. Returns 1 when a whole byte order
 * mark at the very start has just been completed (the caller drops it),
 * 0 otherwise, or an error.
 */
static inline int check_utf8(pex_csv_reader *r, int c)
{
	if (r->need == 0) {
		if (c < 0x80) {
			if (c == 0)
				return fail(r, PEX_EINVALID,
					    "%s:%lu: NUL byte at byte offset "
					    "%llu (a binary file, or UTF-16 "
					    "without a byte order mark? "
					    "declare `encoding:`)",
					    r->name, r->line, cur_off(r));
			return 0;
		}
		r->seq_off = cur_off(r);
		r->lo = 0x80;
		r->hi = 0xBF;
		if (c >= 0xC2 && c <= 0xDF) {
			r->need = 1;
			r->cp = (unsigned long)c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			r->need = 2;
			r->cp = (unsigned long)c & 0x0F;
			if (c == 0xE0)
				r->lo = 0xA0; /* no overlong forms */
			else if (c == 0xED)
				r->hi = 0x9F; /* no surrogates */
		} else if (c >= 0xF0 && c <= 0xF4) {
			r->need = 3;
			r->cp = (unsigned long)c & 0x07;
			if (c == 0xF0)
				r->lo = 0x90;
			else if (c == 0xF4)
				r->hi = 0x8F; /* nothing above U+10FFFF */
		} else {
			return bad_utf8(r, r->seq_off, c);
		}
		return 0;
	}
	if (c < r->lo || c > r->hi)
		return bad_utf8(r, r->seq_off, c);
	r->lo = 0x80;
	r->hi = 0xBF;
	r->cp = (r->cp << 6) | ((unsigned long)c & 0x3F);
	r->need--;
	return r->need == 0 && r->seq_off == 0 && r->cp == 0xFEFF;
}

/* Grow the record buffer so that `extra` more bytes fit. */
static int buf_reserve(pex_csv_reader *r, size_t extra)
{
	size_t cap;
	char *p;

	if (r->buf_len + extra <= r->buf_cap)
		return 0;
	cap = r->buf_cap ? r->buf_cap : 256;
	while (cap < r->buf_len + extra)
		cap *= 2;
	p = realloc(r->buf, cap);
	if (p == NULL)
		return fail(r, PEX_ENOMEM, "%s: out of memory", r->name);
	r->buf = p;
	r->buf_cap = cap;
	return 0;
}

static inline int append(pex_csv_reader *r, unsigned long rec_line, int c)
{
	int rc;

	if (r->buf_len - r->field_start >= r->max_field)
		return fail(r, PEX_ELIMIT,
			    "%s:%lu: field %zu is longer than the limit of "
			    "%zu bytes",
			    r->name, rec_line, r->nlocs + 1, r->max_field);
	if (r->data_bytes >= r->max_record)
		return fail(r, PEX_ELIMIT,
			    "%s:%lu: record is longer than the limit of %zu "
			    "bytes",
			    r->name, rec_line, r->max_record);
	if (r->buf_len == r->buf_cap) {
		rc = buf_reserve(r, 1);
		if (rc < 0)
			return rc;
	}
	r->buf[r->buf_len++] = (char)c;
	r->data_bytes++;
	return 0;
}

static int end_field(pex_csv_reader *r, unsigned long rec_line)
{
	int rc;

	if (r->nlocs >= r->max_fields)
		return fail(r, PEX_ELIMIT,
			    "%s:%lu: record has more than the limit of %zu "
			    "fields",
			    r->name, rec_line, r->max_fields);
	if (r->nlocs == r->locs_cap) {
		size_t cap = r->locs_cap ? r->locs_cap * 2 : 16;
		struct field_loc *p;

		if (cap > r->max_fields)
			cap = r->max_fields;
		p = realloc(r->locs, cap * sizeof(*p));
		if (p == NULL)
			return fail(r, PEX_ENOMEM, "%s: out of memory",
				    r->name);
		r->locs = p;
		r->locs_cap = cap;
	}
	r->locs[r->nlocs].off = r->field_start;
	r->locs[r->nlocs].len = r->buf_len - r->field_start;
	r->nlocs++;
	rc = buf_reserve(r, 1);
	if (rc < 0)
		return rc;
	r->buf[r->buf_len++] = '\0';
	r->field_start = r->buf_len;
	r->state = ST_FIELD_START;
	return 0;
}

static int end_record(pex_csv_reader *r, unsigned long rec_line,
		      struct pex_csv_record *rec)
{
	size_t i;

	if (r->nfields_expected == 0) {
		r->nfields_expected = r->nlocs;
	} else if (r->nlocs != r->nfields_expected) {
		return fail(r, PEX_EINVALID,
			    "%s:%lu: record has %zu fields but %s %zu",
			    r->name, rec_line, r->nlocs,
			    r->nfields_given ? "the columns given are"
					     : "the header has",
			    r->nfields_expected);
	}
	if (r->nlocs > r->out_cap) {
		struct pex_csv_field *p;

		p = realloc(r->out, r->nlocs * sizeof(*p));
		if (p == NULL)
			return fail(r, PEX_ENOMEM, "%s: out of memory",
				    r->name);
		r->out = p;
		r->out_cap = r->nlocs;
	}
	for (i = 0; i < r->nlocs; i++) {
		r->out[i].value = r->buf + r->locs[i].off;
		r->out[i].len = r->locs[i].len;
	}
	rec->line = rec_line;
	rec->nfields = r->nlocs;
	rec->fields = r->out;
	return 1;
}

/* CR or LF outside quotes: ends the record, or skips a blank line. */
static int terminator(pex_csv_reader *r, int c, unsigned long *rec_line,
		      struct pex_csv_record *rec, int *done)
{
	int rc;

	r->line++;
	r->skip_lf = c == '\r';
	if (r->rec_bytes == 0) {
		/* A blank line holds no field: skipping it loses nothing. */
		*rec_line = r->line;
		return 0;
	}
	rc = end_field(r, *rec_line);
	if (rc < 0)
		return rc;
	*done = 1;
	return end_record(r, *rec_line, rec);
}

static int at_eof(pex_csv_reader *r, unsigned long rec_line,
		  struct pex_csv_record *rec)
{
	int rc;

	if (r->need > 0)
		return fail(r, PEX_EINVALID,
			    "%s:%lu: file ends inside a UTF-8 character "
			    "(byte offset %llu): truncated file?",
			    r->name, r->line, r->seq_off);
	if (r->state == ST_QUOTED)
		return fail(r, PEX_EINVALID,
			    "%s:%lu: quoted field opened on line %lu is not "
			    "closed at end of file (truncated file or stray "
			    "quote)",
			    r->name, rec_line, r->quote_line);
	if (r->rec_bytes == 0)
		return 0;
	rc = end_field(r, rec_line);
	if (rc < 0)
		return rc;
	r->rec_bytes = 0;
	return end_record(r, rec_line, rec);
}

int pex_csv_reader_next(pex_csv_reader *r, struct pex_csv_record *rec)
{
	unsigned long rec_line;
	int done = 0;
	int rc;
	int c = 0;

	if (r == NULL || rec == NULL)
		return pex_error_set(PEX_EUSAGE, "csv reader: NULL argument");
	if (r->error)
		return pex_error_set(r->error, "%s", r->errmsg);
	r->buf_len = 0;
	r->data_bytes = 0;
	r->field_start = 0;
	r->nlocs = 0;
	r->rec_bytes = 0;
	r->state = ST_FIELD_START;
	rec_line = r->line;
	while (!done) {
		rc = next_byte(r, &c);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return at_eof(r, rec_line, rec);
		if (r->skip_lf) {
			r->skip_lf = 0;
			if (c == '\n')
				continue;
		}
		rc = check_utf8(r, c);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			/* A UTF-8 byte order mark: drop it, it is no data.
			 * Its first two bytes were appended, the third not. */
			r->buf_len -= 2;
			r->data_bytes -= 2;
			r->rec_bytes = 0;
			r->state = ST_FIELD_START;
			continue;
		}
		switch (r->state) {
		case ST_FIELD_START:
			if (c == '"') {
				r->state = ST_QUOTED;
				r->quote_line = r->line;
				r->rec_bytes++;
				break;
			}
			/* fall through */
		case ST_UNQUOTED:
			if (c == '\r' || c == '\n') {
				rc = terminator(r, c, &rec_line, rec, &done);
			} else if (c == r->sep) {
				r->rec_bytes++;
				rc = end_field(r, rec_line);
			} else if (c == '"') {
				rc = fail(r, PEX_EINVALID,
					  "%s:%lu: quote inside an unquoted "
					  "field (field %zu); quote the whole "
					  "field and double inner quotes",
					  r->name, rec_line, r->nlocs + 1);
			} else {
				r->rec_bytes++;
				r->state = ST_UNQUOTED;
				rc = append(r, rec_line, c);
			}
			break;
		case ST_QUOTED:
			r->rec_bytes++;
			if (c == '"') {
				r->state = ST_QUOTE_SEEN;
				break;
			}
			if (c == '\n')
				r->line++;
			rc = append(r, rec_line, c);
			break;
		case ST_QUOTE_SEEN:
			if (c == '"') {
				r->rec_bytes++;
				r->state = ST_QUOTED;
				rc = append(r, rec_line, c);
			} else if (c == r->sep) {
				r->rec_bytes++;
				rc = end_field(r, rec_line);
			} else if (c == '\r' || c == '\n') {
				rc = terminator(r, c, &rec_line, rec, &done);
			} else {
				rc = fail(r, PEX_EINVALID,
					  "%s:%lu: text after the closing "
					  "quote of field %zu (line %lu)",
					  r->name, rec_line, r->nlocs + 1,
					  r->line);
			}
			break;
		}
		if (rc < 0)
			return rc;
	}
	return 1;
}

static size_t limit_or(size_t v, size_t def, size_t ceiling)
{
	if (v == 0)
		return def;
	return v > ceiling ? ceiling : v;
}

int pex_csv_reader_new(pex_csv_reader **out, pex_csv_read_fn read_fn,
		       void *read_data, const struct pex_csv_options *opt)
{
	pex_csv_reader *r = NULL;
	const char *name;
	char sep;
	int rc;

	if (out == NULL || read_fn == NULL || opt == NULL)
		return pex_error_set(PEX_EUSAGE, "csv reader: NULL argument");
	*out = NULL;
	name = opt->name ? opt->name : "<input>";
	sep = opt->delimiter ? opt->delimiter : ',';
	if (sep == '"' || sep == '\r' || sep == '\n' ||
	    (unsigned char)sep >= 0x80)
		return pex_error_set(PEX_EINVALID,
				     "%s: delimiter must be one ASCII byte "
				     "other than quote, CR and LF",
				     name);
	rc = pex_csv_encoding_check(opt->encoding);
	if (rc < 0)
		return pex_error_wrap(rc, "%s", name);
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	r->fd = -1;
	r->cd = (iconv_t)-1;
	r->read_fn = read_fn;
	r->read_data = read_data;
	r->sep = sep;
	r->nfields_expected = opt->nfields;
	r->nfields_given = opt->nfields > 0;
	r->max_field = limit_or(opt->max_field, PEX_CSV_MAX_FIELD_DEFAULT,
				PEX_CSV_MAX_FIELD_CEILING);
	r->max_record = limit_or(opt->max_record, PEX_CSV_MAX_RECORD_DEFAULT,
				 PEX_CSV_MAX_RECORD_CEILING);
	r->max_fields = limit_or(opt->max_fields, PEX_CSV_MAX_FIELDS_DEFAULT,
				 PEX_CSV_MAX_FIELDS_CEILING);
	r->line = 1;
	r->name = strdup(name);
	r->dec = malloc(DEC_SIZE);
	if (r->name == NULL || r->dec == NULL)
		goto nomem;
	if (!pex_csv_encoding_is_utf8(opt->encoding)) {
		r->convert = 1;
		r->encoding = strdup(opt->encoding);
		r->raw = malloc(RAW_SIZE);
		if (r->encoding == NULL || r->raw == NULL)
			goto nomem;
		r->cd = iconv_open("UTF-8", opt->encoding);
		if (r->cd == (iconv_t)-1) {
			rc = pex_error_set(PEX_EINVALID,
					   "%s: unknown encoding '%s'", name,
					   opt->encoding);
			pex_csv_reader_free(r);
			return rc;
		}
	}
	*out = r;
	return 0;
nomem:
	pex_csv_reader_free(r);
	return pex_error_set(PEX_ENOMEM, "out of memory");
}

int pex_csv_reader_open(pex_csv_reader **out, const char *path,
			const struct pex_csv_options *opt)
{
	struct pex_csv_options o;
	pex_csv_reader *r = NULL;
	int fd;
	int rc;

	if (out == NULL || path == NULL || opt == NULL)
		return pex_error_set(PEX_EUSAGE, "csv reader: NULL argument");
	*out = NULL;
	o = *opt;
	if (o.name == NULL)
		o.name = path;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pex_error_set(PEX_EIO, "cannot open %s: %s", path,
				     strerror(errno));
	/* The callback data must outlive the reader: point it at r->fd. */
	rc = pex_csv_reader_new(&r, fd_read, NULL, &o);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	r->fd = fd;
	r->read_data = &r->fd;
	*out = r;
	return 0;
}

void pex_csv_reader_free(pex_csv_reader *r)
{
	if (r == NULL)
		return;
	if (r->fd >= 0)
		close(r->fd);
	if (r->cd != (iconv_t)-1)
		iconv_close(r->cd);
	free(r->name);
	free(r->encoding);
	free(r->raw);
	free(r->dec);
	free(r->buf);
	free(r->locs);
	free(r->out);
	free(r);
}
