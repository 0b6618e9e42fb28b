/*
 * The http_json collector driven through the engine (pex_source_new /
 * pex_source_collect) against tests/tracker/replay_server.py, a stand-in
 * tracker started per test on a free loopback port. The real Zammad and
 * Freshdesk responses in $PEX_CORPUS/tickets/ go through their presets;
 * hostile bodies and server faults go through the generic definition.
 * Every record is checked against schemas/v1/ticket.schema.json.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "collectors/http_json/hj.h"
#include "core/buf.h"
#include "model/schemas.h"
#include "portex/engine.h"
#include "portex/error.h"

static char corpus[4096];     /* $PEX_CORPUS/tickets */
static char server_py[4096];  /* tests/tracker/replay_server.py */
static pex_schema *ticket_schema;

/* ---- the replay server -------------------------------------------------- */

struct server {
	pid_t pid;
	int port;
	char scenario[64];
};

/* The server of the running test, stopped by teardown even when an
 * assertion ends the test early. */
static struct server live;

static void server_start(struct server *s, const char *scenario_json)
{
	int fds[2];
	FILE *f, *in;
	char line[64];
	int fd;

	snprintf(s->scenario, sizeof(s->scenario), "%s",
		 "/tmp/pex_hj_scenario_XXXXXX");
	fd = mkstemp(s->scenario);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(scenario_json, f);
	fclose(f);
	assert_int_equal(pipe(fds), 0);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		/* never outlive the test, whatever happens to it */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execlp("python3", "python3", server_py, "--scenario",
		       s->scenario, "--corpus", corpus, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	in = fdopen(fds[0], "r");
	assert_non_null(in);
	assert_non_null(fgets(line, sizeof(line), in));
	fclose(in);
	live = *s;
	assert_int_equal(sscanf(line, "PORT %d", &s->port), 1);
}

static void server_stop(struct server *s)
{
	int status;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	waitpid(s->pid, &status, 0);
	unlink(s->scenario);
	s->pid = 0;
	live.pid = 0;
}

static int teardown(void **state)
{
	(void)state;
	if (live.pid > 0)
		server_stop(&live);
	return 0;
}

static size_t to_buf(char *d, size_t size, size_t n, void *ud)
{
	return pex_buf_append(ud, d, size * n) ? 0 : size * n;
}

/* The requests the server saw: new array of {method, path, query,
 * headers}. */
static json_t *server_log(const struct server *s)
{
	struct pex_buf b = PEX_BUF_INIT(1 << 24);
	CURL *c = curl_easy_init();
	char url[128];
	json_t *log;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/__log", s->port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, to_buf);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_cleanup(c);
	log = json_loadb(b.data, b.len, 0, NULL);
	pex_buf_free(&b);
	assert_non_null(log);
	return log;
}

static size_t count_path(const json_t *log, const char *path)
{
	size_t i, n = 0;

	for (i = 0; i < json_array_size(log); i++)
		if (!strcmp(json_string_value(json_object_get(
			    json_array_get(log, i), "path")), path))
			n++;
	return n;
}

/* ---- running the collector ---------------------------------------------- */

struct run {
	json_t *records;
	json_t *warnings;
	int rc_new;
	int rc_collect;
	char err[2048];
};

static int sink(void *data, enum pex_record_kind kind, json_t *rec)
{
	struct run *r = data;

	assert_int_equal(kind, PEX_REC_TICKET);
	return json_array_append_new(r->records, rec);
}

static void check_schema(const json_t *rec)
{
	json_t *copy = json_deep_copy(rec);
	char id[1100];

	snprintf(id, sizeof(id), "tracker:%s",
		 json_string_value(json_object_get(rec, "id")));
	json_object_set_new(copy, "id", json_string(id));
	json_object_set_new(copy, "source", json_string("tracker"));
	if (pex_schema_validate(ticket_schema, copy, PEX_SCHEMA_FIRST_ERROR,
				NULL, NULL) != 0) {
		char *s = json_dumps(copy, JSON_COMPACT);

		fail_msg("record fails ticket.schema.json: %s", s);
	}
	json_decref(copy);
}

/* options: JSON text; base_url is set to the server. ids: NULL-ended
 * "type:value" list. */
static void run(struct run *r, const struct server *s, const char *options,
		const char *const *ids)
{
	struct pex_identity_set set = { 0 };
	struct pex_source *src = NULL;
	json_t *opts = json_loads(options, 0, NULL);
	char base[64];
	size_t i;

	memset(r, 0, sizeof(*r));
	r->records = json_array();
	assert_non_null(opts);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d",
		 s ? s->port : 1);
	if (!json_object_get(opts, "base_url"))
		json_object_set_new(opts, "base_url", json_string(base));
	for (i = 0; ids && ids[i]; i++) {
		struct pex_identity id = { 0 };

		assert_int_equal(pex_identity_parse(&id, ids[i]), 0);
		assert_int_equal(pex_identity_set_add(&set, &id), 0);
		pex_identity_clear(&id);
	}
	r->rc_new = pex_source_new(&src, "tracker", "http_json", opts, NULL);
	if (r->rc_new) {
		snprintf(r->err, sizeof(r->err), "%s", pex_error_last());
		goto cleanup;
	}
	r->rc_collect = pex_source_collect(src, &set, sink, r);
	if (r->rc_collect)
		snprintf(r->err, sizeof(r->err), "%s", pex_error_last());
	r->warnings = pex_source_warnings(src);
	for (i = 0; i < json_array_size(r->records); i++)
		check_schema(json_array_get(r->records, i));
cleanup:
	pex_source_free(src);
	pex_identity_set_clear(&set);
	json_decref(opts);
}

static void run_free(struct run *r)
{
	json_decref(r->records);
	json_decref(r->warnings);
}

static const char *str(const json_t *v, const char *ptr)
{
	const json_t *x = hj_pointer(v, ptr);

	if (!json_is_string(x))
		fail_msg("no string at %s", ptr);
	return json_string_value(x);
}

static int warned(const struct run *r, const char *needle)
{
	for (size_t i = 0; i < json_array_size(r->warnings); i++)
		if (strstr(str(json_array_get(r->warnings, i), "/message"),
			   needle))
			return 1;
	return 0;
}

#define assert_contains(hay, needle)                                       \
	do {                                                               \
		if (!strstr((hay), (needle)))                              \
			fail_msg("'%s' not in '%s'", (needle), (hay));     \
	} while (0)

/* ---- the Zammad preset on the corpus ------------------------------------ */

static const char zammad_routes[] =
	"{\"routes\": ["
	"{\"path\": \"/api/v1/users/search\","
	" \"file\": \"zammad/zammad_api_users_list_expand.json\","
	" \"require_header\": {\"Authorization\": \"Token token=s3cr3t\"}},"
	"{\"path\": \"/api/v1/tickets/search\","
	" \"file\": \"zammad/zammad_api_tickets_list_expand.json\"},"
	"{\"path\": \"/api/v1/ticket_articles/by_ticket/1\", \"file\":"
	" \"zammad/docs_examples/"
	"api_ticket_articles_01_list_articles_by_ticket.json\"}]}";

static const char zammad_opts[] =
	"{\"preset\": \"zammad\", \"auth\": \"header\","
	" \"auth_header\": \"Authorization\","
	" \"auth_token\": \"Token token=${PEX_HJ_TEST_TOKEN}\"}";

