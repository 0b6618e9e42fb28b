/* portex export: one subject, every source, one bundle. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "collectors/csv/csv_reader.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "portex/bundle.h"
#include "portex/config.h"
#include "portex/engine.h"
#include "portex/error.h"
#include "portex/export.h"

static void help(FILE *f)
{
	fprintf(f,
"usage: portex export -c CONFIG -s TYPE:VALUE [-s ...] -o OUT.zip [options]\n"
"       portex export -c CONFIG --batch SUBJECTS.csv --out-dir DIR [options]\n"
"\n"
"Collect every record the configured sources hold about one person and\n"
"write them as a zipped bundle (JSON, XML, schemas, manifest).\n"
"\n"
"  -c, --config FILE      the portex.yaml to use (or $PORTEX_CONFIG)\n"
"  -s, --subject TYPE:VALUE\n"
"                         an identity of the person, e.g.\n"
"                         email:alice@example.com, customer_id:C-17,\n"
"                         phone:+441534000000, or an IP address with the\n"
"                         time window it belonged to them:\n"
"                         ip:203.0.113.7@2026-01-03T10:00:00Z/PT30M\n"
"  -r, --request-id ID    the request this answers (goes into the bundle)\n"
"  -o, --output FILE      where to write the zip; it appears only when\n"
"                         complete; an earlier bundle there is replaced,\n"
"                         any other file is refused\n"
"      --batch FILE       one bundle per row of a CSV file with the columns\n"
"                         identities (space-separated TYPE:VALUE), and\n"
"                         optionally request_id and output (a file name);\n"
"                         large sources (logs) are read once for all rows\n"
"      --out-dir DIR      where --batch writes the bundles (made, with\n"
"                         its parents, if missing; names: the output\n"
"                         column, else\n"
"                         REQUEST_ID.zip, else subject-LINE.zip)\n"
"  -j, --jobs N           with --batch: bundles made at a time (default:\n"
"                         one more than the CPUs, at most 4)\n"
"      --replace          with --batch: write over bundles an earlier run\n"
"                         left in DIR (else such a row is refused)\n"
"      --skip-existing    with --batch: leave out the rows whose complete\n"
"                         bundle an earlier run left in DIR (to finish a\n"
"                         batch that was interrupted); partial ones are\n"
"                         made again\n"
"      --allow-partial    when a source fails, still write the bundle,\n"
"                         marked \"complete\": false (exit code 3)\n"
"      --json             print a machine-readable summary on stdout\n"
"  -q, --quiet            no progress, no summary; errors only\n"
"  -v, --verbose          more diagnostics on stderr (not with -q)\n"
"  -h, --help             this text\n"
"\n"
"environment: PORTEX_CONFIG (the config when -c is not given),\n"
"PORTEX_BATCH_MEMORY (bytes of memory a batch's records may take before\n"
"they are spooled to files; default 12 MiB); see man portex.\n"
"\n"
"exit codes: 0 complete bundle written; 1 failed, no bundle; 2 usage\n"
"error; 3 bundle written with --allow-partial while a source failed.\n"
"With --batch: 0 all complete, 3 some partial, 1 any failed, 2 a row\n"
"refused before anything is read.\n"
"Interrupted: 130 (SIGINT, Ctrl-C), 143 (SIGTERM), 129 (SIGHUP); the\n"
"temporary files are removed, and no unfinished bundle is left.\n");
}

struct progress {
	int tty;
	int quiet;
};

static void on_progress(void *data, const char *source,
			unsigned long long records, int done)
{
	struct progress *p = data;

	if (!p->tty || p->quiet)
		return;
	fprintf(stderr, "\r\033[Kportex: %s: %llu record%s%s", source,
		records, records == 1 ? "" : "s", done ? "\n" : "");
	fflush(stderr);
}

static void print_summary(const json_t *sum, FILE *f)
{
	const json_t *s, *w;
	size_t i;

	json_array_foreach(json_object_get(sum, "sources"), i, s) {
		const json_t *err = json_object_get(s, "error");

		json_int_t n = json_integer_value(json_object_get(s,
								  "records"));

		fprintf(f, "  %-14s %-10s %-9s %-7s %6" JSON_INTEGER_FORMAT
			" record%s%s%s\n",
			json_string_value(json_object_get(s, "id")),
			json_string_value(json_object_get(s, "collector")),
			json_string_value(json_object_get(s, "category")),
			json_string_value(json_object_get(s, "status")),
			n, n == 1 ? "" : "s",
			err ? "\n      error: " : "",
			err ? json_string_value(err) : "");
	}
	json_array_foreach(json_object_get(sum, "warnings"), i, w) {
		json_int_t n = json_integer_value(json_object_get(w, "count"));

		/* the count of times the warning was given, when more than
		 * once: "3 lines skipped (1x)" read as a contradiction */
		fprintf(f, "  warning: %s: %s", json_string_value(
				json_object_get(w, "source")),
			json_string_value(json_object_get(w, "message")));
		if (n > 1)
			fprintf(f, " (%" JSON_INTEGER_FORMAT " times)", n);
		fputc('\n', f);
	}
}


/* ---- --batch ------------------------------------------------------------ */

