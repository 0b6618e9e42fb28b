/*
 * Matching a user agent against a loaded parser: first matching rule per
 * list, $1..$9 expansion into the caller's fixed buffers.
 */
#include "uaparser/uaparser_int.h"

#include <stdlib.h>
#include <string.h>

#include "portex/error.h"

int pex_uaparser_scratch_new(const pex_uaparser *p,
			     pex_uaparser_scratch **out)
{
	struct pex_uaparser_scratch *s;

	if (out == NULL)
		return pex_error_set(PEX_EUSAGE, "uaparser: out is NULL");
	*out = NULL;
	if (p == NULL)
		return pex_error_set(PEX_EUSAGE, "uaparser: parser is NULL");
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return pex_error_set(PEX_ENOMEM, "uaparser: out of memory");
	s->owner = p;
	s->md = pcre2_match_data_create(p->ovec_pairs, NULL);
	if (s->md == NULL) {
		free(s);
		return pex_error_set(PEX_ENOMEM, "uaparser: out of memory");
	}
	*out = s;
	return 0;
}

void pex_uaparser_scratch_free(pex_uaparser_scratch *s)
{
	if (s == NULL)
		return;
	pcre2_match_data_free(s->md);
	free(s);
}

/* A value under construction in one PEX_UA_FIELD_MAX buffer. */
struct field {
	char *dst;
	size_t len;
	int truncated;
};

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' ||
	       c == '\f' || c == '\r';
}

/* Append n bytes. Leading whitespace is dropped here (the value is still
 * empty), trailing whitespace in field_end(). NUL bytes are dropped
 * because the value is a C string: keeping them would hide what follows. */
static void field_put(struct field *f, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c == '\0' || (f->len == 0 && is_space(c)))
			continue;
		if (f->len + 1 >= PEX_UA_FIELD_MAX) {
			f->truncated = 1;
			return;
		}
		f->dst[f->len++] = (char)c;
	}
}

/* Bytes a UTF-8 sequence takes, from its lead byte; 1 for anything else,
 * so a stray byte is never the reason to cut more. */
static size_t utf8_seq_len(unsigned char c)
{
	if (c >= 0xf0 && c <= 0xf4)
		return 4;
	if (c >= 0xe0)
		return c <= 0xef ? 3 : 1;
	if (c >= 0xc2)
		return 2;
	return 1;
}

/* Length of s[0..len) without a trailing, incomplete UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len)
{
	size_t i = len;
	size_t back = 0;

	while (i > 0 && back < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
		i--;
		back++;
	}
	if (i == 0)
		return len;
	if (i - 1 + utf8_seq_len((unsigned char)s[i - 1]) > len)
		return i - 1;
	return len;
}

static void field_end(struct field *f)
{
	if (f->truncated)
		f->len = utf8_cut(f->dst, f->len);
	while (f->len > 0 && is_space((unsigned char)f->dst[f->len - 1]))
		f->len--;
	f->dst[f->len] = '\0';
}

static void put_group(struct field *f, const char *s, const PCRE2_SIZE *ov,
		      int nset, unsigned g)
{
	if ((int)g >= nset || ov[2 * g] == PCRE2_UNSET)
		return;
	field_put(f, s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
}

/* Expand a replacement: "$N" (N in 1..9) is group N, empty when the group
 * did not take part or does not exist; any other "$" is literal. */
static void expand(struct field *f, const char *tmpl, const char *s,
		   const PCRE2_SIZE *ov, int nset)
{
	const char *run = tmpl;
	const char *c = tmpl;

	while (*c != '\0') {
		if (c[0] == '$' && c[1] >= '1' && c[1] <= '9') {
			field_put(f, run, (size_t)(c - run));
			put_group(f, s, ov, nset, (unsigned)(c[1] - '0'));
			c += 2;
			run = c;
			continue;
		}
		c++;
	}
	field_put(f, run, (size_t)(c - run));
}

/* Run one pattern; returns the pcre2_match() result, with the JIT stack
 * limit retried by the interpreter (which has its own, larger, bounded
 * heap) so a JIT detail never changes an answer. */
static int match_one(const pex_uaparser *p, const struct uap_rule *r,
		     const char *s, size_t n, pcre2_match_data *md)
{
	int rc;

	rc = pcre2_match(r->re, (PCRE2_SPTR)s, n, 0, 0, md, p->mctx);
	if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
		rc = pcre2_match(r->re, (PCRE2_SPTR)s, n, 0, PCRE2_NO_JIT, md,
				 p->mctx);
	return rc;
}

