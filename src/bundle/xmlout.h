/*
 * The XML form of the model: the same tree as the JSON, in the namespace
 * urn:portex:bundle:1. An object becomes an element per member: in the
 * order the XSD's xs:sequence gives for a usage event and a matched_by
 * (pex_xml_member_order), in any order elsewhere (xs:all); a list
 * becomes a wrapper element holding
 * one child per item, named by the singular of the list's name ("emails"
 * holds "email"); the free-form "extra" map becomes
 *   <extra><field name="KEY" [type="number|boolean|null"]>VALUE</field>
 * Strings must already be clean (see core/text.h); they are escaped here.
 */
#ifndef PEX_BUNDLE_XMLOUT_H
#define PEX_BUNDLE_XMLOUT_H

#include <jansson.h>

#include "core/buf.h"

/* The element name of one item of the list called name. */
const char *pex_xml_item_name(const char *list_name);

/* The order in which the children of element name must come (a list
 * ending with NULL), or NULL for any order. */
const char *const *pex_xml_member_order(const char *name);

/* Append <name>value</name> for a JSON value to out. */
int pex_xml_write(struct pex_buf *out, const char *name, const json_t *v);

/* Append text with &, <, >, " escaped (and CR as &#13; so it survives
 * XML end-of-line handling). */
int pex_xml_escape(struct pex_buf *out, const char *s, size_t len);

#endif
