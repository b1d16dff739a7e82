/* cluster.c - the cluster module (cluster.h): an instance's registration,
 * its listener thread (LISTEN, heartbeat, the janitor lease and the sweep of
 * dead instances) and its doorbells. PostgreSQL only: the thread keeps one
 * libpq connection of its own, apart from the store's, blocked in poll() on
 * its socket. Times that decide liveness come from the database's clock
 * (clock_timestamp()), so instances on hosts whose clocks differ agree. */
#include "cluster.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "fota_str.h"
#include "keys.h"
#include "log.h"
#include "loop.h"
#include "xmalloc.h"

#define INSTANCE_NAME_MAX 128
#define CHANNEL_MAX 63   /* PostgreSQL's identifiers */
#define NOTES_MAX 4096   /* notifications waiting for the listener's connection */
#define MSG_CHANNEL "fota_msg"

struct cluster_conf {
    char instance_name[INSTANCE_NAME_MAX];
    unsigned instance_timeout;        /* s without a heartbeat before an instance is dead */
};

#define ROW(f) FOTA_CONF_FIELD(struct cluster_conf, f)
static const struct fota_conf_opt cluster_rows[] = {
    { "instance_name", FOTA_CONF_T_STR, ROW(instance_name), "", 0, 0, 0,
      "This fotad's name among several sharing one PostgreSQL database (store = postgresql:); "
      "empty = hostname:http_port. A fotad that starts with the name of an earlier one takes "
      "over its devices' presence: give each running instance its own." },
    { "instance_timeout", FOTA_CONF_T_UINT, ROW(instance_timeout), "3", 1, 600, 0,
      "Seconds without a heartbeat after which another instance counts a PostgreSQL-sharing "
      "fotad dead and its devices offline (heartbeats: 6 per timeout)." },
    { NULL, 0, 0, 0, NULL, 0, 0, 0, NULL }
};

struct sub {
    char channel[CHANNEL_MAX + 1];
    fota_cluster_cb cb;
    void *ud;
};

/* A notification to send (fota_cluster_notify). */
struct note {
    struct note *next;
    char channel[CHANNEL_MAX + 1];
    char payload[];
};

struct cluster {
    struct fota_server *srv;
    const struct cluster_conf *conf;
    const char *dsn;                  /* in srv->conf.store */
    char name[INSTANCE_NAME_MAX];
    int64_t id;                       /* our row in instances */
    char id_text[24];
    char timeout_text[24];            /* instance_timeout in s, for the statements */
    int64_t tick_ms;                  /* heartbeat, lease and sweep period */
    PGconn *pg;                       /* the listener's; start's before the thread runs */
    int wake_fd;                      /* eventfd: stop, drain, a new channel */
    pthread_t thread;
    int thread_started;
    int stopping, draining;           /* atomics */
    pthread_mutex_t lock;             /* subs, nsubs, the notes */
    struct sub subs[FOTA_CLUSTER_SUBS_MAX];
    unsigned nsubs;
    struct note *notes, **notes_tail; /* to send, oldest first */
    unsigned nnotes;
    unsigned nlistening;              /* subs LISTENed on the current connection (thread) */
    int janitor;                      /* holds the janitor lease (thread) */
    int64_t ro_epoch;                 /* lease rollouts' epoch while held, else 0 (atomic) */
    int64_t ro_until;                 /* fota_clock_mono_raw_ms() it counts as held until (atomic) */
    int presence_lost;                /* counted dead meanwhile: devices to write again (atomic) */
    unsigned ticks;
    int backoff_ms;
};

/* The module's slot in main.c's table. server.c calls fota_cluster_check at
 * start-up, so this file reads the table itself, not through server.c's
 * fota_server_module_conf/_state (files calling each other both ways). */
static struct fota_module_slot *slot_of(const struct fota_server *srv)
{
    for (size_t i = 0; i < srv->nmodules; i++)
        if (srv->modules[i].mod == &fota_cluster_module)
            return &srv->modules[i];
    return NULL;
}

/* ---- the connection ------------------------------------------------------ */

/* Runs sql with text parameters on the listener's connection. The result,
 * or NULL (logged; the connection is dropped when it is what failed). */
