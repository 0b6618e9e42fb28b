/*
 * The registry of temporary paths; see core/cleanup.h.
 *
 * A plain array under one mutex: an export registers a handful of paths
 * (a bundle's temporary zip and work folder, a batch's spool folder), so
 * a linear search costs nothing next to the file system calls around it.
 *
 * Removal tolerates the other threads of an export still running: a
 * worker may make a file in a work folder, or libzip its temporary zip,
 * while we scan. So a folder scan or tree removal is repeated while it
 * still finds something, a bounded number of times; what a thread makes
 * after the last scan and before _exit() survives (see
 * docs/internals/cleanup.md).
 */
#include "core/cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "portex/error.h"

/* Passes over one folder or tree while they still find something. */
#define PEX_CLEANUP_PASSES 4
/* Folder descriptors nftw() may keep open at once. */
#define PEX_CLEANUP_FDS 32

struct entry {
	char *path;
	int kind;
};

static struct {
	pthread_mutex_t mu;
	struct entry *v;
	size_t n, cap;
	int signals_started;
	void (*on_interrupt)(void *data, int signo);
	void *on_interrupt_data;
} reg = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* nftw() has no user pointer, and every removal runs under reg.mu, so
 * its callback reports through these: the paths it could not remove, and
 * whether this is the last pass (only that one names them on stderr). */
static unsigned tree_failures;
static int tree_loud;

/* ---- the registry ------------------------------------------------------ */

static int add_locked(const char *path, int kind)
{
	struct entry *e;
	char *copy;
	size_t i;

	for (i = 0; i < reg.n; i++)
		if (reg.v[i].kind == kind && !strcmp(reg.v[i].path, path))
			return 0;
	if (reg.n == reg.cap) {
		size_t cap = reg.cap ? reg.cap * 2 : 16;

		e = realloc(reg.v, cap * sizeof(*e));
		if (!e)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		reg.v = e;
		reg.cap = cap;
	}
	copy = strdup(path);
	if (!copy)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	reg.v[reg.n].path = copy;
	reg.v[reg.n].kind = kind;
	reg.n++;
	return 0;
}

static int check_path(const char *path, int kind)
{
	const char *base;

	if (!path || !*path)
		return pex_error_set(PEX_EUSAGE, "cleanup: empty path");
	if (strlen(path) >= PEX_CLEANUP_PATH_MAX)
		return pex_error_set(PEX_ELIMIT, "cleanup: a path longer than "
				     "%d bytes", PEX_CLEANUP_PATH_MAX - 1);
	if (kind == PEX_CLEANUP_FILE || kind == PEX_CLEANUP_TREE)
		return 0;
	if (kind != PEX_CLEANUP_PREFIX)
		return pex_error_set(PEX_EUSAGE, "cleanup: unknown kind %d",
				     kind);
	/* "DIR/" or "DIR/." as a prefix would match every hidden file
	 * beside the output, not just ours */
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return pex_error_set(PEX_EUSAGE, "cleanup: %s does not end in "
				     "a name prefix", path);
	return 0;
}

int pex_cleanup_add(const char *path, int kind)
{
	int rc = check_path(path, kind);

	if (rc)
		return rc;
	pthread_mutex_lock(&reg.mu);
	rc = add_locked(path, kind);
	pthread_mutex_unlock(&reg.mu);
	return rc;
}

static void forget_locked(const char *path)
{
	size_t i = 0;

	while (i < reg.n) {
		if (strcmp(reg.v[i].path, path)) {
			i++;
			continue;
		}
		free(reg.v[i].path);
		reg.v[i] = reg.v[--reg.n];
	}
}

void pex_cleanup_forget(const char *path)
{
	if (!path)
		return;
	pthread_mutex_lock(&reg.mu);
	forget_locked(path);
	pthread_mutex_unlock(&reg.mu);
}

int pex_cleanup_rename(const char *from, const char *to)
{
	int rc, err;

	pthread_mutex_lock(&reg.mu);
	rc = rename(from, to);
	err = errno;
	if (!rc)
		forget_locked(from);
	pthread_mutex_unlock(&reg.mu);
	errno = err;
	return rc;
}

int pex_cleanup_mkdtemp(char *tmpl)
{
	char orig[PEX_CLEANUP_PATH_MAX];
	int rc = 0, err;

	if (!tmpl || strlen(tmpl) >= sizeof(orig))
		return pex_error_set(PEX_EUSAGE, "cleanup: bad folder "
				     "template");
	memcpy(orig, tmpl, strlen(tmpl) + 1);
	pthread_mutex_lock(&reg.mu);
	if (!mkdtemp(tmpl)) {
		err = errno;
		rc = pex_error_set(PEX_EIO, "cannot make a folder %s: %s",
				   orig, strerror(err));
		pthread_mutex_unlock(&reg.mu);
		errno = err;
		return rc;
	}
	rc = add_locked(tmpl, PEX_CLEANUP_TREE);
	if (rc)
		rmdir(tmpl);
	pthread_mutex_unlock(&reg.mu);
	if (rc)
		errno = ENOMEM;
	return rc;
}

