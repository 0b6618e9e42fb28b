/*
 * Unit tests of the user-agent parser: well-known user agents against the
 * real uap-core rules, hostile input (empty, not UTF-8, 1 MB, NUL bytes,
 * catastrophic backtracking), rule-file errors with file:line messages,
 * and the $N replacement rules on small custom rule files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "portex/error.h"
#include "portex/uaparser.h"
#include "uaparser/uaparser_int.h"

#define FIREFOX_UBUNTU                                                     \
	"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) "               \
	"Gecko/20100101 Firefox/121.0"
#define CHROME_WINDOWS                                                     \
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "   \
	"(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
#define SAFARI_IOS                                                         \
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) "        \
	"AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 "         \
	"Mobile/15E148 Safari/604.1"
#define GOOGLEBOT                                                          \
	"Mozilla/5.0 (compatible; Googlebot/2.1; "                         \
	"+http://www.google.com/bot.html)"

/* The real rules, loaded once for the tests that use them. */
static pex_uaparser *real;

/* Large enough that a stack copy would be unkind under ASan. */
static struct pex_ua_result res;

static const char *regexes_path(void)
{
	const char *d = getenv("PEX_UAP_CORE_DIR");
	static char buf[1024];

	if (d == NULL || d[0] == '\0')
		return PEX_UAPARSER_DEFAULT_REGEXES;
	snprintf(buf, sizeof(buf), "%s/regexes.yaml", d);
	return buf;
}

static int setup_real(void **state)
{
	if (pex_uaparser_load(&real, regexes_path()) != 0) {
		fprintf(stderr, "%s\n", pex_error_last());
		return -1;
	}
	return 0;
}

static int teardown_real(void **state)
{
	pex_uaparser_free(real);
	real = NULL;
	return 0;
}

/* Write text to a new temporary file; returns its malloc'd path. */
static char *write_tmp(const char *text, size_t len)
{
	char tmpl[] = "/tmp/pex_uaparser_XXXXXX";
	int fd = mkstemp(tmpl);
	char *path;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	path = strdup(tmpl);
	assert_non_null(path);
	return path;
}

/* Load rules given as text; returns the load result, parser in *out. */
static int load_text(const char *yaml, pex_uaparser **out, char **path_out,
		     unsigned opts)
{
	char *path = write_tmp(yaml, strlen(yaml));
	int rc = uap_load_opts(out, path, opts);

	if (path_out != NULL) {
		*path_out = path;
	} else {
		unlink(path);
		free(path);
	}
	return rc;
}

static void drop_tmp(char *path)
{
	unlink(path);
	free(path);
}

static int utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n;

		if (*p < 0x80)
			n = 1;
		else if (*p >= 0xc2 && *p <= 0xdf)
			n = 2;
		else if (*p >= 0xe0 && *p <= 0xef)
			n = 3;
		else if (*p >= 0xf0 && *p <= 0xf4)
			n = 4;
		else
			return 0;
		for (size_t i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return 0;
		p += n;
	}
	return 1;
}

static void assert_all_utf8(const struct pex_ua_result *r)
{
	const char *f[] = { r->browser.family, r->browser.major,
			    r->browser.minor, r->browser.patch,
			    r->browser.patch_minor, r->os.family, r->os.major,
			    r->os.minor, r->os.patch, r->os.patch_minor,
			    r->device.family, r->device.brand,
			    r->device.model };

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		assert_true(utf8_valid(f[i]));
}

static void parse_str(const pex_uaparser *p, const char *ua)
{
	assert_int_equal(pex_uaparser_parse(p, NULL, ua, strlen(ua), &res),
			 0);
}

/* ---- known user agents ----------------------------------------------- */

static void test_firefox_ubuntu(void **state)
{
	parse_str(real, FIREFOX_UBUNTU);
	assert_string_equal(res.browser.family, "Firefox");
	assert_string_equal(res.browser.major, "121");
	assert_string_equal(res.browser.minor, "0");
	assert_string_equal(res.browser.patch, "");
	assert_string_equal(res.os.family, "Ubuntu");
	assert_string_equal(res.os.major, "");
	assert_string_equal(res.device.family, "Other");
	assert_string_equal(res.device.brand, "");
	assert_int_equal(res.flags, 0);
}

