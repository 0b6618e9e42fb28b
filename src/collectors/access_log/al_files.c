/*
 * Log files: listing in time order and block-wise scanning. See
 * al_files.h and docs/internals/access_log.md.
 */
#include "collectors/access_log/al_files.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "collectors/access_log/al_prefetch.h"
#include "portex/error.h"

/* ---- listing --------------------------------------------------------- */

/* Where a file sits in its log's rotation, for sorting oldest first. */
enum rot_class {
	ROT_NUMBERED = 0, /* access.log.3.gz: higher number is older */
	ROT_DATED = 1,    /* access.log-20260103.gz: date order */
	ROT_LIVE = 2,     /* access.log: the newest */
};

struct entry {
	struct pex_al_file f;
	char *stem;   /* dir + name without rotation and compression */
	enum rot_class cls;
	unsigned long long num;
	const char *digits; /* in f.path: the date of a dated rotation */
	size_t ndigits;
};

static const char *const compress_ext[] = {
	".gz", ".bz2", ".xz", ".lzma", ".lz", ".zst", ".zstd", ".lz4", ".Z",
	NULL,
};

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Split path into its stem and rotation. */
static int classify(struct entry *e)
{
	const char *p = e->f.path;
	size_t n = strlen(p), d = 0;
	const char *const *x;

	for (x = compress_ext; *x; x++) {
		size_t l = strlen(*x);

		if (n > l && !strcmp(p + n - l, *x)) {
			n -= l;
			break;
		}
	}
	while (d < n && is_digit(p[n - 1 - d]))
		d++;
	e->cls = ROT_LIVE;
	if (d > 0 && d < n) {
		char sep = p[n - 1 - d];

		if (sep == '.' && d <= 5) {
			e->cls = ROT_NUMBERED;
			e->num = strtoull(p + n - d, NULL, 10);
			n -= d + 1;
		} else if ((sep == '-' || sep == '.' || sep == '_') &&
			   d >= 6 && d <= 14) {
			e->cls = ROT_DATED;
			e->digits = p + n - d;
			e->ndigits = d;
			n -= d + 1;
		}
	}
	if (e->cls == ROT_LIVE)
		n = strlen(p); /* a compressed live file keeps its name */
	e->stem = strndup(p, n);
	return e->stem ? 0 : pex_error_set(PEX_ENOMEM, "out of memory");
}

static int entry_cmp(const void *va, const void *vb)
{
	const struct entry *a = va, *b = vb;
	int c = strcmp(a->stem, b->stem);

	if (c)
		return c;
	if (a->cls != b->cls)
		return a->cls < b->cls ? -1 : 1;
	if (a->cls == ROT_NUMBERED && a->num != b->num)
		return a->num > b->num ? -1 : 1;
	if (a->cls == ROT_DATED) {
		if (a->ndigits != b->ndigits)
			return a->ndigits < b->ndigits ? -1 : 1;
		c = memcmp(a->digits, b->digits, a->ndigits);
		if (c)
			return c;
	}
	return strcmp(a->f.path, b->f.path);
}

static int path_cmp(const void *va, const void *vb)
{
	const struct entry *a = va, *b = vb;

	return strcmp(a->f.path, b->f.path);
}

static int has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

static int add_entry(struct entry **list, size_t *n, size_t *cap,
		     const char *path)
{
	struct entry *e;

	if (*n >= PEX_AL_FILES_MAX)
		return pex_error_set(PEX_ELIMIT, "paths match more than %u "
				     "files", PEX_AL_FILES_MAX);
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct entry *g = realloc(*list, nc * sizeof(*g));

		if (!g)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		*list = g;
		*cap = nc;
	}
	e = &(*list)[*n];
	memset(e, 0, sizeof(*e));
	e->f.path = strdup(path);
	if (!e->f.path)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	(*n)++;
	return 0;
}

static int expand(struct pex_source *src, const char *pattern,
		  struct entry **list, size_t *n, size_t *cap)
{
	char *path = pex_source_path(src, pattern);
	struct stat st;
	glob_t g;
	size_t i, before = *n;
	int rc = 0, grc;

	memset(&g, 0, sizeof(g));
	if (!path)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	if (!has_glob(pattern)) {
		if (stat(path, &st) != 0) {
			rc = pex_error_set(PEX_ENOTFOUND, "cannot open %s: %s",
					   path, strerror(errno));
			goto cleanup;
		}
		if (!S_ISREG(st.st_mode)) {
			rc = pex_error_set(PEX_EINVALID, "%s is not a regular "
					   "file", path);
			goto cleanup;
		}
		rc = add_entry(list, n, cap, path);
		goto cleanup;
	}
	grc = glob(path, GLOB_ERR, NULL, &g);
	if (grc != 0 && grc != GLOB_NOMATCH) {
		rc = pex_error_set(PEX_EIO, "cannot list %s", path);
		goto cleanup;
	}
	for (i = 0; grc == 0 && i < g.gl_pathc && !rc; i++) {
		if (stat(g.gl_pathv[i], &st) == 0 && S_ISREG(st.st_mode))
			rc = add_entry(list, n, cap, g.gl_pathv[i]);
	}
	if (!rc && *n == before)
		rc = pex_error_set(PEX_ENOTFOUND, "no log file matches %s",
				   path);
cleanup:
	globfree(&g);
	free(path);
	return rc;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

/* Short names for ids: the file name, or, when two files share one, the
 * path relative to the config's directory. */
static int set_names(struct pex_source *src, struct entry *list, size_t n)
{
	const char *base = pex_source_basedir(src);
	size_t blen = strlen(base), i, j;

	for (i = 0; i < n; i++) {
		const char *b = base_name(list[i].f.path);
		const char *name = b;

		for (j = 0; j < n; j++) {
			if (j != i && !strcmp(b, base_name(list[j].f.path))) {
				name = list[i].f.path;
				if (!strncmp(name, base, blen) &&
				    name[blen] == '/')
					name += blen + 1;
				break;
			}
		}
		list[i].f.name = strdup(name);
		if (!list[i].f.name)
			return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	return 0;
}

int pex_al_files_list(struct pex_source *src, char *const *patterns,
		      struct pex_al_file **out, size_t *count)
{
	struct entry *list = NULL;
	struct pex_al_file *files = NULL;
	size_t n = 0, cap = 0, i, k;
	int rc = 0;

	*out = NULL;
	*count = 0;
	for (i = 0; patterns && patterns[i] && !rc; i++)
		rc = expand(src, patterns[i], &list, &n, &cap);
	if (rc)
		goto cleanup;
	if (!n) {
		rc = pex_error_set(PEX_EINVALID, "paths: no file given");
		goto cleanup;
	}
	/* Two patterns may name the same file: read it once. */
	qsort(list, n, sizeof(*list), path_cmp);
	for (i = 1, k = 1; i < n; i++) {
		if (!strcmp(list[i].f.path, list[k - 1].f.path)) {
			free(list[i].f.path);
			continue;
		}
		list[k++] = list[i];
	}
	n = k;
	for (i = 0; i < n && !rc; i++)
		rc = classify(&list[i]);
	if (rc)
		goto cleanup;
	qsort(list, n, sizeof(*list), entry_cmp);
	rc = set_names(src, list, n);
	if (rc)
		goto cleanup;
	files = calloc(n, sizeof(*files));
	if (!files) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < n; i++) {
		files[i] = list[i].f;
		list[i].f.path = NULL;
		list[i].f.name = NULL;
	}
	*out = files;
	*count = n;
cleanup:
	for (i = 0; i < n; i++) {
		free(list[i].f.path);
		free(list[i].f.name);
		free(list[i].stem);
	}
	free(list);
	return rc;
}

void pex_al_files_free(struct pex_al_file *files, size_t count)
{
	size_t i;

	for (i = 0; files && i < count; i++) {
		free(files[i].path);
		free(files[i].name);
	}
	free(files);
}

/* ---- newline counting ------------------------------------------------ */

#if defined(__x86_64__) && defined(__GNUC__)
/* The same with 32-byte vectors. */
__attribute__((target("avx2")))
static size_t count_avx2(const char *p, size_t n, size_t *done)
{
	const __m256i nl = _mm256_set1_epi8('\n');
	const __m256i zero = _mm256_setzero_si256();
	size_t c = 0, i = 0;

	while (i + 128 <= n) {
		__m256i acc = zero, sum;
		int k;

		for (k = 0; k < 63 && i + 128 <= n; k++, i += 128) {
			const char *q = p + i;

			acc = _mm256_sub_epi8(acc, _mm256_cmpeq_epi8(
				_mm256_loadu_si256((const void *)q), nl));
			acc = _mm256_sub_epi8(acc, _mm256_cmpeq_epi8(
				_mm256_loadu_si256((const void *)(q + 32)),
				nl));
			acc = _mm256_sub_epi8(acc, _mm256_cmpeq_epi8(
				_mm256_loadu_si256((const void *)(q + 64)),
				nl));
			acc = _mm256_sub_epi8(acc, _mm256_cmpeq_epi8(
				_mm256_loadu_si256((const void *)(q + 96)),
				nl));
		}
		sum = _mm256_sad_epu8(acc, zero);
		c += (size_t)_mm256_extract_epi64(sum, 0) +
		     (size_t)_mm256_extract_epi64(sum, 1) +
		     (size_t)_mm256_extract_epi64(sum, 2) +
		     (size_t)_mm256_extract_epi64(sum, 3);
	}
	*done = i;
	return c;
}
#endif

/* libgcc reads the CPU's features once, before main; asking is a load
 * and a bit test, the same from every thread. */
static int have_avx2(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	/* BMI1 (tzcnt) comes with every AVX2 CPU; asked all the same */
	return __builtin_cpu_supports("avx2") &&
	       __builtin_cpu_supports("bmi") ? 1 : 0;
#else
	return 0;
#endif
}

/* tests: at most this SIMD level (see pex_al_multi_simd) */
static int simd_max = PEX_AL_SIMD_BEST;

void pex_al_multi_simd(int level)
{
	simd_max = level;
}

/* The SIMD level the searches use: what the CPU has, up to simd_max. */
static int simd_level(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	if (simd_max >= PEX_AL_SIMD_AVX512 &&
	    __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512f") && have_avx2())
		return simd_max >= PEX_AL_SIMD_BEST &&
		       __builtin_cpu_supports("avx512vbmi2") ?
		       PEX_AL_SIMD_BEST : PEX_AL_SIMD_AVX512;
	if (simd_max >= PEX_AL_SIMD_AVX2 && have_avx2())
		return PEX_AL_SIMD_AVX2;
#endif
	return PEX_AL_SIMD_NONE;
}

size_t pex_al_count_newlines(const char *p, size_t n)
{
	size_t c = 0, i = 0;

#if defined(__x86_64__) && defined(__GNUC__)
	if (have_avx2())
		c = count_avx2(p, n, &i);
#endif
#ifdef __SSE2__
	/* Byte-wise compare, subtract the -1 masks into byte counters and
	 * fold them with SAD before they can wrap: four vectors per round,
	 * so at most 4 * 63 = 252 per counter. */
	const __m128i nl = _mm_set1_epi8('\n');
	const __m128i zero = _mm_setzero_si128();

	while (i + 64 <= n) {
		__m128i acc = zero, sum;
		int k;

		for (k = 0; k < 63 && i + 64 <= n; k++, i += 64) {
			const char *q = p + i;
			__m128i a = _mm_loadu_si128((const void *)q);
			__m128i b = _mm_loadu_si128((const void *)(q + 16));
			__m128i d = _mm_loadu_si128((const void *)(q + 32));
			__m128i e = _mm_loadu_si128((const void *)(q + 48));

			acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(a, nl));
			acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(b, nl));
			acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(d, nl));
			acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(e, nl));
		}
		sum = _mm_sad_epu8(acc, zero);
		c += (size_t)_mm_cvtsi128_si32(sum) +
		     (size_t)_mm_cvtsi128_si32(_mm_srli_si128(sum, 8));
	}
#endif
	for (; i < n; i++)
		c += p[i] == '\n';
	return c;
}

/* ---- searching ------------------------------------------------------- */

