/*
 * The bundle writer; see include/portex/bundle.h.
 *
 * Each record is validated against its JSON Schema and serialised twice,
 * as JSON and as XML, into the section of its kind. A section's bytes go
 * in chunks to two worker threads (one for the JSON, one for the XML)
 * that, while the collectors are still reading, write them to a section
 * file, compress them into a joinable deflate segment (bundle/dstream.h)
 * and, for the XML, check them against the bundle XSD.
 *
 * Sealing then only has to add the envelope: data/bundle.json and
 * data/bundle.xml are the envelope and the sections in document order.
 * Their SHA-256 is computed over that order from the section files, and
 * their compressed form is the deflate segments joined, handed to libzip
 * as already-compressed data. The zip goes to a hidden temporary name,
 * is fsynced and only then renamed to the name the user asked for.
 *
 * Why the XML check is split: the bundle XSD gives <bundle> its children
 * with xs:all and each collection a sequence of one record type, so the
 * document is valid exactly when its envelope is (checked at seal, with
 * empty collections) and every record is (checked as it is written, in a
 * document of its own kind's collection). `portex verify` checks the
 * assembled file in one piece, as a receiver would.
 */
#include "portex/bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>
#include <zlib.h>

#include "bundle/concat.h"
#include "bundle/dstream.h"
#include "bundle/internal.h"
#include "bundle/jsonout.h"
#include "bundle/xmlout.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/hash.h"
#include "model/kinds.h"
#include "model/schemas.h"
#include "portex/error.h"
#include "portex/jsonschema.h"

#define PEX_RECORD_MAX (256u << 20) /* one serialised record */
#define PEX_CHUNK (256u << 10)      /* bytes handed to a worker at once */
#define PEX_QUEUE_MAX 8             /* chunks in flight per worker */
#define PEX_SPILL (1u << 20)        /* a section kept in memory up to this */
#define PEX_ZIP_IN_MEM (1u << 20)   /* a zip built in memory up to this */
#define PEX_XSD_HOLD (256u << 10)   /* XML checked at seal up to this */

enum { FMT_JSON, FMT_XML, FMT__COUNT };

/*
 * Two workers per bundle, split by kind of work rather than by format:
 * W_WRITE deflates and stores the sections of both formats, W_XSD checks
 * the XML against the XSD. Checking is the larger part (for 2700 usage
 * events, 15 ms against 5 ms for deflating each format): with a worker
 * per format, the XML one was the last to finish by 15 ms, the JSON one
 * idle since. Each stream's chunks still go through one queue each way,
 * in order.
 */
enum { W_WRITE, W_XSD, W__COUNT };

/* One section of one data file: the records of one kind in one format. */
struct stream {
	pex_bundle *b;
	char name[64];    /* "usage_event.json", for messages */
	char *raw_path;   /* the bytes as they will stand in the file, */
	char *z_path;     /* the same as a deflate segment: once spilled */
	FILE *raw;
	FILE *z;
	struct pex_dstream ds;
	pex_xsd_push *xv; /* XML only */
	/* A section starts in memory, raw only: its deflate is left to the
	 * seal, which deflates it with the text around it in one go (a
	 * small bundle's dozen pieces each paid for a deflate of their own).
	 * Past PEX_SPILL it moves to its files and is deflated as it grows,
	 * a segment of its own. */
	int in_mem;
	char *raw_buf;
	size_t raw_size;
	uint64_t raw_len; /* bytes written to raw */
	struct pex_buf pending;
	/* XML only. A section's XML is held here and checked at seal, with
	 * the envelope and the other small sections, in one document (a
	 * small bundle made four XSD checkers, each reading a synthetic
	 * envelope first, for a record or two each). Past PEX_XSD_HOLD the
	 * section gets an XSD checker of its own (xv) on the XSD worker,
	 * given what was held and then each chunk as it is shipped. */
	struct pex_buf xml_hold;
	int xsd_rc;
	char *xsd_errors;
};

struct job {
	struct stream *st;
	char *data;
	size_t len;
	int end;
	enum pex_record_kind kind;
	int xsd; /* the XSD check of the chunk, not its storing */
	/* or the seal's check of the document (check_xml_doc) */
	pex_bundle *doc;
	const char *env_xml;
};

struct worker {
	pthread_t thr;
	int started;
	int inline_jobs;  /* no thread: jobs run on the caller's */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job q[PEX_QUEUE_MAX];
	int head, count, stop;
	int rc;
	char msg[1024];
	const char *name;
};

struct section {
	struct stream s[FMT__COUNT];
	unsigned long long count;
	int open;
};

struct pex_bundle {
	struct pex_bundle_options opts;
	char *out_path;
	char *tmp_path;
	/* The work folder for spilled sections and attachments: made on
	 * first need (most bundles never need it; making a folder is much
	 * of what a small bundle costs), by whichever thread needs it. */
	char *workdir_template;
	char *workdir;
	pthread_mutex_t work_mu;
	struct section sec[PEX_REC__COUNT];
	struct worker w[W__COUNT];
	struct pex_att_store att;
	int sealed;
	int pending;   /* sealed at tmp_path, commit_later: not renamed */
	int taken;     /* pex_bundle_take_pending: the zip is the caller's */
	int pack_thread; /* started the schema packing: joins it */
	pthread_t pack_thr;
	int doc_rc;    /* the seal's XSD check of the document */
	char *doc_msg;
};

/* ---- workers ----------------------------------------------------------- */

/* The synthetic document a kind's XML records are checked in: a minimal
 * valid envelope, the other collections empty, this one open. */
static char *xsd_frame(enum pex_record_kind kind, int closing)
{
	static const char *const open_tag[PEX_REC__COUNT] = {
		"<contacts>", "<tickets>", "<usage><sessions/><events>",
		"<usage><events/><sessions>",
		"<technical><ip_addresses/><devices>",
		"<technical><devices/><ip_addresses>",
	};
	static const char *const close_tag[PEX_REC__COUNT] = {
		"</contacts>", "</tickets>", "</events></usage>",
		"</sessions></usage>", "</devices></technical>",
		"</ip_addresses></technical>",
	};
	struct pex_buf b = PEX_BUF_INIT(4096);

	if (closing) {
		pex_buf_printf(&b, "%s</bundle>\n", close_tag[kind]);
		return pex_buf_detach(&b);
	}
	pex_buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<bundle xmlns=\"" PEX_BUNDLE_NS "\"><schema>" PEX_BUNDLE_NS
		"</schema><bundle_id>-</bundle_id><generated_at>"
		"2000-01-01T00:00:00Z</generated_at><complete>true</complete>"
		"<engine><name>portex</name><version>-</version></engine>"
		"<controller><name>-</name><contact>-</contact></controller>"
		"<subject><identities/></subject><categories/><sources/>"
		"<warnings/>");
	if (kind != PEX_REC_CONTACT)
		pex_buf_printf(&b, "<contacts/>");
	if (kind != PEX_REC_TICKET)
		pex_buf_printf(&b, "<tickets/>");
	if (kind != PEX_REC_USAGE_EVENT && kind != PEX_REC_SESSION)
		pex_buf_printf(&b, "<usage><events/><sessions/></usage>");
	if (kind != PEX_REC_DEVICE && kind != PEX_REC_IP_ADDRESS)
		pex_buf_printf(&b, "<technical><devices/><ip_addresses/>"
			       "</technical>");
	pex_buf_printf(&b, "%s\n", open_tag[kind]);
	return pex_buf_detach(&b);
}

static char *join(const char *dir, const char *name);

/* The work folder, made on the first call. Returns it or NULL with the
 * error set. */
static const char *bundle_workdir(pex_bundle *b)
{
	const char *dir;

	pthread_mutex_lock(&b->work_mu);
	if (!b->workdir) {
		char *w = strdup(b->workdir_template);

		if (!w) {
			pex_error_set(PEX_ENOMEM, "out of memory");
		} else if (pex_cleanup_mkdtemp(w)) {
			/* made and registered for removal on interruption
			 * in one step (core/cleanup.h) */
			pex_error_set(PEX_EIO, "cannot make a work folder %s: "
				      "%s", b->workdir_template,
				      strerror(errno));
			free(w);
		} else {
			b->workdir = w;
		}
	}
	dir = b->workdir;
	pthread_mutex_unlock(&b->work_mu);
	return dir;
}

static const char *att_workdir(void *data)
{
	return bundle_workdir(data);
}

/* Move a section from memory to its files. */
static int spill(struct stream *st)
{
	const char *dir = bundle_workdir(st->b);
	char zname[80];
	FILE *raw, *z;
	int rc;

	if (!dir)
		return PEX_EIO;
	snprintf(zname, sizeof(zname), "%s.deflate", st->name);
	st->raw_path = join(dir, st->name);
	st->z_path = join(dir, zname);
	if (!st->raw_path || !st->z_path)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	if (fflush(st->raw))
		return pex_error_set(PEX_ENOMEM, "out of memory");
	raw = fopen(st->raw_path, "wb");
	z = fopen(st->z_path, "wb");
	if (!raw || !z ||
	    fwrite(st->raw_buf, 1, st->raw_size, raw) != st->raw_size) {
		if (raw)
			fclose(raw);
		if (z)
			fclose(z);
		return pex_error_set(PEX_EIO, "cannot write %s: %s",
				     st->raw_path, strerror(errno));
	}
	st->z = z;
	st->ds.out = z;
	/* what was kept in memory is deflated now, the rest as it comes */
	rc = pex_dstream_write(&st->ds, st->raw_buf, st->raw_size);
	fclose(st->raw);
	free(st->raw_buf);
	st->raw_buf = NULL;
	st->raw_size = 0;
	st->raw = raw;
	st->in_mem = 0;
	return rc ? pex_error_wrap(rc, "%s", st->name) : 0;
}

