/*
 * Timestamps: parse what sources write, print RFC 3339 UTC.
 * All times are UTC seconds since the epoch (time_t); fractions are
 * dropped, which is the precision the bundle promises.
 */
#ifndef PEX_CORE_TIMEUTIL_H
#define PEX_CORE_TIMEUTIL_H

#include <stddef.h>
#include <time.h>

#define PEX_TIME_BUFSZ 21 /* "2026-11-24T10:00:00Z" + NUL */

/* RFC 3339 / ISO 8601 date-time ("2026-01-03T10:00:00Z",
 * "2026-01-03T10:00:00.123+01:00"), "YYYY-MM-DD HH:MM:SS[.fff]" (taken
 * as UTC, as SQLite's CURRENT_TIMESTAMP writes it) and a bare date
 * "YYYY-MM-DD" (midnight UTC). Returns 0 or PEX_EINVALID. */
int pex_time_parse(const char *s, size_t len, time_t *out);

/* ISO 8601 duration of the forms PnD, PTnHnMnS, PnDTnH...: seconds. */
int pex_duration_parse(const char *s, size_t len, long long *out);

/* Write t as "YYYY-MM-DDTHH:MM:SSZ" into buf (PEX_TIME_BUFSZ bytes). */
char *pex_time_format(time_t t, char buf[PEX_TIME_BUFSZ]);

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), no time zone
 * involved. */
long long pex_days_from_civil(long long y, unsigned m, unsigned d);

/* Seconds on the monotonic clock, for reporting how long work took. */
double pex_time_monotonic(void);

#endif