/*
 * Find needle in h: candidates are the positions where both the needle's
 * first and last bytes sit at the right distance, 32 (AVX2) or 16 (SSE2)
 * positions per step, each verified with memcmp. On log text this is
 * about twice as fast as glibc's memmem for the short needles the
 * collector searches (an address, a user name), and the search is most of
 * the collector's time on a large log.
 */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2")))
static const char *find_avx2(const char *h, size_t n, const char *nd,
			     size_t m)
{
	const __m256i f = _mm256_set1_epi8(nd[0]);
	const __m256i l = _mm256_set1_epi8(nd[m - 1]);
	size_t i = 0;

	for (; i + 32 + m - 1 <= n; i += 32) {
		__m256i a = _mm256_loadu_si256((const void *)(h + i));
		__m256i b = _mm256_loadu_si256((const void *)(h + i + m - 1));
		unsigned mask = (unsigned)_mm256_movemask_epi8(
			_mm256_and_si256(_mm256_cmpeq_epi8(a, f),
					 _mm256_cmpeq_epi8(b, l)));

		while (mask) {
			unsigned k = (unsigned)__builtin_ctz(mask);

			if (!memcmp(h + i + k + 1, nd + 1, m - 2))
				return h + i + k;
			mask &= mask - 1;
		}
	}
	return memmem(h + i, n - i, nd, m);
}
#endif

#ifdef __SSE2__
static const char *find_sse2(const char *h, size_t n, const char *nd,
			     size_t m)
{
	const __m128i f = _mm_set1_epi8(nd[0]);
	const __m128i l = _mm_set1_epi8(nd[m - 1]);
	size_t i = 0;

	for (; i + 16 + m - 1 <= n; i += 16) {
		__m128i a = _mm_loadu_si128((const void *)(h + i));
		__m128i b = _mm_loadu_si128((const void *)(h + i + m - 1));
		unsigned mask = (unsigned)_mm_movemask_epi8(
			_mm_and_si128(_mm_cmpeq_epi8(a, f),
				      _mm_cmpeq_epi8(b, l)));

		while (mask) {
			unsigned k = (unsigned)__builtin_ctz(mask);

			if (!memcmp(h + i + k + 1, nd + 1, m - 2))
				return h + i + k;
			mask &= mask - 1;
		}
	}
	return memmem(h + i, n - i, nd, m);
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
/* find_avx2 64 positions a round, where the CPU has AVX-512BW. */
__attribute__((target("avx512f,avx512bw")))
static const char *find_avx512(const char *h, size_t n, const char *nd,
			       size_t m)
{
	const __m512i f = _mm512_set1_epi8(nd[0]);
	const __m512i l = _mm512_set1_epi8(nd[m - 1]);
	size_t i = 0;

	for (; i + 64 + m - 1 <= n; i += 64) {
		__m512i a = _mm512_loadu_si512((const void *)(h + i));
		__m512i b = _mm512_loadu_si512((const void *)(h + i + m - 1));
		uint64_t mask = (uint64_t)_mm512_mask_cmpeq_epi8_mask(
			_mm512_cmpeq_epi8_mask(a, f), b, l);

		while (mask) {
			unsigned k = (unsigned)__builtin_ctzll(mask);

			if (!memcmp(h + i + k + 1, nd + 1, m - 2))
				return h + i + k;
			mask &= mask - 1;
		}
	}
	return find_avx2(h + i, n - i, nd, m);
}
#endif

const char *pex_al_find(const char *h, size_t n, const char *nd, size_t m)
{
	if (m < 2)
		return m ? memchr(h, nd[0], n) : h;
#if defined(__x86_64__) && defined(__GNUC__)
	switch (simd_level()) {
	case PEX_AL_SIMD_BEST:
	case PEX_AL_SIMD_AVX512:
		return find_avx512(h, n, nd, m);
	case PEX_AL_SIMD_AVX2:
		return find_avx2(h, n, nd, m);
	}
#endif
#ifdef __SSE2__
	return find_sse2(h, n, nd, m);
#else
	return memmem(h, n, nd, m);
#endif
}

/* ---- searching for many needles ------------------------------------- */

/*
 * A batch brings a hundred addresses or more: searching for each in turn
 * would read every block a hundred times, and a line-by-line multi-needle
 * search stalls on the digits log lines are full of. Instead, three steps
 * per block position, cheapest first:
 *
 *  1. for AL_MULTI_POS positions j of the needles' common prefix
 *     (the ones with the fewest distinct bytes over all needles), are
 *     the bytes at p + j those of one needle there? With AVX2, 32
 *     positions at a time, for eight buckets of needles at once (two
 *     nibble table look-ups per byte and position, Teddy-like); the
 *     plain path asks whether each byte is some needle's there;
 *  2. is the hash of the p bytes of prefix at p set in a bitmap of all
 *     needles' prefixes (a few bits per needle: rarely a false hit);
 *  3. does a needle with that prefix start at p (binary search, memcmp)?
 *
 * Needles of fewer than AL_MULTI_MIN bytes, or holding a byte >= 0x80,
 * are left to pex_logneedles (the caller falls back).
 */
#define AL_MULTI_POS 4
#define AL_MULTI_MIN 4
#define AL_MULTI_PREFIX 8
#define AL_MULTI_BUCKETS 8 /* bits of a byte */
/* Every needle has AL_MULTI_POS positions to test: step 1's AVX2 loop
 * tests exactly that many. */
_Static_assert(AL_MULTI_MIN >= AL_MULTI_POS, "needles too short");

struct multi_key {
	uint64_t key; /* the needle's first p bytes, little-endian */
	const char *s;
	size_t len;
};

struct pex_al_multi {
	size_t p;      /* prefix bytes compared: min(shortest, 8) */
	uint64_t pmask;
	int npos;
	int pos[AL_MULTI_POS];
	/* AVX2 step 1, per position: bit b of lo[j][x] (hi[j][x]) is set
	 * when a needle of bucket b has low (high) nibble x there. */
	uint8_t lo[AL_MULTI_POS][16];
	uint8_t hi[AL_MULTI_POS][16];
	uint8_t set[AL_MULTI_POS][256];   /* the same, for the plain path */
	/* The line-start test (scan_anchored_vec): a byte can start a
	 * candidate line when flo[low nibble] & fhi[high nibble] != 0: a
	 * needle's first byte, '[' or ':'. */
	uint8_t flo[16], fhi[16];
	uint64_t *bits;
	unsigned shift;  /* hash >> shift indexes bits */
	struct multi_key *keys; /* sorted by key */
	size_t n;
	char *buf;
	/* Step 3's way in: each distinct prefix's first key, by the
	 * prefix's hash (open addressing; slot holds index + 1, 0 empty).
	 * Where many lines share a prefix with some needle (a batch whose
	 * addresses come from the same few networks as everyone's), step
	 * 2 lets them through, and a binary search each was a fifth of the
	 * search's CPU. */
	uint32_t *slot;
	size_t smask;
	/* Step 2 for whole lines (lb_probe), which have 16 bytes to hash:
	 * the needles' first min(shortest, 16) bytes (lmask: which of the
	 * 16), in a bitmap as bits. Where every client starts "10.", the
	 * 8 bytes of step 2 let through 7% of the bench's lines, 10 bytes
	 * 0.4%. */
	uint64_t *lbits;
	uint64_t lmask[2];
};

static uint64_t multi_load(const struct pex_al_multi *m, const char *p,
			   size_t avail)
{
	uint64_t k = 0;

	memcpy(&k, p, avail < 8 ? avail : 8);
	return k & m->pmask;
}

static size_t multi_hash(const struct pex_al_multi *m, uint64_t key)
{
	return (size_t)((key * 0x9E3779B97F4A7C15ull) >> m->shift);
}

static size_t line_hash(const struct pex_al_multi *m, uint64_t k0,
			uint64_t k1)
{
	return (size_t)(((k0 & m->lmask[0]) ^
			 (k1 & m->lmask[1]) * 0xC2B2AE3D27D4EB4Full) *
			0x9E3779B97F4A7C15ull >> m->shift);
}

/* key's first slot in m->slot: the hash's top bits, as for bits. */
static size_t prefix_slot(const struct pex_al_multi *m, uint64_t key)
{
	return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 40) & m->smask;
}

/* Step 2: whether some needle's prefix may be key (the p bytes there,
 * masked): its hash's bit is set. */
static inline __attribute__((always_inline)) int
prefix_maybe(const struct pex_al_multi *m, uint64_t key)
{
	size_t h = multi_hash(m, key);

	return (m->bits[h / 64] >> (h % 64)) & 1;
}

/* The same for the 8 bytes at p (8 are there). */
static inline __attribute__((always_inline)) int
prefix_maybe_at(const struct pex_al_multi *m, const char *p)
{
	uint64_t key;

	memcpy(&key, p, 8);
	return prefix_maybe(m, key & m->pmask);
}

static int key_cmp(const void *va, const void *vb)
{
	const struct multi_key *a = va, *b = vb;

	return (a->key > b->key) - (a->key < b->key);
}

static int rank_cmp(const void *va, const void *vb)
{
	const uint64_t *a = va, *b = vb;

	return (*a > *b) - (*a < *b);
}

/*
 * Step 1's tables. Buckets: the needles ordered by their bytes at the
 * chosen positions (the position with the fewest distinct bytes, pick[],
 * most significant) and cut into eight runs; step 1 then passes a
 * position only when its bytes are all those of needles of one run, not
 * each of some needle (with a hundred addresses, most digits in a log).
 */
static int multi_buckets(struct pex_al_multi *m, const size_t *pick)
{
	uint64_t *rank = malloc(m->n * sizeof(*rank));
	int ord[AL_MULTI_POS], a, b, j;
	size_t i;

	if (!rank)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	for (a = 0; a < m->npos; a++)
		ord[a] = a;
	for (a = 1; a < m->npos; a++) {
		for (b = a; b > 0 && pick[m->pos[ord[b]]] <
				     pick[m->pos[ord[b - 1]]]; b--) {
			int t = ord[b];

			ord[b] = ord[b - 1];
			ord[b - 1] = t;
		}
	}
	for (i = 0; i < m->n; i++) {
		uint64_t k = 0;

		for (a = 0; a < m->npos; a++)
			k = k << 8 |
			    (unsigned char)m->keys[i].s[m->pos[ord[a]]];
		rank[i] = k << 32 | i; /* i < 2^32: see pex_al_multi_new */
	}
	qsort(rank, m->n, sizeof(*rank), rank_cmp);
	for (i = 0; i < m->n; i++) {
		const char *s = m->keys[rank[i] & 0xffffffffu].s;
		uint8_t bit = (uint8_t)(1u << (i * AL_MULTI_BUCKETS / m->n));

		for (j = 0; j < m->npos; j++) {
			unsigned char c = (unsigned char)s[m->pos[j]];

			m->set[j][c] = 1;
			m->lo[j][c & 15] |= bit;
			m->hi[j][c >> 4] |= bit;
		}
	}
	free(rank);
	return 0;
}