/* The XSD check of a chunk of XML: its outcome is kept in the stream
 * (xsd_rc, xsd_errors) for the seal to report, not in the worker. */
static void run_xsd_job(struct job *j)
{
	struct stream *st = j->st;

	if (j->len)
		pex_xsd_push_feed(st->xv, j->data, j->len);
	if (j->end) {
		struct pex_buf errs = PEX_BUF_INIT(64 * 1024);
		char *tail = xsd_frame(j->kind, 1);

		if (tail)
			pex_xsd_push_feed(st->xv, tail, strlen(tail));
		free(tail);
		st->xsd_rc = pex_xsd_push_finish(st->xv, &errs);
		if (st->xsd_rc)
			st->xsd_errors = pex_buf_detach(&errs);
		pex_buf_free(&errs);
	}
}

static int check_xml_doc(pex_bundle *b, const char *env_xml);

static int run_job(struct worker *w, struct job *j)
{
	struct stream *st = j->st;
	int rc = 0;

	if (j->doc) {
		pex_bundle *b = j->doc;

		b->doc_rc = check_xml_doc(b, j->env_xml);
		if (b->doc_rc)
			b->doc_msg = strdup(pex_error_last());
		return 0;
	}
	if (j->xsd) {
		run_xsd_job(j);
		return 0;
	}
	if (st->in_mem && st->raw_len + j->len > PEX_SPILL) {
		rc = spill(st);
		if (rc)
			return rc;
	}

	if (j->len) {
		if (fwrite(j->data, 1, j->len, st->raw) != j->len)
			return pex_error_set(PEX_EIO, "cannot write %s: %s",
					     st->name, strerror(errno));
		st->raw_len += j->len;
		rc = st->in_mem ? 0 : pex_dstream_write(&st->ds, j->data,
							 j->len);
		if (rc)
			return pex_error_wrap(rc, "%s", st->name);
	}
	if (j->end && !st->in_mem) {
		rc = pex_dstream_end(&st->ds, 0);
		if (rc)
			return pex_error_wrap(rc, "%s", st->name);
	}
	(void)w;
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	/* named, so top and perf tell the two apart */
	pthread_setname_np(pthread_self(), w->name);

	for (;;) {
		struct job j;

		pthread_mutex_lock(&w->mu);
		while (!w->count && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->count) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		j = w->q[w->head];
		pthread_mutex_unlock(&w->mu);
		if (!w->rc) {
			int rc = run_job(w, &j);

			if (rc) {
				snprintf(w->msg, sizeof(w->msg), "%s",
					 pex_error_last());
				w->rc = rc; /* read by the owner after join */
			}
		}
		free(j.data);
		pthread_mutex_lock(&w->mu);
		w->head = (w->head + 1) % PEX_QUEUE_MAX;
		w->count--;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

static int worker_start(struct worker *w)
{
	if (w->inline_jobs) {
		w->started = 1;
		return 0;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->thr, NULL, worker_main, w)) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		return pex_error_set(PEX_ERROR, "cannot start a thread");
	}
	w->started = 1;
	return 0;
}

/* Queue a job; takes data (malloc'd). Waits while the queue is full, so
 * memory stays bounded however fast records arrive. */
static int worker_push(struct worker *w, struct job j)
{
	int rc;

	if (w->inline_jobs) {
		if (!w->rc) {
			w->rc = run_job(w, &j);
			if (w->rc)
				snprintf(w->msg, sizeof(w->msg), "%s",
					 pex_error_last());
		}
		free(j.data);
		return w->rc ? pex_error_set(w->rc, "%s", w->msg) : 0;
	}
	pthread_mutex_lock(&w->mu);
	while (w->count == PEX_QUEUE_MAX)
		pthread_cond_wait(&w->cv, &w->mu);
	w->q[(w->head + w->count) % PEX_QUEUE_MAX] = j;
	w->count++;
	rc = w->rc;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (rc)
		return pex_error_set(rc, "%s", w->msg);
	return 0;
}

/* Wait until the queue is empty and stop the thread. */
static int worker_stop(struct worker *w)
{
	if (!w->started)
		return 0;
	if (w->inline_jobs) {
		w->started = 0;
		return w->rc ? pex_error_set(w->rc, "%s", w->msg) : 0;
	}
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thr, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	w->started = 0;
	if (w->rc)
		return pex_error_set(w->rc, "%s", w->msg);
	return 0;
}

/* ---- compiled schemas, shared -------------------------------------------- */

/*
 * The record, envelope and manifest schemas and the XSD are compiled once
 * per process and shared by every bundle (compiled schemas are read-only;
 * a batch of a hundred bundles would otherwise compile them a hundred
 * times). They live until the process ends.
 */
static struct {
	pthread_once_t once;
	int rc;
	char msg[1024];
	pex_schema_registry *reg;
	pex_schema *kind[PEX_REC__COUNT];
	pex_schema *bundle;
	pex_schema *manifest;
	pex_xsd *xsd;
} model = { .once = PTHREAD_ONCE_INIT };

/*
 * Every schema file, deflated and hashed once: they go into every
 * bundle. Wanted only at the seal, so a bundle with threads has this
 * done on a thread of its own from the open, where the process is
 * still starting on one core (about 1 ms: the deflate, and OpenSSL's
 * start-up at the first hash); the seal then finds it done, or waits
 * for it, or does it itself (pthread_once). The bundle that started the
 * thread joins it when freed.
 */
static struct {
	pthread_once_t once;
	int rc;
	char msg[1024];
	struct packed_file {
		unsigned char *z;
		size_t zlen;
		uint32_t crc;
		char sha[PEX_SHA256_HEX];
	} *packed;
} pack = { .once = PTHREAD_ONCE_INIT };

/*
 * libzip 1.7 fills two static tables at the first zip_open_from_source()
 * (zip_open() goes through it too) without a lock: a thread that saw
 * the first filled and not yet the second took every source for
 * read-only, and a seal failed with "Read-only archive". A batch's jobs
 * seal their first bundles at about the same moment: about one batch in
 * a hundred of weblog_batch_test's lost a bundle so. One open here,
 * under the model's pthread_once, fills them before any seal.
 */
static void zip_warm_up(void)
{
	zip_error_t ze;
	zip_source_t *src;
	zip_t *za;

	zip_error_init(&ze);
	src = zip_source_buffer_create(NULL, 0, 0, &ze);
	za = src ? zip_open_from_source(src, ZIP_TRUNCATE, &ze) : NULL;
	if (za)
		zip_discard(za); /* and src with it */
	else
		zip_source_free(src);
	zip_error_fini(&ze);
}

static void model_init(void)
{
	const struct pex_schema_file *xsd;
	int rc, k;

	rc = pex_schemas_registry(&model.reg);
	for (k = 0; !rc && k < PEX_REC__COUNT; k++) {
		char id[128];

		rc = pex_schema_compile_uri(&model.kind[k], model.reg,
					    pex_record_schema_id(k, id,
								 sizeof(id)));
	}
	if (!rc)
		rc = pex_schema_compile_uri(&model.bundle, model.reg,
					    "urn:portex:schema:1:bundle");
	if (!rc)
		rc = pex_schema_compile_uri(&model.manifest, model.reg,
					    "urn:portex:schema:1:manifest");
	if (!rc) {
		xsd = pex_schema_file_find(PEX_BUNDLE_XSD);
		rc = xsd ? pex_xsd_load(&model.xsd, xsd->data, xsd->len)
			 : pex_error_set(PEX_ENOTFOUND, "no bundle XSD");
	}
	if (!rc)
		zip_warm_up();
	model.rc = rc;
	if (rc)
		snprintf(model.msg, sizeof(model.msg), "%s",
			 pex_error_last());
}

static int model_get(void)
{
	pthread_once(&model.once, model_init);
	if (model.rc)
		return pex_error_set(model.rc, "%s", model.msg);
	return 0;
}

static void pack_init(void)
{
	const struct pex_schema_file *f;
	size_t n = 0;
	int rc = 0;

	for (f = pex_schema_files; f->name; f++)
		n++;
	pack.packed = calloc(n + 1, sizeof(*pack.packed));
	if (!pack.packed)
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
	for (n = 0, f = pex_schema_files; !rc && f->name; f++, n++) {
		rc = pex_deflate_segment(f->data, f->len, 6, 1,
					 &pack.packed[n].z,
					 &pack.packed[n].zlen,
					 &pack.packed[n].crc);
		if (!rc)
			rc = pex_sha256_hex(f->data, f->len,
					    pack.packed[n].sha);
	}
	pack.rc = rc;
	if (rc)
		snprintf(pack.msg, sizeof(pack.msg), "%s", pex_error_last());
}

static int pack_get(void)
{
	pthread_once(&pack.once, pack_init);
	if (pack.rc)
		return pex_error_set(pack.rc, "%s", pack.msg);
	return 0;
}

