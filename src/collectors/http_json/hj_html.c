/*
 * The readable text of an HTML message body, for trackers that store only
 * HTML (Zammad's text/html articles): libxml2's HTML parser builds the
 * tree (recovering from broken markup, never touching the network) and
 * the text nodes are joined in document order, with line breaks where a
 * <br> or a block element ends. The result goes through pex_source_text()
 * at the caller like any other source text.
 */
#include <string.h>
#include <strings.h>

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include "collectors/http_json/hj.h"
#include "portex/error.h"

#define HJ_HTML_DEPTH_MAX 256 /* deeper nesting is flattened, not followed */

static int is_block(const char *name)
{
	static const char *const blocks[] = {
		"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
		"blockquote", "pre", "table", "ul", "ol", "section",
		"article", "header", "footer", NULL
	};

	for (size_t i = 0; blocks[i]; i++)
		if (!strcasecmp(name, blocks[i]))
			return 1;
	return 0;
}

/* Append a newline unless the text already ends with one (or is
 * empty), so markup never makes runs of blank lines; a space before it
 * goes. */
static int newline(struct pex_buf *out)
{
	if (out->len && out->data[out->len - 1] == ' ')
		out->data[--out->len] = '\0';
	if (!out->len || out->data[out->len - 1] == '\n')
		return 0;
	return pex_buf_putc(out, '\n');
}

/* Text as HTML shows it: runs of white space become one space, and
 * none starts a line. */
static int put_text(struct pex_buf *out, const char *s)
{
	int rc;

	for (; *s; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
			if (!out->len || out->data[out->len - 1] == ' ' ||
			    out->data[out->len - 1] == '\n')
				continue;
			rc = pex_buf_putc(out, ' ');
		} else {
			rc = pex_buf_putc(out, *s);
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int walk(xmlNode *n, struct pex_buf *out, int depth)
{
	int rc;

	for (; n; n = n->next) {
		const char *name = (const char *)n->name;

		if (n->type == XML_TEXT_NODE ||
		    n->type == XML_CDATA_SECTION_NODE) {
			if (n->content &&
			    (rc = put_text(out, (const char *)n->content)))
				return rc;
			continue;
		}
		if (n->type != XML_ELEMENT_NODE || !name)
			continue;
		if (!strcasecmp(name, "script") ||
		    !strcasecmp(name, "style") ||
		    !strcasecmp(name, "head"))
			continue;
		if (!strcasecmp(name, "br")) {
			if (out->len && out->data[out->len - 1] == ' ')
				out->data[--out->len] = '\0';
			if ((rc = pex_buf_putc(out, '\n')))
				return rc;
			continue;
		}
		if (is_block(name) && (rc = newline(out)))
			return rc;
		if (depth < HJ_HTML_DEPTH_MAX &&
		    (rc = walk(n->children, out, depth + 1)))
			return rc;
		if (is_block(name) && (rc = newline(out)))
			return rc;
	}
	return 0;
}

int hj_html_text(const char *html, size_t len, struct pex_buf *out)
{
	htmlDocPtr doc;
	int rc;

	pex_buf_reset(out);
	if ((rc = pex_buf_append(out, "", 0)))
		return rc;
	if (!len)
		return 0;
	if (len > (size_t)1 << 30)
		return pex_error_set(PEX_ELIMIT, "HTML body too large");
	doc = htmlReadMemory(html, (int)len, NULL, "UTF-8",
			     HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
			     HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
	if (!doc)
		return 0; /* nothing readable: body_html still holds it */
	/* the parser wraps a fragment in implied html/body elements, which
	 * keeps siblings siblings; <head> (script, style) is skipped */
	rc = walk(xmlDocGetRootElement(doc), out, 0);
	xmlFreeDoc(doc);
	if (rc)
		return rc;
	while (out->len && (out->data[out->len - 1] == '\n' ||
			    out->data[out->len - 1] == ' '))
		out->data[--out->len] = '\0';
	return 0;
}
