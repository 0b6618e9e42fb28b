/* Unit tests for core/cleanup.c: the registry of temporary paths and its
 * removal on pex_cleanup_run() and on a signal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "portex/error.h"

#define NTHREADS 8
#define PER_THREAD 150

static char dir[64];

/* path = dir/name, bounded */
static const char *at(char *buf, size_t cap, const char *name)
{
	int n = snprintf(buf, cap, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < cap);
	return buf;
}

static void make_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* For threads and forked children, where a cmocka assertion cannot
 * jump back: 0 or -1. */
static int touch(const char *path)
{
	FILE *f = fopen(path, "wb");

	if (!f)
		return -1;
	return fclose(f) ? -1 : 0;
}

static void make_dir(const char *path)
{
	assert_int_equal(mkdir(path, 0700), 0);
}

static int exists(const char *path)
{
	struct stat st;

	return !lstat(path, &st);
}

/* The test's own remover, so that teardown does not depend on the code
 * under test. */
static int rm_entry(const char *p, const struct stat *sb, int t,
		    struct FTW *f)
{
	(void)sb;
	(void)t;
	(void)f;
	remove(p);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/pex_cleanup_test_XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	pex_cleanup_run(); /* nothing may stay registered between tests */
	return nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_files(void **state)
{
	char a[128], b[128], c[128];

	(void)state;
	make_file(at(a, sizeof(a), "a.tmp"), "personal");
	make_file(at(b, sizeof(b), "b.tmp"), "kept");
	at(c, sizeof(c), "never-made.tmp");
	assert_int_equal(pex_cleanup_add(a, PEX_CLEANUP_FILE), 0);
	assert_int_equal(pex_cleanup_add(b, PEX_CLEANUP_FILE), 0);
	assert_int_equal(pex_cleanup_add(c, PEX_CLEANUP_FILE), 0);
	pex_cleanup_forget(b);
	pex_cleanup_forget(NULL);
	pex_cleanup_forget("/no/such/registered/path");
	pex_cleanup_run();
	assert_false(exists(a));
	assert_true(exists(b));
	assert_false(exists(c));
	/* the registry is empty now: a new file of the same name stays */
	make_file(a, "again");
	pex_cleanup_run();
	assert_true(exists(a));
}

static void test_duplicate_is_one_entry(void **state)
{
	char a[128];

	(void)state;
	make_file(at(a, sizeof(a), "dup"), "x");
	assert_int_equal(pex_cleanup_add(a, PEX_CLEANUP_FILE), 0);
	assert_int_equal(pex_cleanup_add(a, PEX_CLEANUP_FILE), 0);
	pex_cleanup_forget(a);
	pex_cleanup_run();
	assert_true(exists(a));
}

static void test_tree(void **state)
{
	char t[128], p[256], outside[128], link[256];
	int i;

	(void)state;
	make_dir(at(t, sizeof(t), ".out.zip.portex-work-abc123"));
	snprintf(p, sizeof(p), "%s/events.json", t);
	make_file(p, "{\"ip\":\"192.0.2.1\"}");
	snprintf(p, sizeof(p), "%s/att", t);
	make_dir(p);
	for (i = 0; i < 5; i++) {
		snprintf(p, sizeof(p), "%s/att/d%d", t, i);
		make_dir(p);
		snprintf(p, sizeof(p), "%s/att/d%d/file", t, i);
		make_file(p, "attachment");
	}
	snprintf(p, sizeof(p), "%s/att/d0/empty", t);
	make_dir(p);
	/* a link inside the tree to a file outside it: the link goes, the
	 * file it points to stays */
	make_file(at(outside, sizeof(outside), "outside"), "not ours");
	snprintf(link, sizeof(link), "%s/att/link", t);
	assert_int_equal(symlink(outside, link), 0);
	snprintf(p, sizeof(p), "%s/att/dirlink", t);
	assert_int_equal(symlink(dir, p), 0);

	assert_int_equal(pex_cleanup_add(t, PEX_CLEANUP_TREE), 0);
	pex_cleanup_run();
	assert_false(exists(t));
	assert_true(exists(outside));
	assert_true(exists(dir));
}

static void test_forgotten_tree_stays(void **state)
{
	char t[128], p[256];

	(void)state;
	make_dir(at(t, sizeof(t), "tree"));
	snprintf(p, sizeof(p), "%s/f", t);
	make_file(p, "x");
	assert_int_equal(pex_cleanup_add(t, PEX_CLEANUP_TREE), 0);
	pex_cleanup_forget(t);
	pex_cleanup_run();
	assert_true(exists(p));
}

static void test_prefix(void **state)
{
	static const char *const gone[] = {
		".out.zip.portex-41.tmp",
		".out.zip.portex-41.tmp.Xa81Qz",
		".out.zip.portex-41.tmp.b2",
	};
	static const char *const stay[] = {
		".out.zip.portex-41.tm",   /* a shorter prefix only */
		".out.zip.portex-4.tmp",   /* another process */
		".out.zip.portex-412.tmp", /* shares ".out.zip.portex-4" */
		".out.zip.portex-work-x",
		"out.zip",
		"x.out.zip.portex-41.tmp", /* contains, does not start */
	};
	char reg[128], p[128], sub[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		make_file(at(p, sizeof(p), gone[i]), "zip bytes");
	for (i = 0; i < sizeof(stay) / sizeof(stay[0]); i++)
		make_file(at(p, sizeof(p), stay[i]), "neighbour");
	/* a matching folder goes as a whole */
	make_dir(at(p, sizeof(p), ".out.zip.portex-41.tmp.d"));
	snprintf(sub, sizeof(sub), "%s/inner", p);
	make_file(sub, "x");

	at(reg, sizeof(reg), ".out.zip.portex-41.tmp");
	assert_int_equal(pex_cleanup_add(reg, PEX_CLEANUP_PREFIX), 0);
	pex_cleanup_run();
	for (i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		assert_false(exists(at(p, sizeof(p), gone[i])));
	assert_false(exists(at(p, sizeof(p), ".out.zip.portex-41.tmp.d")));
	for (i = 0; i < sizeof(stay) / sizeof(stay[0]); i++)
		assert_true(exists(at(p, sizeof(p), stay[i])));
}

static void test_prefix_missing_folder(void **state)
{
	char p[128];

	(void)state;
	assert_int_equal(pex_cleanup_add(at(p, sizeof(p), "nope/.x.tmp"),
					 PEX_CLEANUP_PREFIX), 0);
	pex_cleanup_run(); /* no folder: nothing to do, no crash */
	assert_true(exists(dir));
}

static void test_bad_arguments(void **state)
{
	char *longp;
	char p[128];

	(void)state;
	assert_int_equal(pex_cleanup_add(NULL, PEX_CLEANUP_FILE),
			 PEX_EUSAGE);
	assert_int_equal(pex_cleanup_add("", PEX_CLEANUP_FILE), PEX_EUSAGE);
	assert_int_equal(pex_cleanup_add("/tmp/x", 0), PEX_EUSAGE);
	assert_int_equal(pex_cleanup_add("/tmp/x", 99), PEX_EUSAGE);
	/* prefixes that would match every hidden file beside the output */
	assert_int_equal(pex_cleanup_add(at(p, sizeof(p), ""),
					 PEX_CLEANUP_PREFIX), PEX_EUSAGE);
	assert_int_equal(pex_cleanup_add(at(p, sizeof(p), "."),
					 PEX_CLEANUP_PREFIX), PEX_EUSAGE);
	assert_int_equal(pex_cleanup_add(at(p, sizeof(p), ".."),
					 PEX_CLEANUP_PREFIX), PEX_EUSAGE);
	assert_non_null(strstr(pex_error_last(), "prefix"));
	longp = malloc(PEX_CLEANUP_PATH_MAX + 10);
	assert_non_null(longp);
	memset(longp, 'a', PEX_CLEANUP_PATH_MAX + 9);
	longp[0] = '/';
	longp[PEX_CLEANUP_PATH_MAX + 9] = '\0';
	assert_int_equal(pex_cleanup_add(longp, PEX_CLEANUP_FILE),
			 PEX_ELIMIT);
	free(longp);
	/* the folder survived all of that */
	pex_cleanup_run();
	assert_true(exists(dir));
}

static void test_mkdtemp(void **state)
{
	char t[128], p[256], bad[128];

	(void)state;
	at(t, sizeof(t), ".batch-XXXXXX");
	assert_int_equal(pex_cleanup_mkdtemp(t), 0);
	assert_null(strstr(t, "XXXXXX"));
	snprintf(p, sizeof(p), "%s/s0-0.spool", t);
	make_file(p, "spooled record");
	pex_cleanup_run();
	assert_false(exists(t));

	/* no XXXXXX: mkdtemp fails, nothing is made or registered */
	at(bad, sizeof(bad), "no-template");
	assert_int_equal(pex_cleanup_mkdtemp(bad), PEX_EIO);
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(pex_error_last(), "no-template"));
	at(bad, sizeof(bad), "missing/sub-XXXXXX");
	assert_int_equal(pex_cleanup_mkdtemp(bad), PEX_EIO);
	assert_int_equal(errno, ENOENT);
}

/* Registered at the end of test_threads: t<k>-<i> as a file for odd i
 * (the even ones were forgotten, every kind at once), and as a prefix
 * for odd multiples of 3, which also takes t<k>-<i><more digits>;
 * "t1-1" being a prefix of "t1-10" must change nothing else. */
static int expect_gone(int k, int i)
{
	char n[64], m[64];
	int j;

	if (i % 2)
		return 1;
	snprintf(n, sizeof(n), "t%d-%d", k, i);
	for (j = 3; j < PER_THREAD; j += 6) {
		snprintf(m, sizeof(m), "t%d-%d", k, j);
		if (!strncmp(n, m, strlen(m)))
			return 1;
	}
	return 0;
}

struct worker_arg {
	int id;
	int rc;
};

/* Each thread makes files, registers them all, forgets every other one
 * (in a different order than it added them), while the others do the
 * same; a forgotten file must survive the run, a registered one not. */
static void *worker(void *arg)
{
	struct worker_arg *w = arg;
	char p[128], n[64];
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		snprintf(n, sizeof(n), "t%d-%d", w->id, i);
		if (touch(at(p, sizeof(p), n)) ||
		    pex_cleanup_add(p, PEX_CLEANUP_FILE)) {
			w->rc = -1;
			return NULL;
		}
		if (i % 3 == 0 && pex_cleanup_add(p, PEX_CLEANUP_PREFIX)) {
			w->rc = -1;
			return NULL;
		}
	}
	for (i = PER_THREAD - 1; i >= 0; i--) {
		if (i % 2)
			continue;
		snprintf(n, sizeof(n), "t%d-%d", w->id, i);
		pex_cleanup_forget(at(p, sizeof(p), n));
	}
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t t[NTHREADS];
	struct worker_arg a[NTHREADS];
	char p[128], n[64];
	int k, i;

	(void)state;
	for (k = 0; k < NTHREADS; k++) {
		a[k].id = k;
		a[k].rc = 0;
		assert_int_equal(pthread_create(&t[k], NULL, worker, &a[k]),
				 0);
	}
	for (k = 0; k < NTHREADS; k++) {
		assert_int_equal(pthread_join(t[k], NULL), 0);
		assert_int_equal(a[k].rc, 0);
	}
	pex_cleanup_run();
	for (k = 0; k < NTHREADS; k++)
		for (i = 0; i < PER_THREAD; i++) {
			snprintf(n, sizeof(n), "t%d-%d", k, i);
			assert_int_equal(exists(at(p, sizeof(p), n)),
					 !expect_gone(k, i));
		}
}

/* Adding and removing at once: run() in one thread while others add. */
static void *adder(void *arg)
{
	struct worker_arg *w = arg;
	char p[128], n[64];
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		snprintf(n, sizeof(n), "r%d-%d", w->id, i);
		if (touch(at(p, sizeof(p), n)) ||
		    pex_cleanup_add(p, PEX_CLEANUP_FILE))
			w->rc = -1;
	}
	return NULL;
}

