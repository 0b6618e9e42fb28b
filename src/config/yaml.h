/*
 * YAML to JSON: a YAML document read with libyaml becomes a jansson tree,
 * and every node's line is remembered by its JSON Pointer so that a later
 * check (the config schema) can say where in the file a problem is.
 *
 * Deliberately a subset: one document; mappings with scalar keys; no
 * anchors or aliases (they only obscure a config, and unbounded alias
 * expansion is a known denial of service); nesting at most
 * PEX_YAML_DEPTH_MAX deep. Plain scalars null/~, true/false, integers and
 * decimals become those JSON types; everything else is a string.
 */
#ifndef PEX_CONFIG_YAML_H
#define PEX_CONFIG_YAML_H

#include <jansson.h>

#define PEX_YAML_DEPTH_MAX 64
#define PEX_YAML_SIZE_MAX (4u << 20) /* a config larger than this is a
					 mistake, not a config */

/* *out: new reference to the document; *lines: new reference to an
 * object {pointer: line}. On error the message names path:line:column. */
int pex_yaml_load_file(const char *path, json_t **out, json_t **lines);
int pex_yaml_load_string(const char *name, const char *text, size_t len,
			 json_t **out, json_t **lines);

#endif
