/* store_pg.c - the PostgreSQL fota_store: open, a connection per thread
 * (store_pg_int.h), reconnects with back-off, prepared statements, the row
 * helpers every op uses (one row, all rows), transactions and the mapping
 * of SQLSTATEs to FOTA_E*. The schema is in store_pg_schema.c; the
 * operations, one file per group as for SQLite, are in store_pg_*.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "clock.h"
#include "fota_str.h"
#include "store_pg_int.h"
#include "xmalloc.h"

/* ---- connections -------------------------------------------------------- */

/* The generation payloads an op's triggers sent to its own connection
 * (fota_gen_notify's DEBUG1 "fota_gen PAYLOAD"): kept until the op ends,
 * past its commit, so no reader caches a row older than the write that
 * moved its generation. Beyond GEN_MINE_MAX bytes an op moves every slot. */
#define GEN_MINE_MAX 65536
#define GEN_PREFIX "fota_gen "

static void gen_mine_add(struct pg_conn *c, const char *payload)
{
    size_t n = strlen(payload);

    if (c->gen_all || c->gen_len + n + 2 > GEN_MINE_MAX) {
        c->gen_all = 1;
        return;
    }
    if (c->gen_cap < c->gen_len + n + 2) {
        c->gen_cap = c->gen_len + n + 2 > 2 * c->gen_cap ? c->gen_len + n + 2 : 2 * c->gen_cap;
        c->gen_mine = fota_xrealloc(c->gen_mine, c->gen_cap);
    }
    memcpy(c->gen_mine + c->gen_len, payload, n);
    c->gen_len += n;
    c->gen_mine[c->gen_len++] = ';';
    c->gen_mine[c->gen_len] = '\0';
}

/* libpq's notices: the triggers' generation payloads for this connection's
 * op, else logged (CREATE ... IF NOT EXISTS skipping, and the like). */
static void notice(void *arg, const PGresult *r)
{
    struct pg_conn *c = arg;
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    char line[256];

    if (msg && strncmp(msg, GEN_PREFIX, sizeof GEN_PREFIX - 1) == 0) {
        gen_mine_add(c, msg + sizeof GEN_PREFIX - 1);
        return;
    }
    fota_str_copy(line, sizeof line, msg ? msg : PQresultErrorMessage(r));
    line[strcspn(line, "\n")] = '\0';
    fota_store_logf(&c->q->base, FOTA_LOG_DEBUG, "postgresql notice=\"%s\"", line);
}

/* Every connection's session settings: no statement or lock wait holds a
 * thread for ever (lock_timeout is SQLite's busy_timeout), nor an idle
 * open transaction its locks. The generation triggers (store_pg_schema.c,
 * migrations 11 and 17) tell other instances on fota_gen at commit and the
 * writing connection itself by a DEBUG1 message (client_min_messages): the
 * op applies its own before it returns (apply_mine). A store connection
 * does not LISTEN: PostgreSQL wakes every listening backend of the
 * database at each notifying commit, whatever its channels. */
static const char SESSION[] = "SET statement_timeout = 10000;"
                              "SET lock_timeout = 5000;"
                              "SET idle_in_transaction_session_timeout = 30000;"
                              "SET client_min_messages = debug1";

/* Connects c->pg to the store's DSN; 0, or FOTA_EUNAVAIL with the reason
 * in err (when err is non-NULL). */
static int connect_conn(struct pg_conn *c, char *err, size_t errlen)
{
    /* Later keywords win: the DSN (expanded from "dbname") may set its own
     * timeout and name; the encoding is always UTF-8. */
    static const char *const keys[] = { "connect_timeout", "fallback_application_name",
                                        "dbname", "client_encoding", NULL };
    const char *vals[] = { "5", "fotad", c->q->dsn, "UTF8", NULL };
    PGresult *r;

    if (c->pg)
        PQfinish(c->pg);
    c->pg = PQconnectdbParams(keys, vals, 1);
    memset(c->prepared, 0, sizeof c->prepared);
    c->in_tx = 0;
    if (PQstatus(c->pg) != CONNECTION_OK)
        goto fail;
    PQsetNoticeReceiver(c->pg, notice, c);
    r = PQexec(c->pg, SESSION);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        PQclear(r);
        goto fail;
    }
    PQclear(r);
    c->broken = 0;
    c->backoff_ms = 0;
    __atomic_store_n(&c->be_pid, PQbackendPID(c->pg), __ATOMIC_RELEASE);
    return 0;
