/*
 * Every line of every file in $PEX_CORPUS/access_logs/ through the access
 * log parser, with the format each file was written in.
 *
 * How the expected counts were established: each file was read by eye
 * (cat -A) to pick its format; then the lines were counted by a separate
 * Python script, not by this parser: one anchored regular expression per
 * format written from the Apache/nginx definitions (quoted fields as
 * "(?:[^"\\]|\\.)*", unquoted ones as [^ ]*, the time as
 * \[\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\], numbers as \d+|-),
 * a line being valid when it matches and holds no NUL, blank when it is
 * empty once "\r" is dropped. The figures below are that script's output,
 * and they agree with the hand reading of the small files noted per row:
 * comment lines ("# failJSON ...") and nginx error-log lines are bad,
 * lines with fields the chosen format lacks or adds are bad.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collectors/access_log/logformat.h"
#include "portex/error.h"

#define CORPUS_FILE_MAX (16u << 20) /* largest corpus file we read */

struct expect {
	const char *file;
	const char *preset;  /* or NULL and syntax + text */
	enum pex_logformat_syntax syntax;
	const char *text;
	int valid, bad, blank;
};

/* matomo's "common_complete": combined with the virtual host in front
 * and no port, as matomo-log-analytics and fail2ban's gh-1594 lines. */
#define VHOST_COMBINED_NOPORT \
	"%v %h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\""
#define NGINX_XFF \
	"$remote_addr - $remote_user [$time_local] \"$request\" $status " \
	"$body_bytes_sent \"$http_referer\" \"$http_user_agent\" " \
	"\"$http_x_forwarded_for\""

static const struct expect expects[] = {
	/* plain combined, all good */
	{"basjes_hackers-access.log", "combined", 0, NULL, 3456, 0, 0},
	/* filebeat's test cases: common lines, trailing "-", vhost */
	{"beats_apache_test.log", "combined", 0, NULL, 2, 5, 0},
	/* last line has a vhost in front */
	{"beats_nginx_access.log", "nginx", 0, NULL, 12, 1, 0},
	/* XFF chains in front of the address, one extra "-" field */
	{"beats_nginx_test.log", "nginx", 0, NULL, 2, 5, 0},
	/* line 8899 ends inside the user agent (no closing quote) */
	{"elastic_apache_logs.log", "combined", 0, NULL, 9999, 1, 0},
	/* a mix of common, combined, X-Forwarded-For="..", vhost:port */
	{"elastic_integrations_apache_test-access-basic.log", "combined", 0,
	 NULL, 4, 13, 0},
	/* 5 bad: four comment lines and a vhost line */
	{"fail2ban/apache-badbots.log", "combined", 0, NULL, 3, 5, 3},
	/* 2 Apache 2.2 lines with an empty zone "[...:44 ]", 4 comments */
	{"fail2ban/apache-fakegooglebot.log", NULL, PEX_LOGFORMAT_APACHE,
	 VHOST_COMBINED_NOPORT, 1, 6, 0},
	{"fail2ban/nginx-bad-request.log", NULL, PEX_LOGFORMAT_NGINX,
	 NGINX_XFF, 8, 8, 7},
	/* 8 access lines; 13 comments and 8 error-log lines are bad */
	{"fail2ban/nginx-botsearch.log", NULL, PEX_LOGFORMAT_NGINX, NGINX_XFF,
	 8, 21, 14},
	/* CRLF file; 10 comment lines */
	{"fail2ban/traefik-auth.log", "traefik", 0, NULL, 6, 10, 7},
	/* line 2 lacks ident and user */
	{"lnav_bad_access_log.0.log", "combined", 0, NULL, 2, 1, 0},
	{"matomo/common.log", "common", 0, NULL, 1, 0, 0},
	{"matomo/common_complete.log", NULL, PEX_LOGFORMAT_APACHE,
	 VHOST_COMBINED_NOPORT, 1, 0, 0},
	/* Big5 bytes inside the quoted request */
	{"matomo/common_encoding_big5.log", NULL, PEX_LOGFORMAT_APACHE,
	 VHOST_COMBINED_NOPORT, 1, 0, 0},
	{"matomo/common_vhost.log", NULL, PEX_LOGFORMAT_APACHE,
	 "%v %h %l %u %t \"%r\" %>s %b", 1, 0, 0},
	/* second line has no final newline */
	{"matomo/gandi.log", NULL, PEX_LOGFORMAT_APACHE,
	 "%v %h %l %u %t (%T s) \"%r\" %>s %b \"%{Referer}i\" "
	 "\"%{User-Agent}i\"", 2, 0, 0},
	/* one comment line, one blank, last line without newline */
	{"matomo/logs_to_tests.log", "combined", 0, NULL, 4, 1, 1},
	{"matomo/ncsa_extended.log", "combined", 0, NULL, 1, 0, 0},
	{"matomo/static_ignores.log", NULL, PEX_LOGFORMAT_APACHE,
	 VHOST_COMBINED_NOPORT, 4, 0, 0},
};