static void test_zammad_corpus(void **state)
{
	static const char *const ids[] = { "email:Nicole.Braun@zammad.org",
					   NULL };
	struct server s;
	struct run r;
	const json_t *t, *m0, *m1;
	json_t *log;

	(void)state;
	setenv("PEX_HJ_TEST_TOKEN", "s3cr3t", 1);
	server_start(&s, zammad_routes);
	run(&r, &s, zammad_opts, ids);
	log = server_log(&s);
	server_stop(&s);
	assert_int_equal(r.rc_new, 0);
	if (r.rc_collect)
		fail_msg("collect: %s", r.err);
	assert_int_equal(json_array_size(r.records), 1);
	t = json_array_get(r.records, 0);
	/* values as zammad_api_tickets_list_expand.json has them */
	assert_string_equal(str(t, "/id"), "1");
	assert_string_equal(str(t, "/number"), "77001");
	assert_string_equal(str(t, "/title"), "Welcome to Zammad!");
	assert_string_equal(str(t, "/status"), "new");
	assert_string_equal(str(t, "/priority"), "2 normal");
	assert_string_equal(str(t, "/requester"), "nicole.braun@zammad.org");
	assert_string_equal(str(t, "/assignee"), "-");
	assert_string_equal(str(t, "/created_at"), "2025-05-13T08:37:16Z");
	assert_string_equal(str(t, "/updated_at"), "2025-05-13T08:37:16Z");
	assert_null(json_object_get(t, "closed_at"));
	assert_string_equal(str(t, "/matched_by/type"), "email");
	assert_string_equal(str(t, "/matched_by/value"),
			    "nicole.braun@zammad.org");
	/* unmapped members kept; nested ones as compact JSON text */
	assert_string_equal(str(t, "/extra/organization"),
			    "Zammad Foundation");
	assert_string_equal(str(t, "/extra/create_article_sender"),
			    "Customer");
	assert_string_equal(str(t, "/extra/article_ids"), "[1]");
	assert_string_equal(str(t, "/extra/preferences"), "{}");
	assert_int_equal(json_integer_value(hj_pointer(t,
				"/extra/customer_id")), 2);
	assert_true(json_is_null(hj_pointer(t, "/extra/note")));
	assert_null(hj_pointer(t, "/extra/title"));
	/* the two articles: HTML bodies with non-ASCII text */
	assert_int_equal(json_array_size(json_object_get(t, "messages")), 2);
	m0 = hj_pointer(t, "/messages/0");
	m1 = hj_pointer(t, "/messages/1");
	assert_string_equal(str(m0, "/at"), "2021-08-02T11:57:18Z");
	assert_string_equal(str(m0, "/from"),
			    "David Bell <david@example.com>");
	assert_string_equal(str(m0, "/direction"), "inbound");
	assert_contains(str(m0, "/body_html"),
			"<u>please send me:</u><br>\n1 x Caf\xc3\xa9 Kopi "
			"susu<br>");
	assert_string_equal(str(m0, "/body_text"),
			    "Hi,\n\nplease send me:\n"
			    "1 x Caf\xc3\xa9 Kopi susu\n"
			    "4 x Viennese melange\n\nDelivery Address:\n"
			    "David Bell\nEiffel Tower\n5 Avenue Anatole "
			    "France\n75007 Paris\n\nDavid Bell");
	assert_string_equal(str(m0, "/extra/to"), "order@chrispresso.com");
	assert_string_equal(str(m0, "/extra/type"), "email");
	assert_null(hj_pointer(m0, "/extra/body"));
	assert_string_equal(str(m1, "/direction"), "outbound");
	assert_string_equal(str(m1, "/from"),
			    "Emma Taylor via <order@chrispresso.com>");
	assert_string_equal(str(m1, "/at"), "2021-08-03T09:57:18Z");
	assert_contains(str(m1, "/body_text"), "You will get it till "
			"Wednesday.");
	/* requests: the email percent-encoded, the user's id searched,
	 * the token sent */
	assert_int_equal(json_array_size(log), 3);
	assert_string_equal(str(log, "/0/query"),
			    "query=nicole.braun%40zammad.org&per_page=100"
			    "&page=1");
	assert_string_equal(str(log, "/0/headers/authorization"),
			    "Token token=s3cr3t");
	assert_string_equal(str(log, "/1/query"),
			    "query=customer_id:2&expand=true&per_page=100"
			    "&page=1");
	assert_string_equal(str(log, "/2/path"),
			    "/api/v1/ticket_articles/by_ticket/1");
	json_decref(log);
	run_free(&r);
}

/* The users search and the tickets search both return more than the
 * person's own: only a user whose email is the identity is used, and
 * only tickets whose customer_id is that user's id are emitted. */
static void test_zammad_privacy(void **state)
{
	static const char *const john[] = { "email:johndoe@example.com",
					    NULL };
	static const char *const nobody[] = { "email:nobody@example.com",
					      "phone:+441534000000", NULL };
	struct server s;
	struct run r;
	json_t *log;

	(void)state;
	setenv("PEX_HJ_TEST_TOKEN", "s3cr3t", 1);
	server_start(&s, zammad_routes);
	run(&r, &s, zammad_opts, john);
	assert_int_equal(r.rc_collect, 0);
	assert_int_equal(json_array_size(r.records), 0);
	assert_true(warned(&r, "requester is not the subject"));
	run_free(&r);
	run(&r, &s, zammad_opts, nobody);
	log = server_log(&s);
	server_stop(&s);
	assert_int_equal(r.rc_collect, 0);
	assert_int_equal(json_array_size(r.records), 0);
	/* john: users, tickets (refused: no articles fetched); nobody:
	 * users only; the phone identity is not searched */
	assert_int_equal(count_path(log, "/api/v1/users/search"), 2);
	assert_int_equal(count_path(log, "/api/v1/tickets/search"), 1);
	assert_int_equal(count_path(log,
			 "/api/v1/ticket_articles/by_ticket/1"), 0);
	json_decref(log);
	run_free(&r);
}

/* ---- the Freshdesk preset on the corpus --------------------------------- */

#define OFF_ORIGIN "the download URL is not on the tracker (the origin " \
	"of base_url), so it was not fetched"

static const char freshdesk_routes[] =
	"{\"routes\": ["
	"{\"path\": \"/api/v2/tickets\","
	" \"file\": \"freshdesk/v2_all_tickets.json\"},"
	"{\"path\": \"/api/v2/tickets/1\","
	" \"file\": \"freshdesk/v2_ticket_1.json\"},"
	"{\"path\": \"/api/v2/tickets/1/conversations\", \"link\": true,"
	" \"pages\": [{\"file\": \"freshdesk/v2_conversations.json\"},"
	"  {\"body\": [{\"id\": 3, \"body\": \"<p>Merci, \\u00e7a marche "
	"\\u2014 Gr\\u00fc\\u00dfe</p>\", \"incoming\": true,"
	"  \"private\": false, \"from_email\": \"dummyname@example.com\","
	"  \"created_at\": \"2016-05-20T08:00:00+02:00\","
	"  \"attachments\": [{\"name\": \"../../etc/passwd\","
	"   \"content_type\": \"text/plain\", \"size\": 12,"
	"   \"attachment_url\": \"https://cdn.example/x?token=t\"}]}]}]}"
	"]}";

static void test_freshdesk_corpus(void **state)
{
	static const char *const ids[] = { "email:dummyname@example.com",
					   NULL };
	struct server s;
	struct run r;
	const json_t *t, *m;
	json_t *log;

	(void)state;
	setenv("PEX_HJ_TEST_KEY", "k3y", 1);
	server_start(&s, freshdesk_routes);
	run(&r, &s, "{\"preset\": \"freshdesk\", \"auth\": \"basic\","
		"\"auth_user\": \"${PEX_HJ_TEST_KEY}\", \"auth_password\": "
		"\"X\", \"per_page\": 30}", ids);
	log = server_log(&s);
	server_stop(&s);
	if (r.rc_new || r.rc_collect)
		fail_msg("%s", r.err);
	assert_int_equal(json_array_size(r.records), 1);
	t = json_array_get(r.records, 0);
	/* values as v2_ticket_1.json has them */
	assert_string_equal(str(t, "/id"), "1");
	assert_string_equal(str(t, "/number"), "1");
	assert_string_equal(str(t, "/title"), "This is a sample ticket");
	assert_string_equal(str(t, "/status"), "open");
	assert_string_equal(str(t, "/priority"), "low");
	assert_string_equal(str(t, "/created_at"), "2016-05-18T04:36:04Z");
	assert_string_equal(str(t, "/updated_at"), "2016-05-18T23:42:50Z");
	assert_null(json_object_get(t, "closed_at"));
	assert_string_equal(str(t, "/requester"), "dummyname@example.com");
	assert_string_equal(str(t, "/assignee"), "6010396333");
	assert_string_equal(str(t, "/tags/0"), "foo");
	assert_string_equal(str(t, "/tags/1"), "bar");
	assert_string_equal(str(t, "/extra/type"), "Question");
	assert_string_equal(str(t, "/extra/cc_emails"),
			    "[\"test2@example.com\"]");
	assert_contains(str(t, "/extra/stats"),
			"\"resolved_at\":\"2020-07-24T15:35:21Z\"");
	assert_null(hj_pointer(t, "/extra/description"));
	/* the description, the two conversations of the corpus file, and
	 * the one on the second page (followed by Link rel=next) */
	assert_int_equal(json_array_size(json_object_get(t, "messages")), 4);
	m = hj_pointer(t, "/messages/0");
	assert_string_equal(str(m, "/direction"), "inbound");
	assert_string_equal(str(m, "/body_text"),
			    "This is a sample ticket, feel free to "
			    "delete it.");
	assert_string_equal(str(m, "/body_html"),
			    "<div>This is a sample ticket, feel free to "
			    "delete it.</div>");
	assert_string_equal(str(m, "/attachments/0/name"), "attachment.txt");
	assert_string_equal(str(m, "/attachments/0/media_type"), "text/plain");
	assert_int_equal(json_integer_value(hj_pointer(m,
				"/attachments/0/bytes")), 44115);
	/* the corpus's attachment_url is on Freshdesk's CDN host: the
	 * credentials do not go there, so the file is withheld */
	assert_string_equal(str(m, "/attachments/0/withheld"), OFF_ORIGIN);
	assert_null(hj_pointer(m, "/attachments/0/path"));
	assert_null(hj_pointer(m, "/attachments/0/attachment_url"));
	m = hj_pointer(t, "/messages/1");
	assert_string_equal(str(m, "/direction"), "internal");
	assert_string_equal(str(m, "/body_text"), "This is a private note");
	assert_string_equal(str(m, "/from"), "1");
	assert_string_equal(str(m, "/at"), "2016-05-19T05:36:12Z");
	m = hj_pointer(t, "/messages/2");
	assert_string_equal(str(m, "/direction"), "outbound");
	assert_string_equal(str(m, "/from"), "Rachel <rachel@freshdesk.com>");
	assert_string_equal(str(m, "/extra/to_emails"),
			    "[\"test@example.com\"]");
	m = hj_pointer(t, "/messages/3");
	assert_string_equal(str(m, "/direction"), "inbound");
	assert_string_equal(str(m, "/at"), "2016-05-20T06:00:00Z");
	assert_string_equal(str(m, "/body_text"),
			    "Merci, \xc3\xa7" "a marche \xe2\x80\x94 "
			    "Gr\xc3\xbc\xc3\x9f" "e");
	/* the hostile name is recorded as the source gave it; no file is
	 * written, no URL (with its token) is kept */
	assert_string_equal(str(m, "/attachments/0/name"), "../../etc/passwd");
	assert_string_equal(str(m, "/attachments/0/withheld"), OFF_ORIGIN);
	assert_null(hj_pointer(m, "/attachments/0/attachment_url"));
	{
		char *dump = json_dumps(t, JSON_COMPACT);

		assert_null(strstr(dump, "token=t"));
		assert_null(strstr(dump, "cdn."));
		free(dump);
	}
	assert_true(warned(&r, "without a usable download URL on the "
			   "tracker were withheld"));
	/* requests: email encoded, basic auth, Link followed */
	assert_contains(str(log, "/0/query"),
			"email=dummyname%40example.com&updated_since=");
	assert_contains(str(log, "/0/query"), "per_page=30");
	assert_string_equal(str(log, "/0/headers/authorization"),
			    "Basic azN5Olg="); /* k3y:X */
	assert_string_equal(str(log, "/1/query"), "include=requester,stats");
	assert_int_equal(count_path(log, "/api/v2/tickets/1/conversations"),
			 2);
	assert_contains(str(log, "/3/query"), "page=2");
	json_decref(log);
	run_free(&r);
}