fail:
    __atomic_store_n(&c->be_pid, 0, __ATOMIC_RELEASE);
    if (err && errlen) {
        fota_str_copy(err, errlen, PQerrorMessage(c->pg));
        err[strcspn(err, "\n")] = '\0';
    }
    c->broken = 1;
    return FOTA_EUNAVAIL;
}

/* A lost connection is made again, at most once per back-off: 50 ms after
 * the first failure, doubling up to 1 s, so a database that is down costs
 * each op one failed attempt at most a second and no wait. */
static int revive(struct pg_conn *c)
{
    struct pg_store *q = c->q;
    int64_t now = fota_clock_mono_ms();
    char err[200] = "";
    unsigned held;

    if (now < c->retry_ms)
        return FOTA_EUNAVAIL;
    if (connect_conn(c, err, sizeof err) == 0) {
        fota_store_logf(&q->base, FOTA_LOG_INFO, "store reconnected backend=postgresql");
        return 0;
    }
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : 50;
    if (c->backoff_ms > 1000)
        c->backoff_ms = 1000;
    c->retry_ms = now + c->backoff_ms;
    pthread_mutex_lock(&q->lock);
    if (fota_store_ratelimit_pass(&q->down_log, &held))
        fota_store_logf(&q->base, FOTA_LOG_WARN,
                        "store unavailable backend=postgresql error=\"%s\" suppressed=%u", err,
                        held);
    pthread_mutex_unlock(&q->lock);
    return FOTA_EUNAVAIL;
}

/* Whether an idle connection still stands: reads what the server sent
 * meanwhile without waiting (libpq's socket is non-blocking), so a
 * server that restarted or a backend that was terminated shows up here,
 * before an op sends anything on it. Such a backend's last message
 * (57P01) comes before the end of its stream: PQconsumeInput reads the
 * message, and a peek finds the end behind it. */