static void test_run_while_adding(void **state)
{
	pthread_t t[NTHREADS];
	struct worker_arg a[NTHREADS];
	char p[128], n[64];
	int k, i;

	(void)state;
	for (k = 0; k < NTHREADS; k++) {
		a[k].id = k;
		a[k].rc = 0;
		assert_int_equal(pthread_create(&t[k], NULL, adder, &a[k]),
				 0);
	}
	for (i = 0; i < 20; i++)
		pex_cleanup_run();
	for (k = 0; k < NTHREADS; k++) {
		assert_int_equal(pthread_join(t[k], NULL), 0);
		assert_int_equal(a[k].rc, 0);
	}
	pex_cleanup_run();
	/* whichever run took them, every registered file is gone */
	for (k = 0; k < NTHREADS; k++)
		for (i = 0; i < PER_THREAD; i++) {
			snprintf(n, sizeof(n), "r%d-%d", k, i);
			assert_false(exists(at(p, sizeof(p), n)));
		}
}

struct child_result {
	int status;
	char err[512];
};

/* In a child: register a file, a tree and a prefix, start the signal
 * thread, then let a thread made afterwards (it inherits the blocked
 * mask) send signo to the process. */
static void *send_signal(void *arg)
{
	kill(getpid(), *(int *)arg);
	return NULL;
}

