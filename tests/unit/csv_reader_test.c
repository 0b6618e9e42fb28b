/* Unit tests for the streaming CSV reader (src/collectors/csv). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "collectors/csv/csv_reader.h"
#include "portex/error.h"

/* ---- helpers --------------------------------------------------------- */

/* Hands out a memory buffer in chunks of at most `chunk` bytes, so tests
 * can put buffer boundaries anywhere (in a quote pair, a CRLF, a UTF-8
 * sequence, a byte order mark). */
struct mem_src {
	const char *data;
	size_t len;
	size_t pos;
	size_t chunk;
	int fail_at; /* >= 0: return -1/EIO once pos reaches it */
};

static ssize_t mem_read(void *data, void *buf, size_t n)
{
	struct mem_src *m = data;
	size_t k = m->len - m->pos;

	if (m->fail_at >= 0 && m->pos >= (size_t)m->fail_at) {
		errno = EIO;
		return -1;
	}
	if (k > n)
		k = n;
	if (m->chunk && k > m->chunk)
		k = m->chunk;
	memcpy(buf, m->data + m->pos, k);
	m->pos += k;
	return (ssize_t)k;
}

#define DUMP_MAX 65536

/* Append text to a bounded dump buffer. */
static void dump_add(char *dump, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void dump_add(char *dump, const char *fmt, ...)
{
	size_t used = strlen(dump);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dump + used, DUMP_MAX - used, fmt, ap);
	va_end(ap);
}

/*
 * Parse everything; write "L<line>[f1|f2|...]" per record into dump (CR
 * and LF inside values shown as \r and \n). Returns the last result of
 * pex_csv_reader_next (0 at a clean end, negative on error).
 */
static int parse_opts(const char *in, size_t len, size_t chunk,
		      const struct pex_csv_options *opt, char *dump)
{
	struct mem_src m = {in, len, 0, chunk, -1};
	struct pex_csv_record rec;
	pex_csv_reader *r = NULL;
	int rc;
	size_t i, j;

	dump[0] = '\0';
	rc = pex_csv_reader_new(&r, mem_read, &m, opt);
	if (rc < 0)
		return rc;
	while ((rc = pex_csv_reader_next(r, &rec)) == 1) {
		dump_add(dump, "L%lu[", rec.line);
		for (i = 0; i < rec.nfields; i++) {
			const struct pex_csv_field *f = &rec.fields[i];

			assert_int_equal(strlen(f->value), f->len);
			if (i > 0)
				dump_add(dump, "|");
			for (j = 0; j < f->len; j++) {
				if (f->value[j] == '\n')
					dump_add(dump, "\\n");
				else if (f->value[j] == '\r')
					dump_add(dump, "\\r");
				else
					dump_add(dump, "%c", f->value[j]);
			}
		}
		dump_add(dump, "]");
	}
	pex_csv_reader_free(r);
	return rc;
}

static int parse(const char *in, char delim, char *dump)
{
	struct pex_csv_options o = {.name = "t.csv", .delimiter = delim};

	return parse_opts(in, strlen(in), 0, &o, dump);
}

/* Same input at every chunk size from 1 to 8 bytes must give the same
 * records as in one piece. */
static void assert_chunk_independent(const char *in, size_t len,
				     const struct pex_csv_options *o)
{
	static char whole[DUMP_MAX], part[DUMP_MAX];
	int rc_whole, rc_part;
	size_t chunk;

	rc_whole = parse_opts(in, len, 0, o, whole);
	for (chunk = 1; chunk <= 8; chunk++) {
		rc_part = parse_opts(in, len, chunk, o, part);
		assert_int_equal(rc_part, rc_whole);
		assert_string_equal(part, whole);
	}
}

#define assert_error_contains(needle)                                       \
	do {                                                                \
		if (strstr(pex_error_last(), (needle)) == NULL)             \
			fail_msg("error \"%s\" lacks \"%s\"",               \
				 pex_error_last(), (needle));               \
	} while (0)

/* ---- RFC 4180 -------------------------------------------------------- */

static void test_simple_lf(void **state)
{
	char d[DUMP_MAX];

	assert_int_equal(parse("a,b\n1,2\n", ',', d), 0);
	assert_string_equal(d, "L1[a|b]L2[1|2]");
}

