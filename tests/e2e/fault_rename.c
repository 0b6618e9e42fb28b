/*
 * Test shim (LD_PRELOAD): rename() fails with EACCES when the new name
 * ends with $PEX_FAULT_RENAME, as if that one output could not be made.
 * For weblog_batch_test.sh: a bundle synced with the others of its group
 * but not moved into place must fail its subject alone, its temporary
 * zip removed.
 *
 * When the new name ends with $PEX_SIGNAL_AFTER_RENAME instead, the
 * rename is made, and at the next fsync() of a folder (the rename's, made
 * durable) the process sends itself SIGINT and waits for it to act: for
 * interrupt_test.sh, a signal that comes once the bundle is in place,
 * before the export has said so. (Not in rename() itself: portex renames
 * under the lock its signal thread takes first.)
 *
 * Built by the tests with the system's cc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile int renamed; /* the name PEX_SIGNAL_AFTER_RENAME made */

static int ends_with(const char *s, const char *tail)
{
	size_t n = tail ? strlen(tail) : 0, m = strlen(s);

	return n && m >= n && !strcmp(s + m - n, tail);
}

int rename(const char *from, const char *to)
{
	static int (*real)(const char *, const char *);
	int rc;

	if (ends_with(to, getenv("PEX_FAULT_RENAME"))) {
		errno = EACCES;
		return -1;
	}
	if (!real)
		real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT,
								 "rename");
	rc = real(from, to);
	if (!rc && ends_with(to, getenv("PEX_SIGNAL_AFTER_RENAME")))
		renamed = 1;
	return rc;
}

int fsync(int fd)
{
	static int (*real)(int);
	struct stat st;

	if (renamed && !fstat(fd, &st) && S_ISDIR(st.st_mode)) {
		kill(getpid(), SIGINT); /* to the process: its signal thread */
		for (;;)
			pause(); /* the signal thread ends the process */
	}
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	return real(fd);
}
