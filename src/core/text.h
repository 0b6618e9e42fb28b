/*
 * Text hygiene: what goes into a bundle is valid UTF-8 that XML 1.0 can
 * carry. pex_text_sanitize() copies s into out, replacing every invalid
 * UTF-8 sequence and every character XML 1.0 forbids (C0 controls but
 * tab, LF and CR; U+FFFE, U+FFFF; surrogates) with U+FFFD.
 */
#ifndef PEX_CORE_TEXT_H
#define PEX_CORE_TEXT_H

#include <stddef.h>

#include "core/buf.h"

/* Returns the number of replacements (>= 0), or a negative PEX_E* code
 * when out cannot grow. out is reset first. */
long pex_text_sanitize(const char *s, size_t len, struct pex_buf *out);

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid.
 * *cp receives the code point. */
size_t pex_utf8_decode(const unsigned char *s, size_t len, unsigned *cp);

/* 1 when every byte is valid UTF-8 and allowed in XML 1.0. */
int pex_text_is_clean(const char *s, size_t len);

/* Make the NUL-terminated s valid UTF-8 in place: each byte that starts
 * no valid sequence (a character cut by a length limit, a Latin-1 byte
 * quoted from input) becomes '?'. For messages, which jansson refuses
 * to take as strings otherwise, losing them. */
void pex_utf8_mend(char *s);

#endif