static void test_crlf_and_no_final_newline(void **state)
{
	char d[DUMP_MAX];

	assert_int_equal(parse("a,b\r\n1,2\r\n3,4", ',', d), 0);
	assert_string_equal(d, "L1[a|b]L2[1|2]L3[3|4]");
}

static void test_cr_only_line_ends(void **state)
{
	char d[DUMP_MAX];

	assert_int_equal(parse("a,b\r1,2\r", ',', d), 0);
	assert_string_equal(d, "L1[a|b]L2[1|2]");
}

static void test_quoted_delimiter_and_doubled_quotes(void **state)
{
	char d[DUMP_MAX];

	assert_int_equal(parse("a,b,c\n\"x,y\",\"he said \"\"hi\"\"\","
			       "\"\"\"\"\"\"\n",
			       ',', d),
			 0);
	assert_string_equal(d, "L1[a|b|c]L2[x,y|he said \"hi\"|\"\"]");
}

static void test_quoted_spanning_lines(void **state)
{
	char d[DUMP_MAX];

	/* LF and CRLF inside quotes are kept as they are; the next record's
	 * line number counts them. */
	assert_int_equal(parse("h1,h2\r\n\"line1\nline2\",x\r\n"
			       "\"a\r\nb\r\nc\",y\r\nnext,z\r\n",
			       ',', d),
			 0);
	assert_string_equal(d, "L1[h1|h2]L2[line1\\nline2|x]"
			       "L4[a\\r\\nb\\r\\nc|y]L7[next|z]");
}

static void test_empty_fields(void **state)
{
	char d[DUMP_MAX];

	assert_int_equal(parse("a,b,c\n,\"\",\n\"\",,\"\"\n", ',', d), 0);
	assert_string_equal(d, "L1[a|b|c]L2[||]L3[||]");
}

static void test_blank_lines_skipped(void **state)
{
	char d[DUMP_MAX];

	assert_int_equal(parse("a,b\n\n1,2\r\n\r\n\n3,4\n\n", ',', d), 0);
	assert_string_equal(d, "L1[a|b]L3[1|2]L6[3|4]");
}

static void test_bom_stripped(void **state)
{
	char d[DUMP_MAX];

	assert_int_equal(parse("\xEF\xBB\xBFname,email\nA,a@x\n", ',', d), 0);
	assert_string_equal(d, "L1[name|email]L2[A|a@x]");
	assert_int_equal(parse("\xEF\xBB\xBF\"name\",x\n", ',', d), 0);
	assert_string_equal(d, "L1[name|x]");
	/* Only at the start: elsewhere U+FEFF is data. */
	assert_int_equal(parse("a,b\n\xEF\xBB\xBFx,y\n", ',', d), 0);
	assert_string_equal(d, "L1[a|b]L2[\xEF\xBB\xBFx|y]");
	/* A BOM alone is an empty file. */
	assert_int_equal(parse("\xEF\xBB\xBF", ',', d), 0);
	assert_string_equal(d, "");
}

static void test_delimiters(void **state)
{
	char d[DUMP_MAX];

	assert_int_equal(parse("a;b\nx,1;\"y;2\"\n", ';', d), 0);
	assert_string_equal(d, "L1[a|b]L2[x,1|y;2]");
	assert_int_equal(parse("a\tb\n\"x\ty\"\tz,w\n", '\t', d), 0);
	assert_string_equal(d, "L1[a|b]L2[x\ty|z,w]");
	assert_int_equal(parse("a|b\n1|2\n", '|', d), 0);
	assert_string_equal(d, "L1[a|b]L2[1|2]");
}

static void test_bad_delimiter(void **state)
{
	struct pex_csv_options o = {.name = "t.csv", .delimiter = '"'};
	pex_csv_reader *r = NULL;
	struct mem_src m = {"", 0, 0, 0, -1};

	assert_int_equal(pex_csv_reader_new(&r, mem_read, &m, &o),
			 PEX_EINVALID);
	assert_null(r);
	o.delimiter = '\n';
	assert_int_equal(pex_csv_reader_new(&r, mem_read, &m, &o),
			 PEX_EINVALID);
	o.delimiter = (char)0xC3;
	assert_int_equal(pex_csv_reader_new(&r, mem_read, &m, &o),
			 PEX_EINVALID);
}

