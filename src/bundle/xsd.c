/* Streaming XSD validation with libxml2 (push parser, SAX, the schema
 * plugged in: no tree); see internal.h. */
#include "bundle/internal.h"

#include <libxml/parser.h>
#include <libxml/xmlschemas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "portex/error.h"

struct errs {
	struct pex_buf *out;
	int count;
	int max;
};

static void on_error(void *data, xmlErrorPtr err)
{
	struct errs *e = data;
	size_t n;

	if (!err || err->level < XML_ERR_ERROR)
		return;
	if (e->count++ >= e->max)
		return;
	n = err->message ? strlen(err->message) : 0;
	while (n && err->message[n - 1] == '\n')
		n--;
	pex_buf_printf(e->out, "%sline %d: %.*s", e->out->len ? "\n" : "",
		       err->line, (int)n, err->message ? err->message : "");
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_libxml(void)
{
	xmlInitParser();
}

/* ---- push validation --------------------------------------------------- */

struct pex_xsd {
	xmlSchemaPtr schema;
};

struct pex_xsd_push {
	xmlSchemaValidCtxtPtr vctxt;
	xmlSchemaSAXPlugPtr plug;
	xmlSAXHandler sax;
	xmlSAXHandlerPtr saxp;
	void *user;
	xmlParserCtxtPtr pctx;
	struct pex_buf errors;
	struct errs e;
	int failed;
};

int pex_xsd_load(pex_xsd **out, const char *xsd, size_t len)
{
	struct pex_buf errors = PEX_BUF_INIT(64 * 1024);
	struct errs e = { &errors, 0, 5 };
	xmlSchemaParserCtxtPtr pctx;
	pex_xsd *x;

	*out = NULL;
	pthread_once(&init_once, init_libxml);
	x = calloc(1, sizeof(*x));
	if (!x)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	pctx = xmlSchemaNewMemParserCtxt(xsd, (int)len);
	if (pctx) {
		xmlSchemaSetParserStructuredErrors(pctx, on_error, &e);
		x->schema = xmlSchemaParse(pctx);
		xmlSchemaFreeParserCtxt(pctx);
	}
	if (!x->schema) {
		int rc = pex_error_set(PEX_EINVALID, "the XSD does not load: %s",
				       errors.data ? errors.data : "");

		pex_buf_free(&errors);
		free(x);
		return rc;
	}
	pex_buf_free(&errors);
	*out = x;
	return 0;
}

void pex_xsd_free(pex_xsd *x)
{
	if (!x)
		return;
	xmlSchemaFree(x->schema);
	free(x);
}

int pex_xsd_push_new(pex_xsd_push **out, pex_xsd *x, const char *name)
{
	pex_xsd_push *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	pex_buf_init(&p->errors, 64 * 1024);
	p->e.out = &p->errors;
	p->e.max = 10;
	p->vctxt = xmlSchemaNewValidCtxt(x->schema);
	if (!p->vctxt)
		goto fail;
	xmlSchemaSetValidStructuredErrors(p->vctxt, on_error, &p->e);
	/* no tree: an empty SAX2 handler that the schema plug wraps */
	memset(&p->sax, 0, sizeof(p->sax));
	p->sax.initialized = XML_SAX2_MAGIC;
	p->saxp = &p->sax;
	p->plug = xmlSchemaSAXPlug(p->vctxt, &p->saxp, &p->user);
	if (!p->plug)
		goto fail;
	p->pctx = xmlCreatePushParserCtxt(p->saxp, p->user, NULL, 0, name);
	if (!p->pctx)
		goto fail;
	xmlCtxtUseOptions(p->pctx, XML_PARSE_NONET | XML_PARSE_HUGE);
	*out = p;
	return 0;
fail:
	pex_xsd_push_free(p);
	return pex_error_set(PEX_ENOMEM, "cannot start XML validation");
}

int pex_xsd_push_feed(pex_xsd_push *p, const char *data, size_t len)
{
	/* parser errors (not well-formed) go to the list too; libxml2's
	 * handler is per thread */
	xmlSetStructuredErrorFunc(&p->e, on_error);
	while (len && !p->failed) {
		int n = len > (1u << 30) ? 1 << 30 : (int)len;

		if (xmlParseChunk(p->pctx, data, n, 0))
			p->failed = 1;
		data += n;
		len -= (size_t)n;
	}
	xmlSetStructuredErrorFunc(NULL, NULL);
	return 0;
}

int pex_xsd_push_finish(pex_xsd_push *p, struct pex_buf *errors)
{
	int valid;

	xmlSetStructuredErrorFunc(&p->e, on_error);
	if (!p->failed && xmlParseChunk(p->pctx, NULL, 0, 1))
		p->failed = 1;
	xmlSetStructuredErrorFunc(NULL, NULL);
	valid = !p->failed && p->pctx->wellFormed &&
		xmlSchemaIsValid(p->vctxt) == 1 && !p->e.count;
	if (!valid) {
		const xmlError *err = xmlCtxtGetLastError(p->pctx);

		if (!p->e.count && err && err->message)
			pex_buf_printf(errors, "%s", err->message);
		else if (p->errors.len)
			pex_buf_append(errors, p->errors.data, p->errors.len);
		else
			pex_buf_printf(errors, "not valid");
	}
	return valid ? 0 : 1;
}

void pex_xsd_push_free(pex_xsd_push *p)
{
	if (!p)
		return;
	if (p->pctx)
		xmlFreeParserCtxt(p->pctx);
	if (p->plug)
		xmlSchemaSAXUnplug(p->plug);
	if (p->vctxt)
		xmlSchemaFreeValidCtxt(p->vctxt);
	pex_buf_free(&p->errors);
	free(p);
}

int pex_xsd_validate_stream(const char *xsd, size_t xsd_len,
			    pex_read_fn read, void *ctx, const char *name,
			    struct pex_buf *errors, int max_errors)
{
	pex_xsd *x = NULL;
	pex_xsd_push *p = NULL;
	char buf[64 * 1024];
	ssize_t n = 0;
	int rc = pex_xsd_load(&x, xsd, xsd_len);

	if (rc)
		return pex_error_wrap(rc, "%s", name);
	rc = pex_xsd_push_new(&p, x, name);
	if (!rc)
		p->e.max = max_errors;
	while (!rc && (n = read(ctx, buf, sizeof(buf))) > 0)
		pex_xsd_push_feed(p, buf, (size_t)n);
	if (!rc && n < 0)
		rc = pex_error_wrap(PEX_EIO, "%s", name);
	if (!rc)
		rc = pex_xsd_push_finish(p, errors);
	pex_xsd_push_free(p);
	pex_xsd_free(x);
	return rc;
}
