/*
 * Internal form of a compiled JSON Schema (draft-07) and the helpers the
 * compiler (compile.c), the validator (validate.c), the registry
 * (registry.c), URI handling (uri.c) and format checks (format.c) share.
 *
 * Ownership: every js_node belongs to the pex_schema that compiled it
 * (pex_schema.nodes) and is freed with it. Strings and JSON values a node
 * points at (enum, const, required names, property keys) are borrowed from
 * the schema documents, which the pex_schema keeps alive with its own
 * references (pex_schema.docs). Strings returned by the pex_js_uri_*
 * helpers are malloc'd and owned by the caller.
 */
#ifndef PEX_JS_INTERNAL_H
#define PEX_JS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <jansson.h>

#include "portex/jsonschema.h"

/* Deepest schema nesting and instance nesting we accept: deeper input is
 * refused with PEX_ELIMIT instead of risking the C stack. */
#define PEX_JS_MAX_DEPTH 512
/* Most validator frames (schema applications) live at once for one
 * instance; bounds in-place chains like allOf -> $ref -> allOf. */
#define PEX_JS_MAX_FRAMES 2048
/* PCRE2 budgets per match, so a hostile pattern cannot run for ever. */
#define PEX_JS_MATCH_LIMIT 1000000u
#define PEX_JS_DEPTH_LIMIT 10000u

/* Instance type bits. An integer-valued number has both INT and NUM. */
enum {
	JT_NULL = 1,
	JT_BOOL = 2,
	JT_INT = 4,
	JT_NUM = 8,
	JT_STR = 16,
	JT_ARR = 32,
	JT_OBJ = 64,
};

/* Which optional keywords a node carries. */
enum {
	HAS_MULTIPLE = 1u << 0,
	HAS_MAXIMUM = 1u << 1,
	HAS_EXMAXIMUM = 1u << 2,
	HAS_MINIMUM = 1u << 3,
	HAS_EXMINIMUM = 1u << 4,
	HAS_MAXLEN = 1u << 5,
	HAS_MINLEN = 1u << 6,
	HAS_MAXITEMS = 1u << 7,
	HAS_MINITEMS = 1u << 8,
	HAS_MAXPROPS = 1u << 9,
	HAS_MINPROPS = 1u << 10,
	HAS_ENUM = 1u << 11,
	HAS_CONST = 1u << 12,
	HAS_ITEMS_ARRAY = 1u << 13,
	HAS_UNIQUE = 1u << 14,
	/* groups, so the validator skips whole families quickly */
	HAS_NUM_KW = 1u << 16,
	HAS_STR_KW = 1u << 17,
	HAS_ARR_KW = 1u << 18,
	HAS_OBJ_KW = 1u << 19,
	HAS_APPLICATOR = 1u << 20,
	/* only type/minLength/maxLength/pattern/format: a property name can
	 * be checked without building a JSON string */
	HAS_ONLY_STRING_KW = 1u << 21,
};

enum pex_js_format {
	FMT_NONE = 0,
	FMT_DATE_TIME,
	FMT_DATE,
	FMT_TIME,
	FMT_EMAIL,
	FMT_HOSTNAME,
	FMT_IPV4,
	FMT_IPV6,
	FMT_URI,
	FMT_URI_REFERENCE,
	FMT_JSON_POINTER,
	FMT_REL_JSON_POINTER,
	FMT_REGEX,
	FMT_UUID,
	FMT_IDN_EMAIL,
	FMT_IDN_HOSTNAME,
	FMT_IRI,
	FMT_IRI_REFERENCE,
	FMT_URI_TEMPLATE,
};

struct js_num {
	int is_int;
	json_int_t i;
	double d; /* always set */
};

struct js_node;

struct js_prop {
	const char *key;
	size_t klen;
	struct js_node *node;
};

struct js_pat {
	pcre2_code *re;
	const char *src;
	struct js_node *node;
};

struct js_dep {
	const char *key;
	size_t klen;
	struct js_node *node; /* schema dependency, or NULL */
	const json_t *names;  /* property dependency: array of strings */
};

struct js_node {
	char *loc;	     /* owned: absolute location, "uri#/pointer" */
	size_t idx;	     /* position in pex_schema.nodes */
	signed char boolean; /* -1 object schema, 0 false, 1 true */
	unsigned has;
	unsigned types; /* JT_* mask; 0 = no "type" keyword */
	struct js_node *ref;

	const json_t *enum_v;
	const json_t *const_v;
	struct js_num multiple_of, maximum, ex_maximum, minimum, ex_minimum;
	size_t max_length, min_length, max_items, min_items;
	size_t max_props, min_props;

	pcre2_code *pattern;
	const char *pattern_src;
	int format;
	int content_base64; /* contentEncoding: base64 */
	int content_json;   /* contentMediaType: application/json */

	struct js_node *items;	    /* single schema for all items */
	struct js_node **items_arr; /* owned array, positional items */
	size_t n_items;
	struct js_node *additional_items;
	struct js_node *contains;

	const json_t *required; /* array of strings (borrowed) */
	struct js_prop *props;	/* owned */
	size_t n_props;
	uint32_t *prop_table; /* owned: open addressing, index + 1 */
	size_t prop_mask;
	struct js_pat *pat_props; /* owned */
	size_t n_pat;
	struct js_node *additional_props;
	struct js_dep *deps; /* owned */
	size_t n_deps;
	struct js_node *property_names;

	struct js_node *if_s, *then_s, *else_s, *not_s;
	struct js_node **all_of, **any_of, **one_of; /* owned arrays */
	size_t n_all, n_any, n_one;
};

struct pex_schema {
	struct js_node *root;
	struct js_node **nodes; /* every node, for freeing */
	size_t n_nodes;
	json_t **docs; /* references we hold */
	size_t n_docs;
	pcre2_match_context *mctx;
};

struct pex_js_reg_entry {
	char *uri;
	json_t *doc;
};

struct pex_schema_registry {
	struct pex_js_reg_entry *e;
	size_t n, cap;
};

/* registry.c: borrowed lookup of a document by URI (no fragment). */
json_t *pex_js_registry_find(const pex_schema_registry *reg, const char *uri);
/* The draft-07 meta-schema text (metaschema.c). */
extern const char pex_js_metaschema_uri[];
extern const char pex_js_metaschema_text[];

/* uri.c */
/* RFC 3986 section 5.2 reference resolution; base may be "" or NULL.
 * Returns a new string or NULL when out of memory. */
char *pex_js_uri_resolve(const char *base, const char *ref);
/* Copy of uri without its fragment (and without a trailing "#"). */
char *pex_js_uri_strip_fragment(const char *uri);
/* Percent-decode s into a new string; NULL on bad escape or no memory. */
char *pex_js_percent_decode(const char *s, size_t *len_out);
/* Walk one JSON Pointer token from *p (just after a '/'): decoded token
 * goes to buf (max cap-1 bytes), *p moves to the next '/' or the end.
 * Returns token length, or -1 on a bad escape or too long a token. */
long pex_js_pointer_token(const char **p, const char *end, char *buf,
			  size_t cap);

/* format.c: 1 when s conforms to fmt, 0 when not. */
int pex_js_format_check(int fmt, const char *s, size_t len);
int pex_js_format_lookup(const char *name);
const char *pex_js_format_name(int fmt);
uint32_t pex_js_key_hash(const char *k, size_t len);
int pex_js_base64_check(const char *s, size_t len, unsigned char **out,
			size_t *out_len);

#endif
