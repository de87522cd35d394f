/* The floor under the "Rust-side CPU per no-op invocation" row: the least a server can do per
 * request on this machine. One thread, blocking calls, no parsing beyond finding the end of the
 * head: read a request from the client's TCP connection, pass a fixed event to a Python loop over a
 * Unix socketpair (bench/floor_worker.py: json.loads, json.dumps), read its answer, write the
 * response. Its CPU per request is the kernel's price of the two hops that smyth also makes.
 *
 * usage: floor PORT PYTHON WORKER_SCRIPT      (make bench builds and runs it; loopback only) */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char EVENT[] =
    "{\"version\":\"2.0\",\"rawPath\":\"/noop\",\"headers\":{},\"requestContext\":{\"http\":{\"method\":\"GET\"}},\"body\":null}";

static int read_full(int fd, char *buf, size_t n) {
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: floor PORT PYTHON WORKER_SCRIPT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) return perror("socketpair"), 1;
    pid_t worker = fork();
    if (worker == 0) {
        close(pair[0]);
        char fd[16];
        snprintf(fd, sizeof fd, "%d", pair[1]);
        execl(argv[2], argv[2], argv[3], fd, (char *)NULL);
        _exit(127);
    }
    close(pair[1]);
    int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 64) != 0)
        return perror("listen"), 1;
    static char in[65536], out[65536], head[128];
    uint32_t len = sizeof EVENT - 1;
    for (;;) {
        int client = accept(listener, NULL, NULL);
        if (client < 0) continue;
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        size_t have = 0;
        for (;;) {
            char *end = have ? memmem(in, have, "\r\n\r\n", 4) : NULL;
            if (!end) {
                ssize_t r = read(client, in + have, sizeof in - have);
                if (r <= 0) break;
                have += (size_t)r;
                continue;
            }
            size_t used = (size_t)(end + 4 - in);
            memmove(in, in + used, have - used);
            have -= used;
            /* One write each way: the length, then the event. */
            char msg[4 + sizeof EVENT];
            memcpy(msg, &len, 4);
            memcpy(msg + 4, EVENT, len);
            uint32_t n;
            if (write(pair[0], msg, 4 + len) < 0 || read_full(pair[0], (char *)&n, 4) || n > sizeof out ||
                read_full(pair[0], out, n))
                return 1;
            int h = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %u\r\n\r\n", n);
            static char reply[sizeof head + sizeof out];
            memcpy(reply, head, (size_t)h);
            memcpy(reply + h, out, n);
            if (write(client, reply, (size_t)h + n) < 0) break;
        }
        close(client);
    }
}
