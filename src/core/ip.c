/* IP addresses as values; see ip.h. */
#include "core/ip.h"

#include <arpa/inet.h>
#include <string.h>

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0,
					      0, 0, 0, 0, 0xff, 0xff };

int pex_ip_from_text(const char *s, struct pex_ipaddr *out)
{
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, s, out->b) == 1) {
		out->family = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out->b) == 1) {
		out->family = 6;
		if (!memcmp(out->b, v4_mapped_prefix, 12)) {
			memmove(out->b, out->b + 12, 4);
			memset(out->b + 4, 0, 12);
			out->family = 4;
		}
		return 0;
	}
	return -1;
}

void pex_ip_format(const struct pex_ipaddr *a, char *out, size_t outsz)
{
	char buf[PEX_IP_TEXT_MAX];

	if (!inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->b, buf,
		       sizeof(buf)))
		buf[0] = '\0';
	if (outsz) {
		size_t l = strlen(buf);

		if (l >= outsz)
			l = outsz - 1;
		memcpy(out, buf, l);
		out[l] = '\0';
	}
}

int pex_ip_equal(const struct pex_ipaddr *a, const struct pex_ipaddr *b)
{
	return a->family == b->family &&
	       !memcmp(a->b, b->b, a->family == 4 ? 4 : 16);
}
