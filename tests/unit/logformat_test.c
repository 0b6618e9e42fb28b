/* Unit tests of the access-log format compiler, line parser, pre-filter
 * and IP helpers (src/collectors/access_log/logformat.h). One test per
 * odd case seen in real logs, then malformed, truncated, huge, non-UTF-8
 * and hostile lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collectors/access_log/logformat.h"
#include "collectors/access_log/logtime.h"
#include "portex/error.h"

#define SCRATCH_MAX (1u << 20)

static char scratch[SCRATCH_MAX];
static struct pex_logrec rec;

static struct pex_logformat *preset(const char *name)
{
	struct pex_logformat *f = NULL;

	if (pex_logformat_preset(&f, name) < 0)
		fail_msg("preset %s: %s", name, pex_error_last());
	return f;
}

static struct pex_logformat *compile(enum pex_logformat_syntax syn,
				     const char *text)
{
	struct pex_logformat *f = NULL;

	if (pex_logformat_compile(&f, syn, text) < 0)
		fail_msg("compile '%s': %s", text, pex_error_last());
	return f;
}

static enum pex_logline_status parse(const struct pex_logformat *f,
				     const char *line)
{
	return pex_logline_parse(f, line, strlen(line), &rec, scratch,
				 sizeof(scratch));
}

#define assert_slice(sl, text)                                            \
	do {                                                              \
		struct pex_logslice s_ = (sl);                            \
		assert_non_null(s_.ptr);                                  \
		assert_int_equal(s_.len, strlen(text));                   \
		assert_memory_equal(s_.ptr, text, s_.len);                \
	} while (0)

#define assert_absent(sl) assert_null((sl).ptr)

/* Compile must fail with code and a message that holds each needle. */
static void expect_compile_error(enum pex_logformat_syntax syn,
				 const char *text, int code,
				 const char *needle1, const char *needle2)
{
	struct pex_logformat *f = (struct pex_logformat *)1;

	assert_int_equal(pex_logformat_compile(&f, syn, text), code);
	assert_null(f);
	if (needle1 && !strstr(pex_error_last(), needle1))
		fail_msg("'%s' lacks '%s'", pex_error_last(), needle1);
	if (needle2 && !strstr(pex_error_last(), needle2))
		fail_msg("'%s' lacks '%s'", pex_error_last(), needle2);
}

/* ---- formats -------------------------------------------------------- */

static void test_presets(void **state)
{
	const char *names[] = {"common", "combined", "vhost_combined",
			       "nginx", "nginx_combined", "traefik"};
	struct pex_logformat *f = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		f = preset(names[i]);
		assert_true(pex_logformat_has_time(f));
		pex_logformat_free(f);
	}
	assert_int_equal(pex_logformat_preset(&f, "combinedx"),
			 PEX_ENOTFOUND);
	assert_null(f);
	assert_non_null(strstr(pex_error_last(), "combinedx"));
	assert_int_equal(pex_logformat_preset(&f, NULL), PEX_ENOTFOUND);
	pex_logformat_free(NULL);
}

/* Which formats start a line with the client's address, the field the
 * collector matches addresses on (the anchored batch search). */
static void test_client_first(void **state)
{
	static const struct {
		int syntax;
		const char *text;
		int want;
	} cases[] = {
		{PEX_LOGFORMAT_APACHE, "%h %l %u %t \"%r\" %>s %b", 1},
		{PEX_LOGFORMAT_APACHE, "%a %l %u %t \"%r\" %>s %b", 1},
		{PEX_LOGFORMAT_APACHE, "%a %h %t \"%r\"", 0},  /* %h wins */
		{PEX_LOGFORMAT_APACHE, "%h %h %t \"%r\"", 0},  /* twice */
		{PEX_LOGFORMAT_APACHE, "\"%h\" %t \"%r\"", 0}, /* quoted */
		{PEX_LOGFORMAT_APACHE, "[%t] %h \"%r\"", 0},
		{PEX_LOGFORMAT_APACHE, "%v:%p %h %l %u %t \"%r\" %>s %b", 0},
		{PEX_LOGFORMAT_NGINX, "$remote_addr - $remote_user "
				      "[$time_local] \"$request\"", 1},
		{PEX_LOGFORMAT_NGINX, "$host $remote_addr [$time_local] "
				      "\"$request\"", 0},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pex_logformat *f = NULL;

		assert_int_equal(pex_logformat_compile(&f, cases[i].syntax,
						       cases[i].text), 0);
		if (pex_logformat_client_first(f) != cases[i].want)
			fail_msg("%s: client first %d, want %d",
				 cases[i].text, pex_logformat_client_first(f),
				 cases[i].want);
		pex_logformat_free(f);
	}
	for (i = 0; i < 2; i++) {
		struct pex_logformat *f = NULL;

		assert_int_equal(pex_logformat_preset(&f, i ? "vhost_combined"
							  : "combined"), 0);
		assert_int_equal(pex_logformat_client_first(f), !i);
		pex_logformat_free(f);
	}
}

static void test_combined_record(void **state)
{
	struct pex_logformat *f = preset("combined");

	(void)state;
	assert_int_equal(parse(f, "127.0.0.1 - frank [10/Oct/2000:13:55:36 "
				  "-0700] \"GET /apache_pb.gif?a=1&b=2 "
				  "HTTP/1.0\" 200 2326 \"http://www.example."
				  "com/start.html\" \"Mozilla/4.08 [en] "
				  "(Win98; I ;Nav)\"\n"),
			 PEX_LOGLINE_OK);
	assert_slice(rec.client, "127.0.0.1");
	assert_absent(rec.ident);
	assert_slice(rec.user, "frank");
	/* 13:55:36 at -0700 is 20:55:36 UTC */
	assert_int_equal(rec.time, 971211336);
	assert_int_equal(rec.tz_offset, -7 * 3600);
	assert_int_equal(rec.time_usec, 0);
	assert_slice(rec.time_text, "10/Oct/2000:13:55:36 -0700");
	assert_slice(rec.request, "GET /apache_pb.gif?a=1&b=2 HTTP/1.0");
	assert_slice(rec.method, "GET");
	assert_slice(rec.path, "/apache_pb.gif");
	assert_slice(rec.query, "a=1&b=2");
	assert_slice(rec.protocol, "HTTP/1.0");
	assert_int_equal(rec.status, 200);
	assert_true(rec.flags & PEX_LOGREC_HAS_STATUS);
	assert_true(rec.flags & PEX_LOGREC_HAS_BYTES);
	assert_int_equal(rec.bytes, 2326);
	assert_slice(rec.referer, "http://www.example.com/start.html");
	assert_slice(rec.user_agent, "Mozilla/4.08 [en] (Win98; I ;Nav)");
	assert_false(rec.flags & PEX_LOGREC_BAD_REQUEST);
	assert_false(rec.flags & PEX_LOGREC_HAS_DURATION);
	/* the same header by name */
	int slot = pex_logformat_header_slot(f, "user_agent");

	assert_true(slot >= 0);
	assert_slice(rec.named[slot], "Mozilla/4.08 [en] (Win98; I ;Nav)");
	assert_int_equal(pex_logformat_header_slot(f, "cookie"),
			 PEX_ENOTFOUND);
	pex_logformat_free(f);
}

static void test_common_dash_fields(void **state)
{
	struct pex_logformat *f = preset("common");

	(void)state;
	assert_int_equal(parse(f, "192.0.2.9 - - [01/Jan/2024:00:00:00 +0000] "
				  "\"HEAD / HTTP/1.1\" 304 -"),
			 PEX_LOGLINE_OK);
	assert_absent(rec.user);
	assert_absent(rec.ident);
	assert_false(rec.flags & PEX_LOGREC_HAS_BYTES);
	assert_int_equal(rec.time, 1704067200);
	assert_slice(rec.path, "/");
	assert_absent(rec.query);
	assert_absent(rec.referer);
	pex_logformat_free(f);
}

