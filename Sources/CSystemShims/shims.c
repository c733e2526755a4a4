#define _GNU_SOURCE
#include "CSystemShims.h"

#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>

struct epoll_event *cshims_epoll_events_allocate(int count) {
    return calloc((size_t)count, sizeof(struct epoll_event));
}

void cshims_epoll_events_free(struct epoll_event *events) { free(events); }

const char *cshims_strerror(int error) {
    // strerrordesc_np (glibc >= 2.32) returns a static string and is thread-safe; NULL for unknown values.
    const char *description = strerrordesc_np(error);
    return description != NULL ? description : "Unknown error";
}

int cshims_usable_cpu_count(void) {
    // The CPUs this process may run on (taskset, cgroup cpusets), not merely those online.
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return (int)sysconf(_SC_NPROCESSORS_ONLN);
    int count = CPU_COUNT(&set);
    return count > 0 ? count : 1;
}
