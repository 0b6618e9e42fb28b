/* Unit tests for bundle/xmlout.c: the model as XML. Every output is parsed
 * back with libxml2 to prove it is well-formed and says what the JSON
 * said. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "bundle/xmlout.h"
#include "core/buf.h"
#include "model/schemas.h"
#include "core/text.h"
#include "portex/error.h"

/* Write v as <name> and parse it back; the caller frees the document. */
static xmlDocPtr write_and_parse(const char *name, const json_t *v,
				 struct pex_buf *out)
{
	xmlDocPtr doc;

	pex_buf_reset(out);
	assert_int_equal(pex_xml_write(out, name, v), 0);
	assert_non_null(out->data);
	doc = xmlReadMemory(out->data, (int)out->len, "mem.xml", "UTF-8",
			    XML_PARSE_NONET | XML_PARSE_NOERROR |
				    XML_PARSE_NOWARNING);
	if (!doc)
		fail_msg("not well-formed: %s", out->data);
	return doc;
}

static xmlNodePtr child(xmlNodePtr n, const char *name, int nth)
{
	for (n = n->children; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE &&
		    !strcmp((const char *)n->name, name) && nth-- == 0)
			return n;
	return NULL;
}

static size_t count_children(xmlNodePtr n)
{
	size_t c = 0;

	for (n = n->children; n; n = n->next)
		c += n->type == XML_ELEMENT_NODE;
	return c;
}

/* Text content of n must equal want. */
static void check_text(xmlNodePtr n, const char *want)
{
	xmlChar *t;

	assert_non_null(n);
	t = xmlNodeGetContent(n);
	assert_non_null(t);
	if (strcmp((const char *)t, want))
		fail_msg("content \"%s\", want \"%s\"", t, want);
	xmlFree(t);
}

static void check_attr(xmlNodePtr n, const char *attr, const char *want)
{
	xmlChar *a = xmlGetProp(n, (const xmlChar *)attr);

	if (!want) {
		assert_null(a);
		return;
	}
	assert_non_null(a);
	if (strcmp((const char *)a, want))
		fail_msg("%s=\"%s\", want \"%s\"", attr, a, want);
	xmlFree(a);
}

static void test_escape(void **state)
{
	struct pex_buf b = PEX_BUF_INIT(4096);
	const char *in = "a & b < c > d \" e \r f ' g\th\ni";
	json_t *v = json_string(in);
	xmlDocPtr doc;

	(void)state;
	assert_int_equal(pex_xml_escape(&b, in, strlen(in)), 0);
	assert_string_equal(b.data, "a &amp; b &lt; c &gt; d &quot; e &#13; "
				    "f ' g\th\ni");
	pex_buf_reset(&b);
	/* the length counts */
	assert_int_equal(pex_xml_escape(&b, "<<>>", 2), 0);
	assert_string_equal(b.data, "&lt;&lt;");
	pex_buf_reset(&b);
	assert_int_equal(pex_xml_escape(&b, "", 0), 0);
	assert_string_equal(b.data, "");
	/* content survives a parser, CR included */
	doc = write_and_parse("v", v, &b);
	check_text(xmlDocGetRootElement(doc), in);
	xmlFreeDoc(doc);
	json_decref(v);
	/* escaping is bounded by the buffer */
	{
		struct pex_buf small = PEX_BUF_INIT(8);

		assert_int_equal(pex_xml_escape(&small, "&&", 2), PEX_ELIMIT);
		pex_buf_free(&small);
	}
	pex_buf_free(&b);
}