static void test_dash_referer_and_agent(void **state)
{
	struct pex_logformat *f = preset("combined");

	(void)state;
	assert_int_equal(parse(f, "192.0.2.9 - - [01/Jan/2024:00:00:00 +0000] "
				  "\"GET /x? HTTP/1.1\" 200 0 \"-\" \"-\""),
			 PEX_LOGLINE_OK);
	assert_absent(rec.referer);
	assert_absent(rec.user_agent);
	assert_true(rec.flags & PEX_LOGREC_HAS_BYTES);
	assert_int_equal(rec.bytes, 0);
	/* "?" with nothing after: an empty, present query */
	assert_non_null(rec.query.ptr);
	assert_int_equal(rec.query.len, 0);
	pex_logformat_free(f);
}

static void test_ipv6_client(void **state)
{
	struct pex_logformat *f = preset("common");
	char canon[PEX_IP_TEXT_MAX];

	(void)state;
	assert_int_equal(parse(f, "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6 - - "
				  "[29/May/2017:19:02:48 +0000] \"GET / "
				  "HTTP/1.1\" 200 612"),
			 PEX_LOGLINE_OK);
	assert_slice(rec.client, "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6");
	assert_int_equal(parse(f, "::1 - - [26/Dec/2016:16:16:29 +0200] "
				  "\"GET /favicon.ico HTTP/1.1\" 404 209"),
			 PEX_LOGLINE_OK);
	assert_slice(rec.client, "::1");
	assert_int_equal(pex_ip_canonical(rec.client.ptr, rec.client.len,
					  canon, sizeof(canon)), 0);
	assert_string_equal(canon, "::1");
	pex_logformat_free(f);
}

static void test_client_with_port(void **state)
{
	struct pex_logformat *f = preset("combined");
	char canon[PEX_IP_TEXT_MAX];

	(void)state;
	assert_int_equal(parse(f, "127.0.0.1:80 - - [13/Nov/2023:10:44:01 "
				  "+0000] \"GET / HTTP/1.1\" 400 3386 \"-\" "
				  "\"-\""),
			 PEX_LOGLINE_OK);
	assert_slice(rec.client, "127.0.0.1:80");
	assert_int_equal(pex_ip_canonical(rec.client.ptr, rec.client.len,
					  canon, sizeof(canon)), 0);
	assert_string_equal(canon, "127.0.0.1");
	assert_int_equal(parse(f, "[2001:db8::7]:443 - - [13/Nov/2023:10:44:01"
				  " +0000] \"GET / HTTP/1.1\" 200 1 \"-\" "
				  "\"-\""),
			 PEX_LOGLINE_OK);
	assert_int_equal(pex_ip_canonical(rec.client.ptr, rec.client.len,
					  canon, sizeof(canon)), 0);
	assert_string_equal(canon, "2001:db8::7");
	pex_logformat_free(f);
}

static void test_vhost_combined(void **state)
{
	struct pex_logformat *f = preset("vhost_combined");

	(void)state;
	assert_int_equal(parse(f, "www.example.com:443 198.51.100.4 - - "
				  "[10/Feb/2012:16:42:07 -0500] \"GET / "
				  "HTTP/1.1\" 200 5120 \"-\" \"curl/8\""),
			 PEX_LOGLINE_OK);
	assert_slice(rec.vhost, "www.example.com");
	assert_slice(rec.client, "198.51.100.4");
	/* %O (bytes with headers) fills bytes when there is no %b */
	assert_int_equal(rec.bytes, 5120);
	assert_slice(rec.user_agent, "curl/8");
	pex_logformat_free(f);
}

static void test_binary_request(void **state)
{
	struct pex_logformat *f = preset("combined");

	(void)state;
	/* what a TLS hello sent to a plain-HTTP port looks like */
	assert_int_equal(parse(f, "127.0.1.1 - - [13/Nov/2023:10:44:31 +0000] "
				  "\"\\x16\\x03\\x03\\x01\\x8f\\x01\" 400 483 "
				  "\"-\" \"-\""),
			 PEX_LOGLINE_OK);
	assert_true(rec.flags & PEX_LOGREC_BAD_REQUEST);
	assert_slice(rec.request, "\x16\x03\x03\x01\x8f\x01");
	assert_absent(rec.method);
	assert_absent(rec.path);
	assert_absent(rec.protocol);
	assert_int_equal(rec.status, 400);
	/* nginx's RDP probe: junk that holds spaces */
	assert_int_equal(parse(f, "12.34.56.78 - - [20/Jan/2015:19:53:28 "
				  "+0100] \"\\x03\\x00\\x00/*\\xE0\\x00\\x00"
				  "\\x00\\x00\\x00Cookie: mstshash=Administr\""
				  " 400 47 \"-\" \"-\""),
			 PEX_LOGLINE_OK);
	assert_true(rec.flags & PEX_LOGREC_BAD_REQUEST);
	assert_absent(rec.method);
	pex_logformat_free(f);
}

static void test_malformed_requests(void **state)
{
	struct pex_logformat *f = preset("combined");
	const char *head = "10.1.1.1 - - [14/Jun/2024:12:20:12 +0530] \"";
	const char *tail = "\" 400 226 \"-\" \"-\"";
	const char *bad_reqs[] = {
		"-", "", "- - HTTP/1.0", "GET /", "HELP", "batman",
		"<SCRIPT>NXSSTEST</SCRIPT> / HTTP/1.1", "GET  /x HTTP/1.1",
		"GET /x FTP/1.0", "GET /x HTTP/", "GET /x HTTP/1.", "/x GET",
	};
	char line[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad_reqs) / sizeof(bad_reqs[0]); i++) {
		snprintf(line, sizeof(line), "%s%s%s", head, bad_reqs[i],
			 tail);
		if (parse(f, line) != PEX_LOGLINE_OK)
			fail_msg("request '%s': %s at %zu", bad_reqs[i],
				 rec.detail, rec.column);
		if (!(rec.flags & PEX_LOGREC_BAD_REQUEST))
			fail_msg("request '%s' accepted", bad_reqs[i]);
		assert_absent(rec.method);
		assert_absent(rec.path);
		assert_int_equal(rec.status, 400);
	}
	/* "-" is no request at all; "" is an empty one */
	snprintf(line, sizeof(line), "%s-%s", head, tail);
	parse(f, line);
	assert_absent(rec.request);
	snprintf(line, sizeof(line), "%s%s", head, tail);
	parse(f, line);
	assert_non_null(rec.request.ptr);
	assert_int_equal(rec.request.len, 0);
	/* unusual but well-formed requests are not flagged */
	snprintf(line, sizeof(line), "%sCONNECT 123.123.123.123:443 "
		 "HTTP/1.1%s", head, tail);
	assert_int_equal(parse(f, line), PEX_LOGLINE_OK);
	assert_false(rec.flags & PEX_LOGREC_BAD_REQUEST);
	assert_slice(rec.path, "123.123.123.123:443");
	snprintf(line, sizeof(line), "%sGET /a b HTTP/2.0%s", head, tail);
	assert_int_equal(parse(f, line), PEX_LOGLINE_OK);
	assert_slice(rec.path, "/a b");
	assert_slice(rec.protocol, "HTTP/2.0");
	assert_int_equal(rec.tz_offset, 5 * 3600 + 30 * 60);
	pex_logformat_free(f);
}

static void test_escaped_quotes(void **state)
{
	struct pex_logformat *f = preset("combined");

	(void)state;
	assert_int_equal(parse(f, "10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "
				  "\"GET /q?x=\\\"1\\\" HTTP/1.1\" 200 5 "
				  "\"-\" \"Bot \\\"quoted\\\" back\\\\slash "
				  "tab\\there\""),
			 PEX_LOGLINE_OK);
	assert_slice(rec.query, "x=\"1\"");
	assert_slice(rec.user_agent, "Bot \"quoted\" back\\slash tab\there");
	/* decoded values land in the scratch buffer, not the line */
	assert_true(rec.user_agent.ptr >= scratch &&
		    rec.user_agent.ptr < scratch + sizeof(scratch));
	/* a value that ends in a backslash: "\\" then the closing quote */
	assert_int_equal(parse(f, "10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "
				  "\"GET / HTTP/1.1\" 200 5 \"-\" "
				  "\"agent\\\\\""),
			 PEX_LOGLINE_OK);
	assert_slice(rec.user_agent, "agent\\");
	pex_logformat_free(f);
}

