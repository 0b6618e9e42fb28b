/* portex check: is this config usable? */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "portex/config.h"
#include "portex/error.h"
#include "portex/export.h"

static void help(FILE *f)
{
	fprintf(f,
"usage: portex check -c CONFIG [--json]\n"
"\n"
"Validate the config against its schema (every problem with its line)\n"
"and try every source: open the database, read the file, check the\n"
"options. Exports nothing.\n"
"\n"
"  -c, --config FILE   the portex.yaml to check (or $PORTEX_CONFIG)\n"
"      --json          the report as JSON on stdout\n"
"  -h, --help          this text\n"
"\n"
"exit codes: 0 all usable; 1 a problem was found; 2 usage error\n");
}

int pex_cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *config = getenv("PORTEX_CONFIG");
	pex_config *cfg = NULL;
	json_t *report = NULL, *row;
	int c, json_out = 0, rc;
	size_t i;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'J': json_out = 1; break;
		case 'h': help(stdout); return PEX_EXIT_OK;
		default:
			fprintf(stderr, "see 'portex check --help'\n");
			return PEX_EXIT_USAGE;
		}
	}
	if (!config || optind < argc) {
		if (!config)
			fprintf(stderr, "portex check: no config: give it "
				"with -c or $PORTEX_CONFIG\n");
		else
			fprintf(stderr, "portex check: unexpected argument "
				"'%s'\n", argv[optind]);
		fprintf(stderr, "see 'portex check --help'\n");
		return PEX_EXIT_USAGE;
	}
	if (pex_config_load(&cfg, config)) {
		fprintf(stderr, "portex check: %s\n", pex_error_last());
		return PEX_EXIT_FAIL;
	}
	rc = pex_check_sources(cfg, &report);
	if (json_out) {
		json_dumpf(report, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		printf("%s: config is valid\n", config);
		json_array_foreach(report, i, row) {
			const json_t *err = json_object_get(row, "error");

			printf("  %-14s %-10s %s%s%s\n",
			       json_string_value(json_object_get(row, "id")),
			       json_string_value(json_object_get(row,
								 "collector")),
			       json_string_value(json_object_get(row,
								 "status")),
			       err ? ": " : "",
			       err ? json_string_value(err) : "");
			{
				const json_t *w;
				size_t k;

				json_array_foreach(json_object_get(row,
						   "warnings"), k, w)
					printf("    warning: %s\n",
					       json_string_value(w));
			}
		}
	}
	json_decref(report);
	pex_config_free(cfg);
	return rc ? PEX_EXIT_FAIL : PEX_EXIT_OK;
}