/* The ticket list filtered by email returns a ticket whose requester
 * (from the details) is someone else: it is left out, its messages are
 * never fetched. */
static void test_freshdesk_privacy(void **state)
{
	static const char *const ids[] = { "email:rachel@freshdesk.com",
					   NULL };
	struct server s;
	struct run r;
	json_t *log;

	(void)state;
	server_start(&s, freshdesk_routes);
	run(&r, &s, "{\"preset\": \"freshdesk\"}", ids);
	log = server_log(&s);
	server_stop(&s);
	assert_int_equal(r.rc_collect, 0);
	assert_int_equal(json_array_size(r.records), 0);
	assert_true(warned(&r, "requester is not the subject"));
	assert_int_equal(count_path(log, "/api/v2/tickets/1/conversations"),
			 0);
	json_decref(log);
	run_free(&r);
}

/* ---- the generic definition --------------------------------------------- */

/* A generic tracker: /search?mail={email} lists {"tickets": [...]}, each
 * ticket's messages at /t/{id}/msgs. */
#define GENERIC_OPTS(pagination, extra)                                      \
	"{\"search\": {\"path\": \"/search?mail={email}\","                  \
	" \"list\": \"/tickets\", \"pagination\": " pagination "},"          \
	" \"messages\": {\"path\": \"/t/{id}/msgs\", \"list\": \"\"},"       \
	" \"requester_check\": {\"pointer\": \"/who/email\","                \
	"  \"equals\": \"{email}\"},"                                        \
	" \"fields\": {\"title\": \"/subject\", \"status\": \"/state\","     \
	"  \"created_at\": \"/opened\", \"tags\": \"/labels\"},"             \
	" \"message_fields\": {\"at\": \"/at\", \"body_html\": \"/html\","   \
	"  \"direction\": {\"pointer\": \"/by\", \"values\": "               \
	"  {\"customer\": \"inbound\"}, \"default\": \"outbound\"}},"        \
	" \"max_attempts\": 3, \"retry_backoff_ms\": 10" extra "}"

static const char *const alice[] = { "email:alice@example.com", NULL };

static const char hostile_routes[] =
	"{\"routes\": ["
	"{\"path\": \"/search\", \"body\": {\"tickets\": ["
	" {\"id\": 7, \"subject\": \"bad\\u0001char \\ud83d\\ude00\","
	"  \"state\": \"open\", \"opened\": \"2026-01-03T10:00:00+01:00\","
	"  \"labels\": [\"vpn\", 3, true, null, {\"x\": 1}],"
	"  \"who\": {\"email\": \"Alice@Example.com\"},"
	"  \"custom\": {\"deep\": [1, {\"a\": \"\\u00e9\"}]},"
	"  \"\": \"empty key\", \"ctl\\u0002key\": 1,"
	"  \"when\": \"not a time\"},"
	" {\"id\": 8, \"subject\": \"someone else\","
	"  \"who\": {\"email\": \"bob@example.com\"}},"
	" {\"id\": 9, \"subject\": \"no requester\"}]}},"
	"{\"path\": \"/t/7/msgs\", \"body\": ["
	" {\"at\": 1767434400, \"by\": \"customer\", \"html\": "
	"  \"<script>alert(1)</script><style>p{}</style><p>Gr\\u00fc\\u00dfe"
	"<br/>&amp; &lt;b&gt;</p><div><p>unclosed <b>bold\"},"
	" {\"at\": \"garbage\", \"by\": \"agent\", \"html\": \"\"},"
	" 42]}]}";

static void test_hostile_values(void **state)
{
	struct server s;
	struct run r;
	const json_t *t;
	json_t *log;

	(void)state;
	server_start(&s, hostile_routes);
	run(&r, &s, GENERIC_OPTS("{\"type\": \"none\"}", ""), alice);
	log = server_log(&s);
	server_stop(&s);
	if (r.rc_new || r.rc_collect)
		fail_msg("%s", r.err);
	/* 8 is Bob's, 9 has no requester to check: both left out */
	assert_int_equal(json_array_size(r.records), 1);
	t = json_array_get(r.records, 0);
	assert_string_equal(str(t, "/id"), "7");
	assert_string_equal(str(t, "/title"),
			    "bad\xef\xbf\xbd" "char \xf0\x9f\x98\x80");
	assert_string_equal(str(t, "/created_at"), "2026-01-03T09:00:00Z");
	assert_int_equal(json_array_size(json_object_get(t, "tags")), 3);
	assert_string_equal(str(t, "/tags/1"), "3");
	assert_string_equal(str(t, "/tags/2"), "true");
	assert_string_equal(str(t, "/extra/custom"),
			    "{\"deep\":[1,{\"a\":\"\xc3\xa9\"}]}");
	assert_string_equal(str(t, "/extra/who"),
			    "{\"email\":\"Alice@Example.com\"}");
	assert_null(hj_pointer(t, "/extra/"));
	assert_int_equal(json_object_size(json_object_get(t, "extra")), 3);
	assert_string_equal(str(t, "/extra/when"), "not a time");
	assert_string_equal(str(t, "/messages/0/at"), "2026-01-03T10:00:00Z");
	assert_string_equal(str(t, "/messages/0/direction"), "inbound");
	assert_string_equal(str(t, "/messages/0/body_text"),
			    "Gr\xc3\xbc\xc3\x9f" "e\n& <b>\nunclosed bold");
	assert_null(hj_pointer(t, "/messages/1/at"));
	assert_null(hj_pointer(t, "/messages/1/body_html"));
	assert_string_equal(str(t, "/messages/1/direction"), "outbound");
	assert_int_equal(json_array_size(json_object_get(t, "messages")), 2);
	assert_true(warned(&r, "not valid UTF-8 or not allowed in XML"));
	assert_true(warned(&r, "requester is not the subject"));
	assert_true(warned(&r, "not clean text was left out"));
	assert_true(warned(&r, "message that is not a JSON object"));
	assert_int_equal(count_path(log, "/t/8/msgs"), 0);
	json_decref(log);
	run_free(&r);
}

