/* Unit tests for engine/identity.c: parsing "type:value[@window]",
 * normalising values, identity sets and matched_by. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "portex/engine.h"
#include "portex/error.h"
#include "portex/mapper.h"

/* 2026-01-03T10:00:00Z */
#define T0 1767434400LL

static void parse_ok(const char *text, struct pex_identity *id)
{
	if (pex_identity_parse(id, text))
		fail_msg("\"%s\" refused: %s", text, pex_error_last());
}

/* Parse text that must be refused; returns the message. */
static const char *parse_bad(const char *text)
{
	struct pex_identity id;
	int rc = pex_identity_parse(&id, text);

	if (rc != PEX_EINVALID)
		fail_msg("\"%s\" gave rc %d (value %s)", text, rc,
			 rc ? "-" : id.value);
	/* nothing is left allocated in id on failure */
	assert_null(id.type);
	assert_null(id.value);
	return pex_error_last();
}

static void test_strong_identities(void **state)
{
	struct pex_identity id;

	(void)state;
	parse_ok("email:Alice@Example.COM", &id);
	assert_string_equal(id.type, "email");
	assert_string_equal(id.value, "alice@example.com");
	assert_false(id.has_window);
	assert_null(id.from_source);
	pex_identity_clear(&id);
	assert_null(id.type);

	parse_ok("email:  bob@example.com \t", &id);
	assert_string_equal(id.value, "bob@example.com");
	pex_identity_clear(&id);

	parse_ok("phone:+44 (1534) 000-000", &id);
	assert_string_equal(id.type, "phone");
	assert_string_equal(id.value, "+441534000000");
	pex_identity_clear(&id);

	/* a + later in the number is punctuation, not a prefix */
	parse_ok("phone:01534 + 000", &id);
	assert_string_equal(id.value, "01534000");
	pex_identity_clear(&id);

	/* other types keep case; only surrounding space goes */
	parse_ok("customer_id: C-17 ", &id);
	assert_string_equal(id.type, "customer_id");
	assert_string_equal(id.value, "C-17");
	pex_identity_clear(&id);

	/* a colon in the value belongs to the value */
	parse_ok("username:a:b", &id);
	assert_string_equal(id.value, "a:b");
	pex_identity_clear(&id);

	/* non-ASCII text is fine */
	parse_ok("username:Ren\xC3\xA9", &id);
	assert_string_equal(id.value, "Ren\xC3\xA9");
	pex_identity_clear(&id);
	pex_identity_clear(NULL);
}

static void test_ip_windows(void **state)
{
	struct pex_identity id;

	(void)state;
	parse_ok("ip:203.0.113.7@2026-01-03T10:00:00Z/2026-01-03T11:00:00Z",
		 &id);
	assert_string_equal(id.type, "ip");
	assert_string_equal(id.value, "203.0.113.7");
	assert_true(id.has_window);
	assert_int_equal(id.not_before, T0);
	assert_int_equal(id.not_after, T0 + 3600);
	pex_identity_clear(&id);

	parse_ok("ip:203.0.113.7@2026-01-03T10:00:00Z/PT30M", &id);
	assert_int_equal(id.not_before, T0);
	assert_int_equal(id.not_after, T0 + 1800);
	pex_identity_clear(&id);

	parse_ok("ip:203.0.113.7@2026-01-03T11:00:00+01:00/P1DT2H", &id);
	assert_int_equal(id.not_before, T0);
	assert_int_equal(id.not_after, T0 + 86400 + 7200);
	pex_identity_clear(&id);
	parse_ok("ip:203.0.113.7@2026-01-03T05:00:00-0500/"
		 "2026-01-03T11:00:00z", &id);
	assert_int_equal(id.not_before, T0);
	assert_int_equal(id.not_after, T0 + 3600);
	pex_identity_clear(&id);
	parse_ok("ip:203.0.113.7@2026-01-03T10:00:00Z /PT1H", &id);
	assert_int_equal(id.not_after, T0 + 3600);
	pex_identity_clear(&id);
	parse_ok("ip:203.0.113.7@2026-01-03 /2026-01-04", &id);
	pex_identity_clear(&id);

	/* a zero-length window is a window */
	parse_ok("ip:203.0.113.7@2026-01-03/2026-01-03", &id);
	assert_int_equal(id.not_before, id.not_after);
	pex_identity_clear(&id);

	/* IPv6 in canonical form; IPv4-mapped becomes IPv4 */
	parse_ok("ip:2001:DB8:0::1@2026-01-03T10:00:00Z/PT1H", &id);
	assert_string_equal(id.value, "2001:db8::1");
	pex_identity_clear(&id);
	parse_ok("ip:2001:0db8:0000:0000:0000:0000:0000:0001"
		 "@2026-01-03T10:00:00Z/PT1H", &id);
	assert_string_equal(id.value, "2001:db8::1");
	pex_identity_clear(&id);
	parse_ok("ip:::ffff:198.51.100.9@2026-01-03T10:00:00Z/PT1H", &id);
	assert_string_equal(id.value, "198.51.100.9");
	pex_identity_clear(&id);
	parse_ok("ip:::FFFF:C633:6409@2026-01-03T10:00:00Z/PT1H", &id);
	assert_string_equal(id.value, "198.51.100.9");
	pex_identity_clear(&id);
	parse_ok("ip: 10.0.0.1 @2026-01-03T10:00:00Z/PT1H", &id);
	assert_string_equal(id.value, "10.0.0.1");
	pex_identity_clear(&id);
}

