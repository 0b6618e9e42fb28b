/*
 * Loading a uap-core rule file: libyaml's document API gives the tree,
 * PCRE2 compiles each rule. See uaparser_int.h for what a parser owns.
 */
#include "uaparser/uaparser_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "portex/error.h"

/* Groups follow the uap-core specification: the browser and os lists take
 * family and versions from groups 1..5 by default; a device takes family
 * and model from group 1 and has a brand only by replacement. */
const struct uap_list_spec uap_list_specs[UAP_LIST__COUNT] = {
	[UAP_LIST_UA] = { "user_agent_parsers", 5, {
		{ "family_replacement", 1 },
		{ "v1_replacement", 2 },
		{ "v2_replacement", 3 },
		{ "v3_replacement", 4 },
		{ "v4_replacement", 5 },
	} },
	[UAP_LIST_OS] = { "os_parsers", 5, {
		{ "os_replacement", 1 },
		{ "os_v1_replacement", 2 },
		{ "os_v2_replacement", 3 },
		{ "os_v3_replacement", 4 },
		{ "os_v4_replacement", 5 },
	} },
	[UAP_LIST_DEVICE] = { "device_parsers", 3, {
		{ "device_replacement", 1 },
		{ "brand_replacement", 0 },
		{ "model_replacement", 1 },
	} },
};

/* What the loader needs at hand to build messages and rules. */
struct loader {
	const char *path;
	yaml_document_t *doc;
	struct pex_uaparser *p;
	unsigned opts;
};

static int err_at(const struct loader *ld, const yaml_node_t *node,
		  const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "path:line:col: message", with libyaml's 0-based mark made 1-based. */
static int err_at(const struct loader *ld, const yaml_node_t *node,
		  const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return pex_error_set(PEX_EINVALID, "%s:%zu:%zu: %s", ld->path,
			     node->start_mark.line + 1,
			     node->start_mark.column + 1, msg);
}

static int yaml_failure(const char *path, const yaml_parser_t *yp)
{
	const char *problem = yp->problem ? yp->problem : "unknown error";

	if (yp->error == YAML_MEMORY_ERROR)
		return pex_error_set(PEX_ENOMEM, "%s: out of memory", path);
	if (yp->error == YAML_READER_ERROR)
		return pex_error_set(PEX_EINVALID,
				     "%s: byte offset %zu: %s (value %d)",
				     path, yp->problem_offset, problem,
				     yp->problem_value);
	if (yp->context)
		return pex_error_set(PEX_EINVALID,
				     "%s:%zu:%zu: %s %s (from line %zu)",
				     path, yp->problem_mark.line + 1,
				     yp->problem_mark.column + 1, problem,
				     yp->context, yp->context_mark.line + 1);
	return pex_error_set(PEX_EINVALID, "%s:%zu:%zu: %s", path,
			     yp->problem_mark.line + 1,
			     yp->problem_mark.column + 1, problem);
}

static int scalar_is(const yaml_node_t *n, const char *s)
{
	size_t len = strlen(s);

	return n->type == YAML_SCALAR_NODE && n->data.scalar.length == len &&
	       memcmp(n->data.scalar.value, s, len) == 0;
}

/* A replacement becomes a C string, so it may not hold a NUL byte (only a
 * double-quoted "\0" in the YAML could produce one). */
static int dup_replacement(const struct loader *ld, const yaml_node_t *v,
			   const char *key, char **out)
{
	size_t len;

	if (v->type != YAML_SCALAR_NODE)
		return err_at(ld, v, "%s must be a string", key);
	len = v->data.scalar.length;
	if (memchr(v->data.scalar.value, '\0', len) != NULL)
		return err_at(ld, v, "%s holds a NUL byte", key);
	*out = malloc(len + 1);
	if (*out == NULL)
		return pex_error_set(PEX_ENOMEM, "%s: out of memory", ld->path);
	memcpy(*out, v->data.scalar.value, len);
	(*out)[len] = '\0';
	return 0;
}

static void rule_clear(struct uap_rule *r)
{
	pcre2_code_free(r->re);
	for (size_t i = 0; i < UAP_FIELDS_MAX; i++)
		free(r->repl[i]);
	memset(r, 0, sizeof(*r));
}

static int compile_rule(const struct loader *ld, const yaml_node_t *regex,
			int caseless, struct uap_rule *r, uint32_t *groups)
{
	/* UTF mode for every pattern: uap-core's patterns are written for
	 * character strings (Python str), so "." and "{0,200}" count
	 * characters, and captures never split a character.
	 * MATCH_INVALID_UTF makes bytes that are not UTF-8 simply fail to
	 * match instead of making the whole match call fail. */
	uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF |
			PCRE2_NEVER_BACKSLASH_C;
	PCRE2_UCHAR emsg[256];
	PCRE2_SIZE eoff;
	int ecode;

	if (caseless)
		opts |= PCRE2_CASELESS;
	r->re = pcre2_compile((PCRE2_SPTR)regex->data.scalar.value,
			      regex->data.scalar.length, opts, &ecode, &eoff,
			      NULL);
	if (r->re == NULL) {
		pcre2_get_error_message(ecode, emsg, sizeof(emsg));
		return err_at(ld, regex, "invalid regex at offset %zu: %s",
			      (size_t)eoff, (const char *)emsg);
	}
	/* JIT is an optimisation: where it is missing (no JIT support built
	 * in, no executable memory) the interpreter gives the same
	 * answers, so a JIT failure is not an error. */
	if (!(ld->opts & UAP_LOAD_NO_JIT) &&
	    pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE) == 0)
		ld->p->jit_compiled++;
	if (pcre2_pattern_info(r->re, PCRE2_INFO_CAPTURECOUNT, groups) != 0)
		return pex_error_set(PEX_ERROR, "%s: pcre2_pattern_info failed",
				     ld->path);
	return 0;
}