static PGresult *run(struct cluster *cl, const char *what, const char *sql, int n,
                     const char *const *params)
{
    char msg[256];
    PGresult *r;
    ExecStatusType st;

    if (!cl->pg)
        return NULL;
    r = PQexecParams(cl->pg, sql, n, NULL, params, NULL, NULL, 0);
    st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    fota_str_copy(msg, sizeof msg, PQresultErrorMessage(r));
    msg[strcspn(msg, "\n")] = '\0';
    FOTA_WARN("cluster statement failed op=%s error=\"%s\"", what, msg);
    PQclear(r);
    if (PQstatus(cl->pg) != CONNECTION_OK) {
        PQfinish(cl->pg);
        cl->pg = NULL;
    }
    return NULL;
}

static int64_t col_int(const PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Connects and LISTENs on fota_gen and every subscribed channel. 0, or
 * FOTA_EUNAVAIL with the reason in err. */
static int connect_listener(struct cluster *cl, char *err, size_t errlen)
{
    static const char *const keys[] = { "connect_timeout", "application_name", "dbname",
                                        "client_encoding", NULL };
    const char *vals[] = { "5", "fotad cluster", cl->dsn, "UTF8", NULL };
    PGresult *r;

    cl->pg = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(cl->pg) != CONNECTION_OK) {
        fota_str_copy(err, errlen, PQerrorMessage(cl->pg));
        err[strcspn(err, "\n")] = '\0';
        PQfinish(cl->pg);
        cl->pg = NULL;
        return FOTA_EUNAVAIL;
    }
    /* No statement holds the heartbeat for long. */
    r = PQexec(cl->pg, "SET statement_timeout = 5000; LISTEN fota_gen");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fota_str_copy(err, errlen, PQresultErrorMessage(r));
        err[strcspn(err, "\n")] = '\0';
        PQclear(r);
        PQfinish(cl->pg);
        cl->pg = NULL;
        return FOTA_EUNAVAIL;
    }
    PQclear(r);
    cl->nlistening = 0;
    return 0;
}

/* LISTENs on the channels subscribed since the connection was made. */
static void listen_new(struct cluster *cl)
{
    for (;;) {
        char sql[CHANNEL_MAX + 16];
        char *ident;
        PGresult *r;

        pthread_mutex_lock(&cl->lock);
        if (cl->nlistening >= cl->nsubs || !cl->pg) {
            pthread_mutex_unlock(&cl->lock);
            return;
        }
        ident = PQescapeIdentifier(cl->pg, cl->subs[cl->nlistening].channel,
                                   strlen(cl->subs[cl->nlistening].channel));
        pthread_mutex_unlock(&cl->lock);
        if (!ident)
            return;
        snprintf(sql, sizeof sql, "LISTEN %s", ident);
        PQfreemem(ident);
        if (!(r = run(cl, "listen", sql, 0, NULL)))
            return;
        PQclear(r);
        cl->nlistening++;
    }
}

/* ---- doorbells ------------------------------------------------------------ */

struct bell {
    struct cluster *cl;
    unsigned sub;
    char *payload;                    /* NULL: rescan */
};

static void bell_run(void *arg, int cancelled)
{
    struct bell *b = arg;
    struct cluster *cl = b->cl;

    if (!cancelled) {
        pthread_mutex_lock(&cl->lock);
        struct sub s = cl->subs[b->sub];
        pthread_mutex_unlock(&cl->lock);
        s.cb(cl->srv, b->payload, s.ud);
    }
    free(b->payload);
    free(b);
}

static void ring(struct cluster *cl, unsigned sub, const char *payload)
{
    struct bell *b = fota_xmalloc(sizeof *b);

    b->cl = cl;
    b->sub = sub;
    b->payload = payload ? fota_xstrdup(payload) : NULL;
    if (fota_loop_post(cl->srv->loops[0], bell_run, b) != 0) {
        free(b->payload);   /* the main loop has stopped: nobody to tell */
        free(b);
    }
}

/* Every notification libpq has read: fota_gen moves generations (not those
 * of this instance's own store connections, whose ops applied them before
 * returning), the others ring their subscribers. */
static void drain_notifies(struct cluster *cl)
{
    struct fota_store *st = cl->srv->store;
    PGnotify *n;

    while (cl->pg && (n = PQnotifies(cl->pg)) != NULL) {
        if (strcmp(n->relname, "fota_gen") == 0) {
            if (!fota_store_pg_own_backend(st, n->be_pid))
                fota_store_pg_gen_apply(st, n->extra);
        } else {
            pthread_mutex_lock(&cl->lock);
            unsigned nsubs = cl->nsubs;
            pthread_mutex_unlock(&cl->lock);
            for (unsigned i = 0; i < nsubs; i++)
                if (strcmp(cl->subs[i].channel, n->relname) == 0)
                    ring(cl, i, n->extra);
        }
        PQfreemem(n);
    }
}

