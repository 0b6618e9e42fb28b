/* Access-log format compiler and line parser; see logformat.h and
 * docs/internals/logformat.md. */
#include "collectors/access_log/logformat.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portex/error.h"

/* ---- the compiled program ------------------------------------------- */

enum fkind {
	/* string fields: extent found by quotes or the next literal */
	FK_CLIENT,
	FK_REMOTE_ADDR,
	FK_IDENT,
	FK_USER,
	FK_REQUEST,
	FK_METHOD,
	FK_URI,
	FK_PATH,
	FK_QUERY,
	FK_PROTOCOL,
	FK_VHOST,
	FK_HEADER,
	FK_COOKIE,
	FK_OTHER,
	/* typed fields: extent found by their own grammar */
	FK_TIME_CLF,
	FK_TIME_ISO,
	FK_TIME_EPOCH,
	FK_STATUS,
	FK_BYTES,       /* body bytes: %b %B $body_bytes_sent */
	FK_BYTES_TOTAL, /* %O $bytes_sent: used when no body count */
	FK_DUR_US,
	FK_DUR_MS,
	FK_DUR_S,
	FK_DUR_FRAC,    /* seconds with a fraction: $request_time */
};

#define FK_FIRST_TYPED FK_TIME_CLF
#define NO_DST 0xffff

struct elem {
	uint8_t is_lit;
	uint8_t kind;
	uint8_t quoted;
	int8_t slot;      /* named[] index or -1 */
	uint16_t dst;     /* offsetof a pex_logslice in pex_logrec */
	uint16_t lit_off; /* literal bytes in fmt->lits */
	uint16_t lit_len;
	uint16_t col;     /* 1-based column in the format text */
};

enum named_kind { NAMED_HEADER = 1, NAMED_COOKIE = 2 };

struct pex_logformat {
	size_t nelem;
	struct elem el[PEX_LOGFORMAT_MAX_ELEMS];
	size_t lits_len;
	char lits[PEX_LOGFORMAT_TEXT_MAX];
	size_t max_line;
	int allow_trailing;
	int has_time;
	int nnamed;
	unsigned char named_kind[PEX_LOGFORMAT_MAX_NAMED];
	char names[PEX_LOGFORMAT_MAX_NAMED][PEX_LOGFORMAT_NAME_MAX + 1];
};

#define DST(field) ((uint16_t)offsetof(struct pex_logrec, field))

static bool is_typed(int kind)
{
	return kind >= FK_FIRST_TYPED;
}

/* ---- building ------------------------------------------------------- */

static int add_lit(struct pex_logformat *f, const char *s, size_t n)
{
	struct elem *last = f->nelem ? &f->el[f->nelem - 1] : NULL;

	if (n == 0)
		return 0;
	if (f->lits_len + n > sizeof(f->lits))
		return pex_error_set(PEX_ELIMIT, "log format: literal text "
				     "longer than %d bytes",
				     PEX_LOGFORMAT_TEXT_MAX);
	memcpy(f->lits + f->lits_len, s, n);
	/* Literals are appended in order, so the previous literal ends
	 * where this one starts and the two can merge. */
	if (last && last->is_lit) {
		last->lit_len = (uint16_t)(last->lit_len + n);
	} else {
		if (f->nelem == PEX_LOGFORMAT_MAX_ELEMS)
			return pex_error_set(PEX_ELIMIT, "log format: more "
					     "than %d parts",
					     PEX_LOGFORMAT_MAX_ELEMS);
		f->el[f->nelem++] = (struct elem){
			.is_lit = 1, .slot = -1, .dst = NO_DST,
			.lit_off = (uint16_t)f->lits_len,
			.lit_len = (uint16_t)n};
	}
	f->lits_len += n;
	return 0;
}

static int add_field(struct pex_logformat *f, int kind, uint16_t dst,
		     int slot, size_t col)
{
	if (f->nelem == PEX_LOGFORMAT_MAX_ELEMS)
		return pex_error_set(PEX_ELIMIT, "log format: more than %d "
				     "parts", PEX_LOGFORMAT_MAX_ELEMS);
	f->el[f->nelem++] = (struct elem){
		.kind = (uint8_t)kind, .slot = (int8_t)slot, .dst = dst,
		.col = (uint16_t)col};
	if (kind == FK_TIME_CLF || kind == FK_TIME_ISO ||
	    kind == FK_TIME_EPOCH)
		f->has_time = 1;
	return 0;
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

/* Header names compare case-insensitively with '-' == '_' (nginx writes
 * $http_x_forwarded_for for X-Forwarded-For); cookies compare exactly. */
static int norm_name(const char *s, size_t n, int kind, char *out)
{
	if (n == 0 || n > PEX_LOGFORMAT_NAME_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!is_name_char(s[i]))
			return -1;
		out[i] = s[i];
		if (kind == NAMED_HEADER)
			out[i] = s[i] == '_' ? '-' : lower(s[i]);
	}
	out[n] = '\0';
	return 0;
}

static int find_slot(const struct pex_logformat *f, int kind,
		     const char *norm)
{
	for (int i = 0; i < f->nnamed; i++)
		if (f->named_kind[i] == kind && !strcmp(f->names[i], norm))
			return i;
	return -1;
}

/* Add a header or cookie field; well-known headers also fill their own
 * member of pex_logrec. */
static int add_named(struct pex_logformat *f, int kind, const char *name,
		     size_t n, size_t col, const char *what)
{
	char norm[PEX_LOGFORMAT_NAME_MAX + 1];
	uint16_t dst = NO_DST;
	int slot;

	if (norm_name(name, n, kind, norm) < 0)
		return pex_error_set(PEX_EINVALID, "log format: bad %s name "
				     "'%.*s' at column %zu", what,
				     (int)(n > 80 ? 80 : n), name, col);
	slot = find_slot(f, kind, norm);
	if (slot < 0) {
		if (f->nnamed == PEX_LOGFORMAT_MAX_NAMED)
			return pex_error_set(PEX_ELIMIT, "log format: more "
					     "than %d headers and cookies",
					     PEX_LOGFORMAT_MAX_NAMED);
		slot = f->nnamed++;
		f->named_kind[slot] = (unsigned char)kind;
		memcpy(f->names[slot], norm, strlen(norm) + 1);
	}
	if (kind == NAMED_HEADER) {
		if (!strcmp(norm, "referer"))
			dst = DST(referer);
		else if (!strcmp(norm, "user-agent"))
			dst = DST(user_agent);
		else if (!strcmp(norm, "x-forwarded-for"))
			dst = DST(xff);
		else if (!strcmp(norm, "host"))
			dst = DST(vhost);
	}
	return add_field(f, kind == NAMED_HEADER ? FK_HEADER : FK_COOKIE, dst,
			 slot, col);
}

