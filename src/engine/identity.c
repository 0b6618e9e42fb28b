/*
 * Identities of the subject: parsing "type:value[@window]", normalising
 * values so that comparison is exact on what matters (an email's case is
 * not, a phone's punctuation is not, an IP's spelling is not).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ip.h"
#include "core/text.h"
#include "core/timeutil.h"
#include "portex/engine.h"
#include "portex/error.h"
#include "portex/mapper.h"

#define PEX_IDENTITY_MAX 1024

static char *dup_range(const char *s, size_t len)
{
	char *p = malloc(len + 1);

	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* Canonical text of an IPv4 or IPv6 address (core/ip.h), or NULL when s
 * is none. */
static char *canonical_ip(const char *s, size_t len)
{
	char in[PEX_IP_TEXT_MAX + 2], out[PEX_IP_TEXT_MAX];
	struct pex_ipaddr a;

	if (len >= sizeof(in))
		return NULL;
	memcpy(in, s, len);
	in[len] = '\0';
	if (pex_ip_from_text(in, &a))
		return NULL;
	pex_ip_format(&a, out, sizeof(out));
	return strdup(out);
}

char *pex_identity_normalize(const char *type, const char *value, size_t len)
{
	size_t i, n = 0;
	char *out;

	while (len && isspace((unsigned char)*value)) {
		value++;
		len--;
	}
	while (len && isspace((unsigned char)value[len - 1]))
		len--;
	if (!strcmp(type, "ip")) {
		out = canonical_ip(value, len);
		return out ? out : dup_range(value, len);
	}
	out = dup_range(value, len);
	if (!out)
		return NULL;
	if (!strcmp(type, "email")) {
		/* Mailboxes are compared without regard to case: every
		 * common provider treats them so, and a person who typed
		 * Alice@Example.com is still Alice. */
		for (i = 0; i < len; i++)
			out[i] = (char)tolower((unsigned char)out[i]);
	} else if (!strcmp(type, "phone")) {
		for (i = 0; i < len; i++) {
			char c = out[i];

			if ((c >= '0' && c <= '9') || (c == '+' && n == 0))
				out[n++] = c;
		}
		out[n] = '\0';
	}
	return out;
}

void pex_identity_clear(struct pex_identity *id)
{
	if (!id)
		return;
	free(id->type);
	free(id->value);
	free(id->from_source);
	free(id->from_record);
	memset(id, 0, sizeof(*id));
}

void pex_identity_set_clear(struct pex_identity_set *set)
{
	size_t i;

	if (!set)
		return;
	for (i = 0; i < set->count; i++)
		pex_identity_clear(&set->items[i]);
	free(set->items);
	set->items = NULL;
	set->count = 0;
}

static int valid_type(const char *s, size_t len)
{
	size_t i;

	if (!len || len > 32 || !islower((unsigned char)s[0]))
		return 0;
	for (i = 0; i < len; i++)
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '_')
			return 0;
	return 1;
}

/* 1 when s holds a C0 control character or DEL. */
static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7F)
			return 1;
	return 0;
}

/* A date-time with its time zone (Z, +01:00, -0500), or a bare date
 * (midnight UTC by definition). "2026-01-03T10:00:00" alone could be any
 * of 24 hours' worth of other people's requests on a shared address. */
static int zoned(const char *s, size_t len)
{
	size_t i;

	/* the blanks pex_time_parse() allows around a time */
	while (len && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len <= 10)
		return 1;
	if (s[len - 1] == 'Z' || s[len - 1] == 'z')
		return 1;
	for (i = 11; i < len; i++)
		if (s[i] == '+' || s[i] == '-')
			return 1;
	return 0;
}

static int parse_window(struct pex_identity *id, const char *w)
{
	const char *slash = strchr(w, '/');
	time_t start, end;
	long long secs;

	if (!slash)
		return pex_error_set(PEX_EINVALID,
				     "window \"%s\" must be START/END or "
				     "START/DURATION (e.g. "
				     "2026-01-03T10:00:00Z/PT30M)", w);
	if (pex_time_parse(w, (size_t)(slash - w), &start))
		return pex_error_wrap(PEX_EINVALID, "window start");
	if (!zoned(w, (size_t)(slash - w)) ||
	    (slash[1] != 'P' && slash[1] != 'p' &&
	     !zoned(slash + 1, strlen(slash + 1))))
		return pex_error_set(PEX_EINVALID, "window \"%s\": give "
				     "each time with its zone (Z for UTC, or "
				     "an offset such as +01:00): without one "
				     "the window could fall hours away from "
				     "the visit", w);
	if (slash[1] == 'P' || slash[1] == 'p') {
		if (pex_duration_parse(slash + 1, strlen(slash + 1), &secs))
			return pex_error_wrap(PEX_EINVALID, "window length");
		end = start + (time_t)secs;
	} else if (pex_time_parse(slash + 1, strlen(slash + 1), &end)) {
		return pex_error_wrap(PEX_EINVALID, "window end");
	}
	if (end < start)
		return pex_error_set(PEX_EINVALID,
				     "window \"%s\" ends before it starts", w);
	id->has_window = 1;
	id->not_before = start;
	id->not_after = end;
	return 0;
}