/* Up to NOTES_PER_TX notifications in one statement, so one commit: each
 * commit that notifies wakes every listening backend of the database
 * (PostgreSQL signals them all, whatever their channels), and a burst of
 * pushes asked of other instances is tens of notifications. In order: the
 * select list's calls run left to right. Returns how many it sent (0: the
 * statement failed). */
#define NOTES_PER_TX 16

static unsigned send_some(struct cluster *cl, struct note *n)
{
    const char *p[2 * NOTES_PER_TX];
    char sql[NOTES_PER_TX * 32 + 16];
    size_t len = (size_t)snprintf(sql, sizeof sql, "SELECT");
    unsigned k = 0;

    for (; n && k < NOTES_PER_TX; n = n->next, k++) {
        p[2 * k] = n->channel;
        p[2 * k + 1] = n->payload;
        len += (size_t)snprintf(sql + len, sizeof sql - len, "%s pg_notify($%u, $%u)",
                                k ? "," : "", 2 * k + 1, 2 * k + 2);
    }
    PGresult *r = run(cl, "notify", sql, (int)(2 * k), p);
    unsigned sent = r ? k : 0;

    PQclear(r);
    return sent;
}

/* Sends the notifications queued by fota_cluster_notify, in order. One
 * that fails is dropped with the rest of the batch: a lost doorbell costs
 * what a missed one does (the callers' waits have deadlines). */
static void send_notes(struct cluster *cl)
{
    struct note *n;
    unsigned lost = 0;

    pthread_mutex_lock(&cl->lock);
    n = cl->notes;
    cl->notes = NULL;
    cl->notes_tail = &cl->notes;
    cl->nnotes = 0;
    pthread_mutex_unlock(&cl->lock);
    while (n) {
        unsigned k = lost ? 0 : send_some(cl, n);

        for (unsigned i = 0; n && (i < k || k == 0); i++) {
            struct note *next = n->next;
            lost += k == 0;
            free(n);
            n = next;
        }
    }
    if (lost)
        FOTA_WARN("cluster notifications lost count=%u", lost);
}

/* ---- heartbeat, lease, sweep ------------------------------------------------- */

static void heartbeat(struct cluster *cl)
{
    const char *p[2] = { cl->id_text, __atomic_load_n(&cl->draining, __ATOMIC_ACQUIRE) ? "2" : "1" };
    /* The old state comes from the self-join's row (the statement's snapshot). */
    PGresult *r = run(cl, "heartbeat",
                      "UPDATE instances i SET heartbeat = clock_timestamp(), state = $2::int8"
                      " FROM instances o WHERE i.id = $1::int8 AND o.id = i.id RETURNING o.state",
                      2, p);

    if (!r)
        return;
    if (PQntuples(r) == 0)
        FOTA_ERROR("cluster instance row gone id=%lld name=%s", (long long)cl->id, cl->name);
    else if (col_int(r, 0, 0) == 3) {
        FOTA_WARN("cluster instance was counted dead, alive again id=%lld name=%s "
                  "hint=\"its devices count offline until the next presence batch writes them "
                  "online again; a heartbeat took longer than instance_timeout\"",
                  (long long)cl->id, cl->name);
        __atomic_store_n(&cl->presence_lost, 1, __ATOMIC_RELEASE);
    }
    PQclear(r);
}

/* Takes or renews lease name for instance_timeout seconds (the database's
 * clock). Its epoch while this instance holds it, else 0. One statement,
 * three disjoint branches: the holder's renewal moves only expires (a
 * no-key update, which the rollout engine's fences, FOR KEY SHARE locks of
 * the row held to their transaction's end, do not hold up: neither this
 * thread's heartbeats and notifications nor the lease itself wait behind a
 * long store write); a missing row is made; an expired row of another
 * holder is taken, locked FOR UPDATE first, so the takeover waits for
 * every fenced transaction of the old holder (docs/scale-out.md). An
 * unexpired row of another holder is only read: no lock, no wait. */
