/* cortado benchmarks: shared command line, timing and reporting. */
#ifndef CT_PERF_PERF_UTIL_H
#define CT_PERF_PERF_UTIL_H

#include <stdbool.h>
#include <stdint.h>

/* STYLE §10 flags. */
struct bench_opts {
    bool smoke;  /* tiny counts, for CI */
    bool json;   /* one JSON object per line and case */
    int warmup;  /* untimed runs before timing */
    int iters;   /* timed repetitions (median reported) */
    int threads; /* 0 = engine default */
};

/* Parses argv; prints usage and exits 2 on a bad flag (benchmarks are
 * programs, not library code). */
void bench_parse(int argc, char **argv, struct bench_opts *o,
                 const char *usage_extra);
uint64_t bench_now_ns(void);
/* Median of n values (sorts in place). */
double bench_median(double *v, int n);
/* Prints the machine, compiler and flags once (stderr in JSON mode). */
void bench_print_env(const struct bench_opts *o);
/* Keeps values alive so the compiler cannot drop the work. */
extern volatile double bench_sink;

#endif /* CT_PERF_PERF_UTIL_H */