struct batch {
	struct pex_batch_subject *subjects;
	unsigned long *lines; /* the CSV line of each subject */
	char **strings; /* owned: request ids and output paths */
	size_t n, nstrings;
};

static void batch_free(struct batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		pex_identity_set_clear(&b->subjects[i].identities);
	for (i = 0; i < b->nstrings; i++)
		free(b->strings[i]);
	free(b->subjects);
	free(b->lines);
	free(b->strings);
}

static char *keep(struct batch *b, char *s)
{
	char **p = realloc(b->strings, (b->nstrings + 1) * sizeof(*p));

	if (!p || !s) {
		free(s);
		return NULL;
	}
	b->strings = p;
	b->strings[b->nstrings++] = s;
	return s;
}

/* What the command line takes as an email: text, one '@', text, no
 * blank. A typo such as "alice@exam ple.com" would find nobody and give
 * a bundle that says nothing is held. (The engine binds whatever it is
 * given; its tests feed it hostile values directly.) */
static int cli_identity_ok(const struct pex_identity *id)
{
	const char *a;

	if (strcmp(id->type, "email"))
		return 1;
	a = strchr(id->value, '@');
	return a && a != id->value && a[1] && !strchr(a + 1, '@') &&
	       !strpbrk(id->value, " \t");
}

/* A request id as a file name: characters outside [A-Za-z0-9._-] and a
 * leading dot become '_' ("REQ/42" -> "REQ_42"). */
static char *id_file_name(const char *id)
{
	size_t i, n = strlen(id);
	char *out;

	if (!n || n > 200)
		return NULL;
	out = strdup(id);
	for (i = 0; out && i < n; i++)
		if (!((out[i] >= 'a' && out[i] <= 'z') ||
		      (out[i] >= 'A' && out[i] <= 'Z') ||
		      (out[i] >= '0' && out[i] <= '9') || out[i] == '-' ||
		      out[i] == '_' || (out[i] == '.' && i > 0)))
			out[i] = '_';
	return out;
}

/* A name the engine may use as a file name in DIR: no separators, no
 * "..", printable ASCII only, bounded. */
static int safe_file_name(const char *s)
{
	size_t i, n = strlen(s);

	if (!n || n > 200 || s[0] == '.')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '_' || s[i] == '.'))
			return 0;
	return 1;
}

static int read_batch(const char *path, const char *dir, struct batch *b)
{
	struct pex_csv_options opt = { 0 };
	struct pex_csv_record rec;
	pex_csv_reader *rd = NULL;
	long col_ids = -1, col_req = -1, col_out = -1;
	int rc, first = 1;
	size_t i;

	rc = pex_csv_reader_open(&rd, path, &opt);
	while (!rc && (rc = pex_csv_reader_next(rd, &rec)) == 1) {
		struct pex_batch_subject *sub, *grown;
		unsigned long *lines;
		struct pex_buf name = PEX_BUF_INIT(8192);
		char *list, *tok, *save = NULL, *idname = NULL;

		rc = 0;
		if (first) {
			for (i = 0; i < rec.nfields; i++) {
				const char *h = rec.fields[i].value;

				if (!strcmp(h, "identities"))
					col_ids = (long)i;
				else if (!strcmp(h, "request_id"))
					col_req = (long)i;
				else if (!strcmp(h, "output"))
					col_out = (long)i;
				else
					rc = pex_error_set(PEX_EINVALID,
						"%s:%lu: unknown column '%s' "
						"(known: identities, "
						"request_id, output)", path,
						rec.line, h);
			}
			if (!rc && col_ids < 0)
				rc = pex_error_set(PEX_EINVALID,
					"%s: no 'identities' column", path);
			first = 0;
			continue;
		}
		grown = realloc(b->subjects, (b->n + 1) * sizeof(*grown));
		if (grown)
			b->subjects = grown;
		lines = realloc(b->lines, (b->n + 1) * sizeof(*lines));
		if (lines)
			b->lines = lines;
		if (!grown || !lines) {
			rc = pex_error_set(PEX_ENOMEM, "out of memory");
			break;
		}
		b->lines[b->n] = rec.line;
		sub = &b->subjects[b->n++];
		memset(sub, 0, sizeof(*sub));
		if (col_req >= 0 && rec.fields[col_req].len)
			sub->request_id = keep(b, strdup(
				rec.fields[col_req].value));
		list = strdup(rec.fields[col_ids].value);
		for (tok = list ? strtok_r(list, " \t", &save) : NULL;
		     tok && !rc; tok = strtok_r(NULL, " \t", &save)) {
			struct pex_identity id;

			rc = pex_identity_parse(&id, tok);
			if (!rc && !cli_identity_ok(&id)) {
				pex_identity_clear(&id);
				rc = pex_error_set(PEX_EINVALID, "\"%s\" is not "
						   "an email address", tok);
			}
			if (rc) {
				pex_error_wrap(rc, "%s:%lu", path, rec.line);
				break;
			}
			rc = pex_identity_set_add(&sub->identities, &id);
			pex_identity_clear(&id);
		}
		free(list);
		if (!rc && !sub->identities.count)
			rc = pex_error_set(PEX_EINVALID, "%s:%lu: no identity",
					   path, rec.line);
		if (!rc) {
			const char *out = col_out >= 0 &&
					  rec.fields[col_out].len ?
					  rec.fields[col_out].value : NULL;

			if (out && !safe_file_name(out))
				rc = pex_error_set(PEX_EINVALID,
					"%s:%lu: output '%s' must be a plain "
					"file name", path, rec.line, out);
			else if (out)
				pex_buf_printf(&name, "%s/%s", dir, out);
			else if (sub->request_id &&
				 (idname = id_file_name(sub->request_id)))
				pex_buf_printf(&name, "%s/%s.zip", dir,
					       idname);
			else
				pex_buf_printf(&name, "%s/subject-%lu.zip",
					       dir, rec.line);
			free(idname);
			idname = NULL;
		}
		if (!rc) {
			sub->out_path = keep(b, pex_buf_detach(&name));
			for (i = 0; sub->out_path && i + 1 < b->n; i++)
				if (!strcmp(b->subjects[i].out_path,
					    sub->out_path))
					rc = pex_error_set(PEX_EINVALID,
						"%s:%lu: %s is written by an "
						"earlier row too", path,
						rec.line, sub->out_path);
		}
		pex_buf_free(&name);
	}
	if (rc == 0 && !b->n)
		rc = pex_error_set(PEX_EINVALID, "%s: no subjects", path);
	pex_csv_reader_free(rd);
	return rc < 0 ? rc : 0;
}

