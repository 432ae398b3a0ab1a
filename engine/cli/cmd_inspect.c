/* cortado inspect: a summary of a NetDef file.
 *
 * Everything is computed from the NetDef alone, without creating ops, so
 * nets whose op types cortado does not implement yet (Conv, SpatialBN ...)
 * are summarised too: the chain structure comes from engine/graph.h (the
 * same dependency graph and chain fusion ct_net_new uses), the checks
 * from ct__netdef_validate, and the op registry only says which types
 * `cortado run` could not execute yet.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/net.h"
#include "cortado/proto.h"
#include "cortado/storage.h"
#include "engine/cli/cli_util.h"
#include "engine/graph.h"
#include "engine/strmap.h"
#include "ops/op_impl.h"
#include "proto/caffe2.pb-c.h"

static const char synopsis[] = "cortado inspect FILE [--chains] [--all]";

static const char help[] =
    "usage: cortado inspect FILE [--chains] [--all]\n"
    "\n"
    "Summarizes a Caffe2 NetDef (.pb or .pbtxt, detected by content): name,\n"
    "type and executor, num_workers, op count, ops by type (most frequent\n"
    "first), external inputs and outputs, distinct blobs, the net checks\n"
    "cortado runs before compiling, op types cortado does not implement\n"
    "yet, and the chain structure (linear runs of ops fused into one task\n"
    "by the dag executor). Works without creating any op.\n"
    "FILE may also be a minidb file or an lmdb directory: lists its blobs\n"
    "with type, dtype, shape, chunk count and size, and the manifest / CRC\n"
    "status.\n"
    "\n"
    "Options:\n"
    "  --chains     list every chain with all its ops (default: only when\n"
    "               there are <= 16, long chains cut)\n"
    "  --all        list every external input/output and op of each chain\n"
    "  -h, --help   show this help\n";

enum { OPT_CHAINS = 1, OPT_ALL, OPT_HELP };

static const struct ct__cli_opt opts[] = {
    {"chains", 0, false, OPT_CHAINS},
    {"all", 0, false, OPT_ALL},
    {"help", 'h', false, OPT_HELP},
    {NULL, 0, false, 0},
};

/* Short lists are printed whole; longer ones are cut here unless --all. */
#define SHORT_LIST 8
#define SHORT_CHAIN_LIST 16

struct type_count {
    const char *type; /* borrowed from the map */
    uintptr_t n;
};

static int by_count(const void *a, const void *b)
{
    const struct type_count *x = a, *y = b;

    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return strcmp(x->type, y->type);
}

static const char *op_type(const Caffe2__OperatorDef *op)
{
    return op->type != NULL && op->type[0] != '\0' ? op->type : "(no type)";
}

static void print_names(const char *label, char *const *names, size_t n,
                        bool all)
{
    size_t i, shown = all || n <= SHORT_LIST ? n : SHORT_LIST - 2;

    printf("%-17s %zu", label, n);
    for (i = 0; i < shown; i++)
        printf("%s%s", i ? ", " : ": ", names[i]);
    if (shown < n)
        printf(", ... (%zu more; --all lists them)", n - shown);
    putchar('\n');
}

/* Counts ops per type; *out is sorted by count, then name. */
static int count_types(const ct_netdef_t *def, struct ct__strmap *map,
                       struct type_count **out, size_t *n_out)
{
    struct type_count *tc;
    size_t i, it = 0, k = 0;
    const char *key;
    void *val;

    for (i = 0; i < def->n_op; i++) {
        const char *t = op_type(def->op[i]);
        uintptr_t c = (uintptr_t)ct__strmap_get(map, t);
        void *old;
        if (ct__strmap_put(map, t, (void *)(c + 1), &old) != CT_OK)
            return CT_ENOMEM;
    }
    tc = calloc(ct__strmap_size(map) + 1, sizeof(*tc));
    if (tc == NULL)
        return CT_ENOMEM;
    while (ct__strmap_next(map, &it, &key, &val)) {
        tc[k].type = key;
        tc[k].n = (uintptr_t)val;
        k++;
    }
    qsort(tc, k, sizeof(*tc), by_count);
    *out = tc;
    *n_out = k;
    return CT_OK;
}

