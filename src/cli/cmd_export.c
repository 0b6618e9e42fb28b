/* portex export: one subject, every source, one bundle. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "core/log.h"
#include "portex/config.h"
#include "portex/engine.h"
#include "portex/error.h"
#include "portex/export.h"

static void help(FILE *f)
{
	fprintf(f,
"usage: portex export -c CONFIG -s TYPE:VALUE [-s ...] -o OUT.zip [options]\n"
"\n"
"Collect every record the configured sources hold about one person and\n"
"write them as a zipped bundle (JSON, XML, schemas, manifest).\n"
"\n"
"  -c, --config FILE      the portex.yaml to use (or $PORTEX_CONFIG)\n"
"  -s, --subject TYPE:VALUE\n"
"                         an identity of the person, e.g.\n"
"                         email:alice@example.com, customer_id:C-17,\n"
"                         phone:+441534000000, or an IP address with the\n"
"                         time window it belonged to them:\n"
"                         ip:203.0.113.7@2026-01-03T10:00:00Z/PT30M\n"
"  -r, --request-id ID    the request this answers (goes into the bundle)\n"
"  -o, --output FILE      where to write the zip; it appears only when\n"
"                         complete\n"
"      --allow-partial    when a source fails, still write the bundle,\n"
"                         marked \"complete\": false (exit code 3)\n"
"      --json             print a machine-readable summary on stdout\n"
"  -q, --quiet            no progress, no summary; errors only\n"
"  -v, --verbose          more diagnostics on stderr\n"
"  -h, --help             this text\n"
"\n"
"exit codes: 0 complete bundle written; 1 failed, no bundle; 2 usage\n"
"error; 3 bundle written with --allow-partial while a source failed\n");
}

struct progress {
	int tty;
	int quiet;
};

static void on_progress(void *data, const char *source,
			unsigned long long records, int done)
{
	struct progress *p = data;

	if (!p->tty || p->quiet)
		return;
	fprintf(stderr, "\r\033[Kportex: %s: %llu record%s%s", source,
		records, records == 1 ? "" : "s", done ? "\n" : "");
	fflush(stderr);
}

static void print_summary(const json_t *sum, FILE *f)
{
	const json_t *s, *w;
	size_t i;

	json_array_foreach(json_object_get(sum, "sources"), i, s) {
		const json_t *err = json_object_get(s, "error");

		fprintf(f, "  %-14s %-10s %-9s %-7s %6" JSON_INTEGER_FORMAT
			" records%s%s\n",
			json_string_value(json_object_get(s, "id")),
			json_string_value(json_object_get(s, "collector")),
			json_string_value(json_object_get(s, "category")),
			json_string_value(json_object_get(s, "status")),
			json_integer_value(json_object_get(s, "records")),
			err ? "\n      error: " : "",
			err ? json_string_value(err) : "");
	}
	json_array_foreach(json_object_get(sum, "warnings"), i, w)
		fprintf(f, "  warning: %s: %s (%" JSON_INTEGER_FORMAT "x)\n",
			json_string_value(json_object_get(w, "source")),
			json_string_value(json_object_get(w, "message")),
			json_integer_value(json_object_get(w, "count")));
}

int pex_cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "subject", required_argument, NULL, 's' },
		{ "request-id", required_argument, NULL, 'r' },
		{ "output", required_argument, NULL, 'o' },
		{ "allow-partial", no_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'J' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct pex_export_request req = { 0 };
	struct pex_identity_set ids = { 0 };
	struct progress prog = { isatty(STDERR_FILENO), 0 };
	const char *config = getenv("PORTEX_CONFIG");
	pex_config *cfg = NULL;
	json_t *summary = NULL;
	int c, json_out = 0, rc, code = PEX_EXIT_USAGE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:s:r:o:qvh", opts, NULL)) != -1) {
		struct pex_identity id;

		switch (c) {
		case 'c': config = optarg; break;
		case 's':
			if (pex_identity_parse(&id, optarg)) {
				fprintf(stderr, "portex export: -s %s: %s\n",
					optarg, pex_error_last());
				goto cleanup;
			}
			rc = pex_identity_set_add(&ids, &id);
			pex_identity_clear(&id);
			if (rc)
				goto fail;
			break;
		case 'r': req.request_id = optarg; break;
		case 'o': req.out_path = optarg; break;
		case 'P': req.allow_partial = 1; break;
		case 'J': json_out = 1; break;
		case 'q': prog.quiet = 1; pex_log_set_level(0); break;
		case 'v': pex_log_set_level(3); break;
		case 'h': help(stdout); code = PEX_EXIT_OK; goto cleanup;
		default: help(stderr); goto cleanup;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "portex export: unexpected argument '%s'\n",
			argv[optind]);
		goto cleanup;
	}
	if (!config || !ids.count || !req.out_path) {
		fprintf(stderr, "portex export: %s is required\n"
			"try: portex export -c portex.yaml -s "
			"email:alice@example.com -o alice.zip\n",
			!config ? "-c CONFIG" : !ids.count ?
			"at least one -s TYPE:VALUE" : "-o OUT.zip");
		goto cleanup;
	}
	if (pex_config_load(&cfg, config)) {
		fprintf(stderr, "portex export: %s\n", pex_error_last());
		goto fail;
	}
	req.cfg = cfg;
	req.identities = &ids;
	req.progress = on_progress;
	req.progress_data = &prog;
	rc = pex_export(&req, &summary);
	if (rc < 0) {
		fprintf(stderr, "portex export: %s\n", pex_error_last());
		if (summary && !prog.quiet && !json_out)
			print_summary(summary, stderr);
		if (summary && json_out) {
			json_object_set_new(summary, "error",
					    json_string(pex_error_last()));
			json_dumpf(summary, stdout, JSON_INDENT(2));
			putchar('\n');
		}
		goto fail;
	}
	if (json_out) {
		json_dumpf(summary, stdout, JSON_INDENT(2));
		putchar('\n');
	} else if (!prog.quiet) {
		printf("portex: wrote %s (%s)\n", req.out_path,
		       rc == PEX_EXPORT_COMPLETE ? "complete" :
		       "INCOMPLETE: a source failed");
		print_summary(summary, stdout);
	}
	code = rc == PEX_EXPORT_COMPLETE ? PEX_EXIT_OK : PEX_EXIT_PARTIAL;
	goto cleanup;
fail:
	code = PEX_EXIT_FAIL;
cleanup:
	json_decref(summary);
	pex_config_free(cfg);
	pex_identity_set_clear(&ids);
	return code;
}