/* Leftovers of runs into dir that were killed (kill -9, a machine that
 * stopped) hold personal data: removed before this run adds its own. */
static void sweep(const char *dir, int quiet)
{
	int n = pex_cleanup_sweep(dir);

	if (n > 0 && !quiet)
		fprintf(stderr, "portex: removed %d temporary file%s that a "
			"killed earlier run left in %s\n", n,
			n == 1 ? "" : "s", dir);
}

/* The output folder: made when missing (one level, 0700: bundles hold
 * personal data), and writable. Returns an exit code or -1 when fine. */
/* mkdir -p, every folder it makes 0700: they will hold personal data */
static int make_dirs(const char *dir)
{
	char *p, *path = strdup(dir);
	int rc = 0;

	if (!path)
		return -1;
	for (p = path + 1; *p && !rc; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) && errno != EEXIST)
			rc = -1;
		*p = '/';
	}
	if (!rc && mkdir(path, 0700) && errno != EEXIST)
		rc = -1;
	free(path);
	return rc;
}

static int prepare_out_dir(const char *dir)
{
	struct stat st;

	if (stat(dir, &st)) {
		if (errno != ENOENT || make_dirs(dir)) {
			fprintf(stderr, "portex export: cannot make the output "
				"folder %s: %s\n", dir, strerror(errno));
			return PEX_EXIT_FAIL;
		}
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "portex export: --out-dir %s is not a "
			"folder\n", dir);
		return PEX_EXIT_USAGE;
	}
	if (access(dir, W_OK | X_OK)) {
		fprintf(stderr, "portex export: cannot write in the output "
			"folder %s: %s\n", dir, strerror(errno));
		return PEX_EXIT_FAIL;
	}
	return -1;
}

/* A failed source's reason without the "source ID: " most messages
 * already start with: the lines that print it name the source once. */
static const char *reason_of(const json_t *src)
{
	const char *id = json_string_value(json_object_get(src, "id"));
	const char *err = json_string_value(json_object_get(src, "error"));
	size_t n = id ? strlen(id) : 0;

	if (!err)
		return "";
	if (id && !strncmp(err, "source ", 7) && !strncmp(err + 7, id, n) &&
	    err[7 + n] == ':' && err[8 + n] == ' ')
		return err + 9 + n;
	return err;
}

/* One subject's line; under a failed or partial one, why; under any, how
 * many warnings its manifest holds. path is the row's output path, for a
 * row whose bundle is null (none was written). */
static void print_row(const json_t *s, const char *path)
{
	const char *bundle = json_string_value(json_object_get(s, "bundle"));
	const json_t *e = json_object_get(s, "error"), *src, *w;
	json_int_t nw = 0;
	size_t j;

	json_array_foreach(json_object_get(s, "warnings"), j, w)
		nw += json_integer_value(json_object_get(w, "count"));
	printf("%-8s %s%s%s", json_string_value(json_object_get(s, "result")),
	       bundle ? bundle : path, e ? ": " : "",
	       e ? json_string_value(e) : "");
	if (nw)
		printf(" (%" JSON_INTEGER_FORMAT " warning%s, see its "
		       "manifest)", nw, nw == 1 ? "" : "s");
	putchar('\n');
	json_array_foreach(json_object_get(s, "sources"), j, src) {
		if (json_object_get(src, "error"))
			printf("         source %s: %s\n",
			       json_string_value(json_object_get(src, "id")),
			       reason_of(src));
	}
}

/*
 * The batch's summary, printed a row at a time as it is made, so that a
 * batch of many subjects never holds every row as JSON values at once:
 * the rows (--json's array, or a line each) and then, as text, the
 * counts a long list needs at its end.
 */