static uint16_t kind_dst(int kind)
{
	switch (kind) {
	case FK_CLIENT: return DST(client);
	case FK_REMOTE_ADDR: return DST(remote_addr);
	case FK_IDENT: return DST(ident);
	case FK_USER: return DST(user);
	case FK_REQUEST: return DST(request);
	case FK_METHOD: return DST(method);
	case FK_PATH: return DST(path);
	case FK_PROTOCOL: return DST(protocol);
	case FK_VHOST: return DST(vhost);
	default: return NO_DST;
	}
}

static int add_simple(struct pex_logformat *f, int kind, size_t col)
{
	return add_field(f, kind, kind_dst(kind), -1, col);
}

/* ---- Apache LogFormat ----------------------------------------------- */

/* Directives that need a {name}: request header, cookie, environment,
 * note, response header. */
static int apache_braced(struct pex_logformat *f, char letter,
			 const char *arg, size_t n, size_t col)
{
	switch (letter) {
	case 'i':
		return add_named(f, NAMED_HEADER, arg, n, col, "header");
	case 'C':
		return add_named(f, NAMED_COOKIE, arg, n, col, "cookie");
	case 'e': case 'n': case 'o':
		return add_simple(f, FK_OTHER, col);
	case 'a':
		/* %{c}a is the peer address, %a the client IP */
		return add_simple(f, FK_REMOTE_ADDR, col);
	case 'T':
		if (n == 2 && !memcmp(arg, "ms", 2))
			return add_simple(f, FK_DUR_MS, col);
		if (n == 2 && !memcmp(arg, "us", 2))
			return add_simple(f, FK_DUR_US, col);
		if (n == 1 && arg[0] == 's')
			return add_simple(f, FK_DUR_S, col);
		break;
	case 't':
		return pex_error_set(PEX_EINVALID, "log format: %%{...}t at "
				     "column %zu is not supported: log the "
				     "time with plain %%t", col);
	case 'p': case 'P': case 'h': case 'v': case 'V':
		/* %{remote}p, %{pid}P ...: same text shape as without */
		return add_simple(f, letter == 'h' ? FK_CLIENT :
					     letter == 'v' || letter == 'V' ?
					     FK_VHOST : FK_OTHER, col);
	default:
		break;
	}
	return pex_error_set(PEX_EINVALID, "log format: unknown directive "
			     "%%{%.*s}%c at column %zu",
			     (int)(n > 80 ? 80 : n), arg, letter, col);
}

static int apache_plain(struct pex_logformat *f, char letter, size_t col)
{
	int rc;

	switch (letter) {
	case 'h': return add_simple(f, FK_CLIENT, col);
	case 'a': return add_simple(f, FK_REMOTE_ADDR, col);
	case 'l': return add_simple(f, FK_IDENT, col);
	case 'u': return add_simple(f, FK_USER, col);
	case 'r': return add_simple(f, FK_REQUEST, col);
	case 'm': return add_simple(f, FK_METHOD, col);
	case 'U': return add_simple(f, FK_PATH, col);
	case 'q': return add_simple(f, FK_QUERY, col);
	case 'H': return add_simple(f, FK_PROTOCOL, col);
	case 's': return add_simple(f, FK_STATUS, col);
	case 'b': case 'B': return add_simple(f, FK_BYTES, col);
	case 'O': return add_simple(f, FK_BYTES_TOTAL, col);
	case 'D': return add_simple(f, FK_DUR_US, col);
	case 'T': return add_simple(f, FK_DUR_S, col);
	case 'v': case 'V': return add_simple(f, FK_VHOST, col);
	case 'A': case 'f': case 'k': case 'L': case 'p': case 'P':
	case 'R': case 'X': case 'I': case 'S':
		return add_simple(f, FK_OTHER, col);
	case 't':
		/* %t writes its own brackets; splitting them out lets the
		 * time be read by the same code as nginx's [$time_local]. */
		rc = add_lit(f, "[", 1);
		if (rc == 0)
			rc = add_simple(f, FK_TIME_CLF, col);
		if (rc == 0)
			rc = add_lit(f, "]", 1);
		return rc;
	case 'i': case 'C': case 'e': case 'n': case 'o':
		return pex_error_set(PEX_EINVALID, "log format: directive "
				     "%%%c at column %zu needs a {name}",
				     letter, col);
	default:
		return pex_error_set(PEX_EINVALID, "log format: unknown "
				     "directive %%%c at column %zu", letter,
				     col);
	}
}

static int compile_apache(struct pex_logformat *f, const char *t)
{
	size_t i = 0, n = strlen(t);
	int rc = 0;

	while (i < n && rc == 0) {
		char c = t[i];

		if (c == '\\' && i + 1 < n) {
			/* The escapes mod_log_config itself understands,
			 * plus \" so a line pasted from httpd.conf works. */
			char e = t[i + 1];
			char v = e == 'n' ? '\n' : e == 't' ? '\t' : e;

			rc = add_lit(f, &v, 1);
			i += 2;
			continue;
		}
		if (c != '%') {
			size_t j = i;

			while (j < n && t[j] != '%' && t[j] != '\\')
				j++;
			rc = add_lit(f, t + i, j - i);
			i = j;
			continue;
		}
		size_t col = i + 1;
		const char *arg = NULL;
		size_t argn = 0;

		i++;
		if (i < n && t[i] == '%') {
			rc = add_lit(f, "%", 1);
			i++;
			continue;
		}
		/* Modifiers: status conditions "!200,304", "<" / ">" for
		 * the original or final request, and a {argument}. */
		while (i < n) {
			char m = t[i];

			if (m == '!' || m == ',' || m == '<' || m == '>' ||
			    (m >= '0' && m <= '9')) {
				i++;
			} else if (m == '{' && !arg) {
				const char *close = memchr(t + i, '}', n - i);

				if (!close)
					return pex_error_set(PEX_EINVALID,
						"log format: unclosed '{' "
						"at column %zu", i + 1);
				arg = t + i + 1;
				argn = (size_t)(close - arg);
				i = (size_t)(close - t) + 1;
			} else {
				break;
			}
		}
		if (i >= n)
			return pex_error_set(PEX_EINVALID, "log format: '%%' "
					     "without a directive at column "
					     "%zu", col);
		if (t[i] == '^')
			return pex_error_set(PEX_EINVALID, "log format: "
					     "unsupported directive %%^ at "
					     "column %zu", col);
		rc = arg ? apache_braced(f, t[i], arg, argn, col)
			 : apache_plain(f, t[i], col);
		i++;
	}
	return rc;
}