static int alive(struct pg_conn *c)
{
    ssize_t k;
    char b;

    if (c->broken || !c->pg || PQconsumeInput(c->pg) != 1 || PQstatus(c->pg) != CONNECTION_OK)
        return 0;
    k = recv(PQsocket(c->pg), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return k > 0 || (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
}

/* The loop guard (store.h fota_store_set_loop_guard): an op called on an
 * event loop logs one ERROR line, at most once a second per op, and runs.
 * Refusing it instead would stop every caller not yet moved to the store
 * threads; the line is enough for the tests (they fail on an ERROR) and
 * tells an operator which op holds a loop. Off the loops it costs an
 * atomic load and the guard's thread-local read. */
static void loop_guard(struct pg_store *q, const char *op)
{
    int (*guard)(void) = __atomic_load_n(&q->base.loop_guard, __ATOMIC_ACQUIRE);
    unsigned held = 0;
    int loop, pass, i;

    if (!guard || (loop = guard()) < 0)
        return;
    pthread_mutex_lock(&q->lock);
    for (i = 0; i < FOTA_PG_GUARD_OPS - 1; i++) {
        if (!q->guard_log[i].op)
            q->guard_log[i].op = op;
        if (strcmp(q->guard_log[i].op, op) == 0)
            break;
    }
    pass = fota_store_ratelimit_pass(&q->guard_log[i].rl, &held);
    pthread_mutex_unlock(&q->lock);
    if (pass)
        fota_store_logf(&q->base, FOTA_LOG_ERROR,
                        "store op called on an event loop op=%s loop=%d suppressed=%u", op, loop,
                        held);
}

/* The calling thread's connection, made or taken from the spare pool. */
static int thread_conn(struct pg_store *q, struct pg_conn **out)
{
    struct pg_conn *c;

    pthread_mutex_lock(&q->lock);
    c = q->spare;
    if (c) {
        q->spare = c->next_spare;
        q->nspare--;
    } else if (q->nconn >= FOTA_PG_CONN_MAX) {
        pthread_mutex_unlock(&q->lock);
        fota_store_logf(&q->base, FOTA_LOG_ERROR, "store has no connection left max=%d",
                        FOTA_PG_CONN_MAX);
        return FOTA_EBUSY;
    } else {
        c = fota_xcalloc(1, sizeof *c);
        c->q = q;
        c->broken = 1;   /* connects below, through the back-off */
        c->next = q->all;
        q->all = c;
        q->nconn++;
    }
    pthread_mutex_unlock(&q->lock);
    c->next_spare = NULL;
    pthread_setspecific(q->key, c);
    *out = c;
    return 0;
}

/* Gives a thread's connection back: to the spare pool while it has room
 * and the connection stands, else closed. */
static void conn_release(struct pg_conn *c)
{
    struct pg_store *q = c->q;

    if (c->in_tx)
        fota_store_pg_rollback(c);
    pthread_mutex_lock(&q->lock);
    if (q->nspare < FOTA_PG_SPARE_MAX && !c->broken) {
        c->next_spare = q->spare;
        q->spare = c;
        q->nspare++;
        c = NULL;
    } else {
        for (struct pg_conn **p = &q->all; *p; p = &(*p)->next) {
            if (*p == c) {
                *p = c->next;
                break;
            }
        }
        q->nconn--;
    }
    pthread_mutex_unlock(&q->lock);
    if (c) {
        PQfinish(c->pg);
        free(c->gen_mine);
        free(c);
    }
}

/* pthread key destructor: a thread that used the store ends. */
static void thread_gone(void *v)
{
    conn_release(v);
}

void fota_store_pg_thread_done(struct fota_store *s)
{
    struct pg_store *q = fota_store_pg_cast(s);
    struct pg_conn *c = pthread_getspecific(q->key);

    if (!c)
        return;
    pthread_setspecific(q->key, NULL);
    conn_release(c);
}

int fota_store_pg_enter(struct fota_store *s, const char *op, struct pg_conn **out)
{
    struct pg_store *q = fota_store_pg_cast(s);
    struct pg_conn *c = pthread_getspecific(q->key);
    int rc;

    *out = NULL;
    loop_guard(q, op);
    if (!c && (rc = thread_conn(q, &c)) != 0)
        return rc;
    if (!alive(c)) {
        c->broken = 1;
        if ((rc = revive(c)) != 0)
            return rc;
    }
    c->op = op;
    c->hot = 0;
    c->changes = 0;
    c->notified = 0;
    *out = c;
    return 0;
}

int fota_store_pg_own_backend(struct fota_store *s, int pid)
{
    struct pg_store *q = fota_store_pg_cast(s);
    int own = 0;

    if (pid <= 0)
        return 0;
    pthread_mutex_lock(&q->lock);
    for (struct pg_conn *c = q->all; c && !own; c = c->next)
        own = __atomic_load_n(&c->be_pid, __ATOMIC_ACQUIRE) == pid;
    pthread_mutex_unlock(&q->lock);
    return own;
}

/* Moves every slot of one generation array. */
static void touch_all(uint64_t *slots)
{
    for (size_t i = 0; i < FOTA_STORE_DEVICE_SLOTS; i++)
        __atomic_add_fetch(&slots[i], 1, __ATOMIC_RELEASE);
}

void fota_store_pg_gen_apply(struct fota_store *s, const char *payload)
{
    const char *p = payload;
    char kind = p[0];

    if (kind == '*' && p[1] == '\0') {
        __atomic_add_fetch(&s->generation, 1, __ATOMIC_RELEASE);
        touch_all(s->device_generation);
        touch_all(s->arduino_generation);
        return;
    }
    if (kind == 'c' && p[1] == '\0') {
        __atomic_add_fetch(&s->generation, 1, __ATOMIC_RELEASE);
        return;
    }
    if (kind != 'd' && kind != 'a')
        return;
    if (p[1] == '*' && p[2] == '\0') {
        touch_all(kind == 'd' ? s->device_generation : s->arduino_generation);
        return;
    }
    if (p[1] != ':')
        return;
    p += 2;
    /* Bounded by the payload: each round consumes one id and its comma. */
    while (*p) {
        char *end;
        long long id = strtoll(p, &end, 10);
        if (end == p)
            return;   /* not ours: nothing more is read from it */
        if (kind == 'd')
            fota_store_device_touch(s, id);
        else
            fota_store_arduino_touch(s, id);
        if (*end == ',')
            p = end + 1;
        else if (*end == '\0')
            p = end;
        else
            return;
    }
}

/* Applies the generation payloads of this connection's op (gen_mine_add),
 * after its commit or rollback (a rolled-back write moves generations it
 * need not: a cache reads the row again). Its own catalog notification is
 * left to fota_store_pg_leave, which counts every catalog change, told to
 * the others or not. */
static void apply_mine(struct pg_conn *c)
{
    if (c->gen_all) {
        fota_store_pg_gen_apply(&c->q->base, "d*");
        fota_store_pg_gen_apply(&c->q->base, "a*");
    }
    for (char *p = c->gen_mine, *end; !c->gen_all && p && p < c->gen_mine + c->gen_len;
         p = end + 1) {
        end = strchr(p, ';');
        if (!end)
            break;
        *end = '\0';
        fota_store_pg_gen_apply(&c->q->base, p);
    }
    c->gen_len = 0;
    c->gen_all = 0;
}

/* fota_gen's "c" for other instances' caches. Sent before COMMIT when the op
 * commits through fota_store_pg_commit, so the doorbell and the rows commit
 * together; alone afterwards for a write that ran outside a transaction. */
static const char CATALOG_NOTIFY[] = "SELECT pg_notify('fota_gen', 'c')";

int fota_store_pg_leave(struct pg_conn *c, int rc)
{
    if (c->in_tx)
        fota_store_pg_rollback(c);
    if (c->changes && !c->hot && !c->notified && !c->broken)
        PQclear(PQexec(c->pg, CATALOG_NOTIFY));   /* a lost doorbell costs staleness only */
    apply_mine(c);
    /* Any row changed by this op (other than the hot ledgers) starts a new
     * generation: caches of keys, devices and releases drop their entries. */
    if (c->changes && !c->hot)
        __atomic_add_fetch(&c->q->base.generation, 1, __ATOMIC_RELEASE);
    c->op = NULL;
    return rc == FOTA_EAGAIN ? FOTA_EBUSY : rc;
}

/* ---- errors -------------------------------------------------------------- */

static void log_result(struct pg_conn *c, int level, const char *kind, const PGresult *r,
                       const char *what)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    char msg[300];

    fota_str_copy(msg, sizeof msg, r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg));
    msg[strcspn(msg, "\n")] = '\0';
    fota_store_logf(&c->q->base, level, "%s op=%s sqlstate=%s error=\"%s\"", kind,
                    what ? what : "?", state ? state : "-", msg);
}

