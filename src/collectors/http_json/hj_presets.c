/*
 * Ready-made definitions for two trackers, following their documented
 * REST APIs and the real responses in ../shared/corpus/tickets/. A preset
 * is the same JSON a user could write in the source's options; options
 * given next to `preset` replace (requests) or extend (field maps) it.
 *
 * zammad     users/search by the email, kept only when the user's email
 *            is the identity; tickets/search by that customer_id
 *            (expand=true gives state, priority, customer and owner as
 *            names); articles by ticket. Each ticket's customer_id must
 *            be the user found.
 * freshdesk  tickets filtered by requester email (updated_since set far
 *            back: the API otherwise returns only the last 30 days),
 *            each ticket with include=requester,stats, and its
 *            conversations; Link rel="next" pagination. The requester's
 *            email must be the identity.
 *
 * Attachments: Zammad's come from GET /api/v1/ticket_attachment/
 * {ticket_id}/{article_id}/{id}; Freshdesk's from each attachment's
 * attachment_url, fetched only when it is on the tracker's own origin
 * (Freshdesk's cloud serves them from a CDN host: those are withheld,
 * since the credentials must not go there).
 *
 * Neither preset sets credentials: Zammad takes `auth: header`,
 * `auth_header: Authorization`, `auth_token: "Token token=${ZAMMAD}"`
 * (or bearer for OAuth); Freshdesk takes `auth: basic` with the API key
 * as auth_user and "X" as auth_password.
 */
#include <string.h>

#include "collectors/http_json/hj.h"

static const char zammad[] =
"{"
" \"lookup\": {"
"  \"path\": \"/api/v1/users/search?query={email}\","
"  \"list\": \"\", \"id\": \"/id\", \"verify\": \"/email\","
"  \"var\": \"user_id\","
"  \"pagination\": {\"type\": \"page\", \"page_param\": \"page\","
"                 \"size_param\": \"per_page\"}},"
" \"search\": {"
"  \"path\": \"/api/v1/tickets/search?query=customer_id:{user_id}"
"&expand=true\","
"  \"list\": \"\","
"  \"pagination\": {\"type\": \"page\", \"page_param\": \"page\","
"                 \"size_param\": \"per_page\"}},"
" \"ticket_id\": \"/id\","
" \"details\": false,"
" \"messages\": {"
"  \"path\": \"/api/v1/ticket_articles/by_ticket/{id}?expand=true\","
"  \"list\": \"\", \"pagination\": {\"type\": \"none\"}},"
" \"requester_check\": {\"pointer\": \"/customer_id\","
"                      \"equals\": \"{user_id}\"},"
" \"fields\": {"
"  \"number\": \"/number\", \"title\": \"/title\","
"  \"status\": \"/state\", \"priority\": \"/priority\","
"  \"created_at\": \"/created_at\", \"updated_at\": \"/updated_at\","
"  \"closed_at\": \"/last_close_at\","
"  \"requester\": \"/customer\", \"assignee\": \"/owner\","
"  \"tags\": \"/tags\"},"
" \"message_fields\": {"
"  \"at\": \"/created_at\", \"from\": [\"/from\", \"/created_by\"],"
"  \"body\": \"/body\", \"content_type\": \"/content_type\","
"  \"direction\": {\"pointer\": \"/sender\","
"   \"values\": {\"Customer\": \"inbound\", \"Agent\": \"outbound\","
"              \"System\": \"outbound\"},"
"   \"internal\": \"/internal\", \"internal_when\": true},"
"  \"attachments\": {\"list\": \"/attachments\", \"name\": \"/filename\","
"   \"media_type\": [\"/preferences/Content-Type\","
"                  \"/preferences/Mime-Type\"],"
"   \"bytes\": \"/size\", \"id\": \"/id\", \"message_id\": \"/id\","
"   \"path\": \"/api/v1/ticket_attachment/{id}/{message_id}/"
"{attachment_id}\"}}"
"}";

static const char freshdesk[] =
"{"
" \"lookup\": false,"
" \"search\": {"
"  \"path\": \"/api/v2/tickets?email={email}"
"&updated_since=2000-01-01T00:00:00Z&order_type=asc\","
"  \"list\": \"\","
"  \"pagination\": {\"type\": \"link\", \"size_param\": \"per_page\"}},"
" \"ticket_id\": \"/id\","
" \"details\": {\"path\": \"/api/v2/tickets/{id}?include=requester,stats\","
"             \"item\": \"\"},"
" \"messages\": {"
"  \"path\": \"/api/v2/tickets/{id}/conversations\", \"list\": \"\","
"  \"pagination\": {\"type\": \"link\", \"size_param\": \"per_page\"}},"
" \"requester_check\": {\"pointer\": \"/requester/email\","
"                      \"equals\": \"{email}\"},"
" \"fields\": {"
"  \"number\": \"/id\", \"title\": \"/subject\","
"  \"status\": {\"pointer\": \"/status\", \"values\": {\"2\": \"open\","
"   \"3\": \"pending\", \"4\": \"resolved\", \"5\": \"closed\"}},"
"  \"priority\": {\"pointer\": \"/priority\", \"values\": {\"1\": \"low\","
"   \"2\": \"medium\", \"3\": \"high\", \"4\": \"urgent\"}},"
"  \"created_at\": \"/created_at\", \"updated_at\": \"/updated_at\","
"  \"closed_at\": \"/stats/closed_at\","
"  \"requester\": [\"/requester/email\", \"/requester_id\"],"
"  \"assignee\": \"/responder_id\", \"tags\": \"/tags\"},"
" \"initial_message\": {"
"  \"at\": \"/created_at\", \"from\": [\"/requester/email\","
"  \"/requester_id\"],"
"  \"body_text\": \"/description_text\", \"body_html\": \"/description\","
"  \"direction\": \"inbound\","
"  \"attachments\": {\"list\": \"/attachments\", \"name\": \"/name\","
"   \"media_type\": \"/content_type\","
"   \"bytes\": [\"/size\", \"/file_size\"],"
"   \"url\": \"/attachment_url\"}},"
" \"message_fields\": {"
"  \"at\": \"/created_at\", \"from\": [\"/from_email\", \"/user_id\"],"
"  \"body_text\": \"/body_text\", \"body_html\": \"/body\","
"  \"direction\": {\"pointer\": \"/incoming\","
"   \"values\": {\"true\": \"inbound\", \"false\": \"outbound\"},"
"   \"internal\": \"/private\", \"internal_when\": true},"
"  \"attachments\": {\"list\": \"/attachments\", \"name\": \"/name\","
"   \"media_type\": \"/content_type\","
"   \"bytes\": [\"/size\", \"/file_size\"],"
"   \"url\": \"/attachment_url\"}}"
"}";

static const struct {
	const char *name;
	const char *json;
} presets[] = {
	{ "zammad", zammad },
	{ "freshdesk", freshdesk },
	{ NULL, NULL },
};

json_t *hj_preset(const char *name)
{
	for (size_t i = 0; presets[i].name; i++)
		if (!strcmp(presets[i].name, name))
			return json_loads(presets[i].json, 0, NULL);
	return NULL;
}

const char *hj_preset_names(void)
{
	return "zammad, freshdesk";
}
