/*
 * PostgreSQL driver of the sql collector (see sql_driver.h), on libpq.
 *
 * The query's :name parameters are rewritten to $1..$n (outside string
 * literals, quoted identifiers, comments and dollar quotes; "::" casts are
 * left alone), prepared once as a named statement, and run with
 * PQsendQueryPrepared in single-row mode so rows arrive one at a time and
 * no result set is ever held. The session is read-only, has the
 * statement_timeout the source asks for, and speaks UTF-8. TLS follows the
 * DSN's own sslmode.
 *
 * Ownership: the handle owns the connection, the rewritten SQL, the
 * parameter names, the described columns and the bytea buffers; close()
 * releases all of them.
 */
#include "collectors/sql/sql_driver.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/dynlib.h"
#include "portex/error.h"

#define PG_STMT_NAME "pex_sql"
#define PG_BYTEA_OID 17
#define PG_MAX_PARAMS 256 /* distinct :name parameters in one query */
#define PG_SQLSTATE_CANCELED "57014"

/* libpq is loaded by the first PostgreSQL source, not at start-up (see
 * core/dynlib.h); every call below goes through this table. */
#define PQ_FUNCS(X) \
	X(PQcancel) \
	X(PQclear) \
	X(PQconnectdb) \
	X(PQdescribePrepared) \
	X(PQerrorMessage) \
	X(PQexecParams) \
	X(PQfinish) \
	X(PQfname) \
	X(PQfreeCancel) \
	X(PQftype) \
	X(PQgetCancel) \
	X(PQgetResult) \
	X(PQgetisnull) \
	X(PQgetlength) \
	X(PQgetvalue) \
	X(PQnfields) \
	X(PQparameterStatus) \
	X(PQprepare) \
	X(PQreset) \
	X(PQresultErrorField) \
	X(PQresultErrorMessage) \
	X(PQresultStatus) \
	X(PQsendQueryPrepared) \
	X(PQsetClientEncoding) \
	X(PQsetSingleRowMode) \
	X(PQstatus)

static struct {
	PQ_FUNCS(PEX_DYNLIB_MEMBER)
} pq;

static struct pex_dynlib pq_lib = {
	.soname = PEX_LIBPQ_SONAME,
	.what = "the PostgreSQL client library",
	.package = "libpq5",
};
static pthread_once_t pq_once = PTHREAD_ONCE_INIT;

void pex_sql_pg_library(const char *soname)
{
	pq_lib.soname = soname;
}

static void pq_load(void)
{
	if (pex_dynlib_open(&pq_lib))
		return;
#define X(f) PEX_DYNLIB_LOAD(&pq_lib, pq, f)
	PQ_FUNCS(X)
#undef X
}

struct pex_sql_stmt {
	struct pex_source *src; /* for log lines */
	PGconn *conn;
	char *sql; /* rewritten query, kept to prepare again after a reset */
	size_t nparams;
	char **params; /* ":name" per $n */
	PGresult *desc; /* column names and types live here */
	size_t ncols;
	int *is_bytea;
	struct pex_sql_value *vals;
	char **bin; /* decoded bytea per column */
	size_t *bincap;
	long long timeout_ms;
};

/* ---- :name -> $n ----------------------------------------------------- */

struct pg_out {
	char *p;
	size_t len, cap;
};

static int out_put(struct pg_out *o, const char *s, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		size_t cap = (o->len + n + 1) * 2;
		char *p = realloc(o->p, cap);

		if (!p)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
	return 0;
}

static int is_ident(char c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       (!first && c >= '0' && c <= '9') || (unsigned char)c >= 0x80;
}

/* Length of the literal, identifier, comment or dollar-quoted string
 * starting at s, or 0 when none starts there. Unterminated ones run to
 * the end: the server will report them. */
