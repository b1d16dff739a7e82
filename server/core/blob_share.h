/* blob_share.h - release files shared by several fotad instances through a
 * store that keeps them (PostgreSQL: store.h blob_put / blob_fetch). Each
 * instance keeps its verified copy in DATA/blobs (blob.h), which downloads
 * send with sendfile as on one machine. */
#ifndef FOTA_BLOB_SHARE_H
#define FOTA_BLOB_SHARE_H

struct fota_server;

/* With a store that keeps blobs: makes it the blob store's remote (uploads
 * go there too; a missing blob is copied from it by fota_blob_fill) and
 * submits one store job that copies every blob a release names and DATA/blobs
 * lacks, one after the other (logged: `shared blobs prefetched copied=N
 * failed=N referenced=N`). Without such a store: nothing. Call at start-up,
 * after the store, its executor and the blob store are open. */
void fota_blob_share_start(struct fota_server *srv);

#endif
