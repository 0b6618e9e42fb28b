/*
 * Test shim (LD_PRELOAD): rename() fails with EACCES when the new name
 * ends with $PEX_FAULT_RENAME, as if that one output could not be made.
 * For weblog_batch_test.sh: a bundle synced with the others of its group
 * but not moved into place must fail its subject alone, its temporary
 * zip removed. Built by the test with the system's cc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rename(const char *from, const char *to)
{
	static int (*real)(const char *, const char *);
	const char *tail = getenv("PEX_FAULT_RENAME");
	size_t n = tail ? strlen(tail) : 0, m = strlen(to);

	if (n && m >= n && !strcmp(to + m - n, tail)) {
		errno = EACCES;
		return -1;
	}
	if (!real)
		real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT,
								 "rename");
	return real(from, to);
}