static void test_chrome_windows(void **state)
{
	parse_str(real, CHROME_WINDOWS);
	assert_string_equal(res.browser.family, "Chrome");
	assert_string_equal(res.browser.major, "120");
	assert_string_equal(res.browser.minor, "0");
	assert_string_equal(res.browser.patch, "0");
	assert_string_equal(res.browser.patch_minor, "0");
	assert_string_equal(res.os.family, "Windows");
	assert_string_equal(res.os.major, "10");
	assert_string_equal(res.device.family, "Other");
}

static void test_safari_ios(void **state)
{
	parse_str(real, SAFARI_IOS);
	assert_string_equal(res.browser.family, "Mobile Safari");
	assert_string_equal(res.browser.major, "17");
	assert_string_equal(res.browser.minor, "1");
	assert_string_equal(res.browser.patch, "2");
	assert_string_equal(res.os.family, "iOS");
	assert_string_equal(res.os.major, "17");
	assert_string_equal(res.os.minor, "1");
	assert_string_equal(res.os.patch, "2");
	assert_string_equal(res.device.family, "iPhone");
	assert_string_equal(res.device.brand, "Apple");
	assert_string_equal(res.device.model, "iPhone");
}

static void test_curl(void **state)
{
	parse_str(real, "curl/8.4.0");
	assert_string_equal(res.browser.family, "curl");
	assert_string_equal(res.browser.major, "8");
	assert_string_equal(res.browser.minor, "4");
	assert_string_equal(res.browser.patch, "0");
	assert_string_equal(res.os.family, "Other");
	assert_string_equal(res.device.family, "Other");
}

static void test_googlebot(void **state)
{
	parse_str(real, GOOGLEBOT);
	assert_string_equal(res.browser.family, "Googlebot");
	assert_string_equal(res.browser.major, "2");
	assert_string_equal(res.browser.minor, "1");
	assert_string_equal(res.device.family, "Spider");
	assert_string_equal(res.device.brand, "Spider");
	assert_string_equal(res.device.model, "Desktop");
}

/* ---- hostile input ---------------------------------------------------- */

static void assert_all_other(void)
{
	assert_string_equal(res.browser.family, "Other");
	assert_string_equal(res.browser.major, "");
	assert_string_equal(res.os.family, "Other");
	assert_string_equal(res.os.major, "");
	assert_string_equal(res.device.family, "Other");
	assert_string_equal(res.device.brand, "");
	assert_string_equal(res.device.model, "");
}

static void test_empty(void **state)
{
	/* Stale data in the result must not survive. */
	memset(&res, 'x', sizeof(res));
	parse_str(real, "");
	assert_all_other();
	assert_int_equal(res.flags, 0);
	memset(&res, 'x', sizeof(res));
	assert_int_equal(pex_uaparser_parse(real, NULL, NULL, 0, &res), 0);
	assert_all_other();
}

static void test_bad_arguments(void **state)
{
	assert_int_equal(pex_uaparser_parse(NULL, NULL, "a", 1, &res),
			 PEX_EUSAGE);
	assert_int_equal(pex_uaparser_parse(real, NULL, "a", 1, NULL),
			 PEX_EUSAGE);
	assert_int_equal(pex_uaparser_parse(real, NULL, NULL, 5, &res),
			 PEX_EUSAGE);
	assert_int_equal(pex_uaparser_load(NULL, NULL), PEX_EUSAGE);
	pex_uaparser_free(NULL);
	pex_uaparser_scratch_free(NULL);
}