/* ---- nginx log_format ----------------------------------------------- */

struct nginx_var {
	const char *name;
	int kind;
};

static const struct nginx_var nginx_vars[] = {
	{"remote_addr", FK_CLIENT},
	{"realip_remote_addr", FK_REMOTE_ADDR},
	{"remote_user", FK_USER},
	{"time_local", FK_TIME_CLF},
	{"time_iso8601", FK_TIME_ISO},
	{"msec", FK_TIME_EPOCH},
	{"request", FK_REQUEST},
	{"request_method", FK_METHOD},
	{"request_uri", FK_URI},
	{"uri", FK_PATH},
	{"document_uri", FK_PATH},
	{"args", FK_QUERY},
	{"query_string", FK_QUERY},
	{"server_protocol", FK_PROTOCOL},
	{"status", FK_STATUS},
	{"body_bytes_sent", FK_BYTES},
	{"bytes_sent", FK_BYTES_TOTAL},
	{"request_time", FK_DUR_FRAC},
	{"host", FK_VHOST},
	{"server_name", FK_VHOST},
	{"remote_port", FK_OTHER},
	{"server_addr", FK_OTHER},
	{"server_port", FK_OTHER},
	{"scheme", FK_OTHER},
	{"https", FK_OTHER},
	{"request_length", FK_OTHER},
	{"request_id", FK_OTHER},
	{"connection", FK_OTHER},
	{"connection_requests", FK_OTHER},
	{"pipe", FK_OTHER},
	{"hostname", FK_OTHER},
	{"gzip_ratio", FK_OTHER},
	{"content_length", FK_OTHER},
	{"content_type", FK_OTHER},
	{"pid", FK_OTHER},
	{"nginx_version", FK_OTHER},
	{"proxy_add_x_forwarded_for", FK_OTHER},
	{"proxy_protocol_addr", FK_OTHER},
	{"proxy_protocol_port", FK_OTHER},
	{"binary_remote_addr", FK_OTHER},
	{"time_local_msec", FK_OTHER},
	/* portex's own, for fields no server variable names */
	{"pex_ignore", FK_OTHER},
	{"pex_duration_ms", FK_DUR_MS},
	{NULL, 0},
};

/* Families of variables that are logged as opaque text. */
static const char *const nginx_other_prefixes[] = {
	"sent_http_", "sent_trailer_", "arg_", "upstream_", "ssl_",
	"geoip_", "geoip2_", "jwt_", "http2", "realip_", NULL,
};

static bool has_prefix(const char *s, size_t n, const char *p)
{
	size_t pn = strlen(p);

	return n >= pn && !memcmp(s, p, pn);
}

static int nginx_var(struct pex_logformat *f, const char *s, size_t n,
		     size_t col)
{
	for (const struct nginx_var *v = nginx_vars; v->name; v++)
		if (strlen(v->name) == n && !memcmp(v->name, s, n))
			return add_simple(f, v->kind, col);
	if (has_prefix(s, n, "http_"))
		return add_named(f, NAMED_HEADER, s + 5, n - 5, col,
				 "header");
	if (has_prefix(s, n, "cookie_"))
		return add_named(f, NAMED_COOKIE, s + 7, n - 7, col,
				 "cookie");
	for (size_t i = 0; nginx_other_prefixes[i]; i++)
		if (has_prefix(s, n, nginx_other_prefixes[i]))
			return add_simple(f, FK_OTHER, col);
	return pex_error_set(PEX_EINVALID, "log format: unknown variable "
			     "$%.*s at column %zu", (int)(n > 80 ? 80 : n), s,
			     col);
}

static bool is_var_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_';
}

static int compile_nginx(struct pex_logformat *f, const char *t)
{
	size_t i = 0, n = strlen(t);
	int rc = 0;

	while (i < n && rc == 0) {
		if (t[i] != '$') {
			size_t j = i;

			while (j < n && t[j] != '$')
				j++;
			rc = add_lit(f, t + i, j - i);
			i = j;
			continue;
		}
		size_t col = i + 1, start, end;

		if (i + 1 < n && t[i + 1] == '{') {
			const char *close = memchr(t + i, '}', n - i);

			if (!close)
				return pex_error_set(PEX_EINVALID,
					"log format: unclosed '${' at column "
					"%zu", col);
			start = i + 2;
			end = (size_t)(close - t);
			i = end + 1;
		} else {
			start = i + 1;
			end = start;
			while (end < n && is_var_char(t[end]))
				end++;
			i = end;
		}
		if (end == start)
			return pex_error_set(PEX_EINVALID, "log format: '$' "
					     "without a variable name at "
					     "column %zu", col);
		for (size_t k = start; k < end; k++)
			if (!is_var_char(t[k]))
				return pex_error_set(PEX_EINVALID,
					"log format: bad variable name at "
					"column %zu", col);
		rc = nginx_var(f, t + start, end - start, col);
	}
	return rc;
}

/* ---- compile, presets ----------------------------------------------- */

static int finish(struct pex_logformat *f)
{
	bool any_field = false;

	for (size_t i = 0; i < f->nelem; i++) {
		struct elem *e = &f->el[i];
		struct elem *prev = i ? &f->el[i - 1] : NULL;
		struct elem *next = i + 1 < f->nelem ? &f->el[i + 1] : NULL;

		if (e->is_lit)
			continue;
		any_field = true;
		/* A string field ends where the next literal starts; with
		 * another field right after it there is no way to tell
		 * where one stops. */
		if (next && !next->is_lit && !is_typed(e->kind) &&
		    !(e->kind == FK_PATH && next->kind == FK_QUERY))
			return pex_error_set(PEX_EINVALID, "log format: the "
					     "field at column %u must be "
					     "followed by literal text, not "
					     "by the field at column %u",
					     e->col, next->col);
		if (prev && prev->is_lit && next && next->is_lit &&
		    f->lits[prev->lit_off + prev->lit_len - 1] == '"' &&
		    f->lits[next->lit_off] == '"')
			e->quoted = 1;
	}
	if (!any_field)
		return pex_error_set(PEX_EINVALID, "log format: no field "
				     "directive in the format");
	return 0;
}

int pex_logformat_compile(struct pex_logformat **out,
			  enum pex_logformat_syntax syntax, const char *text)
{
	struct pex_logformat *f = NULL;
	int rc;

