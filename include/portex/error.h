/*
 * portex error reporting.
 *
 * Every portex function that can fail returns an int: 0 on success, a
 * negative PEX_E* code on failure. The human-readable reason of the last
 * failure on the calling thread is kept in thread-local storage and read
 * with pex_error_last(); the string is borrowed and stays valid until the
 * next pex_error_set() on the same thread.
 */
#ifndef PEX_ERROR_H
#define PEX_ERROR_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

enum pex_error_code {
	PEX_OK = 0,
	PEX_ERROR = -1,     /* generic failure, see pex_error_last() */
	PEX_ENOMEM = -2,    /* out of memory */
	PEX_EINVALID = -3,  /* input does not meet its rules (schema, syntax) */
	PEX_ENOTFOUND = -4, /* a named thing does not exist */
	PEX_EIO = -5,       /* reading or writing failed */
	PEX_ELIMIT = -6,    /* a configured or built-in limit was exceeded */
	PEX_EUSAGE = -7,    /* the caller used the API wrongly */
};

/* Record the reason for a failure; returns code so callers can write
 * `return pex_error_set(PEX_EIO, "cannot open %s", path);`. */
int pex_error_set(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int pex_error_setv(int code, const char *fmt, va_list ap);

/* Prefix the current message with more context ("source crm: ..."). */
int pex_error_wrap(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Borrowed; "" when nothing failed yet on this thread. */
const char *pex_error_last(void);
void pex_error_clear(void);

#ifdef __cplusplus
}
#endif
#endif