static size_t skip_quoted(const char *s)
{
	const char *p;

	if (s[0] == '\'' || s[0] == '"') {
		/* E'...' escapes are handled by the caller passing the 'E'
		 * through first; a backslash then escapes the next byte. */
		char q = s[0];

		for (p = s + 1; *p; p++) {
			if (*p == q && p[1] == q)
				p++;
			else if (*p == q)
				return (size_t)(p - s) + 1;
		}
		return (size_t)(p - s);
	}
	if (s[0] == '-' && s[1] == '-') {
		p = strchr(s, '\n');
		return p ? (size_t)(p - s) + 1 : strlen(s);
	}
	if (s[0] == '/' && s[1] == '*') {
		int depth = 1; /* PostgreSQL nests block comments */

		for (p = s + 2; *p && depth; p++) {
			if (p[0] == '/' && p[1] == '*') {
				depth++;
				p++;
			} else if (p[0] == '*' && p[1] == '/') {
				depth--;
				p++;
			}
		}
		return (size_t)(p - s);
	}
	if (s[0] == '$') {
		/* $tag$ ... $tag$ with tag empty or an identifier. */
		size_t t = 1;

		while (s[t] && is_ident(s[t], t == 1) && s[t] != '$')
			t++;
		if (s[t] != '$')
			return 0;
		t++;
		for (p = s + t; *p; p++)
			if (!strncmp(p, s, t))
				return (size_t)(p - s) + t;
		return (size_t)(p - s);
	}
	return 0;
}

/* E'...' string: backslash escapes, so '' and \' both stay inside. */
static size_t skip_escape_string(const char *s)
{
	const char *p;

	for (p = s + 2; *p; p++) {
		if (*p == '\\' && p[1])
			p++;
		else if (*p == '\'' && p[1] == '\'')
			p++;
		else if (*p == '\'')
			return (size_t)(p - s) + 1;
	}
	return (size_t)(p - s);
}

static int add_param(struct pex_sql_stmt *st, const char *name, size_t len,
		     size_t *index)
{
	char **n;

	for (size_t i = 0; i < st->nparams; i++)
		if (st->params[i] && strlen(st->params[i]) == len &&
		    !strncmp(st->params[i], name, len)) {
			*index = i;
			return 0;
		}
	if (st->nparams >= PG_MAX_PARAMS)
		return pex_error_set(PEX_ELIMIT,
				     "query has more than %d parameters",
				     PG_MAX_PARAMS);
	n = realloc(st->params, (st->nparams + 1) * sizeof(*n));
	if (!n)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	st->params = n;
	st->params[st->nparams] = name ? strndup(name, len) : NULL;
	if (name && !st->params[st->nparams])
		return pex_error_set(PEX_ENOMEM, "out of memory");
	*index = st->nparams++;
	return 0;
}

static int rewrite(struct pex_sql_stmt *st, const char *q)
{
	struct pg_out o = { 0 };
	const char *p = q;
	int ret = 0;

	while (*p && !ret) {
		size_t n = 0;

		if ((p[0] == 'E' || p[0] == 'e') && p[1] == '\'' &&
		    (p == q || !is_ident(p[-1], 0)))
			n = skip_escape_string(p);
		else if (p == q || !is_ident(p[-1], 0) || p[0] != '$')
			n = skip_quoted(p);
		if (n) {
			ret = out_put(&o, p, n);
			p += n;
		} else if (p[0] == ':' && p[1] == ':') {
			ret = out_put(&o, p, 2); /* a cast */
			p += 2;
		} else if (p[0] == ':' && is_ident(p[1], 1)) {
			char num[24];
			size_t len = 1, idx = 0;

			while (is_ident(p[len], 0))
				len++;
			ret = add_param(st, p, len, &idx);
			if (!ret) {
				snprintf(num, sizeof(num), "$%zu", idx + 1);
				ret = out_put(&o, num, strlen(num));
			}
			p += len;
		} else if (p[0] == '$' && p[1] >= '0' && p[1] <= '9' &&
			   (p == q || !is_ident(p[-1], 0))) {
			/* Positional parameters cannot say which identity
			 * they take. */
			ret = pex_error_set(PEX_EINVALID,
					    "query parameter $%c... is not "
					    "named with ':'; name each after "
					    "an identity type, e.g. :email",
					    p[1]);
		} else {
			ret = out_put(&o, p, 1);
			p++;
		}
	}
	if (!ret && !o.p)
		ret = out_put(&o, "", 0);
	if (ret) {
		free(o.p);
		return ret;
	}
	st->sql = o.p;
	return 0;
}

/* ---- connection ------------------------------------------------------ */

/* libpq messages end with a newline; drop it so ours stay one line. */
static const char *pg_msg(const char *m)
{
	static _Thread_local char buf[512];
	size_t n;

	snprintf(buf, sizeof(buf), "%s", m ? m : "");
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return buf;
}