int pex_al_multi_new(struct pex_al_multi **out, const char *const *needles,
		     const size_t *lens, size_t n)
{
	struct pex_al_multi *m;
	size_t i, j, total = 0, shortest = SIZE_MAX, nbits, nslots, count[8];
	size_t pick[8] = {0}; /* distinct bytes at the chosen positions */
	int rc = 0;

	*out = NULL;
	if (!n || n > UINT32_MAX) /* a needle's index fits 32 bits */
		return 1;
	for (i = 0; i < n; i++) {
		if (lens[i] < AL_MULTI_MIN)
			return 1;
		for (j = 0; j < lens[i]; j++)
			if ((unsigned char)needles[i][j] >= 0x80)
				return 1;
		if (lens[i] < shortest)
			shortest = lens[i];
		total += lens[i];
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	m->p = shortest < AL_MULTI_PREFIX ? shortest : AL_MULTI_PREFIX;
	m->pmask = m->p == 8 ? ~0ull : (1ull << (8 * m->p)) - 1;
	for (nbits = 4096; nbits < 64 * n && nbits < (1u << 24); nbits *= 2)
		;
	for (m->shift = 64; (1ull << (64 - m->shift)) < nbits; m->shift--)
		;
	m->bits = calloc(nbits / 64, sizeof(*m->bits));
	m->lbits = calloc(nbits / 64, sizeof(*m->lbits));
	m->keys = calloc(n, sizeof(*m->keys));
	m->buf = malloc(total);
	if (!m->bits || !m->lbits || !m->keys || !m->buf) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < 16 && i < shortest; i++)
		m->lmask[i / 8] |= 0xffull << (i % 8 * 8);
	total = 0;
	for (i = 0; i < n; i++) {
		uint64_t k[2] = {0, 0};
		size_t h;

		memcpy(m->buf + total, needles[i], lens[i]);
		m->keys[i].s = m->buf + total;
		m->keys[i].len = lens[i];
		m->keys[i].key = multi_load(m, m->buf + total, lens[i]);
		h = multi_hash(m, m->keys[i].key);
		m->bits[h / 64] |= 1ull << (h % 64);
		memcpy(k, needles[i], lens[i] < 16 ? lens[i] : 16);
		h = line_hash(m, k[0], k[1]);
		m->lbits[h / 64] |= 1ull << (h % 64);
		total += lens[i];
	}
	m->n = n;
	qsort(m->keys, n, sizeof(*m->keys), key_cmp);
	for (nslots = 16; nslots < 2 * n; nslots *= 2)
		;
	m->slot = calloc(nslots, sizeof(*m->slot));
	if (!m->slot) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	m->smask = nslots - 1;
	for (i = 0; i < n; i++) {
		size_t h;

		if (i && m->keys[i].key == m->keys[i - 1].key)
			continue; /* the run's first key stands for it */
		h = prefix_slot(m, m->keys[i].key);
		while (m->slot[h])
			h = (h + 1) & m->smask;
		m->slot[h] = (uint32_t)i + 1;
	}
	/* The most selective positions: fewest distinct bytes. */
	for (j = 0; j < m->p; j++) {
		uint8_t seen[256] = {0};

		count[j] = 0;
		for (i = 0; i < n; i++)
			if (!seen[(unsigned char)m->keys[i].s[j]]++)
				count[j]++;
	}
	while (m->npos < AL_MULTI_POS && (size_t)m->npos < m->p) {
		size_t best = SIZE_MAX;

		for (j = 0; j < m->p; j++)
			if (count[j] && (best == SIZE_MAX ||
					 count[j] < count[best]))
				best = j;
		pick[best] = count[best];
		count[best] = 0;
		m->pos[m->npos++] = (int)best;
	}
	rc = multi_buckets(m, pick);
	if (rc)
		goto cleanup;
	{
		/* a bit per distinct first byte ('[' and ':' their own):
		 * exact up to six, a few bytes let through past that */
		static const unsigned char odd[2] = {'[', ':'};
		uint8_t seen[256] = {0};
		unsigned nb = 0, b;

		for (i = 0; i < 2; i++) {
			m->flo[odd[i] & 15] |= (uint8_t)(0x40u << i);
			m->fhi[odd[i] >> 4] |= (uint8_t)(0x40u << i);
		}
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)m->keys[i].s[0];

			if (seen[c]++)
				continue;
			b = 1u << (nb++ % 6);
			m->flo[c & 15] |= (uint8_t)b;
			m->fhi[c >> 4] |= (uint8_t)b;
		}
	}
	*out = m;
	m = NULL;
cleanup:
	pex_al_multi_free(m);
	return rc;
}

void pex_al_multi_free(struct pex_al_multi *m)
{
	if (!m)
		return;
	free(m->bits);
	free(m->lbits);
	free(m->keys);
	free(m->buf);
	free(m->slot);
	free(m);
}

/* Steps 2 and 3 at p, with avail bytes from p on. */
static int multi_at(const struct pex_al_multi *m, const char *p,
		    size_t avail)
{
	uint64_t key;
	size_t lo, h;

	if (avail < m->p)
		return 0;
	key = multi_load(m, p, avail);
	if (!prefix_maybe(m, key))
		return 0;
	for (h = prefix_slot(m, key);; h = (h + 1) & m->smask) {
		if (!m->slot[h])
			return 0; /* no needle starts so */
		lo = m->slot[h] - 1;
		if (m->keys[lo].key == key)
			break;
	}
	for (; lo < m->n && m->keys[lo].key == key; lo++)
		if (m->keys[lo].len <= avail &&
		    !memcmp(p, m->keys[lo].s, m->keys[lo].len))
			return 1;
	return 0;
}

static const char *multi_plain(const struct pex_al_multi *m, const char *h,
			       size_t from, size_t n)
{
	size_t i;
	int j;

	for (i = from; i + m->p <= n; i++) {
		for (j = 0; j < m->npos; j++)
			if (!m->set[j][(unsigned char)h[i + m->pos[j]]])
				break;
		if (j == m->npos && multi_at(m, h + i, n - i))
			return h + i;
	}
	return NULL;
}

/* Step 2 at the positions of mask (bit k: p + k passed step 1), first
 * first: the first that passes, or 64. Inlined: a call in the SIMD loops
 * would have the compiler keep their tables on the stack. */
static inline __attribute__((always_inline)) unsigned
multi_step2(const struct pex_al_multi *m, const char *p, uint64_t mask)
{
	while (mask) {
		unsigned k = (unsigned)__builtin_ctzll(mask);

		if (prefix_maybe_at(m, p + k)) /* 8 bytes are there */
			return k;
		mask &= mask - 1;
	}
	return 64;
}

#if defined(__x86_64__) && defined(__GNUC__)
/*
 * Steps 1 and 2 over 32 positions a round, from i on. Step 1: per
 * position j, a byte's low and high nibbles select the buckets that
 * allow it (two pshufb); a position passes when some bucket allows its
 * bytes at every j. Step 2 (the prefix hash) follows inline: on a log
 * where every line starts like the needles (one network's addresses),
 * most positions that pass step 1 stop there. Returns the first position
 * that passes both, or n when none does before the rounds end (*end:
 * where they end). Nothing in the loop calls out: every ymm register is
 * caller-saved, and a call in the loop had the compiler keep the tables
 * on the stack.
 */
__attribute__((target("avx2"), noinline))
static size_t multi_steps12(const struct pex_al_multi *m, const char *h,
			    size_t n, size_t i, size_t *end)
{
	const __m256i low = _mm256_set1_epi8(0x0f);
	const __m256i zero = _mm256_setzero_si256();
	__m256i lo[AL_MULTI_POS], hi[AL_MULTI_POS];
	size_t pos[AL_MULTI_POS];
	int j;

	for (j = 0; j < AL_MULTI_POS; j++) {
		pos[j] = (size_t)m->pos[j];
		lo[j] = _mm256_broadcastsi128_si256(_mm_loadu_si128(
			(const void *)m->lo[j]));
		hi[j] = _mm256_broadcastsi128_si256(_mm_loadu_si128(
			(const void *)m->hi[j]));
	}
	/* Loads reach i + 7 + 32 at most, and a candidate's prefix
	 * i + 31 + 8. */
	for (; i + 32 + AL_MULTI_PREFIX <= n; i += 32) {
		__m256i acc = _mm256_set1_epi8(-1);
		uint64_t mask;
		unsigned k;

#pragma GCC unroll 4
		for (j = 0; j < AL_MULTI_POS; j++) {
			__m256i v = _mm256_loadu_si256(
				(const void *)(h + i + pos[j]));
			__m256i vl = _mm256_and_si256(v, low);
			__m256i vh = _mm256_and_si256(
				_mm256_srli_epi16(v, 4), low);

			acc = _mm256_and_si256(acc, _mm256_and_si256(
				_mm256_shuffle_epi8(lo[j], vl),
				_mm256_shuffle_epi8(hi[j], vh)));
		}
		mask = ~(uint32_t)_mm256_movemask_epi8(
			_mm256_cmpeq_epi8(acc, zero));
		if (mask && (k = multi_step2(m, h + i, mask)) < 64)
			return i + k;
	}
	*end = i;
	return n;
}

static const char *multi_avx2(const struct pex_al_multi *m, const char *h,
			      size_t n)
{
	size_t at = 0, end = 0;

	/* A position that passed step 2 is tested in full (step 3); the
	 * search goes on from the next one. */
	while ((at = multi_steps12(m, h, n, at, &end)) < n) {
		if (multi_at(m, h + at, n - at))
			return h + at;
		at++;
	}
	return multi_plain(m, h, end, n);
}

/*
 * The same as multi_steps12 over 64 positions a round, where AVX-512BW
 * is there: step 1 is the same nibble look-up (vpshufb works within
 * each 128-bit lane, and the tables are broadcast to all four), and the
 * positions that pass come out as a 64-bit mask.
 */
__attribute__((target("avx512f,avx512bw"), noinline))
static size_t multi_steps12_512(const struct pex_al_multi *m, const char *h,
				size_t n, size_t i, size_t *end)
{
	const __m512i low = _mm512_set1_epi8(0x0f);
	__m512i lo[AL_MULTI_POS], hi[AL_MULTI_POS];
	size_t pos[AL_MULTI_POS];
	int j;

	for (j = 0; j < AL_MULTI_POS; j++) {
		pos[j] = (size_t)m->pos[j];
		lo[j] = _mm512_broadcast_i32x4(_mm_loadu_si128(
			(const void *)m->lo[j]));
		hi[j] = _mm512_broadcast_i32x4(_mm_loadu_si128(
			(const void *)m->hi[j]));
	}
	/* Loads reach i + 7 + 64 at most, and a candidate's prefix
	 * i + 63 + 8. */
	for (; i + 64 + AL_MULTI_PREFIX <= n; i += 64) {
		__m512i acc = _mm512_set1_epi8(-1);
		uint64_t mask;
		unsigned k;

#pragma GCC unroll 4
		for (j = 0; j < AL_MULTI_POS; j++) {
			__m512i v = _mm512_loadu_si512(
				(const void *)(h + i + pos[j]));
			__m512i vl = _mm512_and_si512(v, low);
			__m512i vh = _mm512_and_si512(
				_mm512_srli_epi16(v, 4), low);

			acc = _mm512_and_si512(acc, _mm512_and_si512(
				_mm512_shuffle_epi8(lo[j], vl),
				_mm512_shuffle_epi8(hi[j], vh)));
		}
		mask = (uint64_t)_mm512_test_epi8_mask(acc, acc);
		if (mask && (k = multi_step2(m, h + i, mask)) < 64)
			return i + k;
	}
	*end = i;
	return n;
}

static const char *multi_avx512(const struct pex_al_multi *m, const char *h,
				size_t n)
{
	size_t at = 0, end = 0;

	while ((at = multi_steps12_512(m, h, n, at, &end)) < n) {
		if (multi_at(m, h + at, n - at))
			return h + at;
		at++;
	}
	/* the tail, shorter than a round: 32 at a time, then one by one */
	return multi_avx2(m, h + end, n - end);
}
#endif

const char *pex_al_multi_find(const struct pex_al_multi *m, const char *h,
			      size_t n)
{
#if defined(__x86_64__) && defined(__GNUC__)
	switch (simd_level()) {
	case PEX_AL_SIMD_BEST:
	case PEX_AL_SIMD_AVX512:
		return multi_avx512(m, h, n);
	case PEX_AL_SIMD_AVX2:
		return multi_avx2(m, h, n);
	}
#endif
	return multi_plain(m, h, 0, n);
}

/* ---- line starts ------------------------------------------------------ */

/* Whether the first field of l[0..len) holds a ':' (an IPv6 address,
 * however spelt, or an address with a port). */
static int first_field_colon(const char *l, size_t len)
{
	size_t i;

	for (i = 0; i < len && l[i] != ' '; i++)
		if (l[i] == ':')
			return 1;
	return 0;
}

/* Whether the line l[0..len) is a candidate for an anchored search (see
 * pex_al_scan_opts.anchored; colon: some needle is an IPv6 address).
 * Step 2 is inline (one load, a multiply, a bit): the rest, a call,
 * only for the few lines that pass it. */
