/* Record kinds and their mappable fields; see kinds.h. */
#include "model/kinds.h"

#include <string.h>

static const char *const name_members[] = {
	"full", "given", "family", "middle", "prefix", "suffix", "nickname",
	NULL
};

static const struct pex_field contact_fields[] = {
	{ "name", PEX_F_OBJECT, name_members },
	{ "emails", PEX_F_LIST, NULL },
	{ "phones", PEX_F_LIST, NULL },
	{ "organisation", PEX_F_TEXT, NULL },
	{ "job_title", PEX_F_TEXT, NULL },
	{ "websites", PEX_F_LIST, NULL },
	{ "birthday", PEX_F_TEXT, NULL },
	{ "notes", PEX_F_TEXT, NULL },
	{ "collected_at", PEX_F_TIME, NULL },
	{ "updated_at", PEX_F_TIME, NULL },
	{ NULL, 0, NULL }
};

static const struct pex_field ticket_fields[] = {
	{ "number", PEX_F_TEXT, NULL },
	{ "title", PEX_F_TEXT, NULL },
	{ "status", PEX_F_TEXT, NULL },
	{ "priority", PEX_F_TEXT, NULL },
	{ "created_at", PEX_F_TIME, NULL },
	{ "updated_at", PEX_F_TIME, NULL },
	{ "closed_at", PEX_F_TIME, NULL },
	{ "requester", PEX_F_TEXT, NULL },
	{ "assignee", PEX_F_TEXT, NULL },
	{ "tags", PEX_F_LIST, NULL },
	{ "messages", PEX_F_JSON, NULL },
	{ NULL, 0, NULL }
};

static const struct pex_field event_fields[] = {
	{ "at", PEX_F_TIME, NULL },
	{ "client_ip", PEX_F_TEXT, NULL },
	{ "method", PEX_F_TEXT, NULL },
	{ "path", PEX_F_TEXT, NULL },
	{ "query", PEX_F_TEXT, NULL },
	{ "protocol", PEX_F_TEXT, NULL },
	{ "status", PEX_F_INT, NULL },
	{ "bytes", PEX_F_INT, NULL },
	{ "referrer", PEX_F_TEXT, NULL },
	{ "user_agent", PEX_F_TEXT, NULL },
	{ "host", PEX_F_TEXT, NULL },
	{ "user", PEX_F_TEXT, NULL },
	{ NULL, 0, NULL }
};

static const struct pex_field none_fields[] = { { NULL, 0, NULL } };

static const struct {
	const char *name;
	const char *plural;
	const struct pex_field *fields;
} kinds[PEX_REC__COUNT] = {
	[PEX_REC_CONTACT] = { "contact", "contacts", contact_fields },
	[PEX_REC_TICKET] = { "ticket", "tickets", ticket_fields },
	[PEX_REC_USAGE_EVENT] = { "usage_event", "events", event_fields },
	[PEX_REC_SESSION] = { "session", "sessions", none_fields },
	[PEX_REC_DEVICE] = { "device", "devices", none_fields },
	[PEX_REC_IP_ADDRESS] = { "ip_address", "ip_addresses", none_fields },
};

const char *pex_record_kind_name(enum pex_record_kind kind)
{
	return (unsigned)kind < PEX_REC__COUNT ? kinds[kind].name : "?";
}

const char *pex_record_kind_plural(enum pex_record_kind kind)
{
	return (unsigned)kind < PEX_REC__COUNT ? kinds[kind].plural : "?";
}

const struct pex_field *pex_kind_fields(enum pex_record_kind kind)
{
	return (unsigned)kind < PEX_REC__COUNT ? kinds[kind].fields
					       : none_fields;
}

int pex_record_kind_from_name(const char *name)
{
	int i;

	for (i = 0; i < PEX_REC__COUNT; i++)
		if (!strcmp(kinds[i].name, name))
			return i;
	return -1;
}