	*out = NULL;
	if (!text)
		return pex_error_set(PEX_EUSAGE, "log format: no text");
	if (strlen(text) > PEX_LOGFORMAT_TEXT_MAX)
		return pex_error_set(PEX_ELIMIT, "log format: longer than %d "
				     "bytes", PEX_LOGFORMAT_TEXT_MAX);
	if (syntax != PEX_LOGFORMAT_APACHE && syntax != PEX_LOGFORMAT_NGINX)
		return pex_error_set(PEX_EUSAGE, "log format: unknown syntax "
				     "%d", (int)syntax);
	f = calloc(1, sizeof(*f));
	if (!f)
		return pex_error_set(PEX_ENOMEM, "log format: out of memory");
	f->max_line = PEX_LOGLINE_MAX_DEFAULT;
	rc = syntax == PEX_LOGFORMAT_APACHE ? compile_apache(f, text)
					    : compile_nginx(f, text);
	if (rc == 0)
		rc = finish(f);
	if (rc < 0)
		goto cleanup;
	*out = f;
	f = NULL;
cleanup:
	free(f);
	return rc;
}

struct preset {
	const char *name;
	enum pex_logformat_syntax syntax;
	const char *text;
};

static const struct preset presets[] = {
	{"common", PEX_LOGFORMAT_APACHE, "%h %l %u %t \"%r\" %>s %b"},
	{"combined", PEX_LOGFORMAT_APACHE,
	 "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\""},
	{"vhost_combined", PEX_LOGFORMAT_APACHE,
	 "%v:%p %h %l %u %t \"%r\" %>s %O \"%{Referer}i\" "
	 "\"%{User-Agent}i\""},
	{"nginx", PEX_LOGFORMAT_NGINX,
	 "$remote_addr - $remote_user [$time_local] \"$request\" $status "
	 "$body_bytes_sent \"$http_referer\" \"$http_user_agent\""},
	{"nginx_combined", PEX_LOGFORMAT_NGINX,
	 "$remote_addr - $remote_user [$time_local] \"$request\" $status "
	 "$body_bytes_sent \"$http_referer\" \"$http_user_agent\""},
	{"traefik", PEX_LOGFORMAT_NGINX,
	 "$remote_addr - $remote_user [$time_local] \"$request\" $status "
	 "$body_bytes_sent \"$http_referer\" \"$http_user_agent\" "
	 "$pex_ignore \"$pex_ignore\" \"$pex_ignore\" ${pex_duration_ms}ms"},
	{NULL, 0, NULL},
};

int pex_logformat_preset(struct pex_logformat **out, const char *name)
{
	*out = NULL;
	for (const struct preset *p = presets; name && p->name; p++)
		if (!strcmp(p->name, name))
			return pex_logformat_compile(out, p->syntax, p->text);
	{
		char list[256];
		size_t used = 0;

		list[0] = '\0';
		for (const struct preset *p = presets;
		     p->name && used < sizeof(list); p++) {
			int w = snprintf(list + used, sizeof(list) - used,
					 "%s%s", used ? ", " : "", p->name);

			used += w > 0 ? (size_t)w : 0;
		}
		return pex_error_set(PEX_ENOTFOUND, "log format: no preset "
				     "named '%s' (%s; or give a LogFormat or "
				     "log_format string)",
				     name ? name : "(null)", list);
	}
}

void pex_logformat_free(struct pex_logformat *fmt)
{
	free(fmt);
}

int pex_logformat_set_max_line(struct pex_logformat *fmt, size_t max)
{
	if (max == 0 || max > PEX_LOGLINE_MAX_LIMIT)
		return pex_error_set(PEX_EUSAGE, "log format: maximum line "
				     "length %zu outside 1..%u", max,
				     PEX_LOGLINE_MAX_LIMIT);
	fmt->max_line = max;
	return 0;
}

void pex_logformat_set_allow_trailing(struct pex_logformat *fmt, int on)
{
	fmt->allow_trailing = on != 0;
}

static int slot_of(const struct pex_logformat *f, int kind,
		   const char *name)
{
	char norm[PEX_LOGFORMAT_NAME_MAX + 1];
	int slot;

	if (!name || norm_name(name, strlen(name), kind, norm) < 0)
		return PEX_ENOTFOUND;
	slot = find_slot(f, kind, norm);
	return slot < 0 ? PEX_ENOTFOUND : slot;
}

int pex_logformat_header_slot(const struct pex_logformat *fmt,
			      const char *name)
{
	return slot_of(fmt, NAMED_HEADER, name);
}

int pex_logformat_cookie_slot(const struct pex_logformat *fmt,
			      const char *name)
{
	return slot_of(fmt, NAMED_COOKIE, name);
}

int pex_logformat_has_time(const struct pex_logformat *fmt)
{
	return fmt->has_time;
}

int pex_logformat_client_first(const struct pex_logformat *fmt)
{
	const struct elem *e = fmt->nelem ? &fmt->el[0] : NULL;
	size_t i, nclient = 0, nremote = 0;

	if (!e || e->is_lit || e->quoted)
		return 0;
	for (i = 0; i < fmt->nelem; i++) {
		if (fmt->el[i].is_lit)
			continue;
		nclient += fmt->el[i].dst == DST(client);
		nremote += fmt->el[i].dst == DST(remote_addr);
	}
	/* the collector takes %h, else %a (see client_ip) */
	if (e->dst == DST(client))
		return nclient == 1;
	return e->dst == DST(remote_addr) && !nclient && nremote == 1;
}

/* ---- parsing -------------------------------------------------------- */

const char *pex_logline_status_name(enum pex_logline_status st)
{
	switch (st) {
	case PEX_LOGLINE_OK: return "ok";
	case PEX_LOGLINE_EMPTY: return "empty";
	case PEX_LOGLINE_TRUNCATED: return "truncated";
	case PEX_LOGLINE_MISMATCH: return "mismatch";
	case PEX_LOGLINE_BINARY: return "binary";
	case PEX_LOGLINE_TOO_LONG: return "too long";
	}
	return "unknown";
}

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Undo the escaping Apache (ap_escape_logitem) and nginx (escape=default)
 * apply: \" \\ \b \n \r \t \v and \xNN. Anything else stays as written.
 * Returns the decoded length, never more than n. */
static size_t unescape(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c != '\\' || i + 1 == n) {
			out[o++] = c;
			continue;
		}
		char e = s[i + 1];
		int hi, lo;

		switch (e) {
		case '"': case '\\': out[o++] = e; i++; break;
		case 'b': out[o++] = '\b'; i++; break;
		case 'n': out[o++] = '\n'; i++; break;
		case 'r': out[o++] = '\r'; i++; break;
		case 't': out[o++] = '\t'; i++; break;
		case 'v': out[o++] = '\v'; i++; break;
		case 'x':
			hi = i + 3 < n ? hexval(s[i + 2]) : -1;
			lo = hi >= 0 ? hexval(s[i + 3]) : -1;
			if (lo < 0) {
				out[o++] = c;
				break;
			}
			out[o++] = (char)(hi << 4 | lo);
			i += 3;
			break;
		default:
			out[o++] = c;
			break;
		}
	}
	return o;
}