/* Five tickets, served two per response by each kind of pagination. */
static void paginate(const char *routes, const char *pagination,
		     const char *extra, size_t want_requests)
{
	struct server s;
	struct run r;
	json_t *log;
	char opts[4096];

	snprintf(opts, sizeof(opts), GENERIC_OPTS("%s", ", \"per_page\": 2"
		 "%s"), pagination, extra);
	server_start(&s, routes);
	run(&r, &s, opts, alice);
	log = server_log(&s);
	server_stop(&s);
	if (r.rc_new || r.rc_collect)
		fail_msg("%s", r.err);
	assert_int_equal(json_array_size(r.records), 5);
	for (size_t i = 0; i < 5; i++) {
		char want[8];

		snprintf(want, sizeof(want), "%zu", i + 1);
		assert_string_equal(str(json_array_get(r.records, i), "/id"),
				    want);
	}
	assert_int_equal(count_path(log, "/search"), want_requests);
	json_decref(log);
	run_free(&r);
}

#define T(n) "{\"id\": " #n ", \"who\": {\"email\": \"alice@example.com\"}}"
#define MSGS(n) "{\"path\": \"/t/" #n "/msgs\", \"body\": []}"
#define ALL_MSGS MSGS(1) "," MSGS(2) "," MSGS(3) "," MSGS(4) "," MSGS(5)

static void test_pagination(void **state)
{
	(void)state;
	/* page/per_page and Link rel=next: the server pages by ?page= */
	paginate("{\"routes\": [{\"path\": \"/search\", \"pages\": ["
		 "{\"body\": {\"tickets\": [" T(1) "," T(2) "]}},"
		 "{\"body\": {\"tickets\": [" T(3) "," T(4) "]}},"
		 "{\"body\": {\"tickets\": [" T(5) "]}}]}," ALL_MSGS "]}",
		 "{\"type\": \"page\"}", "", 3);
	paginate("{\"routes\": [{\"path\": \"/search\", \"link\": true, "
		 "\"pages\": ["
		 "{\"body\": {\"tickets\": [" T(1) "," T(2) "]}},"
		 "{\"body\": {\"tickets\": [" T(3) "," T(4) "]}},"
		 "{\"body\": {\"tickets\": [" T(5) "]}}]}," ALL_MSGS "]}",
		 "{\"type\": \"link\"}", "", 3);
	/* offset/limit: the server maps offset 0, 2, 4 to its pages */
	paginate("{\"routes\": [{\"path\": \"/search\", \"offset_param\": "
		 "\"offset\", \"pages\": ["
		 "{\"body\": {\"tickets\": [" T(1) "," T(2) "]}},"
		 "{\"body\": {\"tickets\": [" T(3) "," T(4) "]}},"
		 "{\"body\": {\"tickets\": [" T(5) "]}}]}," ALL_MSGS "]}",
		 "{\"type\": \"offset\"}", "", 3);
	/* cursor: the body names the next page; has_more ends it */
	paginate("{\"routes\": [{\"path\": \"/search\", \"page_param\": "
		 "\"after\", \"pages\": ["
		 "{\"body\": {\"tickets\": [" T(1) "," T(2) "], \"meta\": "
		 "{\"next\": \"2\", \"more\": true}}},"
		 "{\"body\": {\"tickets\": [" T(3) "," T(4) "], \"meta\": "
		 "{\"next\": \"3\", \"more\": true}}},"
		 "{\"body\": {\"tickets\": [" T(5) "], \"meta\": "
		 "{\"next\": \"4\", \"more\": false}}}]}," ALL_MSGS "]}",
		 "{\"type\": \"cursor\", \"cursor\": \"/meta/next\", "
		 "\"param\": \"after\", \"has_more\": \"/meta/more\"}", "", 3);
	/* next_url: a relative URL in the body */
	paginate("{\"routes\": [{\"path\": \"/search\", \"pages\": ["
		 "{\"body\": {\"tickets\": [" T(1) "," T(2) "], "
		 "\"next\": \"/search?mail=x&page=2\"}},"
		 "{\"body\": {\"tickets\": [" T(3) "," T(4) "], "
		 "\"next\": \"search?page=3\"}},"
		 "{\"body\": {\"tickets\": [" T(5) "], \"next\": null}}]},"
		 ALL_MSGS "]}",
		 "{\"type\": \"next_url\", \"next\": \"/next\"}", "", 3);
}

static void test_pagination_limits(void **state)
{
	static const char routes[] =
		"{\"routes\": [{\"path\": \"/search\", \"link\": true, "
		"\"pages\": ["
		"{\"body\": {\"tickets\": [" T(1) "," T(2) "]}},"
		"{\"body\": {\"tickets\": [" T(3) "," T(4) "]}},"
		"{\"body\": {\"tickets\": [" T(5) "]}}]}," ALL_MSGS "]}";
	static const char evil[] =
		"{\"routes\": [{\"path\": \"/search\", \"headers\": {\"Link\":"
		" \"<http://evil.example/steal>; rel=\\\"next\\\"\"},"
		" \"body\": {\"tickets\": []}}]}";
	struct server s;
	struct run r;

	(void)state;
	server_start(&s, routes);
	run(&r, &s, GENERIC_OPTS("{\"type\": \"link\"}",
				 ", \"per_page\": 2, \"max_pages\": 2"),
	    alice);
	server_stop(&s);
	assert_int_equal(r.rc_collect, PEX_ELIMIT);
	assert_contains(r.err, "source tracker:");
	assert_contains(r.err, "more than max_pages (2)");
	run_free(&r);
	/* a next link to another host is never followed (the credentials
	 * would go with it) */
	server_start(&s, evil);
	run(&r, &s, GENERIC_OPTS("{\"type\": \"link\"}", ""), alice);
	server_stop(&s);
	assert_int_equal(r.rc_collect, PEX_EINVALID);
	assert_contains(r.err, "leaves the origin");
	run_free(&r);
}

/* ---- faults ------------------------------------------------------------- */

static const char ok_search[] =
	"\"body\": {\"tickets\": [" T(1) "]}}," MSGS(1) "]}";

/* Run the generic definition against a /search route with a fault;
 * returns the run (caller frees) and the number of /search requests. */
static size_t fault_run(struct run *r, const char *fault, const char *opts)
{
	struct server s;
	char routes[1024];
	json_t *log;
	size_t n;

	snprintf(routes, sizeof(routes),
		 "{\"routes\": [{\"path\": \"/search\", %s, %s", fault,
		 ok_search);
	server_start(&s, routes);
	run(r, &s, opts, alice);
	log = server_log(&s);
	server_stop(&s);
	n = count_path(log, "/search");
	json_decref(log);
	return n;
}

static const char *const plain = GENERIC_OPTS("{\"type\": \"none\"}", "");

static void test_fault_500(void **state)
{
	struct run r;

	(void)state;
	assert_int_equal(fault_run(&r, "\"fault\": \"500\"", plain), 3);
	assert_int_equal(r.rc_collect, PEX_EIO);
	assert_int_equal(json_array_size(r.records), 0);
	assert_contains(r.err, "GET /search: HTTP 500 (server error); gave up "
			"after 3 attempts");
	assert_true(strstr(r.err, "alice") == NULL); /* no query in it */
	run_free(&r);
	/* a 500 that passes: retried, then fine */
	assert_int_equal(fault_run(&r, "\"fault\": \"500\", \"fault_times\":"
				   " 2", plain), 3);
	assert_int_equal(r.rc_collect, 0);
	assert_int_equal(json_array_size(r.records), 1);
	run_free(&r);
}

static void test_fault_429(void **state)
{
	struct run r;

	(void)state;
	assert_int_equal(fault_run(&r, "\"fault\": \"429\", \"fault_times\":"
				   " 1, \"retry_after\": \"1\"", plain), 2);
	if (r.rc_collect)
		fail_msg("%s", r.err);
	assert_int_equal(json_array_size(r.records), 1);
	run_free(&r);
	/* always 429: fails naming it, after max_attempts */
	assert_int_equal(fault_run(&r, "\"fault\": \"429\", \"retry_after\":"
				   " \"3600\"",
				   GENERIC_OPTS("{\"type\": \"none\"}",
						", \"max_retry_after_ms\": 50"
						", \"max_attempts\": 2")), 2);
	assert_int_equal(r.rc_collect, PEX_EIO);
	assert_contains(r.err, "HTTP 429, Retry-After 3600 s; gave up after "
			"2 attempts");
	run_free(&r);
}

static void test_fault_slow(void **state)
{
	struct run r;

	(void)state;
	assert_int_equal(fault_run(&r, "\"fault\": \"slow\", \"delay\": 2",
				   GENERIC_OPTS("{\"type\": \"none\"}",
						", \"timeout_ms\": 300"
						", \"max_attempts\": 2")), 2);
	assert_int_equal(r.rc_collect, PEX_EIO);
	assert_contains(r.err, "no complete response within 300 ms; gave up "
			"after 2 attempts");
	run_free(&r);
}

