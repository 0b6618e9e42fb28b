/*
 * The database side of the sql collector: one driver per engine.
 *
 * sql.c holds everything that does not depend on the database (options,
 * identities, deduplication, mapping, emitting); a driver only opens a
 * connection, prepares the configured query once, and runs it with the
 * parameters bound, handing each row to a callback as it arrives. A driver
 * never holds a result set in memory: rows are streamed one at a time.
 *
 * Ownership: open() returns a statement handle the caller frees with
 * close() (which accepts NULL). Names returned by param_name() and
 * column_name() are borrowed from the handle and live until close(). The
 * values handed to the row callback are borrowed and valid only during
 * that call.
 */
#ifndef PEX_SQL_DRIVER_H
#define PEX_SQL_DRIVER_H

#include <stddef.h>

#include "portex/collector.h"

/* Largest single cell (text or BLOB, before base64) a driver hands on; a
 * bigger one fails the source rather than being cut short. */
#define PEX_SQL_CELL_MAX ((size_t)16 * 1024 * 1024)

enum pex_sql_vtype {
	PEX_SQL_NULL = 0,
	PEX_SQL_TEXT, /* bytes as stored; numbers already rendered as text */
	PEX_SQL_BLOB, /* raw bytes, not text */
};

struct pex_sql_value {
	enum pex_sql_vtype type;
	const char *data; /* not NUL-terminated; NULL for PEX_SQL_NULL */
	size_t len;
};

/* Driver-specific prepared query on an open connection. */
struct pex_sql_stmt;

/* Called once per row with column_count() values. A non-zero return stops
 * the run; run() then returns that value. */
typedef int (*pex_sql_row_fn)(void *data, const struct pex_sql_value *vals);

struct pex_sql_driver {
	const char *name;
	/* Connect to database (a path already resolved, or a DSN), prepare
	 * query and leave it ready to run. timeout_ms: how long to wait for a
	 * lock (SQLite) or for a statement (PostgreSQL). */
	int (*open)(struct pex_source *src, const char *database,
		    const char *query, long long timeout_ms,
		    struct pex_sql_stmt **out);
	/* Distinct parameters of the query, each named with its sigil
	 * (":email"); NULL for an anonymous or positional one ("?"). */
	size_t (*param_count)(const struct pex_sql_stmt *st);
	const char *(*param_name)(const struct pex_sql_stmt *st, size_t i);
	size_t (*column_count)(const struct pex_sql_stmt *st);
	const char *(*column_name)(const struct pex_sql_stmt *st, size_t i);
	/* Run the query with params[i] bound to parameter i as text (NULL:
	 * SQL NULL; values are bound, never spliced into the SQL). */
	int (*run)(struct pex_sql_stmt *st, const char *const *params,
		   pex_sql_row_fn fn, void *data);
	void (*close)(struct pex_sql_stmt *st);
};

extern const struct pex_sql_driver pex_sql_driver_sqlite;
extern const struct pex_sql_driver pex_sql_driver_pg;

/* tests: load libpq by this name instead (before the first open) */
void pex_sql_pg_library(const char *soname);

#endif