static void test_unescaped_backslash_before_quote(void **state)
{
	struct pex_logformat *f = preset("combined");

	(void)state;
	/* a server that does not escape writes a lone backslash last; when
	 * no quote is left unescaped the backslashes are ignored */
	assert_int_equal(parse(f, "10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "
				  "\"GET /dir\\ HTTP/1.1\" 200 5 \"-\" "
				  "\"agent\\\""),
			 PEX_LOGLINE_OK);
	assert_slice(rec.user_agent, "agent\\");
	pex_logformat_free(f);
}

static void test_hex_escapes(void **state)
{
	struct pex_logformat *f = preset("combined");
	const char *line = "201.242.142.135 - - [19/May/2015:11:05:10 +0000] "
			   "\"GET /files/ HTTP/1.0\" 200 13316 \"http://"
			   "\\xe4\\xe5.\\xf0\\xf4/\" \"Mozilla/5.0\"";

	(void)state;
	assert_int_equal(parse(f, line), PEX_LOGLINE_OK);
	assert_slice(rec.referer, "http://\xe4\xe5.\xf0\xf4/");
	assert_false(rec.flags & PEX_LOGREC_UNDECODED);
	/* without scratch the raw text is kept and flagged */
	assert_int_equal(pex_logline_parse(f, line, strlen(line), &rec, NULL,
					   0),
			 PEX_LOGLINE_OK);
	assert_slice(rec.referer, "http://\\xe4\\xe5.\\xf0\\xf4/");
	assert_true(rec.flags & PEX_LOGREC_UNDECODED);
	/* broken escapes stay as written */
	assert_int_equal(parse(f, "1.2.3.4 - - [19/May/2015:11:05:10 +0000] "
				  "\"GET / HTTP/1.0\" 200 1 \"\\xZZ\\q\\x4\" "
				  "\"-\""),
			 PEX_LOGLINE_OK);
	assert_slice(rec.referer, "\\xZZ\\q\\x4");
	pex_logformat_free(f);
}

static void test_xff_field_and_chain(void **state)
{
	struct pex_logformat *f = compile(PEX_LOGFORMAT_APACHE,
		"%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\""
		" \"%{X-Forwarded-For}i\"");
	struct pex_cidr trusted[2];
	char client[PEX_IP_TEXT_MAX];
	int slot;

	(void)state;
	assert_int_equal(parse(f, "10.0.0.1 - - [07/Dec/2016:11:05:07 +0100] "
				  "\"GET /ocelot HTTP/1.1\" 200 571 \"-\" "
				  "\"curl\" \"198.51.100.23, 10.0.0.2\""),
			 PEX_LOGLINE_OK);
	assert_slice(rec.xff, "198.51.100.23, 10.0.0.2");
	slot = pex_logformat_header_slot(f, "x_forwarded_for");
	assert_true(slot >= 0);
	assert_slice(rec.named[slot], "198.51.100.23, 10.0.0.2");
	assert_int_equal(pex_cidr_parse("10.0.0.0/8", &trusted[0]), 0);
	assert_int_equal(pex_cidr_parse("2001:db8:ffff::/48", &trusted[1]),
			 0);
	assert_int_equal(pex_xff_client(rec.xff.ptr, rec.xff.len,
					rec.client.ptr, rec.client.len,
					trusted, 2, client, sizeof(client)),
			 0);
	assert_string_equal(client, "198.51.100.23");
	pex_logformat_free(f);
}

static void test_xff_walk(void **state)
{
	struct pex_cidr t[2];
	char out[PEX_IP_TEXT_MAX];
	const char *chain;

	(void)state;
	assert_int_equal(pex_cidr_parse("10.0.0.0/8", &t[0]), 0);
	assert_int_equal(pex_cidr_parse("192.168.0.0/16", &t[1]), 0);
	/* rightmost untrusted: the spoofed 1.1.1.1 on the left is ignored */
	chain = "1.1.1.1, 203.0.113.7, 10.0.0.2,192.168.1.1";
	assert_int_equal(pex_xff_client(chain, strlen(chain), "10.0.0.1", 8,
					t, 2, out, sizeof(out)), 0);
	assert_string_equal(out, "203.0.113.7");
	/* an untrusted peer is the client whatever the header claims */
	assert_int_equal(pex_xff_client(chain, strlen(chain), "198.51.100.1",
					12, t, 2, out, sizeof(out)), 0);
	assert_string_equal(out, "198.51.100.1");
	/* every hop trusted: the leftmost */
	chain = "10.9.9.9, 192.168.3.3";
	assert_int_equal(pex_xff_client(chain, strlen(chain), "10.0.0.1", 8,
					t, 2, out, sizeof(out)), 0);
	assert_string_equal(out, "10.9.9.9");
	/* no header, "-" or NULL: the peer */
	assert_int_equal(pex_xff_client("-", 1, "10.0.0.1", 8, t, 2, out,
					sizeof(out)), 0);
	assert_string_equal(out, "10.0.0.1");
	assert_int_equal(pex_xff_client(NULL, 0, "10.0.0.1", 8, t, 2, out,
					sizeof(out)), 0);
	assert_string_equal(out, "10.0.0.1");
	/* IPv6 forms, ports and mapped addresses are canonicalised */
	chain = "[2001:DB8::5]:5555, ::ffff:10.1.2.3";
	assert_int_equal(pex_xff_client(chain, strlen(chain), "10.0.0.1", 8,
					t, 2, out, sizeof(out)), 0);
	assert_string_equal(out, "2001:db8::5");
	/* garbage where an address should be stops the walk */
	chain = "203.0.113.7, unknown";
	snprintf(out, sizeof(out), "unchanged");
	assert_int_equal(pex_xff_client(chain, strlen(chain), "10.0.0.1", 8,
					t, 2, out, sizeof(out)),
			 PEX_EINVALID);
	assert_string_equal(out, "unchanged");
	/* empty items are skipped */
	chain = "203.0.113.9, , ";
	assert_int_equal(pex_xff_client(chain, strlen(chain), "10.0.0.1", 8,
					t, 2, out, sizeof(out)), 0);
	assert_string_equal(out, "203.0.113.9");
	assert_int_equal(pex_xff_client(NULL, 0, "nope", 4, t, 2, out,
					sizeof(out)), PEX_EINVALID);
	assert_int_equal(pex_xff_client(NULL, 0, "10.0.0.1", 8, t, 2, out, 8),
			 PEX_EUSAGE);
}

static void test_truncated_last_line(void **state)
{
	struct pex_logformat *f = preset("combined");
	const char *full = "66.249.73.135 - - [20/May/2015:12:05:40 +0000] "
			   "\"GET /a HTTP/1.1\" 200 235 \"-\" \"Mozilla/5.0 "
			   "(compatible; Googlebot/2.1)\"";
	size_t n = strlen(full);

	(void)state;
	assert_int_equal(pex_logline_parse(f, full, n, &rec, scratch,
					   sizeof(scratch)), PEX_LOGLINE_OK);
	/* every proper prefix is truncated, never OK, never a crash */
	for (size_t cut = 1; cut < n; cut++) {
		enum pex_logline_status st =
			pex_logline_parse(f, full, cut, &rec, scratch,
					  sizeof(scratch));

		if (st != PEX_LOGLINE_TRUNCATED)
			fail_msg("prefix %zu: %s (%s)", cut,
				 pex_logline_status_name(st), rec.detail);
	}
	/* the classic: user agent never closed */
	assert_int_equal(pex_logline_parse(f, full, n - 1, &rec, scratch,
					   sizeof(scratch)),
			 PEX_LOGLINE_TRUNCATED);
	assert_string_equal(rec.detail, "no closing quote");
	pex_logformat_free(f);
}