static int64_t lease_take(struct cluster *cl, const char *name)
{
    const char *p[3] = { cl->id_text, cl->timeout_text, name };
    PGresult *r = run(cl, "lease",
                      "WITH renew AS (UPDATE leases"
                      " SET expires = clock_timestamp() + $2::float8 * interval '1 second'"
                      " WHERE name = $3 AND holder = $1::int8 RETURNING epoch),"
                      " made AS (INSERT INTO leases (name, holder, epoch, expires)"
                      " VALUES ($3, $1::int8, 1,"
                      " clock_timestamp() + $2::float8 * interval '1 second')"
                      " ON CONFLICT (name) DO NOTHING RETURNING epoch),"
                      " old AS (SELECT name FROM leases WHERE name = $3 AND holder <> $1::int8"
                      " AND expires < clock_timestamp() FOR UPDATE),"
                      " took AS (UPDATE leases l SET holder = $1::int8, epoch = l.epoch + 1,"
                      " expires = clock_timestamp() + $2::float8 * interval '1 second'"
                      " FROM old WHERE l.name = old.name AND l.holder <> $1::int8"
                      " AND l.expires < clock_timestamp() RETURNING l.epoch)"
                      " SELECT epoch FROM renew UNION ALL SELECT epoch FROM made"
                      " UNION ALL SELECT epoch FROM took",
                      3, p);
    int64_t epoch = r && PQntuples(r) == 1 ? col_int(r, 0, 0) : 0;

    PQclear(r);
    return epoch;
}

/* The janitor lease: one instance at a time sweeps. */
static void lease(struct cluster *cl)
{
    int64_t epoch = lease_take(cl, "janitor");
    int held = epoch != 0;

    if (held && !cl->janitor)
        FOTA_INFO("cluster janitor lease taken id=%lld epoch=%lld", (long long)cl->id,
                  (long long)epoch);
    else if (!held && cl->janitor)
        FOTA_INFO("cluster janitor lease lost id=%lld", (long long)cl->id);
    cl->janitor = held;
}

/* The rollouts lease: its holder drives every rollout. It counts as held
 * until two thirds of its term from the moment the renewal was sent (the
 * database's expiry comes later than that moment plus the term), so the
 * driver stops before another instance can take it. Reckoned on the clock
 * the database's expiry runs on: a test's move of fotad's clock moves
 * neither. */
static void lease_rollouts(struct cluster *cl)
{
    int64_t sent = fota_clock_mono_raw_ms();
    int64_t epoch = lease_take(cl, "rollouts");
    int64_t had = __atomic_load_n(&cl->ro_epoch, __ATOMIC_ACQUIRE);

    if (epoch != 0) {
        __atomic_store_n(&cl->ro_until, sent + (int64_t)cl->conf->instance_timeout * 2000 / 3,
                         __ATOMIC_RELEASE);
        if (epoch != had)
            FOTA_INFO("cluster rollouts lease taken id=%lld epoch=%lld", (long long)cl->id,
                      (long long)epoch);
    } else if (had != 0) {
        FOTA_INFO("cluster rollouts lease lost id=%lld epoch=%lld", (long long)cl->id,
                  (long long)had);
    }
    __atomic_store_n(&cl->ro_epoch, epoch, __ATOMIC_RELEASE);
}

/* Instances whose heartbeat is older than instance_timeout are dead: the
 * devices they held go offline, in one statement. */
