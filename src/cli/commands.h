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

int pex_cmd_export(int argc, char **argv);
int pex_cmd_verify(int argc, char **argv);
int pex_cmd_validate(int argc, char **argv);
int pex_cmd_check(int argc, char **argv);

#endif
