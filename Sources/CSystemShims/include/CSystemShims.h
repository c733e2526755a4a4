// Linux system interfaces that the Swift `Glibc` module does not import: epoll, eventfd,
// and the GNU-only `accept4` and `pthread_setname_np`. Everything macro-like or awkward to call
// from Swift (the packed `struct epoll_event` on x86_64) is wrapped in a `static inline` helper.
#ifndef CSYSTEMSHIMS_H
#define CSYSTEMSHIMS_H

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/// GNU extension: `accept` that sets `SOCK_NONBLOCK`/`SOCK_CLOEXEC` atomically on the new socket.
extern int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);

/// GNU extension: names a thread (at most 15 bytes plus NUL), visible in `top -H` and debuggers.
extern int pthread_setname_np(pthread_t thread, const char *name);

// MARK: - epoll

/// `epoll_ctl` with the event mask and 64-bit user token passed by value.
static inline int cshims_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event event;
    event.events = events;
    event.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &event);
}

/// Allocates an array of `count` epoll events for `epoll_wait`; release with `cshims_epoll_events_free`.
struct epoll_event *cshims_epoll_events_allocate(int count);

/// Releases an array from `cshims_epoll_events_allocate`.
void cshims_epoll_events_free(struct epoll_event *events);

/// The ready-event mask of element `index`.
static inline uint32_t cshims_epoll_event_mask(const struct epoll_event *events, int index) {
    return events[index].events;
}

/// The user token of element `index`.
static inline uint64_t cshims_epoll_event_token(const struct epoll_event *events, int index) {
    return events[index].data.u64;
}

static inline uint32_t cshims_epollin(void) { return EPOLLIN; }
static inline uint32_t cshims_epollout(void) { return EPOLLOUT; }
static inline uint32_t cshims_epollrdhup(void) { return EPOLLRDHUP; }
static inline uint32_t cshims_epollerr(void) { return EPOLLERR; }
static inline uint32_t cshims_epollhup(void) { return EPOLLHUP; }
static inline int cshims_epoll_cloexec(void) { return EPOLL_CLOEXEC; }

// MARK: - eventfd, sockets

static inline int cshims_efd_nonblock_cloexec(void) { return EFD_NONBLOCK | EFD_CLOEXEC; }
static inline int cshims_sock_nonblock_cloexec(void) { return SOCK_NONBLOCK | SOCK_CLOEXEC; }
static inline int cshims_sock_stream_cloexec(void) { return SOCK_STREAM | SOCK_CLOEXEC; }
static inline int cshims_msg_nosignal(void) { return MSG_NOSIGNAL; }

// MARK: - Socket calls without the cancellation point
//
// glibc's `recv`, `send`, `sendmsg` and `epoll_wait` are thread cancellation points: in a process with more than one
// thread each call switches the thread to asynchronous cancellation and back, two atomic updates of its cancel state
// (about 10 ns, and a barrier, per call; four calls per proxied request). No thread of ours is ever cancelled, so the
// event loops make the system calls through `syscall`, which is none. Same results and `errno` as the glibc calls.

/// `recv(2)`, not a cancellation point.
static inline ssize_t cshims_recv(int fd, void *buffer, size_t length, int flags) {
    return syscall(SYS_recvfrom, fd, buffer, length, flags, NULL, NULL);
}

/// `send(2)`, not a cancellation point.
static inline ssize_t cshims_send(int fd, const void *buffer, size_t length, int flags) {
    return syscall(SYS_sendto, fd, buffer, length, flags, NULL, 0);
}

/// `sendmsg(2)`, not a cancellation point.
static inline ssize_t cshims_sendmsg(int fd, const struct msghdr *message, int flags) {
    return syscall(SYS_sendmsg, fd, message, flags);
}

/// `epoll_wait(2)` (as `epoll_pwait` without a signal mask, which every architecture has), not a cancellation point.
static inline int cshims_epoll_wait(int epfd, struct epoll_event *events, int capacity, int timeout) {
    return (int)syscall(SYS_epoll_pwait, epfd, events, capacity, timeout, NULL, (size_t)8);
}

/// A thread-safe description of an errno value, e.g. "Address already in use".
const char *cshims_strerror(int error);

/// The number of CPUs this process may run on (its affinity mask), at least 1.
int cshims_usable_cpu_count(void);

#endif
