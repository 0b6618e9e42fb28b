/*
 * `portex validate --schema S DOC...`: check documents against a JSON
 * Schema (draft-07) or, when S ends in .xsd, against an XML Schema with
 * libxml2. Every other *.json beside S is registered by its $id, so the
 * cross-file $refs of schemas/v1 resolve; nothing is fetched from the
 * network (XML_PARSE_NONET and a no-network entity loader for XSD).
 *
 * Output: one "file: pointer: message" line on stdout per error (only
 * the first per document unless --all); the pointer is a JSON Pointer for
 * JSON, an XPath-like node path for XML, "(root)" for the whole document.
 * Exit: 0 all valid, 1 some document invalid or unreadable, 2 usage error
 * or broken schema.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlIO.h>
#include <libxml/xmlschemas.h>

#include "cli/commands.h"
#include "portex/error.h"
#include "portex/jsonschema.h"

#define EXIT_INVALID PEX_EXIT_FAIL
#define EXIT_USAGE PEX_EXIT_USAGE

static void usage(FILE *f)
{
	fprintf(f,
		"usage: portex validate --schema SCHEMA [--all] "
		"[--no-format] DOC...\n"
		"\n"
		"Validate each DOC against SCHEMA: a JSON Schema (draft-07)"
		" .json file,\n"
		"or an XML Schema .xsd file for XML documents. Other "
		"schemas in the\n"
		"folder of SCHEMA are registered by their $id, so "
		"references between\n"
		"them resolve. Nothing is fetched from the network.\n"
		"\n"
		"  -s, --schema FILE  the schema to validate against\n"
		"  -a, --all          report every error, not only the first"
		" per document\n"
		"  -F, --no-format    treat \"format\" as an annotation, not"
		" an assertion\n"
		"  -h, --help         show this help\n"
		"\n"
		"Errors are printed as \"file: pointer: message\". Exit "
		"status: 0 all\n"
		"documents valid, 1 some invalid, 2 usage error or broken "
		"schema.\n");
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcasecmp(s + n - m, suffix);
}

/* ---- JSON ---- */

struct json_state {
	const char *file;
};

static int print_json_error(const pex_schema_error *err, void *payload)
{
	const struct json_state *st = payload;

	printf("%s: %s: %s\n", st->file,
	       err->instance_path[0] ? err->instance_path : "(root)",
	       err->message);
	return 0;
}

static json_t *load_json(const char *path, json_error_t *jerr)
{
	json_t *doc = json_load_file(path, JSON_DECODE_ANY, jerr);

	/* integers beyond 64 bits: compare them as doubles rather than
	 * refuse the document */
	if (!doc && strstr(jerr->text, "too big"))
		doc = json_load_file(
			path, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, jerr);
	return doc;
}

static int compile_json_schema(const char *schema_path, pex_schema **out)
{
	char abs[PATH_MAX], dir[PATH_MAX], base[PATH_MAX + 16];
	char uri[PATH_MAX * 2 + 16];
	pex_schema_registry *reg = NULL;
	char *slash;
	int rc;

	if (!realpath(schema_path, abs)) {
		fprintf(stderr, "portex validate: %s: cannot open\n",
			schema_path);
		return EXIT_USAGE;
	}
	snprintf(dir, sizeof(dir), "%s", abs);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	snprintf(base, sizeof(base), "file://%s/", dir);
	snprintf(uri, sizeof(uri), "file://%s", abs);
	if (pex_schema_registry_new(&reg) < 0)
		goto broken;
	if (pex_schema_registry_add_dir(reg, base, dir) < 0) {
		/* a stray broken file beside the schema: go on with the
		 * schema alone; its own $refs may still resolve */
		fprintf(stderr,
			"portex validate: warning: %s; registering %s only\n",
			pex_error_last(), schema_path);
		pex_schema_registry_free(reg);
		reg = NULL;
		if (pex_schema_registry_new(&reg) < 0 ||
		    pex_schema_registry_add_file(reg, uri, abs) < 0)
			goto broken;
	}
	rc = pex_schema_compile_uri(out, reg, uri);
	pex_schema_registry_free(reg);
	if (rc < 0) {
		fprintf(stderr, "portex validate: %s: %s\n", schema_path,
			pex_error_last());
		return EXIT_USAGE;
	}
	return 0;
broken:
	fprintf(stderr, "portex validate: %s: %s\n", schema_path,
		pex_error_last());
	pex_schema_registry_free(reg);
	return EXIT_USAGE;
}

static int validate_json(const char *schema_path, char **docs, int ndocs,
			 int flags)
{
	pex_schema *schema = NULL;
	int i, status = 0, rc;

	rc = compile_json_schema(schema_path, &schema);
	if (rc)
		return rc;
	for (i = 0; i < ndocs; i++) {
		struct json_state st = {docs[i]};
		json_error_t jerr;
		json_t *doc = load_json(docs[i], &jerr);

		if (!doc) {
			printf("%s: (root): cannot parse JSON: line %d column"
			       " %d: %s\n",
			       docs[i], jerr.line, jerr.column, jerr.text);
			status = EXIT_INVALID;
			continue;
		}
		rc = pex_schema_validate(schema, doc, flags, print_json_error,
					 &st);
		if (rc < 0)
			printf("%s: (root): cannot validate: %s\n", docs[i],
			       pex_error_last());
		if (rc != 0)
			status = EXIT_INVALID;
		json_decref(doc);
	}
	pex_schema_free(schema);
	return status;
}

