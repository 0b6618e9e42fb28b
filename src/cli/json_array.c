/*
 * A JSON array on stdout written an item at a time, so that a command
 * listing many things (a batch's rows, the bundles verified) never holds
 * them all as JSON values; the bytes are those json_dumpf() of the whole
 * array with JSON_INDENT(2) would write.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"

int pex_cli_json_item(const json_t *item, int first)
{
	char *text = json_dumps(item, JSON_INDENT(2));
	const char *p;

	if (!text)
		return -1;
	fputs(first ? "[\n  " : ",\n  ", stdout);
	/* a string holds no raw line end: every one is the layout's */
	for (p = text; *p; p++) {
		putchar(*p);
		if (*p == '\n')
			fputs("  ", stdout);
	}
	free(text);
	return 0;
}

void pex_cli_json_end(int items)
{
	fputs(items ? "\n]\n" : "[]\n", stdout);
}