static void sweep(struct cluster *cl)
{
    const char *p[2] = { cl->id_text, cl->timeout_text };
    PGresult *r = run(cl, "sweep",
                      "WITH dead AS (UPDATE instances SET state = 3 WHERE state <> 3"
                      " AND id <> $1::int8"
                      " AND heartbeat < clock_timestamp() - $2::float8 * interval '1 second'"
                      " RETURNING id, name),"
                      " gone AS (DELETE FROM device_conn h USING dead"
                      " WHERE h.instance_id = dead.id RETURNING h.device_id),"
                      " off AS (UPDATE devices d SET online = 0 FROM gone"
                      " WHERE d.id = gone.device_id AND d.online <> 0 RETURNING d.id)"
                      " SELECT (SELECT string_agg(id || ' ' || name, ', ') FROM dead),"
                      " (SELECT count(*) FROM off)",
                      2, p);

    if (r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        FOTA_WARN("cluster instance dead instances=\"%s\" devices_offline=%lld "
                  "reason=\"no heartbeat for %ss\"",
                  PQgetvalue(r, 0, 0), (long long)col_int(r, 0, 1), cl->timeout_text);
    PQclear(r);
    /* Dead rows are kept a day (who ran, for a look), then go. */
    if (++cl->ticks % 1024 == 0)
        PQclear(run(cl, "prune",
                    "DELETE FROM instances WHERE state = 3"
                    " AND heartbeat < clock_timestamp() - interval '1 day'",
                    0, NULL));
}

static void tick(struct cluster *cl)
{
    heartbeat(cl);
    lease(cl);
    lease_rollouts(cl);
    if (cl->janitor)
        sweep(cl);
}

/* A clean stop: this instance's devices go offline at once (not after
 * instance_timeout), the lease is free for another, the row says dead. */
static void leave(struct cluster *cl)
{
    const char *p[1] = { cl->id_text };
    PGresult *r = run(cl, "leave",
                      "WITH gone AS (DELETE FROM device_conn WHERE instance_id = $1::int8"
                      " RETURNING device_id),"
                      " off AS (UPDATE devices d SET online = 0 FROM gone"
                      " WHERE d.id = gone.device_id AND d.online <> 0 RETURNING d.id),"
                      " lease AS (DELETE FROM leases WHERE holder = $1::int8)"
                      " UPDATE instances SET state = 3 WHERE id = $1::int8"
                      " RETURNING (SELECT count(*) FROM off)",
                      1, p);

    if (r && PQntuples(r) == 1)
        FOTA_INFO("cluster instance left id=%lld devices_offline=%lld", (long long)cl->id,
                  (long long)col_int(r, 0, 0));
    PQclear(r);
}

/* ---- the listener thread ----------------------------------------------------- */

/* A lost connection is made again, after 50 ms doubling to 1 s; then every
 * generation moves and every subscriber rescans: what was written meanwhile
 * rang no bell here. */
static void revive(struct cluster *cl)
{
    char err[200];

    if (connect_listener(cl, err, sizeof err) != 0) {
        cl->backoff_ms = cl->backoff_ms ? cl->backoff_ms * 2 : 50;
        if (cl->backoff_ms > 1000)
            cl->backoff_ms = 1000;
        FOTA_WARN("cluster listener cannot connect error=\"%s\" retry_ms=%d", err, cl->backoff_ms);
        return;
    }
    cl->backoff_ms = 0;
    fota_store_pg_gen_apply(cl->srv->store, "*");
    pthread_mutex_lock(&cl->lock);
    unsigned nsubs = cl->nsubs;
    pthread_mutex_unlock(&cl->lock);
    for (unsigned i = 0; i < nsubs; i++)
        ring(cl, i, NULL);
    FOTA_INFO("cluster listener reconnected id=%lld", (long long)cl->id);
}

static void *listener(void *arg)
{
    struct cluster *cl = arg;
    int64_t next_tick = 0, retry_at = 0;

    while (!__atomic_load_n(&cl->stopping, __ATOMIC_ACQUIRE)) {
        int64_t now = fota_clock_mono_ms();
        struct pollfd pf[2] = { { .fd = cl->wake_fd, .events = POLLIN },
                                { .fd = -1, .events = POLLIN } };
        uint64_t v;

        if (!cl->pg && now >= retry_at) {
            revive(cl);
            retry_at = now + cl->backoff_ms;
        }
        if (cl->pg)
            listen_new(cl);
        if (cl->pg)
            send_notes(cl);
        if (cl->pg && now >= next_tick) {
            tick(cl);
            next_tick = now + cl->tick_ms;
        }
        drain_notifies(cl);
        now = fota_clock_mono_ms();
        int64_t until = cl->pg ? next_tick : retry_at;
        int wait = until > now ? (int)(until - now) : 0;
        if (cl->pg)
            pf[1].fd = PQsocket(cl->pg);
        if (poll(pf, 2, wait) < 0 && errno != EINTR)
            break;
        if (pf[0].revents & POLLIN)
            (void)!read(cl->wake_fd, &v, sizeof v);
        if (cl->pg && (pf[1].revents & (POLLIN | POLLERR | POLLHUP)) &&
            PQconsumeInput(cl->pg) != 1) {
            char msg[200];
            fota_str_copy(msg, sizeof msg, PQerrorMessage(cl->pg));
            msg[strcspn(msg, "\n")] = '\0';
            FOTA_WARN("cluster listener lost its connection error=\"%s\"", msg);
            PQfinish(cl->pg);
            cl->pg = NULL;
            retry_at = 0;
        }
    }
    if (!cl->pg) {
        char err[200];
        if (connect_listener(cl, err, sizeof err) != 0)
            FOTA_WARN("cluster instance cannot leave error=\"%s\"", err);
    }
    leave(cl);
    return NULL;
}

static void wake(struct cluster *cl)
{
    uint64_t one = 1;

    (void)!write(cl->wake_fd, &one, sizeof one);
}

/* ---- registration ------------------------------------------------------------ */

int fota_cluster_check(struct fota_server *srv, int *admin_keys)
{
    struct cluster cl = { .srv = srv, .dsn = srv->conf.store + strlen(FOTA_CONF_STORE_PG) };
    char fp[65], now[24], err[200];
    const char *p[2] = { fp, now };
    PGresult *r;
    int rc = 0;

    *admin_keys = 0;
    if (strncmp(srv->conf.store, FOTA_CONF_STORE_PG, strlen(FOTA_CONF_STORE_PG)) != 0)
        return 0;
    if (connect_listener(&cl, err, sizeof err) != 0) {
        FOTA_ERROR("cluster cannot connect error=\"%s\"", err);
        return FOTA_EUNAVAIL;
    }
    fota_key_fingerprint(srv->secret, fp);
    snprintf(now, sizeof now, "%lld", (long long)fota_clock_wall_s());
    r = run(&cl, "secret",
            "INSERT INTO cluster (k, v) VALUES ('secret_fp', $1), ('created', $2)"
            " ON CONFLICT (k) DO NOTHING",
            2, p);
    PQclear(r);
    r = r ? run(&cl, "secret",
                "SELECT v, (SELECT count(*) FROM api_keys WHERE kind = 1) FROM cluster"
                " WHERE k = 'secret_fp'",
                0, NULL)
          : NULL;
    if (!r) {
        rc = FOTA_EUNAVAIL;
    } else if (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), fp) != 0) {
        FOTA_ERROR("secret.key differs from the cluster's (copy DATA/secret.key from the first "
                   "instance) path=%s/secret.key",
                   srv->conf.data_dir);
        rc = FOTA_ECONFIG;
    } else {
        *admin_keys = (int)col_int(r, 0, 1);
    }
    PQclear(r);
    if (cl.pg)
        PQfinish(cl.pg);
    return rc;
}