static void test_fault_truncated(void **state)
{
	struct run r;

	(void)state;
	assert_int_equal(fault_run(&r, "\"fault\": \"truncate\"", plain), 1);
	assert_int_equal(r.rc_collect, PEX_EINVALID);
	assert_contains(r.err, "GET /search: malformed JSON");
	run_free(&r);
}

static void test_fault_huge(void **state)
{
	struct run r;

	(void)state;
	/* 50 MB streamed without a length: cut off at the cap */
	fault_run(&r, "\"fault\": \"huge\"", plain);
	assert_int_equal(r.rc_collect, PEX_ELIMIT);
	assert_contains(r.err, "response larger than max_response_bytes "
			"(33554432)");
	run_free(&r);
	/* with a Content-Length: refused before the body, not retried */
	assert_int_equal(fault_run(&r, "\"fault\": \"huge_cl\"",
				   GENERIC_OPTS("{\"type\": \"none\"}",
						", \"max_response_bytes\": "
						"1000000")), 1);
	assert_int_equal(r.rc_collect, PEX_ELIMIT);
	assert_contains(r.err, "larger than max_response_bytes (1000000)");
	run_free(&r);
}

static void test_fault_content_type(void **state)
{
	struct run r;

	(void)state;
	fault_run(&r, "\"fault\": \"html\"", plain);
	assert_int_equal(r.rc_collect, PEX_EINVALID);
	assert_contains(r.err, "content type text/html; charset=utf-8, not "
			"JSON");
	run_free(&r);
}

static void test_fault_redirect_loop(void **state)
{
	struct run r;

	(void)state;
	assert_int_equal(fault_run(&r, "\"fault\": \"redirect_loop\"",
				   plain), 6);
	assert_int_equal(r.rc_collect, PEX_ELIMIT);
	assert_contains(r.err, "more than 5 redirects");
	run_free(&r);
}

static void test_fault_auth(void **state)
{
	struct run r;

	(void)state;
	setenv("PEX_HJ_TEST_TOKEN", "wrong-token", 1);
	assert_int_equal(fault_run(&r, "\"require_header\": "
				   "{\"Authorization\": \"Bearer right\"}",
				   GENERIC_OPTS("{\"type\": \"none\"}",
						", \"auth\": \"bearer\", "
						"\"auth_token\": "
						"\"${PEX_HJ_TEST_TOKEN}\"")),
			 1);
	assert_int_equal(r.rc_collect, PEX_EIO);
	assert_contains(r.err, "HTTP 401: the tracker refused the "
			"credentials");
	assert_true(strstr(r.err, "wrong-token") == NULL);
	run_free(&r);
}

static void test_fault_refused(void **state)
{
	struct sockaddr_in a = { 0 };
	socklen_t alen = sizeof(a);
	struct server none = { 0 };
	struct run r;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	/* a port that was free a moment ago: nothing listens there */
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	none.port = ntohs(a.sin_port);
	close(fd);
	run(&r, &none, plain, alice);
	assert_int_equal(r.rc_collect, PEX_EIO);
	assert_contains(r.err, "cannot connect to 127.0.0.1 port");
	assert_contains(r.err, "gave up after 3 attempts");
	run_free(&r);
}

/* ---- configuration mistakes fail at init -------------------------------- */

static void expect_init_error(const char *opts, const char *needle)
{
	struct run r;

	run(&r, NULL, opts, alice);
	if (!r.rc_new)
		fail_msg("init accepted %s", opts);
	assert_contains(r.err, "source tracker:");
	assert_contains(r.err, needle);
	run_free(&r);
}

static void test_config_errors(void **state)
{
	(void)state;
	expect_init_error("{\"search\": {\"path\": \"/all\", \"list\": \"\"},"
			  " \"fields\": {}}", "would return everyone's");
	expect_init_error("{\"preset\": \"nope\"}", "no preset named 'nope' "
			  "(available: zammad, freshdesk)");
	expect_init_error("{\"preset\": \"zammad\", \"auth\": \"bearer\"}",
			  "auth bearer needs auth_token");
	expect_init_error("{\"preset\": \"zammad\", \"auth\": \"magic\"}",
			  "must be none, bearer, basic or header");
	expect_init_error("{\"preset\": \"zammad\", \"auth\": \"header\", "
			  "\"auth_token\": \"x\", \"auth_header\": \"A: b\"}",
			  "auth_header, a header name");
	expect_init_error("{\"preset\": \"zammad\", \"lookup\": {\"path\": "
			  "\"/u?q={email}\", \"list\": \"\", "
			  "\"id\": \"/id\"}}",
			  "lookup needs id and verify");
	expect_init_error("{\"preset\": \"zammad\", \"messages\": {\"path\": "
			  "\"/t/{ticket}\", \"list\": \"\"}}",
			  "{ticket} has no value there");
	expect_init_error("{\"preset\": \"zammad\", \"search\": {\"path\": "
			  "\"/s?q={email\", \"list\": \"\"}}", "bad {name}");
	expect_init_error("{\"preset\": \"freshdesk\", \"search\": {\"path\": "
			  "\"/s?q={email}\", \"list\": \"\", \"pagination\": "
			  "{\"type\": \"pages\"}}}", "is not none, page");
	expect_init_error("{\"preset\": \"zammad\", "
			  "\"base_url\": \"ftp://x.example/\"}",
			  "must be http or https");
	expect_init_error("{\"preset\": \"zammad\", \"max_attempts\": 0}",
			  "'max_attempts' must be between 1 and 20");
	expect_init_error("{\"preset\": \"zammad\", "
			  "\"max_attachment_bytes\": 0}",
			  "'max_attachment_bytes' must be between 1 and "
			  "1099511627776");
	expect_init_error("{\"preset\": \"zammad\", \"message_fields\": "
			  "{\"attachments\": {\"list\": \"/a\", \"path\": "
			  "\"/f/{file_id}\"}}}",
			  "{file_id} has no value there");
	expect_init_error("{\"preset\": \"freshdesk\", \"message_fields\": "
			  "{\"attachments\": {\"list\": \"/a\", \"path\": "
			  "\"/f/{id}\", \"url\": \"/u\"}}}",
			  "give url or path, not both");
	expect_init_error("{\"preset\": \"freshdesk\", \"initial_message\": "
			  "{\"attachments\": {\"list\": \"/a\", \"url\": "
			  "\"attachment_url\"}}}",
			  "url must be a JSON Pointer");
	expect_init_error("{\"preset\": \"zammad\", \"message_fields\": "
			  "{\"attachments\": {\"list\": 3}}}",
			  "must be a map with list");
	expect_init_error("{\"preset\": \"zammad\", \"auth\": \"bearer\", "
			  "\"auth_token\": \"${PEX_HJ_UNSET_VARIABLE}\"}",
			  "PEX_HJ_UNSET_VARIABLE is not set");
}

/* ---- attachment files --------------------------------------------------- */

/* Zammad articles with attachments, each with its download route. */
static const char attachment_routes[] =
	"{\"routes\": ["
	"{\"path\": \"/api/v1/users/search\","
	" \"file\": \"zammad/zammad_api_users_list_expand.json\"},"
	"{\"path\": \"/api/v1/tickets/search\","
	" \"file\": \"zammad/zammad_api_tickets_list_expand.json\"},"
	"{\"path\": \"/api/v1/ticket_articles/by_ticket/1\", \"body\": ["
	" {\"id\": 9, \"ticket_id\": 1, \"sender\": \"Customer\","
	"  \"from\": \"Nicole Braun\", \"content_type\": \"text/plain\","
	"  \"body\": \"see attached\", \"internal\": false,"
	"  \"created_at\": \"2021-08-02T11:57:18Z\","
	"  \"attachments\": ["
	"   {\"id\": 11, \"filename\": \"report.pdf\", \"size\": \"10\","
	"    \"preferences\": {\"Content-Type\": \"application/pdf\"}},"
	"   {\"id\": 12, \"filename\": \"huge.iso\", \"size\": \"5000000\"},"
	"   {\"id\": 13, \"filename\": \"../../etc/passwd\", \"size\": 3},"
	"   {\"filename\": \"no-id.txt\"}]}]},"
	"{\"path\": \"/api/v1/ticket_attachment/1/9/11\","
	" \"data\": \"0123456789\"},"
	"{\"path\": \"/api/v1/ticket_attachment/1/9/12\", \"data\": \"x\"},"
	"{\"path\": \"/api/v1/ticket_attachment/1/9/13\", \"fault\": \"500\","
	" \"data\": \"abc\"}]}";