static void *pack_main(void *arg)
{
	(void)arg;
	pthread_once(&pack.once, pack_init);
	return NULL;
}

/* Start the packing on a thread, once per process; returns 1 when this
 * call started it: that bundle joins the thread when it is freed (an
 * export that fails before its seal must not end the process, and with
 * it OpenSSL's state, under a thread still hashing). */
static int pack_start(pthread_t *thr)
{
	static int started;

	if (__atomic_exchange_n(&started, 1, __ATOMIC_ACQ_REL))
		return 0;
	return !pthread_create(thr, NULL, pack_main, NULL);
}

/* ---- opening ----------------------------------------------------------- */

static char *join(const char *dir, const char *name)
{
	struct pex_buf b = PEX_BUF_INIT(8192);

	if (pex_buf_printf(&b, "%s/%s", dir, name)) {
		pex_buf_free(&b);
		return NULL;
	}
	return pex_buf_detach(&b);
}

int pex_bundle_open(pex_bundle **out, const char *out_path,
		    const struct pex_bundle_options *opts)
{
	struct pex_bundle_options defaults = PEX_BUNDLE_OPTIONS_INIT;
	char *tmp = NULL, *dir, *base, *work = NULL;
	pex_bundle *b;
	int rc;
	struct stat st;

	*out = NULL;
	if (!stat(out_path, &st) && S_ISDIR(st.st_mode))
		return pex_error_set(PEX_EINVALID,
				     "%s is a folder; give a file name for "
				     "the bundle, e.g. %s/bundle.zip",
				     out_path, out_path);
	b = calloc(1, sizeof(*b));
	if (!b)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	pthread_mutex_init(&b->work_mu, NULL);
	b->opts = opts ? *opts : defaults;
	if (b->opts.compression < 1 || b->opts.compression > 9)
		b->opts.compression = 3;
	b->out_path = strdup(out_path);
	tmp = strdup(out_path);
	if (!b->out_path || !tmp) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto fail;
	}
	dir = dirname(tmp);
	base = basename(b->out_path);
	{
		struct pex_buf p = PEX_BUF_INIT(8192);

		/* tagged with host and process: a later run can tell a
		 * killed run's leftovers (core/cleanup.h) */
		pex_buf_printf(&p, "%s/.%s.%s-work-XXXXXX", dir, base,
			       pex_cleanup_tag());
		work = pex_buf_detach(&p);
		pex_buf_printf(&p, "%s/.%s.%s.tmp", dir, base,
			       pex_cleanup_tag());
		b->tmp_path = pex_buf_detach(&p);
	}
	if (!work || !b->tmp_path) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto fail;
	}
	/* The folder must be writable: find out now, not after a long
	 * collection. */
	if (access(dir, W_OK | X_OK)) {
		rc = pex_error_set(PEX_EIO,
				   "cannot write in %s (%s); choose an output "
				   "path in a folder you can write to",
				   dir, strerror(errno));
		goto fail;
	}
	/* One prefix entry covers both the temporary zip and libzip's own
	 * "<tmp_path>.XXXXXX" that zip_close() renames to it: names that
	 * begin with ".NAME.portex-PID.tmp" are only ever made by us. */
	rc = pex_cleanup_add(b->tmp_path, PEX_CLEANUP_PREFIX);
	if (rc)
		goto fail;
	b->workdir_template = work;
	work = NULL;
	pex_att_init(&b->att, att_workdir, b);
	if (b->opts.threads)
		b->pack_thread = pack_start(&b->pack_thr);
	rc = model_get();
	b->w[W_WRITE].name = "portex-write";
	b->w[W_XSD].name = "portex-xsd";
	b->w[W_WRITE].inline_jobs = b->w[W_XSD].inline_jobs =
		!b->opts.threads;
	if (rc)
		goto fail;
	free(tmp);
	*out = b;
	return 0;
fail:
	free(tmp);
	free(work);
	pex_bundle_free(b);
	return rc;
}

/* ---- records ----------------------------------------------------------- */

struct first_error {
	struct pex_buf msg;
};

static int record_error(const pex_schema_error *e, void *payload)
{
	struct first_error *fe = payload;

	pex_buf_printf(&fe->msg, "%s: %s", e->instance_path[0] ?
		       e->instance_path : "(record)", e->message);
	return 1;
}

static int open_stream(pex_bundle *b, enum pex_record_kind kind, int fmt)
{
	struct stream *st = &b->sec[kind].s[fmt];
	const char *ext = fmt == FMT_JSON ? "json" : "xml";
	char name[64];
	int rc;

	snprintf(name, sizeof(name), "%s.%s", pex_record_kind_name(kind),
		 ext);
	st->b = b;
	memcpy(st->name, name, sizeof(st->name));
	pex_buf_init(&st->pending, PEX_RECORD_MAX + PEX_CHUNK);
	/* Sections start in memory: most bundles are small, and creating
	 * files is what a batch of small bundles spends its time on. A
	 * section that grows past PEX_SPILL moves to its files. */
	st->raw = open_memstream(&st->raw_buf, &st->raw_size);
	st->in_mem = 1;
	if (!st->raw)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	rc = pex_dstream_init(&st->ds, NULL, b->opts.compression);
	if (rc)
		return rc;
	if (fmt == FMT_XML)
		pex_buf_init(&st->xml_hold, PEX_XSD_HOLD);
	return rc;
}

/* Give an XML section an XSD checker of its own, fed the synthetic
 * envelope it is checked in (on the caller's thread, before any chunk of
 * it goes to the XSD worker); what was held of the section goes to the
 * worker as its first job. */
static int stream_xsd_start(pex_bundle *b, struct stream *st,
			    enum pex_record_kind kind)
{
	char *frame = xsd_frame(kind, 0);
	struct job h = { .st = st, .len = st->xml_hold.len, .kind = kind,
			 .xsd = 1 };
	int rc = frame ? pex_xsd_push_new(&st->xv, model.xsd, st->name)
		       : pex_error_set(PEX_ENOMEM, "out of memory");

	if (!rc)
		pex_xsd_push_feed(st->xv, frame, strlen(frame));
	free(frame);
	if (!rc && h.len) {
		h.data = pex_buf_detach(&st->xml_hold);
		rc = h.data ? worker_push(&b->w[W_XSD], h)
			    : pex_error_set(PEX_ENOMEM, "out of memory");
	}
	pex_buf_free(&st->xml_hold);
	return rc;
}

static int open_section(pex_bundle *b, enum pex_record_kind kind)
{
	int rc = 0, f;

	/* the workers start with the first record: an empty bundle needs
	 * none */
	for (f = 0; !rc && f < W__COUNT; f++)
		if (!b->w[f].started && (f == W_WRITE || b->opts.xml))
			rc = worker_start(&b->w[f]);
	if (!rc)
		rc = open_stream(b, kind, FMT_JSON);

	if (!rc && b->opts.xml)
		rc = open_stream(b, kind, FMT_XML);
	b->sec[kind].open = 1;
	return rc;
}

/* Hand the pending bytes of a stream to the workers: to be stored, and
 * for XML a copy of them to be checked (held for the seal while the
 * section is small, see xml_hold). */
static int ship(pex_bundle *b, enum pex_record_kind kind, int fmt, int end)
{
	struct stream *st = &b->sec[kind].s[fmt];
	struct job j = { .st = st, .len = st->pending.len, .end = end,
			 .kind = kind };
	struct job x = j;
	int rc;

	if (!st->pending.len && !end)
		return 0;
	if (fmt == FMT_XML && !st->xv) {
		if (st->xml_hold.len + j.len <= PEX_XSD_HOLD) {
			rc = pex_buf_append(&st->xml_hold, st->pending.data
					    ? st->pending.data : "", j.len);
			if (rc)
				return rc;
		} else {
			rc = stream_xsd_start(b, st, kind);
			if (rc)
				return rc;
		}
	}
	x.xsd = 1;
	if (st->xv && j.len) {
		x.data = malloc(j.len);
		if (!x.data)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		memcpy(x.data, st->pending.data, j.len);
	}
	j.data = pex_buf_detach(&st->pending);
	if (!j.data) {
		free(x.data);
		return pex_error_set(PEX_ENOMEM, "out of memory");
	}
	rc = worker_push(&b->w[W_WRITE], j);
	if (!rc && st->xv)
		return worker_push(&b->w[W_XSD], x);
	free(x.data);
	return rc;
}

