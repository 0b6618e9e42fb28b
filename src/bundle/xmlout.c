/* JSON model to XML text; see xmlout.h. */
#include "bundle/xmlout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portex/error.h"

static const struct {
	const char *list;
	const char *item;
} singulars[] = {
	{ "addresses", "address" },   { "attachments", "attachment" },
	{ "categories", "category" }, { "contacts", "contact" },
	{ "devices", "device" },      { "emails", "email" },
	{ "events", "event" },        { "files", "file" },
	{ "identities", "identity" }, { "ip_addresses", "ip_address" },
	{ "lawful_basis", "basis" },  { "messages", "message" },
	{ "missing", "source" },      { "pages", "page" },
	{ "phones", "phone" },        { "purposes", "purpose" },
	{ "recipients", "recipient" }, { "sessions", "session" },
	{ "sources", "source" },      { "tags", "tag" },
	{ "tickets", "ticket" },      { "warnings", "warning" },
	{ "websites", "website" },
};

const char *pex_xml_item_name(const char *list_name)
{
	size_t i;

	for (i = 0; i < sizeof(singulars) / sizeof(singulars[0]); i++)
		if (!strcmp(singulars[i].list, list_name))
			return singulars[i].item;
	return "item";
}

/* attr: the text is an attribute value, where a parser turns a literal
 * tab or LF into a space (XML 1.0 section 3.3.3); write them as
 * character references so they survive. */
/* Bytes escape() looks at twice: 1 in text, 2 in attributes only. */
static const unsigned char special[256] = {
	['&'] = 1, ['<'] = 1, ['>'] = 1, ['"'] = 1, ['\r'] = 1,
	['\t'] = 2, ['\n'] = 2,
};

static int escape(struct pex_buf *out, const char *s, size_t len, int attr)
{
	size_t i, start = 0;
	int rc = 0;

	for (i = 0; i < len && !rc; i++) {
		const char *rep;
		unsigned sp = special[(unsigned char)s[i]];

		if (!sp || (sp == 2 && !attr))
			continue;
		switch (s[i]) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\r': rep = "&#13;"; break;
		case '\t': if (!attr) continue; rep = "&#9;"; break;
		case '\n': if (!attr) continue; rep = "&#10;"; break;
		default: continue;
		}
		rc = pex_buf_append(out, s + start, i - start);
		if (!rc)
			rc = pex_buf_append(out, rep, strlen(rep));
		start = i + 1;
	}
	return rc ? rc : pex_buf_append(out, s + start, len - start);
}

int pex_xml_escape(struct pex_buf *out, const char *s, size_t len)
{
	return escape(out, s, len, 0);
}

static int open_tag(struct pex_buf *out, const char *name, size_t n)
{
	int rc = pex_buf_putc(out, '<');

	if (!rc)
		rc = pex_buf_append(out, name, n);
	return rc ? rc : pex_buf_putc(out, '>');
}

static int close_tag(struct pex_buf *out, const char *name, size_t n)
{
	int rc = pex_buf_append(out, "</", 2);

	if (!rc)
		rc = pex_buf_append(out, name, n);
	return rc ? rc : pex_buf_putc(out, '>');
}

static int scalar_text(struct pex_buf *out, const json_t *v)
{
	char num[64];

	switch (json_typeof(v)) {
	case JSON_STRING:
		return pex_xml_escape(out, json_string_value(v),
				      json_string_length(v));
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		return pex_buf_append(out, num, strlen(num));
	case JSON_REAL: {
		/* the same digits jansson writes in the JSON */
		char *s = json_dumps(v, JSON_ENCODE_ANY);
		int rc;

		if (!s)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		rc = pex_buf_append(out, s, strlen(s));
		free(s);
		return rc;
	}
	case JSON_TRUE:
		return pex_buf_append(out, "true", 4);
	case JSON_FALSE:
		return pex_buf_append(out, "false", 5);
	default:
		return 0;
	}
}