static void test_non_utf8(void **state)
{
	/* Invalid bytes around and inside a real user agent: matching goes
	 * on around them, and no output byte is invalid UTF-8. */
	const char ua[] = "\xff\xfe Mozilla/5.0 (X11; Ubuntu\xc3; Linux "
			  "x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
			  "\xed\xa0\x80\xc0\xaf";
	char all[256];

	assert_int_equal(pex_uaparser_parse(real, NULL, ua, sizeof(ua) - 1,
					    &res), 0);
	assert_string_equal(res.browser.family, "Firefox");
	assert_string_equal(res.browser.major, "121");
	assert_all_utf8(&res);

	/* Every byte value once: nothing to recognise, nothing fails. */
	for (int i = 0; i < 256; i++)
		all[i] = (char)(255 - i);
	assert_int_equal(pex_uaparser_parse(real, NULL, all, sizeof(all),
					    &res), 0);
	assert_all_utf8(&res);

	/* A truncated sequence inside a group a rule copies out. */
	parse_str(real, "Mozilla/5.0 (Linux; Android 13; SM-S91\xe2\x82) "
		  "AppleWebKit/537.36 Chrome/120.0.0.0 Mobile Safari/537.36");
	assert_string_equal(res.browser.family, "Chrome Mobile");
	assert_all_utf8(&res);
}

static void test_one_megabyte(void **state)
{
	size_t big = 1024 * 1024;
	size_t head = strlen(FIREFOX_UBUNTU);
	char *ua = malloc(big);

	assert_non_null(ua);
	/* A real user agent followed by junk: only the first
	 * PEX_UA_INPUT_MAX bytes are looked at, and they suffice. */
	memcpy(ua, FIREFOX_UBUNTU, head);
	memset(ua + head, 'a', big - head);
	assert_int_equal(pex_uaparser_parse(real, NULL, ua, big, &res), 0);
	assert_string_equal(res.browser.family, "Firefox");
	assert_true(res.flags & PEX_UA_INPUT_TRUNCATED);

	/* The same user agent past the cut is not seen at all. */
	memset(ua, ' ', big);
	memcpy(ua + big - head, FIREFOX_UBUNTU, head);
	assert_int_equal(pex_uaparser_parse(real, NULL, ua, big, &res), 0);
	assert_all_other();
	assert_true(res.flags & PEX_UA_INPUT_TRUNCATED);

	/* Shapes that make patterns scan and backtrack: brackets, ';'
	 * lists, "Build/" and version digits, cut inside a UTF-8 char. */
	for (size_t i = 0; i < big; i++)
		ua[i] = "(;Build/1.\xc3\xa9 "[i % 14];
	assert_int_equal(pex_uaparser_parse(real, NULL, ua, big, &res), 0);
	assert_true(res.flags & PEX_UA_INPUT_TRUNCATED);
	assert_all_utf8(&res);
	free(ua);
}

static void test_embedded_nul(void **state)
{
	/* The length, not a NUL, ends the input: the user agent after the
	 * NUL is found. */
	const char ua[] = "x\0" FIREFOX_UBUNTU;
	/* A NUL inside a copied group is dropped from the C string. */
	const char app[] = "My\0App/3 CFNetwork/1";

	assert_int_equal(pex_uaparser_parse(real, NULL, ua, sizeof(ua) - 1,
					    &res), 0);
	assert_string_equal(res.browser.family, "Firefox");
	assert_int_equal(pex_uaparser_parse(real, NULL, app, sizeof(app) - 1,
					    &res), 0);
	assert_string_equal(res.browser.family, "MyApp");
	assert_string_equal(res.browser.major, "3");
}

/* ---- scratch and threads ---------------------------------------------- */

static void test_scratch(void **state)
{
	static struct pex_ua_result a;
	pex_uaparser_scratch *s = NULL;
	pex_uaparser *other = NULL;

	assert_int_equal(pex_uaparser_scratch_new(real, &s), 0);
	assert_int_equal(pex_uaparser_parse(real, s, SAFARI_IOS,
					    strlen(SAFARI_IOS), &a), 0);
	parse_str(real, SAFARI_IOS);
	assert_memory_equal(&a, &res, sizeof(a));

	/* A scratch from another parser may have too small an ovector. */
	assert_int_equal(load_text("user_agent_parsers:\n"
				   "  - regex: 'x'\n"
				   "    family_replacement: 'X'\n",
				   &other, NULL, 0), 0);
	assert_int_equal(pex_uaparser_parse(other, s, "x", 1, &res),
			 PEX_EUSAGE);
	assert_int_equal(pex_uaparser_scratch_new(real, NULL), PEX_EUSAGE);
	pex_uaparser_scratch_free(s);
	pex_uaparser_free(other);
}

