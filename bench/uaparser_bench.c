/*
 * uaparser_bench: load time and parse time of the uap-core user-agent
 * parser, with and without JIT, plus the slowest hostile input found
 * among a few shapes at the PEX_UA_INPUT_MAX cap.
 *
 *   uaparser_bench [regexes.yaml [user-agents.txt]]
 *
 * user-agents.txt holds one user agent per line (lines over 4 KiB are
 * cut); without it a small built-in set is used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "portex/error.h"
#include "portex/uaparser.h"
#include "uaparser/uaparser_int.h"

#define LINE_MAX_BYTES 4096
#define UAS_MAX 100000

static const char *builtin[] = {
	"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 "
	"Firefox/121.0",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
	"(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) "
	"AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 "
	"Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 "
	"(KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (compatible; Googlebot/2.1; "
	"+http://www.google.com/bot.html)",
	"curl/8.4.0",
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t read_uas(const char *path, char ***out)
{
	char line[LINE_MAX_BYTES];
	char **v = calloc(UAS_MAX, sizeof(*v));
	size_t n = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL || v == NULL) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(1);
	}
	while (n < UAS_MAX && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		v[n] = strdup(line);
		if (v[n] == NULL)
			exit(1);
		n++;
	}
	fclose(f);
	*out = v;
	return n;
}

static void run(const char *regexes, char **uas, size_t n, unsigned opts)
{
	static struct pex_ua_result r;
	static char hostile[PEX_UA_INPUT_MAX];
	static const char *shapes[] = { "a", "(;", "Build/1.", " ", "/1" };
	pex_uaparser_scratch *s = NULL;
	pex_uaparser *p = NULL;
	double t0, t1, worst = 0;
	size_t rounds = n < 1000 ? 20000 / n : 1;
	const char *worst_shape = "";

	t0 = now();
	if (uap_load_opts(&p, regexes, opts) != 0) {
		fprintf(stderr, "%s\n", pex_error_last());
		exit(1);
	}
	t1 = now();
	printf("%s: load %.1f ms\n", opts ? "interpreter" : "jit",
	       (t1 - t0) * 1e3);
	if (pex_uaparser_scratch_new(p, &s) != 0)
		exit(1);
	t0 = now();
	for (size_t k = 0; k < rounds; k++)
		for (size_t i = 0; i < n; i++)
			pex_uaparser_parse(p, s, uas[i], strlen(uas[i]), &r);
	t1 = now();
	printf("  %zu parses, %.1f us each\n", rounds * n,
	       (t1 - t0) * 1e6 / (double)(rounds * n));
	for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
		size_t len = strlen(shapes[k]);

		for (size_t i = 0; i < sizeof(hostile); i++)
			hostile[i] = shapes[k][i % len];
		t0 = now();
		pex_uaparser_parse(p, s, hostile, sizeof(hostile), &r);
		t1 = now();
		if (t1 - t0 > worst) {
			worst = t1 - t0;
			worst_shape = shapes[k];
		}
	}
	printf("  slowest hostile %d-byte input (\"%s\" repeated): "
	       "%.2f ms\n", PEX_UA_INPUT_MAX, worst_shape, worst * 1e3);
	pex_uaparser_scratch_free(s);
	pex_uaparser_free(p);
}

int main(int argc, char **argv)
{
	const char *regexes = argc > 1 ? argv[1] : NULL;
	char **uas = (char **)builtin;
	size_t n = sizeof(builtin) / sizeof(builtin[0]);

	if (argc > 2)
		n = read_uas(argv[2], &uas);
	if (n == 0) {
		fprintf(stderr, "no user agents\n");
		return 1;
	}
	run(regexes, uas, n, 0);
	run(regexes, uas, n, UAP_LOAD_NO_JIT);
	if (uas != (char **)builtin) {
		for (size_t i = 0; i < n; i++)
			free(uas[i]);
		free(uas);
	}
	return 0;
}
