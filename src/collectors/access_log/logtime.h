/*
 * Time stamps as web servers write them in access logs.
 *
 * Three shapes are read: the common log format time
 * "10/Oct/2000:13:55:36 -0700" (Apache %t without its brackets, nginx
 * $time_local), ISO 8601 "2000-10-10T13:55:36.250+02:00" (nginx
 * $time_iso8601) and seconds since the epoch "971186136.250" (nginx
 * $msec). Each reader looks at bytes that are not NUL-terminated, never
 * reads past s + len, allocates nothing and returns how many bytes it
 * consumed (0 when the text is not a valid time of that shape), so the
 * caller can match what follows. The result is always UTC: the written
 * zone offset is applied and kept in tz_offset for whoever wants the
 * local time back. Nothing here depends on the locale or the TZ variable.
 */
#ifndef PEX_LOGTIME_H
#define PEX_LOGTIME_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct pex_logtime {
	time_t sec;        /* seconds since 1970-01-01T00:00:00Z */
	uint32_t usec;     /* fraction of the second, 0..999999 */
	int32_t tz_offset; /* written offset in seconds east of UTC */
};

/* Exactly 26 bytes "dd/Mon/yyyy:HH:MM:SS +hhmm"; month names in any
 * case. Returns 26 or 0. */
size_t pex_logtime_clf(const char *s, size_t len, struct pex_logtime *out);

/* "YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+hh:mm|+hhmm|+hh)"; a space may stand
 * for the T. The zone is required: a time without one is ambiguous.
 * Returns the bytes consumed or 0. */
size_t pex_logtime_iso8601(const char *s, size_t len,
			   struct pex_logtime *out);

/* "seconds[.fraction]", at most 12 digits of seconds and 9 of fraction.
 * Returns the bytes consumed or 0. */
size_t pex_logtime_epoch(const char *s, size_t len, struct pex_logtime *out);

/* Days from 1970-01-01 to the given proleptic Gregorian date; the caller
 * has checked 1 <= m <= 12 and 1 <= d <= days in that month. */
int64_t pex_logtime_days(int64_t y, int m, int d);

#endif