static void test_chunk_boundaries(void **state)
{
	static const char in[] =
		"\xEF\xBB\xBFna\xC3\xA9me,\"e\"\"mail\"\r\n"
		"\"multi\r\nline\",\"x\"\r\n\r\n"
		"caf\xC3\xA9,\xF0\x9F\x98\x80\r\n"
		"last,\"\"";
	struct pex_csv_options o = {.name = "t.csv"};
	char d[DUMP_MAX];

	assert_int_equal(parse_opts(in, sizeof(in) - 1, 1, &o, d), 0);
	assert_string_equal(d, "L1[na\xC3\xA9me|e\"mail]"
			       "L2[multi\\r\\nline|x]"
			       "L5[caf\xC3\xA9|\xF0\x9F\x98\x80]L6[last|]");
	assert_chunk_independent(in, sizeof(in) - 1, &o);
}

/* ---- broken input ---------------------------------------------------- */

static void test_quote_in_unquoted_field(void **state)
{
	char d[DUMP_MAX];

	assert_int_equal(parse("a,b\nx\"y,z\n", ',', d), PEX_EINVALID);
	assert_error_contains("t.csv:2:");
	assert_error_contains("quote inside an unquoted field");
	/* The record before the error was delivered. */
	assert_string_equal(d, "L1[a|b]");
	/* A space before the opening quote makes the field unquoted. */
	assert_int_equal(parse("a,b\n1, \"2\"\n", ',', d), PEX_EINVALID);
	assert_error_contains("t.csv:2:");
}

static void test_text_after_closing_quote(void **state)
{
	char d[DUMP_MAX];

	assert_int_equal(parse("a,b\n1,2\n\"ab\"c,d\n", ',', d),
			 PEX_EINVALID);
	assert_error_contains("t.csv:3:");
	assert_error_contains("after the closing quote");
	assert_int_equal(parse("a,b\n\"x\" ,y\n", ',', d), PEX_EINVALID);
	assert_error_contains("t.csv:2:");
}

static void test_unterminated_quote_at_eof(void **state)
{
	char d[DUMP_MAX];

	assert_int_equal(parse("a,b\n1,\"abc\n2,3\n4,5\n", ',', d),
			 PEX_EINVALID);
	assert_error_contains("t.csv:2:");
	assert_error_contains("not closed at end of file");
	assert_string_equal(d, "L1[a|b]");
	/* A quote that opens on a later line of the record. */
	assert_int_equal(parse("a,b\n\"x\ny\",\"z", ',', d), PEX_EINVALID);
	assert_error_contains("t.csv:2: quoted field opened on line 3");
}

static void test_field_count_mismatch(void **state)
{
	char d[DUMP_MAX];

	assert_int_equal(parse("a,b\n1,2\n1,2,3\n", ',', d), PEX_EINVALID);
	assert_error_contains("t.csv:3: record has 3 fields but the header "
			      "has 2");
	assert_int_equal(parse("a,b,c\n1,2\n", ',', d), PEX_EINVALID);
	assert_error_contains("t.csv:2: record has 2 fields");
}

static void test_fixed_field_count(void **state)
{
	struct pex_csv_options o = {.name = "n.csv", .nfields = 3};
	const char *in = "x,y\n";
	char d[DUMP_MAX];

	assert_int_equal(parse_opts(in, strlen(in), 0, &o, d), PEX_EINVALID);
	assert_error_contains("n.csv:1: record has 2 fields");
}

static void test_truncated_files(void **state)
{
	static const char full[] = "name,email\r\n"
				   "\"Renouf, Alice\",alice@example.com\r\n"
				   "Bob,b\xC3\xA9@example.com\r\n";
	struct pex_csv_options o = {.name = "t.csv"};
	char d[DUMP_MAX];
	size_t cut;
	int rc;

	/* Cut the file after every byte: the reader must either deliver
	 * whole records or fail with a clear error, never crash. */
	for (cut = 0; cut <= sizeof(full) - 1; cut++) {
		rc = parse_opts(full, cut, 0, &o, d);
		assert_true(rc == 0 || rc == PEX_EINVALID);
		if (rc < 0)
			assert_non_null(strstr(pex_error_last(), "t.csv:"));
	}
	/* Inside the quoted name: unterminated quote. */
	assert_int_equal(parse_opts(full, 20, 0, &o, d), PEX_EINVALID);
	assert_error_contains("t.csv:2: quoted field opened on line 2");
	/* Between fields: too few fields. */
	assert_int_equal(parse_opts(full, 27, 0, &o, d), PEX_EINVALID);
	assert_error_contains("t.csv:2: record has 1 fields");
	/* Inside the two-byte é. */
	cut = (size_t)(strstr(full, "\xC3") - full) + 1;
	assert_int_equal(parse_opts(full, cut, 0, &o, d), PEX_EINVALID);
	assert_error_contains("t.csv:3: file ends inside a UTF-8 character");
}

