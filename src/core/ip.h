/*
 * IP addresses as values: one parse (IPv4, IPv6, IPv4-mapped IPv6 folded
 * to IPv4) and one canonical text, shared by identities and the log
 * parser so that an address the subject gave and one a server logged
 * compare equal exactly when they are the same address.
 */
#ifndef PEX_CORE_IP_H
#define PEX_CORE_IP_H

#include <stddef.h>
#include <stdint.h>

#define PEX_IP_TEXT_MAX 46 /* INET6_ADDRSTRLEN */

struct pex_ipaddr {
	int family;     /* 4 or 6; IPv4-mapped IPv6 is stored as 4 */
	uint8_t b[16];  /* network order, first 4 bytes used for IPv4 */
};

/* Exactly an address, nothing around it (NUL-terminated text).
 * 0, or -1 when s is no address (no error message is set). */
int pex_ip_from_text(const char *s, struct pex_ipaddr *out);
/* The canonical text (inet_ntop) into out (outsz >= PEX_IP_TEXT_MAX). */
void pex_ip_format(const struct pex_ipaddr *a, char *out, size_t outsz);
int pex_ip_equal(const struct pex_ipaddr *a, const struct pex_ipaddr *b);

#endif