static void pg_close(struct pex_sql_stmt *st)
{
	if (!st)
		return;
	if (st->desc)
		pq.PQclear(st->desc);
	if (st->conn)
		pq.PQfinish(st->conn);
	for (size_t i = 0; i < st->nparams; i++)
		free(st->params[i]);
	for (size_t i = 0; st->bin && i < st->ncols; i++)
		free(st->bin[i]);
	free(st->params);
	free(st->bin);
	free(st->bincap);
	free(st->is_bytea);
	free(st->vals);
	free(st->sql);
	free(st);
}

/* Session settings, bound as parameters like everything else. */
static int setup_session(struct pex_sql_stmt *st)
{
	char tmo[32];
	const char *vals[1] = { tmo };
	PGresult *r;
	int ret = 0;

	const char *enc = pq.PQparameterStatus(st->conn, "server_encoding");

	/* A SQL_ASCII database holds bytes in no known encoding: they come
	 * as they are and are cleaned like any other source's text. Any
	 * other encoding is converted to UTF-8 by the server. */
	if (enc && !strcmp(enc, "SQL_ASCII"))
		pex_source_log(st->src, PEX_LOG_DEBUG,
			       "database is SQL_ASCII: text taken as bytes");
	else if (pq.PQsetClientEncoding(st->conn, "UTF8") != 0)
		return pex_error_set(PEX_ERROR,
				     "PostgreSQL: cannot use UTF8: %s",
				     pg_msg(pq.PQerrorMessage(st->conn)));
	snprintf(tmo, sizeof(tmo), "%lld", st->timeout_ms);
	r = pq.PQexecParams(st->conn,
			 "SELECT set_config('statement_timeout', $1, false),"
			 " set_config('default_transaction_read_only', 'on',"
			 " false), set_config('bytea_output', 'hex', false)",
			 1, NULL, vals, NULL, NULL, 0);
	if (pq.PQresultStatus(r) != PGRES_TUPLES_OK)
		ret = pex_error_set(PEX_ERROR,
				    "PostgreSQL: cannot set up the session: "
				    "%s", pg_msg(pq.PQerrorMessage(st->conn)));
	pq.PQclear(r);
	return ret;
}

static int prepare(struct pex_sql_stmt *st)
{
	PGresult *r;
	int ret = 0;

	r = pq.PQprepare(st->conn, PG_STMT_NAME, st->sql, (int)st->nparams,
		      NULL);
	if (pq.PQresultStatus(r) != PGRES_COMMAND_OK) {
		const char *state = pq.PQresultErrorField(r, PG_DIAG_SQLSTATE);

		if (state && !strcmp(state, PG_SQLSTATE_CANCELED))
			ret = pex_error_set(PEX_EIO,
					    "PostgreSQL took longer than "
					    "timeout_ms (%lld ms) to prepare "
					    "the query (a table locked?); "
					    "retry later",
					    st->timeout_ms);
		else
			ret = pex_error_set(PEX_ERROR,
					    "PostgreSQL cannot prepare query: "
					    "%s",
					    pg_msg(pq.PQresultErrorMessage(r)));
	}
	pq.PQclear(r);
	return ret;
}

static int describe(struct pex_sql_stmt *st)
{
	st->desc = pq.PQdescribePrepared(st->conn, PG_STMT_NAME);
	if (pq.PQresultStatus(st->desc) != PGRES_COMMAND_OK)
		return pex_error_set(PEX_ERROR,
				     "PostgreSQL cannot describe query: %s",
				     pg_msg(pq.PQresultErrorMessage(st->desc)));
	if (pq.PQnfields(st->desc) <= 0)
		return pex_error_set(PEX_EINVALID,
				     "query returns no columns (give one "
				     "SELECT)");
	st->ncols = (size_t)pq.PQnfields(st->desc);
	st->is_bytea = calloc(st->ncols, sizeof(*st->is_bytea));
	st->vals = calloc(st->ncols, sizeof(*st->vals));
	st->bin = calloc(st->ncols, sizeof(*st->bin));
	st->bincap = calloc(st->ncols, sizeof(*st->bincap));
	if (!st->is_bytea || !st->vals || !st->bin || !st->bincap)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	for (size_t i = 0; i < st->ncols; i++)
		st->is_bytea[i] = pq.PQftype(st->desc, (int)i) == PG_BYTEA_OID;
	return 0;
}

