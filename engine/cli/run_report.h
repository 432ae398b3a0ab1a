/* cortado CLI internal: what `cortado run` adds around a run: observers
 * (--observe), stat files (--stats-json / --stats-prom) and the profile
 * report (--profile). Kept apart from cmd_run.c so each file stays one
 * concern. */
#ifndef CT_ENGINE_CLI_RUN_REPORT_H
#define CT_ENGINE_CLI_RUN_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cortado/engine.h"
#include "cortado/error.h"
#include "cortado/net.h"

/* Creates each spec's observer and attaches it to net (the net owns
 * them). The first failure is returned with the spec named in st. */
int ct__run_attach_observers(ct_engine_t *eng, ct_net_t *net,
                             const char *const *specs, size_t n,
                             ct_status_t *st);
/* Writes every observer's files now (so an I/O error is an exit status)
 * and, unless quiet, prints each one's description. */
int ct__run_flush_observers(ct_net_t *net, bool quiet, ct_status_t *st);
/* Writes the engine's stat registry (cumulative, no reset) to the JSON
 * and Prometheus files that are not NULL, each replaced atomically. */
int ct__run_write_stats(ct_engine_t *eng, const char *json, const char *prom,
                        ct_status_t *st);
/* Prints the --profile report: wall time, critical path, parallel
 * efficiency, tasks and mean ready->start latency, kernel vs overhead
 * time, and time per op type, most expensive first. */
int ct__run_print_profile(const ct_net_t *net, FILE *f, ct_status_t *st);

#endif /* CT_ENGINE_CLI_RUN_REPORT_H */
