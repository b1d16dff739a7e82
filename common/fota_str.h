/* fota_str.h - the one bounded string copy of every fota part (server, CLI,
 * device library). Portable C99, no allocation. */
#ifndef FOTA_STR_H
#define FOTA_STR_H

#include <stddef.h>

/* Copies src (NULL is taken as "") into dst of cap bytes, truncating, and
 * always NUL-terminates when cap > 0. Returns strlen(src): the copy was
 * truncated exactly when the result is >= cap (BSD strlcpy), so a caller that
 * must refuse long input checks that instead of copying twice. */
size_t fota_str_copy(char *dst, size_t cap, const char *src);

/* Same for a slice of n bytes that need not be NUL-terminated (NUL bytes in
 * it end the copy early). Returns n. */
size_t fota_str_copy_n(char *dst, size_t cap, const char *src, size_t n);

/* Copies the longest prefix of src[0, n) (NULL is "") made of whole, valid
 * UTF-8 characters that fits dst, stopping at a NUL or at the first byte
 * that breaks the encoding; always NUL-terminates when cap > 0. Returns the
 * bytes copied. For text that JSON shows (jansson refuses invalid UTF-8): a
 * value cut to its field never ends in half a character. */
size_t fota_str_copy_utf8(char *dst, size_t cap, const char *src, size_t n);

/* Copies the directory part of path, as fota_str_copy does: what precedes
 * its last '/', "/" when that slash is the first byte, "." when it has
 * none ("a/b" -> "a", "/b" -> "/", "b" -> "."). Returns the part's length
 * (the copy was truncated exactly when it is >= cap). */
size_t fota_str_copy_dir(char *dst, size_t cap, const char *path);

/* FNV-1a of the string s (NULL is ""), continuing from h: start with
 * FOTA_STR_HASH_SEED, or the seed mixed with a number the key also holds
 * (FOTA_STR_HASH_SEED ^ id). The slot hash of the daemon's small fixed
 * tables (per-loop caches, connection buckets); not for anything a client
 * could aim at a table that grows. */
#define FOTA_STR_HASH_SEED 2166136261u
unsigned fota_str_hash(unsigned h, const char *s);

/* The formatted message into err (errlen bytes, cut to fit), then returns
 * code: `return fota_str_err(err, errlen, FOTA_EIO, "cannot read %s", p);`. */
int fota_str_err(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