int pex_bundle_add(pex_bundle *b, enum pex_record_kind kind,
		   const json_t *record)
{
	struct section *s;
	struct stream *js, *xs;
	struct first_error fe;
	int rc;

	if ((unsigned)kind >= PEX_REC__COUNT || b->sealed)
		return pex_error_set(PEX_EUSAGE, "bad record kind or sealed");
	s = &b->sec[kind];
	pex_buf_init(&fe.msg, 4096);
	rc = pex_schema_validate(model.kind[kind], record,
				 PEX_SCHEMA_FIRST_ERROR, record_error, &fe);
	if (rc) {
		json_t *id = json_object_get(record, "id");

		if (rc == 1)
			rc = pex_error_set(PEX_EINVALID,
					   "%s record %s does not meet its "
					   "schema: %s",
					   pex_record_kind_name(kind),
					   json_is_string(id) ?
					   json_string_value(id) : "(no id)",
					   fe.msg.data ? fe.msg.data : "");
		pex_buf_free(&fe.msg);
		return rc;
	}
	pex_buf_free(&fe.msg);
	if (!s->open) {
		rc = open_section(b, kind);
		if (rc)
			return rc;
	}
	js = &s->s[FMT_JSON];
	rc = pex_buf_append(&js->pending, s->count ? ",\n    " : "\n    ",
			    s->count ? 6 : 5);
	if (!rc)
		rc = pex_json_write(&js->pending, record);
	if (rc == PEX_ELIMIT)
		rc = pex_error_set(PEX_ELIMIT,
				   "a %s record is larger than %u bytes",
				   pex_record_kind_name(kind),
				   PEX_RECORD_MAX);
	else if (rc) {
		json_t *id = json_object_get(record, "id");

		rc = pex_error_wrap(rc, "%s record %s",
				    pex_record_kind_name(kind),
				    json_is_string(id) ? json_string_value(id)
						       : "(no id)");
	}
	if (!rc && js->pending.len >= PEX_CHUNK)
		rc = ship(b, kind, FMT_JSON, 0);
	if (!rc && b->opts.xml) {
		xs = &s->s[FMT_XML];
		rc = pex_xml_write(&xs->pending, pex_xml_item_name(
					   pex_record_kind_plural(kind)),
				   record);
		if (!rc)
			rc = pex_buf_putc(&xs->pending, '\n');
		if (!rc && xs->pending.len >= PEX_CHUNK)
			rc = ship(b, kind, FMT_XML, 0);
	}
	if (rc)
		return rc;
	s->count++;
	return 0;
}

unsigned long long pex_bundle_count(const pex_bundle *b,
				    enum pex_record_kind kind)
{
	return (unsigned)kind < PEX_REC__COUNT ? b->sec[kind].count : 0;
}

/* ---- assembling the data files ----------------------------------------- */

/* Where each kind sits in the document: top level, or inside a group. */
static const struct {
	const char *group; /* NULL: top level */
	enum pex_record_kind kinds[2];
	int nkinds;
} layout[] = {
	{ NULL, { PEX_REC_CONTACT }, 1 },
	{ NULL, { PEX_REC_TICKET }, 1 },
	{ "usage", { PEX_REC_USAGE_EVENT, PEX_REC_SESSION }, 2 },
	{ "technical", { PEX_REC_DEVICE, PEX_REC_IP_ADDRESS }, 2 },
};
#define NLAYOUT (sizeof(layout) / sizeof(layout[0]))

/*
 * A data file in document order: text pieces (the envelope, the brackets
 * between collections) and sections. It is kept twice: as the bytes of
 * the file (for SHA-256) and as joined deflate segments (for the zip).
 */
struct docfile {
	struct pex_concat plain;
	struct pex_concat packed;
	struct pex_buf text;  /* text not yet turned into a segment */
	int level;
	uint32_t crc;
	uint64_t ulen;
	int64_t clen;
	int started;
	z_stream zs;
	int zopen;
};

static int doc_flush_text(struct docfile *d, int last)
{
	unsigned char *seg;
	size_t n;
	uint32_t crc;
	int rc;

	if (!d->text.len && !last)
		return 0;
	/* one zlib state serves every text piece of the file (reset, not
	 * re-made: a bundle has a dozen pieces) */
	if (!d->zopen) {
		/* sized to the first piece, the envelope's head: the
		 * largest as a rule */
		rc = pex_deflate_init_for(&d->zs, d->level, d->text.len);
		if (rc)
			return rc;
		d->zopen = 1;
	} else {
		deflateReset(&d->zs);
	}
	rc = pex_deflate_with(&d->zs, d->text.data ? d->text.data : "",
			      d->text.len, last, &seg, &n, &crc);
	if (rc)
		return rc;
	d->crc = d->started ? (uint32_t)crc32_combine(d->crc, crc,
					(z_off_t)d->text.len) : crc;
	d->started = 1;
	d->ulen += d->text.len;
	d->clen += (int64_t)n;
	rc = pex_concat_add_mem(&d->plain, d->text.data ? d->text.data : "",
				d->text.len);
	if (!rc)
		rc = pex_concat_add_owned(&d->packed, (char *)seg, n);
	else
		free(seg);
	pex_buf_reset(&d->text);
	return rc;
}

static int doc_text(struct docfile *d, const char *s)
{
	return pex_buf_append(&d->text, s, strlen(s));
}

static int doc_section(struct docfile *d, const struct stream *st)
{
	struct stat zs;
	int rc;

	/* in memory: text like the text around it, deflated with it */
	if (st->in_mem)
		return pex_buf_append(&d->text, st->raw_buf ? st->raw_buf : "",
				      st->raw_size);
	rc = doc_flush_text(d, 0);
	if (rc)
		return rc;
	if (stat(st->z_path, &zs)) {
		return pex_error_set(PEX_EIO, "cannot stat %s: %s", st->z_path,
				     strerror(errno));
	}
	d->crc = d->started ? (uint32_t)crc32_combine(d->crc, st->ds.crc,
					(z_off_t)st->ds.ulen) : st->ds.crc;
	d->started = 1;
	d->ulen += st->ds.ulen;
	d->clen += zs.st_size;
	rc = pex_concat_add_file(&d->plain, st->raw_path);
	return rc ? rc : pex_concat_add_file(&d->packed, st->z_path);
}

static void doc_free(struct docfile *d)
{
	if (d->zopen)
		deflateEnd(&d->zs);
	d->zopen = 0;
	pex_concat_free(&d->plain);
	pex_concat_free(&d->packed);
	pex_buf_free(&d->text);
}

static int build_json(pex_bundle *b, const json_t *envelope,
		      struct docfile *d)
{
	char *head = json_dumps(envelope, JSON_INDENT(2));
	size_t len, i;
	int rc, j;

	if (!head)
		return pex_error_set(PEX_ENOMEM, "cannot write the envelope");
	len = strlen(head);
	while (len && head[len - 1] != '}')
		len--;
	if (len)
		len--; /* drop the closing brace: collections follow */
	while (len && (head[len - 1] == '\n' || head[len - 1] == ' '))
		len--;
	rc = pex_buf_append(&d->text, head, len);
	free(head);
	for (i = 0; !rc && i < NLAYOUT; i++) {
		const char *ind = layout[i].group ? "    " : "  ";

		if (layout[i].group) {
			rc = doc_text(d, ",\n  \"");
			if (!rc)
				rc = doc_text(d, layout[i].group);
			if (!rc)
				rc = doc_text(d, "\": {");
		}
		for (j = 0; !rc && j < layout[i].nkinds; j++) {
			enum pex_record_kind k = layout[i].kinds[j];
			struct section *s = &b->sec[k];
			char open[96];

			snprintf(open, sizeof(open), "%s\n%s\"%s\": [",
				 layout[i].group && j == 0 ? "" : ",", ind,
				 pex_record_kind_plural(k));
			rc = doc_text(d, open);
			if (!rc && s->count) {
				rc = doc_section(d, &s->s[FMT_JSON]);
				if (!rc)
					rc = doc_text(d, "\n");
				if (!rc)
					rc = doc_text(d, ind);
			}
			if (!rc)
				rc = doc_text(d, "]");
		}
		if (!rc && layout[i].group)
			rc = doc_text(d, "\n  }");
	}
	if (!rc)
		rc = doc_text(d, "\n}\n");
	return rc ? rc : doc_flush_text(d, 1);
}

