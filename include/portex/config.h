/*
 * The portex configuration: one YAML file, read with libyaml into a JSON
 * tree and checked against schemas/v1/config.schema.json. A problem is
 * reported as FILE:LINE: PATH: MESSAGE, e.g.
 *   portex.yaml:23: sources[2].options: required property "query" ...
 * The loaded config owns its tree; getters borrow from it.
 */
#ifndef PEX_CONFIG_H
#define PEX_CONFIG_H

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pex_config pex_config;

/* On failure *out is NULL; pex_error_last() holds every problem found,
 * one per line. */
int pex_config_load(pex_config **out, const char *path);
void pex_config_free(pex_config *cfg);
/* A copy that shares nothing with cfg: jansson's values are not safe to
 * share between threads that take references to them, so each thread
 * working from one config takes its own copy. */
int pex_config_copy(pex_config **out, const pex_config *cfg);

const json_t *pex_config_root(const pex_config *cfg);
const char *pex_config_path(const pex_config *cfg);
/* Directory of the config file, for relative paths inside it. */
const char *pex_config_dir(const pex_config *cfg);
/* Line of the node at a JSON Pointer (walks up to the nearest node that
 * has one); 0 when unknown. */
int pex_config_line(const pex_config *cfg, const char *pointer);
/* "sources[2].options.query" from "/sources/2/options/query". New string;
 * caller frees. */
char *pex_config_pointer_to_path(const char *pointer);

/* Add to set (a JSON object used as a set) every word of a source's
 * options that could name an identity type: values ("Email: email") and
 * ":name" query parameters. For collectors that do not say which types
 * they search by (see pex_collector.identity_types). */
void pex_config_type_words(const json_t *options, json_t *set);

#ifdef __cplusplus
}
#endif
#endif
