/*
 * Records as compact JSON text: the same bytes json_dumps(v, JSON_COMPACT)
 * writes (members in insertion order, "," and ":" without spaces, UTF-8
 * kept as it is, '"', '\\' and C0 controls escaped as jansson escapes
 * them), at a fraction of its cost. jansson's dump hands its callback a
 * piece per token and keeps a table of the containers it is inside,
 * keyed by their address printed as text; for a bundle of many small
 * records that was a third of the time spent building them.
 *
 * Reals are left to jansson, whose digits the bundle has always had.
 *
 * Where the two differ, this one refuses what jansson would write
 * wrongly: a key that is not UTF-8 (jansson 2.14 writes it as broken
 * JSON; keys made with jansson's checks never are), and nesting deeper
 * than PEX_JSON_MAX_DEPTH. Keys are written up to their first NUL (as
 * json_object_foreach gives them); portex makes no key that holds one.
 */
#ifndef PEX_BUNDLE_JSONOUT_H
#define PEX_BUNDLE_JSONOUT_H

#include <jansson.h>

#include "core/buf.h"

/* Deepest nesting written; deeper (or a value that contains itself) is
 * refused with PEX_EINVALID rather than recursed into. */
#define PEX_JSON_MAX_DEPTH 256

/*
 * Append v to out. Returns 0, or a negative PEX_E* code with the message
 * set: PEX_EINVALID for a string or key that is not valid UTF-8, for a
 * real that is not finite and for nesting too deep; PEX_ELIMIT only when
 * out would pass its maximum; PEX_ENOMEM. On failure out holds a partial value; the caller drops it.
 */
int pex_json_write(struct pex_buf *out, const json_t *v);

#endif
