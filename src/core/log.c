/* Diagnostics on stderr; see log.h. */
#include "core/log.h"

#include <stdio.h>

#include "portex/collector.h"

static int threshold = PEX_LOG_WARN;

void pex_log_set_level(int level)
{
	threshold = level;
}

int pex_log_level(void)
{
	return threshold;
}

void pex_logv(int level, const char *tag, const char *fmt, va_list ap)
{
	static const char *const names[] = { "error", "warning", "info",
					     "debug" };
	char line[1024];

	if (level > threshold)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (tag)
		fprintf(stderr, "portex: %s: source %s: %s\n",
			names[level & 3], tag, line);
	else
		fprintf(stderr, "portex: %s: %s\n", names[level & 3], line);
}

void pex_log(int level, const char *tag, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pex_logv(level, tag, fmt, ap);
	va_end(ap);
}