struct summary_out {
	int json, quiet;
	size_t rows, count[5];
};

static const char *const result_kinds[] = {
	"complete", "partial", "failed", "skipped", "interrupted",
};

/* The row said in place of one there was no memory to print or read
 * back, so that the array keeps every row in its place. */
static json_t *oom_row(const char *path)
{
	return json_pack("{s:s, s:s, s:s}", "bundle", path, "result",
			 "unknown", "error", "out of memory while printing "
			 "this row");
}

static void out_row(struct summary_out *o, const json_t *row,
		    const char *path)
{
	const char *r = json_string_value(json_object_get(row, "result"));
	size_t k;

	for (k = 0; k < 5; k++)
		if (r && !strcmp(r, result_kinds[k]))
			o->count[k]++;
	if (o->json && pex_cli_json_item(row, !o->rows)) {
		json_t *oom = oom_row(path);

		if (!oom || pex_cli_json_item(oom, !o->rows))
			fputs(o->rows ? ",\n  null" : "[\n  null", stdout);
		json_decref(oom);
	} else if (!o->json && !o->quiet)
		print_row(row, path);
	o->rows++;
}

static void out_end(struct summary_out *o)
{
	const char *sep = ": ";
	size_t k;

	if (o->json) {
		pex_cli_json_end(o->rows > 0);
		return;
	}
	if (o->quiet)
		return;
	printf("%zu subject%s", o->rows, o->rows == 1 ? "" : "s");
	for (k = 0; k < 5; k++) {
		if (!o->count[k] && k > 0)
			continue;
		printf("%s%zu %s", sep, o->count[k], result_kinds[k]);
		sep = ", ";
	}
	putchar('\n');
}

/* The rows --skip-existing left out (their strings borrowed from the
 * batch), with their CSV line numbers. */
struct skipped {
	const char **paths, **ids;
	unsigned long *lines;
	size_t n;
};

/* A row --skip-existing left out, as the summary lists it. */
static json_t *skipped_row(const struct skipped *sk, size_t j)
{
	json_t *row = json_pack("{s:s, s:s}", "bundle", sk->paths[j],
				"result", "skipped");

	if (row && sk->ids[j])
		json_object_set_new(row, "request_id",
				    json_string(sk->ids[j]));
	return row;
}

/*
 * The summary's rows in the order of the CSV's, so that row i of --json's
 * array is the CSV's i-th subject whether or not --skip-existing left it
 * out: made(data, i) (a new reference, or NULL for none) is b's subject
 * i, and the skipped rows go between them by their line numbers. Each
 * row is printed and let go of before the next is made.
 */
static void print_rows(struct summary_out *o, const struct batch *b,
		       const struct skipped *sk,
		       json_t *(*made)(void *data, size_t i), void *data)
{
	size_t i = 0, j = 0;

	while (i < b->n || j < sk->n) {
		const char *path;
		json_t *row;

		if (j < sk->n && (i == b->n || sk->lines[j] < b->lines[i])) {
			path = sk->paths[j];
			row = skipped_row(sk, j++);
		} else {
			path = b->subjects[i].out_path;
			row = made(data, i++);
		}
		if (row)
			out_row(o, row, path);
		json_decref(row);
	}
	out_end(o);
}

/*
 * What a batch says when it is interrupted (Ctrl-C, SIGTERM): the rows
 * done so far as the summary has them, the others "interrupted", so that
 * the operator knows which bundles were written; --skip-existing makes
 * the rest. Rows arrive from the batch's jobs (batch_row); the report is
 * made by the signal thread, which keeps the lock until the process
 * ends.
 *
 * A row is kept as compact JSON text (a few hundred bytes; as JSON
 * values it took 1.6 KB, most of a big batch's memory), or, when there
 * was no memory for the text, as the values themselves.
 */
struct kept_row {
	char *text;
	json_t *obj;
};

struct batch_report {
	pthread_mutex_t mu;
	struct kept_row *rows; /* one per subject: empty until reported */
	size_t ndone, left;
	const struct batch *b;
	const char *dir;
	const struct skipped *sk;
	int json_out;
	const struct progress *prog;
	time_t start;
	struct timespec shown; /* when the progress line was last written */
};

/* A row of the summary for a subject the batch did not report. */
static json_t *unreported_row(const struct batch_report *r, size_t i)
{
	const struct pex_batch_subject *sub = &r->b->subjects[i];
	const char *result = "interrupted";
	json_t *row;
	struct stat st;
	int c;

	/* A job may have renamed its bundle into place and not yet said
	 * so: a bundle made by this run (not one --replace was to write
	 * over) whose manifest reads is whole, and says whether it is
	 * complete. */
	if (!stat(sub->out_path, &st) && S_ISREG(st.st_mode) &&
	    st.st_mtime >= r->start &&
	    (c = pex_bundle_complete(sub->out_path)) >= 0)
		result = c ? "complete" : "partial";
	row = json_pack("{s:s, s:s}", "bundle", sub->out_path, "result",
			result);
	if (row && sub->request_id)
		json_object_set_new(row, "request_id",
				    json_string(sub->request_id));
	return row;
}

/* The batch's progress on stderr, one line updated in place: the shared
 * passes, then the bundles. */