static void test_mismatch_column(void **state)
{
	struct pex_logformat *f = preset("combined");
	const char *line = "192.168.202.254 [20/Jul/2009:22:59:29 +0000] "
			   "\"GET /vmkboot.gz HTTP/1.0\" 404 46210 \"-\" "
			   "\"gPXE/0.9.7\"";

	(void)state;
	assert_int_equal(parse(f, line), PEX_LOGLINE_MISMATCH);
	/* ident took "[20/Jul/2009:22:59:29", user "+0000]", then " ["
	 * was expected where ' "GET' stands */
	assert_int_equal(rec.column, (size_t)(strstr(line, " \"GET") - line)
					     + 1);
	/* common line under combined: it ends where the referer should */
	assert_int_equal(parse(f, "::1 - - [26/Dec/2016:16:16:29 +0200] "
				  "\"GET /favicon.ico HTTP/1.1\" 404 209"),
			 PEX_LOGLINE_TRUNCATED);
	/* bad time, status and bytes */
	assert_int_equal(parse(f, "1.2.3.4 - - [31/Jan/2015:14:29:44 ] \"GET /"
				  " HTTP/1.1\" 200 1 \"-\" \"-\""),
			 PEX_LOGLINE_MISMATCH);
	assert_string_equal(rec.detail, "bad time");
	assert_int_equal(rec.column, 14);
	assert_int_equal(parse(f, "1.2.3.4 - - [31/Jan/2015:14:29:44 +0000] "
				  "\"GET / HTTP/1.1\" 2000 1 \"-\" \"-\""),
			 PEX_LOGLINE_MISMATCH);
	assert_int_equal(parse(f, "1.2.3.4 - - [31/Jan/2015:14:29:44 +0000] "
				  "\"GET / HTTP/1.1\" OK 1 \"-\" \"-\""),
			 PEX_LOGLINE_MISMATCH);
	assert_string_equal(rec.detail, "bad status");
	assert_int_equal(parse(f, "1.2.3.4 - - [31/Jan/2015:14:29:44 +0000] "
				  "\"GET / HTTP/1.1\" 200 "
				  "123456789012345678901 \"-\" \"-\""),
			 PEX_LOGLINE_MISMATCH);
	/* unescaped quote inside a value: the format cannot say where the
	 * value ends, so it is a mismatch rather than a guess */
	assert_int_equal(parse(f, "1.2.3.4 - - [31/Jan/2015:14:29:44 +0000] "
				  "\"GET / HTTP/1.1\" 200 1 \"-\" \"a \"b\" "
				  "c\""),
			 PEX_LOGLINE_MISMATCH);
	pex_logformat_free(f);
}

static void test_trailing_fields(void **state)
{
	struct pex_logformat *f = preset("combined");
	const char *line = "172.17.0.1 - - [29/May/2017:19:02:48 +0000] "
			   "\"GET /s HTTP/1.1\" 404 612 \"-\" \"Firefox\" "
			   "\"-\"";

	(void)state;
	assert_int_equal(parse(f, line), PEX_LOGLINE_MISMATCH);
	pex_logformat_set_allow_trailing(f, 1);
	assert_int_equal(parse(f, line), PEX_LOGLINE_OK);
	assert_slice(rec.user_agent, "Firefox");
	pex_logformat_free(f);
	/* a format ending in an unquoted field stops at the space then */
	f = preset("common");
	pex_logformat_set_allow_trailing(f, 1);
	assert_int_equal(parse(f, "1.2.3.4 - - [31/Jan/2015:14:29:44 +0000] "
				  "\"GET / HTTP/1.1\" 200 77 extra"),
			 PEX_LOGLINE_OK);
	assert_int_equal(rec.bytes, 77);
	pex_logformat_free(f);
}

static void test_crlf_and_empty(void **state)
{
	struct pex_logformat *f = preset("common");

	(void)state;
	assert_int_equal(parse(f, "1.2.3.4 - - [31/Jan/2015:14:29:44 +0000] "
				  "\"GET / HTTP/1.1\" 200 77\r\n"),
			 PEX_LOGLINE_OK);
	assert_int_equal(rec.bytes, 77);
	assert_int_equal(parse(f, ""), PEX_LOGLINE_EMPTY);
	assert_int_equal(parse(f, "\n"), PEX_LOGLINE_EMPTY);
	assert_int_equal(parse(f, "\r\n"), PEX_LOGLINE_EMPTY);
	assert_int_equal(parse(f, " \n"), PEX_LOGLINE_TRUNCATED);
	assert_int_equal(parse(f, "# comment line here"),
			 PEX_LOGLINE_MISMATCH);
	assert_int_equal(parse(f, "# comment"), PEX_LOGLINE_TRUNCATED);
	assert_string_equal(pex_logline_status_name(PEX_LOGLINE_TOO_LONG),
			    "too long");
	pex_logformat_free(f);
}

static void test_binary_lines(void **state)
{
	struct pex_logformat *f = preset("combined");
	char line[256];
	const char *ok = "1.2.3.4 - - [31/Jan/2015:14:29:44 +0000] \"GET / "
			 "HTTP/1.1\" 200 1 \"-\" \"-\"";
	size_t n = strlen(ok);

	(void)state;
	/* NUL anywhere, even inside quotes */
	memcpy(line, ok, n);
	line[45] = '\0';
	assert_int_equal(pex_logline_parse(f, line, n, &rec, scratch,
					   sizeof(scratch)),
			 PEX_LOGLINE_BINARY);
	assert_int_equal(rec.column, 46);
	/* control or high bytes in an unquoted field */
	memcpy(line, ok, n);
	line[2] = (char)0xff;
	assert_int_equal(pex_logline_parse(f, line, n, &rec, scratch,
					   sizeof(scratch)),
			 PEX_LOGLINE_BINARY);
	memcpy(line, ok, n);
	line[10] = '\x01';
	assert_int_equal(pex_logline_parse(f, line, n, &rec, scratch,
					   sizeof(scratch)),
			 PEX_LOGLINE_BINARY);
	/* a file of zeroes (pre-allocated, never written) */
	memset(line, 0, sizeof(line));
	assert_int_equal(pex_logline_parse(f, line, sizeof(line), &rec,
					   scratch, sizeof(scratch)),
			 PEX_LOGLINE_BINARY);
	pex_logformat_free(f);
}

static void test_non_utf8_in_quotes(void **state)
{
	struct pex_logformat *f = compile(PEX_LOGFORMAT_APACHE,
		"%v %h %l %u %t \"%r\" %>s %b \"%{Referer}i\" "
		"\"%{User-Agent}i\"");

	(void)state;
	/* Big5 bytes as matomo's test log has them: kept byte for byte;
	 * making them UTF-8 is the engine's job (pex_source_text) */
	assert_int_equal(parse(f, "www.example.com 1.2.3.4 - theuser "
				  "[10/Feb/2012:16:42:07 -0500] \"GET "
				  "/\xac\xb0\xa8\xe4\xad\xdd HTTP/1.0\" "
				  "301 368 \"-\" "
				  "\"\xff\xfe\xc0\""),
			 PEX_LOGLINE_OK);
	assert_slice(rec.path, "/\xac\xb0\xa8\xe4\xad\xdd");
	assert_slice(rec.user_agent, "\xff\xfe\xc0");
	assert_slice(rec.vhost, "www.example.com");
	assert_slice(rec.user, "theuser");
	pex_logformat_free(f);
}

static void test_too_long(void **state)
{
	struct pex_logformat *f = preset("combined");
	const char *head = "1.2.3.4 - - [31/Jan/2015:14:29:44 +0000] \"GET / "
			   "HTTP/1.1\" 200 1 \"-\" \"";
	size_t hn = strlen(head);
	size_t big = PEX_LOGLINE_MAX_DEFAULT + 100;
	char *line = malloc(big + 2);

	(void)state;
	assert_non_null(line);
	/* a user agent that fills the line up to exactly the maximum */
	memcpy(line, head, hn);
	memset(line + hn, 'A', PEX_LOGLINE_MAX_DEFAULT - hn - 1);
	line[PEX_LOGLINE_MAX_DEFAULT - 1] = '"';
	line[PEX_LOGLINE_MAX_DEFAULT] = '\n';
	assert_int_equal(pex_logline_parse(f, line,
					   PEX_LOGLINE_MAX_DEFAULT + 1, &rec,
					   scratch, sizeof(scratch)),
			 PEX_LOGLINE_OK);
	assert_int_equal(rec.user_agent.len, PEX_LOGLINE_MAX_DEFAULT - hn - 1);
	/* one byte more is too long */
	memset(line + hn, 'A', big - hn);
	line[PEX_LOGLINE_MAX_DEFAULT] = '"';
	assert_int_equal(pex_logline_parse(f, line,
					   PEX_LOGLINE_MAX_DEFAULT + 1, &rec,
					   scratch, sizeof(scratch)),
			 PEX_LOGLINE_TOO_LONG);
	assert_int_equal(pex_logline_parse(f, line, big, &rec, scratch,
					   sizeof(scratch)),
			 PEX_LOGLINE_TOO_LONG);
	/* a configured maximum */
	assert_int_equal(pex_logformat_set_max_line(f, 40), 0);
	assert_int_equal(parse(f, head), PEX_LOGLINE_TOO_LONG);
	assert_int_equal(pex_logformat_set_max_line(f, 0), PEX_EUSAGE);
	assert_int_equal(pex_logformat_set_max_line(f,
				PEX_LOGLINE_MAX_LIMIT + 1), PEX_EUSAGE);
	free(line);
	pex_logformat_free(f);
}