static int load_rule(const struct loader *ld, enum uap_list_id id,
		     const yaml_node_t *m, struct uap_rule *r,
		     uint32_t *groups)
{
	const struct uap_list_spec *spec = &uap_list_specs[id];
	const yaml_node_t *regex = NULL;
	const yaml_node_pair_t *pair;
	int caseless = 0;
	int seen_flag = 0;
	int rc;

	if (m->type != YAML_MAPPING_NODE)
		return err_at(ld, m, "%s: each rule must be a mapping",
			      spec->name);
	r->line = m->start_mark.line + 1;
	for (pair = m->data.mapping.pairs.start;
	     pair < m->data.mapping.pairs.top; pair++) {
		const yaml_node_t *k = yaml_document_get_node(ld->doc,
							      pair->key);
		const yaml_node_t *v = yaml_document_get_node(ld->doc,
							      pair->value);
		size_t f;

		if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE)
			return err_at(ld, m, "rule keys must be strings");
		if (scalar_is(k, "regex")) {
			if (regex != NULL)
				return err_at(ld, k, "duplicate key regex");
			if (v->type != YAML_SCALAR_NODE)
				return err_at(ld, v, "regex must be a string");
			regex = v;
			continue;
		}
		if (scalar_is(k, "regex_flag")) {
			if (seen_flag)
				return err_at(ld, k,
					      "duplicate key regex_flag");
			if (!scalar_is(v, "i"))
				return err_at(ld, v,
					      "regex_flag must be 'i'");
			seen_flag = caseless = 1;
			continue;
		}
		for (f = 0; f < spec->nfields; f++)
			if (scalar_is(k, spec->fields[f].key))
				break;
		/* An unknown key is refused rather than skipped: a newer
		 * uap-core with a replacement this code does not know would
		 * otherwise give quietly wrong answers. */
		if (f == spec->nfields)
			return err_at(ld, k, "unknown key '%.*s' in %s",
				      (int)k->data.scalar.length,
				      (const char *)k->data.scalar.value,
				      spec->name);
		if (r->repl[f] != NULL)
			return err_at(ld, k, "duplicate key %s",
				      spec->fields[f].key);
		rc = dup_replacement(ld, v, spec->fields[f].key, &r->repl[f]);
		if (rc < 0)
			return rc;
	}
	if (regex == NULL)
		return err_at(ld, m, "rule in %s has no regex", spec->name);
	return compile_rule(ld, regex, caseless, r, groups);
}