/* The envelope as XML (everything but the collections). */
static char *envelope_xml(const json_t *envelope)
{
	static const char prolog[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<bundle xmlns=\"" PEX_BUNDLE_NS "\">\n";
	struct pex_buf x = PEX_BUF_INIT(64u << 20);
	const char *key;
	json_t *v;
	int rc = pex_buf_append(&x, prolog, sizeof(prolog) - 1);

	json_object_foreach((json_t *)envelope, key, v) {
		if (rc)
			break;
		rc = pex_xml_write(&x, key, v);
		if (!rc)
			rc = pex_buf_putc(&x, '\n');
	}
	if (rc) {
		pex_buf_free(&x);
		return NULL;
	}
	return pex_buf_detach(&x);
}

static int build_xml(pex_bundle *b, const char *env_xml, struct docfile *d)
{
	size_t i;
	int rc, j;

	rc = doc_text(d, env_xml);
	for (i = 0; !rc && i < NLAYOUT; i++) {
		if (layout[i].group) {
			rc = doc_text(d, "<");
			if (!rc)
				rc = doc_text(d, layout[i].group);
			if (!rc)
				rc = doc_text(d, ">");
		}
		for (j = 0; !rc && j < layout[i].nkinds; j++) {
			enum pex_record_kind k = layout[i].kinds[j];
			const char *name = pex_record_kind_plural(k);
			char tag[64];

			snprintf(tag, sizeof(tag), "<%s>\n", name);
			rc = doc_text(d, tag);
			if (!rc && b->sec[k].count)
				rc = doc_section(d, &b->sec[k].s[FMT_XML]);
			snprintf(tag, sizeof(tag), "</%s>\n", name);
			if (!rc)
				rc = doc_text(d, tag);
		}
		if (!rc && layout[i].group) {
			rc = doc_text(d, "</");
			if (!rc)
				rc = doc_text(d, layout[i].group);
			if (!rc)
				rc = doc_text(d, ">\n");
		}
	}
	if (!rc)
		rc = doc_text(d, "</bundle>\n");
	return rc ? rc : doc_flush_text(d, 1);
}

/* The document as check_xml_doc() feeds it, with the lines each held
 * section takes, so that a failure names the records' kind. */
struct doc_feed {
	pex_xsd_push *v;
	int line; /* the line the next byte is on */
	int from[PEX_REC__COUNT], to[PEX_REC__COUNT];
};

static void feedn(struct doc_feed *f, const char *s, size_t n)
{
	const char *p = s, *e = s + n;

	pex_xsd_push_feed(f->v, s, n);
	while ((p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
		f->line++;
		p++;
	}
}

static void feed(struct doc_feed *f, const char *s)
{
	feedn(f, s, strlen(s));
}

/*
 * data/bundle.xml against the XSD, as it will stand: the envelope and
 * every section whose XML was held (see xml_hold); a section checked on
 * its own (xv) stands empty here. A failure inside a held section is
 * reported as the streamed ones are, naming the records' kind; the line
 * is the checked document's, which for a small bundle is the file's.
 */
static int check_xml_doc(pex_bundle *b, const char *env_xml)
{
	struct pex_buf errs = PEX_BUF_INIT(64 * 1024);
	struct doc_feed f = { NULL, 1, { 0 }, { 0 } };
	size_t i;
	int j, k, line, rc = pex_xsd_push_new(&f.v, model.xsd,
					      "data/bundle.xml");

	if (!rc) {
		feed(&f, env_xml);
		for (i = 0; i < NLAYOUT; i++) {
			if (layout[i].group) {
				feed(&f, "<");
				feed(&f, layout[i].group);
				feed(&f, ">");
			}
			for (j = 0; j < layout[i].nkinds; j++) {
				enum pex_record_kind kd = layout[i].kinds[j];
				const struct stream *st =
					&b->sec[kd].s[FMT_XML];

				feed(&f, "<");
				feed(&f, pex_record_kind_plural(kd));
				feed(&f, ">\n");
				f.from[kd] = f.line;
				if (b->sec[kd].count && !st->xv &&
				    st->xml_hold.len)
					feedn(&f, st->xml_hold.data,
					      st->xml_hold.len);
				f.to[kd] = f.line;
				feed(&f, "</");
				feed(&f, pex_record_kind_plural(kd));
				feed(&f, ">\n");
			}
			if (layout[i].group) {
				feed(&f, "</");
				feed(&f, layout[i].group);
				feed(&f, ">\n");
			}
		}
		feed(&f, "</bundle>\n");
		rc = pex_xsd_push_finish(f.v, &errs);
	}
	if (rc == 1) {
		/* the first error's line: in a held section, or not */
		for (k = 0; k < PEX_REC__COUNT; k++)
			if (errs.data && sscanf(errs.data, "line %d", &line) == 1
			    && f.from[k] < f.to[k] && line >= f.from[k] &&
			    line < f.to[k])
				break;
		if (k < PEX_REC__COUNT)
			rc = pex_error_set(PEX_EINVALID, "data/bundle.xml: the "
					   "%s records do not meet %s: %s",
					   pex_record_kind_name(k),
					   PEX_BUNDLE_XSD, errs.data);
		else
			rc = pex_error_set(PEX_EINVALID, "data/bundle.xml does "
					   "not meet %s: %s", PEX_BUNDLE_XSD,
					   errs.data ? errs.data : "");
	}
	pex_xsd_push_free(f.v);
	pex_buf_free(&errs);
	return rc;
}

/* ---- sealing ----------------------------------------------------------- */

struct entry {
	const char *name;   /* path inside the zip */
	const char *media;  /* media type for the manifest */
	const char *schema; /* schema file that validates it, or NULL */
	const char *data;   /* memory entry */
	size_t len;
	struct docfile *doc; /* or a data file */
	const char *file;    /* or an attachment file */
	const struct packed_file *packed; /* data deflated already */
	int64_t bytes;
	char sha[PEX_SHA256_HEX];
};

struct hashjob {
	struct entry *e;
	int rc;
	char msg[1024];
};

static void *hash_doc(void *arg)
{
	struct hashjob *h = arg;
	pex_sha256 *ctx = NULL;
	static const size_t bufsz = 1 << 20;
	char *buf = malloc(bufsz);
	ssize_t k;
	int rc = buf ? pex_sha256_new(&ctx)
		     : pex_error_set(PEX_ENOMEM, "out of memory");

	h->e->bytes = 0;
	pex_concat_rewind(&h->e->doc->plain);
	while (!rc && (k = pex_concat_read(&h->e->doc->plain, buf,
					   bufsz)) != 0) {
		if (k < 0) {
			rc = PEX_EIO;
			break;
		}
		rc = pex_sha256_update(ctx, buf, (size_t)k);
		h->e->bytes += k;
	}
	if (!rc && (uint64_t)h->e->bytes != h->e->doc->ulen)
		rc = pex_error_set(PEX_EIO, "%s changed while sealing",
				   h->e->name);
	if (!rc)
		rc = pex_sha256_final(ctx, h->e->sha);
	if (rc)
		snprintf(h->msg, sizeof(h->msg), "%s", pex_error_last());
	h->rc = rc;
	pex_sha256_free(ctx);
	free(buf);
	return NULL;
}

struct zsrc {
	struct pex_concat *c;   /* the deflated bytes */
	struct pex_concat own;  /* c for a memory entry */
	uint64_t ulen;
	uint64_t clen;
	uint32_t crc;
	time_t mtime;
	zip_error_t err;
};

/* libzip source for deflated data (a data file's joined segments, a
 * schema deflated once): says so in its stat, so libzip stores the bytes
 * without compressing them again. */
static zip_int64_t doc_cb(void *ud, void *data, zip_uint64_t len,
			  zip_source_cmd_t cmd)
{
	struct zsrc *z = ud;
	zip_stat_t *st;
	ssize_t n;

	switch (cmd) {
	case ZIP_SOURCE_OPEN:
		pex_concat_rewind(z->c);
		return 0;
	case ZIP_SOURCE_READ:
		n = pex_concat_read(z->c, data, len);
		if (n < 0) {
			zip_error_set(&z->err, ZIP_ER_READ, EIO);
			return -1;
		}
		return n;
	case ZIP_SOURCE_CLOSE:
		return 0;
	case ZIP_SOURCE_STAT:
		st = data;
		zip_stat_init(st);
		st->size = z->ulen;
		st->comp_size = z->clen;
		st->comp_method = ZIP_CM_DEFLATE;
		st->crc = z->crc;
		st->mtime = z->mtime;
		st->valid |= ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE |
			     ZIP_STAT_COMP_METHOD | ZIP_STAT_CRC |
			     ZIP_STAT_MTIME;
		return sizeof(*st);
	case ZIP_SOURCE_ERROR:
		return zip_error_to_data(&z->err, data, len);
	case ZIP_SOURCE_FREE:
		zip_error_fini(&z->err);
		pex_concat_free(&z->own);
		free(z);
		return 0;
	case ZIP_SOURCE_SUPPORTS:
		return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN,
			ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE, ZIP_SOURCE_STAT,
			ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, -1);
	default:
		zip_error_set(&z->err, ZIP_ER_OPNOTSUPP, 0);
		return -1;
	}
}

/* Deflate a memory entry into *pk and point the entry at it. */
static int pack_entry(struct entry *e, struct packed_file *pk, int level)
{
	int rc = pex_deflate_segment(e->data, e->len, level, 1, &pk->z,
				     &pk->zlen, &pk->crc);

	if (!rc)
		e->packed = pk;
	return rc;
}

static int add_entry(zip_t *za, const struct entry *e, time_t mtime,
		     int level)
{
	zip_source_t *src;
	zip_int64_t idx;

	if (e->doc || e->packed) {
		struct zsrc *z = calloc(1, sizeof(*z));

		if (!z)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		if (e->doc) {
			z->c = &e->doc->packed;
			z->ulen = e->doc->ulen;
			z->clen = (uint64_t)e->doc->clen;
			z->crc = e->doc->crc;
		} else if (pex_concat_add_borrowed(&z->own,
				(const char *)e->packed->z, e->packed->zlen)) {
			free(z);
			return PEX_ENOMEM;
		} else {
			z->c = &z->own;
			z->ulen = e->len;
			z->clen = e->packed->zlen;
			z->crc = e->packed->crc;
		}
		z->mtime = mtime;
		zip_error_init(&z->err);
		src = zip_source_function(za, doc_cb, z);
		if (!src) {
			pex_concat_free(&z->own);
			free(z);
		}
	} else if (e->file) {
		src = zip_source_file(za, e->file, 0, -1);
	} else {
		src = zip_source_buffer(za, e->data, e->len, 0);
	}
	if (!src)
		return pex_error_set(PEX_ERROR, "zip: %s", zip_strerror(za));
	idx = zip_file_add(za, e->name, src, ZIP_FL_ENC_UTF_8);
	if (idx < 0) {
		zip_source_free(src);
		return pex_error_set(PEX_ERROR, "zip: %s", zip_strerror(za));
	}
	/* Unix mode 0644 for what the person unpacks (libzip's default,
	 * 0666, would make every file writable by anyone on their
	 * machine) */
	if ((!e->doc && !e->packed &&
	     zip_set_file_compression(za, (zip_uint64_t)idx,
						 ZIP_CM_DEFLATE,
						 (zip_uint32_t)level)) ||
	    zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0,
					     ZIP_OPSYS_UNIX,
					     (zip_uint32_t)(0100644) << 16) ||
	    zip_file_set_mtime(za, (zip_uint64_t)idx, mtime, 0))
		return pex_error_set(PEX_ERROR, "zip: %s", zip_strerror(za));
	return 0;
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v ? v : "";
}