static int is_limit(int rc)
{
	return rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
	       rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT;
}

/* Fill fields[0..nfields) from the first rule of list id that matches.
 * Fields are left "" when nothing matches. */
static int run_list(const pex_uaparser *p, enum uap_list_id id,
		    pcre2_match_data *md, const char *s, size_t n,
		    char *const *fields, unsigned *flags)
{
	const struct uap_list_spec *spec = &uap_list_specs[id];
	const struct uap_list *list = &p->lists[id];

	for (size_t i = 0; i < list->count; i++) {
		const struct uap_rule *r = &list->rules[i];
		const PCRE2_SIZE *ov;
		int rc;

		rc = match_one(p, r, s, n, md);
		if (rc == PCRE2_ERROR_NOMATCH)
			continue;
		if (is_limit(rc)) {
			/* The input's fault: treat as no match, say so. */
			*flags |= PEX_UA_LIMIT_HIT;
			continue;
		}
		if (rc == PCRE2_ERROR_NOMEMORY)
			return pex_error_set(PEX_ENOMEM,
					     "uaparser: out of memory");
		if (rc < 0) {
			PCRE2_UCHAR msg[256];

			pcre2_get_error_message(rc, msg, sizeof(msg));
			return pex_error_set(PEX_ERROR,
					     "uaparser: %s rule at line %zu: "
					     "%s", spec->name, r->line,
					     (const char *)msg);
		}
		/* rc == 0 would mean the ovector is too small; it is sized
		 * for the rule with most groups, so treat it as all set. */
		if (rc == 0)
			rc = (int)pcre2_get_ovector_count(md);
		ov = pcre2_get_ovector_pointer(md);
		for (size_t f = 0; f < spec->nfields; f++) {
			struct field fb = { .dst = fields[f] };

			if (r->repl[f] != NULL)
				expand(&fb, r->repl[f], s, ov, rc);
			else if (spec->fields[f].group != 0)
				put_group(&fb, s, ov, rc,
					  spec->fields[f].group);
			field_end(&fb);
			if (fb.truncated)
				*flags |= PEX_UA_FIELD_TRUNCATED;
		}
		return 0;
	}
	return 0;
}

static void set_other(char *family)
{
	if (family[0] == '\0')
		memcpy(family, "Other", sizeof("Other"));
}

int pex_uaparser_parse(const pex_uaparser *p, pex_uaparser_scratch *scratch,
		       const char *ua, size_t len, struct pex_ua_result *out)
{
	pcre2_match_data *own = NULL;
	pcre2_match_data *md;
	size_t n = len;
	int rc;

	if (p == NULL || out == NULL || (ua == NULL && len != 0))
		return pex_error_set(PEX_EUSAGE, "uaparser: NULL argument");
	if (scratch != NULL && scratch->owner != p)
		return pex_error_set(PEX_EUSAGE, "uaparser: scratch belongs "
				     "to another parser");
	memset(out, 0, sizeof(*out));
	if (ua == NULL)
		ua = "";
	if (n > PEX_UA_INPUT_MAX) {
		n = utf8_cut(ua, PEX_UA_INPUT_MAX);
		out->flags |= PEX_UA_INPUT_TRUNCATED;
	}
	if (scratch != NULL) {
		md = scratch->md;
	} else {
		own = pcre2_match_data_create(p->ovec_pairs, NULL);
		if (own == NULL) {
			rc = pex_error_set(PEX_ENOMEM,
					   "uaparser: out of memory");
			goto cleanup;
		}
		md = own;
	}
	{
		char *const ua_f[] = { out->browser.family, out->browser.major,
				       out->browser.minor, out->browser.patch,
				       out->browser.patch_minor };
		char *const os_f[] = { out->os.family, out->os.major,
				       out->os.minor, out->os.patch,
				       out->os.patch_minor };
		char *const dev_f[] = { out->device.family, out->device.brand,
					out->device.model };

		rc = run_list(p, UAP_LIST_UA, md, ua, n, ua_f, &out->flags);
		if (rc == 0)
			rc = run_list(p, UAP_LIST_OS, md, ua, n, os_f,
				      &out->flags);
		if (rc == 0)
			rc = run_list(p, UAP_LIST_DEVICE, md, ua, n, dev_f,
				      &out->flags);
	}
	if (rc < 0) {
		unsigned flags = out->flags;

		memset(out, 0, sizeof(*out));
		out->flags = flags;
	}
	set_other(out->browser.family);
	set_other(out->os.family);
	set_other(out->device.family);
cleanup:
	pcre2_match_data_free(own);
	return rc;
}