static void test_small_scratch(void **state)
{
	struct pex_logformat *f = preset("combined");
	const char *line = "1.2.3.4 - - [31/Jan/2015:14:29:44 +0000] \"GET "
			   "/\\\"a HTTP/1.1\" 200 1 \"-\" \"x\\\\y\"";
	char small[18];

	(void)state;
	/* room for the request's decoding but not the agent's */
	assert_int_equal(pex_logline_parse(f, line, strlen(line), &rec, small,
					   sizeof(small)), PEX_LOGLINE_OK);
	assert_slice(rec.path, "/\"a");
	assert_slice(rec.user_agent, "x\\\\y");
	assert_true(rec.flags & PEX_LOGREC_UNDECODED);
	pex_logformat_free(f);
}

/* ---- nginx ---------------------------------------------------------- */

static void test_nginx_combined(void **state)
{
	struct pex_logformat *f = preset("nginx");

	(void)state;
	assert_int_equal(parse(f, "77.179.66.156 - - [25/Oct/2016:14:49:34 "
				  "+0200] \"GET /favicon.ico HTTP/1.1\" 404 "
				  "571 \"http://localhost:8080/\" "
				  "\"Mozilla/5.0\""),
			 PEX_LOGLINE_OK);
	assert_slice(rec.client, "77.179.66.156");
	assert_int_equal(rec.time, 1477399774);
	assert_slice(rec.referer, "http://localhost:8080/");
	/* the " - " after the address is literal in nginx's combined */
	assert_int_equal(parse(f, "10.0.0.2, 10.0.0.1, 127.0.0.1 - - "
				  "[07/Dec/2016:11:05:07 +0100] \"GET /o "
				  "HTTP/1.1\" 200 571 \"-\" \"-\""),
			 PEX_LOGLINE_MISMATCH);
	assert_int_equal(rec.column, 10);
	pex_logformat_free(f);
}

static void test_nginx_variables(void **state)
{
	struct pex_logformat *f = compile(PEX_LOGFORMAT_NGINX,
		"${host} $remote_addr $remote_user [$time_iso8601] "
		"\"$request_method $request_uri $server_protocol\" $status "
		"$bytes_sent $body_bytes_sent $request_time $msec "
		"\"$http_x_forwarded_for\" \"$cookie_sid\" $upstream_addr "
		"$pex_ignore");
	int slot;

	(void)state;
	assert_int_equal(parse(f, "shop.example 2001:db8::1 alice "
				  "[2024-02-29T23:30:00.250+01:00] \"POST "
				  "/cart?id=7 HTTP/2.0\" 201 900 512 0.042 "
				  "1709245800.250 \"203.0.113.1\" \"abc=\" "
				  "10.0.0.5:80 x"),
			 PEX_LOGLINE_OK);
	assert_slice(rec.vhost, "shop.example");
	assert_slice(rec.user, "alice");
	/* the last time field read wins: $msec equals the ISO time */
	assert_int_equal(rec.time, 1709245800);
	assert_int_equal(rec.time_usec, 250000);
	assert_slice(rec.method, "POST");
	assert_slice(rec.path, "/cart");
	assert_slice(rec.query, "id=7");
	assert_slice(rec.protocol, "HTTP/2.0");
	assert_int_equal(rec.status, 201);
	/* $body_bytes_sent beats $bytes_sent whatever the order */
	assert_int_equal(rec.bytes, 512);
	assert_int_equal(rec.duration_us, 42000);
	assert_slice(rec.xff, "203.0.113.1");
	slot = pex_logformat_cookie_slot(f, "sid");
	assert_true(slot >= 0);
	assert_slice(rec.named[slot], "abc=");
	assert_int_equal(pex_logformat_cookie_slot(f, "SID"), PEX_ENOTFOUND);
	assert_true(pex_logformat_header_slot(f, "X-Forwarded-For") >= 0);
	pex_logformat_free(f);
}

static void test_nginx_iso_time(void **state)
{
	struct pex_logformat *f = compile(PEX_LOGFORMAT_NGINX,
		"$remote_addr [$time_iso8601] \"$request\" $status");

	(void)state;
	assert_int_equal(parse(f, "1.2.3.4 [2000-10-10T13:55:36-07:00] "
				  "\"GET / HTTP/1.1\" 200"),
			 PEX_LOGLINE_OK);
	assert_int_equal(rec.time, 971211336);
	assert_int_equal(parse(f, "1.2.3.4 [2000-10-10T20:55:36Z] \"GET / "
				  "HTTP/1.1\" 200"),
			 PEX_LOGLINE_OK);
	assert_int_equal(rec.time, 971211336);
	assert_int_equal(parse(f, "1.2.3.4 [2000-10-10T20:55:36] \"GET / "
				  "HTTP/1.1\" 200"),
			 PEX_LOGLINE_MISMATCH);
	assert_int_equal(parse(f, "1.2.3.4 [2000-13-10T20:55:36Z] \"GET / "
				  "HTTP/1.1\" 200"),
			 PEX_LOGLINE_MISMATCH);
	pex_logformat_free(f);
}

static void test_traefik(void **state)
{
	struct pex_logformat *f = preset("traefik");

	(void)state;
	assert_int_equal(parse(f, "10.0.0.2 - username [18/Nov/2018:21:34:34 "
				  "+0000] \"GET /dashboard/ HTTP/2.0\" 401 17 "
				  "\"-\" \"Mozilla/5.0\" 72 \"Auth for "
				  "frontend-Host-traefik-0\" \"/dashboard/\" "
				  "4ms\r\n"),
			 PEX_LOGLINE_OK);
	assert_slice(rec.user, "username");
	assert_int_equal(rec.status, 401);
	assert_int_equal(rec.duration_us, 4000);
	pex_logformat_free(f);
}

/* ---- Apache directives ---------------------------------------------- */

static void test_apache_directives(void **state)
{
	struct pex_logformat *f = compile(PEX_LOGFORMAT_APACHE,
		"%a %{c}a %V %m %U%q %H %<s %B %D %T %{ms}T %{sid}C %% "
		"%400,501{User-agent}i \\\"%!200{Referer}i\\\" %p %X");

	(void)state;
	assert_int_equal(parse(f, "203.0.113.5 10.0.0.1 host.example GET "
				  "/a/b?x=1 HTTP/1.1 200 0 1500 2 1999 "
				  "s%3D1 % UA/1 \"-\" 443 +"),
			 PEX_LOGLINE_OK);
	assert_slice(rec.remote_addr, "10.0.0.1");
	assert_slice(rec.vhost, "host.example");
	assert_slice(rec.method, "GET");
	assert_slice(rec.path, "/a/b");
	assert_slice(rec.query, "x=1");
	assert_slice(rec.protocol, "HTTP/1.1");
	assert_int_equal(rec.bytes, 0);
	/* %D, %T and %{ms}T all set the duration; the last one wins */
	assert_int_equal(rec.duration_us, 1999000);
	assert_slice(rec.named[pex_logformat_cookie_slot(f, "sid")],
		     "s%3D1");
	assert_slice(rec.user_agent, "UA/1");
	assert_absent(rec.referer);
	assert_absent(rec.request);
	pex_logformat_free(f);
	/* %q is empty without a query string */
	f = compile(PEX_LOGFORMAT_APACHE, "%U%q %s");
	assert_int_equal(parse(f, "/x 200"), PEX_LOGLINE_OK);
	assert_slice(rec.path, "/x");
	assert_absent(rec.query);
	pex_logformat_free(f);
	/* %D alone */
	f = compile(PEX_LOGFORMAT_APACHE, "%h %D");
	assert_int_equal(parse(f, "h 1234"), PEX_LOGLINE_OK);
	assert_int_equal(rec.duration_us, 1234);
	assert_int_equal(parse(f, "h -"), PEX_LOGLINE_OK);
	assert_false(rec.flags & PEX_LOGREC_HAS_DURATION);
	pex_logformat_free(f);
}

