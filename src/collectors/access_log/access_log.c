/* Placeholder descriptor for the access_log collector: the build
 * registers every folder under src/collectors/, and the line parser in
 * logformat.c lives here before the collector glue does. Replaced when
 * the collector itself is written. */
#include "portex/collector.h"
#include "portex/error.h"

static const struct pex_config_map access_log_config[] = {
	{.name = NULL},
};

static int access_log_init(struct pex_source *src, void *ctx)
{
	return pex_error_set(PEX_EUSAGE,
			     "access_log collector: not available in this "
			     "build yet");
}

static int access_log_collect(struct pex_source *src, void *ctx,
			      const struct pex_identity_set *ids,
			      pex_emit_fn emit, void *emit_data)
{
	return pex_error_set(PEX_EUSAGE,
			     "access_log collector: not available in this "
			     "build yet");
}

static void access_log_fini(struct pex_source *src, void *ctx)
{
}

const struct pex_collector pex_collector_access_log = {
	.name = "access_log",
	.description = "web server access logs (Apache, nginx, Traefik)",
	.config_map = access_log_config,
	.ctx_size = 0,
	.init = access_log_init,
	.collect = access_log_collect,
	.fini = access_log_fini,
};
