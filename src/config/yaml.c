/* YAML to JSON with line numbers; see yaml.h. */
#include "config/yaml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/buf.h"
#include "portex/error.h"

struct loader {
	const char *name;
	yaml_parser_t parser;
	struct pex_buf ptr; /* JSON Pointer of the node being read */
	json_t *lines;
};

static int fail_at(struct loader *l, const yaml_mark_t *m, const char *msg)
{
	return pex_error_set(PEX_EINVALID, "%s:%zu:%zu: %s", l->name,
			     m->line + 1, m->column + 1, msg);
}

static int next_event(struct loader *l, yaml_event_t *ev)
{
	if (yaml_parser_parse(&l->parser, ev))
		return 0;
	return pex_error_set(PEX_EINVALID, "%s:%zu:%zu: %s%s%s", l->name,
			     l->parser.problem_mark.line + 1,
			     l->parser.problem_mark.column + 1,
			     l->parser.problem ? l->parser.problem
					       : "invalid YAML",
			     l->parser.context ? " " : "",
			     l->parser.context ? l->parser.context : "");
}

static int is_int(const char *s)
{
	const char *p = s;

	if (*p == '-' || *p == '+')
		p++;
	if (!*p || strlen(p) > 18)
		return 0;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

static int is_real(const char *s)
{
	char *end;

	if (!*s || strspn(s, "0123456789.eE+-") != strlen(s) ||
	    !strpbrk(s, "0123456789") || !strchr(s, '.'))
		return 0;
	errno = 0;
	strtod(s, &end);
	return !*end && !errno;
}

static json_t *scalar_value(const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;

	const char *tag = (const char *)ev->data.scalar.tag;

	/* "!!str 123" asks for the text, whatever it looks like */
	if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    strlen(s) == len &&
	    !(tag && !strcmp(tag, "tag:yaml.org,2002:str"))) {
		if (!strcmp(s, "~") || !strcmp(s, "null") || !*s ||
		    !strcmp(s, "Null") || !strcmp(s, "NULL"))
			return json_null();
		if (!strcmp(s, "true") || !strcmp(s, "True") ||
		    !strcmp(s, "TRUE"))
			return json_true();
		if (!strcmp(s, "false") || !strcmp(s, "False") ||
		    !strcmp(s, "FALSE"))
			return json_false();
		if (is_int(s))
			return json_integer(strtoll(s, NULL, 10));
		if (is_real(s))
			return json_real(strtod(s, NULL));
	}
	return json_stringn(s, len); /* NULL on invalid UTF-8 or NUL */
}

static int ptr_push(struct pex_buf *b, const char *tok)
{
	int rc = pex_buf_putc(b, '/');

	for (; !rc && *tok; tok++) {
		if (*tok == '~')
			rc = pex_buf_append(b, "~0", 2);
		else if (*tok == '/')
			rc = pex_buf_append(b, "~1", 2);
		else
			rc = pex_buf_putc(b, *tok);
	}
	return rc;
}

static void ptr_pop(struct pex_buf *b, size_t len)
{
	b->len = len;
	if (b->data)
		b->data[len] = '\0';
}