/* The connection is gone (or the server will not write): it is made again
 * at the next op. */
static int lost(struct pg_conn *c, const PGresult *r, const char *what)
{
    struct pg_store *q = c->q;
    unsigned held;
    int pass;

    c->broken = 1;
    c->in_tx = 0;
    __atomic_store_n(&c->be_pid, 0, __ATOMIC_RELEASE);
    pthread_mutex_lock(&q->lock);
    pass = fota_store_ratelimit_pass(&q->down_log, &held);
    pthread_mutex_unlock(&q->lock);
    if (pass)
        log_result(c, FOTA_LOG_WARN, "store unavailable", r, what);
    return FOTA_EUNAVAIL;
}

int fota_store_pg_err(struct pg_conn *c, const PGresult *r, const char *what)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    unsigned held;
    int pass;

    if (!st || strlen(st) != 5 || PQstatus(c->pg) != CONNECTION_OK)
        return lost(c, r, what);
    if (strcmp(st, "23505") == 0)
        return FOTA_EEXIST;
    if (strcmp(st, "23503") == 0)
        return FOTA_ENOENT;
    if (strncmp(st, "23", 2) == 0 || strncmp(st, "22", 2) == 0) {
        log_result(c, FOTA_LOG_WARN, "constraint", r, what);
        return FOTA_EINVAL;
    }
    if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0)
        return FOTA_EAGAIN;
    if (strcmp(st, "55P03") == 0 || strcmp(st, "57014") == 0) {
        log_result(c, FOTA_LOG_WARN, "database busy", r, what);
        return FOTA_EBUSY;
    }
    if (strcmp(st, "53100") == 0) {
        pthread_mutex_lock(&c->q->lock);
        pass = fota_store_ratelimit_pass(&c->q->full_log, &held);
        pthread_mutex_unlock(&c->q->lock);
        if (pass)
            log_result(c, FOTA_LOG_ERROR, "no space left on device", r, what);
        return FOTA_ENOSPC;
    }
    if (strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 || strcmp(st, "57P02") == 0 ||
        strcmp(st, "57P03") == 0 || strcmp(st, "25006") == 0)
        return lost(c, r, what);
    log_result(c, FOTA_LOG_ERROR, "postgresql error", r, what);
    return FOTA_EIO;
}

