/*
 * SQLite driver of the sql collector (see sql_driver.h).
 *
 * The database file is opened read-only and never created; the query is
 * prepared once at open and stepped row by row at each run, so a result is
 * never held in memory. The handle owns the connection and the statement;
 * close() releases both.
 */
#include "collectors/sql/sql_driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "portex/error.h"

struct pex_sql_stmt {
	sqlite3 *db;
	sqlite3_stmt *stmt;
	char *path; /* for messages */
	long long timeout_ms;
	size_t ncols;
	struct pex_sql_value *vals; /* ncols, reused for every row */
};

static int is_busy(int rc)
{
	return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

/* One message for every way SQLite can say "someone else holds a lock":
 * the person running the export can do nothing but wait and retry. */
static int locked_error(const struct pex_sql_stmt *st)
{
	return pex_error_set(PEX_EIO,
			     "SQLite database %s is locked by another "
			     "connection (waited %lld ms); retry later",
			     st->path, st->timeout_ms);
}

static int sqlite_error(const struct pex_sql_stmt *st, int rc,
			const char *what)
{
	if (is_busy(rc))
		return locked_error(st);
	if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT)
		return pex_error_set(PEX_EINVALID,
				     "%s is not a usable SQLite database: %s",
				     st->path, sqlite3_errmsg(st->db));
	return pex_error_set(PEX_ERROR, "SQLite %s: %s", what,
			     sqlite3_errmsg(st->db));
}

static int only_space(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' &&
		    *s != '\f' && *s != '\v')
			return 0;
	return 1;
}

static void sq_close(struct pex_sql_stmt *st)
{
	if (!st)
		return;
	sqlite3_finalize(st->stmt);
	sqlite3_close_v2(st->db);
	free(st->vals);
	free(st->path);
	free(st);
}

/* Reject what the collector must not run: several statements (only the
 * first would run, the rest silently ignored) and anything that writes. */
static int check_statement(struct pex_sql_stmt *st, const char *tail)
{
	sqlite3_stmt *next = NULL;
	int rc;

	if (tail && !only_space(tail)) {
		/* A tail of comments prepares to no statement at all. */
		rc = sqlite3_prepare_v2(st->db, tail, -1, &next, NULL);
		sqlite3_finalize(next);
		if (rc != SQLITE_OK)
			return sqlite_error(st, rc, "cannot prepare query");
		if (next)
			return pex_error_set(PEX_EINVALID,
					     "query holds more than one "
					     "statement; give one SELECT");
	}
	if (!sqlite3_stmt_readonly(st->stmt))
		return pex_error_set(PEX_EINVALID,
				     "query must only read (a SELECT)");
	if (sqlite3_column_count(st->stmt) <= 0)
		return pex_error_set(PEX_EINVALID,
				     "query returns no columns");
	return 0;
}

static int sq_open(struct pex_source *src, const char *database,
		   const char *query, long long timeout_ms,
		   struct pex_sql_stmt **out)
{
	struct pex_sql_stmt *st = NULL;
	struct stat sb;
	const char *tail = NULL;
	size_t plen;
	int rc;
	int ret = 0;

	(void)src;
	*out = NULL;
	if (stat(database, &sb) != 0) {
		if (errno == ENOENT)
			return pex_error_set(PEX_ENOTFOUND,
					     "SQLite database %s does not "
					     "exist",
					     database);
		return pex_error_set(PEX_EIO, "cannot open %s: %s", database,
				     strerror(errno));
	}
	if (!S_ISREG(sb.st_mode))
		return pex_error_set(PEX_EINVALID,
				     "SQLite database %s is not a regular "
				     "file",
				     database);

	st = calloc(1, sizeof(*st));
	if (!st)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	st->timeout_ms = timeout_ms;
	/* Debian's SQLite is built with URI filenames on, so a plain path
	 * that happens to start with "file:" would be read as a URI (and its
	 * query string as options). "./" keeps it a plain path. */
	plen = strlen(database) + 3;
	st->path = malloc(plen);
	if (!st->path) {
		ret = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	snprintf(st->path, plen, "%s%s",
		 strncmp(database, "file:", 5) == 0 ? "./" : "", database);

	rc = sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		ret = pex_error_set(PEX_EIO, "cannot open SQLite database "
				    "%s: %s", st->path,
				    st->db ? sqlite3_errmsg(st->db)
					   : "out of memory");
		goto cleanup;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, timeout_ms > 0x7fffffff
					     ? 0x7fffffff
					     : (int)timeout_ms);
	/* The file may come from anywhere: do not let functions named in its
	 * schema (views, triggers) run with the rights of ours. */
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);

	rc = sqlite3_prepare_v2(st->db, query, -1, &st->stmt, &tail);
	if (rc != SQLITE_OK) {
		ret = sqlite_error(st, rc, "cannot prepare query");
		goto cleanup;
	}
	if (!st->stmt) {
		ret = pex_error_set(PEX_EINVALID, "query is empty");
		goto cleanup;
	}
	ret = check_statement(st, tail);
	if (ret)
		goto cleanup;
	st->ncols = (size_t)sqlite3_column_count(st->stmt);
	st->vals = calloc(st->ncols, sizeof(*st->vals));
	if (!st->vals) {
		ret = pex_error_set(PEX_ENOMEM, "out of memory");
		goto cleanup;
	}
	*out = st;
	st = NULL;
