#define _GNU_SOURCE
#include "CSystemShims.h"

#include <stdlib.h>
#include <string.h>

struct epoll_event *cshims_epoll_events_allocate(int count) {
    return calloc((size_t)count, sizeof(struct epoll_event));
}

void cshims_epoll_events_free(struct epoll_event *events) { free(events); }

const char *cshims_strerror(int error) {
    // strerrordesc_np (glibc >= 2.32) returns a static string and is thread-safe; NULL for unknown values.
    const char *description = strerrordesc_np(error);
    return description != NULL ? description : "Unknown error";
}