static void test_sticky_error(void **state)
{
	struct pex_csv_options o = {.name = "s.csv"};
	struct mem_src m = {"a\"b\nc\n", 6, 0, 0, -1};
	struct pex_csv_record rec;
	pex_csv_reader *r = NULL;

	assert_int_equal(pex_csv_reader_new(&r, mem_read, &m, &o), 0);
	assert_int_equal(pex_csv_reader_next(r, &rec), PEX_EINVALID);
	pex_error_clear();
	assert_int_equal(pex_csv_reader_next(r, &rec), PEX_EINVALID);
	assert_error_contains("s.csv:1: quote inside");
	pex_csv_reader_free(r);
}

static void test_read_error(void **state)
{
	struct pex_csv_options o = {.name = "io.csv"};
	struct mem_src m = {"a,b\n1,2\n", 8, 0, 3, 4};
	struct pex_csv_record rec;
	pex_csv_reader *r = NULL;

	assert_int_equal(pex_csv_reader_new(&r, mem_read, &m, &o), 0);
	/* The first record is complete before the failing read. */
	assert_int_equal(pex_csv_reader_next(r, &rec), 1);
	assert_int_equal(pex_csv_reader_next(r, &rec), PEX_EIO);
	assert_error_contains("io.csv:2:");
	assert_error_contains("read failed");
	pex_csv_reader_free(r);
}

/* ---- limits ---------------------------------------------------------- */

static void test_field_limit(void **state)
{
	struct pex_csv_options o = {.name = "big.csv", .max_field = 1024};
	size_t n = 2000, i;
	char *in = malloc(n + 16);
	char d[DUMP_MAX];

	assert_non_null(in);
	memcpy(in, "a,b\nx,\"", 7);
	for (i = 0; i < n; i++)
		in[7 + i] = 'y';
	memcpy(in + 7 + n, "\"\n", 2);
	assert_int_equal(parse_opts(in, n + 9, 0, &o, d), PEX_ELIMIT);
	assert_error_contains("big.csv:2: field 2 is longer than the limit "
			      "of 1024 bytes");
	/* Exactly at the limit is fine. */
	memcpy(in + 7 + 1024, "\"\n", 2);
	assert_int_equal(parse_opts(in, 7 + 1024 + 2, 0, &o, d), 0);
	free(in);
}

static void test_default_field_limit(void **state)
{
	/* One unquoted field of 1 MiB + 1 byte: refused, not grown. */
	size_t n = PEX_CSV_MAX_FIELD_DEFAULT + 1;
	char *in = malloc(n + 1);
	char *d = malloc(DUMP_MAX);
	struct pex_csv_options o = {.name = "huge.csv"};
	struct mem_src m;
	struct pex_csv_record rec;
	pex_csv_reader *r = NULL;

	assert_non_null(in);
	assert_non_null(d);
	memset(in, 'z', n);
	in[n] = '\n';
	m = (struct mem_src){in, n + 1, 0, 0, -1};
	assert_int_equal(pex_csv_reader_new(&r, mem_read, &m, &o), 0);
	assert_int_equal(pex_csv_reader_next(r, &rec), PEX_ELIMIT);
	assert_error_contains("huge.csv:1: field 1 is longer than the limit "
			      "of 1048576 bytes");
	pex_csv_reader_free(r);
	free(in);
	free(d);
}

static void test_record_and_column_limits(void **state)
{
	struct pex_csv_options o = {.name = "r.csv", .max_record = 100};
	char in[256];
	char d[DUMP_MAX];

	memset(in, 'q', sizeof(in));
	in[60] = ',';
	in[121] = '\n';
	assert_int_equal(parse_opts(in, 122, 0, &o, d), PEX_ELIMIT);
	assert_error_contains("r.csv:1: record is longer than the limit of "
			      "100 bytes");
	o = (struct pex_csv_options){.name = "c.csv", .max_fields = 5};
	assert_int_equal(parse_opts("1,2,3,4,5\n", 10, 0, &o, d), 0);
	assert_int_equal(parse_opts("1,2,3,4,5,6\n", 12, 0, &o, d),
			 PEX_ELIMIT);
	assert_error_contains("c.csv:1: record has more than the limit of 5 "
			      "fields");
}

