/* portex verify: check a bundle as its receiver would. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/text.h"
#include "portex/bundle.h"
#include "portex/error.h"

static void help(FILE *f)
{
	fprintf(f,
"usage: portex verify [--json] BUNDLE.zip...\n"
"\n"
"Recompute every file's size and SHA-256 and compare with the manifest,\n"
"look for files the manifest does not list, validate every JSON and XML\n"
"file against the schema the manifest names (from the bundle's own\n"
"schemas/), and check that data/bundle.json agrees with the manifest.\n"
"\n"
"  --json      one JSON array on stdout, an object per bundle:\n"
"              {\"bundle\", \"ok\", \"complete\", \"problems\": [...]}\n"
"  -h, --help  this text\n"
"\n"
"exit codes: 0 every bundle holds; 1 a problem was found (one line per\n"
"problem: BUNDLE: FILE: what is wrong); 2 usage error\n");
}

int pex_cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c, printed = 0, json_out = 0, code = PEX_EXIT_OK;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'J': json_out = 1; break;
		case 'h': help(stdout); return PEX_EXIT_OK;
		default:
			fprintf(stderr, "see 'portex verify --help'\n");
			return PEX_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "portex verify: no bundle given\n"
			"see 'portex verify --help'\n");
		return PEX_EXIT_USAGE;
	}
	for (; optind < argc; optind++) {
		const char *path = argv[optind];
		json_t *problems = NULL, *p;
		size_t i;
		int rc = pex_bundle_verify(path, &problems);

		if (rc < 0)
			json_array_append_new(problems,
					      json_string(pex_error_last()));
		if (json_out) {
			int whole = rc >= 0 ? pex_bundle_complete(path) : -1;
			char *name = strdup(path);
			json_t *o;

			if (name) /* a path is bytes; the entry is text */
				pex_utf8_mend(name);
			o = json_pack("{s:s?, s:b, s:o?, s:O}", "bundle", name,
				      "ok", rc == 0, "complete", whole < 0 ?
				      NULL : json_boolean(whole == 1),
				      "problems", problems);
			if (!o || !name || pex_cli_json_item(o, !printed)) {
				fprintf(stderr, "portex verify: %s: out of "
					"memory\n", path);
				code = PEX_EXIT_FAIL;
			} else {
				printed++;
			}
			free(name);
			json_decref(o);
		} else {
			json_array_foreach(problems, i, p)
				printf("%s: %s\n", path, json_string_value(p));
			if (!json_array_size(problems))
				printf("%s: ok%s\n", path,
				       pex_bundle_complete(path) == 0 ?
				       " (but INCOMPLETE: the bundle says a "
				       "source could not be read)" : "");
		}
		if (rc)
			code = PEX_EXIT_FAIL;
		json_decref(problems);
	}
	if (json_out)
		pex_cli_json_end(printed);
	return code;
}
