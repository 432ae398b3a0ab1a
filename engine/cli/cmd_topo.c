/* cortado topo: the machine (or a synthetic topology) and the pool layout
 * the engine would use.
 *
 * Discovery goes through scheduler/topology.c (hwloc): NUMA nodes with
 * their cpusets, cores and PUs. --topology (or CT_TOPOLOGY) replaces the
 * machine with an hwloc synthetic description such as
 * "pack:2 numa:1 core:4 pu:1", so multi-node layouts can be inspected on
 * any machine; binding is then reported as skipped for CPUs that do not
 * exist here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/cli/cli_util.h"
#include "scheduler/topology.h"

static const char synopsis[] =
    "cortado topo [--topology DESC] [--threads N] [--openmp]";

static const char help[] =
    "usage: cortado topo [--topology DESC] [--threads N] [--openmp]\n"
    "\n"
    "Prints the detected topology (NUMA nodes, cores, PUs) and where the\n"
    "engine's pool would place N worker threads: one worker group per NUMA\n"
    "node, each worker pinned to a core.\n"
    "\n"
    "Options:\n"
    "  --topology DESC  an hwloc synthetic description instead of this\n"
    "                   machine, e.g. \"pack:2 numa:1 core:4 pu:1\"\n"
    "                   (default: $CT_TOPOLOGY, else the real machine)\n"
    "  -t, --threads N  threads to lay out (default: the online CPUs)\n"
    "  --openmp         bind each thread to its node's cpuset instead of\n"
    "                   one core (the layout used with --intra-op openmp)\n"
    "  -h, --help       show this help\n";

enum { OPT_TOPOLOGY = 1, OPT_THREADS, OPT_OPENMP, OPT_HELP };

static const struct ct__cli_opt opts[] = {
    {"topology", 0, true, OPT_TOPOLOGY},
    {"threads", 't', true, OPT_THREADS},
    {"openmp", 0, false, OPT_OPENMP},
    {"help", 'h', false, OPT_HELP},
    {NULL, 0, false, 0},
};

int ct__cli_cmd_topo(int argc, char **argv)
{
    struct ct__cli_parser p;
    struct ct__topology *topo = NULL;
    struct ct__layout *layout = NULL;
    const char *val, *desc = NULL;
    long long threads = 0;
    unsigned flags = 0;
    ct_status_t st;
    int id, rc;

    ct__cli_parser_init(&p, argc, argv, "topo", synopsis, opts);
    while ((id = ct__cli_next(&p, &val)) != CT_CLI_END) {
        switch (id) {
        case CT_CLI_BAD:
            return CT_CLI_EXIT_USAGE;
        case OPT_HELP:
            fputs(help, stdout);
            return CT_CLI_EXIT_OK;
        case OPT_TOPOLOGY:
            desc = val;
            break;
        case OPT_THREADS:
            if (!ct__cli_parse_int(&p, "--threads", val, 1, 65536, &threads))
                return CT_CLI_EXIT_USAGE;
            break;
        case OPT_OPENMP:
            flags |= CT__LAYOUT_NODE_CPUSET;
            break;
        case CT_CLI_POSITIONAL:
            return ct__cli_usage_error(&p, "unexpected argument '%s'", val);
        }
    }
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? n : 1;
    }
    ct_status_clear(&st);
    rc = ct__topology_new(desc, 0, &topo, &st);
    if (rc != CT_OK)
        return ct__cli_status_error(&st, rc, "topology");
    rc = ct__topology_layout(topo, (int)threads, flags, &layout, &st);
    if (rc == CT_OK)
        rc = ct__topology_print(topo, layout, stdout);
    ct__layout_free(layout);
    ct__topology_free(topo);
    if (rc != CT_OK)
        return ct__cli_status_error(&st, rc, "layout");
    return CT_CLI_EXIT_OK;
}