struct run {
	const struct pex_logformat *f;
	const char *line;
	size_t len;
	struct pex_logrec *rec;
	char *scratch;
	size_t cap;
	size_t used;
	bool time_only;
};

static enum pex_logline_status bad(struct pex_logrec *rec,
				   enum pex_logline_status st, size_t pos,
				   const char *detail)
{
	rec->column = pos + 1;
	rec->detail = detail;
	return st;
}

/* Digits or "-" (absent). Returns bytes consumed, 0 when neither. */
static size_t number(const char *s, size_t n, int maxdig, uint64_t *v,
		     bool *present)
{
	size_t i = 0;
	uint64_t x = 0;

	if (n >= 1 && s[0] == '-' && (n == 1 || !is_digit(s[1]))) {
		*present = false;
		return 1;
	}
	while (i < n && is_digit(s[i])) {
		if ((int)i == maxdig)
			return 0;
		x = x * 10 + (uint64_t)(s[i] - '0');
		i++;
	}
	*v = x;
	*present = i > 0;
	return i;
}

/* "12.345" seconds into microseconds; "-" absent. */
static size_t seconds_frac(const char *s, size_t n, uint64_t *us,
			   bool *present)
{
	uint64_t sec;
	size_t i = number(s, n, 12, &sec, present), j;
	uint64_t frac = 0;
	int d = 0;

	if (i == 0 || !*present)
		return i;
	if (i < n && s[i] == '.') {
		j = i + 1;
		while (j < n && is_digit(s[j])) {
			if (++d > 9)
				return 0;
			if (d <= 6)
				frac = frac * 10 + (uint64_t)(s[j] - '0');
			j++;
		}
		if (d == 0)
			return 0;
		for (; d < 6; d++)
			frac *= 10;
		i = j;
	}
	*us = sec * 1000000u + frac;
	return i;
}

static enum pex_logline_status typed(struct run *r, const struct elem *e,
				     size_t *pos)
{
	const char *s = r->line + *pos;
	size_t n = r->len - *pos, used = 0;
	struct pex_logrec *rec = r->rec;
	struct pex_logtime t;
	uint64_t v = 0;
	bool present = false;
	const char *what = "bad number";

	switch (e->kind) {
	case FK_TIME_CLF:
	case FK_TIME_ISO:
	case FK_TIME_EPOCH:
		used = e->kind == FK_TIME_CLF ? pex_logtime_clf(s, n, &t)
		       : e->kind == FK_TIME_ISO ? pex_logtime_iso8601(s, n, &t)
						: pex_logtime_epoch(s, n, &t);
		if (used == 0)
			return bad(rec, n < 26 ? PEX_LOGLINE_TRUNCATED
					       : PEX_LOGLINE_MISMATCH,
				   *pos, "bad time");
		rec->time = t.sec;
		rec->time_usec = t.usec;
		rec->tz_offset = t.tz_offset;
		rec->time_text = (struct pex_logslice){s, used};
		rec->flags |= PEX_LOGREC_HAS_TIME;
		*pos += used;
		return PEX_LOGLINE_OK;
	case FK_STATUS:
		used = number(s, n, 3, &v, &present);
		what = "bad status";
		if (used && present) {
			rec->status = (int)v;
			rec->flags |= PEX_LOGREC_HAS_STATUS;
		}
		break;
	case FK_BYTES:
	case FK_BYTES_TOTAL:
		used = number(s, n, 19, &v, &present);
		/* %O counts headers too: keep it only without %b. */
		if (used && present &&
		    (e->kind == FK_BYTES ||
		     !(rec->flags & PEX_LOGREC_HAS_BYTES))) {
			rec->bytes = v;
			rec->flags |= PEX_LOGREC_HAS_BYTES;
		}
		break;
	case FK_DUR_US:
	case FK_DUR_MS:
	case FK_DUR_S:
		used = number(s, n, e->kind == FK_DUR_US ? 19
				    : e->kind == FK_DUR_MS ? 15 : 12,
			      &v, &present);
		if (e->kind == FK_DUR_MS)
			v *= 1000u;
		else if (e->kind == FK_DUR_S)
			v *= 1000000u;
		goto duration;
	case FK_DUR_FRAC:
		used = seconds_frac(s, n, &v, &present);
	duration:
		if (used && present) {
			rec->duration_us = v;
			rec->flags |= PEX_LOGREC_HAS_DURATION;
		}
		break;
	default:
		break;
	}
	if (used == 0)
		return bad(rec, n == 0 ? PEX_LOGLINE_TRUNCATED
				       : PEX_LOGLINE_MISMATCH, *pos, what);
	*pos += used;
	return PEX_LOGLINE_OK;
}

/* The closing quote of a quoted field starting at p: the first '"' not
 * escaped by a backslash, as Apache and nginx escape every quote inside
 * a value. The next literal (which starts with that quote) must match
 * there, and when it ends the format the line must end there too; else
 * the line is a mismatch at that quote (*at). Only when every quote is
 * escaped do the backslashes get ignored, which reads servers that do
 * not escape a value ending in '\' ("...\" 200). */
static const char *close_quote(const struct run *r, const char *p,
			       const struct elem *lit, bool lit_last,
			       const char **at)
{
	const char *end = r->line + r->len;
	const char *L = r->f->lits + lit->lit_off;
	size_t ln = lit->lit_len;
	const char *q = p;

	*at = NULL;
	for (int pass = 0; pass < 2; pass++) {
		q = p;
		while ((q = memchr(q, '"', (size_t)(end - q)))) {
			const char *b = q;

			while (pass == 0 && b > p && b[-1] == '\\')
				b--;
			if ((q - b) & 1) {
				q++;
				continue;
			}
			if ((size_t)(end - q) >= ln && !memcmp(q, L, ln) &&
			    (!lit_last || q + ln == end ||
			     (r->f->allow_trailing && q[ln] == ' ')))
				return q;
			if (pass == 0) {
				/* the line stops inside the literal */
				if ((size_t)(end - q) < ln &&
				    !memcmp(q, L, (size_t)(end - q)))
					return NULL;
				*at = q;
				return NULL;
			}
			q++;
		}
	}
	return NULL;
}

static bool is_method(const char *s, size_t n)
{
	if (n == 0 || n > 32 || !((lower(s[0]) >= 'a' && lower(s[0]) <= 'z')))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = lower(s[i]);

		if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-' ||
		      c == '_'))
			return false;
	}
	return true;
}