/* ---- encodings ------------------------------------------------------- */

static void test_not_utf8(void **state)
{
	char d[DUMP_MAX];

	/* Latin-1 é at byte offset 13. */
	assert_int_equal(parse("name,city\nA,caf\xE9\n", ',', d),
			 PEX_EINVALID);
	assert_error_contains("t.csv:2: not valid UTF-8 at byte offset 15");
	assert_error_contains("encoding");
	/* Overlong slash, surrogate, beyond U+10FFFF, stray continuation. */
	assert_int_equal(parse("a\n\xC0\xAF\n", ',', d), PEX_EINVALID);
	assert_error_contains("t.csv:2: not valid UTF-8 at byte offset 2");
	assert_int_equal(parse("a\nx\xED\xA0\x80\n", ',', d), PEX_EINVALID);
	assert_error_contains("byte offset 3");
	assert_int_equal(parse("a\n\xF4\x90\x80\x80\n", ',', d),
			 PEX_EINVALID);
	assert_int_equal(parse("a\n\x80\n", ',', d), PEX_EINVALID);
	/* Inside a quoted multi-line field: the line of the bad byte. */
	assert_int_equal(parse("a\n\"x\ny\xFF\"\n", ',', d), PEX_EINVALID);
	assert_error_contains("t.csv:3:");
}

static void test_utf16_bom_without_encoding(void **state)
{
	static const char in[] = "\xFF\xFE" "a\0,\0b\0\n\0";
	struct pex_csv_options o = {.name = "w.csv"};
	char d[DUMP_MAX];

	assert_int_equal(parse_opts(in, sizeof(in) - 1, 0, &o, d),
			 PEX_EINVALID);
	assert_error_contains("w.csv:1:");
	assert_error_contains("encoding: utf-16");
	assert_int_equal(parse_opts("\xFE\xFF\0a", 4, 0, &o, d),
			 PEX_EINVALID);
	assert_error_contains("encoding: utf-16");
}

static void test_nul_byte(void **state)
{
	static const char in[] = "a,b\n1,x\0y\n";
	struct pex_csv_options o = {.name = "z.csv"};
	char d[DUMP_MAX];

	assert_int_equal(parse_opts(in, sizeof(in) - 1, 0, &o, d),
			 PEX_EINVALID);
	assert_error_contains("z.csv:2: NUL byte at byte offset 7");
	assert_string_equal(d, "L1[a|b]");
}

static void test_control_chars_pass_through(void **state)
{
	char d[DUMP_MAX];

	/* The reader keeps them; pex_source_text() deals with them later. */
	assert_int_equal(parse("a,b\n\x01x,\x1By\n", ',', d), 0);
	assert_string_equal(d, "L1[a|b]L2[\x01x|\x1By]");
}

static void test_windows_1252(void **state)
{
	static const char in[] =
		"name;note\r\nCaf\xE9;\x93quoted\x94 \x80\r\n";
	struct pex_csv_options o = {.name = "w.csv", .delimiter = ';',
				    .encoding = "windows-1252"};
	char d[DUMP_MAX];

	assert_int_equal(parse_opts(in, sizeof(in) - 1, 0, &o, d), 0);
	assert_string_equal(d, "L1[name|note]L2[Caf\xC3\xA9|"
			       "\xE2\x80\x9Cquoted\xE2\x80\x9D "
			       "\xE2\x82\xAC]");
	assert_chunk_independent(in, sizeof(in) - 1, &o);
	o.encoding = "ISO-8859-1";
	assert_int_equal(parse_opts("name\r\nCaf\xE9\r\n", 11, 0, &o, d), 0);
	assert_string_equal(d, "L1[name]L2[Caf\xC3\xA9]");
}

