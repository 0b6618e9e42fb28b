/*
 * Log files for the access_log collector: which files, in which order,
 * and reading them line by line as fast as memory allows.
 *
 * pex_al_files_list() expands the configured paths and globs (relative to
 * the config's directory) into a list ordered oldest first: for one log,
 * access.log.3.gz, access.log.2.gz, access.log.1, access.log; date-stamped
 * rotations (access.log-20260103.gz) in date order before the live file.
 *
 * pex_al_scan() reads one file through libarchive (raw format, so a plain
 * file and a gzip, bzip2, xz, lzma, lzip, zstd, lz4 or compress file read
 * alike) and calls back for the lines that may concern the subject: every
 * line, or with needles only the lines that hold one of them, found by
 * searching whole blocks (pex_al_find, or pex_al_multi_find for the many
 * needles of a batch) rather than line by line. Line
 * numbers are kept by counting newlines in the skipped text.
 *
 * Ownership: the list and its strings belong to the caller
 * (pex_al_files_free). Lines handed to the callback are borrowed and valid
 * only during the call. The scanner holds one line buffer of at most
 * max_line + 2 bytes besides libarchive's own 1 MiB block.
 */
#ifndef PEX_AL_FILES_H
#define PEX_AL_FILES_H

#include <stddef.h>

#include "collectors/access_log/logformat.h"
#include "portex/collector.h"

#define PEX_AL_FILES_MAX 100000   /* files matched by all patterns */
#define PEX_AL_BLOCK (1u << 20) /* read size: 4 in the read-ahead ring */
#define PEX_AL_DIRECT_NEEDLES 8   /* more go through pex_logneedles */

struct pex_al_file {
	char *path; /* resolved path, opened */
	char *name; /* short name used in record ids and warnings */
};

/* Expand patterns (NULL-terminated) into *out (*count entries), oldest
 * rotation first. A plain path that does not exist, or a glob matching
 * nothing, is PEX_ENOTFOUND naming it. */
int pex_al_files_list(struct pex_source *src, char *const *patterns,
		      struct pex_al_file **out, size_t *count);
void pex_al_files_free(struct pex_al_file *files, size_t count);

/*
 * Called for each candidate line (without its line ending) with its
 * 1-based number. line is NULL when the line was longer than the scanner
 * could hold (over max_line + 2 bytes): it is then only counted. A
 * non-zero return stops the scan and is returned by pex_al_scan().
 */
typedef int (*pex_al_line_fn)(void *data, const char *line, size_t len,
			      unsigned long long lineno);

/*
 * Many needles searched at once over whole blocks (a batch of subjects):
 * see al_files.c. pex_al_multi_new() returns 0 with *out set; 1 with
 * *out NULL when the needles do not suit it (one shorter than 4 bytes,
 * or holding a byte >= 0x80: use pex_logneedles); or a negative PEX_E*
 * code. The searcher copies the needles; pex_al_multi_free() accepts
 * NULL.
 */
struct pex_al_multi;
int pex_al_multi_new(struct pex_al_multi **out, const char *const *needles,
		     const size_t *lens, size_t n);
void pex_al_multi_free(struct pex_al_multi *m);
/* First position in h[0..n) where a needle starts, or NULL. */
const char *pex_al_multi_find(const struct pex_al_multi *m, const char *h,
			      size_t n);
/* Tests: search (pex_al_find and pex_al_multi_find) with at most this
 * SIMD level (what the CPU has, up to it); PEX_AL_SIMD_BEST is the
 * default. */
#define PEX_AL_SIMD_NONE 0
#define PEX_AL_SIMD_AVX2 1
#define PEX_AL_SIMD_AVX512 2 /* AVX-512BW */
#define PEX_AL_SIMD_BEST 3   /* AVX-512BW and VBMI2 */
void pex_al_multi_simd(int level);

struct pex_al_scan_opts {
	/* With count == 0 every line is a candidate. Needles must not hold
	 * a newline. Up to PEX_AL_DIRECT_NEEDLES are searched with memmem
	 * over whole blocks; beyond that, either multi is the same needles
	 * as a pex_al_multi (blocks searched at once), or set is the same
	 * needles as a pex_logneedles and lines are tested one by one. */
	const char *const *needles;
	const size_t *needle_lens;
	size_t count;
	const struct pex_logneedles *set;
	size_t max_line;
	const struct pex_al_multi *multi;
	/* With multi: the needles are client addresses and a line starts
	 * with its client's (pex_logformat_client_first, no trusted
	 * proxies), so only line starts are tested. A line is a candidate
	 * when a needle starts it, when its first field starts with '['
	 * or ':' ("[v6]:port", "::ffff:v4" in any spelling), and, with
	 * anchored = 2 (some needle is an IPv6 address), when its first
	 * field holds a ':' at all: IPv6 has many spellings ("2001:0db8::1",
	 * "2001:DB8:0::1") and the parser, not the needle, decides. A
	 * batch's hundred addresses then cost one probe per line instead of
	 * a search of every byte, and no address is missed for how it was
	 * written. */
	int anchored;
};

/* Read path and call fn for candidate lines. PEX_EIO / PEX_EINVALID with
 * a message naming the file when it cannot be opened or decompressed;
 * *lines gets the number of lines read. */
int pex_al_scan(const char *path, const struct pex_al_scan_opts *opts,
		pex_al_line_fn fn, void *data, unsigned long long *lines);

/* A plain file of at least min_bytes (default 32 MiB) with search
 * values is scanned in parts, one thread each: parts > 0 sets their
 * number (default: online CPUs; at most 4). For the tests. */
void pex_al_split(size_t min_bytes, int parts);
/* For the tests: a part's queue holds at most max_bytes (0: the default,
 * 1 MiB), so that parts fill theirs. */
void pex_al_split_queue(size_t max_bytes);

/* First occurrence of nd[0..m) in h[0..n), or NULL; memmem's contract,
 * SIMD inside. Exposed for the tests. */
const char *pex_al_find(const char *h, size_t n, const char *nd, size_t m);

/* Newlines in p[0..n): exposed for the tests. */
size_t pex_al_count_newlines(const char *p, size_t n);

#endif
