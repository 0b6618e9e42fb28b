/*
 * Streaming RFC 4180 reader for the csv collector.
 *
 * The reader pulls bytes through a read callback (or from a file it opens
 * itself), converts them to UTF-8 with iconv(3) when an encoding other than
 * UTF-8 is declared, checks that the text is valid UTF-8, and splits it into
 * records. Memory is bounded by the limits below, not by the size of the
 * file: one fixed input buffer, one fixed conversion buffer and one record
 * buffer that grows up to max_record bytes.
 *
 * It is strict on purpose: broken quoting, a record whose field count
 * differs from the first record's, invalid UTF-8, a NUL byte or a limit
 * overrun is an error naming the input, the line the record starts on and,
 * for encoding errors, the byte offset. A collector that sees an error must
 * fail its source; nothing is skipped silently.
 *
 * Ownership: pex_csv_reader_open()/pex_csv_reader_new() return a reader the
 * caller frees with pex_csv_reader_free() (which accepts NULL and closes a
 * file the reader opened). A record filled by pex_csv_reader_next() borrows
 * the reader's memory and stays valid until the next call or the free.
 */
#ifndef PEX_CSV_READER_H
#define PEX_CSV_READER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Default limits; each one can be lowered or raised per reader. */
#define PEX_CSV_MAX_FIELD_DEFAULT (1024u * 1024u)         /* 1 MiB */
#define PEX_CSV_MAX_RECORD_DEFAULT (16u * 1024u * 1024u)  /* 16 MiB */
#define PEX_CSV_MAX_FIELDS_DEFAULT 10000u                 /* columns */

/* Hard ceilings for configured limits, so a typo in a config cannot ask
 * for gigabytes per record. */
#define PEX_CSV_MAX_FIELD_CEILING (64u * 1024u * 1024u)
#define PEX_CSV_MAX_RECORD_CEILING (256u * 1024u * 1024u)
#define PEX_CSV_MAX_FIELDS_CEILING 1000000u

/*
 * Read up to n bytes into buf. Returns the number read, 0 at end of input,
 * or -1 with errno set on failure.
 */
typedef ssize_t (*pex_csv_read_fn)(void *data, void *buf, size_t n);

struct pex_csv_options {
	/* Name used in error messages (the file path); copied. */
	const char *name;
	/* Field separator: one ASCII byte other than '"', CR, LF, NUL.
	 * 0 means ','. */
	char delimiter;
	/* iconv(3) name of the input encoding; NULL or "utf-8" means the
	 * input must already be UTF-8. */
	const char *encoding;
	/* Number of fields every record must have; 0 means "as many as the
	 * first record" (the header row). */
	size_t nfields;
	/* Limits; 0 means the default above. */
	size_t max_field;
	size_t max_record;
	size_t max_fields;
};

struct pex_csv_field {
	const char *value; /* NUL-terminated; never contains NUL */
	size_t len;
};

struct pex_csv_record {
	unsigned long line; /* 1-based line the record starts on */
	size_t nfields;
	const struct pex_csv_field *fields; /* borrowed from the reader */
};

typedef struct pex_csv_reader pex_csv_reader;

/* Reader over a callback; read_data is borrowed and must outlive it. */
int pex_csv_reader_new(pex_csv_reader **out, pex_csv_read_fn read_fn,
		       void *read_data, const struct pex_csv_options *opt);

/* Reader over a file; opt->name defaults to path. */
int pex_csv_reader_open(pex_csv_reader **out, const char *path,
			const struct pex_csv_options *opt);

void pex_csv_reader_free(pex_csv_reader *r);

/*
 * Read the next record. Returns 1 and fills *rec, 0 at the end of the
 * input, or a negative PEX_E* code (PEX_EINVALID for malformed input,
 * PEX_ELIMIT for a limit overrun, PEX_EIO for a read error) with the
 * message in pex_error_last(). After an error every further call returns
 * the same error.
 */
int pex_csv_reader_next(pex_csv_reader *r, struct pex_csv_record *rec);

/* Checks that an encoding name is known to iconv; 0 or PEX_EINVALID. */
int pex_csv_encoding_check(const char *encoding);

/* 1 when the name means UTF-8 ("utf-8", "UTF8", ...), else 0. */
int pex_csv_encoding_is_utf8(const char *encoding);

#endif
