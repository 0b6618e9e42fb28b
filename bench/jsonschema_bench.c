/*
 * JSON Schema validation throughput on one core.
 *
 * Generates N usage-event records (JSON lines, default 1,000,000) shaped
 * like the weblog collector's output, then in batches: parses each line
 * with jansson (timed), validates the parsed records against
 * urn:portex:schema:1:usage_event (timed separately), frees them
 * (untimed). Every JSON file in schemas/v1 is registered by its $id so the
 * absolute $refs resolve. Prints a table of records/s and the ratio.
 *
 * usage: jsonschema_bench [SCHEMA_DIR [RECORDS]]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "portex/error.h"
#include "portex/jsonschema.h"

/* Records parsed, then validated, per round. Small enough to stay in
 * cache, as in the pipeline where a record is checked right after it is
 * built; large enough that clock reads cost nothing. */
#define BATCH 256

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const paths[] = {"/",
				    "/contact",
				    "/services/backup",
				    "/blog/2025/11/vpn-tips",
				    "/about",
				    "/pricing?plan=pro"};
static const char *const agents[] = {
	"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 "
	"Firefox/121.0",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
	"(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	"curl/8.5.0"};

/* One record as a JSON line into buf; returns its length. */
static int make_record(char *buf, size_t cap, unsigned long i)
{
	unsigned h = rnd() % 24, m = rnd() % 60, s = rnd() % 60;

	return snprintf(
		buf, cap,
		"{\"id\":\"weblog:access.log:%lu\",\"source\":\"weblog\","
		"\"matched_by\":{\"type\":\"ip\",\"value\":\"203.0.113.%u\","
		"\"window\":\"2026-01-03T09:30:00Z/2026-01-03T10:30:00Z\"},"
		"\"at\":\"2026-01-%02uT%02u:%02u:%02uZ\","
		"\"client_ip\":\"203.0.113.%u\",\"method\":\"GET\","
		"\"path\":\"%s\",\"protocol\":\"HTTP/1.1\",\"status\":%u,"
		"\"bytes\":%u,\"duration_ms\":%u.%u,"
		"\"referrer\":\"https://www.example.com/\","
		"\"user_agent\":\"%s\",\"host\":\"www.example.com\","
		"\"extra\":{\"vhost\":\"www\",\"tls\":true}}",
		i, rnd() % 256, 1 + rnd() % 28, h, m, s, rnd() % 256,
		paths[rnd() % 6], 200 + (rnd() % 4) * 100, rnd() % 100000,
		rnd() % 900, rnd() % 10, agents[rnd() % 3]);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "schemas/v1";
	unsigned long n = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000000;
	pex_schema_registry *reg = NULL;
	pex_schema *schema = NULL;
	char *data = NULL, **lines = NULL;
	size_t *lens = NULL, cap, used = 0;
	json_t **batch = NULL;
	double t_parse = 0, t_valid = 0, t0;
	unsigned long i, j, invalid = 0, bytes = 0;
	int rc = 1;

	if (n == 0)
		n = 1;
	cap = (size_t)n * 700;
	data = malloc(cap);
	lines = malloc(n * sizeof(*lines));
	lens = malloc(n * sizeof(*lens));
	batch = malloc(BATCH * sizeof(*batch));
	if (!data || !lines || !lens || !batch) {
		fprintf(stderr, "out of memory\n");
		goto cleanup;
	}
	for (i = 0; i < n; i++) {
		int l = make_record(data + used, cap - used, i);

		if (l < 0 || (size_t)l >= cap - used) {
			fprintf(stderr, "record buffer too small\n");
			goto cleanup;
		}
		lines[i] = data + used;
		lens[i] = (size_t)l;
		used += (size_t)l + 1;
		bytes += (unsigned long)l + 1;
	}
	if (pex_schema_registry_new(&reg) < 0 ||
	    pex_schema_registry_add_dir(reg, "file:///bench/", dir) < 0 ||
	    pex_schema_compile_uri(&schema, reg,
				   "urn:portex:schema:1:usage_event") < 0) {
		fprintf(stderr, "schema: %s\n", pex_error_last());
		goto cleanup;
	}
	for (i = 0; i < n; i += BATCH) {
		unsigned long m = n - i < BATCH ? n - i : BATCH;

		t0 = now();
		for (j = 0; j < m; j++) {
			batch[j] =
				json_loadb(lines[i + j], lens[i + j], 0, NULL);
			if (!batch[j]) {
				fprintf(stderr, "record %lu: parse failed\n",
					i + j);
				goto cleanup;
			}
		}
		t_parse += now() - t0;
		t0 = now();
		for (j = 0; j < m; j++) {
			int r = pex_schema_validate(schema, batch[j],
						    PEX_SCHEMA_FIRST_ERROR,
						    NULL, NULL);

			if (r < 0) {
				fprintf(stderr, "validate: %s\n",
					pex_error_last());
				goto cleanup;
			}
			invalid += r != 0;
		}
		t_valid += now() - t0;
		for (j = 0; j < m; j++)
			json_decref(batch[j]);
	}
	printf("records: %lu (%.1f MB of JSON lines), invalid: %lu\n", n,
	       (double)bytes / 1e6, invalid);
	printf("%-22s %10s %14s\n", "phase", "seconds", "records/s");
	printf("%-22s %10.3f %14.0f\n", "jansson parse", t_parse,
	       (double)n / t_parse);
	printf("%-22s %10.3f %14.0f\n", "schema validate", t_valid,
	       (double)n / t_valid);
	printf("%-22s %10.3f %14.0f\n", "parse + validate", t_parse + t_valid,
	       (double)n / (t_parse + t_valid));
	printf("validate/parse time ratio: %.2f\n", t_valid / t_parse);
	rc = invalid ? 1 : 0;
	if (invalid)
		fprintf(stderr, "generated records should all be valid\n");
cleanup:
	pex_schema_free(schema);
	pex_schema_registry_free(reg);
	free(data);
	free(lines);
	free(lens);
	free(batch);
	return rc;
}