static inline __attribute__((always_inline)) int
anchored_probe(const struct pex_al_multi *m, const char *l, size_t len,
	       int colon)
{
	if (len && (l[0] == '[' || l[0] == ':'))
		return 1;
	if (colon && first_field_colon(l, len))
		return 1;
	if (len >= 8 && !prefix_maybe_at(m, l))
		return 0;
	return multi_at(m, l, len);
}

/* ---- scanning -------------------------------------------------------- */

struct scanner {
	const struct pex_al_scan_opts *o;
	pex_al_line_fn fn;
	void *data;
	unsigned long long lineno; /* lines finished so far */
	char *carry;               /* a line split across blocks */
	size_t clen, ccap, cmax;
	int overflow;              /* the carried line was too long */
	struct al_guard *guard;    /* reading a mapping: see deliver */
	char *lbuf;                /* the line fn gets, then */
	size_t lcap;
};

/*
 * A scan of a mapped file faults (SIGBUS) where the file was cut short
 * under it (a rotation with copytruncate). While the thread's guard is
 * armed, the handler jumps back to the scan, which reports the file as
 * shrunk. It is armed only around the scanner's own reads: fn gets a
 * copy of its line and runs disarmed, so a jump never leaves the
 * caller's code half done. Any other SIGBUS goes where it went before.
 */
struct al_guard {
	sigjmp_buf jb;
	const char *lo, *hi; /* the mapping */
	const char *volatile at; /* where the fault was */
	volatile sig_atomic_t armed;
};

static __thread struct al_guard *al_guard;
/* set while a SIGBUS not ours is with the handler before ours: one that
 * passes it on to its own predecessor (ours, when it was set up after
 * it) must not send it round again */
static __thread volatile sig_atomic_t al_passing;
static struct sigaction al_old_bus; /* what SIGBUS did before */
static pthread_mutex_t al_bus_mu = PTHREAD_MUTEX_INITIALIZER;

static void al_on_bus(int sig, siginfo_t *si, void *uc)
{
	struct al_guard *g = al_guard;

	/* si_code > 0: raised by the kernel for a fault, not sent */
	int sent = !si || si->si_code <= 0;

	if (g && g->armed && !sent && si->si_code == BUS_ADRERR &&
	    (const char *)si->si_addr >= g->lo &&
	    (const char *)si->si_addr < g->hi) {
		g->armed = 0;
		g->at = si->si_addr;
		siglongjmp(g->jb, 1);
	}
	if (!al_passing && (al_old_bus.sa_flags & SA_SIGINFO) &&
	    al_old_bus.sa_sigaction) {
		al_passing = 1;
		al_old_bus.sa_sigaction(sig, si, uc);
		al_passing = 0;
	} else if (!al_passing && !(al_old_bus.sa_flags & SA_SIGINFO) &&
		   al_old_bus.sa_handler != SIG_DFL &&
		   al_old_bus.sa_handler != SIG_IGN) {
		al_passing = 1;
		al_old_bus.sa_handler(sig);
		al_passing = 0;
	} else if (sent && !al_passing &&
		   !(al_old_bus.sa_flags & SA_SIGINFO) &&
		   al_old_bus.sa_handler == SIG_IGN) {
		/* sent, and ignored before this handler: still ignored */
	} else {
		/* the default: a fault comes again when this returns, a
		 * sent signal is sent again; either ends the process as it
		 * would have without this handler */
		signal(SIGBUS, SIG_DFL);
		if (sent)
			raise(SIGBUS);
	}
}

/* Whether al_on_bus handles SIGBUS, installed now if it was not (or no
 * longer is: a host program may set its own after ours, which then
 * goes on behind it). */
static int al_bus_ready(void)
{
	struct sigaction cur, sa;
	int ok;

	pthread_mutex_lock(&al_bus_mu);
	ok = !sigaction(SIGBUS, NULL, &cur);
	if (ok && !((cur.sa_flags & SA_SIGINFO) &&
		    cur.sa_sigaction == al_on_bus)) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = al_on_bus;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		al_old_bus = cur;
		ok = !sigaction(SIGBUS, &sa, NULL);
	}
	pthread_mutex_unlock(&al_bus_mu);
	return ok;
}

/* fn for a line of a mapping: a copy, the guard disarmed */
static int deliver_copy(struct scanner *s, const char *l, size_t len,
			unsigned long long no)
{
	int rc;

	if (l && l != s->carry) {
		if (len > s->lcap) {
			size_t nc = s->lcap ? s->lcap : 1024;
			char *g;

			while (nc < len)
				nc *= 2;
			g = realloc(s->lbuf, nc);
			if (!g)
				return pex_error_set(PEX_ENOMEM,
						     "out of memory");
			s->lbuf = g;
			s->lcap = nc;
		}
		memcpy(s->lbuf, l, len);
		l = s->lbuf;
	}
	s->guard->armed = 0;
	rc = s->fn(s->data, l, len, no);
	s->guard->armed = 1;
	return rc;
}

/* fn for the line l[0..len) numbered no */
static inline __attribute__((always_inline)) int
deliver(struct scanner *s, const char *l, size_t len, unsigned long long no)
{
	if (s->guard)
		return deliver_copy(s, l, len, no);
	return s->fn(s->data, l, len, no);
}

static int line_has_needle(const struct pex_al_scan_opts *o, const char *l,
			   size_t len)
{
	size_t i;

	if (o->count == 0)
		return 1;
	if (o->multi && o->anchored)
		return anchored_probe(o->multi, l, len, o->anchored > 1);
	if (o->multi)
		return pex_al_multi_find(o->multi, l, len) != NULL;
	if (o->count > PEX_AL_DIRECT_NEEDLES)
		return pex_logneedles_match(o->set, l, len);
	for (i = 0; i < o->count; i++)
		if (pex_al_find(l, len, o->needles[i], o->needle_lens[i]))
			return 1;
	return 0;
}

static int carry_add(struct scanner *s, const char *p, size_t n)
{
	if (s->overflow || n == 0)
		return 0;
	if (n > s->cmax - s->clen) {
		s->overflow = 1;
		return 0;
	}
	if (s->clen + n > s->ccap) {
		size_t nc = s->ccap ? s->ccap : 4096;
		char *g;

		while (nc < s->clen + n)
			nc *= 2;
		if (nc > s->cmax)
			nc = s->cmax;
		g = realloc(s->carry, nc);
		if (!g)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		s->carry = g;
		s->ccap = nc;
	}
	memcpy(s->carry + s->clen, p, n);
	s->clen += n;
	return 0;
}

static int carry_finish(struct scanner *s)
{
	int rc = 0;

	s->lineno++;
	if (s->overflow)
		rc = deliver(s, NULL, s->cmax, s->lineno);
	else if (line_has_needle(s->o, s->carry, s->clen))
		rc = deliver(s, s->carry, s->clen, s->lineno);
	s->clen = 0;
	s->overflow = 0;
	return rc;
}

/* Every line of r[0..n) (which ends with a newline). */
static int scan_all(struct scanner *s, const char *r, size_t n)
{
	size_t pos = 0;
	int rc;

	while (pos < n) {
		const char *nl = memchr(r + pos, '\n', n - pos);
		size_t end = (size_t)(nl - r);

		s->lineno++;
		if (s->o->count == 0 ||
		    line_has_needle(s->o, r + pos, end - pos)) {
			rc = deliver(s, r + pos, end - pos, s->lineno);
			if (rc)
				return rc;
		}
		pos = end + 1;
	}
	return 0;
}

/* Search the whole region for each needle and visit only the lines that
 * hold a hit; newlines in between are counted, not walked. */
static int scan_hits(struct scanner *s, const char *r, size_t n)
{
	const struct pex_al_scan_opts *o = s->o;
	size_t hits[PEX_AL_DIRECT_NEEDLES], cur = 0, i;
	int rc;

	for (i = 0; i < o->count; i++) {
		const char *h = pex_al_find(r, n, o->needles[i],
					    o->needle_lens[i]);

		hits[i] = h ? (size_t)(h - r) : n;
	}
	for (;;) {
		size_t h = n, ls, le;
		const char *p;

		for (i = 0; i < o->count; i++)
			if (hits[i] < h)
				h = hits[i];
		if (h >= n)
			break;
		p = h > cur ? memrchr(r + cur, '\n', h - cur) : NULL;
		ls = p ? (size_t)(p - r) + 1 : cur;
		s->lineno += pex_al_count_newlines(r + cur, ls - cur);
		p = memchr(r + h, '\n', n - h);
		le = (size_t)(p - r);
		s->lineno++;
		rc = deliver(s, r + ls, le - ls, s->lineno);
		if (rc)
			return rc;
		cur = le + 1;
		for (i = 0; i < o->count; i++) {
			if (hits[i] < cur) {
				const char *x = pex_al_find(r + cur, n - cur,
							    o->needles[i],
							    o->needle_lens[i]);

				hits[i] = x ? (size_t)(x - r) : n;
			}
		}
	}
	s->lineno += pex_al_count_newlines(r + cur, n - cur);
	return 0;
}

/* scan_hits for a many-needle search: one search finds the next line. */
static int scan_multi(struct scanner *s, const char *r, size_t n)
{
	size_t cur = 0;
	int rc;

	for (;;) {
		const char *x = pex_al_multi_find(s->o->multi, r + cur,
						  n - cur);
		size_t h, ls, le;
		const char *p;

		if (!x)
			break;
		h = (size_t)(x - r);
		p = h > cur ? memrchr(r + cur, '\n', h - cur) : NULL;
		ls = p ? (size_t)(p - r) + 1 : cur;
		s->lineno += pex_al_count_newlines(r + cur, ls - cur);
		p = memchr(r + h, '\n', n - h);
		le = (size_t)(p - r);
		s->lineno++;
		rc = deliver(s, r + ls, le - ls, s->lineno);
		if (rc)
			return rc;
		cur = le + 1;
	}
	s->lineno += pex_al_count_newlines(r + cur, n - cur);
	return 0;
}

/* How far ahead of a scan the next bytes are asked for: a mapped file
 * is read where it lies, not copied first. */
#define AL_PREFETCH 4096

/*
 * Every line of r[0..n) (which ends with a newline) is tested at its
 * start only, in batches of AL_LB_BYTES: first the batch's newlines are
 * listed, 64 bytes a round, then each line's first 16 bytes are hashed
 * against the needles' (lb_probe), and only the lines that pass are
 * probed in full and delivered. Neither loop branches on the text.
 * Taken a line at a time (find its newline, probe it, next), the loop
 * mispredicted its exit about once a line: on the bench's 1 GiB log
 * with a hundred addresses (two parts), the search cost 115 ms of CPU,
 * against 103 in batches listed with tzcnt and 97 listed with VBMI2's
 * compress; one address (scan_anchored_vec) costs 79. With many
 * needles this beats scan_anchored_vec, whose step 1 then passes most
 * line starts of a log where every client looks like the needles.
 */
#define AL_LB_BYTES 4096

/* The k lines of the batch at bbase that end at bbase + nl[i]; *ls is
 * where the first starts, then where the next batch's does. */
static inline __attribute__((always_inline)) int
lb_probe(struct scanner *s, const char *r, size_t bbase, const uint32_t *nl,
	 size_t k, size_t *ls)
{
	const struct pex_al_multi *m = s->o->multi;
	static const char pad[16];
	uint32_t hit[AL_LB_BYTES];
	size_t i, nh = 0, st = *ls;
	int rc;

	for (i = 0; i < k; i++) {
		size_t e = bbase + nl[i], len = e - st, h;
		uint64_t key[2];

		/* a line under 16 bytes: its probe decides */
		memcpy(key, len >= 16 ? r + st : pad, 16);
		h = line_hash(m, key[0], key[1]);
		hit[nh] = (uint32_t)i;
		nh += ((m->lbits[h / 64] >> (h % 64)) & 1) | (len < 16) |
		      ((key[0] & 0xff) == '[') | ((key[0] & 0xff) == ':');
		st = e + 1;
	}
	for (i = 0; i < nh; i++) {
		size_t j = hit[i], b = j ? bbase + nl[j - 1] + 1 : *ls;
		size_t e = bbase + nl[j];

		if (anchored_probe(m, r + b, e - b, 0)) {
			rc = deliver(s, r + b, e - b, s->lineno + j + 1);
			if (rc) {
				s->lineno += j + 1; /* up to this line */
				return rc;
			}
		}
	}
	s->lineno += k;
	*ls = st;
	return 0;
}

