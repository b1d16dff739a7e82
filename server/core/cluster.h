/* cluster.h - several fotad on one PostgreSQL database (docs/scale-out.md):
 * the cluster module. Each instance registers a row of its own in the
 * instances table (instance_name), after checking that its secret.key is the
 * cluster's (the fingerprint in the cluster table, keys.h); a listener thread
 * with a connection of its own LISTENs on fota_gen and moves this instance's
 * store generations when another instance writes (so the key, device and
 * release caches drop what changed) and on fota_msg (so this instance's
 * message followers get the other instances' messages, server.h:
 * fota_server_bus_share), heart-beats with the database's clock,
 * and, while it holds the janitor lease, declares instances that stopped
 * heart-beating dead and their devices offline. On SQLite (one fotad) the
 * module does nothing. The secret check comes before the module, at start-up
 * (fota_cluster_check). */
#ifndef FOTA_CLUSTER_H
#define FOTA_CLUSTER_H

#include <stdint.h>

#include "server.h"

/* The module: after http (its default name holds the HTTP port), before
 * every module that writes presence (device). */
extern const struct fota_module fota_cluster_module;

/* Before anything is written (server.c, after the store opened): on a
 * PostgreSQL store, checks that srv->secret is the cluster's (its
 * fingerprint in the cluster table, written by the first instance), and
 * counts the admin keys the database holds into *admin_keys (a later
 * instance without DATA/owner.key makes none: the first one's is copied).
 * 0 (also on SQLite: *admin_keys 0), FOTA_ECONFIG for another secret
 * (logged: "secret.key differs from the cluster's"), FOTA_EUNAVAIL. */
int fota_cluster_check(struct fota_server *srv, int *admin_keys);

/* A doorbell: a notification of one channel, or payload NULL after the
 * listener's connection was made again (notifications may have been missed
 * meanwhile: rescan the rows). Main loop. */
typedef void (*fota_cluster_cb)(struct fota_server *srv, const char *payload, void *ud);

#define FOTA_CLUSTER_SUBS_MAX 8

/* Listens on channel (docs/design/postgresql.md, section 4: fota_cmd,
 * fota_cmdack, fota_push, fota_rollout_ev, fota_msg, ...); cb runs on the
 * main loop for each notification, in order. Main loop, any time after the
 * cluster module started. 0 (also alone, where nothing is ever called),
 * FOTA_EINVAL for an empty or long name, FOTA_ETOOBIG past
 * FOTA_CLUSTER_SUBS_MAX. */
int fota_cluster_listen(struct fota_server *srv, const char *channel, fota_cluster_cb cb,
                        void *ud);

/* PostgreSQL's bound on a notification's payload, in bytes. */
#define FOTA_CLUSTER_PAYLOAD_MAX 8000

/* Notifies channel with payload from this instance's listener connection:
 * queued, sent by the listener thread in the order of the calls (and after
 * whatever the caller committed before the call). Every instance listening
 * on channel hears it, this one too. Any thread. 0 (also alone, where
 * nothing is sent), FOTA_EINVAL for an empty or long channel or a payload of
 * FOTA_CLUSTER_PAYLOAD_MAX bytes or more, FOTA_ETOOBIG while 4096 wait (the
 * listener has no connection). */
int fota_cluster_notify(struct fota_server *srv, const char *channel, const char *payload);

/* Lease `rollouts` (docs/scale-out.md): its epoch while this instance holds
 * it and its last renewal is recent enough that it cannot have expired
 * (the listener renews it with the heartbeat; a clean stop frees it), else
 * 0. Alone (SQLite) 1: the one fotad drives every rollout. Any
 * thread. */
int64_t fota_cluster_rollouts_epoch(const struct fota_server *srv);

/* 1 once after a heartbeat found this instance counted dead (another
 * instance's sweep took its devices' device_conn rows and marked them
 * offline while it still holds their connections): the device channel then
 * writes every connected device online again. 0 otherwise and alone. Any
 * thread. */
int fota_cluster_presence_lost(struct fota_server *srv);

/* This instance's id in the instances table; 0 alone. */
int64_t fota_cluster_instance_id(const struct fota_server *srv);

#endif
