/* Thread-local last-error message; see include/portex/error.h. */
#include "portex/error.h"

#include <stdio.h>
#include <string.h>

#include "core/text.h"

#define PEX_ERROR_MAX 4096

static _Thread_local char last_msg[PEX_ERROR_MAX];

int pex_error_setv(int code, const char *fmt, va_list ap)
{
	vsnprintf(last_msg, sizeof(last_msg), fmt, ap);
	/* cut at the limit, or quoting input: still text */
	pex_utf8_mend(last_msg);
	return code;
}

int pex_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pex_error_setv(code, fmt, ap);
	va_end(ap);
	return code;
}

int pex_error_wrap(int code, const char *fmt, ...)
{
	char prefix[PEX_ERROR_MAX];
	char old[PEX_ERROR_MAX];
	va_list ap;

	size_t n;

	memcpy(old, last_msg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	/* prefix, then ": ", then as much of the old message as fits */
	n = strlen(prefix);
	if (n > sizeof(last_msg) - 3)
		n = sizeof(last_msg) - 3;
	memcpy(last_msg, prefix, n);
	memcpy(last_msg + n, ": ", 2);
	n += 2;
	memcpy(last_msg + n, old, sizeof(last_msg) - n - 1);
	last_msg[sizeof(last_msg) - 1] = '\0';
	pex_utf8_mend(last_msg);
	return code;
}

const char *pex_error_last(void)
{
	return last_msg;
}

void pex_error_clear(void)
{
	last_msg[0] = '\0';
}