/* ---- parameters ---------------------------------------------------------- */

static int param_slot(struct pg_params *p, Oid type)
{
    int i = p->n++;

    if (i >= FOTA_PG_PARAMS_MAX)
        abort();   /* a statement with more parameters than the array: a bug, not input */
    p->types[i] = type;
    p->values[i] = NULL;
    p->lengths[i] = 0;
    p->formats[i] = 0;
    return i;
}

void fota_store_pg_param_int(struct pg_params *p, int64_t v)
{
    int i = param_slot(p, FOTA_PG_INT8);

    snprintf(p->num[i], sizeof p->num[i], "%lld", (long long)v);
    p->values[i] = p->num[i];
}

void fota_store_pg_param_id(struct pg_params *p, int64_t v)
{
    if (v)
        fota_store_pg_param_int(p, v);
    else
        fota_store_pg_param_null(p, FOTA_PG_INT8);
}

void fota_store_pg_param_text(struct pg_params *p, const char *s, size_t n)
{
    int i = param_slot(p, FOTA_PG_TEXT);

    /* Binary form: the bytes and their length, so a fixed-size field
     * needs no NUL. PostgreSQL checks the encoding (22021: EINVAL). */
    p->values[i] = s ? s : "";
    p->lengths[i] = s ? (int)strnlen(s, n) : 0;
    p->formats[i] = 1;
}

void fota_store_pg_param_double(struct pg_params *p, double v)
{
    int i = param_slot(p, FOTA_PG_FLOAT8);

    snprintf(p->num[i], sizeof p->num[i], "%.17g", v);
    p->values[i] = p->num[i];
}

void fota_store_pg_param_null(struct pg_params *p, Oid type)
{
    param_slot(p, type);
}

/* ---- statements ---------------------------------------------------------- */

/* Rows an INSERT, UPDATE, DELETE or MERGE changed (a SELECT's count aside). */
static int64_t changed(const PGresult *r)
{
    const char *tag = PQcmdStatus((PGresult *)r);
    const char *n = PQcmdTuples((PGresult *)r);

    if (!n[0] || (strncmp(tag, "INSERT", 6) != 0 && strncmp(tag, "UPDATE", 6) != 0 &&
                  strncmp(tag, "DELETE", 6) != 0 && strncmp(tag, "MERGE", 5) != 0))
        return 0;
    return strtoll(n, NULL, 10);
}

static int prepare(struct pg_conn *c, int id, const char *name, const char *sql,
                   const struct pg_params *p, const char *what)
{
    PGresult *r;
    int rc = 0;

    if (c->prepared[id / 8] & (1u << (id % 8)))
        return 0;
    r = PQprepare(c->pg, name, sql, p ? p->n : 0, p ? p->types : NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = fota_store_pg_err(c, r, what);
    else
        c->prepared[id / 8] |= (unsigned char)(1u << (id % 8));
    PQclear(r);
    return rc;
}

PGresult *fota_store_pg_run(struct pg_conn *c, int id, const char *sql, const struct pg_params *p,
                            const char *what, int *rc)
{
    static const struct pg_params none;
    char name[16];
    PGresult *r;
    ExecStatusType st;

    if (!p)
        p = &none;
    c->statements++;
    if (id >= 0) {
        snprintf(name, sizeof name, "s%d", id);
        if ((*rc = prepare(c, id, name, sql, p, what)) != 0)
            return NULL;
        r = PQexecPrepared(c->pg, name, p->n, p->values, p->lengths, p->formats, 0);
    } else {
        r = PQexecParams(c->pg, sql, p->n, p->types, p->values, p->lengths, p->formats, 0);
    }
    st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        *rc = fota_store_pg_err(c, r, what);
        PQclear(r);
        return NULL;
    }
    c->changes += changed(r);
    *rc = 0;
    return r;
}

int fota_store_pg_exec(struct pg_conn *c, int id, const char *sql, const struct pg_params *p,
                       const char *what, int64_t *first)
{
    int rc;
    PGresult *r = fota_store_pg_run(c, id, sql, p, what, &rc);

    if (!r)
        return rc;
    if (first && PQntuples(r) > 0 && PQnfields(r) > 0)
        *first = fota_store_pg_col_int(r, 0, 0);
    PQclear(r);
    return 0;
}