/* ---- XML ---- */

struct xml_state {
	const char *file;
	int all;
	int count;
};

static void print_xml_error(void *payload, xmlErrorPtr err)
{
	struct xml_state *st = payload;
	xmlChar *path = NULL;
	char where[64];
	const char *ptr;
	char msg[1024];
	size_t n;

	if (!err || err->level < XML_ERR_ERROR)
		return;
	st->count++;
	if (!st->all && st->count > 1)
		return;
	if (err->node)
		path = xmlGetNodePath((xmlNodePtr)err->node);
	if (path) {
		ptr = (const char *)path;
	} else {
		snprintf(where, sizeof(where), "line %d", err->line);
		ptr = where;
	}
	snprintf(msg, sizeof(msg), "%s", err->message ? err->message : "?");
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	for (n = 0; msg[n]; n++)
		if (msg[n] == '\n')
			msg[n] = ' ';
	printf("%s: %s: %s\n", st->file, ptr, msg);
	xmlFree(path);
}

static void print_schema_error(void *payload, xmlErrorPtr err)
{
	if (err && err->level >= XML_ERR_ERROR)
		fprintf(stderr, "portex validate: %s:%d: %s",
			err->file ? err->file : (const char *)payload,
			err->line, err->message ? err->message : "?\n");
}

static int validate_xml(const char *schema_path, char **docs, int ndocs,
			int all)
{
	xmlSchemaParserCtxtPtr pctx = NULL;
	xmlSchemaValidCtxtPtr vctx = NULL;
	xmlSchemaPtr xs = NULL;
	int i, status = 0;

	/* no xs:import / xs:include / DTD may reach the network */
	xmlSetExternalEntityLoader(xmlNoNetExternalEntityLoader);
	pctx = xmlSchemaNewParserCtxt(schema_path);
	if (!pctx) {
		status = EXIT_USAGE;
		goto cleanup;
	}
	xmlSchemaSetParserStructuredErrors(pctx, print_schema_error,
					   (void *)schema_path);
	xs = xmlSchemaParse(pctx);
	if (!xs) {
		fprintf(stderr,
			"portex validate: %s: not a usable XML "
			"Schema\n",
			schema_path);
		status = EXIT_USAGE;
		goto cleanup;
	}
	vctx = xmlSchemaNewValidCtxt(xs);
	if (!vctx) {
		status = EXIT_USAGE;
		goto cleanup;
	}
	for (i = 0; i < ndocs; i++) {
		struct xml_state st = {docs[i], all, 0};
		xmlDocPtr doc;
		int r;

		xmlSetStructuredErrorFunc(&st, print_xml_error);
		doc = xmlReadFile(docs[i], NULL,
				  XML_PARSE_NONET | XML_PARSE_NOWARNING);
		xmlSetStructuredErrorFunc(NULL, NULL);
		if (!doc) {
			if (st.count == 0)
				printf("%s: (root): cannot parse XML\n",
				       docs[i]);
			status = EXIT_INVALID;
			continue;
		}
		xmlSchemaSetValidStructuredErrors(vctx, print_xml_error, &st);
		r = xmlSchemaValidateDoc(vctx, doc);
		if (r != 0) {
			if (st.count == 0)
				printf("%s: (root): %s\n", docs[i],
				       r < 0 ? "internal validation error"
					     : "not valid");
			status = EXIT_INVALID;
		}
		xmlFreeDoc(doc);
	}
cleanup:
	xmlSchemaFreeValidCtxt(vctx);
	xmlSchemaFree(xs);
	xmlSchemaFreeParserCtxt(pctx);
	return status;
}

int pex_cmd_validate(int argc, char **argv)
{
	static const struct option opts[] = {
		{"schema", required_argument, NULL, 's'},
		{"all", no_argument, NULL, 'a'},
		{"no-format", no_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *schema = NULL;
	int all = 0, no_format = 0, c;

	/* 0, not 1: glibc then also resets state left by an earlier
	 * getopt run in main() */
	optind = 0;
	while ((c = getopt_long(argc, argv, "s:aFh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			schema = optarg;
			break;
		case 'a':
			all = 1;
			break;
		case 'F':
			no_format = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!schema || optind >= argc) {
		fprintf(stderr, "portex validate: %s\n",
			!schema ? "--schema is required"
				: "no document to validate");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (ends_with(schema, ".xsd"))
		return validate_xml(schema, argv + optind, argc - optind, all);
	return validate_json(schema, argv + optind, argc - optind,
			     (all ? PEX_SCHEMA_ALL_ERRORS : 0) |
				     (no_format ? PEX_SCHEMA_NO_FORMAT : 0));
}