static bool is_protocol(const char *s, size_t n)
{
	size_t i = 5, d = 0;

	if (n < 6 || memcmp(s, "HTTP/", 5) != 0)
		return false;
	while (i < n && is_digit(s[i]) && d < 3) {
		i++;
		d++;
	}
	if (d == 0)
		return false;
	if (i < n && s[i] == '.') {
		i++;
		d = 0;
		while (i < n && is_digit(s[i]) && d < 3) {
			i++;
			d++;
		}
		if (d == 0)
			return false;
	}
	return i == n;
}

static void split_target(struct pex_logrec *rec, const char *s, size_t n)
{
	const char *q = memchr(s, '?', n);

	if (!q) {
		rec->path = (struct pex_logslice){s, n};
		return;
	}
	rec->path = (struct pex_logslice){s, (size_t)(q - s)};
	rec->query = (struct pex_logslice){q + 1, n - (size_t)(q - s) - 1};
}

/* "METHOD target HTTP/x.y". The target is what lies between the first
 * and the last space, so a target with a raw space (which nginx logs for
 * the 400 it answers) still splits. */
static void split_request(struct pex_logrec *rec, const char *s, size_t n)
{
	const char *sp1 = memchr(s, ' ', n);
	const char *sp2 = sp1 ? memrchr(s, ' ', n) : NULL;

	if (!sp1 || sp2 == sp1 || sp1 + 1 == sp2 || sp1[1] == ' ' ||
	    sp2[-1] == ' ' || !is_method(s, (size_t)(sp1 - s)) ||
	    !is_protocol(sp2 + 1, (size_t)(s + n - sp2 - 1))) {
		rec->flags |= PEX_LOGREC_BAD_REQUEST;
		return;
	}
	rec->method = (struct pex_logslice){s, (size_t)(sp1 - s)};
	rec->protocol = (struct pex_logslice){sp2 + 1,
					      (size_t)(s + n - sp2 - 1)};
	split_target(rec, sp1 + 1, (size_t)(sp2 - sp1 - 1));
}

static void store(struct run *r, const struct elem *e, const char *v,
		  size_t n)
{
	struct pex_logrec *rec = r->rec;
	bool dash = n == 1 && v[0] == '-';

	if (!dash && memchr(v, '\\', n)) {
		if (r->scratch && r->cap - r->used >= n) {
			char *o = r->scratch + r->used;

			n = unescape(v, n, o);
			v = o;
			r->used += n;
		} else {
			rec->flags |= PEX_LOGREC_UNDECODED;
		}
	}
	switch (e->kind) {
	case FK_REQUEST:
		if (dash) {
			rec->flags |= PEX_LOGREC_BAD_REQUEST;
			return;
		}
		rec->request = (struct pex_logslice){v, n};
		split_request(rec, v, n);
		return;
	case FK_URI:
		if (!dash)
			split_target(rec, v, n);
		return;
	case FK_QUERY:
		/* Apache's %q carries its '?', nginx's $args does not */
		if (n && v[0] == '?') {
			v++;
			n--;
		}
		if (!dash && n)
			rec->query = (struct pex_logslice){v, n};
		return;
	default:
		break;
	}
	if (dash)
		return;
	if (e->dst != NO_DST)
		*(struct pex_logslice *)((char *)rec + e->dst) =
			(struct pex_logslice){v, n};
	if (e->slot >= 0)
		rec->named[e->slot] = (struct pex_logslice){v, n};
}

static bool plain_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f)
			return false;
	}
	return true;
}

static enum pex_logline_status run_program(struct run *r)
{
	const struct pex_logformat *f = r->f;
	struct pex_logrec *rec = r->rec;
	const char *line = r->line;
	size_t len = r->len, pos = 0;
	enum pex_logline_status st;

	for (size_t i = 0; i < f->nelem; i++) {
		const struct elem *e = &f->el[i];

		if (e->is_lit) {
			const char *L = f->lits + e->lit_off;
			size_t ln = e->lit_len;

			if (len - pos >= ln && !memcmp(line + pos, L, ln)) {
				pos += ln;
				continue;
			}
			if (len - pos < ln &&
			    !memcmp(line + pos, L, len - pos))
				return bad(rec, PEX_LOGLINE_TRUNCATED, len,
					   "line ends early");
			return bad(rec, PEX_LOGLINE_MISMATCH, pos,
				   "text differs from the format");
		}
		if (is_typed(e->kind)) {
			st = typed(r, e, &pos);
			if (st != PEX_LOGLINE_OK)
				return st;
			if (r->time_only && (rec->flags & PEX_LOGREC_HAS_TIME))
				return PEX_LOGLINE_OK;
			continue;
		}

		const struct elem *next = i + 1 < f->nelem ? &f->el[i + 1]
							   : NULL;
		const char *v = line + pos, *q;

		if (e->quoted) {
			const char *at;

			q = close_quote(r, v, next, i + 2 == f->nelem, &at);
			if (!q && at)
				return bad(rec, PEX_LOGLINE_MISMATCH,
					   (size_t)(at - line),
					   "text after a closing quote "
					   "differs from the format");
			if (!q)
				return bad(rec, PEX_LOGLINE_TRUNCATED, len,
					   "no closing quote");
		} else if (next && next->is_lit) {
			q = memchr(v, f->lits[next->lit_off], len - pos);
			if (!q)
				q = line + len;
		} else if (next) {
			/* %U%q: the path stops at the '?' of the query or
			 * where the literal after the query starts */
			const struct elem *after =
				i + 2 < f->nelem ? &f->el[i + 2] : NULL;
			char stop = after ? f->lits[after->lit_off] : '?';

			q = v;
			while (q < line + len && *q != '?' && *q != stop)
				q++;
		} else {
			q = line + len;
			if (f->allow_trailing) {
				const char *sp = memchr(v, ' ', len - pos);

				q = sp ? sp : q;
			}
		}
		size_t n = (size_t)(q - v);

		if (!r->time_only) {
			if (!e->quoted && !plain_text(v, n))
				return bad(rec, PEX_LOGLINE_BINARY, pos,
					   "control or non-ASCII byte");
			store(r, e, v, n);
		}
		pos += n;
	}
	if (r->time_only)
		return bad(rec, PEX_LOGLINE_MISMATCH, 0, "format has no time");
	if (pos != len && !(f->allow_trailing && line[pos] == ' '))
		return bad(rec, PEX_LOGLINE_MISMATCH, pos,
			   "text after the last field");
	return PEX_LOGLINE_OK;
}

/* Drop one "\n" or "\r\n"; a lone "\r" at the end goes too (CRLF files
 * split on "\n" by the caller). */
static size_t chomp(const char *line, size_t len)
{
	if (len && line[len - 1] == '\n')
		len--;
	if (len && line[len - 1] == '\r')
		len--;
	return len;
}