static void run_child(int signo, struct child_result *r)
{
	int fds[2];
	pid_t pid;
	ssize_t n;
	size_t got = 0;

	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		char p[128], t[128], q[256];
		pthread_t th;
		int i;

		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		snprintf(q, sizeof(q), "%s/inner", at(t, sizeof(t),
							   "sigtree"));
		if (touch(at(p, sizeof(p), "sig.tmp")) || mkdir(t, 0700) ||
		    touch(q) || pex_cleanup_add(p, PEX_CLEANUP_FILE) ||
		    pex_cleanup_add(t, PEX_CLEANUP_TREE) ||
		    pex_cleanup_on_signals() || pex_cleanup_on_signals())
			_exit(2);
		if (touch(at(q, sizeof(q), ".z.tmp.Ab12")) ||
		    pex_cleanup_add(at(q, sizeof(q), ".z.tmp"),
				    PEX_CLEANUP_PREFIX))
			_exit(2);
		if (pthread_create(&th, NULL, send_signal, &signo))
			_exit(2);
		pthread_join(th, NULL);
		for (i = 0; i < 100; i++)
			sleep(1); /* the signal thread ends us */
		_exit(3);
	}
	close(fds[1]);
	while (got + 1 < sizeof(r->err)) {
		n = read(fds[0], r->err + got, sizeof(r->err) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	r->err[got] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &r->status, 0), pid);
}

static void test_signals(void **state)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	static const char *const names[] = { "SIGTERM", "SIGINT", "SIGHUP" };
	struct child_result r;
	char p[128];
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		run_child(sigs[i], &r);
		assert_true(WIFEXITED(r.status));
		assert_int_equal(WEXITSTATUS(r.status), 128 + sigs[i]);
		assert_non_null(strstr(r.err, "interrupted"));
		assert_non_null(strstr(r.err, names[i]));
		assert_non_null(strstr(r.err, "temporary files removed"));
		assert_false(exists(at(p, sizeof(p), "sig.tmp")));
		assert_false(exists(at(p, sizeof(p), "sigtree")));
		assert_false(exists(at(p, sizeof(p), ".z.tmp.Ab12")));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_is_one_entry,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forgotten_tree_stays,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefix_missing_folder,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_mkdtemp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_while_adding, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_signals, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
