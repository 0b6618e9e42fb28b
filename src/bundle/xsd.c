/* Streaming XSD validation with libxml2's reader; see internal.h. */
#include "bundle/internal.h"

#include <libxml/xmlreader.h>
#include <libxml/xmlschemas.h>
#include <pthread.h>
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