/* The lines that end at the newlines in bits (bit k: r[base + k]), one
 * by one: for IPv6 needles (colon), whose test needs the first field. */
static int anchored_lines(struct scanner *s, const char *r, size_t base,
			  uint64_t bits, size_t *ls)
{
	int rc;

	while (bits) {
		size_t e = base + (size_t)__builtin_ctzll(bits);

		s->lineno++;
		if (anchored_probe(s->o->multi, r + *ls, e - *ls, 1)) {
			rc = deliver(s, r + *ls, e - *ls, s->lineno);
			if (rc)
				return rc;
		}
		*ls = e + 1;
		bits &= bits - 1;
	}
	return 0;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* A round's newlines (bit k: r[base + k]) appended to nl[] as offsets
 * from the batch: four written whatever the count (nl has room; tzcnt
 * of 0 is 64), the count added. */
__attribute__((target("bmi,popcnt")))
static inline __attribute__((always_inline)) size_t
lb_put(uint32_t *nl, size_t k, uint64_t bits, uint32_t base)
{
	size_t cnt = (size_t)_mm_popcnt_u64(bits);
	uint64_t b1 = _blsr_u64(bits), b2 = _blsr_u64(b1);
	uint64_t b3 = _blsr_u64(b2);

	nl[k] = base + (uint32_t)_tzcnt_u64(bits);
	nl[k + 1] = base + (uint32_t)_tzcnt_u64(b1);
	nl[k + 2] = base + (uint32_t)_tzcnt_u64(b2);
	nl[k + 3] = base + (uint32_t)_tzcnt_u64(b3);
	if (__builtin_expect(cnt > 4, 0)) { /* lines under 16 bytes */
		size_t j = k + 4;

		for (bits = _blsr_u64(b3); bits; bits = _blsr_u64(bits))
			nl[j++] = base + (uint32_t)_tzcnt_u64(bits);
	}
	return k + cnt;
}

/* The newlines of r[base..end) (at most 64 bytes; bit k: r[base + k]). */
__attribute__((target("avx512f,avx512bw")))
static inline __attribute__((always_inline)) uint64_t
nl_mask_512(const char *r, size_t base, size_t end)
{
	/* a masked load reads nothing past end */
	__mmask64 lm = end - base >= 64 ? ~(__mmask64)0 :
		       ((__mmask64)1 << (end - base)) - 1;

	return _mm512_mask_cmpeq_epi8_mask(
		lm, _mm512_maskz_loadu_epi8(lm, r + base),
		_mm512_set1_epi8('\n'));
}

__attribute__((target("avx2")))
static inline __attribute__((always_inline)) uint64_t
nl_mask_avx2(const char *r, size_t base, size_t end)
{
	const __m256i vnl = _mm256_set1_epi8('\n');
	uint64_t bits = 0;
	size_t j;

	if (end - base < 64) {
		for (j = 0; base + j < end; j++)
			bits |= (uint64_t)(r[base + j] == '\n') << j;
		return bits;
	}
	bits = (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(
		_mm256_loadu_si256((const void *)(r + base)), vnl));
	return bits | (uint64_t)(uint32_t)_mm256_movemask_epi8(
		_mm256_cmpeq_epi8(_mm256_loadu_si256(
		(const void *)(r + base + 32)), vnl)) << 32;
}

/* The batch search for each vector width: isa, and mask finding the
 * newlines of 64 bytes. */
#define LINES_ANCHORED(name, isa, mask, put)                                 \
__attribute__((target(isa)))                                               \
static int name(struct scanner *s, const char *r, size_t n)                \
{                                                                          \
	uint32_t nl[AL_LB_BYTES + 64];                                     \
	size_t bbase, base, ls = 0, k;                                     \
	int rc;                                                            \
									   \
	if (s->o->anchored > 1) { /* IPv6 needles: line by line */          \
		for (base = 0; base < n; base += 64) {                     \
			uint64_t bits = mask(r, base, n);                  \
									   \
			if (bits && (rc = anchored_lines(s, r, base, bits, \
							 &ls)))            \
				return rc;                                 \
		}                                                          \
		return 0;                                                  \
	}                                                                  \
	for (bbase = 0; bbase < n; bbase += AL_LB_BYTES) {                 \
		size_t bend = n - bbase > AL_LB_BYTES ? bbase + AL_LB_BYTES \
						      : n;                 \
									   \
		for (k = 0, base = bbase; base < bend; base += 64) {       \
			_mm_prefetch(r + base + AL_PREFETCH, _MM_HINT_T0); \
			k = put(nl, k, mask(r, base, bend),                \
				   (uint32_t)(base - bbase));              \
		}                                                          \
		if ((rc = lb_probe(s, r, bbase, nl, k, &ls)))              \
			return rc;                                         \
	}                                                                  \
	return 0;                                                          \
}

/* lb_put with VBMI2: the positions compressed in a vector. */
__attribute__((target("avx512f,avx512bw,avx512vbmi2,popcnt")))
static inline __attribute__((always_inline)) size_t
lb_put_vbmi2(uint32_t *nl, size_t k, uint64_t bits, uint32_t base)
{
	const __m512i iota = _mm512_set_epi8(
		63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48,
		47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32,
		31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,
		15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
	__m512i c = _mm512_maskz_compress_epi8(bits, iota);
	size_t cnt = (size_t)_mm_popcnt_u64(bits);
	int j;

	_mm512_storeu_si512((void *)(nl + k), _mm512_add_epi32(
		_mm512_cvtepu8_epi32(_mm512_castsi512_si128(c)),
		_mm512_set1_epi32((int)base)));
	if (__builtin_expect(cnt > 16, 0)) { /* lines under 4 bytes */
		for (j = 0; bits; bits &= bits - 1)
			nl[k + j++] = base + (uint32_t)__builtin_ctzll(bits);
	}
	return k + cnt;
}

LINES_ANCHORED(lines_anchored_512, "avx512f,avx512bw,bmi,popcnt", nl_mask_512,
	       lb_put)
LINES_ANCHORED(lines_anchored_vbmi2, "avx512f,avx512bw,avx512vbmi2,bmi,popcnt",
	       nl_mask_512, lb_put_vbmi2)

LINES_ANCHORED(lines_anchored_avx2, "avx2,bmi,popcnt", nl_mask_avx2, lb_put)
#endif

/* The lines of r[ls..n) one by one (n ends a line), s->lineno counting
 * the lines before ls: the tail of a vector scan, and the scan for an
 * IPv6 needle, whose candidates depend on the whole first field. */
static int anchored_tail(struct scanner *s, const char *r, size_t ls,
			 size_t n)
{
	int rc;

	while (ls < n) {
		const char *nl = memchr(r + ls, '\n', n - ls);
		size_t e = (size_t)(nl - r);

		s->lineno++;
		if (anchored_probe(s->o->multi, r + ls, e - ls,
				   s->o->anchored > 1)) {
			rc = deliver(s, r + ls, e - ls, s->lineno);
			if (rc)
				return rc;
		}
		ls = e + 1;
	}
	return 0;
}

/* A candidate line start found by a vector scan: r + ls starts the line
 * numbered lineno, and its first byte let it through. Probed in full
 * here; its end is looked for only when it passes. */
static inline __attribute__((always_inline)) int
anchored_hit(struct scanner *s, const char *r, size_t ls, size_t n,
	     unsigned long long lineno)
{
	const char *nl;

	/* A needle holds no newline, so probing to the end of the region
	 * is probing to the end of the line. */
	if (!anchored_probe(s->o->multi, r + ls, n - ls, 0))
		return 0;
	nl = memchr(r + ls, '\n', n - ls);
	return deliver(s, r + ls, (size_t)(nl - r) - ls, lineno);
}

/* Where the vector loop stopped at base (its lines finished counted in
 * s->lineno, carry: r[base] starts a line): the rest, line by line. */
static int anchored_rest(struct scanner *s, const char *r, size_t base,
			 size_t n, uint64_t carry)
{
	if (base < n && !carry) { /* finish the line under way at base */
		const char *nl = memchr(r + base, '\n', n - base);

		s->lineno++;
		base = (size_t)(nl - r) + 1;
	}
	return anchored_tail(s, r, base, n);
}

#if defined(__x86_64__) && defined(__GNUC__)
/*
 * The line starts of mask (bit k: p + k) that pass step 2 (the prefix
 * hash), or start with '[' or ':'. Inline, and calling nothing: where
 * many lines start like a needle (every client 1xx.x and a needle
 * 10.x), step 1 lets most line starts through, and a return to the
 * caller for each would cost more than the search.
 */
static inline __attribute__((always_inline)) uint64_t
step2_mask(const struct pex_al_multi *m, const char *p, uint64_t mask)
{
	uint64_t out = 0, rest = mask;

	while (rest) {
		unsigned k = (unsigned)__builtin_ctzll(rest);

		/* 8 bytes are there. The hash first: tested before it, the
		 * two bytes cost 20% more CPU where nearly every start is a
		 * candidate (measured) */
		if (prefix_maybe_at(m, p + k) || p[k] == '[' || p[k] == ':')
			out |= 1ull << k;
		rest &= rest - 1;
	}
	return out;
}

/* What a vector round leaves for its caller: the round at base, its
 * newlines (bit k: r[base + k]) and its candidate line starts. */
struct vround {
	size_t base;
	uint64_t nlm, cand;
	uint64_t carry; /* r[base + 64] starts a line */
};


/*
 * Rounds of 64 bytes from v->base on, until one holds a candidate
 * (returns 1, v describing it) or less than a round is left (returns 0,
 * v->base where the rounds stopped). *lines counts the newlines of the
 * rounds passed over. A round is one load, the newline compare and the
 * first-byte test (two nibble look-ups): each costs a few instructions
 * per 64 bytes, and the scan runs at close to the speed of memory.
 * Nothing in the loop calls out: every vector register is caller-saved,
 * and a call in the loop had the compiler keep the tables on the stack.
 */
__attribute__((target("avx512f,avx512bw,popcnt"), noinline))
static int anchored_rounds_512(const struct pex_al_multi *m, const char *r,
			       size_t n, struct vround *v,
			       unsigned long long *lines)
{
	const __m512i nl = _mm512_set1_epi8('\n');
	const __m512i low = _mm512_set1_epi8(0x0f);
	const __m512i flo = _mm512_broadcast_i32x4(_mm_loadu_si128(
		(const void *)m->flo));
	const __m512i fhi = _mm512_broadcast_i32x4(_mm_loadu_si128(
		(const void *)m->fhi));
	size_t base = v->base;
	uint64_t carry = v->carry;
	unsigned long long c = 0;

	/* a candidate's prefix reaches base + 63 + 8 */
	for (; base + 64 + AL_MULTI_PREFIX <= n; base += 64) {
		__m512i x = _mm512_loadu_si512((const void *)(r + base));
		uint64_t nlm = _mm512_cmpeq_epi8_mask(x, nl);
		uint64_t starts = nlm << 1 | carry;
		__m512i a = _mm512_and_si512(
			_mm512_shuffle_epi8(flo, _mm512_and_si512(x, low)),
			_mm512_shuffle_epi8(fhi, _mm512_and_si512(
				_mm512_srli_epi16(x, 4), low)));
		uint64_t cand = starts & _mm512_test_epi8_mask(a, a);

		_mm_prefetch(r + base + AL_PREFETCH, _MM_HINT_T0);
		carry = nlm >> 63;
		if (cand)
			cand = step2_mask(m, r + base, cand);
		if (cand) {
			*v = (struct vround){base, nlm, cand, carry};
			*lines += c;
			return 1;
		}
		c += (unsigned)__builtin_popcountll(nlm);
	}
	v->base = base;
	v->carry = carry;
	*lines += c;
	return 0;
}

/* The same with 32-byte vectors, two to a round. */
__attribute__((target("avx2,popcnt"), noinline))
static int anchored_rounds_avx2(const struct pex_al_multi *m, const char *r,
				size_t n, struct vround *v,
				unsigned long long *lines)
{
	const __m256i nl = _mm256_set1_epi8('\n');
	const __m256i low = _mm256_set1_epi8(0x0f);
	const __m256i zero = _mm256_setzero_si256();
	const __m256i flo = _mm256_broadcastsi128_si256(_mm_loadu_si128(
		(const void *)m->flo));
	const __m256i fhi = _mm256_broadcastsi128_si256(_mm_loadu_si128(
		(const void *)m->fhi));
	size_t base = v->base;
	uint64_t carry = v->carry;
	unsigned long long c = 0;
	int h;

	/* a candidate's prefix reaches base + 63 + 8 */
	for (; base + 64 + AL_MULTI_PREFIX <= n; base += 64) {
		uint64_t nlm = 0, pass = 0, starts, cand;

		for (h = 0; h < 2; h++) {
			__m256i x = _mm256_loadu_si256(
				(const void *)(r + base + 32 * h));
			__m256i a = _mm256_and_si256(
				_mm256_shuffle_epi8(flo,
					_mm256_and_si256(x, low)),
				_mm256_shuffle_epi8(fhi, _mm256_and_si256(
					_mm256_srli_epi16(x, 4), low)));

			nlm |= (uint64_t)(uint32_t)_mm256_movemask_epi8(
				_mm256_cmpeq_epi8(x, nl)) << 32 * h;
			pass |= (uint64_t)(uint32_t)~_mm256_movemask_epi8(
				_mm256_cmpeq_epi8(a, zero)) << 32 * h;
		}
		_mm_prefetch(r + base + AL_PREFETCH, _MM_HINT_T0);
		starts = nlm << 1 | carry;
		carry = nlm >> 63;
		cand = starts & pass;
		if (cand)
			cand = step2_mask(m, r + base, cand);
		if (cand) {
			*v = (struct vround){base, nlm, cand, carry};
			*lines += c;
			return 1;
		}
		c += (unsigned)__builtin_popcountll(nlm);
	}
	v->base = base;
	v->carry = carry;
	*lines += c;
	return 0;
}

/*
 * Every line of r[0..n) (which ends with a newline) is tested at its
 * start only, 64 bytes a round and without a branch per line: a round's
 * newlines give its line starts, and only those whose first byte could
 * start a needle, or is '[' or ':' (an address spelt as IPv6, always
 * parsed), are probed in full.
 * Lines are counted a round at a time. For IPv4 needles only (anchored
 * 1): an IPv6 needle makes every first field holding ':' a candidate,
 * which needs the whole field. (Every CPU with AVX2 counts bits in one
 * instruction: popcnt.)
 */
__attribute__((target("popcnt")))
static int scan_anchored_vec(struct scanner *s, const char *r, size_t n,
			     int avx512)
{
	struct vround v = {.carry = 1}; /* r[0] starts a line */
	int rc;

	while (avx512 ? anchored_rounds_512(s->o->multi, r, n, &v,
					    &s->lineno)
		      : anchored_rounds_avx2(s->o->multi, r, n, &v,
					     &s->lineno)) {
		while (v.cand) {
			unsigned k = (unsigned)__builtin_ctzll(v.cand);
			uint64_t below = ((uint64_t)1 << k) - 1;

			rc = anchored_hit(s, r, v.base + k, n,
				s->lineno + (unsigned)__builtin_popcountll(
					v.nlm & below) + 1);
			if (rc)
				return rc;
			v.cand &= v.cand - 1;
		}
		s->lineno += (unsigned)__builtin_popcountll(v.nlm);
		v.base += 64;
	}
	return anchored_rest(s, r, v.base, n, v.carry);
}
#endif

/* Up to this many needles, scan_anchored_vec; more, lines_anchored_*
 * (see there). On the bench's 1 GiB log, the whole export of one
 * address took 98 ms with the vector scan against 104, the batch of a
 * hundred 218 against 182. */
#define AL_VEC_NEEDLES 8

static int scan_anchored(struct scanner *s, const char *r, size_t n)
{
#if defined(__x86_64__) && defined(__GNUC__)
	int few = s->o->multi->n <= AL_VEC_NEEDLES && s->o->anchored == 1;

	switch (simd_level()) {
	case PEX_AL_SIMD_BEST:
		return few ? scan_anchored_vec(s, r, n, 1)
			   : lines_anchored_vbmi2(s, r, n);
	case PEX_AL_SIMD_AVX512:
		return few ? scan_anchored_vec(s, r, n, 1)
			   : lines_anchored_512(s, r, n);
	case PEX_AL_SIMD_AVX2:
		return few ? scan_anchored_vec(s, r, n, 0)
			   : lines_anchored_avx2(s, r, n);
	}
#endif
	return anchored_tail(s, r, 0, n);
}

static int scan_block(struct scanner *s, const char *p, size_t n)
{
	const char *last;
	size_t pos = 0, end;
	int rc;

	if (s->clen || s->overflow) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;

		rc = carry_add(s, p, take);
		if (rc || !nl)
			return rc;
		rc = carry_finish(s);
		if (rc)
			return rc;
		pos = take + 1;
	}
	last = pos < n ? memrchr(p + pos, '\n', n - pos) : NULL;
	if (!last)
		return carry_add(s, p + pos, n - pos);
	end = (size_t)(last - p) + 1;
	if (s->o->count > 0 && s->o->multi && s->o->anchored)
		rc = scan_anchored(s, p + pos, end - pos);
	else if (s->o->count > 0 && s->o->multi)
		rc = scan_multi(s, p + pos, end - pos);
	else if (s->o->count > 0 && s->o->count <= PEX_AL_DIRECT_NEEDLES)
		rc = scan_hits(s, p + pos, end - pos);
	else
		rc = scan_all(s, p + pos, end - pos);
	if (rc)
		return rc;
	return carry_add(s, p + end, n - end);
}

/* ---- a plain file in parts, one thread per CPU ------------------------ */

/*
 * With search values, the scan's cost is the copy out of the page cache
 * and the search, both CPU: a batch's many-needle search is about twice
 * the copy, so the read-ahead thread idles half the time while the
 * scanner is the bottleneck. A plain file of some size is therefore cut
 * at line starts into parts, AL_PARTS_PER_THREAD for each of its
 * threads (one per CPU, at most AL_SPLIT_MAX), which take them in turn:
 * a part is mapped or read with pread() and searched by one thread.
 *
 * fn sees the lines in file order, on the caller's thread, exactly as a
 * scan in one piece gives them. The caller goes through the parts in
 * order: one nobody has taken yet it scans itself, calling fn directly;
 * one a worker took queues its candidate lines (few: only lines holding
 * a search value) with part-relative numbers, and the caller hands them
 * on. While such a part has nothing queued, the caller takes the next
 * free part and scans it as a worker would, into its queue, rather than
 * wait. Work is so shared whatever the lines cost: a fixed cut (40% for
 * the caller, which also builds the records) left one core idle for 10
 * to 20 ms of the bench's 1 GiB, for one subject in 4 KiB pages (the
 * caller waiting) as for a batch in huge pages (the other).
 *
 * Memory: one block per thread, and at most q_max (1 MiB) of queued lines
 * per part, for at most AL_AHEAD parts per thread past the one the caller
 * is on (with two CPUs, 5 MiB at most; the bench's batch of 100 queues
 * about 200 KB a part); a part whose queue is full waits for the caller.
 */
#define AL_SPLIT_MAX 4
#define AL_PARTS_PER_THREAD 8
#define AL_PART_MIN (256u << 10)
#define AL_AHEAD 2
/* a part's read size: the block and its scan stay in the core's L2 */
#define AL_PART_BLOCK (256u << 10)
#define AL_Q_CHUNK (256u << 10)
#define AL_STOPPED 1 /* a worker told to stop; never reaches fn's caller */
/* a part the caller scans queued: its queue is full. Never from fn: the
 * caller's scans of its own parts are not called back. */
#define AL_YIELD 3
/* Longer lines allowed (max_line_bytes): one piece. Each part holds a
 * line carried across blocks and queues whole lines, so memory would
 * grow with the parts by that much. */
#define AL_SPLIT_LINE_MAX (256u << 10)

static size_t split_min = 32u << 20; /* smaller files: one piece */
static int split_parts;              /* tests: parts to cut into */
#define AL_Q_MAX (1u << 20)
static size_t q_max = AL_Q_MAX;      /* a part's queued lines, at most */

void pex_al_split(size_t min_bytes, int parts)
{
	split_min = min_bytes;
	split_parts = parts;
}

void pex_al_split_queue(size_t max_bytes)
{
	q_max = max_bytes ? max_bytes : AL_Q_MAX;
}

struct qchunk {
	struct qchunk *next;
	size_t len, cap;
	char data[];
};

/* a queued line: this header, then len bytes unless held is 0 */
struct qline {
	unsigned long long lineno;
	size_t len;
	int held; /* 0: the line was too long to hold (fn gets NULL) */
};

/* Whether a thread maps or reads its windows (see part_scan_body): its
 * own, carried from part to part. */
struct map_judge {
	int skip;  /* windows still to read before mapping is tried again */
	int retry; /* windows to read after the next try that fails */
	int first; /* the thread's first window, not judged */
};

struct part {
	struct scanner s;
	const char *path;
	struct map_judge *judge; /* the scanning thread's: */
	int fd;
	off_t start, end; /* end < 0: to the end of the file */
	off_t size;       /* the file's when it was cut */
	const char *map;  /* the file mapped (size bytes), or NULL */
	char *buf;
	/* the queue, guarded by mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct qchunk *head, *tail; /* published */
	struct qchunk *fill;        /* the worker's, not yet published */
	size_t queued;              /* bytes published, not yet taken */
	int done, rc;
	int shrunk; /* the file ended before the part did */
	int stop; /* atomic: also read between blocks, without mu */
	/* guarded by the split's mu */
	int taken;
	int by_caller; /* the caller scans it into its queue */
	int yielded;   /* it did, until the queue was full: not again */
	char err[1024];
};

static void part_publish(struct part *p)
{
	struct qchunk *c = p->fill;

	if (!c || !c->len)
		return;
	p->fill = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->tail)
		p->tail->next = c;
	else
		p->head = c;
	p->tail = c;
	p->queued += c->len;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* The workers' line callback: queue the line for the caller. */
static int part_queue(void *data, const char *line, size_t len,
		      unsigned long long lineno)
{
	struct part *p = data;
	struct qline q = {.lineno = lineno, .len = len, .held = line != NULL};
	size_t need = sizeof(q) + (line ? len : 0);

	if (p->fill && p->fill->cap - p->fill->len < need)
		part_publish(p);
	if (!p->fill) {
		size_t cap = q_max / 4 < AL_Q_CHUNK ? q_max / 4 : AL_Q_CHUNK;
		int stop;

		if (cap < need)
			cap = need;

		pthread_mutex_lock(&p->mu);
		if (p->by_caller && p->queued >= q_max) {
			/* the caller cannot wait for itself */
			pthread_mutex_unlock(&p->mu);
			return AL_YIELD;
		}
		while (!(stop = __atomic_load_n(&p->stop, __ATOMIC_RELAXED)) &&
		       p->queued >= q_max)
			pthread_cond_wait(&p->cv, &p->mu);
		pthread_mutex_unlock(&p->mu);
		if (stop)
			return AL_STOPPED;
		p->fill = malloc(sizeof(*p->fill) + cap);
		if (!p->fill)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		p->fill->next = NULL;
		p->fill->len = 0;
		p->fill->cap = cap;
	}
	memcpy(p->fill->data + p->fill->len, &q, sizeof(q));
	if (line)
		memcpy(p->fill->data + p->fill->len + sizeof(q), line, len);
	p->fill->len += need;
	return 0;
}

/* Read and scan [*off, end) of the file in blocks (end < 0: to the end
 * of the file); *off follows. */
static int part_read(struct part *p, off_t *off, off_t end)
{
	int rc;

	for (;;) {
		size_t want = AL_PART_BLOCK;
		ssize_t n;

		if (end >= 0) {
			if (*off >= end)
				return 0;
			if ((off_t)want > end - *off)
				want = (size_t)(end - *off);
		}
		if (__atomic_load_n(&p->stop, __ATOMIC_RELAXED))
			return AL_STOPPED;
		do
			n = pread(p->fd, p->buf, want, *off);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return pex_error_set(PEX_EIO, "cannot read %s: %s",
					     p->path, strerror(errno));
		if (n == 0) {
			/* shorter than when it was cut (copytruncate): what
			 * the later parts read is not what follows here */
			p->shrunk = *off < (p->end >= 0 ? p->end : p->size);
			return 0;
		}
		rc = scan_block(&p->s, p->buf, (size_t)n);
		if (rc)
			return rc;
		*off += n;
	}
}

/* This thread's page faults so far. */
static long thread_faults(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) ? 0 : ru.ru_minflt;
}