static void test_utf16_declared(void **state)
{
	/* "\uFEFFn,e\r\n\"\u00E9\",x\r\n" in UTF-16LE with BOM. */
	static const char le[] = "\xFF\xFE" "n\0,\0e\0\r\0\n\0"
				 "\"\0\xE9\0\"\0,\0x\0\r\0\n\0";
	static const char be[] = "\xFE\xFF" "\0n\0,\0e\0\n";
	struct pex_csv_options o = {.name = "u.csv", .encoding = "utf-16"};
	char d[DUMP_MAX];

	assert_int_equal(parse_opts(le, sizeof(le) - 1, 0, &o, d), 0);
	assert_string_equal(d, "L1[n|e]L2[\xC3\xA9|x]");
	assert_chunk_independent(le, sizeof(le) - 1, &o);
	assert_int_equal(parse_opts(be, sizeof(be) - 1, 0, &o, d), 0);
	assert_string_equal(d, "L1[n|e]");
	/* An odd number of bytes: the "x" is cut in half. */
	assert_int_equal(parse_opts(le, sizeof(le) - 6, 0, &o, d),
			 PEX_EINVALID);
	assert_error_contains("u.csv:2: file ends inside a utf-16 character");
	/* UTF-16LE declared explicitly keeps the BOM as U+FEFF: stripped. */
	o.encoding = "UTF-16LE";
	assert_int_equal(parse_opts(le, sizeof(le) - 1, 0, &o, d), 0);
	assert_string_equal(d, "L1[n|e]L2[\xC3\xA9|x]");
}

static void test_shift_jis_invalid_sequence(void **state)
{
	/* 0x81 is a lead byte; a space is no valid trail byte in
	 * Shift_JIS: the error names line and byte offset. */
	static const char in[] = "a,b\n\x81 ,x\n";
	struct pex_csv_options o = {.name = "s.csv", .encoding = "shift_jis"};
	char d[DUMP_MAX];
	int rc;

	rc = parse_opts(in, sizeof(in) - 1, 0, &o, d);
	assert_int_equal(rc, PEX_EINVALID);
	assert_error_contains("s.csv:2: byte sequence at byte offset 4 is "
			      "not valid shift_jis");
	assert_string_equal(d, "L1[a|b]");
	/* "\x83\x65\x83\x58\x83\x67" is katakana "tesuto". */
	assert_int_equal(parse_opts("\x83\x65\x83\x58\x83\x67,1\n", 9, 1, &o,
				    d),
			 0);
	assert_string_equal(d, "L1[\xE3\x83\x86\xE3\x82\xB9\xE3\x83\x88|1]");
}

static void test_unknown_encoding(void **state)
{
	struct pex_csv_options o = {.name = "e.csv", .encoding = "klingon"};
	pex_csv_reader *r = NULL;
	struct mem_src m = {"", 0, 0, 0, -1};

	assert_int_equal(pex_csv_reader_new(&r, mem_read, &m, &o),
			 PEX_EINVALID);
	assert_null(r);
	assert_error_contains("klingon");
	assert_int_equal(pex_csv_encoding_check("windows-1252"), 0);
	assert_int_equal(pex_csv_encoding_check("UTF8"), 0);
	assert_true(pex_csv_encoding_is_utf8("Utf-8"));
	assert_false(pex_csv_encoding_is_utf8("utf-16"));
}

/* ---- empty input, files ---------------------------------------------- */

static void test_empty_and_header_only(void **state)
{
	char d[DUMP_MAX];

	assert_int_equal(parse("", ',', d), 0);
	assert_string_equal(d, "");
	assert_int_equal(parse("\n\r\n", ',', d), 0);
	assert_string_equal(d, "");
	assert_int_equal(parse("name,email\r\n", ',', d), 0);
	assert_string_equal(d, "L1[name|email]");
	assert_int_equal(parse("name,email", ',', d), 0);
	assert_string_equal(d, "L1[name|email]");
}