static int add_names(struct ct__strmap *set, char *const *names, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        void *old;
        if (ct__strmap_put(set, names[i], NULL, &old) != CT_OK)
            return CT_ENOMEM;
    }
    return CT_OK;
}

static int count_blobs(const ct_netdef_t *def, size_t *n)
{
    struct ct__strmap set = CT__STRMAP_INIT;
    size_t i;
    int rc;

    rc = add_names(&set, def->external_input, def->n_external_input);
    if (rc == CT_OK)
        rc = add_names(&set, def->external_output, def->n_external_output);
    for (i = 0; rc == CT_OK && i < def->n_op; i++) {
        const Caffe2__OperatorDef *op = def->op[i];
        rc = add_names(&set, op->input, op->n_input);
        if (rc == CT_OK)
            rc = add_names(&set, op->output, op->n_output);
        if (rc == CT_OK)
            rc = add_names(&set, op->control_input, op->n_control_input);
    }
    *n = ct__strmap_size(&set);
    ct__strmap_destroy(&set, NULL);
    return rc;
}

static void print_type_line(const ct_netdef_t *def, const char *file,
                            enum ct_proto_format fmt, size_t size)
{
    enum ct_executor ex;

    printf("%-17s %s (%s, %zu bytes)\n", "file", file, ct__cli_format_name(fmt),
           size);
    printf("%-17s %s\n", "name",
           def->name != NULL && def->name[0] != '\0' ? def->name : "(unnamed)");
    if (def->type == NULL || def->type[0] == '\0')
        printf("%-17s (unset) -> simple executor\n", "type");
    else if (ct_executor_from_net_type(def->type, &ex, NULL) == CT_OK)
        printf("%-17s %s -> %s executor\n", "type", def->type,
               ct_executor_name(ex));
    else
        printf("%-17s %s -> unknown net type (ct_net_new will refuse it)\n",
               "type", def->type);
    if (def->has_num_workers)
        printf("%-17s %d\n", "num_workers", (int)def->num_workers);
    else
        printf("%-17s (unset)\n", "num_workers");
}

static void print_chain(const ct_netdef_t *def, const struct ct__graph *g,
                        int c, bool all)
{
    const int *ops = g->chain_ops + g->chain_off[c];
    int n = g->chain_off[c + 1] - g->chain_off[c];
    int np = g->chain_parent_off[c + 1] - g->chain_parent_off[c];
    int i, shown = all || n <= SHORT_LIST ? n : SHORT_LIST - 2;
    bool contiguous = ops[n - 1] - ops[0] == n - 1;

    printf("  chain %d: %d op%s ", c, n, n == 1 ? "" : "s");
    if (n == 1)
        printf("[%d] ", ops[0]);
    else if (contiguous)
        printf("[%d-%d] ", ops[0], ops[n - 1]);
    else {
        /* Ops interleaved with other chains: list the indices. */
        putchar('[');
        for (i = 0; i < shown; i++)
            printf("%s%d", i ? "," : "", ops[i]);
        printf("%s] ", shown < n ? ",..." : "");
    }
    for (i = 0; i < shown; i++)
        printf("%s%s", i ? " -> " : "", op_type(def->op[ops[i]]));
    if (shown < n)
        printf(" -> ... (%d more)", n - shown);
    if (np > 0) {
        const int *par = g->chain_parents + g->chain_parent_off[c];
        printf("  (after ");
        for (i = 0; i < np && (all || i < SHORT_LIST); i++)
            printf("%s%d", i ? ", " : "", par[i]);
        if (i < np)
            printf(", ...");
        putchar(')');
    }
    putchar('\n');
}

static void print_chains(const ct_netdef_t *def, bool list, bool all)
{
    struct ct__graph g;
    ct_status_t st;
    int c, longest = 0, singles = 0;

    memset(&g, 0, sizeof(g));
    if (ct__graph_init(&g, def, &st) != CT_OK) {
        printf("%-17s unavailable: %s\n", "chains", st.msg);
        return;
    }
    for (c = 0; c < g.n_chains; c++) {
        int n = g.chain_off[c + 1] - g.chain_off[c];
        longest = n > longest ? n : longest;
        singles += n == 1;
    }
    printf("%-17s %d edges (%d after pruning)\n", "dependencies", g.n_edges,
           g.n_pruned_edges);
    printf("%-17s %d (longest: %d op%s; %d single-op)\n", "chains", g.n_chains,
           longest, longest == 1 ? "" : "s", singles);
    if (list || g.n_chains <= SHORT_CHAIN_LIST) {
        for (c = 0; c < g.n_chains; c++)
            print_chain(def, &g, c, all || list);
    } else {
        printf("  (--chains lists them)\n");
    }
    ct__graph_destroy(&g);
}