enum pex_logline_status pex_logline_parse(const struct pex_logformat *fmt,
					  const char *line, size_t len,
					  struct pex_logrec *rec,
					  char *scratch, size_t scratch_cap)
{
	struct run r;

	memset(rec, 0, sizeof(*rec));
	len = chomp(line, len);
	if (len == 0)
		return bad(rec, PEX_LOGLINE_EMPTY, 0, "empty line");
	if (len > fmt->max_line)
		return bad(rec, PEX_LOGLINE_TOO_LONG, fmt->max_line,
			   "line too long");
	/* A NUL never belongs in a text log: it is a file the server
	 * pre-allocated and never wrote, or not a log at all. */
	const char *nul = memchr(line, '\0', len);

	if (nul)
		return bad(rec, PEX_LOGLINE_BINARY, (size_t)(nul - line),
			   "NUL byte");
	r = (struct run){.f = fmt, .line = line, .len = len, .rec = rec,
			 .scratch = scratch, .cap = scratch ? scratch_cap : 0};
	return run_program(&r);
}

enum pex_logline_status pex_logline_time(const struct pex_logformat *fmt,
					 const char *line, size_t len,
					 struct pex_logtime *out)
{
	struct pex_logrec rec;
	struct run r;
	enum pex_logline_status st;

	rec.flags = 0;
	len = chomp(line, len);
	if (len == 0)
		return PEX_LOGLINE_EMPTY;
	if (len > fmt->max_line)
		return PEX_LOGLINE_TOO_LONG;
	if (!fmt->has_time)
		return PEX_LOGLINE_MISMATCH;
	r = (struct run){.f = fmt, .line = line, .len = len, .rec = &rec,
			 .time_only = true};
	st = run_program(&r);
	if (st == PEX_LOGLINE_OK) {
		out->sec = rec.time;
		out->usec = rec.time_usec;
		out->tz_offset = rec.tz_offset;
	}
	return st;
}

/* ---- pre-filter ----------------------------------------------------- */

/* Up to this many needles each is searched with memmem(), which glibc
 * runs with SIMD. Past it a Wu-Manber scan: a window as long as the
 * shortest needle (m) slides over the line, and a table indexed by the
 * window's last two bytes says how far it may jump without skipping a
 * match. Log lines are full of digits, so a plain "any needle starts
 * here" test fires at almost every byte for IP needles; the shift table
 * instead jumps over most of the line and only stops where the two bytes
 * end some needle's first m bytes. */
#define NEEDLES_MEMMEM_MAX 8

struct needle {
	uint32_t off;
	uint16_t len;
	uint16_t key; /* bytes m-2, m-1: the end of the first m bytes */
};

struct pex_logneedles {
	size_t count;       /* all needles */
	size_t nmulti;      /* needles of two bytes or more, first in n[] */
	size_t m;           /* shortest multi-byte needle */
	struct needle *n;   /* multi-byte needles sorted by key */
	char *buf;
	bool single[256];   /* needles of one byte */
	bool any_single;
	uint8_t shift[65536];
};

static int needle_cmp(const void *a, const void *b)
{
	const struct needle *x = a, *y = b;

	return (x->key > y->key) - (x->key < y->key);
}

static uint16_t key2(const char *s)
{
	return (uint16_t)((unsigned char)s[0] | (unsigned char)s[1] << 8);
}

int pex_logneedles_new(struct pex_logneedles **out,
		       const char *const *needles, size_t count)
{
	struct pex_logneedles *set = NULL;
	size_t total = 0;
	int rc = 0;

	*out = NULL;
	if (count > PEX_LOGNEEDLES_MAX)
		return pex_error_set(PEX_ELIMIT, "pre-filter: more than %d "
				     "needles", PEX_LOGNEEDLES_MAX);
	for (size_t i = 0; i < count; i++) {
		size_t l = needles[i] ? strlen(needles[i]) : 0;

		if (l == 0 || l > PEX_LOGNEEDLE_LEN_MAX)
			return pex_error_set(PEX_EINVALID, "pre-filter: "
					     "needle %zu is empty or longer "
					     "than %d bytes", i,
					     PEX_LOGNEEDLE_LEN_MAX);
		total += l;
	}
	set = calloc(1, sizeof(*set));
	if (!set)
		return pex_error_set(PEX_ENOMEM, "pre-filter: out of memory");
	set->n = calloc(count ? count : 1, sizeof(*set->n));
	set->buf = malloc(total ? total : 1);
	if (!set->n || !set->buf) {
		rc = pex_error_set(PEX_ENOMEM, "pre-filter: out of memory");
		goto cleanup;
	}
	total = 0;
	set->m = PEX_LOGNEEDLE_LEN_MAX;
	for (size_t i = 0; i < count; i++) {
		size_t l = strlen(needles[i]);

		memcpy(set->buf + total, needles[i], l);
		if (l == 1) {
			set->single[(unsigned char)needles[i][0]] = true;
			set->any_single = true;
		} else {
			set->n[set->nmulti++] = (struct needle){
				.off = (uint32_t)total, .len = (uint16_t)l};
			if (l < set->m)
				set->m = l;
		}
		total += l;
	}
	set->count = count;
	/* Default jump: a window whose last two bytes occur in no needle
	 * may move past them entirely. */
	memset(set->shift, (int)(set->m - 1), sizeof(set->shift));
	for (size_t i = 0; i < set->nmulti; i++) {
		const char *p = set->buf + set->n[i].off;

		for (size_t q = 2; q <= set->m; q++) {
			uint16_t k = key2(p + q - 2);

			if (set->shift[k] > set->m - q)
				set->shift[k] = (uint8_t)(set->m - q);
		}
		set->n[i].key = key2(p + set->m - 2);
	}
	qsort(set->n, set->nmulti, sizeof(*set->n), needle_cmp);
	*out = set;
	set = NULL;
cleanup:
	pex_logneedles_free(set);
	return rc;
}

void pex_logneedles_free(struct pex_logneedles *set)
{
	if (!set)
		return;
	free(set->n);
	free(set->buf);
	free(set);
}