static void test_lists(void **state)
{
	struct pex_buf b = PEX_BUF_INIT(1 << 16);
	json_t *v = json_pack("{s:[s,s], s:[], s:[i], s:[s], s:[{s:s}]}",
			      "emails", "a@x", "b@x", "phones", "whatnots", 7,
			      "lawful_basis", "contract", "messages", "from",
			      "me");
	xmlDocPtr doc;
	xmlNodePtr root, emails;

	(void)state;
	doc = write_and_parse("contact", v, &b);
	root = xmlDocGetRootElement(doc);
	assert_string_equal((const char *)root->name, "contact");
	emails = child(root, "emails", 0);
	assert_non_null(emails);
	assert_int_equal(count_children(emails), 2);
	check_text(child(emails, "email", 0), "a@x");
	check_text(child(emails, "email", 1), "b@x");
	/* an empty list is an empty wrapper */
	assert_non_null(child(root, "phones", 0));
	assert_int_equal(count_children(child(root, "phones", 0)), 0);
	/* a list with no known singular holds <item>s */
	check_text(child(child(root, "whatnots", 0), "item", 0), "7");
	check_text(child(child(root, "lawful_basis", 0), "basis", 0),
		   "contract");
	check_text(child(child(child(root, "messages", 0), "message", 0),
			 "from", 0), "me");
	xmlFreeDoc(doc);
	json_decref(v);
	assert_string_equal(pex_xml_item_name("ip_addresses"), "ip_address");
	assert_string_equal(pex_xml_item_name("categories"), "category");
	assert_string_equal(pex_xml_item_name("nope"), "item");
	pex_buf_free(&b);
}

static void test_scalars_and_nulls(void **state)
{
	struct pex_buf b = PEX_BUF_INIT(1 << 16);
	json_t *v = json_pack("{s:n, s:I, s:f, s:b, s:b, s:s, s:{s:n}}",
			      "gone", "n", (json_int_t)-42, "r", 0.5, "t", 1,
			      "f", 0, "s", "", "o", "inner");
	xmlDocPtr doc;
	xmlNodePtr root;

	(void)state;
	doc = write_and_parse("rec", v, &b);
	root = xmlDocGetRootElement(doc);
	/* nulls are left out, not written empty */
	assert_null(child(root, "gone", 0));
	assert_null(strstr(b.data, "gone"));
	check_text(child(root, "n", 0), "-42");
	check_text(child(root, "r", 0), "0.5");
	check_text(child(root, "t", 0), "true");
	check_text(child(root, "f", 0), "false");
	check_text(child(root, "s", 0), "");
	assert_non_null(child(root, "o", 0));
	assert_int_equal(count_children(child(root, "o", 0)), 0);
	xmlFreeDoc(doc);
	/* a null at the top writes nothing at all */
	pex_buf_reset(&b);
	assert_int_equal(pex_xml_write(&b, "x", json_null()), 0);
	assert_int_equal(b.len, 0);
	json_decref(v);
	pex_buf_free(&b);
}

static void test_extra(void **state)
{
	struct pex_buf b = PEX_BUF_INIT(1 << 16);
	/* keys are column names from the source: anything clean goes,
	 * including characters an element name could not hold and white
	 * space an attribute would normalise away */
	const char *odd = "a \"b\" & <c>\td\ne\rf";
	json_t *extra = json_pack("{s:I, s:f, s:b, s:n, s:s, s:{s:[i,s]}, "
				  "s:s, s:[]}",
				  "count", (json_int_t)3, "ratio", 1.25,
				  "vip", 1, "fax", "notes", "x < y & z",
				  "obj", "k", 1, "<v>", odd, "odd", "list");
	json_t *v = json_pack("{s:s, s:o}", "id", "r1", "extra", extra);
	xmlDocPtr doc;
	xmlNodePtr root, ex, f;
	size_t i;
	int seen_odd = 0, seen_obj = 0;

	(void)state;
	doc = write_and_parse("contact", v, &b);
	root = xmlDocGetRootElement(doc);
	ex = child(root, "extra", 0);
	assert_non_null(ex);
	assert_int_equal(count_children(ex), 8);
	for (i = 0; (f = child(ex, "field", (int)i)); i++) {
		xmlChar *name = xmlGetProp(f, (const xmlChar *)"name");
		const char *n = (const char *)name;

		assert_non_null(name);
		if (!strcmp(n, "count")) {
			check_attr(f, "type", "number");
			check_text(f, "3");
		} else if (!strcmp(n, "ratio")) {
			check_attr(f, "type", "number");
			check_text(f, "1.25");
		} else if (!strcmp(n, "vip")) {
			check_attr(f, "type", "boolean");
			check_text(f, "true");
		} else if (!strcmp(n, "fax")) {
			/* in extra a null is kept, typed */
			check_attr(f, "type", "null");
			check_text(f, "");
		} else if (!strcmp(n, "notes")) {
			check_attr(f, "type", NULL);
			check_text(f, "x < y & z");
		} else if (!strcmp(n, "obj")) {
			json_t *back;
			xmlChar *t = xmlNodeGetContent(f);

			/* nested values are carried as their JSON text */
			back = json_loads((const char *)t, 0, NULL);
			assert_non_null(back);
			assert_true(json_equal(back, json_object_get(extra,
								     "obj")));
			json_decref(back);
			xmlFree(t);
			seen_obj = 1;
		} else if (!strcmp(n, odd)) {
			check_text(f, "odd");
			seen_odd = 1;
		} else if (!strcmp(n, "list")) {
			check_text(f, "[]");
		} else {
			fail_msg("unexpected field name \"%s\"", n);
		}
		xmlFree(name);
	}
	assert_int_equal(i, 8);
	assert_true(seen_obj);
	/* the tab, LF and CR in the key came back as written */
	assert_true(seen_odd);
	xmlFreeDoc(doc);
	json_decref(v);
	pex_buf_free(&b);
}

