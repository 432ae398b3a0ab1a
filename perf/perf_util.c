/* cortado benchmarks: shared helpers (see perf_util.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "perf_util.h"

volatile double bench_sink;

static void usage(const char *prog, const char *extra)
{
    fprintf(stderr,
            "usage: %s [--smoke] [--json] [--warmup N] [--iters N] "
            "[--threads N]%s\n",
            prog, extra ? extra : "");
    exit(2);
}

void bench_parse(int argc, char **argv, struct bench_opts *o,
                 const char *usage_extra)
{
    int i;
    memset(o, 0, sizeof(*o));
    o->warmup = 3;
    o->iters = 15;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--smoke") == 0) {
            o->smoke = true;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--warmup") == 0 && i + 1 < argc) {
            o->warmup = atoi(argv[++i]);
        } else if (strcmp(a, "--iters") == 0 && i + 1 < argc) {
            o->iters = atoi(argv[++i]);
        } else if (strcmp(a, "--threads") == 0 && i + 1 < argc) {
            o->threads = atoi(argv[++i]);
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(argv[0], usage_extra);
        } else {
            fprintf(stderr, "%s: unknown argument '%s'\n", argv[0], a);
            usage(argv[0], usage_extra);
        }
    }
    if (o->iters < 1 || o->warmup < 0 || o->threads < 0)
        usage(argv[0], usage_extra);
    if (o->smoke) {
        o->warmup = 1;
        o->iters = 3;
    }
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void bench_print_env(const struct bench_opts *o)
{
    FILE *f = o->json ? stderr : stdout;
    fprintf(f, "# machine: %ld cpus; compiler: %s; flags: %s\n",
            sysconf(_SC_NPROCESSORS_ONLN),
#ifdef __clang__
            "clang " __clang_version__,
#else
            "gcc " __VERSION__,
#endif
#ifdef __OPTIMIZE__
            "optimized"
#else
            "unoptimized"
#endif
    );
}