static int pg_open(struct pex_source *src, const char *database,
		   const char *query, long long timeout_ms,
		   struct pex_sql_stmt **out)
{
	struct pex_sql_stmt *st;
	int ret;

	*out = NULL;
	pthread_once(&pq_once, pq_load);
	ret = pex_dynlib_result(&pq_lib);
	if (ret)
		return ret;
	st = calloc(1, sizeof(*st));
	if (!st)
		return pex_error_set(PEX_ENOMEM, "out of memory");
	st->src = src;
	st->timeout_ms = timeout_ms;
	ret = rewrite(st, query);
	if (ret)
		goto cleanup;
	/* The DSN may hold a password: it is never put in a message. */
	st->conn = pq.PQconnectdb(database);
	if (!st->conn || pq.PQstatus(st->conn) != CONNECTION_OK) {
		ret = pex_error_set(PEX_EIO,
				    "cannot connect to PostgreSQL: %s",
				    st->conn ? pg_msg(pq.PQerrorMessage(st->conn))
					     : "out of memory");
		goto cleanup;
	}
	ret = setup_session(st);
	if (!ret)
		ret = prepare(st);
	if (!ret)
		ret = describe(st);
	if (ret)
		goto cleanup;
	*out = st;
	st = NULL;
cleanup:
	pg_close(st);
	return ret;
}

static size_t pg_param_count(const struct pex_sql_stmt *st)
{
	return st->nparams;
}

static const char *pg_param_name(const struct pex_sql_stmt *st, size_t i)
{
	return st->params[i];
}

static size_t pg_column_count(const struct pex_sql_stmt *st)
{
	return st->ncols;
}

static const char *pg_column_name(const struct pex_sql_stmt *st, size_t i)
{
	return pq.PQfname(st->desc, (int)i);
}

/* ---- running --------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* bytea in hex output ("\x0aff..."), set up by setup_session(). */
static int decode_bytea(struct pex_sql_stmt *st, size_t col, const char *s,
			size_t len, struct pex_sql_value *v)
{
	size_t n;

	if (len < 2 || s[0] != '\\' || s[1] != 'x' || len % 2)
		return pex_error_set(PEX_EINVALID, "column %s: bytea value "
				     "not in hex form",
				     pq.PQfname(st->desc, (int)col));
	n = (len - 2) / 2;
	if (n + 1 > st->bincap[col]) {
		char *p = realloc(st->bin[col], n + 1);

		if (!p)
			return pex_error_set(PEX_ENOMEM, "out of memory");
		st->bin[col] = p;
		st->bincap[col] = n + 1;
	}
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 + 2 * i]), lo = hexval(s[3 + 2 * i]);

		if (hi < 0 || lo < 0)
			return pex_error_set(PEX_EINVALID,
					     "column %s: bad bytea hex",
					     pq.PQfname(st->desc, (int)col));
		st->bin[col][i] = (char)(hi << 4 | lo);
	}
	v->type = PEX_SQL_BLOB;
	v->data = st->bin[col];
	v->len = n;
	return 0;
}

static int fetch_row(struct pex_sql_stmt *st, const PGresult *r)
{
	for (size_t i = 0; i < st->ncols; i++) {
		struct pex_sql_value *v = &st->vals[i];
		int col = (int)i;
		const char *s;
		size_t len;

		if (pq.PQgetisnull(r, 0, col)) {
			v->type = PEX_SQL_NULL;
			v->data = NULL;
			v->len = 0;
			continue;
		}
		s = pq.PQgetvalue(r, 0, col);
		len = (size_t)pq.PQgetlength(r, 0, col);
		if (len > 2 * PEX_SQL_CELL_MAX + 2 ||
		    (!st->is_bytea[i] && len > PEX_SQL_CELL_MAX))
			return pex_error_set(PEX_ELIMIT,
					     "column %s holds more than the "
					     "%zu bytes allowed per cell",
					     pq.PQfname(r, col),
					     PEX_SQL_CELL_MAX);
		if (st->is_bytea[i]) {
			int ret = decode_bytea(st, i, s, len, v);

			if (ret)
				return ret;
			continue;
		}
		v->type = PEX_SQL_TEXT;
		v->data = s;
		v->len = len;
	}
	return 0;
}

