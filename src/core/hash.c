/* SHA-256 via libcrypto; see hash.h. */
#include "core/hash.h"

#include <openssl/evp.h>

#include "portex/error.h"

struct pex_sha256 {
	EVP_MD_CTX *ctx;
};

int pex_sha256_new(pex_sha256 **out)
{
	pex_sha256 *h = calloc(1, sizeof(*h));

	*out = NULL;
	if (!h || !(h->ctx = EVP_MD_CTX_new()) ||
	    !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL)) {
		pex_sha256_free(h);
		return pex_error_set(PEX_ERROR, "cannot start SHA-256");
	}
	*out = h;
	return 0;
}

int pex_sha256_update(pex_sha256 *h, const void *data, size_t len)
{
	if (!EVP_DigestUpdate(h->ctx, data, len))
		return pex_error_set(PEX_ERROR, "SHA-256 update failed");
	return 0;
}

int pex_sha256_final(pex_sha256 *h, char hex[PEX_SHA256_HEX])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	if (!EVP_DigestFinal_ex(h->ctx, md, &n) ||
	    !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL))
		return pex_error_set(PEX_ERROR, "SHA-256 final failed");
	for (i = 0; i < n && i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[64] = '\0';
	return 0;
}

void pex_sha256_free(pex_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

int pex_sha256_hex(const void *data, size_t len, char hex[PEX_SHA256_HEX])
{
	pex_sha256 *h;
	int rc = pex_sha256_new(&h);

	if (!rc)
		rc = pex_sha256_update(h, data, len);
	if (!rc)
		rc = pex_sha256_final(h, hex);
	pex_sha256_free(h);
	return rc;
}