static char *corpus_dir;

static char *read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	long sz;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	sz = ftell(fp);
	assert_true(sz >= 0 && (unsigned long)sz <= CORPUS_FILE_MAX);
	rewind(fp);
	buf = malloc((size_t)sz + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)sz, fp), (size_t)sz);
	fclose(fp);
	*len = (size_t)sz;
	return buf;
}

/* Count one file; returns how many of the three counts are off. The
 * asserts on the counts come after everything is freed. */
static int check_file(const struct expect *x)
{
	struct pex_logformat *fmt = NULL;
	struct pex_logrec rec;
	char path[4096], *data, *scratch;
	size_t len, pos = 0;
	int valid = 0, badn = 0, blank = 0, rc;

	snprintf(path, sizeof(path), "%s/%s", corpus_dir, x->file);
	if (x->preset)
		rc = pex_logformat_preset(&fmt, x->preset);
	else
		rc = pex_logformat_compile(&fmt, x->syntax, x->text);
	if (rc < 0)
		fail_msg("%s: %s", x->file, pex_error_last());
	data = read_file(path, &len);
	scratch = malloc(len + 1);
	assert_non_null(scratch);
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - data) + 1 : len;
		enum pex_logline_status st;

		st = pex_logline_parse(fmt, data + pos, end - pos, &rec,
				       scratch, len + 1);
		if (st == PEX_LOGLINE_OK) {
			valid++;
			/* every valid line here has a time and a status */
			assert_true(rec.flags & PEX_LOGREC_HAS_TIME);
			assert_true(rec.flags & PEX_LOGREC_HAS_STATUS);
			assert_true(rec.status >= 100 && rec.status <= 599);
		} else if (st == PEX_LOGLINE_EMPTY) {
			blank++;
		} else {
			badn++;
			assert_true(rec.column >= 1);
			assert_non_null(rec.detail);
		}
		pos = end;
	}
	free(scratch);
	free(data);
	pex_logformat_free(fmt);
	printf("%s: %d valid, %d bad, %d blank%s\n", x->file, valid, badn,
	       blank, valid == x->valid && badn == x->bad &&
	       blank == x->blank ? "" : "  <-- expected other counts");
	return (valid != x->valid) + (badn != x->bad) + (blank != x->blank);
}

static void test_corpus(void **state)
{
	int wrong = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(expects) / sizeof(expects[0]); i++)
		wrong += check_file(&expects[i]);
	assert_int_equal(wrong, 0);
}

/* The biggest file holds real lines: spot-check one parsed record. */
static void test_corpus_spot(void **state)
{
	struct pex_logformat *fmt = NULL;
	struct pex_logrec rec;
	char path[4096], *data, *scratch;
	size_t len;
	const char *nl;

	(void)state;
	snprintf(path, sizeof(path), "%s/elastic_apache_logs.log",
		 corpus_dir);
	assert_int_equal(pex_logformat_preset(&fmt, "combined"), 0);
	data = read_file(path, &len);
	scratch = malloc(len);
	assert_non_null(scratch);
	nl = memchr(data, '\n', len);
	assert_non_null(nl);
	assert_int_equal(pex_logline_parse(fmt, data, (size_t)(nl - data) + 1,
					   &rec, scratch, len),
			 PEX_LOGLINE_OK);
	/* 83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presen... */
	assert_int_equal(rec.client.len, 12);
	assert_memory_equal(rec.client.ptr, "83.149.9.216", 12);
	assert_int_equal(rec.time, 1431857103);
	assert_int_equal(rec.status, 200);
	assert_int_equal(rec.bytes, 203023);
	assert_memory_equal(rec.method.ptr, "GET", 3);
	free(scratch);
	free(data);
	pex_logformat_free(fmt);
}

int main(void)
{
	const char *c = getenv("PEX_CORPUS");
	static char dir[4096];
	FILE *probe;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_corpus_spot),
	};

	snprintf(dir, sizeof(dir), "%s/access_logs", c ? c : "");
	probe = c ? fopen(dir, "r") : NULL;
	if (!probe) {
		printf("logformat_corpus_test: skipped: corpus folder %s "
		       "is absent (PEX_CORPUS unset or shared/corpus "
		       "missing)\n", dir);
		return 77;
	}
	fclose(probe);
	corpus_dir = dir;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