static int load_list(const struct loader *ld, enum uap_list_id id,
		     const yaml_node_t *seq)
{
	struct uap_list *list = &ld->p->lists[id];
	const yaml_node_item_t *it;
	size_t n;

	if (seq->type != YAML_SEQUENCE_NODE)
		return err_at(ld, seq, "%s must be a list of rules",
			      uap_list_specs[id].name);
	n = (size_t)(seq->data.sequence.items.top -
		     seq->data.sequence.items.start);
	if (n > UAP_RULES_MAX)
		return pex_error_set(PEX_ELIMIT, "%s:%zu:%zu: %s has %zu "
				     "rules, more than the %u allowed",
				     ld->path, seq->start_mark.line + 1,
				     seq->start_mark.column + 1,
				     uap_list_specs[id].name, n,
				     UAP_RULES_MAX);
	list->rules = calloc(n ? n : 1, sizeof(*list->rules));
	if (list->rules == NULL)
		return pex_error_set(PEX_ENOMEM, "%s: out of memory", ld->path);
	for (it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++) {
		const yaml_node_t *m = yaml_document_get_node(ld->doc, *it);
		struct uap_rule *r = &list->rules[list->count];
		uint32_t groups = 0;
		int rc;

		if (m == NULL)
			return err_at(ld, seq, "broken YAML node");
		/* Counted before loading so a half-built rule is freed with
		 * the parser. */
		list->count++;
		rc = load_rule(ld, id, m, r, &groups);
		if (rc < 0)
			return rc;
		if (groups + 1 > ld->p->ovec_pairs)
			ld->p->ovec_pairs = groups + 1;
	}
	return 0;
}

static int load_root(const struct loader *ld, const yaml_node_t *root)
{
	int seen[UAP_LIST__COUNT] = { 0 };
	const yaml_node_pair_t *pair;

	if (root->type != YAML_MAPPING_NODE)
		return err_at(ld, root, "expected a mapping with "
			      "user_agent_parsers, os_parsers and "
			      "device_parsers");
	for (pair = root->data.mapping.pairs.start;
	     pair < root->data.mapping.pairs.top; pair++) {
		const yaml_node_t *k = yaml_document_get_node(ld->doc,
							      pair->key);
		const yaml_node_t *v = yaml_document_get_node(ld->doc,
							      pair->value);
		int id;
		int rc;

		if (k == NULL || v == NULL)
			return err_at(ld, root, "broken YAML node");
		for (id = 0; id < UAP_LIST__COUNT; id++)
			if (scalar_is(k, uap_list_specs[id].name))
				break;
		if (id == UAP_LIST__COUNT) {
			if (k->type != YAML_SCALAR_NODE)
				return err_at(ld, k, "keys must be strings");
			return err_at(ld, k, "unknown top-level key '%.*s'",
				      (int)k->data.scalar.length,
				      (const char *)k->data.scalar.value);
		}
		if (seen[id])
			return err_at(ld, k, "duplicate key %s",
				      uap_list_specs[id].name);
		seen[id] = 1;
		rc = load_list(ld, (enum uap_list_id)id, v);
		if (rc < 0)
			return rc;
	}
	/* A file with none of the lists is certainly not a rule file; a file
	 * with only some of them is a deliberate custom set. */
	if (!seen[UAP_LIST_UA] && !seen[UAP_LIST_OS] && !seen[UAP_LIST_DEVICE])
		return err_at(ld, root, "none of user_agent_parsers, "
			      "os_parsers, device_parsers is present");
	return 0;
}

static int open_rules(const char *path, FILE **out)
{
	struct stat st;
	FILE *f;

	f = fopen(path, "rb");
	if (f == NULL)
		return pex_error_set(errno == ENOENT ? PEX_ENOTFOUND : PEX_EIO,
				     "cannot open %s: %s", path,
				     strerror(errno));
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		return pex_error_set(PEX_EIO, "%s: not a regular file", path);
	}
	if ((unsigned long long)st.st_size > UAP_FILE_MAX) {
		fclose(f);
		return pex_error_set(PEX_ELIMIT,
				     "%s: %lld bytes, more than the %u a rule "
				     "file may have", path,
				     (long long)st.st_size, UAP_FILE_MAX);
	}
	*out = f;
	return 0;
}

