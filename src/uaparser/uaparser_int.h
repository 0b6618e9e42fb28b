/*
 * Internals of the user-agent parser (see include/portex/uaparser.h).
 *
 * uap_load.c turns a uap-core rule file into a struct pex_uaparser;
 * uaparser.c matches strings against it. A parser owns every rule, every
 * compiled pattern and every replacement string in it; all of them are
 * freed by pex_uaparser_free(). Nothing in a loaded parser is written
 * again, which is what makes it safe to share between threads.
 */
#ifndef PEX_UAPARSER_INT_H
#define PEX_UAPARSER_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "portex/uaparser.h"

enum uap_list_id {
	UAP_LIST_UA = 0,
	UAP_LIST_OS,
	UAP_LIST_DEVICE,
	UAP_LIST__COUNT
};

/* Most output fields any list has (browser and os: family..patch_minor). */
#define UAP_FIELDS_MAX 5

/* Biggest rule file accepted. regexes.yaml is about 200 KB; the cap only
 * stops a wrong path (a log, a disk image) from being read whole. */
#define UAP_FILE_MAX (16u * 1024u * 1024u)

/* Most rules one list may hold; regexes.yaml has about 650 at most. Aliases
 * let a small file name the same rule many times, and each one costs a
 * compiled pattern, so the count is capped as well as the file size. */
#define UAP_RULES_MAX 20000u

/* The interpreter's limits; JIT code is bounded by PEX_UA_MATCH_LIMIT and
 * its fixed stack. The heap limit is in KiB. */
#define UAP_DEPTH_LIMIT 10000u
#define UAP_HEAP_LIMIT_KIB 16384u

/* One output field of a list: the key of its replacement in the rule file
 * and the capture group used when the rule gives no replacement (0: none,
 * the field stays absent). */
struct uap_field_spec {
	const char *key;
	unsigned group;
};

struct uap_list_spec {
	const char *name; /* top-level key in the rule file */
	size_t nfields;
	struct uap_field_spec fields[UAP_FIELDS_MAX];
};

extern const struct uap_list_spec uap_list_specs[UAP_LIST__COUNT];

struct uap_rule {
	pcre2_code *re;
	char *repl[UAP_FIELDS_MAX]; /* NUL-terminated; NULL: use the group */
	size_t line;                /* 1-based line of the rule, for errors */
};

struct uap_list {
	struct uap_rule *rules;
	size_t count;
};

struct pex_uaparser {
	struct uap_list lists[UAP_LIST__COUNT];
	pcre2_match_context *mctx; /* limits only; never changed after load */
	uint32_t ovec_pairs;       /* enough for the rule with most groups */
	size_t jit_compiled;
	int jit_all;               /* every pattern was offered to the JIT */
};

struct pex_uaparser_scratch {
	const struct pex_uaparser *owner;
	pcre2_match_data *md;
};

/* Load options for tests and tools. */
enum uap_load_opt {
	UAP_LOAD_NO_JIT = 1u << 0, /* skip pcre2_jit_compile (fallback path) */
};

/* pex_uaparser_load() with options; same contract otherwise. */
int uap_load_opts(pex_uaparser **out, const char *path, unsigned opts);

#endif