/* Whether a kind of data holds any of the person's: a source of that
 * category found records, or failed (then it may). */
/* The category whose Art. 15 facts describe a kind of record, whatever
 * the source's own category: a web log's source is "usage", and also
 * yields the devices and addresses that are "technical" data. */
static const char *kind_category(enum pex_record_kind k)
{
	switch (k) {
	case PEX_REC_CONTACT:
		return "contact";
	case PEX_REC_TICKET:
		return "service";
	case PEX_REC_USAGE_EVENT:
	case PEX_REC_SESSION:
		return "usage";
	case PEX_REC_DEVICE:
	case PEX_REC_IP_ADDRESS:
		return "technical";
	default:
		return "";
	}
}

/* Whether the person's data includes the category: a source of it found
 * something (or failed: it may hold some), or records of a kind it
 * describes are in the bundle. */
static int category_held(const pex_bundle *b, const json_t *env,
			 const char *name)
{
	const json_t *s;
	size_t i;

	for (i = 0; i < PEX_REC__COUNT; i++)
		if (b->sec[i].count &&
		    !strcmp(kind_category((enum pex_record_kind)i), name))
			return 1;
	json_array_foreach(json_object_get(env, "sources"), i, s)
		if (!strcmp(jstr(s, "category"), name) &&
		    (json_integer_value(json_object_get(s, "records")) > 0 ||
		     !strcmp(jstr(s, "status"), "failed")))
			return 1;
	return 0;
}

/* A list of strings as "a; b; c". */
static void put_list(struct pex_buf *r, const json_t *arr)
{
	const json_t *v;
	size_t i;

	json_array_foreach(arr, i, v)
		pex_buf_printf(r, "%s%s", i ? "; " : "", json_string_value(v));
}

/* README.txt: for the person, in plain words; the facts of GDPR Art. 15
 * come from the config through the envelope. */
static char *make_readme(const pex_bundle *b, const json_t *env,
			 struct entry *ents, size_t n)
{
	struct pex_buf r = PEX_BUF_INIT(1u << 20);
	const json_t *ctl = json_object_get(env, "controller");
	const json_t *s, *c;
	size_t i, natt = 0;

	pex_buf_printf(&r,
		"This archive holds the personal data that %s keeps about you,\n"
		"exported on %s in answer to request %s.\n\n",
		jstr(ctl, "name"), jstr(env, "generated_at"),
		json_is_string(json_object_get(env, "request_id")) ?
		jstr(env, "request_id") : "(none given)");
	pex_buf_printf(&r, "%s\n\n", json_is_true(json_object_get(env,
		       "complete")) ?
		"The export is complete: every configured source was "
		"searched." :
		"THE EXPORT IS NOT COMPLETE: at least one source could not "
		"be read.\nThe list below and manifest.json name each one "
		"and the reason.");
	{
		const json_t *id, *srcs = json_object_get(env, "sources");
		json_int_t total = 0;

		/* what was searched for, and what it found in all */
		pex_buf_printf(&r, "Searched for: ");
		json_array_foreach(json_object_get(json_object_get(env,
				"subject"), "identities"), i, id)
			pex_buf_printf(&r, "%s%s %s%s", i ? "; " : "",
				       jstr(id, "type"), jstr(id, "value"),
				       json_object_get(id, "found_by") ?
				       " (found in your records)" : "");
		pex_buf_printf(&r, ".\n");
		json_array_foreach(srcs, i, s)
			total += json_integer_value(json_object_get(s,
								    "records"));
		if (!total && json_is_true(json_object_get(env, "complete")))
			pex_buf_printf(&r, "Nothing about you was found in any "
				       "of the sources listed below.\n");
		pex_buf_printf(&r, "\n");
	}
	{
		json_int_t nw = 0;
		const json_t *w;

		json_array_foreach(json_object_get(env, "warnings"), i, w)
			nw += json_integer_value(json_object_get(w, "count"));
		/* what a source read only in part (a skipped log line, a
		 * list cut at a limit) must not hide behind "complete" */
		if (nw)
			pex_buf_printf(&r, "Some entries could not be read or "
				       "were left out of a list (%"
				       JSON_INTEGER_FORMAT " in all); "
				       "manifest.json lists each, under "
				       "\"warnings\".\n\n", nw);
	}
	pex_buf_printf(&r, "Questions about this data: %s", jstr(ctl,
		       "contact"));
	if (*jstr(ctl, "address"))
		pex_buf_printf(&r, ", %s", jstr(ctl, "address"));
	pex_buf_printf(&r, ".\n");
	if (*jstr(ctl, "authority"))
		pex_buf_printf(&r, "You may complain to the supervisory "
			       "authority: %s.\n", jstr(ctl, "authority"));
	pex_buf_printf(&r, "\nWhat is held, why, and for how long\n");
	{
		/* kinds of data none of whose sources holds anything of the
		 * person's are named once, not described as if held */
		struct pex_buf none = PEX_BUF_INIT(64 * 1024);

		json_array_foreach(json_object_get(env, "categories"), i, c)
			if (!category_held(b, env, jstr(c, "name")))
				pex_buf_printf(&none, "%s%s",
					       none.len ? ", " : "",
					       jstr(c, "name"));
		if (none.len)
			pex_buf_printf(&r, "  (none of your data among: %s)\n",
				       none.data);
		pex_buf_free(&none);
	}
	json_array_foreach(json_object_get(env, "categories"), i, c) {
		if (!category_held(b, env, jstr(c, "name")))
			continue;
		pex_buf_printf(&r, "  %s\n    purposes: ", jstr(c, "name"));
		put_list(&r, json_object_get(c, "purposes"));
		pex_buf_printf(&r, "\n    lawful basis: ");
		put_list(&r, json_object_get(c, "lawful_basis"));
		if (json_array_size(json_object_get(c, "recipients"))) {
			pex_buf_printf(&r, "\n    shared with: ");
			put_list(&r, json_object_get(c, "recipients"));
		}
		pex_buf_printf(&r, "\n    kept for: %s\n",
			       jstr(c, "retention"));
		if (*jstr(c, "source_description"))
			pex_buf_printf(&r, "    obtained from: %s\n",
				       jstr(c, "source_description"));
	}
	pex_buf_printf(&r, "\nWhere it was found\n");
	json_array_foreach(json_object_get(env, "sources"), i, s) {
		json_int_t k = json_integer_value(json_object_get(s,
								  "records"));

		const char *what = *jstr(s, "description") ?
				   jstr(s, "description") : jstr(s, "id");

		/* "0 records" would read as "nothing held" */
		if (!strcmp(jstr(s, "status"), "failed"))
			pex_buf_printf(&r, "  %s: COULD NOT BE SEARCHED (%s)\n",
				       what, *jstr(s, "error") ?
				       jstr(s, "error") : "failed");
		else
			pex_buf_printf(&r, "  %s: %" JSON_INTEGER_FORMAT
				       " record%s (%s)\n", what, k,
				       k == 1 ? "" : "s", jstr(s, "status"));
	}
	for (i = 0; i < n; i++)
		natt += ents[i].file != NULL;
	pex_buf_printf(&r, "\nFiles\n"
		"  data/bundle.json  all your data in one JSON document\n"
		"  data/bundle.xml   the same data as XML\n"
		"%s"
		"  manifest.json     every file with its size and SHA-256, "
		"every source with\n"
		"                    its status and record count\n"
		"  schemas/          JSON Schema (draft-07) and XSD files that "
		"describe the\n"
		"                    documents, so any program can check "
		"them\n\n",
		natt ? "  attachments/      files attached to your tickets\n"
		     : "");
	pex_buf_printf(&r, "Checking the files\n"
		"  Every file's SHA-256 is below and in manifest.json; compare "
		"with\n  `sha256sum -c` on these lines. data/bundle.json "
		"follows\n  schemas/v1/bundle.schema.json, data/bundle.xml "
		"follows\n  schemas/v1/bundle.xsd.\n\n");
	for (i = 0; i < n; i++)
		pex_buf_printf(&r, "%s  %s\n", ents[i].sha, ents[i].name);
	return pex_buf_detach(&r);
}

static json_t *make_manifest(const json_t *env, struct entry *ents,
			     size_t n)
{
	json_t *m = json_object(), *files = json_array();
	static const char *const copy[] = {
		"bundle_id", "request_id", "generated_at", "engine",
		"complete", "subject", "sources", "warnings", NULL
	};
	size_t i;

	json_object_set_new(m, "schema",
			    json_string("urn:portex:manifest:1"));
	for (i = 0; copy[i]; i++) {
		json_t *v = json_object_get(env, copy[i]);

		if (v)
			json_object_set(m, copy[i], v);
	}
	for (i = 0; i < n; i++) {
		json_t *f = json_pack("{s:s, s:I, s:s, s:s}",
				      "path", ents[i].name,
				      "bytes", (json_int_t)ents[i].bytes,
				      "sha256", ents[i].sha,
				      "media_type", ents[i].media);

		if (ents[i].schema)
			json_object_set_new(f, "schema",
					    json_string(ents[i].schema));
		json_array_append_new(files, f);
	}
	json_object_set_new(m, "files", files);
	return m;
}

