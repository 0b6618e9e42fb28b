/*
 * Pieces shared by the bundle writer and the bundle checker.
 */
#ifndef PEX_BUNDLE_INTERNAL_H
#define PEX_BUNDLE_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "core/buf.h"

#define PEX_BUNDLE_NS "urn:portex:bundle:1"
#define PEX_BUNDLE_XSD "v1/bundle.xsd"

typedef ssize_t (*pex_read_fn)(void *ctx, void *buf, size_t n);

/*
 * Validate an XML document read through read() against the XSD held in
 * memory, streaming (libxml2's reader: memory does not grow with the
 * document). Problems go to errors, one line each ("LINE: message"), at
 * most max_errors. Returns 0 valid, 1 invalid, negative when the check
 * could not run (a broken XSD).
 */
int pex_xsd_validate_stream(const char *xsd, size_t xsd_len,
			    pex_read_fn read, void *ctx, const char *name,
			    struct pex_buf *errors, int max_errors);

/*
 * Push validation: an XML document fed in chunks as it is produced and
 * checked against a compiled XSD without building a tree (SAX), so that
 * validation runs beside the writing instead of after it. The compiled
 * schema is read-only and may serve several validators of one thread.
 */
typedef struct pex_xsd pex_xsd;
typedef struct pex_xsd_push pex_xsd_push;

int pex_xsd_load(pex_xsd **out, const char *xsd, size_t len);
void pex_xsd_free(pex_xsd *x);
int pex_xsd_push_new(pex_xsd_push **out, pex_xsd *x, const char *name);
/* Feed the next bytes; keeps going after the first problem. */
int pex_xsd_push_feed(pex_xsd_push *p, const char *data, size_t len);
/* End the document: 0 valid, 1 invalid (errors says why), < 0 failure. */
int pex_xsd_push_finish(pex_xsd_push *p, struct pex_buf *errors);
void pex_xsd_push_free(pex_xsd_push *p);

/*
 * Attachment files waiting for the seal (attach.c). Each ended file is
 * pending until pex_att_commit() (its record was written) or
 * pex_att_drop_pending() (it was not).
 */
struct pex_att_entry {
	char *zip_name;   /* attachments/<group>/<n>-<name> */
	char *file;       /* in the work folder */
	char *media;
	long long bytes;
	char sha[65];
};

struct pex_att_store {
	/* the folder files go to while they wait: made on first need */
	const char *(*workdir)(void *data);
	void *workdir_data;
	struct pex_att_entry *items;
	size_t count;
	size_t committed;  /* items[0, committed) are kept */
	unsigned long long seq;
	json_t *per_group; /* group -> files so far, for <n> */
};

struct pex_bundle_file;
void pex_att_init(struct pex_att_store *s,
		  const char *(*workdir)(void *data), void *workdir_data);
int pex_att_begin(struct pex_att_store *s, const char *group,
		  const char *name, const char *media,
		  unsigned long long max, struct pex_bundle_file **out);
void pex_att_commit(struct pex_att_store *s);
void pex_att_drop_pending(struct pex_att_store *s);
void pex_att_free(struct pex_att_store *s);

/* A name safe as one path component inside a zip, on every system that
 * unpacks it: valid UTF-8, no separators or characters Windows refuses,
 * no leading dot, no "..", at most max bytes; "file" when nothing is
 * left. */
int pex_safe_name(const char *in, size_t max, struct pex_buf *out);

#endif