int fota_store_pg_one(struct pg_conn *c, int id, const char *sql, const struct pg_params *p,
                      fota_store_pg_reader read, void *out, const char *what)
{
    int rc;
    PGresult *r = fota_store_pg_run(c, id, sql, p, what, &rc);

    if (!r)
        return rc;
    if (PQntuples(r) > 0)
        read(r, 0, out);
    else
        rc = FOTA_ENOENT;
    PQclear(r);
    return rc;
}

int fota_store_pg_collect(struct pg_conn *c, int id, const char *sql, const struct pg_params *p,
                          fota_store_pg_reader read, size_t elem, void **out, size_t *n,
                          const char *what)
{
    int rc;
    PGresult *r = fota_store_pg_run(c, id, sql, p, what, &rc);
    size_t rows;
    char *arr;

    *out = NULL;
    *n = 0;
    if (!r)
        return rc;
    rows = (size_t)PQntuples(r);
    arr = fota_xcalloc(rows ? rows : 1, elem);
    for (size_t i = 0; i < rows; i++)
        read(r, (int)i, arr + i * elem);
    PQclear(r);
    *out = arr;
    *n = rows;
    return 0;
}

/* ---- transactions -------------------------------------------------------- */

/* A statement without parameters or rows (BEGIN, COMMIT, SET). */
static int simple(struct pg_conn *c, const char *sql, const char *what, PGresult **keep)
{
    PGresult *r = PQexec(c->pg, sql);
    int rc = 0;

    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = fota_store_pg_err(c, r, what);
    if (keep && rc == 0)
        *keep = r;
    else
        PQclear(r);
    return rc;
}

/* The fence of fota_store_fence: lease rollouts held by this instance at
 * epoch and not expired, locked FOR KEY SHARE until the transaction ends
 * (a takeover locks the row FOR UPDATE and so waits for it; the holder's
 * renewal, a no-key update, does not: cluster.c). 0, FOTA_EPERM (the
 * transaction rolled back) or the statement's error. */
static int fence(struct pg_conn *c, int64_t epoch)
{
    struct pg_params p = { 0 };
    PGresult *r;
    int rc = 0;

    fota_store_pg_param_int(&p, c->q->base.instance_id);
    fota_store_pg_param_int(&p, epoch);
    r = fota_store_pg_run(c, PQ_LEASE_FENCE,
                          "SELECT 1 FROM leases WHERE name = 'rollouts' AND holder = $1"
                          " AND epoch = $2 AND expires > clock_timestamp() FOR KEY SHARE",
                          &p, "lease fence", &rc);
    if (r && PQntuples(r) == 0)
        rc = FOTA_EPERM;
    PQclear(r);
    if (rc != 0)
        fota_store_pg_rollback(c);
    return rc;
}

int fota_store_pg_begin(struct pg_conn *c, int durable)
{
    int rc = simple(c, durable ? "BEGIN" : "BEGIN; SET LOCAL synchronous_commit = off", "begin",
                    NULL);
    int64_t epoch = fota_store_fence_epoch();

    c->in_tx = rc == 0;
    if (rc == 0 && epoch != 0 && c->q->base.instance_id != 0)
        rc = fence(c, epoch);
    return rc;
}

int fota_store_pg_commit(struct pg_conn *c)
{
    PGresult *r = NULL;
    /* A catalog change tells the other instances in the same round trip
     * (PQexec runs both, the result is COMMIT's); an aborted transaction
     * refuses any statement, so it only commits (which rolls back). */
    int tell = c->changes && !c->hot && PQtransactionStatus(c->pg) == PQTRANS_INTRANS;
    int rc = simple(c, tell ? "SELECT pg_notify('fota_gen', 'c'); COMMIT" : "COMMIT", "commit", &r);

    if (tell && rc == 0)
        c->notified = 1;
    c->in_tx = 0;
    /* COMMIT of a transaction a failed statement aborted answers ROLLBACK. */
    if (rc == 0 && strcmp(PQcmdStatus(r), "COMMIT") != 0) {
        fota_store_logf(&c->q->base, FOTA_LOG_ERROR,
                        "commit rolled back op=%s (a statement of it failed)",
                        c->op ? c->op : "?");
        rc = FOTA_EIO;
    }
    PQclear(r);
    return rc;
}