struct worker {
	const char *ua;
	int failures;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	pex_uaparser_scratch *s = NULL;
	struct pex_ua_result *first = malloc(sizeof(*first));
	struct pex_ua_result *again = malloc(sizeof(*again));

	if (first == NULL || again == NULL ||
	    pex_uaparser_scratch_new(real, &s) != 0 ||
	    pex_uaparser_parse(real, s, w->ua, strlen(w->ua), first) != 0) {
		w->failures++;
		goto done;
	}
	for (int i = 0; i < 200; i++) {
		if (pex_uaparser_parse(real, s, w->ua, strlen(w->ua),
				       again) != 0 ||
		    memcmp(first, again, sizeof(*first)) != 0)
			w->failures++;
	}
done:
	pex_uaparser_scratch_free(s);
	free(first);
	free(again);
	return NULL;
}

static void test_threads(void **state)
{
	struct worker w[4] = { { FIREFOX_UBUNTU, 0 }, { CHROME_WINDOWS, 0 },
			       { SAFARI_IOS, 0 }, { GOOGLEBOT, 0 } };
	pthread_t t[4];

	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker_run,
						&w[i]), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
	}
}

/* ---- rule-file errors ------------------------------------------------- */

static void test_missing_file(void **state)
{
	pex_uaparser *p = (pex_uaparser *)&res; /* must be reset to NULL */

	assert_int_equal(pex_uaparser_load(&p, "/nonexistent/regexes.yaml"),
			 PEX_ENOTFOUND);
	assert_null(p);
	assert_non_null(strstr(pex_error_last(),
			       "/nonexistent/regexes.yaml"));
	assert_int_equal(pex_uaparser_load(&p, "/tmp"), PEX_EIO);
	assert_non_null(strstr(pex_error_last(), "/tmp"));
}

static void test_default_path(void **state)
{
	pex_uaparser *p = NULL;
	struct pex_uaparser_stats st;

	/* NULL means Debian's uap-core file, the same rules as "real". */
	assert_int_equal(pex_uaparser_load(&p, NULL), 0);
	pex_uaparser_stats(p, &st);
	assert_true(st.ua_rules > 100);
	parse_str(p, GOOGLEBOT);
	assert_string_equal(res.browser.family, "Googlebot");
	pex_uaparser_free(p);
	pex_uaparser_stats(NULL, &st);
	assert_int_equal(st.ua_rules, 0);
}

/* Expect load of yaml to fail with code; the message must start with
 * "<path>:<where>" and hold needle. */
static void expect_load_error(const char *yaml, int code, const char *where,
			      const char *needle)
{
	pex_uaparser *p = NULL;
	char *path = NULL;
	char prefix[256];
	int rc = load_text(yaml, &p, &path, 0);

	if (rc != code || strstr(pex_error_last(), needle) == NULL)
		fprintf(stderr, "got %d: %s\n", rc, pex_error_last());
	assert_int_equal(rc, code);
	assert_null(p);
	snprintf(prefix, sizeof(prefix), "%s:%s", path, where);
	assert_memory_equal(pex_error_last(), prefix, strlen(prefix));
	assert_non_null(strstr(pex_error_last(), needle));
	drop_tmp(path);
}

static void test_malformed_yaml(void **state)
{
	/* libyaml's mark gives the line of the broken token. */
	expect_load_error("user_agent_parsers:\n"
			  "  - regex: 'a'\n"
			  "  - regex: 'unterminated\n",
			  PEX_EINVALID, "4:", "quoted scalar");
	expect_load_error("user_agent_parsers:\n"
			  "  - regex: 'a'\n"
			  "   bad: indentation\n",
			  PEX_EINVALID, "3:", "");
	/* Not UTF-8: the reader reports a byte offset. */
	expect_load_error("os_parsers:\n  - regex: '\xff'\n", PEX_EINVALID,
			  " byte offset", "invalid");
	/* Truncated in the middle of a flow mapping: the error is at the
	 * end of the stream, which libyaml places after the last line. */
	expect_load_error("device_parsers: [ { regex: 'a', ", PEX_EINVALID,
			  "2:1:", "flow node");
}

