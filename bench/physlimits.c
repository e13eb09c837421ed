/* physlimits.c: measures the floor under any etcd-like server on this machine, in the same run
 * as the server benchmarks: 4 KiB write+fdatasync latency on the data disk, and loopback TCP
 * round trip. bench/run.sh compiles it into the cache dir; it is never part of cetcd. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* prints one machine-readable line: name ops mean_us p50_us p99_us ops_per_sec */
static void report(const char *name, double *lat, int n, double total)
{
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += lat[i];
    printf("%s ops=%d mean_us=%.1f p50_us=%.1f p99_us=%.1f ops_per_sec=%.1f\n", name, n,
           sum / n * 1e6, lat[n / 2] * 1e6, lat[(int)((n - 1) * 0.99)] * 1e6, n / total);
}

static int fsync_test(const char *dir, int n, int prealloc)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/physlimits-%d.tmp", dir, (int)getpid());
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    char buf[4096];
    memset(buf, 'x', sizeof buf);
    if (prealloc) {
        /* like etcd's WAL: the file is allocated and synced first, then overwritten in place */
        for (int i = 0; i < n; i++)
            if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) {
                perror("write");
                return 1;
            }
        fsync(fd);
        lseek(fd, 0, SEEK_SET);
    }
    double *lat = calloc((size_t)n, sizeof *lat);
    double t0 = now();
    for (int i = 0; i < n; i++) {
        double s = now();
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf || fdatasync(fd) != 0) {
            perror("write/fdatasync");
            return 1;
        }
        lat[i] = now() - s;
    }
    double total = now() - t0;
    close(fd);
    unlink(path);
    report(prealloc ? "fdatasync_overwrite_4k" : "fdatasync_append_4k", lat, n, total);
    free(lat);
    return 0;
}

static int tcp_test(int n)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1) ||
        getsockname(ls, (struct sockaddr *)&a, &al)) {
        perror("listen");
        return 1;
    }
    int one = 1;
    pid_t pid = fork();
    if (pid == 0) { /* echo server */
        int c = accept(ls, NULL, NULL);
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char b[64];
        ssize_t r;
        while ((r = read(c, b, sizeof b)) > 0)
            if (write(c, b, (size_t)r) != r)
                break;
        _exit(0);
    }
    close(ls);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&a, sizeof a)) {
        perror("connect");
        return 1;
    }
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    double *lat = calloc((size_t)n, sizeof *lat);
    char b[64] = {0};
    double t0 = now();
    for (int i = 0; i < n; i++) {
        double st = now();
        if (write(s, b, 32) != 32) {
            perror("write");
            return 1;
        }
        size_t got = 0;
        while (got < 32) {
            ssize_t r = read(s, b, 32 - got);
            if (r <= 0) {
                perror("read");
                return 1;
            }
            got += (size_t)r;
        }
        lat[i] = now() - st;
    }
    double total = now() - t0;
    close(s);
    waitpid(pid, NULL, 0);
    report("tcp_loopback_rtt", lat, n, total);
    free(lat);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s fsync DIR N | tcp N\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "fsync") == 0 && argc >= 4) {
        int n = atoi(argv[3]);
        return fsync_test(argv[2], n, 0) || fsync_test(argv[2], n, 1);
    }
    if (strcmp(argv[1], "tcp") == 0)
        return tcp_test(atoi(argv[2]));
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
}