static void batch_progress(void *data, const char *source,
			   unsigned long long records, int done)
{
	const struct batch_report *r = data;

	(void)records;
	if (!r->prog->tty || r->prog->quiet)
		return;
	fprintf(stderr, "\r\033[Kportex: %s: %s %zu subject%s%s", source,
		done ? "read for" : "reading for", r->b->n,
		r->b->n == 1 ? "" : "s", done ? "\n" : "");
	fflush(stderr);
}

static void batch_row(void *data, size_t row, const json_t *summary)
{
	struct batch_report *r = data;
	char *text = json_dumps(summary, JSON_COMPACT);
	json_t *obj = text ? NULL : json_deep_copy(summary);

	pthread_mutex_lock(&r->mu);
	r->rows[row].text = text;
	r->rows[row].obj = obj;
	r->ndone++;
	if (r->prog->tty && !r->prog->quiet) {
		struct timespec now;

		/* ten times a second is enough for the eye, and a terminal
		 * that writes slowly does not hold the jobs up */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (r->ndone < r->b->n &&
		    (now.tv_sec - r->shown.tv_sec) * 1000000000L +
		    (now.tv_nsec - r->shown.tv_nsec) < 100000000L) {
			pthread_mutex_unlock(&r->mu);
			return;
		}
		r->shown = now;
		fprintf(stderr, "\r\033[Kportex: %zu of %zu bundle%s made%s",
			r->ndone, r->b->n, r->b->n == 1 ? "" : "s",
			r->ndone == r->b->n ? "\n" : "");
		fflush(stderr);
	}
	pthread_mutex_unlock(&r->mu);
}

/* Subject i's row as reported, or NULL: a new reference. */
static json_t *kept(const struct batch_report *r, size_t i)
{
	json_t *row;

	if (!r->rows[i].text)
		return json_incref(r->rows[i].obj);
	row = json_loads(r->rows[i].text, JSON_ALLOW_NUL, NULL);
	return row ? row : oom_row(r->b->subjects[i].out_path);
}

/* print_rows' made() once every subject is done. */
static json_t *made_done(void *data, size_t i)
{
	return kept(data, i);
}

/* print_rows' made() on an interruption: a subject not reported yet is
 * looked for on disk (unreported_row) or counted as left. */
static json_t *made_interrupted(void *data, size_t i)
{
	struct batch_report *r = data;
	json_t *row;
	const char *res;

	if (r->rows[i].text || r->rows[i].obj)
		return kept(r, i);
	row = unreported_row(r, i);
	res = json_string_value(json_object_get(row, "result"));
	if (!res || !strcmp(res, "interrupted"))
		r->left++;
	return row;
}

