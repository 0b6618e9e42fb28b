/*
 * User-agent parsing driven by uap-core's regexes.yaml.
 *
 * pex_uaparser_load() reads a uap-core rule file (libyaml) and compiles its
 * three rule lists (user_agent_parsers, os_parsers, device_parsers) into
 * PCRE2 patterns, JIT-compiled where the platform allows. The result is a
 * pex_uaparser owned by the caller and released with pex_uaparser_free().
 *
 * After loading, a parser is read-only: any number of threads may call
 * pex_uaparser_parse() on the same parser at once. What is per-thread is
 * the PCRE2 match data, held in a pex_uaparser_scratch. A caller that
 * parses many strings on one thread creates one scratch (owned by that
 * caller, freed with pex_uaparser_scratch_free()) and passes it to every
 * call; a scratch must never be used by two threads at once. Passing NULL
 * instead makes each call create and free its own match data (one small
 * allocation per call).
 *
 * Results go into a caller-owned struct pex_ua_result of fixed-size
 * buffers; parsing never allocates memory for them and never returns
 * pointers into the parser or into the input. Matching follows uap-core's
 * docs/specification.md: rules are tried in file order, the first match
 * wins, replacements expand $1..$9, every value is trimmed, and an empty
 * value means "absent" (the empty string). Family fields are "Other" when
 * no rule matches.
 *
 * Hostile input is bounded: only the first PEX_UA_INPUT_MAX bytes of a
 * user agent take part in matching, each pattern runs under a PCRE2 match
 * limit, and invalid UTF-8 in the input simply does not match (it never
 * makes a call fail).
 */
#ifndef PEX_UAPARSER_H
#define PEX_UAPARSER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Rule file used when pex_uaparser_load() gets a NULL path (Debian's
 * uap-core package). */
#define PEX_UAPARSER_DEFAULT_REGEXES "/usr/share/uap-core/regexes.yaml"

/* Bytes of a user agent that take part in matching; the rest is ignored
 * and PEX_UA_INPUT_TRUNCATED is set. Real user agents stay far below this
 * (uap-core's test suite peaks under 500 bytes); the cap bounds the time a
 * pathological string can cost. */
#define PEX_UA_INPUT_MAX 2048

/* Size of every result buffer, including the terminating NUL. A longer
 * value is cut at a UTF-8 character boundary and PEX_UA_FIELD_TRUNCATED is
 * set. uap-core's tests need at most 135 bytes. */
#define PEX_UA_FIELD_MAX 256

/* Limit on PCRE2's internal backtracking steps for one pattern against one
 * string. A rule that hits it counts as not matching and
 * PEX_UA_LIMIT_HIT is set. */
#define PEX_UA_MATCH_LIMIT 1000000u

/* Bits of pex_ua_result.flags. */
enum pex_ua_flag {
	PEX_UA_INPUT_TRUNCATED = 1u << 0, /* input cut to PEX_UA_INPUT_MAX */
	PEX_UA_FIELD_TRUNCATED = 1u << 1, /* some value cut to fit */
	PEX_UA_LIMIT_HIT = 1u << 2,       /* a rule hit PEX_UA_MATCH_LIMIT */
};

/* Each field is a NUL-terminated UTF-8 string; "" means absent. Family
 * fields are never empty ("Other" when nothing matched). */
struct pex_ua_result {
	struct {
		char family[PEX_UA_FIELD_MAX];
		char major[PEX_UA_FIELD_MAX];
		char minor[PEX_UA_FIELD_MAX];
		char patch[PEX_UA_FIELD_MAX];
		char patch_minor[PEX_UA_FIELD_MAX];
	} browser;
	struct {
		char family[PEX_UA_FIELD_MAX];
		char major[PEX_UA_FIELD_MAX];
		char minor[PEX_UA_FIELD_MAX];
		char patch[PEX_UA_FIELD_MAX];
		char patch_minor[PEX_UA_FIELD_MAX];
	} os;
	struct {
		char family[PEX_UA_FIELD_MAX];
		char brand[PEX_UA_FIELD_MAX];
		char model[PEX_UA_FIELD_MAX];
	} device;
	unsigned flags; /* enum pex_ua_flag bits */
};

typedef struct pex_uaparser pex_uaparser;
typedef struct pex_uaparser_scratch pex_uaparser_scratch;

/*
 * Load and compile a uap-core rule file; NULL means
 * PEX_UAPARSER_DEFAULT_REGEXES. On success *out is a new parser owned by
 * the caller. On failure *out is NULL and the message names the file, and
 * for YAML or rule errors the line and column ("regexes.yaml:12:5: ...").
 * Returns 0, PEX_ENOTFOUND / PEX_EIO (file), PEX_EINVALID (YAML, rule
 * structure or a pattern PCRE2 rejects), PEX_ELIMIT (file over 16 MiB or
 * a list over 20000 rules), PEX_ENOMEM, PEX_EUSAGE.
 */
int pex_uaparser_load(pex_uaparser **out, const char *regexes_yaml_path);

/*
 * The same without JIT code, for a caller that may have few strings to
 * parse: the rules load in about a fifth of the time (JIT-compiling
 * uap-core's some 1000 patterns is most of a load) and each parse takes
 * about two and a half times as long, so below about a hundred strings
 * this is cheaper (figures in docs/internals/uaparser.md).
 * pex_uaparser_jit() adds the JIT code when many strings turn up.
 */
int pex_uaparser_load_lazy(pex_uaparser **out,
			   const char *regexes_yaml_path);

/* JIT-compile the patterns that have no JIT code yet (a parser from
 * pex_uaparser_load_lazy()); answers do not change, only speed. This
 * changes the parser: no other thread may use it meanwhile. Returns 0;
 * where JIT is missing the interpreter simply goes on. */
int pex_uaparser_jit(pex_uaparser *p);

/* Accepts NULL. Any scratch made for this parser must be freed first or
 * not be used again. */
void pex_uaparser_free(pex_uaparser *p);

/* Rules loaded per list, and how many patterns got JIT code (for logs and
 * tests). A NULL p gives all zeros. */
struct pex_uaparser_stats {
	size_t ua_rules;
	size_t os_rules;
	size_t device_rules;
	size_t jit_compiled;
};
void pex_uaparser_stats(const pex_uaparser *p, struct pex_uaparser_stats *out);

/* Per-thread match state for parser p; owned by the caller. */
int pex_uaparser_scratch_new(const pex_uaparser *p,
			     pex_uaparser_scratch **out);
/* Accepts NULL. */
void pex_uaparser_scratch_free(pex_uaparser_scratch *s);

/*
 * Parse ua (len bytes; it need not be NUL-terminated, may hold NUL bytes
 * and need not be valid UTF-8) into *out, overwriting all of it. scratch
 * is NULL or one made by pex_uaparser_scratch_new() for this parser.
 * Returns 0 (also when nothing matched: families are then "Other"),
 * PEX_EUSAGE for NULL arguments, PEX_ENOMEM, or PEX_ERROR when PCRE2
 * fails in a way that is not the input's fault.
 */
int pex_uaparser_parse(const pex_uaparser *p, pex_uaparser_scratch *scratch,
		       const char *ua, size_t len, struct pex_ua_result *out);

#ifdef __cplusplus
}
#endif
#endif