static int write_extra(struct pex_buf *out, const json_t *extra)
{
	const char *key;
	json_t *v;
	int rc = pex_buf_append(out, "<extra>", 7);

	json_object_foreach((json_t *)extra, key, v) {
		const char *type = NULL;

		if (rc)
			break;
		if (json_is_number(v))
			type = "number";
		else if (json_is_boolean(v))
			type = "boolean";
		else if (json_is_null(v))
			type = "null";
		rc = pex_buf_append(out, "<field name=\"", 13);
		if (!rc)
			rc = escape(out, key, strlen(key), 1);
		if (!rc && type)
			rc = pex_buf_printf(out, "\" type=\"%s", type);
		if (!rc)
			rc = pex_buf_append(out, "\">", 2);
		if (!rc && (json_is_object(v) || json_is_array(v))) {
			char *s = json_dumps(v, JSON_COMPACT);

			rc = s ? pex_xml_escape(out, s, strlen(s))
			       : pex_error_set(PEX_ENOMEM, "out of memory");
			free(s);
		} else if (!rc) {
			rc = scalar_text(out, v);
		}
		if (!rc)
			rc = pex_buf_append(out, "</field>", 8);
	}
	return rc ? rc : pex_buf_append(out, "</extra>", 8);
}

/*
 * Elements whose children the XSD gives as an xs:sequence, and that
 * order. A usage event, of which a bundle may hold millions, is checked
 * several times faster as a sequence than as an xs:all (libxml2 runs an
 * xs:all as an automaton with counters): 3 ms of a 50 ms export of one
 * subject's 2701 requests. Members are written in this order whatever
 * the JSON's; xmlout_test checks the lists against bundle.xsd.
 */
static const char *const event_order[] = {
	"id", "source", "matched_by", "at", "client_ip", "method", "path",
	"query", "protocol", "status", "bytes", "duration_ms", "referrer",
	"user_agent", "host", "user", "extra", NULL
};
static const char *const matched_by_order[] = {
	"type", "value", "window", NULL
};

const char *const *pex_xml_member_order(const char *name)
{
	if (name[0] == 'e' && !strcmp(name, "event"))
		return event_order;
	if (name[0] == 'm' && !strcmp(name, "matched_by"))
		return matched_by_order;
	return NULL;
}

static int listed(const char *const *order, const char *key)
{
	for (; *order; order++)
		if (!strcmp(*order, key))
			return 1;
	return 0;
}

/* The members of an object whose element has a fixed order: those
 * listed in that order, then any other (which the XSD then refuses, as
 * it would in any order: nothing is dropped silently). */
static int write_ordered(struct pex_buf *out, const json_t *v,
			 const char *const *order)
{
	const char *const *o;
	const char *key;
	json_t *child;
	size_t seen = 0;
	int rc;

	for (o = order; *o; o++) {
		child = json_object_get(v, *o);
		if (!child)
			continue;
		seen++;
		rc = pex_xml_write(out, *o, child);
		if (rc)
			return rc;
	}
	if (seen == json_object_size(v))
		return 0;
	json_object_foreach((json_t *)v, key, child) {
		if (listed(order, key))
			continue;
		rc = pex_xml_write(out, key, child);
		if (rc)
			return rc;
	}
	return 0;
}

int pex_xml_write(struct pex_buf *out, const char *name, const json_t *v)
{
	const char *const *order;
	const char *key;
	json_t *child;
	size_t i, n;
	int rc;

	if (json_is_null(v))
		return 0; /* absent in XML */
	if (name[0] == 'e' && !strcmp(name, "extra") && json_is_object(v))
		return write_extra(out, v);
	n = strlen(name);
	rc = open_tag(out, name, n);
	if (rc)
		return rc;
	if (json_is_object(v) && (order = pex_xml_member_order(name))) {
		rc = write_ordered(out, v, order);
		if (rc)
			return rc;
	} else if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, child) {
			rc = pex_xml_write(out, key, child);
			if (rc)
				return rc;
		}
	} else if (json_is_array(v)) {
		const char *item = pex_xml_item_name(name);

		json_array_foreach(v, i, child) {
			rc = pex_xml_write(out, item, child);
			if (rc)
				return rc;
		}
	} else {
		rc = scalar_text(out, v);
		if (rc)
			return rc;
	}
	return close_tag(out, name, n);
}