static size_t count_prefix(const json_t *log, const char *prefix)
{
	size_t i, n = 0;

	for (i = 0; i < json_array_size(log); i++)
		if (!strncmp(json_string_value(json_object_get(
			     json_array_get(log, i), "path")), prefix,
			     strlen(prefix)))
			n++;
	return n;
}

#define NO_BUNDLE "attachment files are only kept when exporting one " \
	"subject"

/* pex_source_new() gives no bundle (as a check or a batch pass): every
 * attachment is withheld with a reason, nothing is downloaded, and the
 * source stays ok. */
static void test_attachments_without_bundle(void **state)
{
	static const char *const ids[] = { "email:nicole.braun@zammad.org",
					   NULL };
	struct server s;
	struct run r;
	const json_t *m, *a;
	json_t *log;
	char *dump;

	(void)state;
	setenv("PEX_HJ_TEST_TOKEN", "s3cr3t", 1);
	server_start(&s, attachment_routes);
	run(&r, &s, "{\"preset\": \"zammad\", \"max_attachment_bytes\": "
		"1000000}", ids);
	log = server_log(&s);
	if (r.rc_new || r.rc_collect)
		fail_msg("%s", r.err);
	assert_int_equal(json_array_size(r.records), 1);
	m = hj_pointer(json_array_get(r.records, 0), "/messages/0");
	assert_non_null(m);
	/* the message's own id stays in extra: the attachment spec reads
	 * it only to build the URL */
	assert_int_equal(json_integer_value(hj_pointer(m, "/extra/id")), 9);
	assert_int_equal(json_array_size(json_object_get(m, "attachments")),
			 4);
	a = hj_pointer(m, "/attachments/0");
	assert_string_equal(str(a, "/name"), "report.pdf");
	assert_string_equal(str(a, "/withheld"), NO_BUNDLE);
	assert_string_equal(str(a, "/media_type"), "application/pdf");
	assert_int_equal(json_integer_value(json_object_get(a, "bytes")), 10);
	assert_null(json_object_get(a, "path"));
	assert_null(json_object_get(a, "sha256"));
	a = hj_pointer(m, "/attachments/1");
	assert_string_equal(str(a, "/name"), "huge.iso");
	assert_string_equal(str(a, "/withheld"),
			    "larger than the limit of 1000000 bytes");
	assert_int_equal(json_integer_value(json_object_get(a, "bytes")),
			 5000000);
	a = hj_pointer(m, "/attachments/2");
	assert_string_equal(str(a, "/name"), "../../etc/passwd");
	assert_string_equal(str(a, "/withheld"), NO_BUNDLE);
	a = hj_pointer(m, "/attachments/3");
	assert_string_equal(str(a, "/name"), "no-id.txt");
	assert_contains(str(a, "/withheld"), "no download URL: the "
			"attachment lacks a value its download path needs");
	assert_true(warned(&r, "larger than max_attachment_bytes were "
			   "withheld"));
	assert_true(warned(&r, "without a usable download URL"));
	/* without a bundle no download is even started */
	assert_int_equal(count_prefix(log, "/api/v1/ticket_attachment/"), 0);
	dump = json_dumps(r.records, JSON_COMPACT);
	assert_null(strstr(dump, "ticket_attachment"));
	assert_null(strstr(dump, "http://"));
	free(dump);
	json_decref(log);
	run_free(&r);

	/* switched off */
	run(&r, &s, "{\"preset\": \"zammad\", \"download_attachments\": "
		"false}", ids);
	if (r.rc_new || r.rc_collect)
		fail_msg("%s", r.err);
	m = hj_pointer(json_array_get(r.records, 0), "/messages/0");
	assert_string_equal(str(m, "/attachments/0/withheld"),
			    "attachment downloads are switched off "
			    "(download_attachments: false)");
	assert_string_equal(str(m, "/attachments/2/withheld"),
			    "attachment downloads are switched off "
			    "(download_attachments: false)");
	run_free(&r);

	/* a definition that says nothing about downloading */
	run(&r, &s, "{\"preset\": \"zammad\", \"message_fields\": "
		"{\"attachments\": {\"list\": \"/attachments\", \"name\": "
		"\"/filename\"}}}", ids);
	if (r.rc_new || r.rc_collect)
		fail_msg("%s", r.err);
	m = hj_pointer(json_array_get(r.records, 0), "/messages/0");
	assert_string_equal(str(m, "/attachments/0/withheld"),
			    "no download URL: the source definition gives "
			    "none for attachments");
	log = server_log(&s);
	server_stop(&s);
	assert_int_equal(count_prefix(log, "/api/v1/ticket_attachment/"), 0);
	json_decref(log);
	run_free(&r);
}

/* A sink that keeps the file in memory, for hj_http_download() on its
 * own (the engine's attachment files need a bundle). */
struct msink {
	struct pex_buf b;
	int restarts;
	int fail_with;
};

static int msink_write(void *ud, const void *data, size_t len)
{
	struct msink *m = ud;

	if (m->fail_with)
		return pex_error_set(m->fail_with, "the sink is full");
	return pex_buf_append(&m->b, data, len);
}

static int msink_restart(void *ud)
{
	struct msink *m = ud;

	m->restarts++;
	pex_buf_reset(&m->b);
	return 0;
}

static const char download_routes[] =
	"{\"routes\": ["
	"{\"path\": \"/f/ok\", \"data\": \"hello, w\\u00f6rld\\n\","
	" \"repeat\": 1000, \"content_type\": \"text/plain\","
	" \"require_header\": {\"Authorization\": \"Token token=s3cr3t\"}},"
	"{\"path\": \"/f/bin\", \"data_b64\": \"AAEC/f7/\", \"repeat\": 3},"
	"{\"path\": \"/f/big_cl\", \"data\": \"x\", \"repeat\": 5000},"
	"{\"path\": \"/f/big_stream\", \"data\": \"y\", \"repeat\": 300000,"
	" \"no_length\": true},"
	"{\"path\": \"/f/fail\", \"fault\": \"500\", \"data\": \"z\"},"
	"{\"path\": \"/f/drop\", \"data\": \"abcdefgh\", \"repeat\": 1000,"
	" \"fault\": \"drop_body\", \"fault_times\": 1},"
	"{\"path\": \"/f/moved\", \"status\": 302, \"body\": {\"a\": 1},"
	" \"headers\": {\"Location\": \"/f/bin\"}},"
	"{\"path\": \"/f/loop\", \"fault\": \"redirect_loop\","
	" \"data\": \"\"},"
	"{\"path\": \"/j\", \"body\": {\"after\": \"download\"}}]}";

/* Download path with a memory sink; returns the code, *too_large set. */
static int fetch(struct hj_http *h, const struct server *s,
		 const char *path, unsigned long long max,
		 struct msink *m, int *too_large)
{
	struct hj_sink sink = { msink_write, msink_restart, m };
	char url[256];

	pex_buf_reset(&m->b);
	m->restarts = 0;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, path);
	return hj_http_download(h, url, max, &sink, too_large);
}

/* The source and options of a handle on the server at base, for the
 * download tests (before hj_http_open(); they must outlive the
 * handle). */
static void download_setup(struct pex_source **src, json_t **opts,
			   struct hj_http_opts *o, const char *base,
			   const char *header, const char *token)
{
	*opts = json_pack("{s:s, s:s}", "preset", "zammad", "base_url", base);
	assert_int_equal(pex_source_new(src, "tracker", "http_json", *opts,
					NULL), 0);
	memset(o, 0, sizeof(*o));
	o->base_url = base;
	o->auth = HJ_AUTH_HEADER;
	o->token = token;
	o->header_name = header;
	o->tls_verify = 1;
	o->connect_timeout_ms = 5000;
	o->timeout_ms = 20000;
	o->max_response_bytes = 1 << 20;
	o->max_attempts = 2;
	o->backoff_ms = 10;
	o->max_retry_after_ms = 1000;
	o->max_redirects = 5;
}

