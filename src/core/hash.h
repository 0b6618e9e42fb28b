/*
 * SHA-256 through OpenSSL's libcrypto (EVP), as hex text. A context is
 * owned by its user: pex_sha256_free() releases it (NULL-safe).
 */
#ifndef PEX_CORE_HASH_H
#define PEX_CORE_HASH_H

#include <stddef.h>

#define PEX_SHA256_HEX 65 /* 64 hex digits + NUL */

typedef struct pex_sha256 pex_sha256;

int pex_sha256_new(pex_sha256 **out);
int pex_sha256_update(pex_sha256 *h, const void *data, size_t len);
/* Writes the digest as lower-case hex and resets h for reuse. */
int pex_sha256_final(pex_sha256 *h, char hex[PEX_SHA256_HEX]);
void pex_sha256_free(pex_sha256 *h);

/* One-shot convenience. */
int pex_sha256_hex(const void *data, size_t len, char hex[PEX_SHA256_HEX]);

#endif