static void test_ip_refused(void **state)
{
	const char *m;

	(void)state;
	/* an IP alone would match everyone behind it */
	m = parse_bad("ip:203.0.113.7");
	assert_non_null(strstr(m, "needs a time window"));
	m = parse_bad("ip:999.0.113.7@2026-01-03T10:00:00Z/PT1H");
	assert_non_null(strstr(m, "is not an IP address"));
	m = parse_bad("ip:example.com@2026-01-03T10:00:00Z/PT1H");
	assert_non_null(strstr(m, "is not an IP address"));
	parse_bad("ip:1.2.3@2026-01-03T10:00:00Z/PT1H");
	parse_bad("ip:01.2.3.4@2026-01-03T10:00:00Z/PT1H");
	parse_bad("ip:fe80::1%eth0@2026-01-03T10:00:00Z/PT1H");
	parse_bad("ip:2001:db8:::1@2026-01-03T10:00:00Z/PT1H");
	/* windows */
	m = parse_bad("ip:203.0.113.7@2026-01-03T10:00:00Z");
	assert_non_null(strstr(m, "START/END"));
	m = parse_bad("ip:203.0.113.7@");
	assert_non_null(strstr(m, "START/END"));
	m = parse_bad("ip:203.0.113.7@2026-02-30T10:00:00Z/PT1H");
	assert_non_null(strstr(m, "window start"));
	m = parse_bad("ip:203.0.113.7@2026-01-03T10:00:00Z/PT1X");
	assert_non_null(strstr(m, "window length"));
	m = parse_bad("ip:203.0.113.7@2026-01-03T10:00:00Z/tomorrow");
	assert_non_null(strstr(m, "window end"));
	/* a time without its zone could be hours off on a shared address */
	m = parse_bad("ip:203.0.113.7@2026-01-03T10:00:00/PT1H");
	assert_non_null(strstr(m, "give each time with its zone"));
	m = parse_bad("ip:203.0.113.7@2026-01-03T10:00:00Z/"
		      "2026-01-03 11:00:00");
	assert_non_null(strstr(m, "give each time with its zone"));
	parse_bad("ip:203.0.113.7@2026-01-03 10:00:00/2026-01-03T11:00:00Z");
	/* blanks around a time are the parser's to skip, not a zone */
	parse_bad("ip:203.0.113.7@      2026-01-03T10:00:00/PT2H");
	m = parse_bad("ip:203.0.113.7@2026-01-03T10:00:00Z/"
		      "2026-01-03T09:00:00Z");
	assert_non_null(strstr(m, "ends before it starts"));
	parse_bad("ip:203.0.113.7@2026-01-03T10:00:00Z/PT1H/PT1H");
}

static void test_bad_identities(void **state)
{
	char big[2048];
	const char *m;

	(void)state;
	m = parse_bad("alice@example.com");
	assert_non_null(strstr(m, "TYPE:VALUE"));
	parse_bad(":alice@example.com");
	parse_bad("Email:alice@example.com");
	parse_bad("e-mail:alice@example.com");
	parse_bad("1email:alice@example.com");
	parse_bad("emailaddressofthesubjectwhoasked1:x"); /* 33 chars */
	m = parse_bad("email:");
	assert_non_null(strstr(m, "has no value"));
	m = parse_bad("email:   ");
	assert_non_null(strstr(m, "has no value"));
	/* a phone with no digits normalises to nothing */
	m = parse_bad("phone:n/a");
	assert_non_null(strstr(m, "has no value"));
	/* over-long */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "email:", 6);
	m = parse_bad(big);
	assert_non_null(strstr(m, "longer than"));
	/* exactly at the limit is fine */
	big[1024] = '\0';
	{
		struct pex_identity id;

		parse_ok(big, &id);
		assert_int_equal(strlen(id.value), 1024 - 6);
		pex_identity_clear(&id);
	}
}

/* Values that are not valid UTF-8 or hold control characters are refused
 * before anything quotes them back in a message. */