/* Our row, in one statement with the reset of presence at start: earlier
 * instances with our name are dead (a restart, after a crash or not), the
 * device_conn rows of dead instances go, and a device marked online that no
 * live instance holds goes offline (the CTEs all read the statement's
 * snapshot, hence the name test beside the state test). */
static int enroll(struct cluster *cl)
{
    char started[24];
    const char *p[3] = { cl->name, started, cl->timeout_text };
    PGresult *r;

    snprintf(started, sizeof started, "%lld", (long long)fota_clock_wall_s());
    r = run(cl, "register",
            "WITH me AS (INSERT INTO instances (name, started, heartbeat)"
            " VALUES ($1, $2::int8, clock_timestamp()) RETURNING id),"
            " prev AS (UPDATE instances SET state = 3 WHERE name = $1 AND state <> 3"
            " RETURNING id,"
            " heartbeat > clock_timestamp() - $3::float8 * interval '1 second' AS fresh),"
            " held AS (DELETE FROM leases WHERE holder IN (SELECT id FROM prev)),"
            " stale AS (DELETE FROM device_conn h WHERE h.instance_id IN (SELECT id FROM prev)"
            " OR NOT EXISTS (SELECT 1 FROM instances i"
            " WHERE i.id = h.instance_id AND i.state <> 3)),"
            " off AS (UPDATE devices d SET online = 0 WHERE d.online <> 0"
            " AND NOT EXISTS (SELECT 1 FROM device_conn h JOIN instances i ON i.id = h.instance_id"
            " WHERE h.device_id = d.id AND i.state <> 3 AND i.name <> $1) RETURNING d.id)"
            " SELECT (SELECT id FROM me), (SELECT count(*) FROM prev),"
            " (SELECT count(*) FROM prev WHERE fresh), (SELECT count(*) FROM off)",
            3, p);
    if (!r)
        return FOTA_EUNAVAIL;
    cl->id = col_int(r, 0, 0);
    snprintf(cl->id_text, sizeof cl->id_text, "%lld", (long long)cl->id);
    if (col_int(r, 0, 2) > 0)
        FOTA_WARN("cluster instance name was live name=%s "
                  "hint=\"an instance with this name heart-beat less than instance_timeout ago; "
                  "if it still runs, give each fotad its own instance_name\"",
                  cl->name);
    FOTA_INFO("cluster instance registered id=%lld name=%s earlier=%lld devices_reset=%lld "
              "timeout=%s",
              (long long)cl->id, cl->name, (long long)col_int(r, 0, 1),
              (long long)col_int(r, 0, 3), cl->timeout_text);
    PQclear(r);
    return 0;
}