int pex_cleanup_create(const char *path, int mode)
{
	int fd, err;

	pthread_mutex_lock(&reg.mu);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	err = errno;
	pthread_mutex_unlock(&reg.mu);
	errno = err;
	return fd;
}

/* ---- removal (all under reg.mu) ---------------------------------------- */

static void report(const char *path, int err)
{
	fprintf(stderr, "portex: cannot remove temporary %s: %s\n", path,
		strerror(err));
}

static int tree_entry(const char *fpath, const struct stat *sb, int type,
		      struct FTW *ftw)
{
	if (remove(fpath) && errno != ENOENT) {
		if (tree_loud)
			report(fpath, errno);
		tree_failures++;
	}
	return 0; /* go on with the rest */
}

/* Remove a folder and what is below it (a file or symbolic link there is
 * just removed). Returns the number of paths that failed. */
static unsigned remove_tree(const char *path)
{
	struct stat st;
	int pass;

	for (pass = 0; pass < PEX_CLEANUP_PASSES; pass++) {
		if (lstat(path, &st))
			return 0; /* gone */
		tree_loud = pass == PEX_CLEANUP_PASSES - 1;
		tree_failures = 0;
		/* depth-first, on this file system, links not followed */
		nftw(path, tree_entry, PEX_CLEANUP_FDS,
		     FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	}
	if (lstat(path, &st))
		return 0;
	if (!tree_failures) /* refilled faster than we emptied it */
		report(path, ENOTEMPTY);
	return tree_failures ? tree_failures : 1;
}

static unsigned remove_file(const char *path)
{
	if (!unlink(path) || errno == ENOENT)
		return 0;
	if (errno == EISDIR && !rmdir(path))
		return 0;
	report(path, errno);
	return 1;
}

/* Every entry of path's folder whose name starts with path's last
 * component. */
static unsigned remove_prefix(const char *path)
{
	char dir[PEX_CLEANUP_PATH_MAX];
	char full[PEX_CLEANUP_PATH_MAX + 258];
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t blen = strlen(base);
	unsigned failed = 0;
	int pass, found = 1;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	for (pass = 0; found && pass < PEX_CLEANUP_PASSES; pass++) {
		DIR *d = opendir(dir);
		struct dirent *e;

		found = 0;
		failed = 0;
		if (!d) {
			if (errno == ENOENT)
				return 0;
			report(dir, errno);
			return 1;
		}
		/* removing the entry just read is safe: readdir() still
		 * returns every other entry present at opendir() */
		while ((e = readdir(d))) {
			if (strncmp(e->d_name, base, blen))
				continue;
			found = 1;
			snprintf(full, sizeof(full), "%s/%s", dir, e->d_name);
			if (!unlinkat(dirfd(d), e->d_name, 0) ||
			    errno == ENOENT)
				continue;
			if (errno == EISDIR) {
				failed += remove_tree(full);
			} else {
				if (pass == PEX_CLEANUP_PASSES - 1)
					report(full, errno);
				failed++;
			}
		}
		closedir(d);
	}
	return failed;
}

static unsigned remove_all_locked(void)
{
	unsigned failed = 0;
	size_t i;

	/* files first: a file of ours may sit inside a registered tree,
	 * and removing the trees last leaves them nothing to trip on */
	for (i = 0; i < reg.n; i++) {
		if (reg.v[i].kind == PEX_CLEANUP_FILE)
			failed += remove_file(reg.v[i].path);
		else if (reg.v[i].kind == PEX_CLEANUP_PREFIX)
			failed += remove_prefix(reg.v[i].path);
	}
	for (i = 0; i < reg.n; i++)
		if (reg.v[i].kind == PEX_CLEANUP_TREE)
			failed += remove_tree(reg.v[i].path);
	return failed;
}

void pex_cleanup_run(void)
{
	size_t i;

	pthread_mutex_lock(&reg.mu);
	remove_all_locked();
	for (i = 0; i < reg.n; i++)
		free(reg.v[i].path);
	free(reg.v);
	reg.v = NULL;
	reg.n = reg.cap = 0;
	pthread_mutex_unlock(&reg.mu);
}

/* ---- signals ----------------------------------------------------------- */

static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
}

static const char *signal_name(int signo)
{
	switch (signo) {
	case SIGINT:
		return "SIGINT";
	case SIGTERM:
		return "SIGTERM";
	case SIGHUP:
		return "SIGHUP";
	default:
		return "signal";
	}
}

/* A thread, not a handler: removing a tree needs opendir(), malloc() and
 * the registry's mutex, none of which is async-signal-safe. */