static void test_unclean_refused(void **state)
{
	static const char *const bad[] = {
		"email:alice\xFF@example.com",
		"email:\xC0\xAF@example.com",
		"username:\xED\xA0\x80",
		"username:a\xE2\x82",
		"email:alice\x01@example.com",
		"email:alice\x1B[2J@example.com",
		"customer_id:C\x7F" "17",
		"customer_id:C\t17",
		"customer_id:C\n17",
		"email:alice\r\n@example.com",
		"username:\xEF\xBF\xBF",
		"ip:203.0.113.7\x01@2026-01-03T10:00:00Z/PT1H",
		"ip:203.0.113.7@2026-01-03T10:00:00Z/PT1H\x02",
		"em\x80il:x",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *m = parse_bad(bad[i]);

		/* the message never carries the offending bytes */
		assert_non_null(m);
		assert_null(strchr(m, '\x01'));
		assert_null(strchr(m, '\xFF'));
		assert_null(strchr(m, '\x1B'));
	}
	assert_non_null(strstr(parse_bad(bad[0]), "not valid UTF-8"));
	assert_non_null(strstr(parse_bad(bad[7]), "control characters"));
	/* surrounding white space, including a final newline, is trimmed
	 * rather than refused */
	{
		struct pex_identity id;

		parse_ok("email:alice@example.com\n", &id);
		assert_string_equal(id.value, "alice@example.com");
		pex_identity_clear(&id);
	}
}

static void test_normalize(void **state)
{
	char *s;

	(void)state;
	s = pex_identity_normalize("email", " Alice@EXAMPLE.com\n", 19);
	assert_string_equal(s, "alice@example.com");
	free(s);
	/* len is respected: no NUL needed */
	s = pex_identity_normalize("email", "ABCDEF", 3);
	assert_string_equal(s, "abc");
	free(s);
	s = pex_identity_normalize("phone", "+1 (555) 010-9999 ext", 21);
	assert_string_equal(s, "+15550109999");
	free(s);
	s = pex_identity_normalize("ip", "2001:DB8:0::1", 13);
	assert_string_equal(s, "2001:db8::1");
	free(s);
	s = pex_identity_normalize("ip", "::ffff:10.1.2.3", 15);
	assert_string_equal(s, "10.1.2.3");
	free(s);
	/* not an address: kept as given (trimmed) so it never matches a
	 * real one by accident */
	s = pex_identity_normalize("ip", " not-an-ip ", 11);
	assert_string_equal(s, "not-an-ip");
	free(s);
	s = pex_identity_normalize("ip", "1111:2222:3333:4444:5555:6666:"
				   "7777:8888:9999", 44);
	assert_string_equal(s, "1111:2222:3333:4444:5555:6666:7777:8888:9999");
	free(s);
	s = pex_identity_normalize("customer_id", "  C-17  ", 8);
	assert_string_equal(s, "C-17");
	free(s);
	s = pex_identity_normalize("email", "   ", 3);
	assert_string_equal(s, "");
	free(s);
	s = pex_identity_normalize("email", "", 0);
	assert_string_equal(s, "");
	free(s);
}

static void test_sets_and_matched_by(void **state)
{
	struct pex_identity_set set = { 0 };
	struct pex_identity id;
	const struct pex_identity *f;
	json_t *mb;

	(void)state;
	parse_ok("email:a@example.com", &id);
	assert_int_equal(pex_identity_set_add(&set, &id), 0);
	pex_identity_clear(&id);
	parse_ok("ip:203.0.113.7@2026-01-03T10:00:00Z/PT30M", &id);
	id.from_source = strdup("crm");
	id.from_record = strdup("crm:17");
	assert_int_equal(pex_identity_set_add(&set, &id), 0);
	pex_identity_clear(&id);
	assert_int_equal(set.count, 2);

	f = pex_identity_find(&set, "ip");
	assert_non_null(f);
	assert_string_equal(f->from_source, "crm");
	assert_string_equal(f->from_record, "crm:17");
	assert_null(pex_identity_find(&set, "phone"));
	assert_null(pex_identity_find(NULL, "email"));

	mb = pex_matched_by(f);
	assert_string_equal(json_string_value(json_object_get(mb, "type")),
			    "ip");
	assert_string_equal(json_string_value(json_object_get(mb, "value")),
			    "203.0.113.7");
	assert_string_equal(json_string_value(json_object_get(mb, "window")),
			    "2026-01-03T10:00:00Z/2026-01-03T10:30:00Z");
	json_decref(mb);
	mb = pex_matched_by(pex_identity_find(&set, "email"));
	assert_null(json_object_get(mb, "window"));
	assert_int_equal(json_object_size(mb), 2);
	json_decref(mb);

	pex_identity_set_clear(&set);
	assert_int_equal(set.count, 0);
	assert_null(set.items);
	pex_identity_set_clear(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strong_identities),
		cmocka_unit_test(test_ip_windows),
		cmocka_unit_test(test_ip_refused),
		cmocka_unit_test(test_bad_identities),
		cmocka_unit_test(test_unclean_refused),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_sets_and_matched_by),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