void fota_store_pg_rollback(struct pg_conn *c)
{
    if (!c->in_tx)
        return;
    c->in_tx = 0;
    if (!c->broken)
        simple(c, "ROLLBACK", "rollback", NULL);
}

int fota_store_pg_finish(struct pg_conn *c, int rc)
{
    if (rc == 0)
        return fota_store_pg_commit(c);
    fota_store_pg_rollback(c);
    return rc;
}

int fota_store_pg_exec_tx(struct pg_conn *c, int id, const char *sql, const struct pg_params *p,
                          int durable, const char *what, int64_t *first)
{
    int rc = FOTA_EAGAIN;

    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++) {
        if ((rc = fota_store_pg_begin(c, durable)) != 0)
            break;
        rc = fota_store_pg_finish(c, fota_store_pg_exec(c, id, sql, p, what, first));
    }
    return rc;
}

/* ---- columns ------------------------------------------------------------- */

int64_t fota_store_pg_col_int(const PGresult *r, int row, int col)
{
    const char *v = PQgetvalue(r, row, col);

    /* Booleans (t/f) read as 1/0, as SQLite's integers do. */
    if (v[0] == 't')
        return 1;
    return strtoll(v, NULL, 10);
}

double fota_store_pg_col_double(const PGresult *r, int row, int col)
{
    return strtod(PQgetvalue(r, row, col), NULL);
}

void fota_store_pg_col_text(const PGresult *r, int row, int col, char *dst, size_t n)
{
    fota_str_copy(dst, n, PQgetvalue(r, row, col));
}

/* ---- the store ----------------------------------------------------------- */

static void pg_close(struct fota_store *s)
{
    struct pg_store *q = fota_store_pg_cast(s);
    struct pg_conn *c, *next;

    /* Every thread that used the store is done with it by now (store.h):
     * their connections close here, and the key's destructor is not run
     * for them afterwards. */
    pthread_key_delete(q->key);
    for (c = q->all; c; c = next) {
        next = c->next;
        if (c->in_tx && !c->broken)
            PQclear(PQexec(c->pg, "ROLLBACK"));
        PQfinish(c->pg);
        free(c->gen_mine);
        free(c);
    }
    pthread_mutex_destroy(&q->lock);
    free(q->dsn);
    free(q);
}

