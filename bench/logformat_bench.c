/*
 * Speed of the access-log line parser (src/collectors/access_log).
 *
 *   logformat_bench [FILE [FORMAT]]
 *
 * Without FILE it builds 1,000,000 varied combined-format lines in
 * memory; with FILE it reads that file (at most BENCH_FILE_MAX bytes) and
 * parses it with preset FORMAT (default "combined"). It reports lines/s
 * and MB/s for: splitting lines only (the floor any reader pays), one
 * memmem() over the whole buffer (what grep -F does), the pre-filter with
 * 1 and with 200 needles, the time-only path, and the full parse.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collectors/access_log/logformat.h"
#include "portex/error.h"

#define BENCH_LINES 1000000
#define BENCH_FILE_MAX (1u << 30)
#define BENCH_MIN_SECONDS 0.5

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t rnd(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s >> 8;
}

static char *generate(size_t *len, size_t lines)
{
	static const char *const paths[] = {
		"/", "/index.html", "/contact?from=nav",
		"/blog/2024/03/a-post", "/static/app.3f9a1c.js",
		"/img/logo.png", "/api/v1/items?page=2&sort=desc",
		"/wp-login.php",
	};
	static const char *const agents[] = {
		"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 "
		"Firefox/121.0",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
		"(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"curl/8.5.0",
		"Mozilla/5.0 (compatible; Googlebot/2.1; "
		"+http://www.google.com/bot.html)",
	};
	static const char *const refs[] = {
		"-", "https://www.example.com/", "https://www.google.com/",
	};
	size_t cap = lines * 320, o = 0;
	char *buf = malloc(cap);
	uint32_t s = 42;

	if (!buf)
		return NULL;
	for (size_t i = 0; i < lines; i++) {
		int n = snprintf(buf + o, cap - o,
			"%u.%u.%u.%u - - [%02u/Mar/2024:%02u:%02u:%02u +0100] "
			"\"GET %s HTTP/1.1\" %u %u \"%s\" \"%s\"\n",
			rnd(&s) % 223 + 1, rnd(&s) % 256, rnd(&s) % 256,
			rnd(&s) % 254 + 1, (unsigned)(i / 40000) % 28 + 1,
			rnd(&s) % 24, rnd(&s) % 60, rnd(&s) % 60,
			paths[rnd(&s) % 8], rnd(&s) % 5 ? 200 : 404,
			rnd(&s) % 100000, refs[rnd(&s) % 3],
			agents[rnd(&s) % 4]);

		if (n < 0 || (size_t)n >= cap - o)
			break;
		o += (size_t)n;
	}
	*len = o;
	return buf;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	long sz;

	if (!fp)
		return NULL;
	if (fseek(fp, 0, SEEK_END) == 0 && (sz = ftell(fp)) >= 0 &&
	    (unsigned long)sz <= BENCH_FILE_MAX) {
		rewind(fp);
		buf = malloc((size_t)sz + 1);
		if (buf && fread(buf, 1, (size_t)sz, fp) != (size_t)sz) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)sz;
	}
	fclose(fp);
	return buf;
}

enum mode { SPLIT, MEMMEM, NEEDLES1, NEEDLES200, TIME_ONLY, FULL };

struct ctx {
	const char *buf;
	size_t len;
	const struct pex_logformat *fmt;
	const struct pex_logneedles *n1, *n200;
	char *scratch;
	size_t scratch_cap;
	size_t ok, hits, lines;
};

static void one_pass(struct ctx *c, enum mode m)
{
	struct pex_logrec rec;
	struct pex_logtime t;
	size_t pos = 0;

	if (m == MEMMEM) {
		const char *p = c->buf, *end = c->buf + c->len;

		while ((p = memmem(p, (size_t)(end - p), "203.0.113.77", 12)))
			{
			c->hits++;
			p++;
		}
		return;
	}
	while (pos < c->len) {
		const char *line = c->buf + pos;
		const char *nl = memchr(line, '\n', c->len - pos);
		size_t n = nl ? (size_t)(nl - line) + 1 : c->len - pos;

		c->lines++;
		switch (m) {
		case SPLIT:
			break;
		case NEEDLES1:
			c->hits += (size_t)pex_logneedles_match(c->n1, line,
								n);
			break;
		case NEEDLES200:
			c->hits += (size_t)pex_logneedles_match(c->n200, line,
								n);
			break;
		case TIME_ONLY:
			c->ok += pex_logline_time(c->fmt, line, n, &t) ==
				 PEX_LOGLINE_OK;
			break;
		case FULL:
			c->ok += pex_logline_parse(c->fmt, line, n, &rec,
						   c->scratch,
						   c->scratch_cap) ==
				 PEX_LOGLINE_OK;
			break;
		default:
			break;
		}
		pos += n;
	}
}

static void run(struct ctx *c, enum mode m, const char *name, size_t lines)
{
	double t0 = now(), t;
	int passes = 0;

	c->ok = c->hits = c->lines = 0;
	do {
		one_pass(c, m);
		passes++;
		t = now() - t0;
	} while (t < BENCH_MIN_SECONDS);
	printf("%-22s %8.2f M lines/s %9.1f MB/s", name,
	       (double)lines * passes / t / 1e6,
	       (double)c->len * passes / t / 1e6);
	if (m == FULL || m == TIME_ONLY)
		printf("  (%zu of %zu ok)", c->ok / (size_t)passes, lines);
	printf("\n");
}

int main(int argc, char **argv)
{
	struct pex_logformat *fmt = NULL;
	struct pex_logneedles *n1 = NULL, *n200 = NULL;
	static char store[200][20];
	const char *needles[200];
	const char *one[] = {"203.0.113.77"};
	struct ctx c = {0};
	size_t len = 0, lines = 0;
	char *buf;
	int rc = 1;

	buf = argc > 1 ? slurp(argv[1], &len) : generate(&len, BENCH_LINES);
	if (!buf) {
		fprintf(stderr, "logformat_bench: cannot read input\n");
		return 1;
	}
	for (size_t i = 0; i < len; i++)
		lines += buf[i] == '\n';
	if (len && buf[len - 1] != '\n')
		lines++;
	for (int i = 0; i < 200; i++) {
		snprintf(store[i], sizeof(store[i]), "203.0.%d.%d",
			 100 + i / 50, i % 50 + 1);
		needles[i] = store[i];
	}
	if (pex_logformat_preset(&fmt, argc > 2 ? argv[2] : "combined") < 0 ||
	    pex_logneedles_new(&n1, one, 1) < 0 ||
	    pex_logneedles_new(&n200, needles, 200) < 0) {
		fprintf(stderr, "logformat_bench: %s\n", pex_error_last());
		goto cleanup;
	}
	c = (struct ctx){.buf = buf, .len = len, .fmt = fmt, .n1 = n1,
			 .n200 = n200, .scratch_cap = PEX_LOGLINE_MAX_DEFAULT};
	c.scratch = malloc(c.scratch_cap);
	if (!c.scratch)
		goto cleanup;
	printf("%zu lines, %.1f MB, %.0f bytes/line\n", lines, len / 1e6,
	       lines ? (double)len / (double)lines : 0.0);
	run(&c, SPLIT, "split lines only", lines);
	run(&c, MEMMEM, "memmem whole buffer", lines);
	run(&c, NEEDLES1, "prefilter 1 needle", lines);
	run(&c, NEEDLES200, "prefilter 200 needles", lines);
	run(&c, TIME_ONLY, "time only", lines);
	run(&c, FULL, "full parse", lines);
	rc = 0;
cleanup:
	free(c.scratch);
	pex_logneedles_free(n1);
	pex_logneedles_free(n200);
	pex_logformat_free(fmt);
	free(buf);
	return rc;
}
