/* rpc.h - REST endpoints that deliver commands to devices (installed by the
 * device module over the daemon's routes): GET /v1/device/rpc/?deliver_to_device=true
 * &action=A[&version=V][&device_id=ID][&queue=false][&timeout=S] and
 * GET|POST /v1/datastreams/NAME/datapoint/?deliver_to_device=true.
 * Replies: 200 with the device's reply (and "command"), 202 queued (device
 * offline), 409 offline with queue=false, 504 no reply in time, 404 unknown
 * device or release, 400/401/403 bad requests and keys. */
#ifndef FOTA_RPC_H
#define FOTA_RPC_H

struct fota_devchan;
struct fota_rpc;
struct fota_server;

/* The REST side of channel ch: adds the routes (they win over earlier ones).
 * NULL if they cannot be added. */
struct fota_rpc *fota_rpc_new(struct fota_server *srv, struct fota_devchan *ch);
/* SIGTERM: answers every waiting RPC with 503 (the loop still runs). NULL-safe. */
void fota_rpc_drain(struct fota_rpc *rpc);
/* Frees what is left at stop (no replies: the HTTP server is gone). NULL-safe. */
void fota_rpc_free(struct fota_rpc *rpc);

#endif
