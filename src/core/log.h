/*
 * Diagnostics on stderr, tagged with the source they concern. The level
 * threshold is process-wide (set once by the command line front end).
 */
#ifndef PEX_CORE_LOG_H
#define PEX_CORE_LOG_H

#include <stdarg.h>

void pex_log_set_level(int level);
int pex_log_level(void);
void pex_logv(int level, const char *tag, const char *fmt, va_list ap);
void pex_log(int level, const char *tag, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