static void test_bad_structure(void **state)
{
	expect_load_error("", PEX_EINVALID, " empty", "empty");
	expect_load_error("- a\n- b\n", PEX_EINVALID, "1:1:", "mapping");
	expect_load_error("foo: 1\n", PEX_EINVALID, "1:1:",
			  "unknown top-level key 'foo'");
	expect_load_error("user_agent_parsers: 3\n", PEX_EINVALID, "1:21:",
			  "list of rules");
	expect_load_error("os_parsers:\n  - 'x'\n", PEX_EINVALID, "2:5:",
			  "mapping");
	expect_load_error("os_parsers:\n  - os_replacement: 'x'\n",
			  PEX_EINVALID, "2:5:", "no regex");
	expect_load_error("os_parsers:\n  - regex: 'x'\n"
			  "    family_replacement: 'y'\n",
			  PEX_EINVALID, "3:5:",
			  "unknown key 'family_replacement' in os_parsers");
	expect_load_error("device_parsers:\n  - regex: 'x'\n"
			  "    regex_flag: 'g'\n",
			  PEX_EINVALID, "3:17:", "regex_flag must be 'i'");
	expect_load_error("device_parsers:\n  - regex: 'x'\n"
			  "    regex: 'y'\n",
			  PEX_EINVALID, "3:5:", "duplicate key regex");
	expect_load_error("device_parsers:\n  - regex: 'x'\n"
			  "    brand_replacement: \"a\\0b\"\n",
			  PEX_EINVALID, "3:24:", "NUL");
	expect_load_error("user_agent_parsers: []\nuser_agent_parsers: []\n",
			  PEX_EINVALID, "2:1:", "duplicate");
}

static void test_invalid_regex(void **state)
{
	/* The third rule is broken; the message points at its regex. */
	expect_load_error("user_agent_parsers:\n"
			  "  - regex: 'ok'\n"
			  "  - regex: '(fine)'\n"
			  "  - regex: 'Foo/(\\d+'\n",
			  PEX_EINVALID, "4:12:", "invalid regex at offset 8");
	expect_load_error("device_parsers:\n"
			  "  - regex: 'a{2,1}'\n",
			  PEX_EINVALID, "2:12:", "invalid regex");
}

static void test_limits(void **state)
{
	pex_uaparser *p = NULL;
	char tmpl[] = "/tmp/pex_uaparser_XXXXXX";
	size_t n = UAP_RULES_MAX + 1;
	size_t cap = 32 + n * 16;
	char *yaml = malloc(cap);
	size_t len;
	int fd;

	/* A sparse file just over the size cap: refused before parsing. */
	fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)UAP_FILE_MAX + 1), 0);
	close(fd);
	assert_int_equal(pex_uaparser_load(&p, tmpl), PEX_ELIMIT);
	assert_null(p);
	assert_non_null(strstr(pex_error_last(), tmpl));
	unlink(tmpl);

	/* One rule too many, refused before any is compiled. */
	assert_non_null(yaml);
	len = (size_t)snprintf(yaml, cap, "os_parsers:\n");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(yaml + len, cap - len,
					"- regex: 'a'\n");
	assert_true(len < cap);
	assert_int_equal(load_text(yaml, &p, NULL, 0), PEX_ELIMIT);
	assert_null(p);
	assert_non_null(strstr(pex_error_last(), ":2:1: os_parsers has"));
	free(yaml);
}

/* ---- replacement semantics on custom rules ---------------------------- */

/* 30 two-byte characters; seven of them overflow a result buffer. */
#define LONG_E "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" \
	"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" \
	"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" \
	"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" \
	"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"