int ct__cli_cmd_inspect(int argc, char **argv)
{
    struct ct__cli_parser p;
    struct ct__strmap types = CT__STRMAP_INIT;
    struct type_count *tc = NULL;
    const char *val, *file = NULL;
    enum ct_proto_format fmt;
    ct_netdef_t *def = NULL;
    ct_status_t st;
    bool list_chains = false, all = false;
    size_t size, n_types = 0, n_blobs = 0, n_unknown = 0, i;
    int id, rc;

    ct__cli_parser_init(&p, argc, argv, "inspect", synopsis, opts);
    while ((id = ct__cli_next(&p, &val)) != CT_CLI_END) {
        switch (id) {
        case CT_CLI_BAD:
            return CT_CLI_EXIT_USAGE;
        case OPT_HELP:
            fputs(help, stdout);
            return CT_CLI_EXIT_OK;
        case OPT_CHAINS:
            list_chains = true;
            break;
        case OPT_ALL:
            all = true;
            break;
        case CT_CLI_POSITIONAL:
            if (file != NULL)
                return ct__cli_usage_error(&p, "unexpected argument '%s'", val);
            file = val;
            break;
        default:
            break;
        }
    }
    if (file == NULL)
        return ct__cli_usage_error(&p, "inspect needs a FILE");

    /* A minidb file (or lmdb directory) is listed by the storage module. */
    {
        const char *db_type = ct_db_detect_type(file);
        if (db_type != NULL) {
            ct_status_clear(&st);
            rc = ct_db_describe(db_type, file, stdout, &st);
            return rc == CT_OK ? CT_CLI_EXIT_OK
                               : ct__cli_status_error(&st, rc, NULL);
        }
    }

    rc = ct__cli_read_netdef(file, &def, &fmt, &size, &st);
    if (rc != CT_OK)
        return ct__cli_status_error(&st, rc, NULL);
    if (count_types(def, &types, &tc, &n_types) != CT_OK ||
        count_blobs(def, &n_blobs) != CT_OK) {
        ct__cli_error("out of memory");
        rc = CT_ENOMEM;
        goto done;
    }

    print_type_line(def, file, fmt, size);
    printf("%-17s %zu\n", "ops", def->n_op);
    if (n_types > 0) {
        printf("%-17s %zu\n", "op types", n_types);
        for (i = 0; i < n_types; i++)
            printf("  %-24s %4lu\n", tc[i].type, (unsigned long)tc[i].n);
    }
    print_names("external inputs", def->external_input, def->n_external_input,
                all);
    print_names("external outputs", def->external_output,
                def->n_external_output, all);
    printf("%-17s %zu\n", "distinct blobs", n_blobs);

    for (i = 0; i < n_types; i++)
        n_unknown += ct__op_schema_find(tc[i].type) == NULL;
    if (n_unknown > 0) {
        size_t k = 0;
        printf("%-17s %zu type%s not implemented yet, `cortado run` will "
               "refuse this net:",
               "unsupported ops", n_unknown, n_unknown == 1 ? "" : "s");
        for (i = 0; i < n_types; i++)
            if (ct__op_schema_find(tc[i].type) == NULL)
                printf("%s %s", k++ ? "," : "", tc[i].type);
        putchar('\n');
    }
    rc = ct__netdef_validate(def, NULL, 0, NULL, &st);
    printf("%-17s %s\n", "checks", rc == CT_OK ? "ok" : st.msg);
    print_chains(def, list_chains, all);
    rc = CT_OK;
done:
    free(tc);
    ct__strmap_destroy(&types, NULL);
    ct_netdef_free(def);
    return rc == CT_OK ? CT_CLI_EXIT_OK : CT_CLI_EXIT_FAIL;
}