static void test_download(void **state)
{
	struct server s;
	struct pex_source *src = NULL;
	struct hj_http h;
	struct hj_http_opts o;
	struct msink m = { PEX_BUF_INIT(1 << 20), 0, 0 };
	struct pex_buf want = PEX_BUF_INIT(1 << 20);
	json_t *opts, *log, *doc = NULL;
	char base[64], url[128];
	int too_large, rc;
	size_t i;

	(void)state;
	server_start(&s, download_routes);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", s.port);
	download_setup(&src, &opts, &o, base, "Authorization",
		  "Token token=s3cr3t");
	assert_int_equal(hj_http_open(&h, src, &o), 0);

	/* streamed whole, with the credentials; non-ASCII bytes intact */
	assert_int_equal(fetch(&h, &s, "/f/ok", 1 << 20, &m, &too_large), 0);
	for (i = 0; i < 1000; i++)
		pex_buf_append(&want, "hello, w\xc3\xb6rld\n", 14);
	assert_int_equal(m.b.len, want.len);
	assert_memory_equal(m.b.data, want.data, want.len);
	assert_int_equal(too_large, 0);
	/* binary bytes, also after a redirect (whose body is dropped) */
	assert_int_equal(fetch(&h, &s, "/f/moved", 100, &m, &too_large), 0);
	assert_int_equal(m.b.len, 18);
	assert_memory_equal(m.b.data, "\x00\x01\x02\xfd\xfe\xff"
			    "\x00\x01\x02\xfd\xfe\xff"
			    "\x00\x01\x02\xfd\xfe\xff", 18);
	/* exactly at the limit is fine; one byte over is not */
	assert_int_equal(fetch(&h, &s, "/f/bin", 18, &m, &too_large), 0);
	assert_int_equal(fetch(&h, &s, "/f/bin", 17, &m, &too_large),
			 PEX_ELIMIT);
	assert_int_equal(too_large, 1);
	/* over the limit by Content-Length: stopped before the body */
	rc = fetch(&h, &s, "/f/big_cl", 1000, &m, &too_large);
	assert_int_equal(rc, PEX_ELIMIT);
	assert_int_equal(too_large, 1);
	assert_string_equal(pex_error_last(),
			    "larger than the limit of 1000 bytes");
	assert_true(m.b.len <= 1000);
	/* no Content-Length: stopped as the body passes the limit */
	rc = fetch(&h, &s, "/f/big_stream", 100000, &m, &too_large);
	assert_int_equal(rc, PEX_ELIMIT);
	assert_int_equal(too_large, 1);
	assert_true(m.b.len <= 100000);
	/* 500 every time: retried, then a failure without the path; the
	 * error page never reaches the sink */
	rc = fetch(&h, &s, "/f/fail", 1000, &m, &too_large);
	assert_true(rc < 0);
	assert_int_equal(too_large, 0);
	assert_string_equal(pex_error_last(), "attachment download: HTTP "
			    "500 (server error); gave up after 2 attempts");
	assert_int_equal(m.b.len, 0);
	/* 404: at once */
	rc = fetch(&h, &s, "/f/gone", 1000, &m, &too_large);
	assert_int_equal(rc, PEX_ENOTFOUND);
	assert_string_equal(pex_error_last(), "attachment download: "
			    "HTTP 404");
	/* a redirect loop */
	rc = fetch(&h, &s, "/f/loop", 1000, &m, &too_large);
	assert_int_equal(rc, PEX_ELIMIT);
	assert_int_equal(too_large, 0);
	assert_contains(pex_error_last(), "more than 5 redirects");
	/* the connection drops mid-file: the sink starts again, and the
	 * second attempt gives the whole file */
	rc = fetch(&h, &s, "/f/drop", 1 << 20, &m, &too_large);
	if (rc)
		fail_msg("drop: %s", pex_error_last());
	assert_int_equal(m.restarts, 1);
	assert_int_equal(m.b.len, 8000);
	assert_memory_equal(m.b.data, "abcdefghabcdefgh", 16);
	/* the sink's own failure comes back as it is */
	m.fail_with = PEX_EIO;
	rc = fetch(&h, &s, "/f/bin", 100, &m, &too_large);
	assert_int_equal(rc, PEX_EIO);
	assert_string_equal(pex_error_last(), "the sink is full");
	m.fail_with = 0;
	/* another origin: refused without a request */
	snprintf(url, sizeof(url), "http://localhost:%d/f/ok", s.port);
	{
		struct hj_sink sink = { msink_write, msink_restart, &m };

		rc = hj_http_download(&h, url, 100, &sink, &too_large);
	}
	assert_int_equal(rc, PEX_EINVALID);
	assert_contains(pex_error_last(), "not on the tracker");
	/* JSON requests work as before on the same handle */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/j", s.port);
	assert_int_equal(hj_http_get(&h, url, &doc, NULL), 0);
	assert_string_equal(str(doc, "/after"), "download");
	json_decref(doc);

	log = server_log(&s);
	server_stop(&s);
	assert_string_equal(str(log, "/0/path"), "/f/ok");
	assert_string_equal(str(log, "/0/headers/accept"), "*/*");
	assert_string_equal(str(log, "/0/headers/authorization"),
			    "Token token=s3cr3t");
	assert_int_equal(count_path(log, "/f/fail"), 2);
	assert_int_equal(count_path(log, "/f/gone"), 1);
	assert_int_equal(count_path(log, "/f/drop"), 2);
	assert_int_equal(count_path(log, "/f/ok"), 1);
	/* and the JSON request after them asked for JSON again */
	{
		const json_t *last = json_array_get(log,
						    json_array_size(log) - 1);

		assert_string_equal(str(last, "/path"), "/j");
		assert_string_equal(str(last, "/headers/accept"),
				    "application/json");
	}
	json_decref(log);
	hj_http_close(&h);
	pex_source_free(src);
	json_decref(opts);
	pex_buf_free(&m.b);
	pex_buf_free(&want);
}

/*
 * A credential in a header of its own name (auth: header, X-Api-Key)
 * never follows a redirect to another host; curl would send it on, so
 * portex follows those redirects itself. The server is also reached as
 * "localhost": another origin to the client, the same log to the test.
 */
static const char redirect_routes[] =
	"{\"routes\": ["
	"{\"path\": \"/r/away\", \"status\": 302, \"data\": \"\","
	" \"headers\": {\"Location\": \"@OTHER@/r/file\"}},"
	"{\"path\": \"/r/file\", \"data\": \"the file\"},"
	"{\"path\": \"/r/jaway\", \"status\": 301, \"data\": \"moved\","
	" \"headers\": {\"Location\": \"@OTHER@/r/json\"}},"
	"{\"path\": \"/r/json\", \"body\": {\"got\": \"json\"}},"
	"{\"path\": \"/r/round\", \"status\": 302, \"data\": \"\","
	" \"headers\": {\"Location\": \"@OTHER@/r/back\"}},"
	"{\"path\": \"/r/back\", \"status\": 307, \"data\": \"\","
	" \"headers\": {\"Location\": \"@LOCAL@/r/home\"}},"
	"{\"path\": \"/r/same\", \"status\": 302, \"data\": \"\","
	" \"headers\": {\"Location\": \"/r/home\"}},"
	"{\"path\": \"/r/home\", \"data\": \"home\","
	" \"require_header\": {\"X-Api-Key\": \"k3y\"}},"
	"{\"path\": \"/r/loop\", \"fault\": \"redirect_loop\","
	" \"data\": \"\"},"
	/* a raw space in an absolute Location: encoded, as curl does */
	"{\"path\": \"/r/space\", \"status\": 302, \"data\": \"\","
	" \"headers\": {\"Location\": \"@OTHER@/r/a file\"}},"
	"{\"path\": \"/r/a%20file\", \"data\": \"spaced\"},"
	/* a redirect's body is no response: no limit counts it */
	"{\"path\": \"/r/big\", \"status\": 302, \"data\": \"x\","
	" \"repeat\": 1200000, \"no_length\": true,"
	" \"headers\": {\"Location\": \"/r/json2\"}},"
	"{\"path\": \"/r/json2\", \"body\": {\"got\": \"json\"}},"
	/* three slow hops: timeout_ms bounds them all, not each */
	"{\"path\": \"/r/s1\", \"status\": 302, \"data\": \"\","
	" \"fault\": \"slow\", \"delay\": 0.5,"
	" \"headers\": {\"Location\": \"/r/s2\"}},"
	"{\"path\": \"/r/s2\", \"status\": 302, \"data\": \"\","
	" \"fault\": \"slow\", \"delay\": 0.5,"
	" \"headers\": {\"Location\": \"/r/s3\"}},"
	"{\"path\": \"/r/s3\", \"status\": 302, \"data\": \"\","
	" \"fault\": \"slow\", \"delay\": 0.5,"
	" \"headers\": {\"Location\": \"/r/home\"}}]}";

/* The headers of the log's only request for path. */
static const json_t *sent_to(const json_t *log, const char *path)
{
	const json_t *e, *found = NULL;
	size_t i;

	json_array_foreach(log, i, e)
		if (!strcmp(str(e, "/path"), path)) {
			assert_null(found);
			found = json_object_get(e, "headers");
		}
	assert_non_null(found);
	return found;
}