/* Does a needle whose first m bytes end with key start at s? */
static bool match_at(const struct pex_logneedles *set, uint16_t key,
		     const char *s, size_t avail)
{
	size_t lo = 0, hi = set->nmulti;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (set->n[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < set->nmulti && set->n[lo].key == key; lo++) {
		const struct needle *nd = &set->n[lo];

		if (nd->len <= avail &&
		    !memcmp(s, set->buf + nd->off, nd->len))
			return true;
	}
	return false;
}

int pex_logneedles_match(const struct pex_logneedles *set, const char *line,
			 size_t len)
{
	if (!set || set->count == 0)
		return 0;
	if (set->count <= NEEDLES_MEMMEM_MAX) {
		for (size_t i = 0; i < set->nmulti; i++)
			if (memmem(line, len, set->buf + set->n[i].off,
				   set->n[i].len))
				return 1;
		for (size_t i = 0; set->any_single && i < len; i++)
			if (set->single[(unsigned char)line[i]])
				return 1;
		return 0;
	}
	for (size_t i = 0; set->any_single && i < len; i++)
		if (set->single[(unsigned char)line[i]])
			return 1;
	if (set->nmulti == 0 || len < set->m)
		return 0;
	/* pos: index of the last byte of the window */
	for (size_t pos = set->m - 1; pos < len;) {
		uint16_t k = key2(line + pos - 1);
		size_t sh = set->shift[k];

		if (sh) {
			pos += sh;
			continue;
		}
		size_t start = pos + 1 - set->m;

		if (match_at(set, k, line + start, len - start))
			return 1;
		pos++;
	}
	return 0;
}

/* ---- IP addresses --------------------------------------------------- */

static void trim(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

int pex_ip_parse(const char *text, size_t len, struct pex_ipaddr *out)
{
	char buf[64];
	const char *s = text;
	size_t n = len;
	const char *colon;

	if (!text)
		return pex_error_set(PEX_EINVALID, "no IP address");
	trim(&s, &n);
	if (n && s[0] == '[') {
		const char *close = memchr(s, ']', n);

		if (!close)
			goto invalid;
		/* whatever follows "]" can only be ":port" */
		if (close + 1 < s + n && close[1] != ':')
			goto invalid;
		n = (size_t)(close - s) - 1;
		s++;
	} else {
		colon = memchr(s, ':', n);
		/* one colon and a dot: "192.0.2.1:8080" */
		size_t before = colon ? (size_t)(colon - s) : 0;

		if (colon && !memchr(colon + 1, ':', n - before - 1) &&
		    memchr(s, '.', before))
			n = (size_t)(colon - s);
	}
	const char *pct = memchr(s, '%', n);

	if (pct)
		n = (size_t)(pct - s);
	if (n == 0 || n >= sizeof(buf))
		goto invalid;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!pex_ip_from_text(buf, out))
		return 0;
invalid:
	return pex_error_set(PEX_EINVALID, "not an IP address: '%.*s'",
			     (int)(len > 64 ? 64 : len), text);
}

int pex_ip_canonical(const char *text, size_t len, char *out,
		     size_t outsz)
{
	struct pex_ipaddr a;
	int rc = pex_ip_parse(text, len, &a);

	if (rc < 0)
		return rc;
	if (outsz < PEX_IP_TEXT_MAX)
		return pex_error_set(PEX_EUSAGE, "IP text buffer under %d "
				     "bytes", PEX_IP_TEXT_MAX);
	pex_ip_format(&a, out, outsz);
	return 0;
}

static void mask_bits(uint8_t *b, int bits, int total)
{
	for (int i = 0; i < total / 8; i++) {
		int keep = bits - i * 8;

		if (keep >= 8)
			continue;
		b[i] = keep <= 0 ? 0 : (uint8_t)(b[i] & (0xff << (8 - keep)));
	}
}

int pex_cidr_parse(const char *text, struct pex_cidr *out)
{
	const char *slash;
	size_t alen;
	long bits = -1;
	int max, rc;

	if (!text)
		return pex_error_set(PEX_EINVALID, "no network given");
	slash = strchr(text, '/');
	alen = slash ? (size_t)(slash - text) : strlen(text);
	rc = pex_ip_parse(text, alen, &out->addr);
	if (rc < 0)
		return pex_error_set(PEX_EINVALID, "not a network: '%.64s'",
				     text);
	max = out->addr.family == 4 ? 32 : 128;
	if (slash) {
		char *end;
		const char *d = slash + 1;

		if (!is_digit(*d))
			return pex_error_set(PEX_EINVALID, "bad prefix length "
					     "in '%.64s'", text);
		bits = strtol(d, &end, 10);
		if (*end != '\0')
			return pex_error_set(PEX_EINVALID, "bad prefix length "
					     "in '%.64s'", text);
		/* "::ffff:10.0.0.0/104" was mapped to IPv4 above */
		if (out->addr.family == 4 && memchr(text, ':', alen)) {
			if (bits < 96)
				return pex_error_set(PEX_EINVALID, "prefix "
					"/%ld too short for an IPv4-mapped "
					"network", bits);
			bits -= 96;
		}
		if (bits < 0 || bits > max)
			return pex_error_set(PEX_EINVALID, "prefix length out "
					     "of range in '%.64s'", text);
	}
	out->bits = bits < 0 ? max : (int)bits;
	mask_bits(out->addr.b, out->bits, max);
	return 0;
}

int pex_cidr_contains(const struct pex_cidr *c, const struct pex_ipaddr *a)
{
	struct pex_ipaddr m = *a;

	if (c->addr.family != a->family)
		return 0;
	mask_bits(m.b, c->bits, a->family == 4 ? 32 : 128);
	return !memcmp(m.b, c->addr.b, a->family == 4 ? 4 : 16);
}

static bool trusted_addr(const struct pex_ipaddr *a,
			 const struct pex_cidr *trusted, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (pex_cidr_contains(&trusted[i], a))
			return true;
	return false;
}

int pex_xff_client(const char *chain, size_t chain_len, const char *peer,
		   size_t peer_len, const struct pex_cidr *trusted,
		   size_t count, char *out, size_t outsz)
{
	struct pex_ipaddr cur, a;
	size_t end = chain ? chain_len : 0;
	int rc;

	if (outsz < PEX_IP_TEXT_MAX)
		return pex_error_set(PEX_EUSAGE, "IP text buffer under %d "
				     "bytes", PEX_IP_TEXT_MAX);
	rc = pex_ip_parse(peer, peer_len, &cur);
	if (rc < 0)
		return rc;
	if (end == 1 && chain[0] == '-')
		end = 0;
	/* Each trusted hop vouches for the address to its left. */
	while (trusted_addr(&cur, trusted, count) && end > 0) {
		const char *s = memrchr(chain, ',', end);
		size_t start = s ? (size_t)(s - chain) + 1 : 0;
		const char *item = chain + start;
		size_t n = end - start;

		end = s ? (size_t)(s - chain) : 0;
		trim(&item, &n);
		if (n == 0)
			continue;
		rc = pex_ip_parse(item, n, &a);
		if (rc < 0)
			return pex_error_wrap(rc, "X-Forwarded-For");
		cur = a;
	}
	pex_ip_format(&cur, out, outsz);
	return 0;
}