static void batch_interrupted(void *data, int signo)
{
	struct batch_report *r = data;
	struct summary_out o = { .json = r->json_out,
				 .quiet = r->prog->quiet };
	int fd;

	(void)signo;
	pthread_mutex_lock(&r->mu); /* kept: the process ends next */
	/* the renames of the bundles reported as written are durable */
	fd = open(r->dir, O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	print_rows(&o, r->b, r->sk, made_interrupted, r);
	if (r->left)
		fprintf(stderr, "portex export: %zu subject%s not done when "
			"the batch was interrupted; run the same command with "
			"--skip-existing to make what is missing\n", r->left,
			r->left == 1 ? " was" : "s were");
	/* the process ends now: nothing is freed */
}

static void summary_interrupted(void *data, int signo)
{
	const struct batch_report *r = data;

	(void)signo;
	fprintf(stderr, "portex export: interrupted while the summary was "
		"written; all %zu subjects of the batch were done (see the "
		"bundles in %s)\n", r->b->n, r->dir);
}

/*
 * One export interrupted: the signal may come after the bundle was
 * renamed into place and before the export returned. The cleanup's
 * message speaks of unfinished exports only; this says the bundle is
 * there and whole, so that nobody takes exit 130 for "no bundle". A
 * bundle that was at out_path before (--replace's case: writing over an
 * earlier one) is told apart by its inode, which the rename replaces.
 */
struct single_report {
	const char *out_path;
	int had_file;
	dev_t dev;
	ino_t ino;
};

/* static: the signal thread may read it until the process ends */
static struct single_report single;

static void single_interrupted(void *data, int signo)
{
	const struct single_report *r = data;
	struct stat st;
	int c;

	(void)signo;
	if (stat(r->out_path, &st) || !S_ISREG(st.st_mode) ||
	    (r->had_file && st.st_dev == r->dev && st.st_ino == r->ino))
		return;
	c = pex_bundle_complete(r->out_path);
	if (c >= 0)
		fprintf(stderr, "portex export: the bundle %s was written "
			"whole (%s) before the signal came, and stays\n",
			r->out_path, c ? "complete" : "partial");
}

/* Whether path holds a regular file that is neither empty nor a portex
 * bundle (a zip whose manifest reads): nothing portex may write over. A
 * zip of anything else (a folder someone packed, a mail's attachments)
 * is not a bundle either. */
static int not_a_bundle(const char *path)
{
	struct stat st;

	if (stat(path, &st) || !S_ISREG(st.st_mode) || st.st_size == 0)
		return 0; /* nothing there, or the writer says what is wrong */
	return pex_bundle_complete(path) < 0;
}

/* Leave out the rows whose complete bundle is there already
 * (--skip-existing): their paths, request ids (borrowed from b) and line
 * numbers go to sk, the rest move up. A partial bundle (--allow-partial,
 * a source failed) is made again: the run that finishes a batch is the
 * one after the failed source was put right. sk's arrays have room for
 * b->n. */
static void skip_existing(struct batch *b, struct skipped *sk)
{
	size_t i, k = 0;

	sk->n = 0;
	for (i = 0; i < b->n; i++) {
		/* a bundle is a zip whose manifest reads: an empty file, or
		 * one that only starts like a zip, is no finished one */
		if (pex_bundle_complete(b->subjects[i].out_path) == 1) {
			sk->ids[sk->n] = b->subjects[i].request_id;
			sk->paths[sk->n] = b->subjects[i].out_path;
			sk->lines[sk->n++] = b->lines[i];
			pex_identity_set_clear(&b->subjects[i].identities);
			continue;
		}
		b->subjects[k] = b->subjects[i];
		b->lines[k++] = b->lines[i];
	}
	b->n = k;
}

static int run_batch(const char *config, const char *file, const char *dir,
		     int allow_partial, int replace, int skip, unsigned jobs,
		     int json_out, struct progress *prog)
{
	struct batch b = { 0 };
	struct batch_report rep = { .mu = PTHREAD_MUTEX_INITIALIZER };
	pex_config *cfg = NULL;
	struct skipped sk = { 0 };
	struct summary_out out = { .json = json_out, .quiet = prog->quiet };
	size_t i;
	int rc, code = PEX_EXIT_FAIL;

	if (read_batch(file, dir, &b)) {
		fprintf(stderr, "portex export: %s\n", pex_error_last());
		batch_free(&b);
		return PEX_EXIT_USAGE;
	}
	if (pex_config_load(&cfg, config)) {
		fprintf(stderr, "portex export: %s\n", pex_error_last());
		batch_free(&b);
		return PEX_EXIT_FAIL;
	}
	sk.paths = calloc(b.n + 1, sizeof(*sk.paths));
	sk.ids = calloc(b.n + 1, sizeof(*sk.ids));
	sk.lines = calloc(b.n + 1, sizeof(*sk.lines));
	if (!sk.paths || !sk.ids || !sk.lines) {
		fprintf(stderr, "portex export: out of memory\n");
		goto done;
	}
	if (skip)
		skip_existing(&b, &sk);
	/* every row checked before anything is read or written */
	for (i = 0; i < b.n; i++) {
		struct stat st;

		if (pex_export_check_identities(cfg,
						&b.subjects[i].identities)) {
			fprintf(stderr, "portex export: %s:%lu: %s\n", file,
				b.lines[i], pex_error_last());
			code = PEX_EXIT_USAGE;
			goto done;
		}
		if (stat(b.subjects[i].out_path, &st))
			continue; /* nothing there yet */
		/* with --skip-existing, a complete bundle's row is gone by
		 * now; a partial one is made again */
		if (skip && S_ISREG(st.st_mode) &&
		    pex_bundle_complete(b.subjects[i].out_path) == 0)
			continue;
		if (skip && S_ISREG(st.st_mode) && st.st_size > 0) {
			fprintf(stderr, "portex export: %s:%lu: %s is there "
				"but is not a whole bundle (its manifest "
				"cannot be read); remove it and run again\n",
				file, b.lines[i], b.subjects[i].out_path);
			code = PEX_EXIT_USAGE;
			goto done;
		}
		if (S_ISDIR(st.st_mode) || !replace) {
			fprintf(stderr, "portex export: %s:%lu: %s %s; %s\n",
				file, b.lines[i], b.subjects[i].out_path,
				S_ISDIR(st.st_mode) ? "is a folder"
						    : "exists already",
				S_ISDIR(st.st_mode) ? "give the row another "
				"output name" : "give --skip-existing to make "
				"only the bundles missing, --replace to write "
				"over those of the earlier run, or another "
				"--out-dir");
			code = PEX_EXIT_USAGE;
			goto done;
		}
		if (not_a_bundle(b.subjects[i].out_path)) {
			fprintf(stderr, "portex export: %s:%lu: %s exists and "
				"is not a portex bundle (no zip with a "
				"manifest.json that reads); it is left as it "
				"is: give the row another output name\n",
				file, b.lines[i], b.subjects[i].out_path);
			code = PEX_EXIT_USAGE;
			goto done;
		}
	}
	code = prepare_out_dir(dir);
	if (code >= 0)
		goto done;
	sweep(dir, prog->quiet);
	rep.rows = calloc(b.n + 1, sizeof(*rep.rows));
	if (!rep.rows) {
		fprintf(stderr, "portex export: out of memory\n");
		goto done;
	}
	rep.b = &b;
	rep.dir = dir;
	rep.sk = &sk;
	rep.json_out = json_out;
	rep.prog = prog;
	rep.start = time(NULL) - 1; /* mtimes are whole seconds */
	pex_cleanup_on_interrupt(batch_interrupted, &rep);
	rc = b.n ? pex_export_batch(cfg, b.subjects, b.n, allow_partial,
				    jobs, batch_progress, &rep, batch_row,
				    &rep, NULL) : 0;
	/* every subject is done: an interruption from here on can only cut
	 * the summary short, and says so */
	pex_cleanup_on_interrupt(summary_interrupted, &rep);
	if (rc == PEX_EUSAGE) {
		fprintf(stderr, "portex export: %s: %s\n", file,
			pex_error_last());
		code = PEX_EXIT_USAGE;
		goto done;
	}
	print_rows(&out, &b, &sk, made_done, &rep);
	if (rc < 0 && !rep.ndone)
		fprintf(stderr, "portex export: %s\n", pex_error_last());
	code = rc == 0 ? PEX_EXIT_OK : rc == PEX_EXPORT_PARTIAL ?
	       PEX_EXIT_PARTIAL : PEX_EXIT_FAIL;
done:
	for (i = 0; rep.rows && i < b.n; i++) {
		free(rep.rows[i].text);
		json_decref(rep.rows[i].obj);
	}
	free(rep.rows);
	pex_config_free(cfg);
	batch_free(&b);
	free(sk.paths);
	free(sk.ids);
	free(sk.lines);
	return code;
}

/* Errors only (-q): the sources that failed, and why. */
static void print_failed_sources(const json_t *sum, FILE *f)
{
	const json_t *src;
	size_t i;

	json_array_foreach(json_object_get(sum, "sources"), i, src) {
		const json_t *err = json_object_get(src, "error");

		if (err)
			fprintf(f, "portex export: source %s: %s\n",
				json_string_value(json_object_get(src, "id")),
				reason_of(src));
	}
}

/* -o replaces an earlier bundle; any other file there (a config, a
 * database, a log given by mistake) is refused. Returns 0 when fine. */
static int check_output(const char *path)
{
	if (!not_a_bundle(path))
		return 0;
	fprintf(stderr, "portex export: -o %s: that file exists and is not "
		"a portex bundle (no zip with a manifest.json that reads); "
		"it is left as it is. Give the bundle a new name.\n", path);
	return 1;
}

/* A request id goes into the bundle's JSON and XML: printable text of
 * a sane length, checked before anything is read. */
static int check_request_id(const char *id)
{
	size_t i, n = strlen(id);

	if (!n || n > 200) {
		fprintf(stderr, "portex export: -r: a request id of 1 to 200 "
			"characters\n");
		return 1;
	}
	for (i = 0; i < n; i++) {
		if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f) {
			fprintf(stderr, "portex export: -r: the request id "
				"holds a control character (byte %zu)\n",
				i + 1);
			return 1;
		}
	}
	return 0;
}