static void test_redirect_credentials(void **state)
{
	struct server s;
	struct pex_source *src = NULL;
	struct hj_http h;
	struct hj_http_opts o;
	struct msink m = { PEX_BUF_INIT(1 << 20), 0, 0 };
	json_t *opts, *log, *doc = NULL;
	char base[64], url[128];
	int too_large;

	(void)state;
	server_start(&s, redirect_routes);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", s.port);
	download_setup(&src, &opts, &o, base, "X-Api-Key", "k3y");
	o.timeout_ms = 1200;
	o.max_attempts = 1;
	o.max_redirects = 3;
	assert_int_equal(hj_http_open(&h, src, &o), 0);

	/* a download sent elsewhere: fetched there, without the key */
	assert_int_equal(fetch(&h, &s, "/r/away", 100, &m, &too_large), 0);
	assert_int_equal(m.b.len, 8);
	assert_memory_equal(m.b.data, "the file", 8);
	/* a JSON request likewise; the redirect's body is not parsed */
	snprintf(url, sizeof(url), "%s/r/jaway", base);
	assert_int_equal(hj_http_get(&h, url, &doc, NULL), 0);
	assert_string_equal(str(doc, "/got"), "json");
	json_decref(doc);
	/* away and back to the tracker: the key again there */
	assert_int_equal(fetch(&h, &s, "/r/round", 100, &m, &too_large), 0);
	assert_memory_equal(m.b.data, "home", 4);
	/* on the tracker all the way: kept */
	assert_int_equal(fetch(&h, &s, "/r/same", 100, &m, &too_large), 0);
	assert_memory_equal(m.b.data, "home", 4);
	/* redirects followed here are bounded as curl's are */
	assert_int_equal(fetch(&h, &s, "/r/loop", 100, &m, &too_large),
			 PEX_ELIMIT);
	assert_contains(pex_error_last(), "more than 3 redirects");
	assert_int_equal(fetch(&h, &s, "/r/space", 100, &m, &too_large), 0);
	assert_int_equal(m.b.len, 6);
	assert_memory_equal(m.b.data, "spaced", 6);
	snprintf(url, sizeof(url), "%s/r/big", base);
	if (hj_http_get(&h, url, &doc, NULL))
		fail_msg("a big redirect body: %s", pex_error_last());
	assert_string_equal(str(doc, "/got"), "json");
	json_decref(doc);
	assert_int_equal(fetch(&h, &s, "/r/big", 100, &m, &too_large), 0);
	assert_int_equal(fetch(&h, &s, "/r/s1", 100, &m, &too_large),
			 PEX_EIO);
	assert_contains(pex_error_last(), "no complete response within "
			"1200 ms");

	log = server_log(&s);
	server_stop(&s);
	assert_string_equal(str(sent_to(log, "/r/away"), "/x-api-key"),
			    "k3y");
	assert_null(json_object_get(sent_to(log, "/r/file"), "x-api-key"));
	snprintf(url, sizeof(url), "localhost:%d", s.port);
	assert_string_equal(str(sent_to(log, "/r/file"), "/host"), url);
	assert_null(json_object_get(sent_to(log, "/r/json"), "x-api-key"));
	assert_string_equal(str(sent_to(log, "/r/json"), "/accept"),
			    "application/json");
	assert_null(json_object_get(sent_to(log, "/r/back"), "x-api-key"));
	assert_string_equal(str(sent_to(log, "/r/jaway"), "/x-api-key"),
			    "k3y");
	assert_int_equal(count_path(log, "/r/home"), 2); /* not after s3 */
	assert_int_equal(count_path(log, "/r/loop"), 4);
	json_decref(log);
	hj_http_close(&h);
	pex_source_free(src);
	json_decref(opts);
	pex_buf_free(&m.b);
}

/* ---- helpers on their own ----------------------------------------------- */

static void test_pointer_and_template(void **state)
{
	json_t *doc = json_loads("{\"a/b\": {\"m~n\": [10, 20]}, \"\": 1, "
				 "\"x\": null}", 0, NULL);
	json_t *vars = json_pack("{s:s, s:s}", "email", "a+b@x.com",
				 "id", "\xc3\xa9 /?");
	struct pex_buf b = PEX_BUF_INIT(4096);
	json_t *names, *spec;

	(void)state;
	assert_ptr_equal(hj_pointer(doc, ""), doc);
	assert_int_equal(json_integer_value(hj_pointer(doc, "/a~1b/m~0n/1")),
			 20);
	assert_null(hj_pointer(doc, "/a~1b/m~0n/01"));
	assert_null(hj_pointer(doc, "/a~1b/m~0n/2"));
	assert_null(hj_pointer(doc, "/a~1b/m~0n/-"));
	assert_null(hj_pointer(doc, "/a~2b"));
	assert_null(hj_pointer(doc, "a"));
	assert_int_equal(json_integer_value(hj_pointer(doc, "/")), 1);
	assert_true(json_is_null(hj_pointer(doc, "/x")));
	spec = json_string("/x");
	assert_null(hj_pick(doc, spec));
	json_decref(spec);
	assert_int_equal(hj_template("/s?q={email}&i={id}&{{lit}}", vars, 1,
				     &b), 0);
	assert_string_equal(b.data, "/s?q=a%2Bb%40x.com&i=%C3%A9%20%2F%3F"
			    "&{lit}");
	assert_int_equal(hj_template("{email}", vars, 0, &b), 0);
	assert_string_equal(b.data, "a+b@x.com");
	assert_int_equal(hj_template("{nope}", vars, 1, &b), PEX_EINVALID);
	assert_int_equal(hj_template("a}b", vars, 1, &b), PEX_EINVALID);
	assert_int_equal(hj_template("{}", vars, 1, &b), PEX_EINVALID);
	assert_int_equal(hj_template_names("/{a}/{b_2}{{", &names), 0);
	assert_int_equal(json_array_size(names), 2);
	assert_string_equal(json_string_value(json_array_get(names, 1)),
			    "b_2");
	json_decref(names);
	assert_int_equal(hj_html_text("", 0, &b), 0);
	assert_string_equal(b.data, "");
	assert_int_equal(hj_html_text("<<<>>>&&&", 9, &b), 0);
	assert_int_equal(hj_html_text("a<br>b<p>c</p>d", 15, &b), 0);
	assert_string_equal(b.data, "a\nb\nc\nd");
	pex_buf_free(&b);
	json_decref(doc);
	json_decref(vars);
}

int main(void)
{
	const char *c = getenv("PEX_CORPUS");
	const char *srcdir = getenv("PEX_SOURCE_DIR");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_pointer_and_template, teardown),
		cmocka_unit_test_teardown(test_config_errors, teardown),
		cmocka_unit_test_teardown(test_zammad_corpus, teardown),
		cmocka_unit_test_teardown(test_zammad_privacy, teardown),
		cmocka_unit_test_teardown(test_freshdesk_corpus, teardown),
		cmocka_unit_test_teardown(test_freshdesk_privacy, teardown),
		cmocka_unit_test_teardown(test_hostile_values, teardown),
		cmocka_unit_test_teardown(test_pagination, teardown),
		cmocka_unit_test_teardown(test_pagination_limits, teardown),
		cmocka_unit_test_teardown(test_fault_500, teardown),
		cmocka_unit_test_teardown(test_fault_429, teardown),
		cmocka_unit_test_teardown(test_fault_slow, teardown),
		cmocka_unit_test_teardown(test_fault_truncated, teardown),
		cmocka_unit_test_teardown(test_fault_huge, teardown),
		cmocka_unit_test_teardown(test_fault_content_type, teardown),
		cmocka_unit_test_teardown(test_fault_redirect_loop, teardown),
		cmocka_unit_test_teardown(test_fault_auth, teardown),
		cmocka_unit_test_teardown(test_fault_refused, teardown),
		cmocka_unit_test_teardown(test_attachments_without_bundle,
					  teardown),
		cmocka_unit_test_teardown(test_download, teardown),
		cmocka_unit_test_teardown(test_redirect_credentials, teardown),
	};
	char probe[4200];
	int rc;

	if (!c || !*c) {
		fprintf(stderr, "http_json_test: PEX_CORPUS is not set; the "
			"tracker corpus is needed (skipped)\n");
		return 77;
	}
	snprintf(corpus, sizeof(corpus), "%s/tickets", c);
	snprintf(probe, sizeof(probe), "%s/zammad", corpus);
	if (access(probe, R_OK)) {
		fprintf(stderr, "http_json_test: %s is absent; the tracker "
			"corpus is needed (skipped)\n", probe);
		return 77;
	}
	snprintf(server_py, sizeof(server_py),
		 "%s/tests/tracker/replay_server.py",
		 srcdir ? srcdir : ".");
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (pex_schemas_compile(&ticket_schema,
				"urn:portex:schema:1:ticket")) {
		fprintf(stderr, "cannot compile ticket schema: %s\n",
			pex_error_last());
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	pex_schema_free(ticket_schema);
	curl_global_cleanup();
	return rc;
}