int pex_identity_parse(struct pex_identity *id, const char *text)
{
	const char *colon = strchr(text, ':');
	const char *value, *at = NULL;
	size_t vlen;
	int rc;

	memset(id, 0, sizeof(*id));
	if (strlen(text) > PEX_IDENTITY_MAX)
		return pex_error_set(PEX_EINVALID,
				     "identity longer than %d bytes",
				     PEX_IDENTITY_MAX);
	/* Checked before anything quotes text back in a message. Tab, LF
	 * and CR pass pex_text_is_clean() but are refused in the value
	 * below (surrounding white space is trimmed first). */
	if (!pex_text_is_clean(text, strlen(text)))
		return pex_error_set(PEX_EINVALID,
				     "identity is not valid UTF-8 text or "
				     "holds control characters");
	if (!colon)
		return pex_error_set(PEX_EINVALID,
				     "identity \"%s\" must be TYPE:VALUE, e.g. "
				     "email:alice@example.com", text);
	if (!valid_type(text, (size_t)(colon - text)))
		return pex_error_set(PEX_EINVALID,
				     "identity \"%s\": the type \"%.*s\" must "
				     "be 1 to 32 lower-case letters, digits or "
				     "_, starting with a letter (email, phone, "
				     "ip, ...)", text,
				     (int)(colon - text > 32 ? 32 : colon - text),
				     text);
	id->type = dup_range(text, (size_t)(colon - text));
	if (!id->type)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	value = colon + 1;
	vlen = strlen(value);
	if (!strcmp(id->type, "ip")) {
		at = strchr(value, '@');
		if (at)
			vlen = (size_t)(at - value);
	}
	id->value = pex_identity_normalize(id->type, value, vlen);
	if (!id->value) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto fail;
	}
	if (!id->value[0]) {
		rc = pex_error_set(PEX_EINVALID, "identity \"%s\" has no value",
				   text);
		goto fail;
	}
	if (has_control(id->value)) {
		rc = pex_error_set(PEX_EINVALID,
				   "identity of type %s holds control "
				   "characters", id->type);
		goto fail;
	}
	if (!strcmp(id->type, "ip")) {
		char *canon = canonical_ip(id->value, strlen(id->value));

		if (!canon) {
			rc = pex_error_set(PEX_EINVALID,
					   "\"%s\" is not an IP address",
					   id->value);
			goto fail;
		}
		free(canon);
		/* An IP address alone would match everyone who shared it:
		 * it counts only inside a time window. */
		if (!at) {
			rc = pex_error_set(PEX_EINVALID,
					   "identity %s needs a time window: "
					   "ip:ADDR@START/END or "
					   "ip:ADDR@START/PT30M", text);
			goto fail;
		}
		rc = parse_window(id, at + 1);
		if (rc)
			goto fail;
	}
	return 0;
fail:
	pex_identity_clear(id);
	return rc;
}

int pex_identity_set_add(struct pex_identity_set *set,
			 const struct pex_identity *id)
{
	struct pex_identity *items, *n;

	items = realloc(set->items, (set->count + 1) * sizeof(*items));
	if (!items)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	set->items = items;
	n = &items[set->count];
	memset(n, 0, sizeof(*n));
	n->type = strdup(id->type);
	n->value = strdup(id->value);
	n->from_source = id->from_source ? strdup(id->from_source) : NULL;
	n->from_record = id->from_record ? strdup(id->from_record) : NULL;
	n->has_window = id->has_window;
	n->not_before = id->not_before;
	n->not_after = id->not_after;
	if (!n->type || !n->value || (id->from_source && !n->from_source) ||
	    (id->from_record && !n->from_record)) {
		pex_identity_clear(n);
		return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	set->count++;
	return 0;
}

const struct pex_identity *pex_identity_find(const struct pex_identity_set *s,
					     const char *type)
{
	size_t i;

	for (i = 0; s && i < s->count; i++)
		if (!strcmp(s->items[i].type, type))
			return &s->items[i];
	return NULL;
}

char *pex_identity_window(const struct pex_identity *id,
			  char buf[PEX_WINDOW_BUFSZ])
{
	char a[PEX_TIME_BUFSZ], b[PEX_TIME_BUFSZ];

	snprintf(buf, PEX_WINDOW_BUFSZ, "%s/%s",
		 pex_time_format(id->not_before, a),
		 pex_time_format(id->not_after, b));
	return buf;
}

json_t *pex_matched_by(const struct pex_identity *id)
{
	json_t *o = json_pack("{s:s, s:s}", "type", id->type, "value",
			      id->value);
	char w[PEX_WINDOW_BUFSZ];

	if (o && id->has_window)
		json_object_set_new(o, "window",
				    json_string(pex_identity_window(id, w)));
	return o;
}