cleanup:
	sq_close(st);
	return ret;
}

static size_t sq_param_count(const struct pex_sql_stmt *st)
{
	return (size_t)sqlite3_bind_parameter_count(st->stmt);
}

static const char *sq_param_name(const struct pex_sql_stmt *st, size_t i)
{
	/* SQLite numbers parameters from 1; anonymous "?" has no name. */
	return sqlite3_bind_parameter_name(st->stmt, (int)i + 1);
}

static size_t sq_column_count(const struct pex_sql_stmt *st)
{
	return st->ncols;
}

static const char *sq_column_name(const struct pex_sql_stmt *st, size_t i)
{
	return sqlite3_column_name(st->stmt, (int)i);
}

/* Fill st->vals from the current row. The type is read before any
 * conversion so a BLOB stays raw bytes and numbers become SQLite's own
 * text rendering of them. */
static int fetch_row(struct pex_sql_stmt *st)
{
	for (size_t i = 0; i < st->ncols; i++) {
		struct pex_sql_value *v = &st->vals[i];
		int col = (int)i;
		int type = sqlite3_column_type(st->stmt, col);

		if (type == SQLITE_NULL) {
			v->type = PEX_SQL_NULL;
			v->data = NULL;
			v->len = 0;
			continue;
		}
		if (type == SQLITE_BLOB) {
			v->type = PEX_SQL_BLOB;
			v->data = sqlite3_column_blob(st->stmt, col);
		} else {
			v->type = PEX_SQL_TEXT;
			v->data = (const char *)sqlite3_column_text(st->stmt,
								    col);
		}
		v->len = (size_t)sqlite3_column_bytes(st->stmt, col);
		if (!v->data && v->len == 0)
			v->data = ""; /* an empty BLOB comes back as NULL */
		if (!v->data)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		if (v->len > PEX_SQL_CELL_MAX)
			return pex_error_set(PEX_ELIMIT,
					     "column %s holds %zu bytes, more "
					     "than the %zu allowed per cell",
					     sqlite3_column_name(st->stmt,
								 col),
					     v->len, PEX_SQL_CELL_MAX);
	}
	return 0;
}

static int sq_run(struct pex_sql_stmt *st, const char *const *params,
		  pex_sql_row_fn fn, void *data)
{
	int n = sqlite3_bind_parameter_count(st->stmt);
	int rc;
	int ret = 0;

	sqlite3_reset(st->stmt);
	sqlite3_clear_bindings(st->stmt);
	for (int i = 0; i < n; i++) {
		if (params[i])
			rc = sqlite3_bind_text(st->stmt, i + 1, params[i], -1,
					       SQLITE_STATIC);
		else
			rc = sqlite3_bind_null(st->stmt, i + 1);
		if (rc != SQLITE_OK) {
			ret = sqlite_error(st, rc, "cannot bind parameter");
			goto cleanup;
		}
	}
	for (;;) {
		rc = sqlite3_step(st->stmt);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			ret = sqlite_error(st, rc, "query failed");
			goto cleanup;
		}
		ret = fetch_row(st);
		if (ret)
			goto cleanup;
		ret = fn(data, st->vals);
		if (ret)
			goto cleanup;
	}
cleanup:
	/* Reset ends the read transaction: no lock is kept between runs. */
	sqlite3_reset(st->stmt);
	sqlite3_clear_bindings(st->stmt);
	return ret;
}

const struct pex_sql_driver pex_sql_driver_sqlite = {
	.name = "sqlite",
	.open = sq_open,
	.param_count = sq_param_count,
	.param_name = sq_param_name,
	.column_count = sq_column_count,
	.column_name = sq_column_name,
	.run = sq_run,
	.close = sq_close,
};