/*
 * A mapped part is searched a window at a time, where it lies while its
 * pages map cheaply: a page cache held in huge pages (as a log read back
 * from disk mostly is) maps 2 MiB a fault, and the scan then beats any
 * read() by the copy it saves (1 GiB on two cores: 24 against 34 ms).
 * In 4 KiB pages a fault maps 64 KiB, and the faults cost more than the
 * copy (51 against 37 ms): a window that took more than AL_MAP_FAULTS
 * faults sends the next AL_MAP_RETRY windows to read(), and the mapping
 * is tried again after them (the page cache of a file can be both),
 * twice as many after each try that fails, up to AL_MAP_RETRY_MAX. An
 * 8 MiB window measured 128 faults in 4 KiB pages; in huge pages 4 or
 * 5, up to 66 where the caller's work on the lines found faults too.
 * A thread's first window is not judged: it pays for the thread's start.
 * The judgement goes with the thread from part to part.
 */
#define AL_MAP_WINDOW (8u << 20)
#define AL_MAP_FAULTS (AL_MAP_WINDOW / (64u << 10) * 3 / 4)
#define AL_MAP_RETRY 8
#define AL_MAP_RETRY_MAX 64

/* Pages searched are let go (the page cache keeps them): else they
 * would count as the process's memory, the whole file by the end. Cut
 * at a multiple of 2 MiB, so a huge page is never split, and not more
 * often: each drop flushes the TLB of every core running the process
 * (an interrupt to the other part's core), and at 2 MiB those flushes
 * cost (a) 4 to 5 ms of its 75. A part holds up to 8 MiB of the file
 * mapped, and lets go of the rest at its end: down to the page, even
 * where that splits a huge page's mapping (the next part's first pages
 * then map 64 KiB a fault), since a part's tail that waited for the
 * next part to pass it stayed mapped when that part went first: with
 * sixteen parts, one export peaked at 52 MB instead of 30. */