static const char custom_rules[] =
	"user_agent_parsers:\n"
	/* First match wins, even over a more specific later rule. */
	"  - regex: '(Alpha)/(\\d+)\\.(\\d+)'\n"
	"  - regex: '(Alpha)/(\\d+)\\.(\\d+)\\.(\\d+)'\n"
	"    family_replacement: 'never'\n"
	/* $N anywhere, literal '$', unset and missing groups, trimming. */
	"  - regex: '(Beta)(?:-(x))?/(\\d+)'\n"
	"    family_replacement: '  $1 [$2] $ $0 $9 cost $$3  '\n"
	"    v1_replacement: 'v$3'\n"
	"    v2_replacement: '  '\n"
	/* A replacement without groups; versions from groups 1 and 2. */
	"  - regex: 'Gamma (\\d+)\\.(\\d+)'\n"
	"    family_replacement: 'Gamma'\n"
	"    v1_replacement: '$1'\n"
	"    v2_replacement: '$2'\n"
	/* No group at all and no replacement: family falls back. */
	"  - regex: 'Delta'\n"
	/* A value longer than a result buffer, made of 2-byte chars. */
	"  - regex: 'Long'\n"
	"    family_replacement: '"
	LONG_E LONG_E LONG_E LONG_E LONG_E LONG_E LONG_E "X'\n"
	"os_parsers:\n"
	"  - regex: 'Win(95|98|NT)(?: (\\d+)\\.(\\d+))?'\n"
	"    os_replacement: 'Windows $1'\n"
	"device_parsers:\n"
	"  - regex: 'phone-(abc)'\n"
	"    regex_flag: 'i'\n"
	"  - regex: '; (PEDI)_(PLUS)_(W) Build/'\n"
	"    device_replacement: '$1_$2_$3'\n"
	"    brand_replacement: 'Odys'\n"
	"    model_replacement: '$1 $2 $3'\n";

static void test_replacements(void **state)
{
	pex_uaparser *p = NULL;
	int rc = load_text(custom_rules, &p, NULL, 0);

	if (rc != 0)
		fprintf(stderr, "%s\n", pex_error_last());
	assert_int_equal(rc, 0);

	parse_str(p, "Alpha/1.2.3");
	assert_string_equal(res.browser.family, "Alpha");
	assert_string_equal(res.browser.major, "1");
	assert_string_equal(res.browser.minor, "2");
	assert_string_equal(res.browser.patch, "");

	parse_str(p, "Beta/7");
	assert_string_equal(res.browser.family, "Beta [] $ $0  cost $7");
	assert_string_equal(res.browser.major, "v7");
	assert_string_equal(res.browser.minor, "");
	parse_str(p, "Beta-x/7");
	assert_string_equal(res.browser.family, "Beta [x] $ $0  cost $7");

	parse_str(p, "Gamma 4.5");
	assert_string_equal(res.browser.family, "Gamma");
	assert_string_equal(res.browser.major, "4");
	assert_string_equal(res.browser.minor, "5");

	parse_str(p, "Delta");
	assert_string_equal(res.browser.family, "Other");

	parse_str(p, "Long");
	assert_true(res.flags & PEX_UA_FIELD_TRUNCATED);
	assert_true(strlen(res.browser.family) < PEX_UA_FIELD_MAX);
	assert_true(strlen(res.browser.family) >= PEX_UA_FIELD_MAX - 2);
	assert_true(utf8_valid(res.browser.family));

	parse_str(p, "x Win95 y");
	assert_string_equal(res.os.family, "Windows 95");
	assert_string_equal(res.os.major, "");
	parse_str(p, "WinNT 6.1");
	assert_string_equal(res.os.family, "Windows NT");
	assert_string_equal(res.os.major, "6");
	assert_string_equal(res.os.minor, "1");

	/* regex_flag 'i'; family and model default to group 1. */
	parse_str(p, "PHONE-ABC");
	assert_string_equal(res.device.family, "ABC");
	assert_string_equal(res.device.brand, "");
	assert_string_equal(res.device.model, "ABC");
	/* Without the flag matching is case sensitive. */
	parse_str(p, "; pedi_PLUS_W Build/");
	assert_string_equal(res.device.family, "Other");
	/* The specification's own example. */
	parse_str(p, "Mozilla/5.0 (Linux; U; Android 4.2.2; de-de; "
		  "PEDI_PLUS_W Build/JDQ39) AppleWebKit/534.30");
	assert_string_equal(res.device.family, "PEDI_PLUS_W");
	assert_string_equal(res.device.brand, "Odys");
	assert_string_equal(res.device.model, "PEDI PLUS W");
	pex_uaparser_free(p);
}

/* Catastrophic backtracking is cut off by the match limit, with and
 * without JIT; the call still succeeds and says so. */