/* Clean strings of every kind of byte mix: the XML is well-formed and
 * its text is the string. */
static void test_round_trip_many(void **state)
{
	static const char *const parts[] = {
		"&", "<", ">", "\"", "'", "\r", "\n", "\t", "]]>", "<!--",
		"&amp;", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "a",
		" ", "\x01", "\xFF", "\xEF\xBF\xBE", "\xED\xA0\x80", "<?x?>",
	};
	struct pex_buf raw = PEX_BUF_INIT(4096), clean = PEX_BUF_INIT(16384);
	struct pex_buf b = PEX_BUF_INIT(1 << 16);
	unsigned seed = 12345;
	int i, j;

	(void)state;
	for (i = 0; i < 500; i++) {
		json_t *v;
		xmlDocPtr doc;
		int n;

		pex_buf_reset(&raw);
		seed = seed * 1103515245u + 12345u;
		n = (int)((seed >> 16) % 12);
		for (j = 0; j < n; j++) {
			const char *p;

			seed = seed * 1103515245u + 12345u;
			p = parts[(seed >> 16) % (sizeof(parts) /
						  sizeof(parts[0]))];
			assert_int_equal(pex_buf_append(&raw, p, strlen(p)),
					 0);
		}
		assert_true(pex_text_sanitize(raw.data ? raw.data : "",
					      raw.len, &clean) >= 0);
		v = json_pack("{s:s, s:{s:s}}", "title", clean.data, "extra",
			      clean.data, clean.data);
		assert_non_null(v);
		doc = write_and_parse("ticket", v, &b);
		check_text(child(xmlDocGetRootElement(doc), "title", 0),
			   clean.data);
		{
			xmlNodePtr f = child(child(xmlDocGetRootElement(doc),
						   "extra", 0), "field", 0);

			check_attr(f, "name", clean.data);
			check_text(f, clean.data);
		}
		xmlFreeDoc(doc);
		json_decref(v);
	}
	pex_buf_free(&raw);
	pex_buf_free(&clean);
	pex_buf_free(&b);
}

static void test_limit(void **state)
{
	struct pex_buf b = PEX_BUF_INIT(32);
	json_t *v = json_pack("{s:s}", "title", "a string far longer than "
				       "thirty-two bytes");

	(void)state;
	assert_int_equal(pex_xml_write(&b, "ticket", v), PEX_ELIMIT);
	json_decref(v);
	pex_buf_free(&b);
}

/* An event and its matched_by written in the XSD's order whatever the
 * JSON's: here built backwards, with one member the XSD does not know,
 * which still comes out (last) for the XSD to refuse. */