#define AL_MAP_DROP (8u << 20)

/* Scan the mapped [*off, end) a piece at a time, letting go of the
 * pages passed (*dropped: up to where they are gone). */
static int map_scan(struct part *p, off_t *off, off_t end, off_t *dropped)
{
	int rc = 0;

	while (*off < end && !rc) {
		off_t to = (*off / AL_MAP_DROP + 1) * AL_MAP_DROP;

		if (to > end)
			to = end;
		rc = scan_block(&p->s, p->map + *off, (size_t)(to - *off));
		*off = to;
		to = to / AL_MAP_DROP * AL_MAP_DROP;
		if (to > *dropped) {
			madvise((void *)(p->map + *dropped),
				(size_t)(to - *dropped), MADV_DONTNEED);
			*dropped = to;
		}
	}
	return rc;
}

/* Scan [start, end) of the part; returns with *off where it stopped. */
static int part_scan_body(struct part *p, off_t *off)
{
	off_t mend = p->map ? (p->end >= 0 ? p->end : p->size) : *off;
	/* from the part's own start: the part before drops its own tail */
	off_t pg = (off_t)sysconf(_SC_PAGESIZE), dropped = *off / pg * pg;
	struct map_judge *j = p->judge;
	int rc;

	while (*off < mend && !p->shrunk) {
		off_t wend = mend - *off > (off_t)AL_MAP_WINDOW ?
			     *off + (off_t)AL_MAP_WINDOW : mend;

		if (j->skip) {
			j->skip--;
			rc = part_read(p, off, wend);
		} else {
			long f0 = thread_faults();

			if (__atomic_load_n(&p->stop, __ATOMIC_RELAXED))
				return AL_STOPPED;
			rc = map_scan(p, off, wend, &dropped);
			if (!j->first &&
			    thread_faults() - f0 > AL_MAP_FAULTS) {
				j->skip = j->retry;
				if (j->retry < AL_MAP_RETRY_MAX)
					j->retry *= 2;
			} else {
				j->retry = AL_MAP_RETRY;
			}
			j->first = 0;
		}
		if (rc)
			return rc;
	}
	if (p->map && mend > dropped) {
		off_t to = mend / pg * pg;

		if (to > dropped)
			madvise((void *)(p->map + dropped), (size_t)(to - dropped),
				MADV_DONTNEED);
	}
	/* the rest by reads: all of an unmapped part, and what was added
	 * to the last one after it was mapped */
	if (!p->shrunk && (p->end < 0 || *off < p->end)) {
		rc = part_read(p, off, p->end);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * Scan the part: mapped, guarded (a fault where the file was cut short
 * under the scan, see al_guard, ends the part as shrunk, and so does a
 * file found shorter afterwards: a cut within the last page reads as
 * zeros), or read.
 */
static int part_scan(struct part *p)
{
	struct al_guard g;
	struct stat st;
	off_t off = p->start;
	int rc;

	if (!p->map) {
		rc = part_scan_body(p, &off);
		goto last_line;
	}
	g.lo = p->map;
	g.hi = p->map + p->size;
	g.at = NULL;
	g.armed = 0;
	if (sigsetjmp(g.jb, 1)) {
		off_t at = g.at - p->map;

		al_guard = NULL;
		p->s.guard = NULL;
		/* the same fault for a page past the end of the file and for
		 * one the disk could not give: the file's size tells them
		 * apart */
		if (!fstat(p->fd, &st) && st.st_size > at)
			return pex_error_set(PEX_EIO, "cannot read %s: a read "
					     "error at byte %lld (the disk or "
					     "network under it)", p->path,
					     (long long)at);
		p->shrunk = 1;
		return 0;
	}
	al_guard = &g;
	p->s.guard = &g;
	g.armed = 1;
	rc = part_scan_body(p, &off);
	g.armed = 0;
	al_guard = NULL;
	p->s.guard = NULL;
	if (!rc && !p->shrunk && !fstat(p->fd, &st) &&
	    st.st_size < (p->end >= 0 ? p->end : p->size))
		p->shrunk = 1;
last_line:
	/* a line left without its newline ends the part, unless the file
	 * got shorter: then it is a piece of one, and the scan fails */
	if (!rc && !p->shrunk && (p->s.clen || p->s.overflow))
		rc = carry_finish(&p->s);
	return rc;
}

/* Scan part p for the caller, queueing its lines, and say it is done. */
static void part_run(struct part *p)
{
	int rc = part_scan(p);

	if (!rc)
		part_publish(p);
	pthread_mutex_lock(&p->mu);
	p->rc = rc;
	if (rc && rc != AL_STOPPED && rc != AL_YIELD)
		snprintf(p->err, sizeof(p->err), "%s", pex_error_last());
	p->done = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* Hand part p's queued lines to fn, numbered after base, as they come,
 * until it is done; without block (again not NULL), return as soon as
 * it has nothing queued but is not done, *again set. When fn stops it,
 * *stopped is the part's line that it stopped at. */
static int part_drain(struct part *p, pex_al_line_fn fn, void *data,
		      unsigned long long base, int *again,
		      unsigned long long *stopped)
{
	if (again)
		*again = 0;
	for (;;) {
		struct qchunk *c;
		size_t pos = 0;
		int rc = 0;

		pthread_mutex_lock(&p->mu);
		if (again && !p->head && !p->done) {
			pthread_mutex_unlock(&p->mu);
			*again = 1;
			return 0;
		}
		while (!p->head && !p->done)
			pthread_cond_wait(&p->cv, &p->mu);
		c = p->head;
		if (c) {
			p->head = c->next;
			if (!p->head)
				p->tail = NULL;
			p->queued -= c->len;
			pthread_cond_broadcast(&p->cv);
		} else if (p->rc) {
			rc = p->rc;
			if (rc != AL_STOPPED)
				pex_error_set(rc, "%s", p->err);
		}
		pthread_mutex_unlock(&p->mu);
		if (!c)
			return rc;
		while (!rc && pos < c->len) {
			struct qline q;

			memcpy(&q, c->data + pos, sizeof(q));
			pos += sizeof(q);
			rc = fn(data, q.held ? c->data + pos : NULL, q.len,
				base + q.lineno);
			if (rc)
				*stopped = q.lineno;
			if (q.held)
				pos += q.len;
		}
		free(c);
		if (rc)
			return rc;
	}
}

/* The start of the first line that begins at or after off (the byte
 * after a newline at off - 1 or later), or -1 when there is none within
 * a few blocks: a line that long is not worth a part. */
static off_t line_start(int fd, off_t off, char *buf)
{
	off_t at = off - 1;
	int i;

	/* 4 KiB at a time (a line is rarely longer), up to 1 MiB: a cut
	 * further inside a line is skipped (the part before goes on) */
	for (i = 0; i < 256; i++) {
		ssize_t n;
		const char *nl;

		do
			n = pread(fd, buf, 4096, at);
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			return -1;
		nl = memchr(buf, '\n', (size_t)n);
		if (nl)
			return at + (nl - buf) + 1;
		at += n;
	}
	return -1;
}

static int split_count(off_t size)
{
	long cpus;
	int n;

	if (split_parts > 0)
		n = split_parts;
	else {
		cpus = sysconf(_SC_NPROCESSORS_ONLN);
		n = cpus > 0 ? (int)cpus : 1;
	}
	if (n > AL_SPLIT_MAX)
		n = AL_SPLIT_MAX;
	if (size < (off_t)split_min || size < n)
		return 1;
	return n;
}

/* Where part n of k starts: an even cut. */
static off_t split_at(off_t size, int n, int k)
{
	return (off_t)((double)size * n / k);
}

/* The same file, open anew: a part's reads then have read-ahead state
 * of their own (a dup would share one, and the parts' interleaved
 * offsets would look like random reads to the kernel). Not by path,
 * which a rotation may have moved on; the descriptor itself when /proc
 * is not there. */
static int reopen(int fd)
{
	char name[64];
	int nfd;

	snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
	nfd = open(name, O_RDONLY | O_CLOEXEC);
	if (nfd < 0)
		return fd;
	posix_fadvise(nfd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return nfd;
}

static int shrunk_error(const char *path)
{
	return pex_error_set(PEX_EIO, "%s got shorter while it was read (a "
			     "rotation with copytruncate?), so some of its "
			     "lines may be missing: run the export again",
			     path);
}

/* The parts of a split scan and who has taken which. */
struct split {
	struct part *parts;
	int n;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int at;    /* the part the caller is on */
	int ahead; /* parts past at that may be taken */
	int stop;
};

/* A thread of a split scan, the caller's too, and what it reads with. */
struct split_thread {
	struct split *sp;
	int fd; /* its own: see reopen() */
	char *buf;
	struct map_judge judge;
	pthread_t thr;
	int started;
};

/* Part p is to be scanned by thread t. */
static void part_take(struct part *p, struct split_thread *t)
{
	p->fd = t->fd;
	p->buf = t->buf;
	p->judge = &t->judge;
}

/* Take the first free part from `from` on for a queued scan, if the
 * caller is not too far behind; -1 when there is none (yet). For the
 * caller: not one it had to give back. sp->mu held. */
static int split_take(struct split *sp, int from, int caller)
{
	int k, last = sp->at + sp->ahead;

	for (k = from; !sp->stop && k < sp->n && k <= last; k++) {
		if (!sp->parts[k].taken && !(caller && sp->parts[k].yielded)) {
			sp->parts[k].taken = 1;
			return k;
		}
	}
	return -1;
}

/* Whether a part is left for the workers to take, now or later. */
static int split_left(const struct split *sp)
{
	int k;

	for (k = sp->at; !sp->stop && k < sp->n; k++)
		if (!sp->parts[k].taken)
			return 1;
	return 0;
}

/* Scan part k on thread t, into its queue. */
static void split_scan_queued(struct split_thread *t, int k)
{
	struct part *p = &t->sp->parts[k];

	part_take(p, t);
	p->s.fn = part_queue;
	p->s.data = p;
	part_run(p);
}

static void *split_main(void *arg)
{
	struct split_thread *t = arg;
	struct split *sp = t->sp;
	int k;

	pthread_mutex_lock(&sp->mu);
	for (;;) {
		while ((k = split_take(sp, sp->at, 0)) < 0 && split_left(sp))
			pthread_cond_wait(&sp->cv, &sp->mu);
		if (k < 0)
			break;
		pthread_mutex_unlock(&sp->mu);
		split_scan_queued(t, k);
		pthread_mutex_lock(&sp->mu);
	}
	pthread_mutex_unlock(&sp->mu);
	return NULL;
}

/* A finished part's line buffers (a line carried across blocks, the
 * copy fn got): else each part would keep its own to the scan's end. */
static void part_let_go(struct part *p)
{
	free(p->s.carry);
	p->s.carry = NULL;
	p->s.ccap = 0;
	free(p->s.lbuf);
	p->s.lbuf = NULL;
	p->s.lcap = 0;
}

/* Part p as before its scan, its queue emptied: a part given back, or
 * the scan's end. */
static void part_reset(struct part *p)
{
	while (p->head) {
		struct qchunk *c = p->head;

		p->head = c->next;
		free(c);
	}
	free(p->fill);
	p->fill = NULL;
	p->tail = NULL;
	p->queued = 0;
	p->done = 0;
	p->rc = 0;
	p->shrunk = 0;
	p->s.lineno = 0;
	p->s.clen = 0;
	p->s.overflow = 0;
}

/* The caller's turn at part k: scan it if nobody has taken it, else hand
 * on its queued lines, scanning free parts while it has none. *base:
 * the lines before part k, then before the next. */
static int split_visit(struct split_thread *me, int k, pex_al_line_fn fn,
		       void *data, unsigned long long *base)
{
	struct split *sp = me->sp;
	struct part *p = &sp->parts[k];
	unsigned long long stopped = 0;
	int mine, u, rc, again;

	pthread_mutex_lock(&sp->mu);
	sp->at = k;
	pthread_cond_broadcast(&sp->cv);
	mine = !p->taken;
	p->taken = 1;
	pthread_mutex_unlock(&sp->mu);
	if (mine) {
		part_take(p, me);
		p->s.fn = fn;
		p->s.data = data;
		p->s.lineno = *base;
		rc = part_scan(p);
		*base = p->s.lineno;
		part_let_go(p);
		return rc;
	}
	while (!(rc = part_drain(p, fn, data, *base, &again, &stopped)) &&
	       again) {
		struct part *q;

		pthread_mutex_lock(&sp->mu);
		u = split_take(sp, k + 1, 1);
		pthread_mutex_unlock(&sp->mu);
		if (u < 0) {
			rc = part_drain(p, fn, data, *base, NULL, &stopped);
			break;
		}
		q = &sp->parts[u];
		q->by_caller = 1;
		split_scan_queued(me, u);
		if (q->rc == AL_YIELD) {
			/* more lines than a queue holds: given back, for a
			 * worker (which can wait) or the caller in its turn */
			part_reset(q);
			pthread_mutex_lock(&sp->mu);
			q->taken = 0;
			q->by_caller = 0;
			q->yielded = 1;
			pthread_cond_broadcast(&sp->cv);
			pthread_mutex_unlock(&sp->mu);
		}
	}
	/* the part is done only when the drain is: after an early stop
	 * its worker may still be counting */
	if (!rc) {
		*base += p->s.lineno;
		part_let_go(p);
	} else if (stopped) {
		*base += stopped; /* as a scan in one piece counts */
	}
	return rc;
}

/* Scan the plain file open as fd (closed here) in parts, or in one
 * piece when no line start is found to cut at. */
static int scan_split(int fd, const char *path,
		      const struct pex_al_scan_opts *opts, pex_al_line_fn fn,
		      void *data, unsigned long long *lines)
{
	struct split sp = {.n = 0};
	struct split_thread th[AL_SPLIT_MAX];
	const struct map_judge judge = {.retry = AL_MAP_RETRY, .first = 1};
	struct split_thread me = {.sp = &sp, .fd = fd, .judge = judge};
	unsigned long long base = 0;
	struct stat st;
	const char *map = NULL;
	char *buf = me.buf = malloc(AL_PART_BLOCK);
	int nt, want, k, rc = 0;

	memset(th, 0, sizeof(th));
	pthread_mutex_init(&sp.mu, NULL);
	pthread_cond_init(&sp.cv, NULL);
	if (fstat(fd, &st)) {
		memset(&st, 0, sizeof(st));
		nt = 1;
	} else {
		nt = split_count(st.st_size);
	}
	want = nt * AL_PARTS_PER_THREAD;
	while (want > nt && st.st_size / want < (off_t)AL_PART_MIN)
		want--;
	sp.parts = calloc((size_t)want, sizeof(*sp.parts));
	if (!buf || !sp.parts) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto out;
	}
	/* Mapped, the parts search the page cache where it lies: no copy,
	 * and a page cache held in huge pages (a log read back from disk)
	 * costs a fault per 2 MiB. Read, when it cannot be. */
	if (nt > 1 && st.st_size > 0 && (uint64_t)st.st_size <= SIZE_MAX &&
	    al_bus_ready()) {
		void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED,
			       fd, 0);

		if (m != MAP_FAILED)
			map = m;
	}
	for (k = 0; k < want; k++) {
		struct part *p;
		off_t at = 0;

		if (k > 0) {
			/* read, not mapped: no guard is up yet */
			at = line_start(fd, split_at(st.st_size, k, want), buf);
			/* no line start there (a line longer than a part
			 * spans the cut): the part before goes on */
			if (at < 0 || at <= sp.parts[sp.n - 1].start ||
			    at >= st.st_size)
				continue;
			sp.parts[sp.n - 1].end = at;
		}
		p = &sp.parts[sp.n++];
		p->start = at;
		p->size = st.st_size;
		p->path = path;
		p->map = map;
		p->s.o = opts;
		p->s.cmax = opts->max_line + 2;
		p->end = -1;
		pthread_mutex_init(&p->mu, NULL);
		pthread_cond_init(&p->cv, NULL);
	}
	sp.ahead = AL_AHEAD * nt;
	/* the other threads take parts in turn; the caller visits each in
	 * order. A thread that cannot start leaves its share to the rest. */
	for (k = 0; sp.n > 1 && k < nt - 1; k++) {
		th[k].sp = &sp;
		th[k].judge = judge;
		th[k].buf = malloc(AL_PART_BLOCK);
		th[k].fd = reopen(fd);
		th[k].started = th[k].buf && !pthread_create(&th[k].thr, NULL,
							     split_main,
							     &th[k]);
	}
	for (k = 0; k < sp.n && !rc; k++) {
		rc = split_visit(&me, k, fn, data, &base);
		/* a file cut short under the scan: what the later parts
		 * read no longer follows, and lines the subject made may
		 * be gone; the source fails rather than look complete */
		if (!rc && sp.parts[k].shrunk) {
			rc = shrunk_error(path);
			break;
		}
	}
out:
	pthread_mutex_lock(&sp.mu);
	sp.stop = 1;
	pthread_cond_broadcast(&sp.cv);
	pthread_mutex_unlock(&sp.mu);
	for (k = 0; k < sp.n; k++) {
		struct part *p = &sp.parts[k];

		pthread_mutex_lock(&p->mu);
		__atomic_store_n(&p->stop, 1, __ATOMIC_RELAXED);
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	for (k = 0; k < nt - 1; k++) {
		if (th[k].started)
			pthread_join(th[k].thr, NULL);
		if (th[k].sp && th[k].fd != fd)
			close(th[k].fd);
		free(th[k].buf);
	}
	for (k = 0; k < sp.n; k++) {
		struct part *p = &sp.parts[k];

		part_reset(p);
		part_let_go(p);
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
	}
	free(sp.parts);
	free(buf);
	pthread_mutex_destroy(&sp.mu);
	pthread_cond_destroy(&sp.cv);
	if (map)
		munmap((void *)map, (size_t)st.st_size);
	close(fd);
	*lines = base;
	return rc;
}

/* libarchive's read callback: the blocks the read-ahead thread got. */
static la_ssize_t prefetch_read(struct archive *a, void *data,
				const void **buf)
{
	la_ssize_t n = pex_al_prefetch_next(data, buf);

	if (n < 0)
		archive_set_error(a, errno, "%s", strerror(errno));
	return n;
}

int pex_al_scan(const char *path, const struct pex_al_scan_opts *opts,
		pex_al_line_fn fn, void *data, unsigned long long *lines)
{
	struct scanner s = {.o = opts, .fn = fn, .data = data};
	struct archive *a = archive_read_new();
	struct pex_al_prefetch *pf = NULL;
	struct archive_entry *ae;
	int rc = 0, r;

	*lines = 0;
	s.cmax = opts->max_line + 2; /* room for "\r" before the cut */
	if (!a)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	/* The compression filters by name rather than _all: "all" would
	 * also decode uuencoded or RPM input, which a text log could start
	 * like by chance. */
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_lzma(a);
	archive_read_support_filter_lzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_lz4(a);
	archive_read_support_filter_compress(a);
	archive_read_support_format_raw(a);
	/* Raw needs a byte to bid on: an empty log (just rotated),
	 * compressed or not, is read by the empty format instead. */
	archive_read_support_format_empty(a);
	rc = pex_al_prefetch_open(&pf, path, PEX_AL_BLOCK);
	if (rc)
		goto cleanup;
	if (archive_read_open(a, pf, NULL, prefetch_read, NULL) !=
	    ARCHIVE_OK) {
		rc = pex_error_set(PEX_EIO, "cannot open %s: %s", path,
				   archive_error_string(a));
		goto cleanup;
	}
	r = archive_read_next_header(a, &ae);
	if (r == ARCHIVE_EOF)
		goto cleanup; /* empty file */
	if (r < ARCHIVE_WARN) {
		rc = pex_error_set(PEX_EINVALID, "cannot read %s: %s", path,
				   archive_error_string(a));
		goto cleanup;
	}
	if (opts->count > 0 && archive_format(a) == ARCHIVE_FORMAT_RAW &&
	    archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE) {
		/* a plain file: in parts when it is big enough (its own
		 * descriptor, so the parts read what libarchive saw) */
		int fd = pex_al_prefetch_fd(pf);
		struct stat st;

		if (!fstat(fd, &st) && S_ISREG(st.st_mode) &&
		    opts->max_line <= AL_SPLIT_LINE_MAX &&
		    split_count(st.st_size) > 1 &&
		    (fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) >= 0) {
			archive_read_free(a);
			pex_al_prefetch_close(pf);
			return scan_split(fd, path, opts, fn, data, lines);
		}
	}
	for (;;) {
		const void *buf;
		size_t size;
		la_int64_t off;

		r = archive_read_data_block(a, &buf, &size, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			rc = pex_error_set(PEX_EINVALID, "cannot read %s: %s",
					   path, archive_error_string(a));
			goto cleanup;
		}
		rc = scan_block(&s, buf, size);
		if (rc)
			goto cleanup;
	}
	/* a plain file only: a decoder may stop before bytes that follow
	 * its stream (padding), which is no truncation */
	if (archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE &&
	    pex_al_prefetch_shrunk(pf)) {
		rc = shrunk_error(path);
		goto cleanup;
	}
	if (s.clen || s.overflow)
		rc = carry_finish(&s); /* last line without newline */
cleanup:
	*lines = s.lineno;
	free(s.carry);
	archive_read_free(a);
	pex_al_prefetch_close(pf);
	return rc;
}
