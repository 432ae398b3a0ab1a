/* cortado run: observers, stat files and the profile report. */
#include <stdlib.h>
#include <string.h>

#include "cortado/observer.h"
#include "cortado/stats.h"
#include "engine/cli/cli_util.h"
#include "engine/cli/run_report.h"

int ct__run_attach_observers(ct_engine_t *eng, ct_net_t *net,
                             const char *const *specs, size_t n,
                             ct_status_t *st)
{
    size_t i;

    for (i = 0; i < n; i++) {
        ct_observer_t *obs = NULL;
        int rc = ct_observer_create_from_spec(eng, specs[i], &obs, st);
        if (rc == CT_OK)
            rc = ct_net_add_observer(net, obs, st); /* net owns obs */
        if (rc != CT_OK) {
            ct_observer_free(obs);
            ct_status_prefix(st, "--observe %s: ", specs[i]);
            return rc;
        }
    }
    return CT_OK;
}

int ct__run_flush_observers(ct_net_t *net, bool quiet, ct_status_t *st)
{
    int i, rc;

    for (i = 0; i < ct_net_n_observers(net); i++) {
        ct_observer_t *obs = ct_net_get_observer(net, i);
        char *text = NULL;
        rc = ct_observer_flush(obs, st);
        if (rc != CT_OK)
            return rc;
        if (!quiet && ct_observer_describe(obs, &text, st) == CT_OK &&
            text != NULL) {
            fputs(text, stdout);
            ct_free(text);
        }
    }
    return CT_OK;
}

int ct__run_write_stats(ct_engine_t *eng, const char *json, const char *prom,
                        ct_status_t *st)
{
    ct_stat_registry_t *reg = ct_engine_stats(eng);
    int rc = CT_OK;

    if (json == NULL && prom == NULL)
        return CT_OK;
    rc = ct_engine_update_stats(eng, st);
    if (rc == CT_OK && json != NULL) {
        rc = ct_stat_registry_write_json_file(reg, json, false, st);
        if (rc != CT_OK)
            ct_status_prefix(st, "--stats-json %s: ", json);
    }
    if (rc == CT_OK && prom != NULL) {
        rc = ct_stat_registry_write_prom_file(reg, prom, false, st);
        if (rc != CT_OK)
            ct_status_prefix(st, "--stats-prom %s: ", prom);
    }
    return rc;
}

struct type_time {
    const char *type;
    uint64_t ns;
    int n_ops;
};

static int by_time_desc(const void *a, const void *b)
{
    const struct type_time *x = a, *y = b;
    return (x->ns < y->ns) - (x->ns > y->ns);
}

int ct__run_print_profile(const ct_net_t *net, FILE *f, ct_status_t *st)
{
    struct ct_net_profile p;
    struct type_time *tt;
    int i, k, n_types = 0, rc;
    char d0[32], d1[32], d2[32];
    double runs;

    rc = ct_net_get_profile(net, &p, st);
    if (rc != CT_OK)
        return rc;
    runs = p.runs > 0 ? (double)p.runs : 1.0;
    tt = calloc((size_t)ct_net_n_ops(net) + 1, sizeof(*tt));
    if (tt == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    for (i = 0; i < ct_net_n_ops(net); i++) {
        const char *type = ct_net_op_type(net, i);
        uint64_t ns = 0;
        ct_net_op_time_ns(net, i, &ns);
        for (k = 0; k < n_types; k++)
            if (strcmp(tt[k].type, type) == 0)
                break;
        if (k == n_types) {
            tt[k].type = type;
            n_types++;
        }
        tt[k].ns += ns;
        tt[k].n_ops++;
    }
    qsort(tt, (size_t)n_types, sizeof(*tt), by_time_desc);
    fprintf(f, "profile (%llu runs, %d thread%s, means per run)\n",
            (unsigned long long)p.runs, p.threads, p.threads == 1 ? "" : "s");
    fprintf(f, "  %-22s %s\n", "wall time",
            ct__cli_fmt_duration((double)p.wall_ns / runs, d0, sizeof(d0)));
    fprintf(f, "  %-22s %s (the bound with unlimited threads)\n",
            "critical path",
            ct__cli_fmt_duration((double)p.critical_path_ns / runs, d0,
                                 sizeof(d0)));
    fprintf(f, "  %-22s %.1f%% (kernel work, all threads / (wall x threads))\n",
            "parallel efficiency", 100.0 * p.parallel_efficiency);
    fprintf(f, "  %-22s %s in kernels, %s in tasks outside kernels\n",
            "time, all threads",
            ct__cli_fmt_duration((double)p.kernel_ns / runs, d0, sizeof(d0)),
            ct__cli_fmt_duration((double)p.overhead_ns / runs, d1, sizeof(d1)));
    fprintf(f, "  %-22s %s by other threads inside ops, %s waiting for them\n",
            "intra-op help",
            ct__cli_fmt_duration((double)p.intra_op_ns / runs, d0, sizeof(d0)),
            ct__cli_fmt_duration((double)p.intra_op_wait_ns / runs, d1,
                                 sizeof(d1)));
    fprintf(f, "  %-22s %.0f per run, mean ready->start latency %s\n", "tasks",
            (double)p.n_tasks / runs,
            ct__cli_fmt_duration(p.n_tasks > 0 ? (double)p.ready_latency_ns /
                                                     (double)p.n_tasks
                                               : 0.0,
                                 d2, sizeof(d2)));
    fprintf(f, "  %-22s %6s %12s %7s\n", "op type", "ops", "time/run", "share");
    for (k = 0; k < n_types; k++)
        fprintf(f, "  %-22s %6d %12s %6.1f%%\n", tt[k].type, tt[k].n_ops,
                ct__cli_fmt_duration((double)tt[k].ns / runs, d0, sizeof(d0)),
                p.kernel_ns > 0 ? 100.0 * (double)tt[k].ns / (double)p.kernel_ns
                                : 0.0);
    free(tt);
    return CT_OK;
}