/* Stop a query whose rows we no longer want, and consume what is left so
 * the connection can run the next one. */
static void abandon(struct pex_sql_stmt *st)
{
	PGcancel *c = pq.PQgetCancel(st->conn);
	char err[256];
	PGresult *r;

	if (c) {
		pq.PQcancel(c, err, sizeof(err));
		pq.PQfreeCancel(c);
	}
	while ((r = pq.PQgetResult(st->conn)))
		pq.PQclear(r);
}

static int result_error(struct pex_sql_stmt *st, const PGresult *r)
{
	const char *state = pq.PQresultErrorField(r, PG_DIAG_SQLSTATE);

	if (state && !strcmp(state, PG_SQLSTATE_CANCELED))
		return pex_error_set(PEX_EIO,
				     "PostgreSQL query took longer than "
				     "timeout_ms (%lld ms) and was cancelled; "
				     "retry later or raise timeout_ms",
				     st->timeout_ms);
	return pex_error_set(PEX_ERROR, "PostgreSQL query failed: %s",
			     pg_msg(pq.PQresultErrorMessage(r)));
}

/* A connection lost between two exports is made again; a failure then is
 * reported as the connection error it is. */
static int ensure_connected(struct pex_sql_stmt *st)
{
	if (pq.PQstatus(st->conn) == CONNECTION_OK)
		return 0;
	pq.PQreset(st->conn);
	if (pq.PQstatus(st->conn) != CONNECTION_OK)
		return pex_error_set(PEX_EIO,
				     "lost the PostgreSQL connection: %s",
				     pg_msg(pq.PQerrorMessage(st->conn)));
	if (setup_session(st) || prepare(st))
		return PEX_EIO;
	return 0;
}

/* One execution. *rows counts the rows handed on, so that a failure
 * before the first one can be retried on a new connection. */
static int run_once(struct pex_sql_stmt *st, const char *const *params,
		    pex_sql_row_fn fn, void *data, size_t *rows)
{
	PGresult *r;
	int ret = 0;

	if (!pq.PQsendQueryPrepared(st->conn, PG_STMT_NAME, (int)st->nparams,
				 params, NULL, NULL, 0))
		return pex_error_set(PEX_EIO, "PostgreSQL: cannot send query: "
				     "%s", pg_msg(pq.PQerrorMessage(st->conn)));
	if (!pq.PQsetSingleRowMode(st->conn)) {
		abandon(st);
		return pex_error_set(PEX_ERROR,
				     "PostgreSQL: cannot stream rows");
	}
	while ((r = pq.PQgetResult(st->conn))) {
		ExecStatusType s = pq.PQresultStatus(r);

		if (ret) {
			/* After an error: just consume. */
		} else if (s == PGRES_SINGLE_TUPLE) {
			ret = fetch_row(st, r);
			if (!ret) {
				(*rows)++;
				ret = fn(data, st->vals);
			}
			if (ret) {
				pq.PQclear(r);
				abandon(st);
				return ret;
			}
		} else if (s != PGRES_TUPLES_OK) {
			ret = result_error(st, r);
		}
		pq.PQclear(r);
	}
	return ret;
}

static int pg_run(struct pex_sql_stmt *st, const char *const *params,
		  pex_sql_row_fn fn, void *data)
{
	size_t rows = 0;
	int ret;

	ret = ensure_connected(st);
	if (ret)
		return ret;
	ret = run_once(st, params, fn, data, &rows);
	/* The server closed an idle connection (restart, idle timeout):
	 * nothing was handed on yet, so running again on a new connection
	 * neither loses nor repeats a row. */
	if (ret && rows == 0 && pq.PQstatus(st->conn) == CONNECTION_BAD) {
		ret = ensure_connected(st);
		if (!ret)
			ret = run_once(st, params, fn, data, &rows);
	}
	return ret;
}

const struct pex_sql_driver pex_sql_driver_pg = {
	.name = "postgresql",
	.open = pg_open,
	.param_count = pg_param_count,
	.param_name = pg_param_name,
	.column_count = pg_column_count,
	.column_name = pg_column_name,
	.run = pg_run,
	.close = pg_close,
};