static void limit_case(unsigned opts)
{
	pex_uaparser *p = NULL;
	char ua[PEX_UA_INPUT_MAX];

	assert_int_equal(load_text("user_agent_parsers:\n"
				   "  - regex: '^(a+)+$'\n"
				   "    family_replacement: 'Evil'\n"
				   "  - regex: '(b)'\n"
				   "    family_replacement: 'After'\n",
				   &p, NULL, opts), 0);
	memset(ua, 'a', sizeof(ua));
	ua[sizeof(ua) - 1] = 'b';
	assert_int_equal(pex_uaparser_parse(p, NULL, ua, sizeof(ua), &res),
			 0);
	assert_true(res.flags & PEX_UA_LIMIT_HIT);
	/* The rule that hit the limit counts as not matching. */
	assert_string_equal(res.browser.family, "After");
	pex_uaparser_free(p);
}

static void test_match_limit(void **state)
{
	limit_case(0);
	limit_case(UAP_LOAD_NO_JIT);
}

/* A lazy parser answers as a full one, before and after its JIT code
 * is added; adding it twice changes nothing. */
static void test_lazy_then_jit(void **state)
{
	static struct pex_ua_result a;
	pex_uaparser *p = NULL;
	struct pex_uaparser_stats st, full;
	const char *uas[] = { FIREFOX_UBUNTU, CHROME_WINDOWS, SAFARI_IOS,
			      GOOGLEBOT, "curl/8.4.0", "" };
	int round;

	(void)state;
	pex_uaparser_stats(real, &full);
	assert_int_equal(pex_uaparser_load_lazy(&p, regexes_path()), 0);
	pex_uaparser_stats(p, &st);
	assert_int_equal(st.jit_compiled, 0);
	assert_int_equal(st.ua_rules, full.ua_rules);
	for (round = 0; round < 3; round++) {
		for (size_t i = 0; i < sizeof(uas) / sizeof(uas[0]); i++) {
			parse_str(p, uas[i]);
			a = res;
			parse_str(real, uas[i]);
			assert_memory_equal(&a, &res, sizeof(a));
		}
		assert_int_equal(pex_uaparser_jit(p), 0);
		pex_uaparser_stats(p, &st);
		/* as many patterns got JIT code as a full load gives */
		assert_int_equal(st.jit_compiled, full.jit_compiled);
	}
	assert_int_equal(pex_uaparser_jit(NULL), 0);
	pex_uaparser_free(p);
}

static void test_no_jit_same_answers(void **state)
{
	static struct pex_ua_result a;
	pex_uaparser *p = NULL;
	struct pex_uaparser_stats st;
	const char *uas[] = { FIREFOX_UBUNTU, CHROME_WINDOWS, SAFARI_IOS,
			      GOOGLEBOT, "curl/8.4.0" };

	assert_int_equal(uap_load_opts(&p, regexes_path(), UAP_LOAD_NO_JIT),
			 0);
	pex_uaparser_stats(p, &st);
	assert_int_equal(st.jit_compiled, 0);
	assert_true(st.ua_rules > 100 && st.os_rules > 100 &&
		    st.device_rules > 100);
	for (size_t i = 0; i < sizeof(uas) / sizeof(uas[0]); i++) {
		parse_str(p, uas[i]);
		a = res;
		parse_str(real, uas[i]);
		assert_memory_equal(&a, &res, sizeof(a));
	}
	pex_uaparser_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_firefox_ubuntu),
		cmocka_unit_test(test_chrome_windows),
		cmocka_unit_test(test_safari_ios),
		cmocka_unit_test(test_curl),
		cmocka_unit_test(test_googlebot),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_non_utf8),
		cmocka_unit_test(test_one_megabyte),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_scratch),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_default_path),
		cmocka_unit_test(test_malformed_yaml),
		cmocka_unit_test(test_bad_structure),
		cmocka_unit_test(test_invalid_regex),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_replacements),
		cmocka_unit_test(test_match_limit),
		cmocka_unit_test(test_lazy_then_jit),
		cmocka_unit_test(test_no_jit_same_answers),
	};

	return cmocka_run_group_tests(tests, setup_real, teardown_real);
}
