/* The load side of scripts/bench-llm in C (the Python upstream and client top out near 16,000 chunks/s together on
 * one core; the target is 100,000 chunks/s through the proxy). One program, two modes, each one thread on
 * epoll, loopback only:
 *
 *   bench-llm-load upstream PORT
 *     An OpenAI-compatible streaming upstream on 127.0.0.1:PORT: every request (POST, Content-Length body, keep-alive)
 *     is answered `text/event-stream`, chunked: CHUNKS `data: {chat.completion.chunk}\n\n` events, one HTTP chunk and
 *     one write() each, carrying "x_ts" (CLOCK_MONOTONIC ns, taken just before the write), GAP_US apart (an absolute
 *     schedule from the request's arrival; 0: as fast as the loop goes, streams taking turns), then a finish chunk,
 *     `data: [DONE]` and the last chunk. CHUNKS and GAP_US come from the request header `X-Bench: CHUNKS GAP_US`.
 *
 *   bench-llm-load client PORT STREAMS CHUNKS GAP_US OUTFILE
 *     STREAMS connections to 127.0.0.1:PORT, their starts spread over max(GAP_US, 10 ms), one streamed request each;
 *     for every event with "x_ts", the latency (the time the read that completed it returned, minus x_ts, ns) is
 *     written to OUTFILE (int64 native order). Prints `streams=S complete=C events=E wall_ns=W` on stdout; exits 1
 *     unless every stream was a 200 with CHUNKS events and a clean end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF 65536
#define MAXCONN 4096

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void nonblock(int fd) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* ------------------------------------------------------------------------------------------------ upstream */

struct up {
    int fd;
    char in[BUF];
    size_t inlen;
    char out[BUF];
    size_t outlen, outoff;
    int streaming; /* 0: reading a request; 1: sending events; 2: tail (finish, DONE, last chunk) queued */
    long chunks, sent;
    int64_t gap, due;
};

static struct up *ups[MAXCONN];

static int up_flush(struct up *u) {
    while (u->outoff < u->outlen) {
        ssize_t n = write(u->fd, u->out + u->outoff, u->outlen - u->outoff);
        if (n < 0) {
            if (errno == EAGAIN) return 0;
            return -1;
        }
        u->outoff += (size_t)n;
    }
    u->outlen = u->outoff = 0;
    return 1;
}

static void up_append(struct up *u, const char *data, size_t n) {
    if (u->outlen + n > BUF) { fprintf(stderr, "output buffer full\n"); exit(2); }
    memcpy(u->out + u->outlen, data, n);
    u->outlen += n;
}

static void up_chunk(struct up *u, const char *data, size_t n) {
    char size[16];
    int k = snprintf(size, sizeof size, "%zx\r\n", n);
    up_append(u, size, (size_t)k);
    up_append(u, data, n);
    up_append(u, "\r\n", 2);
}

static void up_event(struct up *u) {
    char ev[512];
    int n = snprintf(ev, sizeof ev,
                     "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":0,"
                     "\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok%ld \"},"
                     "\"logprobs\":null,\"finish_reason\":null}],\"x_ts\":%lld}\n\n",
                     u->sent, (long long)now_ns());
    up_chunk(u, ev, (size_t)n);
    u->sent++;
}

static void up_tail(struct up *u) {
    static const char finish[] =
        "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"bench-model\","
        "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n";
    static const char done[] = "data: [DONE]\n\n";
    up_chunk(u, finish, sizeof finish - 1);
    up_chunk(u, done, sizeof done - 1);
    up_append(u, "0\r\n\r\n", 5);
    u->streaming = 2;
}

