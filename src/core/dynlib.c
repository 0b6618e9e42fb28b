/* Libraries loaded on first use; see dynlib.h. */
#include "core/dynlib.h"

#include <dlfcn.h>
#include <stdio.h>

#include "portex/error.h"

int pex_dynlib_open(struct pex_dynlib *l)
{
	const char *why;

	l->handle = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);
	if (l->handle) {
		l->rc = 0;
		return 0;
	}
	why = dlerror();
	l->rc = PEX_ENOTFOUND;
	snprintf(l->msg, sizeof(l->msg), "%s (%s) cannot be loaded: %s; "
		 "install it (Debian: apt-get install %s)", l->what,
		 l->soname, why ? why : "not found", l->package);
	return pex_error_set(l->rc, "%s", l->msg);
}

void *pex_dynlib_sym(struct pex_dynlib *l, const char *name)
{
	void *p = l->handle ? dlsym(l->handle, name) : NULL;

	if (!p && l->handle) {
		l->rc = PEX_ENOTFOUND;
		snprintf(l->msg, sizeof(l->msg), "%s (%s) has no %s: it is "
			 "older than portex needs; install a newer %s",
			 l->what, l->soname, name, l->package);
		pex_error_set(l->rc, "%s", l->msg);
	}
	return p;
}

int pex_dynlib_result(const struct pex_dynlib *l)
{
	return l->rc ? pex_error_set(l->rc, "%s", l->msg) : 0;
}