/* Read the node that starts with ev (consumed) into *out. */
static int read_node(struct loader *l, yaml_event_t *ev, int depth,
		     json_t **out)
{
	yaml_event_t e;
	json_t *node = NULL, *child;
	size_t mark = l->ptr.len;
	char idx[32];
	int rc = 0;

	*out = NULL;
	json_object_set_new(l->lines, l->ptr.data ? l->ptr.data : "",
			    json_integer((json_int_t)ev->start_mark.line + 1));
	if (depth > PEX_YAML_DEPTH_MAX)
		return fail_at(l, &ev->start_mark, "nested too deeply");
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		/* "\0" in a quoted scalar: jansson would keep the NUL, and
		 * every C string taken from the value later would end there
		 * ("a.csv\0x" read as "a.csv"). */
		if (memchr(ev->data.scalar.value, '\0',
			   ev->data.scalar.length))
			return fail_at(l, &ev->start_mark,
				       "a value must not contain a NUL "
				       "character");
		node = scalar_value(ev);
		if (!node)
			return fail_at(l, &ev->start_mark,
				       "value is not valid UTF-8 text");
		*out = node;
		return 0;
	case YAML_ALIAS_EVENT:
		return fail_at(l, &ev->start_mark,
			       "aliases (*name) are not supported in a "
			       "portex config; write the value out");
	case YAML_MAPPING_START_EVENT:
		node = json_object();
		for (;;) {
			char *key;

			rc = next_event(l, &e);
			if (rc)
				goto cleanup;
			if (e.type == YAML_MAPPING_END_EVENT) {
				yaml_event_delete(&e);
				break;
			}
			if (e.type != YAML_SCALAR_EVENT) {
				rc = fail_at(l, &e.start_mark,
					     "a key must be plain text");
				yaml_event_delete(&e);
				goto cleanup;
			}
			key = strdup((const char *)e.data.scalar.value);
			if (!key || strlen(key) != e.data.scalar.length) {
				free(key);
				rc = fail_at(l, &e.start_mark,
					     "a key must be text without NUL");
				yaml_event_delete(&e);
				goto cleanup;
			}
			if (json_object_get(node, key)) {
				char msg[300];

				snprintf(msg, sizeof(msg),
					 "duplicate key '%.200s'", key);
				rc = fail_at(l, &e.start_mark, msg);
				free(key);
				yaml_event_delete(&e);
				goto cleanup;
			}
			yaml_event_delete(&e);
			rc = ptr_push(&l->ptr, key);
			if (!rc)
				rc = next_event(l, &e);
			if (rc) {
				free(key);
				goto cleanup;
			}
			rc = read_node(l, &e, depth + 1, &child);
			yaml_event_delete(&e);
			ptr_pop(&l->ptr, mark);
			if (!rc && json_object_set_new(node, key, child))
				rc = fail_at(l, &ev->start_mark,
					     "a key must be valid UTF-8");
			free(key);
			if (rc)
				goto cleanup;
		}
		*out = node;
		return 0;
	case YAML_SEQUENCE_START_EVENT:
		node = json_array();
		for (size_t i = 0;; i++) {
			rc = next_event(l, &e);
			if (rc)
				goto cleanup;
			if (e.type == YAML_SEQUENCE_END_EVENT) {
				yaml_event_delete(&e);
				break;
			}
			snprintf(idx, sizeof(idx), "%zu", i);
			rc = ptr_push(&l->ptr, idx);
			if (!rc)
				rc = read_node(l, &e, depth + 1, &child);
			yaml_event_delete(&e);
			ptr_pop(&l->ptr, mark);
			if (rc)
				goto cleanup;
			json_array_append_new(node, child);
		}
		*out = node;
		return 0;
	default:
		return fail_at(l, &ev->start_mark, "unexpected YAML event");
	}
cleanup:
	json_decref(node);
	return rc;
}

int pex_yaml_load_string(const char *name, const char *text, size_t len,
			 json_t **out, json_t **lines)
{
	struct loader l = { 0 };
	yaml_event_t ev;
	json_t *root = NULL;
	int rc, started = 0;

	*out = NULL;
	*lines = NULL;
	if (len > PEX_YAML_SIZE_MAX)
		return pex_error_set(PEX_ELIMIT, "%s: larger than %u bytes",
				     name, PEX_YAML_SIZE_MAX);
	l.name = name;
	pex_buf_init(&l.ptr, 64 * 1024);
	l.lines = json_object();
	if (!l.lines || !yaml_parser_initialize(&l.parser)) {
		json_decref(l.lines);
		return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	yaml_parser_set_input_string(&l.parser, (const unsigned char *)text,
				     len);
	for (;;) {
		rc = next_event(&l, &ev);
		if (rc)
			goto cleanup;
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type == YAML_DOCUMENT_START_EVENT) {
			if (started) {
				rc = fail_at(&l, &ev.start_mark,
					     "only one YAML document is "
					     "allowed");
				yaml_event_delete(&ev);
				goto cleanup;
			}
			started = 1;
		} else if (ev.type != YAML_STREAM_START_EVENT &&
			   ev.type != YAML_DOCUMENT_END_EVENT) {
			rc = read_node(&l, &ev, 0, &root);
			if (rc) {
				yaml_event_delete(&ev);
				goto cleanup;
			}
		}
		yaml_event_delete(&ev);
	}
	if (!root)
		root = json_null();
	*out = root;
	*lines = l.lines;
	l.lines = NULL;
	root = NULL;
	rc = 0;
cleanup:
	json_decref(root);
	json_decref(l.lines);
	yaml_parser_delete(&l.parser);
	pex_buf_free(&l.ptr);
	return rc;
}

int pex_yaml_load_file(const char *path, json_t **out, json_t **lines)
{
	struct pex_buf b = PEX_BUF_INIT(PEX_YAML_SIZE_MAX);
	char chunk[16384];
	FILE *f = fopen(path, "rb");
	size_t n;
	int rc = 0;

	*out = NULL;
	*lines = NULL;
	if (!f)
		return pex_error_set(PEX_EIO, "cannot open %s: %s", path,
				     strerror(errno));
	while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = pex_buf_append(&b, chunk, n);
	if (!rc && ferror(f))
		rc = pex_error_set(PEX_EIO, "cannot read %s: %s", path,
				   strerror(errno));
	fclose(f);
	if (rc == PEX_ELIMIT)
		pex_error_set(rc, "%s: larger than %u bytes", path,
			      PEX_YAML_SIZE_MAX);
	if (!rc)
		rc = pex_yaml_load_string(path, b.data ? b.data : "", b.len,
					  out, lines);
	pex_buf_free(&b);
	return rc;
}
