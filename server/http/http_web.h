/* http_web.h - serves the embedded web console (web/fota_web.h) over evhttp.
 * The HTTP router calls it for every path outside /v1/. */
#ifndef FOTA_HTTP_WEB_H
#define FOTA_HTTP_WEB_H

struct evhttp_request;

/* Answers req from the console's asset table: GET and HEAD of "/",
 * "/index.html" and every embedded asset, with Content-Type, a strong ETag
 * (If-None-Match → 304), Cache-Control: no-cache and a strict
 * Content-Security-Policy (the console loads nothing from elsewhere).
 * Unknown paths get 404, other methods 405. Always sends exactly one reply. */
void fota_http_web_serve(struct evhttp_request *req);

#endif
