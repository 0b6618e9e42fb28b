/*
 * The portex commands. Each takes the argv of its own command (argv[0] is
 * the command name) and returns the process exit code (see EXIT CODES in
 * docs/portex.1).
 */
#ifndef PEX_CLI_COMMANDS_H
#define PEX_CLI_COMMANDS_H

#define PEX_EXIT_OK 0
#define PEX_EXIT_FAIL 1
#define PEX_EXIT_USAGE 2
#define PEX_EXIT_PARTIAL 3

#include <jansson.h>

/* An array on stdout, an item at a time (cli/json_array.c): each item
 * after "[" or ","; then the end, "[]" when there was none. -1 when the
 * item cannot be written (no memory): nothing is printed for it. */
int pex_cli_json_item(const json_t *item, int first);
void pex_cli_json_end(int items);

int pex_cmd_export(int argc, char **argv);
int pex_cmd_verify(int argc, char **argv);
int pex_cmd_validate(int argc, char **argv);
int pex_cmd_check(int argc, char **argv);

#endif
