/* portex: the command line front end. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "core/cleanup.h"
#include "portex/error.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "export", pex_cmd_export,
	  "collect one person's data from every source into a bundle;\n"
	  "            with --batch, many people's, reading each log once" },
	{ "verify", pex_cmd_verify,
	  "check a bundle: hashes, manifest and schemas" },
	{ "validate", pex_cmd_validate,
	  "validate JSON or XML documents against a schema" },
	{ "check", pex_cmd_check,
	  "validate a config and try every source in it" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: portex COMMAND [OPTIONS]\n\n"
		   "portex answers data subject access and portability "
		   "requests: it pulls\none person's records from the "
		   "configured sources and writes a zipped,\n"
		   "schema-validated JSON and XML bundle.\n\ncommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(f, "\n`portex COMMAND --help` (or `portex help COMMAND`) "
		   "shows a command's options;\n"
		   "`man portex` (in the source tree: man -l docs/portex.1) has the rest.\n"
		   "`portex --version` prints the version.\n"
		   "exit codes: 0 done, 1 failed, 2 usage error, 3 bundle "
		   "written but incomplete\n");
}

int main(int argc, char **argv)
{
	size_t i;
	int rc;

	if (argc < 2) {
		usage(stderr);
		return PEX_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "help") && argc > 2) {
		/* "portex help export" is "portex export --help" */
		char *sub[3] = {argv[2], (char *)"--help", NULL};

		for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			if (!strcmp(argv[2], commands[i].name))
				return commands[i].run(2, sub);
		fprintf(stderr, "portex: no command '%s'; see 'portex "
			"--help'\n", argv[2]);
		return PEX_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return PEX_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("portex %s\n", PEX_VERSION);
		return PEX_EXIT_OK;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		static char name[32];

		if (strcmp(argv[1], commands[i].name))
			continue;
		/* getopt_long names the program in its messages ("portex
		 * export: unrecognized option ...") by argv[0] */
		snprintf(name, sizeof(name), "portex %s", commands[i].name);
		argv[1] = name;
		/* before any thread exists, so that every thread inherits
		 * the blocked signals and only the cleanup thread sees
		 * them: Ctrl-C then leaves no personal data in temporary
		 * files (core/cleanup.h) */
		if (pex_cleanup_on_signals())
			fprintf(stderr, "portex: %s; an interruption may "
				"leave temporary files beside the output\n",
				pex_error_last());
		rc = commands[i].run(argc - 1, argv + 1);
		/* anything a failed path left registered */
		pex_cleanup_run();
		return rc;
	}
	fprintf(stderr, "portex: unknown command '%s'; the commands are "
		"export, verify, validate and check (see 'portex --help')\n",
		argv[1]);
	return PEX_EXIT_USAGE;
}