/* Messages: every instance's reach this one's followers through the
 * doorbell fota_msg (message_add rings it in its commit). LISTENed before
 * the newest id is read, so a message after that id rings here. */
static int share_messages(struct cluster *cl)
{
    PGresult *r = run(cl, "listen", "LISTEN " MSG_CHANNEL, 0, NULL);

    if (!r)
        return FOTA_EUNAVAIL;
    PQclear(r);
    r = run(cl, "messages", "SELECT coalesce(max(id), 0) FROM messages", 0, NULL);
    if (!r)
        return FOTA_EUNAVAIL;
    fota_server_bus_share(cl->srv, col_int(r, 0, 0));
    PQclear(r);
    struct sub *s = &cl->subs[cl->nsubs++];
    fota_str_copy(s->channel, sizeof s->channel, MSG_CHANNEL);
    s->cb = fota_server_bus_ring;
    s->ud = NULL;
    cl->nlistening = cl->nsubs;
    return 0;
}

static void default_name(struct cluster *cl)
{
    char host[64] = "";

    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        fota_str_copy(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    if (cl->srv->http_port > 0)
        snprintf(cl->name, sizeof cl->name, "%s:%d", host, cl->srv->http_port);
    else   /* no HTTP listener: a name of this process's own */
        snprintf(cl->name, sizeof cl->name, "%s:pid%ld", host, (long)getpid());
}

static void cluster_free(struct cluster *cl)
{
    while (cl->notes) {
        struct note *n = cl->notes;
        cl->notes = n->next;
        free(n);
    }
    if (cl->pg)
        PQfinish(cl->pg);
    if (cl->wake_fd >= 0)
        close(cl->wake_fd);
    pthread_mutex_destroy(&cl->lock);
    free(cl);
}

static int cluster_start(struct fota_server *srv, void **state)
{
    const struct fota_module_slot *slot = slot_of(srv);
    const struct cluster_conf *conf = slot ? slot->conf : NULL;
    struct cluster *cl;
    char err[200];
    int rc;

    *state = NULL;
    if (strncmp(srv->conf.store, FOTA_CONF_STORE_PG, strlen(FOTA_CONF_STORE_PG)) != 0 || !conf)
        return 0;   /* SQLite: one fotad, nothing to share */
    cl = fota_xcalloc(1, sizeof *cl);
    cl->srv = srv;
    cl->conf = conf;
    cl->dsn = srv->conf.store + strlen(FOTA_CONF_STORE_PG);
    cl->wake_fd = -1;
    cl->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    cl->notes_tail = &cl->notes;
    snprintf(cl->timeout_text, sizeof cl->timeout_text, "%u", conf->instance_timeout);
    cl->tick_ms = (int64_t)conf->instance_timeout * 1000 / 6;
    if (conf->instance_name[0])
        fota_str_copy(cl->name, sizeof cl->name, conf->instance_name);
    else
        default_name(cl);
    if ((rc = connect_listener(cl, err, sizeof err)) != 0) {
        FOTA_ERROR("cluster cannot connect error=\"%s\"", err);
        goto fail;
    }
    if ((rc = enroll(cl)) != 0)
        goto fail;
    if ((rc = share_messages(cl)) != 0) {
        leave(cl);
        goto fail;
    }
    /* Before any device connects: the presence batch records the holder. */
    srv->store->instance_id = cl->id;
    /* The leases before the modules start: the rollout module resumes its
     * rollouts at start when it holds lease rollouts. */
    tick(cl);
    cl->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (cl->wake_fd < 0 || pthread_create(&cl->thread, NULL, listener, cl) != 0) {
        FOTA_ERROR("cluster cannot start its listener thread error=\"%s\"", strerror(errno));
        rc = FOTA_ENOMEM;
        leave(cl);
        goto fail;
    }
    cl->thread_started = 1;
    *state = cl;
    return 0;
fail:
    srv->store->instance_id = 0;
    cluster_free(cl);
    return rc < 0 ? rc : FOTA_EIO;
}

/* SIGTERM: the row says draining at the next heartbeat. */
static void cluster_drain(struct fota_server *srv, void *state)
{
    struct cluster *cl = state;

    (void)srv;
    if (!cl)
        return;
    __atomic_store_n(&cl->draining, 1, __ATOMIC_RELEASE);
}

static void cluster_stop(struct fota_server *srv, void *state)
{
    struct cluster *cl = state;

    (void)srv;
    if (!cl)
        return;
    __atomic_store_n(&cl->stopping, 1, __ATOMIC_RELEASE);
    wake(cl);
    if (cl->thread_started)
        pthread_join(cl->thread, NULL);
    cluster_free(cl);
}

const struct fota_module fota_cluster_module = {
    .name = "cluster",
    .conf_opts = cluster_rows,
    .conf_size = sizeof(struct cluster_conf),
    .start = cluster_start,
    .drain = cluster_drain,
    .stop = cluster_stop,
};

int fota_cluster_listen(struct fota_server *srv, const char *channel, fota_cluster_cb cb,
                        void *ud)
{
    const struct fota_module_slot *slot = slot_of(srv);
    struct cluster *cl = slot ? slot->state : NULL;
    size_t len = strlen(channel);
    int rc = 0;

    if (len == 0 || len > CHANNEL_MAX)
        return FOTA_EINVAL;
    if (!cl)
        return 0;
    pthread_mutex_lock(&cl->lock);
    if (cl->nsubs >= FOTA_CLUSTER_SUBS_MAX) {
        rc = FOTA_ETOOBIG;
    } else {
        struct sub *s = &cl->subs[cl->nsubs++];
        fota_str_copy(s->channel, sizeof s->channel, channel);
        s->cb = cb;
        s->ud = ud;
    }
    pthread_mutex_unlock(&cl->lock);
    if (rc == 0)
        wake(cl);
    return rc;
}

int fota_cluster_notify(struct fota_server *srv, const char *channel, const char *payload)
{
    const struct fota_module_slot *slot = slot_of(srv);
    struct cluster *cl = slot ? slot->state : NULL;
    size_t clen = strlen(channel), plen = strlen(payload);
    struct note *n;
    int rc = 0;

    if (clen == 0 || clen > CHANNEL_MAX || plen >= FOTA_CLUSTER_PAYLOAD_MAX)
        return FOTA_EINVAL;
    if (!cl)
        return 0;
    n = fota_xmalloc(sizeof *n + plen + 1);
    n->next = NULL;
    fota_str_copy(n->channel, sizeof n->channel, channel);
    memcpy(n->payload, payload, plen + 1);
    pthread_mutex_lock(&cl->lock);
    if (cl->nnotes >= NOTES_MAX) {
        rc = FOTA_ETOOBIG;
    } else {
        *cl->notes_tail = n;
        cl->notes_tail = &n->next;
        cl->nnotes++;
    }
    pthread_mutex_unlock(&cl->lock);
    if (rc == 0)
        wake(cl);
    else
        free(n);
    return rc;
}

int64_t fota_cluster_instance_id(const struct fota_server *srv)
{
    const struct fota_module_slot *slot = slot_of(srv);
    const struct cluster *cl = slot ? slot->state : NULL;

    return cl ? cl->id : 0;
}

int fota_cluster_presence_lost(struct fota_server *srv)
{
    struct fota_module_slot *slot = slot_of(srv);
    struct cluster *cl = slot ? slot->state : NULL;

    return cl ? __atomic_exchange_n(&cl->presence_lost, 0, __ATOMIC_ACQ_REL) : 0;
}

int64_t fota_cluster_rollouts_epoch(const struct fota_server *srv)
{
    const struct fota_module_slot *slot = slot_of(srv);
    struct cluster *cl = slot ? slot->state : NULL;
    int64_t epoch;

    if (!cl)
        return 1;
    epoch = __atomic_load_n(&cl->ro_epoch, __ATOMIC_ACQUIRE);
    if (epoch != 0 && fota_clock_mono_raw_ms() >= __atomic_load_n(&cl->ro_until, __ATOMIC_ACQUIRE))
        return 0;
    return epoch;
}