static void test_compile_errors(void **state)
{
	char big[PEX_LOGFORMAT_TEXT_MAX + 10], many[1024];
	size_t o = 0;

	(void)state;
	expect_compile_error(PEX_LOGFORMAT_APACHE, "%h %l %Z %u", PEX_EINVALID,
			     "%Z", "column 7");
	expect_compile_error(PEX_LOGFORMAT_APACHE, "%h %{%d/%b/%Y}t",
			     PEX_EINVALID, "%{...}t", "column 4");
	expect_compile_error(PEX_LOGFORMAT_APACHE, "%h %{Referer}",
			     PEX_EINVALID, "without a directive", NULL);
	expect_compile_error(PEX_LOGFORMAT_APACHE, "%h %{Referer",
			     PEX_EINVALID, "unclosed", NULL);
	expect_compile_error(PEX_LOGFORMAT_APACHE, "%h %i", PEX_EINVALID,
			     "needs a {name}", NULL);
	expect_compile_error(PEX_LOGFORMAT_APACHE, "%h %{a b}i", PEX_EINVALID,
			     "header name", NULL);
	expect_compile_error(PEX_LOGFORMAT_APACHE, "%{x}Q", PEX_EINVALID,
			     "%{x}Q", "column 1");
	expect_compile_error(PEX_LOGFORMAT_APACHE, "%h%u", PEX_EINVALID,
			     "followed by literal", NULL);
	expect_compile_error(PEX_LOGFORMAT_APACHE, "plain text", PEX_EINVALID,
			     "no field", NULL);
	expect_compile_error(PEX_LOGFORMAT_APACHE, "", PEX_EINVALID,
			     "no field", NULL);
	expect_compile_error(PEX_LOGFORMAT_APACHE, "%h %", PEX_EINVALID,
			     "column 4", NULL);
	expect_compile_error(PEX_LOGFORMAT_NGINX,
			     "$remote_addr $no_such_var", PEX_EINVALID,
			     "$no_such_var", "column 14");
	expect_compile_error(PEX_LOGFORMAT_NGINX, "$remote_addr $",
			     PEX_EINVALID, "column 14", NULL);
	expect_compile_error(PEX_LOGFORMAT_NGINX, "${remote_addr",
			     PEX_EINVALID, "unclosed", NULL);
	expect_compile_error(PEX_LOGFORMAT_NGINX, "${remote-addr}",
			     PEX_EINVALID, "bad variable", NULL);
	expect_compile_error(99, "%h", PEX_EUSAGE, NULL, NULL);
	expect_compile_error(PEX_LOGFORMAT_NGINX, NULL, PEX_EUSAGE, NULL,
			     NULL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[0] = '%';
	big[1] = 'h';
	expect_compile_error(PEX_LOGFORMAT_APACHE, big, PEX_ELIMIT, NULL,
			     NULL);
	/* too many named headers */
	for (int i = 0; i < PEX_LOGFORMAT_MAX_NAMED + 1; i++)
		o += (size_t)snprintf(many + o, sizeof(many) - o,
				      "\"%%{h%d}i\" ", i);
	expect_compile_error(PEX_LOGFORMAT_APACHE, many, PEX_ELIMIT,
			     "headers", NULL);
	/* too many parts */
	o = 0;
	for (int i = 0; i < PEX_LOGFORMAT_MAX_ELEMS; i++)
		o += (size_t)snprintf(many + o, sizeof(many) - o, "%%h ");
	expect_compile_error(PEX_LOGFORMAT_APACHE, many, PEX_ELIMIT, "parts",
			     NULL);
}

static void test_literal_percent_and_braces(void **state)
{
	struct pex_logformat *f = compile(PEX_LOGFORMAT_APACHE,
					  "100%% %h \\t%s");

	(void)state;
	assert_int_equal(parse(f, "100% 1.2.3.4 \t200"), PEX_LOGLINE_OK);
	assert_slice(rec.client, "1.2.3.4");
	assert_int_equal(rec.status, 200);
	pex_logformat_free(f);
	f = compile(PEX_LOGFORMAT_NGINX, "${remote_addr}-${status}ms");
	assert_int_equal(parse(f, "1.2.3.4-404ms"), PEX_LOGLINE_OK);
	assert_slice(rec.client, "1.2.3.4");
	assert_int_equal(rec.status, 404);
	pex_logformat_free(f);
	expect_compile_error(PEX_LOGFORMAT_NGINX, "$remote_addr $$x",
			     PEX_EINVALID, "column 14", NULL);
}

/* ---- time ----------------------------------------------------------- */

static void test_time_readers(void **state)
{
	struct pex_logtime t;

	(void)state;
	assert_int_equal(pex_logtime_clf("29/Feb/2016:00:00:00 +0000", 26, &t),
			 26);
	assert_int_equal(t.sec, 1456704000);
	assert_int_equal(pex_logtime_clf("29/Feb/2015:00:00:00 +0000", 26, &t),
			 0);
	assert_int_equal(pex_logtime_clf("31/Apr/2015:00:00:00 +0000", 26, &t),
			 0);
	assert_int_equal(pex_logtime_clf("01/Foo/2015:00:00:00 +0000", 26, &t),
			 0);
	assert_int_equal(pex_logtime_clf("01/jan/1970:01:00:00 +0100", 26, &t),
			 26);
	assert_int_equal(t.sec, 0);
	assert_int_equal(pex_logtime_clf("01/Jan/1970:01:00:00 +0100", 25, &t),
			 0);
	assert_int_equal(pex_logtime_clf("01/Jan/2000:24:00:00 +0000", 26, &t),
			 0);
	assert_int_equal(pex_logtime_clf("01/Jan/2000:00:00:00 +2400", 26, &t),
			 0);
	assert_int_equal(pex_logtime_clf("31/Dec/9999:23:59:59 -1200", 26, &t),
			 26);
	assert_int_equal(t.sec, 253402343999LL);
	assert_int_equal(pex_logtime_iso8601("1999-12-31 23:59:59.5+0530", 26,
					     &t), 26);
	assert_int_equal(t.sec, 946664999);
	assert_int_equal(t.usec, 500000);
	assert_int_equal(pex_logtime_iso8601("1999-12-31T23:59:59.1234567891Z",
					     31, &t), 0);
	assert_int_equal(pex_logtime_iso8601("1999-12-31T23:59:59+05", 22, &t),
			 22);
	assert_int_equal(t.tz_offset, 5 * 3600);
	assert_int_equal(pex_logtime_epoch("1700000000.123", 14, &t), 14);
	assert_int_equal(t.sec, 1700000000);
	assert_int_equal(t.usec, 123000);
	assert_int_equal(pex_logtime_epoch("1700000000.", 11, &t), 0);
	assert_int_equal(pex_logtime_epoch("1234567890123", 13, &t), 0);
	assert_int_equal(pex_logtime_days(1970, 1, 1), 0);
	assert_int_equal(pex_logtime_days(2000, 3, 1), 11017);
}

static void test_time_fast_path(void **state)
{
	struct pex_logformat *f = preset("vhost_combined");
	struct pex_logtime t;
	const char *line = "h:80 1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "
			   "\"GET / HTTP/1.1\" OOPS";

	(void)state;
	/* bad after the time: the time still comes out */
	assert_int_equal(pex_logline_time(f, line, strlen(line), &t),
			 PEX_LOGLINE_OK);
	assert_int_equal(t.sec, 971211336);
	assert_int_equal(parse(f, line), PEX_LOGLINE_MISMATCH);
	assert_int_equal(pex_logline_time(f, "h:80 1.2.3.4 - - [10/Oct/20",
					  27, &t), PEX_LOGLINE_TRUNCATED);
	assert_int_equal(pex_logline_time(f, "\n", 1, &t), PEX_LOGLINE_EMPTY);
	pex_logformat_free(f);
	f = compile(PEX_LOGFORMAT_APACHE, "%h %s");
	assert_false(pex_logformat_has_time(f));
	assert_int_equal(pex_logline_time(f, "a 200", 5, &t),
			 PEX_LOGLINE_MISMATCH);
	pex_logformat_free(f);
}

/* ---- pre-filter ----------------------------------------------------- */

static void test_prefilter_small(void **state)
{
	const char *needles[] = {"203.0.113.7", "2001:db8::1"};
	struct pex_logneedles *set = NULL;
	const char *l1 = "203.0.113.7 - - [..] \"GET / HTTP/1.1\" 200 1";
	const char *l2 = "203.0.113.8 - - [..] \"GET / HTTP/1.1\" 200 1";
	const char *l3 = "x \"2001:db8::1\"";

	(void)state;
	assert_int_equal(pex_logneedles_new(&set, needles, 2), 0);
	assert_int_equal(pex_logneedles_match(set, l1, strlen(l1)), 1);
	assert_int_equal(pex_logneedles_match(set, l2, strlen(l2)), 0);
	assert_int_equal(pex_logneedles_match(set, l3, strlen(l3)), 1);
	/* the needle cut by the end of the buffer is no match */
	assert_int_equal(pex_logneedles_match(set, l1, 10), 0);
	assert_int_equal(pex_logneedles_match(NULL, l1, strlen(l1)), 0);
	pex_logneedles_free(set);
	pex_logneedles_free(NULL);
}

static void test_prefilter_large(void **state)
{
	char store[200][24];
	const char *needles[201];
	struct pex_logneedles *set = NULL;
	char line[128];

	(void)state;
	for (int i = 0; i < 200; i++) {
		snprintf(store[i], sizeof(store[i]), "198.51.%d.%d", i / 10,
			 i % 10 + 100);
		needles[i] = store[i];
	}
	needles[200] = "@"; /* a one-byte needle */
	assert_int_equal(pex_logneedles_new(&set, needles, 200), 0);
	for (int i = 0; i < 200; i++) {
		int n = snprintf(line, sizeof(line), "%s - - [x] \"GET /\"",
				 store[i]);

		assert_int_equal(pex_logneedles_match(set, line, (size_t)n),
				 1);
	}
	snprintf(line, sizeof(line), "198.51.3.99 - - [x] \"GET /\"");
	assert_int_equal(pex_logneedles_match(set, line, strlen(line)), 0);
	/* at the very end of the line */
	snprintf(line, sizeof(line), "x %s", store[199]);
	assert_int_equal(pex_logneedles_match(set, line, strlen(line)), 1);
	assert_int_equal(pex_logneedles_match(set, line, strlen(line) - 1), 0);
	pex_logneedles_free(set);
	assert_int_equal(pex_logneedles_new(&set, needles, 201), 0);
	assert_int_equal(pex_logneedles_match(set, "a@b", 3), 1);
	assert_int_equal(pex_logneedles_match(set, "ab", 2), 0);
	pex_logneedles_free(set);
}

/* The shift-table scan against a naive memmem() over random text drawn
 * from a small alphabet, so that near misses are common. */
static void test_prefilter_cross_check(void **state)
{
	static char store[40][12];
	const char *needles[40];
	const char alpha[] = "0123.:a";
	uint32_t seed = 7;
	char line[200];

	(void)state;
	for (int round = 0; round < 300; round++) {
		struct pex_logneedles *set = NULL;
		size_t count = 9 + (size_t)round % 31;

		for (size_t i = 0; i < count; i++) {
			seed = seed * 1103515245u + 12345u;
			size_t l = 2 + (seed >> 8) % 9;

			for (size_t j = 0; j < l; j++) {
				seed = seed * 1103515245u + 12345u;
				store[i][j] = alpha[(seed >> 8) % 7];
			}
			store[i][l] = '\0';
			needles[i] = store[i];
		}
		assert_int_equal(pex_logneedles_new(&set, needles, count), 0);
		for (int k = 0; k < 200; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t len = (seed >> 8) % sizeof(line);
			int want = 0;

			for (size_t j = 0; j < len; j++) {
				seed = seed * 1103515245u + 12345u;
				line[j] = alpha[(seed >> 8) % 7];
			}
			for (size_t i = 0; i < count && !want; i++)
				want = memmem(line, len, needles[i],
					      strlen(needles[i])) != NULL;
			assert_int_equal(pex_logneedles_match(set, line, len),
					 want);
		}
		pex_logneedles_free(set);
	}
}

static void test_prefilter_errors(void **state)
{
	const char *empty[] = {"ok", ""};
	const char *null[] = {NULL};
	char longn[PEX_LOGNEEDLE_LEN_MAX + 2];
	const char *lng[] = {longn};
	struct pex_logneedles *set = NULL;

	(void)state;
	memset(longn, 'a', sizeof(longn) - 1);
	longn[sizeof(longn) - 1] = '\0';
	assert_int_equal(pex_logneedles_new(&set, empty, 2), PEX_EINVALID);
	assert_null(set);
	assert_int_equal(pex_logneedles_new(&set, null, 1), PEX_EINVALID);
	assert_int_equal(pex_logneedles_new(&set, lng, 1), PEX_EINVALID);
	assert_int_equal(pex_logneedles_new(&set, empty,
					    PEX_LOGNEEDLES_MAX + 1),
			 PEX_ELIMIT);
	/* an empty set matches nothing */
	assert_int_equal(pex_logneedles_new(&set, empty, 0), 0);
	assert_int_equal(pex_logneedles_match(set, "ok", 2), 0);
	pex_logneedles_free(set);
}

/* ---- IP helpers ----------------------------------------------------- */

static void expect_canon(const char *in, const char *want)
{
	char out[PEX_IP_TEXT_MAX];

	if (pex_ip_canonical(in, strlen(in), out, sizeof(out)) < 0)
		fail_msg("'%s': %s", in, pex_error_last());
	assert_string_equal(out, want);
}

static void test_ip_canonical(void **state)
{
	const char *bad[] = {"", "-", "abc", "999.1.1.1", "1.2.3", "[::1",
			     "[::1]x", "1.2.3.4:80:90", "::g", "1.2.3.4/8",
			     "2001:db8::1::2", "   "};
	struct pex_ipaddr a, b;
	char out[PEX_IP_TEXT_MAX];

	(void)state;
	expect_canon("2001:DB8::1", "2001:db8::1");
	expect_canon("2001:db8:0::1", "2001:db8::1");
	expect_canon("2001:0db8:0000:0000:0000:0000:0000:0001",
		     "2001:db8::1");
	expect_canon("[2001:db8::1]:8443", "2001:db8::1");
	expect_canon("[2001:db8::1]", "2001:db8::1");
	expect_canon("::ffff:192.0.2.1", "192.0.2.1");
	expect_canon("::FFFF:c000:0201", "192.0.2.1");
	expect_canon("192.0.2.1:8080", "192.0.2.1");
	expect_canon(" 192.0.2.1\t", "192.0.2.1");
	expect_canon("fe80::1%eth0", "fe80::1");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (pex_ip_canonical(bad[i], strlen(bad[i]), out,
				     sizeof(out)) != PEX_EINVALID)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(pex_ip_canonical("1.2.3.4", 7, out, 8), PEX_EUSAGE);
	assert_int_equal(pex_ip_parse(NULL, 0, &a), PEX_EINVALID);
	assert_int_equal(pex_ip_parse("2001:DB8::1", 11, &a), 0);
	assert_int_equal(pex_ip_parse("2001:db8:0::1", 13, &b), 0);
	assert_true(pex_ip_equal(&a, &b));
	assert_int_equal(pex_ip_parse("::ffff:10.0.0.1", 15, &a), 0);
	assert_int_equal(pex_ip_parse("10.0.0.1", 8, &b), 0);
	assert_true(pex_ip_equal(&a, &b));
	assert_int_equal(pex_ip_parse("10.0.0.2", 8, &b), 0);
	assert_false(pex_ip_equal(&a, &b));
	/* hostile length: not copied into the fixed buffer */
	char huge[300];

	memset(huge, '1', sizeof(huge));
	assert_int_equal(pex_ip_parse(huge, sizeof(huge), &a), PEX_EINVALID);
}

static void test_cidr(void **state)
{
	struct pex_cidr c;
	struct pex_ipaddr a;

	(void)state;
	assert_int_equal(pex_cidr_parse("10.1.2.3/8", &c), 0);
	assert_int_equal(c.bits, 8);
	pex_ip_parse("10.200.0.1", 10, &a);
	assert_true(pex_cidr_contains(&c, &a));
	pex_ip_parse("11.0.0.1", 8, &a);
	assert_false(pex_cidr_contains(&c, &a));
	pex_ip_parse("::ffff:10.0.0.1", 15, &a);
	assert_true(pex_cidr_contains(&c, &a));
	assert_int_equal(pex_cidr_parse("2001:db8::/33", &c), 0);
	pex_ip_parse("2001:db8:7fff::1", 16, &a);
	assert_true(pex_cidr_contains(&c, &a));
	pex_ip_parse("2001:db8:8000::1", 16, &a);
	assert_false(pex_cidr_contains(&c, &a));
	pex_ip_parse("10.0.0.1", 8, &a);
	assert_false(pex_cidr_contains(&c, &a));
	assert_int_equal(pex_cidr_parse("192.0.2.7", &c), 0);
	assert_int_equal(c.bits, 32);
	assert_int_equal(pex_cidr_parse("::ffff:10.0.0.0/104", &c), 0);
	assert_int_equal(c.bits, 8);
	assert_int_equal(pex_cidr_parse("0.0.0.0/0", &c), 0);
	pex_ip_parse("8.8.8.8", 7, &a);
	assert_true(pex_cidr_contains(&c, &a));
	assert_int_equal(pex_cidr_parse("10.0.0.0/33", &c), PEX_EINVALID);
	assert_int_equal(pex_cidr_parse("10.0.0.0/", &c), PEX_EINVALID);
	assert_int_equal(pex_cidr_parse("10.0.0.0/8x", &c), PEX_EINVALID);
	assert_int_equal(pex_cidr_parse("10.0.0.0/-1", &c), PEX_EINVALID);
	assert_int_equal(pex_cidr_parse("::ffff:10.0.0.0/64", &c),
			 PEX_EINVALID);
	assert_int_equal(pex_cidr_parse("nonsense/8", &c), PEX_EINVALID);
	assert_int_equal(pex_cidr_parse(NULL, &c), PEX_EINVALID);
}

/* ---- hostile input -------------------------------------------------- */

static void test_hostile_lines(void **state)
{
	struct pex_logformat *f = preset("combined");
	size_t n = 60000;
	char *line = malloc(n);

	(void)state;
	assert_non_null(line);
	/* quotes only */
	memset(line, '"', n);
	assert_true(pex_logline_parse(f, line, n, &rec, scratch,
				      sizeof(scratch)) != PEX_LOGLINE_OK);
	/* backslashes only */
	memset(line, '\\', n);
	assert_true(pex_logline_parse(f, line, n, &rec, scratch,
				      sizeof(scratch)) != PEX_LOGLINE_OK);
	/* a valid head, then a request of backslashes and quotes */
	const char *head = "1.2.3.4 - - [31/Jan/2015:14:29:44 +0000] \"";

	memcpy(line, head, strlen(head));
	for (size_t i = strlen(head); i < n; i++)
		line[i] = i % 3 ? '\\' : '"';
	assert_true(pex_logline_parse(f, line, n, &rec, scratch,
				      sizeof(scratch)) != PEX_LOGLINE_OK);
	/* spaces only, brackets only */
	memset(line, ' ', n);
	assert_int_equal(pex_logline_parse(f, line, n, &rec, scratch,
					   sizeof(scratch)),
			 PEX_LOGLINE_MISMATCH);
	memset(line, '[', n);
	assert_true(pex_logline_parse(f, line, n, &rec, scratch,
				      sizeof(scratch)) != PEX_LOGLINE_OK);
	free(line);
	pex_logformat_free(f);
}

/* Random mutations of a good line: never a crash or an out-of-bounds
 * read (ASan watches), and every slice of an accepted line lies in the
 * line or in the scratch buffer. */
static void test_mutations(void **state)
{
	struct pex_logformat *f = preset("combined");
	const char *good = "2001:db8::1 - bob [10/Oct/2000:13:55:36 -0700] "
			   "\"GET /a?b=\\\"c\\\" HTTP/1.1\" 200 2326 \"http://"
			   "r/\\xe4\" \"UA \\\\ x\"";
	const char alphabet[] = "\"\\ []-x0:/\n\r\t\x00\xff";
	size_t n = strlen(good);
	uint32_t seed = 12345;
	char *line = malloc(n + 8);
	int ok = 0;

	(void)state;
	assert_non_null(line);
	for (int round = 0; round < 200000; round++) {
		size_t len = n;

		memcpy(line, good, n);
		for (int k = 0; k < 1 + round % 4; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t at = (seed >> 8) % n;

			seed = seed * 1103515245u + 12345u;
			line[at] = alphabet[(seed >> 8) %
					    (sizeof(alphabet) - 1)];
		}
		seed = seed * 1103515245u + 12345u;
		if ((seed >> 8) % 5 == 0)
			len = (seed >> 12) % n;
		/* a copy of exactly len bytes so ASan sees overreads */
		char *exact = malloc(len ? len : 1);

		assert_non_null(exact);
		memcpy(exact, line, len);
		enum pex_logline_status st = pex_logline_parse(
			f, exact, len, &rec, scratch, sizeof(scratch));

		assert_true(st <= PEX_LOGLINE_TOO_LONG);
		if (st == PEX_LOGLINE_OK) {
			const struct pex_logslice *s = &rec.client;

			ok++;
			for (; s <= &rec.named[PEX_LOGFORMAT_MAX_NAMED - 1];
			     s++) {
				if (!s->ptr)
					continue;
				bool in_line = s->ptr >= exact &&
					       s->ptr + s->len <= exact + len;
				const char *se = scratch + sizeof(scratch);
				bool in_scr = s->ptr >= scratch &&
					      s->ptr + s->len <= se;

				assert_true(in_line || in_scr);
			}
		} else {
			assert_true(rec.column >= 1 && rec.column <= len + 1);
		}
		struct pex_logtime t;

		pex_logline_time(f, exact, len, &t);
		free(exact);
	}
	/* some mutations land in values and keep the line valid */
	assert_true(ok > 0);
	free(line);
	pex_logformat_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_presets),
		cmocka_unit_test(test_client_first),
		cmocka_unit_test(test_combined_record),
		cmocka_unit_test(test_common_dash_fields),
		cmocka_unit_test(test_dash_referer_and_agent),
		cmocka_unit_test(test_ipv6_client),
		cmocka_unit_test(test_client_with_port),
		cmocka_unit_test(test_vhost_combined),
		cmocka_unit_test(test_binary_request),
		cmocka_unit_test(test_malformed_requests),
		cmocka_unit_test(test_escaped_quotes),
		cmocka_unit_test(test_unescaped_backslash_before_quote),
		cmocka_unit_test(test_hex_escapes),
		cmocka_unit_test(test_xff_field_and_chain),
		cmocka_unit_test(test_xff_walk),
		cmocka_unit_test(test_truncated_last_line),
		cmocka_unit_test(test_mismatch_column),
		cmocka_unit_test(test_trailing_fields),
		cmocka_unit_test(test_crlf_and_empty),
		cmocka_unit_test(test_binary_lines),
		cmocka_unit_test(test_non_utf8_in_quotes),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_small_scratch),
		cmocka_unit_test(test_nginx_combined),
		cmocka_unit_test(test_nginx_variables),
		cmocka_unit_test(test_nginx_iso_time),
		cmocka_unit_test(test_traefik),
		cmocka_unit_test(test_apache_directives),
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_literal_percent_and_braces),
		cmocka_unit_test(test_time_readers),
		cmocka_unit_test(test_time_fast_path),
		cmocka_unit_test(test_prefilter_small),
		cmocka_unit_test(test_prefilter_large),
		cmocka_unit_test(test_prefilter_cross_check),
		cmocka_unit_test(test_prefilter_errors),
		cmocka_unit_test(test_ip_canonical),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_hostile_lines),
		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
