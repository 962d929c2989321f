/* xalloc: allocation that succeeds or aborts. Every input Roost reads is
 * bounded, so running out of memory is a bug or a broken machine, never a
 * condition callers handle. Size arithmetic is checked here too. */
#ifndef ROOST_XALLOC_H
#define ROOST_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh allocation. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* a * b, aborting on overflow. */
size_t xmul(size_t a, size_t b);

#endif
