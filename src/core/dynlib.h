/*
 * Libraries loaded when first needed rather than at start-up: libpq for
 * PostgreSQL sources and libcurl for REST sources. Linked, the two pulled
 * 27 further libraries (Kerberos, LDAP, GnuTLS, SSH, ...) into every run
 * of portex, and loading and relocating them was half of its start-up
 * (5.4 against 2.7 ms for an empty program linked with portex's
 * libraries, with and without them), paid by every export, verify and
 * --help that never reads a database or calls a tracker.
 *
 * A user of a library keeps a table of the functions it calls, filled once
 * (pthread_once) by pex_dynlib_open() and pex_dynlib_sym(); the prototypes
 * come from the library's own headers, so a call through the table is
 * checked as a direct call would be.
 */
#ifndef PEX_CORE_DYNLIB_H
#define PEX_CORE_DYNLIB_H

/* For a list of functions FUNCS(X): PEX_DYNLIB_MEMBER makes the table's
 * members, typed by the library's own prototypes; PEX_DYNLIB_LOAD fills
 * one from l, in a function returning void that stops at the first
 * symbol missing (l keeps the error). */
#define PEX_DYNLIB_MEMBER(f) __typeof__(f) *f;
#define PEX_DYNLIB_LOAD(l, table, f)                                       \
	if (!((table).f = (__typeof__(f) *)pex_dynlib_sym((l), #f)))        \
		return;

/* The outcome of one library's loading, kept so every later caller gets
 * the same answer and message. */
struct pex_dynlib {
	const char *soname;  /* "libpq.so.5" */
	const char *what;    /* "the PostgreSQL client library" */
	const char *package; /* Debian package that has it: "libpq5" */
	void *handle;
	int rc;
	char msg[512];
};

/* dlopen() the library (RTLD_NOW: a missing symbol shows here, not in
 * the middle of a request). Returns 0, or PEX_ENOTFOUND with a
 * message naming the library and the package to install. */
int pex_dynlib_open(struct pex_dynlib *l);

/* The address of symbol name, or NULL with l->rc and l->msg set. */
void *pex_dynlib_sym(struct pex_dynlib *l, const char *name);

/* After loading: 0, or l->rc with the error message set again for this
 * thread. */
int pex_dynlib_result(const struct pex_dynlib *l);

#endif
