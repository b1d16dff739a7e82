/* reply.h - what a REST call brought back (struct fota_cli_reply, filled by
 * cli/api.h) and how fotactl reads it: the server's message, the list or
 * object inside the JSON. */
#ifndef FOTA_CLI_REPLY_H
#define FOTA_CLI_REPLY_H

#include <stddef.h>
#include <jansson.h>

/* status is the HTTP status (0 when no reply arrived: then transport holds
 * one sentence such as "cannot connect to http://h:p (connection
 * refused)"). json is the parsed body when it was JSON, body the raw bytes
 * (NUL-terminated); both owned: fota_cli_reply_cleanup frees them. */
struct fota_cli_reply {
    long status;
    json_t *json;
    char *body;
    size_t len;
    int stream_ended;   /* fota_cli_api_stream: the server closed the event stream */
    char transport[1024];
};

/* Frees json and body (r may be NULL; cleaning twice is harmless). */
void fota_cli_reply_cleanup(struct fota_cli_reply *r);

/* The server's "message" (or "error") string in the reply, or NULL. */
const char *fota_cli_reply_message(const struct fota_cli_reply *r);

/* The list in a reply: member name if it is an array, else the reply itself
 * if it is an array, else its first array member; NULL if none. Borrowed. */
json_t *fota_cli_reply_array(json_t *reply, const char *name);

/* Member name if it is an object, else the reply itself. Borrowed. */
json_t *fota_cli_reply_object(json_t *reply, const char *name);

#endif
