/*
 * URI reference resolution (RFC 3986 section 5) and JSON Pointer token
 * decoding (RFC 6901) for $id / $ref handling. Only string work: nothing
 * here ever opens a URI. All returned strings are malloc'd, caller frees.
 */
#include "jsonschema/js_internal.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct uri_parts {
	const char *scheme, *auth, *path, *query, *frag;
	size_t scheme_len, auth_len, path_len, query_len, frag_len;
	int has_scheme, has_auth, has_query, has_frag;
};

static void uri_split(const char *s, struct uri_parts *u)
{
	const char *p = s;
	size_t n;

	memset(u, 0, sizeof(*u));
	if (!s)
		s = p = "";
	/* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
	if (isalpha((unsigned char)*p)) {
		n = 1;
		while (isalnum((unsigned char)p[n]) || p[n] == '+' ||
		       p[n] == '-' || p[n] == '.')
			n++;
		if (p[n] == ':') {
			u->has_scheme = 1;
			u->scheme = p;
			u->scheme_len = n;
			p += n + 1;
		}
	}
	if (p[0] == '/' && p[1] == '/') {
		p += 2;
		n = strcspn(p, "/?#");
		u->has_auth = 1;
		u->auth = p;
		u->auth_len = n;
		p += n;
	}
	n = strcspn(p, "?#");
	u->path = p;
	u->path_len = n;
	p += n;
	if (*p == '?') {
		p++;
		n = strcspn(p, "#");
		u->has_query = 1;
		u->query = p;
		u->query_len = n;
		p += n;
	}
	if (*p == '#') {
		p++;
		u->has_frag = 1;
		u->frag = p;
		u->frag_len = strlen(p);
	}
}

/* RFC 3986 5.2.4, in place on a NUL-terminated copy; out has room for
 * strlen(in) + 1 bytes. */
static void remove_dots(char *in, char *out)
{
	size_t o = 0;

	while (*in) {
		if (!strncmp(in, "../", 3)) {
			in += 3;
		} else if (!strncmp(in, "./", 2)) {
			in += 2;
		} else if (!strncmp(in, "/./", 3)) {
			in += 2;
		} else if (!strcmp(in, "/.")) {
			in[1] = '/';
			in += 1;
		} else if (!strncmp(in, "/../", 4) || !strcmp(in, "/..")) {
			if (in[3] == '\0') {
				in[2] = '/';
				in += 2;
			} else {
				in += 3;
			}
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else if (!strcmp(in, ".") || !strcmp(in, "..")) {
			in += strlen(in);
		} else {
			size_t n = (*in == '/') ? 1 : 0;

			n += strcspn(in + n, "/");
			memcpy(out + o, in, n);
			o += n;
			in += n;
		}
	}
	out[o] = '\0';
}

struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	/* keeps b->len + n + 1 from wrapping */
	if (n > SIZE_MAX / 4 || b->len > SIZE_MAX / 4) {
		b->oom = 1;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *np;

		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Append path with dot segments removed. */
static void sb_add_path(struct sbuf *b, const char *path, size_t len)
{
	char *in = malloc(len + 1);
	char *out = malloc(len + 2);

	if (!in || !out) {
		b->oom = 1;
		goto cleanup;
	}
	memcpy(in, path, len);
	in[len] = '\0';
	remove_dots(in, out);
	sb_add(b, out, strlen(out));
cleanup:
	free(in);
	free(out);
}

char *pex_js_uri_resolve(const char *base, const char *ref)
{
	struct uri_parts b, r;
	struct sbuf out = {0};
	const char *scheme, *auth, *query;
	size_t scheme_len, auth_len, query_len;
	int has_scheme, has_auth, has_query;

	uri_split(base, &b);
	uri_split(ref, &r);
	sb_add(&out, "", 0);
	if (r.has_scheme) {
		sb_add(&out, r.scheme, r.scheme_len);
		sb_add(&out, ":", 1);
		if (r.has_auth) {
			sb_add(&out, "//", 2);
			sb_add(&out, r.auth, r.auth_len);
		}
		sb_add_path(&out, r.path, r.path_len);
		if (r.has_query) {
			sb_add(&out, "?", 1);
			sb_add(&out, r.query, r.query_len);
		}
		goto fragment;
	}
	has_scheme = b.has_scheme;
	scheme = b.scheme;
	scheme_len = b.scheme_len;
	if (has_scheme) {
		sb_add(&out, scheme, scheme_len);
		sb_add(&out, ":", 1);
	}
	if (r.has_auth) {
		sb_add(&out, "//", 2);
		sb_add(&out, r.auth, r.auth_len);
		sb_add_path(&out, r.path, r.path_len);
		has_query = r.has_query;
		query = r.query;
		query_len = r.query_len;
	} else {
		has_auth = b.has_auth;
		auth = b.auth;
		auth_len = b.auth_len;
		if (has_auth) {
			sb_add(&out, "//", 2);
			sb_add(&out, auth, auth_len);
		}
		if (r.path_len == 0) {
			sb_add(&out, b.path, b.path_len);
			has_query = r.has_query || b.has_query;
			query = r.has_query ? r.query : b.query;
			query_len = r.has_query ? r.query_len : b.query_len;
		} else if (r.path[0] == '/') {
			sb_add_path(&out, r.path, r.path_len);
			has_query = r.has_query;
			query = r.query;
			query_len = r.query_len;
		} else {
			struct sbuf m = {0};
			size_t keep = b.path_len;

			if (b.has_auth && b.path_len == 0) {
				sb_add(&m, "/", 1);
			} else {
				while (keep > 0 && b.path[keep - 1] != '/')
					keep--;
				sb_add(&m, b.path, keep);
			}
			sb_add(&m, r.path, r.path_len);
			if (m.oom)
				out.oom = 1;
			else
				sb_add_path(&out, m.p, m.len);
			free(m.p);
			has_query = r.has_query;
			query = r.query;
			query_len = r.query_len;
		}
	}
	if (has_query) {
		sb_add(&out, "?", 1);
		sb_add(&out, query, query_len);
	}
fragment:
	if (r.has_frag && r.frag_len > 0) {
		sb_add(&out, "#", 1);
		sb_add(&out, r.frag, r.frag_len);
	}
	if (out.oom) {
		free(out.p);
		return NULL;
	}
	return out.p;
}

char *pex_js_uri_strip_fragment(const char *uri)
{
	size_t n = strcspn(uri, "#");

	return strndup(uri, n);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *pex_js_percent_decode(const char *s, size_t *len_out)
{
	size_t n = strlen(s), o = 0, i;
	char *out = malloc(n + 1);

	if (!out)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] == '%') {
			int h, l;

			if (i + 2 >= n)
				goto bad;
			h = hexval((unsigned char)s[i + 1]);
			l = h < 0 ? -1 : hexval((unsigned char)s[i + 2]);
			if (h < 0 || l < 0)
				goto bad;
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	if (len_out)
		*len_out = o;
	return out;
bad:
	free(out);
	return NULL;
}

long pex_js_pointer_token(const char **pp, const char *end, char *buf,
			  size_t cap)
{
	const char *p = *pp;
	size_t o = 0;

	while (p < end && *p != '/') {
		char ch = *p;

		if (ch == '~') {
			if (p + 1 >= end)
				return -1;
			if (p[1] == '0')
				ch = '~';
			else if (p[1] == '1')
				ch = '/';
			else
				return -1;
			p++;
		}
		if (o + 1 >= cap)
			return -1;
		buf[o++] = ch;
		p++;
	}
	buf[o] = '\0';
	*pp = p;
	return (long)o;
}
