/*
 * Access-log line formats: compile a format once, parse lines fast.
 *
 * pex_logformat_compile() turns an Apache LogFormat string ("%h %l %u %t
 * \"%r\" %>s %b") or an nginx log_format string ("$remote_addr - ...")
 * into a small field program; pex_logformat_preset() gives the usual
 * ones by name. pex_logline_parse() runs that program over one line. It
 * allocates nothing: every value in the resulting pex_logrec is a slice
 * that points into the line itself or, for values whose escapes
 * (\" \\ \xNN ...) had to be decoded, into a scratch buffer the caller
 * provides. Slices are therefore borrowed and valid only while both the
 * line and the scratch buffer are unchanged; a slice whose ptr is NULL is
 * absent (the log held "-" or the format has no such field).
 *
 * Beside the parser sit the helpers a log collector needs to decide which
 * lines concern a subject: a multi-needle pre-filter (pex_logneedles) to
 * throw away most lines before parsing, canonical IP text so that
 * "2001:DB8::1" and "2001:db8:0::1" compare equal, CIDR sets, and the
 * X-Forwarded-For walk that finds the real client behind trusted
 * proxies.
 *
 * Ownership: pex_logformat_* and pex_logneedles_* objects are created by
 * their constructors into a caller-owned *out and freed by the matching
 * free function (which accepts NULL). A compiled format is read-only
 * while lines are parsed, so several threads may share one.
 */
#ifndef PEX_LOGFORMAT_H
#define PEX_LOGFORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "collectors/access_log/logtime.h"
#include "core/ip.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits. Formats come from configuration, lines from untrusted files. */
#define PEX_LOGFORMAT_TEXT_MAX 4096    /* bytes of one format string */
#define PEX_LOGFORMAT_MAX_ELEMS 96     /* fields + literals after compile */
#define PEX_LOGFORMAT_MAX_NAMED 16     /* %{..}i / %{..}C / $http_.. */
#define PEX_LOGFORMAT_NAME_MAX 64      /* bytes of one header/cookie name */
#define PEX_LOGLINE_MAX_DEFAULT 65536  /* default maximum line length */
#define PEX_LOGLINE_MAX_LIMIT (16u << 20) /* largest settable maximum */

enum pex_logformat_syntax {
	PEX_LOGFORMAT_APACHE = 0, /* mod_log_config LogFormat */
	PEX_LOGFORMAT_NGINX,      /* ngx_http_log_module log_format */
};

struct pex_logformat;

/*
 * Compile text (NUL-terminated, at most PEX_LOGFORMAT_TEXT_MAX bytes).
 * On success *out is a new format the caller frees. On failure returns
 * PEX_EINVALID (message names the directive and its 1-based column) or
 * PEX_ELIMIT / PEX_ENOMEM, and *out is NULL.
 */
int pex_logformat_compile(struct pex_logformat **out,
			  enum pex_logformat_syntax syntax, const char *text);

/*
 * Named formats: "common", "combined", "vhost_combined" (Apache's
 * definitions), "nginx" or "nginx_combined" (nginx's built-in combined),
 * "traefik" (Traefik's CLF: combined plus request count, router name,
 * server URL and duration in ms). PEX_ENOTFOUND for any other name.
 */
int pex_logformat_preset(struct pex_logformat **out, const char *name);

void pex_logformat_free(struct pex_logformat *fmt);

/* Lines longer than max bytes (newline excluded) are rejected with
 * PEX_LOGLINE_TOO_LONG. 1..PEX_LOGLINE_MAX_LIMIT, else PEX_EUSAGE. */
int pex_logformat_set_max_line(struct pex_logformat *fmt, size_t max);

/* When on, text after the last field that starts with a space is
 * accepted (servers that append fields to a known format). Off by
 * default: a line must match the format exactly. */
void pex_logformat_set_allow_trailing(struct pex_logformat *fmt, int on);

/* The slot in pex_logrec.named[] that holds request header name
 * (case-insensitive; '-' and '_' are the same, as in nginx) or cookie
 * name, or PEX_ENOTFOUND when the format does not log it. */
int pex_logformat_header_slot(const struct pex_logformat *fmt,
			      const char *name);
int pex_logformat_cookie_slot(const struct pex_logformat *fmt,
			      const char *name);

/* Whether the format logs a time stamp at all. */
int pex_logformat_has_time(const struct pex_logformat *fmt);

/* Whether a line starts with the client's address: the format's first
 * field, unquoted and nothing before it, is %h / $remote_addr (or %a
 * when there is no %h) and appears nowhere else. */
int pex_logformat_client_first(const struct pex_logformat *fmt);

/* ---- parsing one line ------------------------------------------------ */

struct pex_logslice {
	const char *ptr; /* NULL: absent */
	size_t len;
};

#define PEX_LOGREC_HAS_TIME 0x01
#define PEX_LOGREC_HAS_STATUS 0x02
#define PEX_LOGREC_HAS_BYTES 0x04
#define PEX_LOGREC_HAS_DURATION 0x08
/* The format logs the request line but it was not "METHOD target
 * HTTP/x": empty, "-", binary junk, a missing protocol. method, path,
 * query and protocol are then absent; request holds the decoded text. */
#define PEX_LOGREC_BAD_REQUEST 0x10
/* Some escaped value was left undecoded: no or too small scratch. */
#define PEX_LOGREC_UNDECODED 0x20