int uap_load_opts(pex_uaparser **out, const char *path, unsigned opts)
{
	struct pex_uaparser *p = NULL;
	yaml_parser_t yp;
	yaml_document_t doc;
	int have_parser = 0;
	int have_doc = 0;
	FILE *f = NULL;
	struct loader ld;
	yaml_node_t *root;
	int rc;

	if (out == NULL)
		return pex_error_set(PEX_EUSAGE, "uaparser: out is NULL");
	*out = NULL;
	if (path == NULL)
		path = PEX_UAPARSER_DEFAULT_REGEXES;
	rc = open_rules(path, &f);
	if (rc < 0)
		goto cleanup;
	p = calloc(1, sizeof(*p));
	if (p == NULL || !yaml_parser_initialize(&yp)) {
		rc = pex_error_set(PEX_ENOMEM, "%s: out of memory", path);
		goto cleanup;
	}
	have_parser = 1;
	yaml_parser_set_input_file(&yp, f);
	if (!yaml_parser_load(&yp, &doc)) {
		rc = yaml_failure(path, &yp);
		goto cleanup;
	}
	have_doc = 1;
	root = yaml_document_get_root_node(&doc);
	if (root == NULL) {
		rc = pex_error_set(PEX_EINVALID, "%s: empty file, expected "
				   "uap-core rules", path);
		goto cleanup;
	}
	ld = (struct loader){ .path = path, .doc = &doc, .p = p,
			      .opts = opts };
	p->ovec_pairs = 10; /* $1..$9 may name groups a rule lacks */
	rc = load_root(&ld, root);
	if (rc < 0)
		goto cleanup;
	p->mctx = pcre2_match_context_create(NULL);
	if (p->mctx == NULL) {
		rc = pex_error_set(PEX_ENOMEM, "%s: out of memory", path);
		goto cleanup;
	}
	pcre2_set_match_limit(p->mctx, PEX_UA_MATCH_LIMIT);
	pcre2_set_depth_limit(p->mctx, UAP_DEPTH_LIMIT);
	pcre2_set_heap_limit(p->mctx, UAP_HEAP_LIMIT_KIB);
	p->jit_all = !(opts & UAP_LOAD_NO_JIT);
	*out = p;
	p = NULL;
	rc = 0;
cleanup:
	if (have_doc)
		yaml_document_delete(&doc);
	if (have_parser)
		yaml_parser_delete(&yp);
	if (f != NULL)
		fclose(f);
	pex_uaparser_free(p);
	return rc;
}

int pex_uaparser_load(pex_uaparser **out, const char *regexes_yaml_path)
{
	return uap_load_opts(out, regexes_yaml_path, 0);
}

int pex_uaparser_load_lazy(pex_uaparser **out,
			   const char *regexes_yaml_path)
{
	return uap_load_opts(out, regexes_yaml_path, UAP_LOAD_NO_JIT);
}

int pex_uaparser_jit(pex_uaparser *p)
{
	size_t l, i;

	if (!p || p->jit_all)
		return 0;
	p->jit_compiled = 0;
	for (l = 0; l < UAP_LIST__COUNT; l++)
		for (i = 0; i < p->lists[l].count; i++)
			if (pcre2_jit_compile(p->lists[l].rules[i].re,
					      PCRE2_JIT_COMPLETE) == 0)
				p->jit_compiled++;
	p->jit_all = 1;
	return 0;
}

void pex_uaparser_free(pex_uaparser *p)
{
	if (p == NULL)
		return;
	for (int id = 0; id < UAP_LIST__COUNT; id++) {
		struct uap_list *l = &p->lists[id];

		for (size_t i = 0; i < l->count; i++)
			rule_clear(&l->rules[i]);
		free(l->rules);
	}
	pcre2_match_context_free(p->mctx);
	free(p);
}

void pex_uaparser_stats(const pex_uaparser *p, struct pex_uaparser_stats *out)
{
	if (out == NULL)
		return;
	memset(out, 0, sizeof(*out));
	if (p == NULL)
		return;
	out->ua_rules = p->lists[UAP_LIST_UA].count;
	out->os_rules = p->lists[UAP_LIST_OS].count;
	out->device_rules = p->lists[UAP_LIST_DEVICE].count;
	out->jit_compiled = p->jit_compiled;
}