static void test_member_order(void **state)
{
	struct pex_buf b = PEX_BUF_INIT(1u << 20);
	const char *const *order = pex_xml_member_order("event");
	const char *want[] = { "id", "source", "matched_by", "at", "path",
			       "status", "extra", "surprise" };
	json_t *ev = json_object();
	xmlDocPtr doc;
	xmlNodePtr n, mb;
	size_t i = 0;

	(void)state;
	assert_non_null(order);
	assert_null(pex_xml_member_order("contact"));
	json_object_set_new(ev, "surprise", json_string("x"));
	json_object_set_new(ev, "extra", json_object());
	json_object_set_new(ev, "status", json_integer(200));
	json_object_set_new(ev, "path", json_string("/a"));
	json_object_set_new(ev, "at", json_string("2026-01-01T00:00:00Z"));
	json_object_set_new(ev, "matched_by",
			    json_pack("{s:s, s:s, s:s}", "window", "w",
				      "value", "198.51.100.7", "type", "ip"));
	json_object_set_new(ev, "source", json_string("weblog"));
	json_object_set_new(ev, "id", json_string("weblog:1"));
	doc = write_and_parse("event", ev, &b);
	for (n = xmlDocGetRootElement(doc)->children; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		assert_true(i < sizeof(want) / sizeof(want[0]));
		assert_string_equal((const char *)n->name, want[i]);
		i++;
	}
	assert_int_equal(i, sizeof(want) / sizeof(want[0]));
	mb = child(xmlDocGetRootElement(doc), "matched_by", 0);
	check_text(mb->children, "ip");
	assert_string_equal((const char *)mb->children->name, "type");
	assert_string_equal((const char *)mb->children->next->name, "value");
	assert_string_equal((const char *)mb->children->next->next->name,
			    "window");
	xmlFreeDoc(doc);
	json_decref(ev);
	pex_buf_free(&b);
}

/* The element names of the xs:sequence of complexType type in the XSD. */
static size_t xsd_sequence(xmlDocPtr xsd, const char *type,
			   const char **names, size_t max)
{
	xmlNodePtr t, seq, e;
	size_t n = 0;

	for (t = xmlDocGetRootElement(xsd)->children; t; t = t->next) {
		xmlChar *nm;
		int hit;

		if (t->type != XML_ELEMENT_NODE ||
		    strcmp((const char *)t->name, "complexType"))
			continue;
		nm = xmlGetProp(t, (const xmlChar *)"name");
		hit = nm && !strcmp((const char *)nm, type);
		xmlFree(nm);
		if (hit)
			break;
	}
	if (!t)
		fail_msg("no complexType %s in the XSD", type);
	for (seq = t->children; seq; seq = seq->next)
		if (seq->type == XML_ELEMENT_NODE)
			break;
	if (!seq || strcmp((const char *)seq->name, "sequence"))
		fail_msg("complexType %s is not an xs:sequence", type);
	for (e = seq->children; e; e = e->next) {
		if (e->type != XML_ELEMENT_NODE)
			continue;
		assert_true(n < max);
		names[n++] = (const char *)xmlGetProp(e,
						      (const xmlChar *)"name");
	}
	return n;
}

/* The orders xmlout writes are those of bundle.xsd (as embedded). */
static void test_order_is_the_xsd(void **state)
{
	static const struct {
		const char *element, *type;
	} seqs[] = { { "event", "event" }, { "matched_by", "matchedBy" } };
	const struct pex_schema_file *f = pex_schema_file_find(
		"v1/bundle.xsd");
	xmlDocPtr xsd;
	size_t k;

	(void)state;
	assert_non_null(f);
	xsd = xmlReadMemory(f->data, (int)f->len, "bundle.xsd", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOBLANKS);
	assert_non_null(xsd);
	for (k = 0; k < sizeof(seqs) / sizeof(seqs[0]); k++) {
		const char *names[64];
		const char *const *order = pex_xml_member_order(
			seqs[k].element);
		size_t n = xsd_sequence(xsd, seqs[k].type, names, 64), i;

		assert_non_null(order);
		for (i = 0; i < n; i++) {
			assert_non_null(order[i]);
			assert_string_equal(order[i], names[i]);
			xmlFree((void *)names[i]);
		}
		assert_null(order[n]);
	}
	xmlFreeDoc(xsd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_scalars_and_nulls),
		cmocka_unit_test(test_extra),
		cmocka_unit_test(test_round_trip_many),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_member_order),
		cmocka_unit_test(test_order_is_the_xsd),
	};
	int rc;

	LIBXML_TEST_VERSION
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	xmlCleanupParser();
	return rc;
}
