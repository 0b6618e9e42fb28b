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

#endif