int pex_cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "subject", required_argument, NULL, 's' },
		{ "request-id", required_argument, NULL, 'r' },
		{ "output", required_argument, NULL, 'o' },
		{ "allow-partial", no_argument, NULL, 'P' },
		{ "batch", required_argument, NULL, 'B' },
		{ "out-dir", required_argument, NULL, 'D' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "replace", no_argument, NULL, 'R' },
		{ "skip-existing", no_argument, NULL, 'K' },
		{ "json", no_argument, NULL, 'J' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct pex_export_request req = { 0 };
	struct pex_identity_set ids = { 0 };
	struct progress prog = { isatty(STDERR_FILENO), 0 };
	const char *config = getenv("PORTEX_CONFIG");
	const char *batch_file = NULL;
	char *out_dir = NULL;
	int replace = 0, skip = 0, jobs_given = 0, verbose = 0;
	pex_config *cfg = NULL;
	json_t *summary = NULL;
	int c, json_out = 0, rc, code = PEX_EXIT_USAGE;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	/* one more than the CPUs: a bundle waits for its fsync, and
	 * another can use the CPU meanwhile */
	unsigned jobs = ncpu < 1 ? 2 : ncpu > 3 ? 4 : (unsigned)ncpu + 1;
	char *end;
	long j;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:s:r:o:j:qvh", opts, NULL)) != -1) {
		struct pex_identity id;

		switch (c) {
		case 'c': config = optarg; break;
		case 's':
			if (pex_identity_parse(&id, optarg)) {
				fprintf(stderr, "portex export: -s %s: %s\n",
					optarg, pex_error_last());
				goto cleanup;
			}
			if (!cli_identity_ok(&id)) {
				pex_identity_clear(&id);
				fprintf(stderr, "portex export: -s %s: not an "
					"email address (text, one @, text, no "
					"blank)\n", optarg);
				goto cleanup;
			}
			rc = pex_identity_set_add(&ids, &id);
			pex_identity_clear(&id);
			if (rc)
				goto fail;
			break;
		case 'r': req.request_id = optarg; break;
		case 'o': req.out_path = optarg; break;
		case 'P': req.allow_partial = 1; break;
		case 'B': batch_file = optarg; break;
		case 'D': out_dir = optarg; break;
		case 'R': replace = 1; break;
		case 'K': skip = 1; break;
		case 'j':
			errno = 0;
			j = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || j < 1 ||
			    j > PEX_BATCH_JOBS_MAX) {
				fprintf(stderr, "portex export: --jobs %s: "
					"give a number from 1 to %d\n", optarg,
					PEX_BATCH_JOBS_MAX);
				goto cleanup;
			}
			jobs = (unsigned)j;
			jobs_given = 1;
			break;
		case 'J': json_out = 1; break;
		case 'q': prog.quiet = 1; pex_log_set_level(0); break;
		case 'v': verbose = 1; pex_log_set_level(3); break;
		case 'h': help(stdout); code = PEX_EXIT_OK; goto cleanup;
		default:
			fprintf(stderr, "see 'portex export --help'\n");
			goto cleanup;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "portex export: unexpected argument '%s'\n",
			argv[optind]);
		goto cleanup;
	}
	if (prog.quiet && verbose) {
		fprintf(stderr, "portex export: -q and -v say opposite "
			"things; give one of them\n");
		goto cleanup;
	}
	if (!batch_file && (out_dir || jobs_given || replace || skip)) {
		fprintf(stderr, "portex export: %s goes with --batch; for one "
			"person, give the bundle's file with -o\n",
			out_dir ? "--out-dir" : jobs_given ? "--jobs" :
			replace ? "--replace" : "--skip-existing");
		goto cleanup;
	}
	if (replace && skip) {
		fprintf(stderr, "portex export: --replace and --skip-existing "
			"say opposite things; give one of them\n");
		goto cleanup;
	}
	if (batch_file) {
		if (!config || !out_dir || ids.count || req.out_path ||
		    req.request_id) {
			fprintf(stderr, "portex export: --batch needs -c and "
				"--out-dir, and takes no -s, -o or -r\n"
				"try: portex export -c portex.yaml --batch "
				"subjects.csv --out-dir bundles/\n");
			goto cleanup;
		}
		/* "out/" and "out" name the same folder: no "out//x.zip" */
		for (size_t n = strlen(out_dir); n > 1 && out_dir[n - 1] == '/';
		     n--)
			out_dir[n - 1] = '\0';
		code = run_batch(config, batch_file, out_dir,
				 req.allow_partial, replace, skip, jobs,
				 json_out,
				 &prog);
		goto cleanup;
	}
	if (!config || !ids.count || !req.out_path) {
		fprintf(stderr, "portex export: %s is required\n"
			"try: portex export -c portex.yaml -s "
			"email:alice@example.com -o alice.zip\n",
			!config ? "-c CONFIG" : !ids.count ?
			"at least one -s TYPE:VALUE" : "-o OUT.zip");
		goto cleanup;
	}
	if ((req.request_id && check_request_id(req.request_id)) ||
	    check_output(req.out_path))
		goto cleanup;
	if (pex_config_load(&cfg, config)) {
		fprintf(stderr, "portex export: %s\n", pex_error_last());
		if (access(config, F_OK))
			fprintf(stderr, "give the config with -c or "
				"$PORTEX_CONFIG; fixtures/demo/portex.yaml is "
				"an example\n");
		goto fail;
	}
	{
		char *d = strdup(req.out_path);

		if (d)
			sweep(dirname(d), prog.quiet);
		free(d);
	}
	req.cfg = cfg;
	req.identities = &ids;
	req.progress = on_progress;
	req.progress_data = &prog;
	{
		struct stat st;

		single.out_path = req.out_path;
		single.had_file = !stat(req.out_path, &st);
		single.dev = single.had_file ? st.st_dev : 0;
		single.ino = single.had_file ? st.st_ino : 0;
		pex_cleanup_on_interrupt(single_interrupted, &single);
	}
	rc = pex_export(&req, &summary);
	if (rc == PEX_EUSAGE) {
		fprintf(stderr, "portex export: %s\n", pex_error_last());
		code = PEX_EXIT_USAGE;
		goto cleanup;
	}
	if (rc < 0) {
		fprintf(stderr, "portex export: %s\n", pex_error_last());
		if (summary && !prog.quiet && !json_out)
			print_summary(summary, stderr);
		else if (summary && !json_out)
			print_failed_sources(summary, stderr);
		if (summary && json_out) {
			json_object_set_new(summary, "error",
					    json_string(pex_error_last()));
			json_dumpf(summary, stdout, JSON_INDENT(2));
			putchar('\n');
		}
		goto fail;
	}
	if (json_out) {
		json_dumpf(summary, stdout, JSON_INDENT(2));
		putchar('\n');
	} else if (!prog.quiet) {
		printf("portex: wrote %s (%s)\n", req.out_path,
		       rc == PEX_EXPORT_COMPLETE ? "complete" :
		       "INCOMPLETE: a source failed");
		print_summary(summary, stdout);
	} else if (rc == PEX_EXPORT_PARTIAL) {
		print_failed_sources(summary, stderr);
	}
	code = rc == PEX_EXPORT_COMPLETE ? PEX_EXIT_OK : PEX_EXIT_PARTIAL;
	goto cleanup;
fail:
	code = PEX_EXIT_FAIL;
cleanup:
	json_decref(summary);
	pex_config_free(cfg);
	pex_identity_set_clear(&ids);
	return code;
}