static int validate_doc(const pex_schema *schema, const json_t *doc,
			const char *what)
{
	struct first_error fe;
	int rc;

	pex_buf_init(&fe.msg, 4096);
	rc = pex_schema_validate(schema, doc, PEX_SCHEMA_FIRST_ERROR,
				 record_error, &fe);
	if (rc == 1)
		rc = pex_error_set(PEX_EINVALID, "%s does not meet its schema:"
				   " %s", what, fe.msg.data);
	pex_buf_free(&fe.msg);
	return rc;
}

/*
 * A small zip is built in memory and written here, to a file made for
 * it: libzip writing a file itself makes one of its own beside tmp,
 * writes it in some 150 seeks, reads and writes, and renames it to tmp,
 * which then has to be opened again to be synced. For a bundle of a few
 * kilobytes that was a tenth of its cost.
 */
static int write_zip(zip_source_t *src, const char *tmp, int sync)
{
	char buf[64 * 1024];
	zip_int64_t n = 0;
	int fd, rc = 0;

	if (zip_source_open(src))
		return pex_error_set(PEX_EIO, "cannot write %s: %s", tmp,
				     zip_error_strerror(
					     zip_source_error(src)));
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	/* one person's data: theirs and the operator's to read, nobody
	 * else's, whatever the umask */
	if (fd < 0 || fchmod(fd, 0600))
		rc = pex_error_set(PEX_EIO, "cannot create %s: %s", tmp,
				   strerror(errno));
	while (!rc && (n = zip_source_read(src, buf, sizeof(buf))) > 0) {
		const char *p = buf;

		while (!rc && n > 0) {
			ssize_t w = write(fd, p, (size_t)n);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				rc = pex_error_set(PEX_EIO, "cannot write %s: "
						   "%s", tmp, strerror(errno));
			else {
				p += w;
				n -= w;
			}
		}
	}
	if (!rc && n < 0)
		rc = pex_error_set(PEX_EIO, "cannot write %s: %s", tmp,
				   zip_error_strerror(zip_source_error(src)));
	if (!rc && sync && fsync(fd))
		rc = pex_error_set(PEX_EIO, "cannot sync %s: %s", tmp,
				   strerror(errno));
	if (fd >= 0 && close(fd) && !rc)
		rc = pex_error_set(PEX_EIO, "cannot write %s: %s", tmp,
				   strerror(errno));
	zip_source_close(src);
	return rc;
}

/* A zip libzip wrote (0666 & ~umask): one person's data, theirs and
 * the operator's to read, nobody else's, whatever the umask; and, sync,
 * on disk. */
