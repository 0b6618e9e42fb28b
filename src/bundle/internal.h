/*
 * Pieces shared by the bundle writer and the bundle checker.
 */
#ifndef PEX_BUNDLE_INTERNAL_H
#define PEX_BUNDLE_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

#include "core/buf.h"

#define PEX_BUNDLE_NS "urn:portex:bundle:1"
#define PEX_BUNDLE_XSD "v1/bundle.xsd"

typedef ssize_t (*pex_read_fn)(void *ctx, void *buf, size_t n);

/*
 * Validate an XML document read through read() against the XSD held in
 * memory, streaming (libxml2's reader: memory does not grow with the
 * document). Problems go to errors, one line each ("LINE: message"), at
 * most max_errors. Returns 0 valid, 1 invalid, negative when the check
 * could not run (a broken XSD).
 */
int pex_xsd_validate_stream(const char *xsd, size_t xsd_len,
			    pex_read_fn read, void *ctx, const char *name,
			    struct pex_buf *errors, int max_errors);

/*
 * Push validation: an XML document fed in chunks as it is produced and
 * checked against a compiled XSD without building a tree (SAX), so that
 * validation runs beside the writing instead of after it. The compiled
 * schema is read-only and may serve several validators of one thread.
 */
typedef struct pex_xsd pex_xsd;
typedef struct pex_xsd_push pex_xsd_push;

int pex_xsd_load(pex_xsd **out, const char *xsd, size_t len);
void pex_xsd_free(pex_xsd *x);
int pex_xsd_push_new(pex_xsd_push **out, pex_xsd *x, const char *name);
/* Feed the next bytes; keeps going after the first problem. */
int pex_xsd_push_feed(pex_xsd_push *p, const char *data, size_t len);
/* End the document: 0 valid, 1 invalid (errors says why), < 0 failure. */
int pex_xsd_push_finish(pex_xsd_push *p, struct pex_buf *errors);
void pex_xsd_push_free(pex_xsd_push *p);

#endif