static void *signal_main(void *arg)
{
	sigset_t set;
	unsigned failed;
	int signo = 0;

	stop_signals(&set);
	while (sigwait(&set, &signo))
		; /* only fails for a bad set */
	/* never released: whatever wants to register a path now waits
	 * here until the _exit() below */
	pthread_mutex_lock(&reg.mu);
	failed = remove_all_locked();
	if (isatty(STDERR_FILENO)) /* over a progress line, if any */
		fputs("\r\033[K", stderr);
	if (failed)
		fprintf(stderr, "portex: interrupted (%s); %u temporary "
			"path(s) could not be removed (see above); no bundle "
			"written for the unfinished export(s)\n",
			signal_name(signo), failed);
	else
		fprintf(stderr, "portex: interrupted (%s); temporary files "
			"removed, no bundle written for the unfinished "
			"export(s)\n", signal_name(signo));
	fflush(stderr);
	if (reg.on_interrupt) {
		reg.on_interrupt(reg.on_interrupt_data, signo);
		fflush(stdout);
		fflush(stderr);
		/* the exports went on meanwhile: a temporary file made since
		 * the removal (its path was registered before) goes too.
		 * None was renamed into place: that needs this lock. */
		remove_all_locked();
	}
	_exit(128 + signo);
	return NULL;
}

int pex_cleanup_on_signals(void)
{
	sigset_t set, old;
	pthread_attr_t attr;
	pthread_t t;
	int rc = 0, err;

	pthread_mutex_lock(&reg.mu);
	if (reg.signals_started) {
		pthread_mutex_unlock(&reg.mu);
		return 0;
	}
	stop_signals(&set);
	err = pthread_sigmask(SIG_BLOCK, &set, &old);
	if (err) {
		rc = pex_error_set(PEX_ERROR, "cannot block signals: %s",
				   strerror(err));
		goto cleanup;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	err = pthread_create(&t, &attr, signal_main, NULL);
	pthread_attr_destroy(&attr);
	if (err) {
		/* without the thread, blocked signals would not stop us at
		 * all: better to die as before than to ignore Ctrl-C */
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		rc = pex_error_set(PEX_ERROR, "cannot start the signal "
				   "thread: %s", strerror(err));
		goto cleanup;
	}
	pthread_setname_np(t, "portex-signal");
	reg.signals_started = 1;
cleanup:
	pthread_mutex_unlock(&reg.mu);
	return rc;
}

void pex_cleanup_on_interrupt(void (*fn)(void *data, int signo),
			      void *data)
{
	pthread_mutex_lock(&reg.mu);
	reg.on_interrupt = fn;
	reg.on_interrupt_data = data;
	pthread_mutex_unlock(&reg.mu);
}

/* ---- leftovers of killed runs ------------------------------------------ */

static pthread_once_t tag_once = PTHREAD_ONCE_INIT;
static char tag[PEX_CLEANUP_TAG_MAX];
static unsigned host_hash;

static void tag_init(void)
{
	char host[256] = "";
	size_t i;
	unsigned h = 2166136261u;

	if (gethostname(host, sizeof(host) - 1))
		host[0] = '\0';
	for (i = 0; host[i]; i++) {
		h ^= (unsigned char)host[i];
		h *= 16777619u;
	}
	host_hash = h;
	snprintf(tag, sizeof(tag), "portex-%08x-%ld", h, (long)getpid());
}

const char *pex_cleanup_tag(void)
{
	pthread_once(&tag_once, tag_init);
	return tag;
}

/* The host hash and PID in name's tag, if it has one. */
static int parse_tag(const char *name, unsigned *hash, long *pid)
{
	const char *p = NULL, *q = name;
	char *end;
	unsigned long h;
	long v;
	size_t i;

	/* the last one: the bundle's own name may hold "portex-" too */
	while ((q = strstr(q, "portex-")))
		p = q++;
	if (!p)
		return 0;
	p += 7;
	for (i = 0; i < 8; i++)
		if (!((p[i] >= '0' && p[i] <= '9') ||
		      (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	if (p[8] != '-')
		return 0;
	h = strtoul(p, NULL, 16);
	errno = 0;
	v = strtol(p + 9, &end, 10);
	if (errno || end == p + 9 || v <= 0 || (*end != '.' && *end != '-'))
		return 0;
	*hash = (unsigned)h;
	*pid = v;
	return 1;
}

int pex_cleanup_sweep(const char *dir)
{
	DIR *d;
	struct dirent *de;
	int removed = 0;

	pthread_once(&tag_once, tag_init);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[PEX_CLEANUP_PATH_MAX];
		struct stat st;
		unsigned h;
		long pid;

		if (de->d_name[0] != '.' || !parse_tag(de->d_name, &h, &pid) ||
		    h != host_hash || pid == (long)getpid())
			continue;
		/* alive, or not ours to test (EPERM): leave it */
		if (!kill((pid_t)pid, 0) || errno != ESRCH)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
		    (int)sizeof(path))
			continue;
		if (lstat(path, &st) || st.st_uid != geteuid())
			continue;
		pthread_mutex_lock(&reg.mu);
		if (S_ISDIR(st.st_mode))
			remove_tree(path);
		else
			unlink(path);
		pthread_mutex_unlock(&reg.mu);
		if (lstat(path, &st))
			removed++;
	}
	closedir(d);
	return removed;
}