static void test_open_file(void **state)
{
	char path[] = "/tmp/pex_csv_reader_XXXXXX";
	struct pex_csv_options o = {0};
	struct pex_csv_record rec;
	pex_csv_reader *r = NULL;
	int fd = mkstemp(path);
	static const char in[] = "k,v\n\"o'brien\",\"1;DROP\"\n";

	assert_true(fd >= 0);
	assert_int_equal(write(fd, in, sizeof(in) - 1),
			 (ssize_t)(sizeof(in) - 1));
	close(fd);
	assert_int_equal(pex_csv_reader_open(&r, path, &o), 0);
	assert_int_equal(pex_csv_reader_next(r, &rec), 1);
	assert_int_equal(pex_csv_reader_next(r, &rec), 1);
	assert_int_equal(rec.line, 2);
	assert_string_equal(rec.fields[0].value, "o'brien");
	assert_string_equal(rec.fields[1].value, "1;DROP");
	assert_int_equal(pex_csv_reader_next(r, &rec), 0);
	assert_int_equal(pex_csv_reader_next(r, &rec), 0);
	pex_csv_reader_free(r);
	unlink(path);

	assert_int_equal(pex_csv_reader_open(&r, "/nonexistent/x.csv", &o),
			 PEX_EIO);
	assert_null(r);
	assert_error_contains("/nonexistent/x.csv");
	/* A directory opens but cannot be read. */
	assert_int_equal(pex_csv_reader_open(&r, "/tmp", &o), 0);
	assert_int_equal(pex_csv_reader_next(r, &rec), PEX_EIO);
	assert_error_contains("/tmp:1: read failed");
	pex_csv_reader_free(r);
	pex_csv_reader_free(NULL);
}

/* Many records from a generator, never held in memory at once. */
struct gen_src {
	unsigned long next;
	unsigned long count;
	char line[64];
	size_t len;
	size_t pos;
};

static ssize_t gen_read(void *data, void *buf, size_t n)
{
	struct gen_src *g = data;
	size_t k;

	if (g->pos == g->len) {
		if (g->next == g->count)
			return 0;
		g->len = (size_t)snprintf(g->line, sizeof(g->line),
					  "%lu,\"name\n%lu\"\r\n", g->next,
					  g->next);
		g->pos = 0;
		g->next++;
	}
	k = g->len - g->pos;
	if (k > n)
		k = n;
	memcpy(buf, g->line + g->pos, k);
	g->pos += k;
	return (ssize_t)k;
}

static void test_many_records(void **state)
{
	struct gen_src g = {.count = 200000};
	struct pex_csv_options o = {.name = "gen.csv"};
	struct pex_csv_record rec;
	pex_csv_reader *r = NULL;
	unsigned long n = 0;
	char want[64];
	int rc;

	assert_int_equal(pex_csv_reader_new(&r, gen_read, &g, &o), 0);
	while ((rc = pex_csv_reader_next(r, &rec)) == 1) {
		assert_int_equal(rec.line, 2 * n + 1);
		snprintf(want, sizeof(want), "name\n%lu", n);
		assert_string_equal(rec.fields[1].value, want);
		n++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(n, 200000);
	pex_csv_reader_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_lf),
		cmocka_unit_test(test_crlf_and_no_final_newline),
		cmocka_unit_test(test_cr_only_line_ends),
		cmocka_unit_test(test_quoted_delimiter_and_doubled_quotes),
		cmocka_unit_test(test_quoted_spanning_lines),
		cmocka_unit_test(test_empty_fields),
		cmocka_unit_test(test_blank_lines_skipped),
		cmocka_unit_test(test_bom_stripped),
		cmocka_unit_test(test_delimiters),
		cmocka_unit_test(test_bad_delimiter),
		cmocka_unit_test(test_chunk_boundaries),
		cmocka_unit_test(test_quote_in_unquoted_field),
		cmocka_unit_test(test_text_after_closing_quote),
		cmocka_unit_test(test_unterminated_quote_at_eof),
		cmocka_unit_test(test_field_count_mismatch),
		cmocka_unit_test(test_fixed_field_count),
		cmocka_unit_test(test_truncated_files),
		cmocka_unit_test(test_sticky_error),
		cmocka_unit_test(test_read_error),
		cmocka_unit_test(test_field_limit),
		cmocka_unit_test(test_default_field_limit),
		cmocka_unit_test(test_record_and_column_limits),
		cmocka_unit_test(test_not_utf8),
		cmocka_unit_test(test_utf16_bom_without_encoding),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_control_chars_pass_through),
		cmocka_unit_test(test_windows_1252),
		cmocka_unit_test(test_utf16_declared),
		cmocka_unit_test(test_shift_jis_invalid_sequence),
		cmocka_unit_test(test_unknown_encoding),
		cmocka_unit_test(test_empty_and_header_only),
		cmocka_unit_test(test_open_file),
		cmocka_unit_test(test_many_records),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