struct pex_logrec {
	struct pex_logslice client;      /* %h, $remote_addr */
	struct pex_logslice remote_addr; /* %a, $realip_remote_addr */
	struct pex_logslice ident;       /* %l */
	struct pex_logslice user;        /* %u, $remote_user */
	struct pex_logslice time_text;   /* the time as written */
	struct pex_logslice request;     /* %r, $request (decoded) */
	struct pex_logslice method;
	struct pex_logslice path;        /* target up to '?' */
	struct pex_logslice query;       /* after '?', may be empty */
	struct pex_logslice protocol;
	struct pex_logslice referer;
	struct pex_logslice user_agent;
	struct pex_logslice vhost;       /* %v %V $host $server_name Host */
	struct pex_logslice xff;         /* X-Forwarded-For as logged */
	struct pex_logslice named[PEX_LOGFORMAT_MAX_NAMED];
	time_t time;                     /* UTC */
	uint32_t time_usec;
	int32_t tz_offset;               /* seconds east of UTC, as logged */
	int status;
	uint64_t bytes;
	uint64_t duration_us;
	unsigned flags;                  /* PEX_LOGREC_* */
	/* Set when the line is bad: 1-based byte column where it went
	 * wrong and a static phrase ("expected ' ['", "bad time"). */
	size_t column;
	const char *detail;
};

enum pex_logline_status {
	PEX_LOGLINE_OK = 0,
	PEX_LOGLINE_EMPTY,     /* nothing but a line ending */
	PEX_LOGLINE_TRUNCATED, /* the line ended before the format did */
	PEX_LOGLINE_MISMATCH,  /* text or a value does not fit, see column */
	PEX_LOGLINE_BINARY,    /* NUL anywhere, or control / non-ASCII bytes
				* outside quoted fields */
	PEX_LOGLINE_TOO_LONG,  /* longer than the format's maximum */
};

/* "ok", "empty", "truncated", "mismatch", "binary", "too long". */
const char *pex_logline_status_name(enum pex_logline_status st);

/*
 * Parse line[0..len) (no NUL needed; one trailing "\n" or "\r\n" is
 * ignored). scratch may be NULL; escapes are then left undecoded. When
 * given it should hold at least len bytes: decoded values never grow.
 * rec is filled in every case; on a bad line only column and detail are
 * meaningful.
 */
enum pex_logline_status pex_logline_parse(const struct pex_logformat *fmt,
					  const char *line, size_t len,
					  struct pex_logrec *rec,
					  char *scratch, size_t scratch_cap);

/*
 * Only the time stamp: runs the program up to the time field without
 * decoding or checking what follows, so a line that is bad after its
 * time still yields PEX_LOGLINE_OK here. PEX_LOGLINE_MISMATCH with
 * detail "format has no time" when the format logs none.
 */
enum pex_logline_status pex_logline_time(const struct pex_logformat *fmt,
					 const char *line, size_t len,
					 struct pex_logtime *out);

/* ---- pre-filter ------------------------------------------------------ */

#define PEX_LOGNEEDLES_MAX 65536 /* needles in one set */
#define PEX_LOGNEEDLE_LEN_MAX 255 /* bytes of one needle */

struct pex_logneedles;

/* Copies the needles (NUL-terminated, non-empty). PEX_EINVALID for an
 * empty or too long needle, PEX_ELIMIT for too many. */
int pex_logneedles_new(struct pex_logneedles **out,
		       const char *const *needles, size_t count);
void pex_logneedles_free(struct pex_logneedles *set);

/* 1 when some needle occurs in line[0..len) byte for byte, else 0. A
 * match only means the line may concern the subject: parse it to know.
 * Text is compared as is, so feed the forms the server writes
 * (servers write addresses in canonical form, see pex_ip_canonical). */
int pex_logneedles_match(const struct pex_logneedles *set, const char *line,
			 size_t len);

/* ---- IP addresses ---------------------------------------------------- */

/*
 * Read an address as it appears in logs and headers: surrounding
 * blanks, "[v6]" and "[v6]:port", "v4:port" and a "%zone" suffix are
 * stripped. PEX_EINVALID when what remains is no address.
 */
int pex_ip_parse(const char *text, size_t len, struct pex_ipaddr *out);

/* The canonical text (inet_ntop, IPv4-mapped shown as IPv4) into out,
 * which has room for PEX_IP_TEXT_MAX bytes. */
int pex_ip_canonical(const char *text, size_t len, char *out,
		     size_t outsz);
/* pex_ip_format and pex_ip_equal: see core/ip.h */

struct pex_cidr {
	struct pex_ipaddr addr; /* host bits cleared */
	int bits;
};

/* "10.0.0.0/8", "2001:db8::/32", or a bare address (all bits). */
int pex_cidr_parse(const char *text, struct pex_cidr *out);
int pex_cidr_contains(const struct pex_cidr *c, const struct pex_ipaddr *a);

/*
 * The real client of a request that reached the server from peer
 * (the connecting address) with X-Forwarded-For chain ("a, b, c", may be
 * NULL or "-"): when peer is one of the count trusted networks, walk the
 * chain from the right past trusted hops and take the first untrusted
 * one; if every hop is trusted, the leftmost. An untrusted peer is the
 * client whatever the header says (it can be forged). Writes the
 * canonical text to out (PEX_IP_TEXT_MAX bytes). PEX_EINVALID when the
 * peer is no address, or when the walk meets an entry that is none
 * (the chain cannot be trusted past it); out is then unchanged.
 */
int pex_xff_client(const char *chain, size_t chain_len, const char *peer,
		   size_t peer_len, const struct pex_cidr *trusted,
		   size_t count, char *out, size_t outsz);

#ifdef __cplusplus
}
#endif
#endif
