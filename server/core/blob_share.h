/* blob_share.h - release files shared by several fotad instances through a
 * store that keeps them (PostgreSQL: store.h blob_put / blob_fetch). Each
 * instance keeps its verified copy in DATA/blobs (blob.h), which downloads
 * send with sendfile as on one machine. */
#ifndef FOTA_BLOB_SHARE_H
#define FOTA_BLOB_SHARE_H

struct fota_server;
struct fota_blob_share;

/* With a store that keeps blobs: makes it the blob store's remote (uploads
 * go there too; a missing blob is copied from it by fota_blob_fill) and
 * submits a store job that copies every blob a release names and DATA/blobs
 * lacks, one after the other (logged: `shared blobs prefetched copied=N
 * failed=N referenced=N`); again, once a second at most, whenever the
 * catalog generation moved since the last round began (a release made on
 * another instance), so its files are here before its first download.
 * Without such a store: nothing (*out NULL). Main loop, after the store,
 * its executor and the blob store are open, before the executor's first
 * other job if the ops may still be wrapped. 0 or FOTA_ENOMEM. */
int fota_blob_share_start(struct fota_server *srv, struct fota_blob_share **out);
/* Stops the rounds (one running finishes; its continuation is cancelled
 * with the loop). NULL-safe. Call before the executor is freed. */
void fota_blob_share_stop(struct fota_blob_share *bs);

#endif