/* A complete request in u->in: start its stream. Returns 0 when more bytes are needed. */
static int up_request(struct up *u) {
    char *end = memmem(u->in, u->inlen, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = (size_t)(end - u->in) + 4;
    long length = 0;
    char *cl = memmem(u->in, head, "Content-Length:", 15);
    if (!cl) cl = memmem(u->in, head, "content-length:", 15);
    if (cl) length = strtol(cl + 15, NULL, 10);
    if (u->inlen < head + (size_t)length) return 0;
    u->chunks = 500;
    long gap_us = 0;
    char *xb = memmem(u->in, head, "X-Bench:", 8);
    if (!xb) xb = memmem(u->in, head, "x-bench:", 8);
    if (xb) {
        char *p = xb + 8;
        u->chunks = strtol(p, &p, 10);
        gap_us = strtol(p, &p, 10);
    }
    memmove(u->in, u->in + head + length, u->inlen - head - (size_t)length);
    u->inlen -= head + (size_t)length;
    static const char h[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
                            "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
    up_append(u, h, sizeof h - 1);
    u->streaming = 1;
    u->sent = 0;
    u->gap = (int64_t)gap_us * 1000;
    u->due = now_ns();
    return 1;
}

static void up_close(int ep, struct up *u) {
    epoll_ctl(ep, EPOLL_CTL_DEL, u->fd, NULL);
    close(u->fd);
    ups[u->fd] = NULL;
    free(u);
}

static int upstream(int port) {
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = loopback(port);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 4096)) die("bind/listen");
    fcntl(ls, F_SETFL, O_NONBLOCK);
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &e);
    printf("listening 127.0.0.1:%d\n", port);
    fflush(stdout);
    struct epoll_event evs[256];
    for (;;) {
        /* The earliest due stream (a stream whose output is blocked waits for EPOLLOUT instead). */
        int64_t t = now_ns(), soonest = -1;
        for (int fd = 0; fd < MAXCONN; fd++) {
            struct up *u = ups[fd];
            if (u && u->streaming == 1 && u->outlen == 0 && (soonest < 0 || u->due < soonest)) soonest = u->due;
        }
        int timeout = soonest < 0 ? 1000 : (soonest <= t ? 0 : (int)((soonest - t + 999999) / 1000000));
        int n = epoll_wait(ep, evs, 256, timeout);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept(ls, NULL, NULL)) >= 0) {
                    if (c >= MAXCONN) { close(c); continue; }
                    nonblock(c);
                    struct up *u = calloc(1, sizeof *u);
                    u->fd = c;
                    ups[c] = u;
                    struct epoll_event ce = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            struct up *u = ups[fd];
            if (!u) continue;
            if (evs[i].events & EPOLLIN) {
                for (;;) {
                    ssize_t r = read(fd, u->in + u->inlen, BUF - u->inlen);
                    if (r > 0) { u->inlen += (size_t)r; continue; }
                    if (r == 0 || errno != EAGAIN) { up_close(ep, u); u = NULL; }
                    break;
                }
                if (!u) continue;
                if (u->streaming == 0 && up_request(u) && up_flush(u) < 0) { up_close(ep, u); continue; }
            }
            if ((evs[i].events & EPOLLOUT) && u->outlen) {
                if (up_flush(u) < 0) { up_close(ep, u); continue; }
            }
        }
        /* Every due stream writes one event (streams take turns: one event each per pass). */
        t = now_ns();
        for (int fd = 0; fd < MAXCONN; fd++) {
            struct up *u = ups[fd];
            if (!u || u->outlen) continue;
            if (u->streaming == 1 && u->due <= t) {
                up_event(u);
                u->due += u->gap;
                if (u->sent == u->chunks) up_tail(u);
                int f = up_flush(u);
                if (f < 0) { up_close(ep, u); continue; }
            }
            if (u->streaming == 2 && u->outlen == 0) {
                u->streaming = 0;
                if (u->inlen && up_request(u) && up_flush(u) < 0) up_close(ep, u);
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------ client */

struct cl {
    int fd, status, done, complete;
    long events;
    char in[BUF];
    size_t inlen;
};

static int client(int port, int streams, long chunks, long gap_us, const char *outfile) {
    FILE *out = fopen(outfile, "wb");
    if (!out) die(outfile);
    int ep = epoll_create1(0);
    struct cl *cs = calloc((size_t)streams, sizeof *cs);
    int64_t spread = (gap_us > 10000 ? gap_us : 10000) * 1000LL, t0 = now_ns();
    int started = 0, finished = 0;
    char req[512];
    static const char body[] = "{\"model\":\"bench-model\",\"messages\":[{\"role\":\"user\",\"content\":\"bench\"}],"
                               "\"stream\":true}";
    int reqlen = snprintf(req, sizeof req,
                          "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json"
                          "\r\nContent-Length: %zu\r\nX-Bench: %ld %ld\r\n\r\n%s",
                          port, sizeof body - 1, chunks, gap_us, body);
    int64_t deadline = t0 + (int64_t)(chunks * gap_us * 3 / 1000 + 120000) * 1000000;
    static int64_t lat[BUF];
    size_t nlat = 0;
    struct epoll_event evs[256];
    while (finished < streams) {
        int64_t t = now_ns();
        if (t > deadline) { fprintf(stderr, "deadline passed\n"); break; }
        while (started < streams && t >= t0 + spread * started / streams) {
            struct cl *c = &cs[started];
            c->fd = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in a = loopback(port);
            if (connect(c->fd, (struct sockaddr *)&a, sizeof a)) die("connect");
            nonblock(c->fd);
            if (write(c->fd, req, (size_t)reqlen) != reqlen) die("write request");
            struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)started};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
            started++;
        }
        int timeout = started < streams ? 1 : 1000;
        int n = epoll_wait(ep, evs, 256, timeout);
        for (int i = 0; i < n; i++) {
            struct cl *c = &cs[evs[i].data.u32];
            for (;;) {
                ssize_t r = read(c->fd, c->in + c->inlen, BUF - c->inlen);
                int64_t at = now_ns();
                if (r <= 0) {
                    if (r < 0 && errno == EAGAIN) break;
                    c->done = 1; /* closed before the end */
                    break;
                }
                c->inlen += (size_t)r;
                char *p = c->in, *end = c->in + c->inlen;
                if (!c->status) {
                    char *h = memmem(p, c->inlen, "\r\n\r\n", 4);
                    if (!h) continue;
                    c->status = atoi(p + 9);
                    p = h + 4;
                }
                for (;;) {
                    char *ev = memmem(p, (size_t)(end - p), "\n\n", 2);
                    if (!ev) break;
                    char *ts = memmem(p, (size_t)(ev - p), "\"x_ts\":", 7);
                    if (ts) {
                        lat[nlat++] = at - strtoll(ts + 7, NULL, 10);
                        if (nlat == BUF) { fwrite(lat, sizeof lat[0], nlat, out); nlat = 0; }
                        c->events++;
                    } else if (memmem(p, (size_t)(ev - p), "[DONE]", 6)) {
                        c->complete = 1;
                    }
                    p = ev + 2;
                }
                size_t rest = (size_t)(end - p);
                memmove(c->in, p, rest);
                c->inlen = rest;
                if (c->complete && memmem(c->in, c->inlen, "0\r\n\r\n", 5)) { c->done = 1; c->complete = 2; }
                if (c->done) break;
            }
            if (c->done) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                finished++;
                c->done = 2;
            }
        }
    }
    int64_t wall = now_ns() - t0;
    fwrite(lat, sizeof lat[0], nlat, out);
    fclose(out);
    int good = 0;
    long events = 0;
    for (int i = 0; i < streams; i++) {
        events += cs[i].events;
        if (cs[i].status == 200 && cs[i].events == chunks && cs[i].complete == 2) good++;
    }
    printf("streams=%d complete=%d events=%ld wall_ns=%lld\n", streams, good, events, (long long)wall);
    return good == streams ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "upstream")) return upstream(atoi(argv[2]));
    if (argc == 7 && !strcmp(argv[1], "client"))
        return client(atoi(argv[2]), atoi(argv[3]), atol(argv[4]), atol(argv[5]), argv[6]);
    fprintf(stderr, "usage: %s upstream PORT | client PORT STREAMS CHUNKS GAP_US OUTFILE\n", argv[0]);
    return 2;
}
