/* Streaming XSD validation with libxml2's reader; see internal.h. */
#include "bundle/internal.h"

#include <libxml/xmlreader.h>
#include <libxml/xmlschemas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "portex/error.h"

struct io {
	pex_read_fn read;
	void *ctx;
	int failed;
};

struct errs {
	struct pex_buf *out;
	int count;
	int max;
};

static int io_read(void *context, char *buffer, int len)
{
	struct io *io = context;
	ssize_t n = io->read(io->ctx, buffer, (size_t)len);

	if (n < 0) {
		io->failed = 1;
		return -1;
	}
	return (int)n;
}

static int io_close(void *context)
{
	(void)context;
	return 0;
}

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

int pex_xsd_validate_stream(const char *xsd, size_t xsd_len,
			    pex_read_fn read, void *ctx, const char *name,
			    struct pex_buf *errors, int max_errors)
{
	xmlSchemaParserCtxtPtr pctx = NULL;
	xmlSchemaPtr schema = NULL;
	xmlTextReaderPtr reader = NULL;
	struct io io = { read, ctx, 0 };
	struct errs e = { errors, 0, max_errors };
	int rc, r;

	pthread_once(&init_once, init_libxml);
	pctx = xmlSchemaNewMemParserCtxt(xsd, (int)xsd_len);
	if (pctx)
		xmlSchemaSetParserStructuredErrors(pctx, on_error, &e);
	schema = pctx ? xmlSchemaParse(pctx) : NULL;
	if (!schema) {
		rc = pex_error_set(PEX_EINVALID, "%s: the XSD does not load%s%s",
				   name, errors->len ? ": " : "",
				   errors->len ? errors->data : "");
		goto cleanup;
	}
	e.count = 0;
	pex_buf_reset(errors);
	reader = xmlReaderForIO(io_read, io_close, &io, name, NULL,
				XML_PARSE_NONET | XML_PARSE_HUGE);
	if (!reader) {
		rc = pex_error_set(PEX_ENOMEM, "%s: cannot start the XML "
				   "reader", name);
		goto cleanup;
	}
	xmlTextReaderSetStructuredErrorHandler(reader, on_error, &e);
	if (xmlTextReaderSetSchema(reader, schema)) {
		rc = pex_error_set(PEX_ERROR, "%s: cannot attach the XSD",
				   name);
		goto cleanup;
	}
	while ((r = xmlTextReaderRead(reader)) == 1)
		;
	if (io.failed) {
		rc = pex_error_wrap(PEX_EIO, "%s", name);
		goto cleanup;
	}
	rc = (r == 0 && xmlTextReaderIsValid(reader) == 1 && !e.count) ? 0
									: 1;
	if (rc && !e.count)
		pex_buf_printf(errors, "the document is not well-formed XML");
cleanup:
	xmlFreeTextReader(reader);
	xmlSchemaFree(schema);
	xmlSchemaFreeParserCtxt(pctx);
	return rc;
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
	while (len && !p->failed) {
		int n = len > (1u << 30) ? 1 << 30 : (int)len;

		if (xmlParseChunk(p->pctx, data, n, 0))
			p->failed = 1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int pex_xsd_push_finish(pex_xsd_push *p, struct pex_buf *errors)
{
	int valid;

	if (!p->failed && xmlParseChunk(p->pctx, NULL, 0, 1))
		p->failed = 1;
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