static int own_and_sync(const char *tmp, int sync)
{
	int fd = open(tmp, O_RDONLY), rc = 0;

	if (fd < 0 || fchmod(fd, 0600) || (sync && fsync(fd)))
		rc = pex_error_set(PEX_EIO, "cannot sync %s: %s", tmp,
				   strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

/* synced: tmp was written and fsynced by write_zip */
static int sync_and_rename(const char *tmp, const char *out, int synced,
			   int sync_dir)
{
	char *d = strdup(out);
	int fd, rc = 0;

	if (!synced)
		rc = own_and_sync(tmp, 1);
	if (!rc && pex_cleanup_rename(tmp, out))
		rc = pex_error_set(PEX_EIO, "cannot move the bundle to %s: %s",
				   out, strerror(errno));
	if (!rc && d && sync_dir) {
		fd = open(dirname(d), O_RDONLY | O_DIRECTORY);
		if (fd >= 0) {
			fsync(fd); /* make the rename itself durable */
			close(fd);
		}
	}
	free(d);
	return rc;
}

/* End every section: the last bytes to the workers, then wait for them
 * and check what the XML validation said. */
static int close_sections(pex_bundle *b)
{
	int k, f, rc = 0, rc2;

	for (k = 0; !rc && k < PEX_REC__COUNT; k++) {
		if (!b->sec[k].open)
			continue;
		for (f = 0; !rc && f < FMT__COUNT; f++)
			if (f == FMT_JSON || b->opts.xml)
				rc = ship(b, (enum pex_record_kind)k, f, 1);
	}
	/* the XSD worker goes on: its outcome is read by finish_xsd(),
	 * after the data files are made */
	rc2 = worker_stop(&b->w[W_WRITE]);
	if (!rc)
		rc = rc2;
	for (k = 0; k < PEX_REC__COUNT; k++) {
		for (f = 0; f < FMT__COUNT; f++) {
			struct stream *st = &b->sec[k].s[f];

			if (st->raw && fclose(st->raw) && !rc)
				rc = pex_error_set(PEX_EIO, "cannot write %s",
						   st->name);
			if (st->z && fclose(st->z) && !rc)
				rc = pex_error_set(PEX_EIO, "cannot write %s",
						   st->name);
			st->raw = st->z = NULL;
		}
	}
	return rc;
}

/* The seal's XSD check of the document, on the XSD worker after the
 * sections it checks chunk by chunk, while the caller makes the data
 * files and their hashes (env_xml is the caller's until finish_xsd). */
static int start_doc_check(pex_bundle *b, const char *env_xml)
{
	struct job d = { .doc = b, .env_xml = env_xml };

	if (!b->w[W_XSD].started) /* no record: no worker */
		return check_xml_doc(b, env_xml);
	return worker_push(&b->w[W_XSD], d);
}

/* Wait for the XSD worker; the first failure of its checks, if any. */
static int finish_xsd(pex_bundle *b)
{
	int k, rc = worker_stop(&b->w[W_XSD]);

	for (k = 0; !rc && k < PEX_REC__COUNT; k++) {
		struct stream *st = &b->sec[k].s[FMT_XML];

		if (st->xsd_rc)
			rc = pex_error_set(PEX_EINVALID,
				"data/bundle.xml: the %s records do not meet "
				"%s: %s", pex_record_kind_name(k),
				PEX_BUNDLE_XSD,
				st->xsd_errors ? st->xsd_errors : "");
	}
	if (!rc && b->doc_rc)
		rc = pex_error_set(b->doc_rc, "%s", b->doc_msg ? b->doc_msg
					     : "the XSD check failed");
	return rc;
}

int pex_bundle_seal(pex_bundle *b, const json_t *envelope)
{
	struct docfile jd = { 0 }, xd = { 0 };
	struct entry *ents = NULL;
	size_t n = 0, i, nschemas = 0, cap;
	const struct pex_schema_file *sf;
	struct hashjob hj = { 0 }, hx = { 0 };
	char *names[64] = { 0 };
	pthread_t thr;
	int threaded = 0, rc;
	char *readme = NULL, *manifest_text = NULL, *env_xml = NULL;
	json_t *manifest = NULL, *check = NULL;
	time_t mtime = time(NULL);
	zip_t *za = NULL;
	zip_source_t *zbuf = NULL; /* the zip in memory, or NULL */
	struct packed_file pk_readme = { 0 }, pk_manifest = { 0 };
	int zerr;

	pex_att_drop_pending(&b->att); /* files no written record names */
	for (cap = 4, sf = pex_schema_files; sf->name; sf++)
		cap++;
	cap += b->att.committed;
	ents = calloc(cap, sizeof(*ents));
	if (!ents)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	rc = close_sections(b);
	if (rc)
		goto cleanup;
	{
		json_t *g = json_object_get(envelope, "generated_at");

		if (json_is_string(g)) {
			struct tm tm = { 0 };

			if (strptime(json_string_value(g),
				     "%Y-%m-%dT%H:%M:%SZ", &tm))
				mtime = timegm(&tm);
		}
	}
	/* the envelope with empty collections must meet the bundle schema */
	check = json_deep_copy(envelope);
	json_object_set_new(check, "contacts", json_array());
	json_object_set_new(check, "tickets", json_array());
	json_object_set_new(check, "usage", json_pack("{s:[], s:[]}",
		"events", "sessions"));
	json_object_set_new(check, "technical", json_pack("{s:[], s:[]}",
		"devices", "ip_addresses"));
	rc = validate_doc(model.bundle, check, "data/bundle.json");
	if (rc)
		goto cleanup;

	jd.level = xd.level = b->opts.compression;
	pex_buf_init(&jd.text, 64u << 20);
	pex_buf_init(&xd.text, 64u << 20);
	rc = build_json(b, envelope, &jd);
	if (rc)
		goto cleanup;
	ents[n++] = (struct entry){ .name = "data/bundle.json",
				    .media = "application/json",
				    .schema = "schemas/v1/bundle.schema.json",
				    .doc = &jd };
	if (b->opts.xml) {
		env_xml = envelope_xml(envelope);
		rc = env_xml ? start_doc_check(b, env_xml)
			     : pex_error_set(PEX_ENOMEM, "out of memory");
		if (!rc)
			rc = build_xml(b, env_xml, &xd);
		if (rc)
			goto cleanup;
		ents[n++] = (struct entry){ .name = "data/bundle.xml",
					    .media = "application/xml",
					    .schema = "schemas/" PEX_BUNDLE_XSD,
					    .doc = &xd };
	}
	/* SHA-256 of the two data files, one per core */
	hj.e = &ents[0];
	if (b->opts.xml) {
		hx.e = &ents[1];
		/* a thread pays for itself past about 256 KiB; a bundle
		 * without threads (a batch's: its other jobs have the
		 * other cores) hashes both itself */
		threaded = b->opts.threads && xd.ulen > (256u << 10) &&
			   !pthread_create(&thr, NULL, hash_doc, &hx);
		if (!threaded)
			hash_doc(&hx);
	}
	hash_doc(&hj);
	if (threaded)
		pthread_join(thr, NULL);
	if (hj.rc || hx.rc) {
		rc = pex_error_set(hj.rc ? hj.rc : hx.rc, "%s",
				   hj.rc ? hj.msg : hx.msg);
		goto cleanup;
	}
	rc = finish_xsd(b);
	if (!rc)
		rc = pack_get();
	if (rc)
		goto cleanup;
	for (sf = pex_schema_files; sf->name; sf++) {
		size_t len = strlen(sf->name);

		/* the operator's config schema says nothing to the person */
		if (strstr(sf->name, "config.schema.json"))
			continue;
		if (nschemas >= sizeof(names) / sizeof(names[0])) {
			rc = pex_error_set(PEX_ELIMIT, "too many schemas");
			goto cleanup;
		}
		names[nschemas] = join("schemas", sf->name);
		if (!names[nschemas]) {
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
			goto cleanup;
		}
		ents[n] = (struct entry){ .name = names[nschemas++],
			.media = len > 4 && !strcmp(sf->name + len - 4, ".xsd")
				 ? "application/xml"
				 : "application/schema+json",
			.data = sf->data, .len = sf->len,
			.packed = &pack.packed[sf - pex_schema_files],
			.bytes = (int64_t)sf->len };
		memcpy(ents[n].sha, ents[n].packed->sha, PEX_SHA256_HEX);
		n++;
	}
	for (i = 0; i < b->att.committed; i++) {
		const struct pex_att_entry *a = &b->att.items[i];

		ents[n++] = (struct entry){ .name = a->zip_name,
					    .media = a->media,
					    .file = a->file,
					    .bytes = a->bytes };
		memcpy(ents[n - 1].sha, a->sha, sizeof(a->sha));
	}
	readme = make_readme(b, envelope, ents, n);
	if (!readme) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	memmove(&ents[1], &ents[0], n * sizeof(ents[0]));
	ents[0] = (struct entry){ .name = "README.txt",
				  .media = "text/plain; charset=utf-8",
				  .data = readme, .len = strlen(readme),
				  .bytes = (int64_t)strlen(readme) };
	rc = pex_sha256_hex(readme, strlen(readme), ents[0].sha);
	n++;
	if (rc)
		goto cleanup;
	manifest = make_manifest(envelope, ents, n);
	rc = validate_doc(model.manifest, manifest, "manifest.json");
	if (rc)
		goto cleanup;
	manifest_text = json_dumps(manifest, JSON_INDENT(2));
	if (!manifest_text) {
		rc = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}

	unlink(b->tmp_path);
	/* small (no attachments, data files of a megabyte at most):
	 * in memory, see write_zip; else libzip writes the file */
	if (!b->att.committed &&
	    (uint64_t)jd.clen + (uint64_t)xd.clen <= PEX_ZIP_IN_MEM) {
		zip_error_t ze;

		zip_error_init(&ze);
		zbuf = zip_source_buffer_create(NULL, 0, 0, &ze);
		za = zbuf ? zip_open_from_source(zbuf, ZIP_TRUNCATE, &ze)
			  : NULL;
		if (za) {
			zip_source_keep(zbuf); /* read after zip_close */
		} else {
			zip_source_free(zbuf);
			zbuf = NULL;
			rc = pex_error_set(PEX_ENOMEM, "cannot start the zip: "
					   "%s", zip_error_strerror(&ze));
			zip_error_fini(&ze);
			goto cleanup;
		}
		zip_error_fini(&ze);
	} else {
		za = zip_open(b->tmp_path, ZIP_CREATE | ZIP_EXCL, &zerr);
	}
	if (!za) {
		zip_error_t ze;

		zip_error_init_with_code(&ze, zerr);
		rc = pex_error_set(PEX_EIO, "cannot create %s: %s",
				   b->tmp_path, zip_error_strerror(&ze));
		zip_error_fini(&ze);
		goto cleanup;
	}
	{
		struct entry me = { .name = "manifest.json",
				    .media = "application/json",
				    .data = manifest_text,
				    .len = strlen(manifest_text) };

		/* deflated here, with a state sized to them, not by libzip
		 * with its default one (see pex_deflate_init_for) */
		rc = pack_entry(&ents[0], &pk_readme, b->opts.compression);
		if (!rc)
			rc = pack_entry(&me, &pk_manifest,
					b->opts.compression);
		if (!rc)
			rc = add_entry(za, &ents[0], mtime,
				       b->opts.compression);
		if (!rc)
			rc = add_entry(za, &me, mtime, b->opts.compression);
	}
	for (i = 1; !rc && i < n; i++)
		rc = add_entry(za, &ents[i], mtime, b->opts.compression);
	if (rc)
		goto cleanup;
	if (zip_close(za)) {
		rc = pex_error_set(PEX_EIO, "cannot write %s: %s",
				   b->out_path, zip_strerror(za));
		goto cleanup;
	}
	za = NULL;
	rc = zbuf ? write_zip(zbuf, b->tmp_path, !b->opts.commit_later) : 0;
	if (!rc && b->opts.commit_later) {
		/* finished at its temporary name, still registered for
		 * removal: the caller's from here (pex_bundle_take_pending) */
		rc = zbuf ? 0 : own_and_sync(b->tmp_path, 0);
		if (!rc)
			b->sealed = b->pending = 1;
	} else if (!rc) {
		rc = sync_and_rename(b->tmp_path, b->out_path, zbuf != NULL,
				     b->opts.sync_dir);
		if (!rc) {
			b->sealed = 1;
			pex_cleanup_forget(b->tmp_path);
		}
	}
cleanup:
	if (za)
		zip_discard(za);
	zip_source_free(zbuf);
	if (rc)
		unlink(b->tmp_path);
	worker_stop(&b->w[W_XSD]); /* done with env_xml, on every path */
	for (i = 0; i < nschemas; i++)
		free(names[i]);
	doc_free(&jd);
	doc_free(&xd);
	free(ents);
	json_decref(check);
	json_decref(manifest);
	free(manifest_text);
	free(readme);
	free(env_xml);
	free(pk_readme.z);
	free(pk_manifest.z);
	return rc;
}

int pex_bundle_file_begin(pex_bundle *b, const char *group,
			  const char *name, const char *media_type,
			  unsigned long long max_bytes,
			  pex_bundle_file **out)
{
	*out = NULL;
	if (b->sealed)
		return pex_error_set(PEX_EUSAGE, "the bundle is sealed");
	return pex_att_begin(&b->att, group, name, media_type, max_bytes,
			     out);
}

void pex_bundle_files_commit(pex_bundle *b)
{
	pex_att_commit(&b->att);
}

void pex_bundle_files_drop_pending(pex_bundle *b)
{
	pex_att_drop_pending(&b->att);
}

char *pex_bundle_take_pending(pex_bundle *b)
{
	char *tmp;

	if (!b || !b->pending || b->taken)
		return NULL;
	tmp = strdup(b->tmp_path);
	if (tmp)
		b->taken = 1;
	return tmp;
}

void pex_bundle_free(pex_bundle *b)
{
	int k, f;

	if (!b)
		return;
	for (f = 0; f < W__COUNT; f++)
		worker_stop(&b->w[f]);
	for (k = 0; k < PEX_REC__COUNT; k++) {
		for (f = 0; f < FMT__COUNT; f++) {
			struct stream *st = &b->sec[k].s[f];

			if (st->raw)
				fclose(st->raw);
			if (st->z)
				fclose(st->z);
			if (st->raw_path)
				unlink(st->raw_path);
			if (st->z_path)
				unlink(st->z_path);
			free(st->raw_path);
			free(st->z_path);
			pex_dstream_free(&st->ds);
			pex_xsd_push_free(st->xv);
			pex_buf_free(&st->xml_hold);
			pex_buf_free(&st->pending);
			free(st->xsd_errors);
			free(st->raw_buf);

		}
	}
	if (b->pack_thread)
		pthread_join(b->pack_thr, NULL);
	pex_att_free(&b->att);
	/* a folder rmdir() leaves (something in it was not removed) stays
	 * registered, so an interruption or pex_cleanup_run() takes it */
	if (b->workdir && !rmdir(b->workdir))
		pex_cleanup_forget(b->workdir);
	if (!b->taken) { /* else the file and its entry are the caller's */
		if ((!b->sealed || b->pending) && b->tmp_path)
			unlink(b->tmp_path); /* also a zip nobody took */
		pex_cleanup_forget(b->tmp_path);
	}
	pthread_mutex_destroy(&b->work_mu);
	free(b->workdir);
	free(b->workdir_template);
	free(b->tmp_path);
	free(b->doc_msg);
	free(b->out_path);
	free(b);
}