static const struct fota_store_ops pg_ops = {
    .name = "postgresql",
    .close = pg_close,
    .product_create = fota_store_pg_product_create,
    .product_get = fota_store_pg_product_get,
    .product_head = fota_store_pg_product_head,
    .product_find = fota_store_pg_product_find,
    .product_list = fota_store_pg_product_list,
    .product_heads = fota_store_pg_product_heads,
    .rom_create = fota_store_pg_rom_create,
    .rom_get = fota_store_pg_rom_get,
    .rom_list = fota_store_pg_rom_list,
    .rom_set_current = fota_store_pg_rom_set_current,
    .rom_current = fota_store_pg_rom_current,
    .device_create = fota_store_pg_device_create,
    .device_create_many = fota_store_pg_device_create_many,
    .device_get = fota_store_pg_device_get,
    .device_list = fota_store_pg_device_list,
    .device_update = fota_store_pg_device_update,
    .device_presence_batch = fota_store_pg_device_presence_batch,
    .key_create = fota_store_pg_key_create,
    .key_lookup = fota_store_pg_key_lookup,
    .key_delete_for_device = fota_store_pg_key_delete_for_device,
    .command_create = fota_store_pg_command_create,
    .command_update = fota_store_pg_command_update,
    .rollout_create = fota_store_pg_rollout_create,
    .rollout_save = fota_store_pg_rollout_save,
    .rollout_get = fota_store_pg_rollout_get,
    .rollout_list = fota_store_pg_rollout_list,
    .rollout_members = fota_store_pg_rollout_members,
    .rollout_sample_add = fota_store_pg_rollout_sample_add,
    .rollout_samples = fota_store_pg_rollout_samples,
    .rollout_events_add = fota_store_pg_rollout_events_add,
    .rollout_events_take = fota_store_pg_rollout_events_take,
    .rollout_queued_held = fota_store_pg_rollout_queued_held,
    .command_get = fota_store_pg_command_get,
    .command_find_nonce = fota_store_pg_command_find_nonce,
    .command_list_device = fota_store_pg_command_list_device,
    .command_create_many = fota_store_pg_command_create_many,
    .command_update_batch = fota_store_pg_command_update_batch,
    .message_add = fota_store_pg_message_add,
    .report_batch = fota_store_pg_report_batch,
    .message_list = fota_store_pg_message_list,
    .download_add = fota_store_pg_download_add,
    .download_add_batch = fota_store_pg_download_add_batch,
    .download_bytes = fota_store_pg_download_bytes,
    .transfer_add = fota_store_pg_transfer_add,
    .transfer_list = fota_store_pg_transfer_list,
    .message_prune = fota_store_pg_message_prune,
    .transfer_prune = fota_store_pg_transfer_prune,
    .blob_refs = fota_store_pg_blob_refs,
    .blob_put = fota_store_pg_blob_put,
    .blob_fetch = fota_store_pg_blob_fetch,
    .rom_delete = fota_store_pg_rom_delete,
    .device_delete = fota_store_pg_device_delete,
    .product_delete = fota_store_pg_product_delete,
    .arduino_product_put = fota_store_pg_arduino_product_put,
    .arduino_product_get = fota_store_pg_arduino_product_get,
    .arduino_blob_put = fota_store_pg_arduino_blob_put,
    .arduino_blob_get = fota_store_pg_arduino_blob_get,
    .arduino_device_register = fota_store_pg_arduino_device_register,
    .arduino_device_find = fota_store_pg_arduino_device_find,
    .arduino_device_get = fota_store_pg_arduino_device_get,
    .arduino_device_list = fota_store_pg_arduino_device_list,
    .arduino_device_report = fota_store_pg_arduino_device_report,
    .arduino_device_track = fota_store_pg_arduino_device_track,
    .arduino_device_mqtt = fota_store_pg_arduino_device_mqtt,
    .arduino_device_served = fota_store_pg_arduino_device_served,
    .device_census = fota_store_pg_device_census,
    .rollout_census = fota_store_pg_rollout_census,
    .device_page = fota_store_pg_device_page,
    .device_tags_edit = fota_store_pg_device_tags_edit,
    .device_tags = fota_store_pg_device_tags,
    .tag_list = fota_store_pg_tag_list,
    .command_cancel = fota_store_pg_command_cancel,
    .command_create_replacing = fota_store_pg_command_create_replacing,
    .product_census = fota_store_pg_product_census,
    .product_activity = fota_store_pg_product_activity,
    .command_queued_devices = fota_store_pg_command_queued_devices,
    .command_reply = fota_store_pg_command_reply,
};

/* A store thread of the executor (store_exec.h) connects before its first
 * job; one that cannot yet connects at a later op. */
static void pg_thread_begin(struct fota_store *s)
{
    struct pg_conn *c;

    if (fota_store_pg_enter(s, "connect", &c) == 0)
        fota_store_pg_leave(c, 0);
}

int fota_store_pg_open(const char *dsn, fota_log_cb log, void *log_ud, struct fota_store **out,
                       char *err, size_t errlen)
{
    struct pg_store *q;
    struct pg_conn *c;

    *out = NULL;
    if (errlen)
        err[0] = '\0';
    q = fota_xcalloc(1, sizeof *q);
    q->base.ops = &pg_ops;
    q->base.log = log;
    q->base.log_ud = log_ud;
    q->dsn = fota_xstrdup(dsn);
    q->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    if (pthread_key_create(&q->key, thread_gone) != 0) {
        snprintf(err, errlen, "no thread-local key left");
        fota_store_logf(&q->base, FOTA_LOG_ERROR, "open failed backend=postgresql error=\"%s\"",
                        err);
        free(q->dsn);
        free(q);
        return FOTA_EIO;
    }
    if (thread_conn(q, &c) != 0 || connect_conn(c, err, errlen) != 0 ||
        fota_store_pg_migrate(c, err, errlen) != 0) {
        if (!err[0])
            snprintf(err, errlen, "cannot open the PostgreSQL store");
        fota_store_logf(&q->base, FOTA_LOG_ERROR, "open failed backend=postgresql error=\"%s\"",
                        err);
        pg_close(&q->base);
        return FOTA_EIO;
    }
    q->base.generation = 1;   /* counting: caches may be used */
    /* Ops wait for round trips: the executor runs them on threads of its own. */
    q->base.threaded = 1;
    q->base.thread_begin = pg_thread_begin;
    q->base.thread_end = fota_store_pg_thread_done;
    *out = &q->base;
    return 0;
}
