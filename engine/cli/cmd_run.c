/* cortado run: compile a NetDef and run it on .npy inputs.
 *
 * Order of work: read both NetDefs (so a typo fails before anything runs),
 * create the engine and workspace, run the init net once, feed the
 * --input tensors, create the --input-shape inputs and the --fill-params
 * parameters (cortado/fill.h), check that every declared external input
 * exists, then compile the net with the fed names as extra declared
 * inputs (one notice when the net does not declare one of them), check
 * that every --output blob exists, run N timed iterations, write the
 * outputs and print the summary. With --checkpoint-dir, the state of the
 * run (run_ckpt.h) is checkpointed asynchronously every
 * --checkpoint-every iterations and after the last one, and --resume
 * loads the newest complete checkpoint after INIT and the fills, before
 * NET is compiled. --save-params writes what INIT and --fill-params
 * created after the run.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cortado/blob.h"
#include "cortado/engine.h"
#include "cortado/fill.h"
#include "cortado/net.h"
#include "cortado/npy.h"
#include "cortado/proto.h"
#include "cortado/tensor.h"
#include "cortado/workspace.h"
#include "engine/cli/cli_util.h"
#include "engine/cli/run_ckpt.h"
#include "engine/cli/run_report.h"
#include "engine/engine_impl.h"
#include "proto/caffe2.pb-c.h"

static const char synopsis[] =
    "cortado run --net NET [--init INIT] [--input BLOB=FILE.npy]... "
    "[--output BLOB=FILE.npy]... [options]";

static const char help[] =
    "usage: cortado run --net NET [--init INIT] [--input BLOB=FILE.npy]...\n"
    "                   [--output BLOB=FILE.npy]... [--output-dir DIR]\n"
    "                   [--input-shape BLOB=D0,D1,...]...\n"
    "                   [--fill-params random|zeros] [--seed N]\n"
    "                   [--fill-width N] [--iters N]\n"
    "                   [--executor simple|dag] [--threads N]\n"
    "                   [--intra-op pool|openmp|serial] [--topology DESC]\n"
    "                   [--profile] [--observe SPEC]... [--no-fuse]\n"
    "                   [--stats-json FILE] [--stats-prom FILE]\n"
    "                   [--stats-every K] [--quiet]\n"
    "                   [--checkpoint-dir DIR [--checkpoint-every N]\n"
    "                    [--checkpoint-keep K] [--resume]]\n"
    "                   [--save-params DIR]\n"
    "\n"
    "Runs INIT once (if given), feeds the inputs, compiles NET and runs it\n"
    "N times, then writes the requested blobs as .npy files and prints a\n"
    "summary (executor, time per iteration, every output's dtype, shape\n"
    "and first values). NET and INIT are Caffe2 NetDefs, binary (.pb) or\n"
    "text (.pbtxt), detected by content. A training net (INIT filling the\n"
    "weights, NET with an Iter op and in-place updates) is checkpointed\n"
    "and resumed with the --checkpoint options (docs/storage.md).\n"
    "\n"
    "Options:\n"
    "  -n, --net NET            the net to run (required)\n"
    "  --init INIT              a net run once before, e.g. one that fills\n"
    "                           the weights (Caffe2's init_net)\n"
    "  -i, --input BLOB=FILE    feed FILE (.npy) as blob BLOB; repeatable.\n"
    "                           A fed blob counts as a declared external\n"
    "                           input of NET\n"
    "  --input-shape BLOB=D0,D1,...\n"
    "                           feed a FLOAT tensor of that shape with\n"
    "                           uniform [0, 1) values (e.g.\n"
    "                           data=1,3,224,224); repeatable. With\n"
    "                           --fill-params, a parameter's shape may be\n"
    "                           given the same way (conv1_w=96,3,11,11)\n"
    "  --fill-params MODE       create every parameter NET reads that\n"
    "                           nothing provides, with shapes inferred\n"
    "                           from the inputs: random (fan-in scaled\n"
    "                           uniform values) or zeros (weights 0,\n"
    "                           scales and variances 1)\n"
    "  --seed N                 seed of the random inputs and parameters\n"
    "                           (default 0)\n"
    "  --fill-width N           output channels of a Conv / FC whose width\n"
    "                           nothing in NET fixes (default 64)\n"
    "  -o, --output BLOB=FILE   write blob BLOB after the run; any blob of\n"
    "                           the workspace; repeatable\n"
    "  --output-dir DIR         write every external output of NET to\n"
    "                           DIR/<name>.npy ('/' in names becomes '_')\n"
    "  --iters N                iterations to run and time (default 1)\n"
    "  --executor E             simple or dag (default: from NET's type)\n"
    "  -t, --threads N          worker threads (default: NET's num_workers\n"
    "                           or one per core)\n"
    "  --intra-op MODE          parallelism inside ops: pool (the engine's\n"
    "                           work-stealing pool, default), openmp (an\n"
    "                           OpenMP team under the simple executor) or\n"
    "                           serial\n"
    "  --topology DESC          an hwloc synthetic topology instead of this\n"
    "                           machine, e.g. \"pack:2 numa:1 core:1 pu:1\"\n"
    "                           (default: $CT_TOPOLOGY; see cortado topo)\n"
    "  --profile                print per-op-type time, wall time, critical\n"
    "                           path, parallel efficiency and the mean\n"
    "                           ready->start latency of the scheduler\n"
    "  --no-fuse                do not fuse Conv + SpatialBN (inference)\n"
    "                           pairs (also off with --observe or\n"
    "                           --output)\n"
    "  --observe SPEC           attach an observer: minmax=FILE,\n"
    "                           histogram=FILE, time[=FILE.json],\n"
    "                           runcount[=FILE], trace=FILE.json\n"
    "                           [,key=value...]; repeatable\n"
    "                           (docs/observers.md)\n"
    "  --stats-json FILE        write the engine's stat registry as JSON\n"
    "                           after the run\n"
    "  --stats-prom FILE        the same in the Prometheus text format\n"
    "  --stats-every K          also write them every K iterations\n"
    "  --checkpoint-dir DIR     checkpoint the state of the run to\n"
    "                           DIR/ckpt_<iteration>.minidb (asynchronous,\n"
    "                           crash-safe) after the last iteration and\n"
    "                           every --checkpoint-every iterations. The\n"
    "                           state: every blob INIT produced or\n"
    "                           --fill-params created, and every blob NET\n"
    "                           updates in place (reads before it writes\n"
    "                           it, or an Iter counter)\n"
    "  --checkpoint-every N     also checkpoint when the iteration count is\n"
    "                           a multiple of N (default: only at the end)\n"
    "  --checkpoint-keep K      keep the newest K checkpoints this run\n"
    "                           wrote (default 0: keep all)\n"
    "  --resume                 after INIT, load the newest checkpoint of\n"
    "                           DIR that verifies (newer damaged ones are\n"
    "                           skipped with a notice) and continue the\n"
    "                           iteration count from it (its Iter counter);\n"
    "                           --iters more iterations run. Starts from\n"
    "                           scratch, with a notice, when DIR has none.\n"
    "                           A checkpoint whose blobs do not match the\n"
    "                           state (missing, extra, other dtype or\n"
    "                           shape) is an error\n"
    "  --save-params DIR        after the run, write every blob INIT\n"
    "                           produced or --fill-params created as\n"
    "                           DIR/<name>.npy ('/' becomes '_') and list\n"
    "                           them in DIR/params.txt: name, file, dtype,\n"
    "                           dims, tab-separated\n"
    "  -q, --quiet              print nothing on success\n"
    "  -h, --help               show this help\n"
    "\n"
    "Every external input of NET must be fed, produced by INIT or\n"
    "created by --fill-params (which skips inputs no op reads).\n"
    "Exit status: 0 success, 1 runtime failure, 2 usage error.\n";

enum {
    OPT_NET = 1,
    OPT_INIT,
    OPT_INPUT,
    OPT_OUTPUT,
    OPT_OUTPUT_DIR,
    OPT_ITERS,
    OPT_EXECUTOR,
    OPT_THREADS,
    OPT_QUIET,
    OPT_HELP,
    OPT_INPUT_SHAPE,
    OPT_FILL_PARAMS,
    OPT_SEED,
    OPT_FILL_WIDTH,
    OPT_INTRA_OP,
    OPT_TOPOLOGY,
    OPT_PROFILE,
    OPT_OBSERVE,
    OPT_STATS_JSON,
    OPT_STATS_PROM,
    OPT_STATS_EVERY,
    OPT_CKPT_DIR,
    OPT_CKPT_EVERY,
    OPT_CKPT_KEEP,
    OPT_RESUME,
    OPT_SAVE_PARAMS,
    OPT_NO_FUSE
};

static const struct ct__cli_opt opts[] = {
    {"net", 'n', true, OPT_NET},
    {"init", 0, true, OPT_INIT},
    {"input", 'i', true, OPT_INPUT},
    {"output", 'o', true, OPT_OUTPUT},
    {"output-dir", 0, true, OPT_OUTPUT_DIR},
    {"iters", 0, true, OPT_ITERS},
    {"executor", 0, true, OPT_EXECUTOR},
    {"threads", 't', true, OPT_THREADS},
    {"quiet", 'q', false, OPT_QUIET},
    {"help", 'h', false, OPT_HELP},
    {"input-shape", 0, true, OPT_INPUT_SHAPE},
    {"fill-params", 0, true, OPT_FILL_PARAMS},
    {"seed", 0, true, OPT_SEED},
    {"fill-width", 0, true, OPT_FILL_WIDTH},
    {"intra-op", 0, true, OPT_INTRA_OP},
    {"topology", 0, true, OPT_TOPOLOGY},
    {"profile", 0, false, OPT_PROFILE},
    {"observe", 0, true, OPT_OBSERVE},
    {"stats-json", 0, true, OPT_STATS_JSON},
    {"stats-prom", 0, true, OPT_STATS_PROM},
    {"stats-every", 0, true, OPT_STATS_EVERY},
    {"checkpoint-dir", 0, true, OPT_CKPT_DIR},
    {"checkpoint-every", 0, true, OPT_CKPT_EVERY},
    {"checkpoint-keep", 0, true, OPT_CKPT_KEEP},
    {"resume", 0, false, OPT_RESUME},
    {"save-params", 0, true, OPT_SAVE_PARAMS},
    {"no-fuse", 0, false, OPT_NO_FUSE},
    {NULL, 0, false, 0},
};

/* BLOB=FILE pair; blob owns the split copy. */
struct assign {
    char *blob;
    const char *file;
};

struct run_args {
    const char *net, *init, *output_dir;
    struct assign *inputs, *outputs;
    size_t n_inputs, n_outputs;
    /* --input-shape; each name is a malloc'd copy */
    struct ct_fill_shape *shapes;
    size_t n_shapes;
    int fill_mode; /* enum ct_fill_mode */
    long long seed, fill_width;
    long long iters, threads;
    int executor; /* CT_NET_EXECUTOR_FROM_DEF or enum ct_executor */
    int intra_op; /* enum ct_intra_op */
    const char *topology;
    bool quiet, profile, no_fuse;
    /* --observe specs (argv strings) */
    const char **observe;
    size_t n_observe;
    /* --stats-json / --stats-prom files (NULL: not written); --stats-every
     * K (0: only after the last iteration) */
    const char *stats_json, *stats_prom;
    long long stats_every;
    /* --checkpoint-dir (NULL: no checkpoints), --checkpoint-every N (0:
     * only after the last iteration), --checkpoint-keep K (0: all),
     * --resume; --save-params DIR (NULL: not written) */
    const char *ckpt_dir, *save_params;
    long long ckpt_every, ckpt_keep;
    bool resume;
};

/* Everything the command creates, released in one place. */
struct run_state {
    ct_engine_t *eng;
    ct_workspace_t *ws;
    ct_netdef_t *def, *init_def;
    ct_net_t *net;
    struct ct_fill_report fill;
    double init_ns;
    double mean_ns, min_ns, max_ns;
    /* What INIT and --fill-params created (--save-params), and the state
     * of the run (run_ckpt.h): those plus what NET carries. */
    struct ct__run_blobs params, state;
    struct ct__run_ckpt ckpt; /* pattern NULL without --checkpoint-dir */
    struct ct__run_resume resumed;
    int64_t start_iter; /* iterations done before this run (--resume) */
    size_t n_params_saved;
    ct_status_t st;
};

static void args_free(struct run_args *a)
{
    size_t i;

    for (i = 0; i < a->n_inputs; i++)
        free(a->inputs[i].blob);
    for (i = 0; i < a->n_outputs; i++)
        free(a->outputs[i].blob);
    for (i = 0; i < a->n_shapes; i++)
        free((char *)a->shapes[i].name);
    free(a->inputs);
    free(a->outputs);
    free(a->shapes);
    free(a->observe);
}

/* Whether `name` is already fed by --input or --input-shape. */
static bool is_fed(const struct run_args *a, const char *name)
{
    size_t i;

    for (i = 0; i < a->n_inputs; i++)
        if (strcmp(a->inputs[i].blob, name) == 0)
            return true;
    for (i = 0; i < a->n_shapes; i++)
        if (strcmp(a->shapes[i].name, name) == 0)
            return true;
    return false;
}

/* --input-shape BLOB=D0,D1,... into a->shapes[a->n_shapes]. */
static bool parse_shape(const struct ct__cli_parser *p, struct run_args *a,
                        const char *val)
{
    struct ct_fill_shape *sh = &a->shapes[a->n_shapes];
    const char *dims, *c;
    char *blob, *end;
    long long v;

    if (!ct__cli_split_assign(p, "--input-shape", val, &blob, &dims))
        return false;
    if (is_fed(a, blob)) {
        ct__cli_usage_error(p, "--input-shape: blob '%s' is fed twice", blob);
        free(blob);
        return false;
    }
    memset(sh, 0, sizeof(*sh));
    sh->name = blob;
    for (c = dims;; c = end + 1) {
        errno = 0;
        v = strtoll(c, &end, 10);
        if (errno != 0 || end == c || v < 0 || v > (1ll << 40) ||
            (*end != ',' && *end != '\0') || sh->ndim == CT_MAX_DIMS) {
            ct__cli_usage_error(p,
                                "--input-shape wants BLOB=D0,D1,... with at "
                                "most %d dims in [0, 2^40], got '%s'",
                                CT_MAX_DIMS, val);
            free(blob);
            return false;
        }
        sh->dims[sh->ndim++] = v;
        if (*end == '\0')
            break;
    }
    a->n_shapes++;
    return true;
}

/* Returns CT_CLI_EXIT_OK to go on, -1 after --help, or the exit code of a
 * usage error. */
static int parse_args(int argc, char **argv, struct run_args *a)
{
    struct ct__cli_parser p;
    const char *val;
    int id;

    memset(a, 0, sizeof(*a));
    a->iters = 1;
    a->executor = CT_NET_EXECUTOR_FROM_DEF;
    /* Each option takes at least one argv slot: argc bounds the lists. */
    a->inputs = calloc((size_t)argc, sizeof(*a->inputs));
    a->outputs = calloc((size_t)argc, sizeof(*a->outputs));
    a->shapes = calloc((size_t)argc, sizeof(*a->shapes));
    a->observe = calloc((size_t)argc, sizeof(*a->observe));
    if (a->inputs == NULL || a->outputs == NULL || a->shapes == NULL ||
        a->observe == NULL) {
        ct__cli_error("out of memory");
        return CT_CLI_EXIT_FAIL;
    }
    ct__cli_parser_init(&p, argc, argv, "run", synopsis, opts);
    while ((id = ct__cli_next(&p, &val)) != CT_CLI_END) {
        struct assign *as;
        switch (id) {
        case CT_CLI_BAD:
            return CT_CLI_EXIT_USAGE;
        case OPT_HELP:
            fputs(help, stdout);
            return -1;
        case OPT_NET:
            a->net = val;
            break;
        case OPT_INIT:
            a->init = val;
            break;
        case OPT_OUTPUT_DIR:
            a->output_dir = val;
            break;
        case OPT_QUIET:
            a->quiet = true;
            break;
        case OPT_INPUT:
        case OPT_OUTPUT:
            as = id == OPT_INPUT ? &a->inputs[a->n_inputs]
                                 : &a->outputs[a->n_outputs];
            if (!ct__cli_split_assign(&p,
                                      id == OPT_INPUT ? "--input" : "--output",
                                      val, &as->blob, &as->file))
                return CT_CLI_EXIT_USAGE;
            if (id == OPT_INPUT) {
                if (is_fed(a, as->blob)) {
                    ct__cli_usage_error(&p, "--input: blob '%s' is fed twice",
                                        as->blob);
                    free(as->blob);
                    return CT_CLI_EXIT_USAGE;
                }
                a->n_inputs++;
            } else {
                a->n_outputs++;
            }
            break;
        case OPT_INPUT_SHAPE:
            if (!parse_shape(&p, a, val))
                return CT_CLI_EXIT_USAGE;
            break;
        case OPT_FILL_PARAMS:
            if (strcmp(val, "random") == 0)
                a->fill_mode = CT_FILL_RANDOM;
            else if (strcmp(val, "zeros") == 0)
                a->fill_mode = CT_FILL_ZEROS;
            else
                return ct__cli_usage_error(
                    &p, "--fill-params wants random or zeros, got '%s'", val);
            break;
        case OPT_SEED:
            if (!ct__cli_parse_int(&p, "--seed", val, 0, INT64_MAX, &a->seed))
                return CT_CLI_EXIT_USAGE;
            break;
        case OPT_FILL_WIDTH:
            if (!ct__cli_parse_int(&p, "--fill-width", val, 1, 1 << 20,
                                   &a->fill_width))
                return CT_CLI_EXIT_USAGE;
            break;
        case OPT_ITERS:
            if (!ct__cli_parse_int(&p, "--iters", val, 1, 1000000000,
                                   &a->iters))
                return CT_CLI_EXIT_USAGE;
            break;
        case OPT_THREADS:
            if (!ct__cli_parse_int(&p, "--threads", val, 1, 4096, &a->threads))
                return CT_CLI_EXIT_USAGE;
            break;
        case OPT_EXECUTOR:
            if (strcmp(val, "simple") == 0)
                a->executor = CT_EXECUTOR_SIMPLE;
            else if (strcmp(val, "dag") == 0)
                a->executor = CT_EXECUTOR_DAG;
            else
                return ct__cli_usage_error(
                    &p, "--executor wants simple or dag, got '%s'", val);
            break;
        case OPT_INTRA_OP:
            if (strcmp(val, "pool") == 0)
                a->intra_op = CT_INTRA_OP_POOL;
            else if (strcmp(val, "openmp") == 0)
                a->intra_op = CT_INTRA_OP_OPENMP;
            else if (strcmp(val, "serial") == 0)
                a->intra_op = CT_INTRA_OP_SERIAL;
            else
                return ct__cli_usage_error(
                    &p, "--intra-op wants pool, openmp or serial, got '%s'",
                    val);
            break;
        case OPT_TOPOLOGY:
            a->topology = val;
            break;
        case OPT_PROFILE:
            a->profile = true;
            break;
        case OPT_NO_FUSE:
            a->no_fuse = true;
            break;
        case OPT_OBSERVE:
            a->observe[a->n_observe++] = val;
            break;
        case OPT_STATS_JSON:
            a->stats_json = val;
            break;
        case OPT_STATS_PROM:
            a->stats_prom = val;
            break;
        case OPT_STATS_EVERY:
            if (!ct__cli_parse_int(&p, "--stats-every", val, 1, 1000000000,
                                   &a->stats_every))
                return CT_CLI_EXIT_USAGE;
            break;
        case OPT_CKPT_DIR:
            a->ckpt_dir = val;
            break;
        case OPT_CKPT_EVERY:
            if (!ct__cli_parse_int(&p, "--checkpoint-every", val, 1, 1000000000,
                                   &a->ckpt_every))
                return CT_CLI_EXIT_USAGE;
            break;
        case OPT_CKPT_KEEP:
            if (!ct__cli_parse_int(&p, "--checkpoint-keep", val, 0, 1000000,
                                   &a->ckpt_keep))
                return CT_CLI_EXIT_USAGE;
            break;
        case OPT_RESUME:
            a->resume = true;
            break;
        case OPT_SAVE_PARAMS:
            a->save_params = val;
            break;
        case CT_CLI_POSITIONAL:
            return ct__cli_usage_error(&p, "unexpected argument '%s'", val);
        default:
            break;
        }
    }
    if (a->net == NULL)
        return ct__cli_usage_error(&p, "--net NET is required");
    if (a->stats_every > 0 && a->stats_json == NULL && a->stats_prom == NULL)
        return ct__cli_usage_error(&p, "--stats-every needs --stats-json "
                                       "FILE or --stats-prom FILE");
    if (a->fill_width > 0 && a->fill_mode == CT_FILL_NONE)
        return ct__cli_usage_error(&p, "--fill-width needs --fill-params");
    if (a->ckpt_dir == NULL && (a->ckpt_every > 0 || a->ckpt_keep > 0))
        return ct__cli_usage_error(&p,
                                   "--checkpoint-%s needs "
                                   "--checkpoint-dir DIR",
                                   a->ckpt_every > 0 ? "every" : "keep");
    if (a->ckpt_dir == NULL && a->resume)
        return ct__cli_usage_error(&p, "--resume needs --checkpoint-dir DIR");
    if (a->save_params != NULL && a->init == NULL &&
        a->fill_mode == CT_FILL_NONE)
        return ct__cli_usage_error(&p, "--save-params writes what --init "
                                       "produced or --fill-params created; "
                                       "give one of them");
    return CT_CLI_EXIT_OK;
}

/* Feeds every --input; the tensor is owned by its blob once reset. */
static int feed_inputs(struct run_state *s, const struct run_args *a)
{
    size_t i;

    for (i = 0; i < a->n_inputs; i++) {
        ct_tensor_t *t = NULL;
        ct_blob_t *b = NULL;
        int rc = ct_npy_read_file(s->eng, a->inputs[i].file, &t, &s->st);
        if (rc == CT_OK)
            rc = ct_workspace_create_blob(s->ws, a->inputs[i].blob, &b, &s->st);
        if (rc != CT_OK) {
            ct_tensor_free(t);
            ct_status_prefix(&s->st, "--input %s: ", a->inputs[i].blob);
            return rc;
        }
        ct_blob_reset(b, &ct_blob_type_tensor, t);
    }
    return CT_OK;
}

/* Names NET reads or declares that ws does not have yet: the blobs
 * --fill-params may create. */
static int absent_inputs(struct run_state *s, struct ct__run_blobs *out)
{
    size_t i, k;
    int rc = CT_OK;

    for (i = 0; i < s->def->n_external_input && rc == CT_OK; i++)
        if (!ct_workspace_has_blob(s->ws, s->def->external_input[i]))
            rc = ct__run_blobs_add(out, s->def->external_input[i],
                                   CT__RUN_FROM_FILL, &s->st);
    for (i = 0; i < s->def->n_op && rc == CT_OK; i++)
        for (k = 0; k < s->def->op[i]->n_input && rc == CT_OK; k++)
            if (!ct_workspace_has_blob(s->ws, s->def->op[i]->input[k]))
                rc = ct__run_blobs_add(out, s->def->op[i]->input[k],
                                       CT__RUN_FROM_FILL, &s->st);
    return rc;
}

/* --input-shape inputs and --fill-params parameters; the parameters
 * created are appended to s->params. */
static int fill_blobs(struct run_state *s, const struct run_args *a)
{
    struct ct_fill_config cfg;
    struct ct__run_blobs absent;
    size_t i;
    int rc;

    if (a->n_shapes == 0 && a->fill_mode == CT_FILL_NONE)
        return CT_OK;
    memset(&absent, 0, sizeof(absent));
    rc = absent_inputs(s, &absent);
    if (rc != CT_OK) {
        ct__run_blobs_destroy(&absent);
        return rc;
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.mode = a->fill_mode;
    cfg.seed = (uint64_t)a->seed;
    cfg.shapes = a->shapes;
    cfg.n_shapes = a->n_shapes;
    cfg.default_width = a->fill_width;
    if (a->n_shapes > 0 &&
        (cfg.shape_is_param = calloc(a->n_shapes, 1)) == NULL) {
        ct__run_blobs_destroy(&absent);
        return ct_status_setf(&s->st, CT_ENOMEM, "out of memory");
    }
    rc = ct_workspace_fill_params(s->ws, s->def, &cfg, &s->fill, &s->st);
    if (rc != CT_OK)
        ct_status_prefix(&s->st, "%s: ",
                         a->fill_mode != CT_FILL_NONE ? "--fill-params"
                                                      : "--input-shape");
    for (i = 0; i < absent.n && rc == CT_OK; i++)
        if (!is_fed(a, absent.names[i]) &&
            ct_workspace_has_blob(s->ws, absent.names[i]))
            rc = ct__run_blobs_add(&s->params, absent.names[i],
                                   CT__RUN_FROM_FILL, &s->st);
    ct__run_blobs_destroy(&absent);
    /* --input-shape blobs that the fill made parameters (pinned shapes). */
    for (i = 0; i < a->n_shapes && rc == CT_OK; i++)
        if (cfg.shape_is_param[i])
            rc = ct__run_blobs_add(&s->params, a->shapes[i].name,
                                   CT__RUN_FROM_FILL, &s->st);
    free(cfg.shape_is_param);
    return rc;
}

/* One notice when a fed blob is not a declared external input of a net
 * that declares some (Caffe2's net check would reject the net; a fed blob
 * counts as declared). */
static void notice_undeclared(struct run_state *s, const struct run_args *a)
{
    size_t i, k, n = a->n_inputs + a->n_shapes;

    if (s->def->n_external_input == 0)
        return;
    for (i = 0; i < n; i++) {
        const char *name = i < a->n_inputs ? a->inputs[i].blob
                                           : a->shapes[i - a->n_inputs].name;
        for (k = 0; k < s->def->n_external_input; k++)
            if (strcmp(s->def->external_input[k], name) == 0)
                break;
        if (k < s->def->n_external_input)
            continue;
        ct__engine_notice_once(s->eng, CT_NOTICE_UNDECLARED_INPUT,
                               "net \"%s\" does not declare \"%s\" as an "
                               "external input; it counts as declared "
                               "because it is fed",
                               s->def->name != NULL ? s->def->name : "", name);
        return;
    }
}

/* Whether an op of the net reads `name`. */
static bool is_read(const ct_netdef_t *def, const char *name)
{
    size_t i, k;

    for (i = 0; i < def->n_op; i++)
        for (k = 0; k < def->op[i]->n_input; k++)
            if (strcmp(def->op[i]->input[k], name) == 0)
                return true;
    return false;
}

/* External inputs that neither INIT nor --input provided. With
 * --fill-params, a declared input that no op reads (the zoo's ResNet-50
 * declares its training data queue) is skipped with one notice. */
static int check_external_inputs(struct run_state *s, const struct run_args *a)
{
    const bool have_init = a->init != NULL;
    char list[160];
    size_t i, n_missing = 0, off = 0;
    bool noted = false;

    list[0] = '\0';
    for (i = 0; i < s->def->n_external_input; i++) {
        const char *name = s->def->external_input[i];
        if (ct_workspace_has_blob(s->ws, name))
            continue;
        if (a->fill_mode != CT_FILL_NONE && !is_read(s->def, name)) {
            if (!noted)
                fprintf(stderr,
                        "cortado: notice: net \"%s\" declares external "
                        "input \"%s\", which no op reads; not filled\n",
                        s->def->name != NULL ? s->def->name : "", name);
            noted = true;
            continue;
        }
        if (n_missing < 6 && off < sizeof(list)) {
            int k = snprintf(list + off, sizeof(list) - off, "%s%s",
                             n_missing ? ", " : "", name);
            off += k > 0 ? (size_t)k : 0;
        }
        n_missing++;
    }
    if (n_missing == 0)
        return CT_OK;
    return ct_status_setf(&s->st, CT_ENOTFOUND,
                          "net \"%s\" has %zu external input%s not fed "
                          "with --input%s: %s%s%s",
                          s->def->name != NULL ? s->def->name : "", n_missing,
                          n_missing == 1 ? "" : "s",
                          have_init ? " nor produced by --init" : "", list,
                          n_missing > 6 ? ", ..." : "",
                          have_init || a->fill_mode != CT_FILL_NONE
                              ? ""
                              : " (--fill-params random creates missing "
                                "parameters)");
}

static int compile_net(struct run_state *s, const struct run_args *a)
{
    struct ct_net_config cfg;
    const char **extra = NULL, **keep = NULL;
    size_t i;
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    cfg.executor = a->executor;
    cfg.num_workers = (int)a->threads;
    /* Fusion leaves a fused Conv's own output unwritten and changes what
     * observers see per op: off with --observe; blobs named by --output
     * are kept written. */
    cfg.no_fuse = a->no_fuse || a->n_observe > 0;
    if (a->n_inputs + a->n_shapes > 0) {
        extra = calloc(a->n_inputs + a->n_shapes, sizeof(*extra));
        if (extra == NULL)
            return ct_status_setf(&s->st, CT_ENOMEM, "out of memory");
        for (i = 0; i < a->n_inputs; i++)
            extra[i] = a->inputs[i].blob;
        for (i = 0; i < a->n_shapes; i++)
            extra[a->n_inputs + i] = a->shapes[i].name;
        cfg.extra_inputs = extra;
        cfg.n_extra_inputs = a->n_inputs + a->n_shapes;
        notice_undeclared(s, a);
    }
    if (a->n_outputs > 0) {
        keep = calloc(a->n_outputs, sizeof(*keep));
        if (keep == NULL) {
            free(extra);
            return ct_status_setf(&s->st, CT_ENOMEM, "out of memory");
        }
        for (i = 0; i < a->n_outputs; i++)
            keep[i] = a->outputs[i].blob;
        cfg.keep_blobs = keep;
        cfg.n_keep_blobs = a->n_outputs;
    }
    rc = ct_net_new(s->ws, s->def, &cfg, &s->net, &s->st);
    free(extra);
    free(keep);
    if (rc != CT_OK)
        return rc;
    for (i = 0; i < a->n_outputs; i++)
        if (!ct_workspace_has_blob(s->ws, a->outputs[i].blob))
            return ct_status_setf(&s->st, CT_ENOTFOUND,
                                  "--output %s: no blob named \"%s\" in the "
                                  "workspace",
                                  a->outputs[i].blob, a->outputs[i].blob);
    return CT_OK;
}

/* The state that is checkpointed and resumed: the params, then what NET
 * carries from one iteration to the next. A blob fed with --input or
 * --input-shape is fed again by every run, so it is state only when NET
 * updates it in place. */
static int collect_state(struct run_state *s, const struct run_args *a)
{
    struct ct__run_blobs carried;
    size_t i, k;
    int rc;

    memset(&carried, 0, sizeof(carried));
    rc = ct__run_blobs_add_carried(&carried, s->def, &s->st);
    for (i = 0; i < s->params.n && rc == CT_OK; i++) {
        const char *name = s->params.names[i];
        for (k = 0; k < carried.n; k++)
            if (strcmp(carried.names[k], name) == 0)
                break;
        if (k == carried.n && is_fed(a, name))
            continue;
        rc = ct__run_blobs_add(&s->state, name, s->params.origins[i], &s->st);
    }
    for (i = 0; i < carried.n && rc == CT_OK; i++)
        rc = ct__run_blobs_add(&s->state, carried.names[i], CT__RUN_FROM_NET,
                               &s->st);
    ct__run_blobs_destroy(&carried);
    if (rc == CT_OK && s->state.n == 0)
        rc = ct_status_setf(&s->st, CT_EINVAL,
                            "--checkpoint-dir: the run has no state to "
                            "checkpoint: no --init, no --fill-params and "
                            "net \"%s\" updates no blob in place",
                            s->def->name != NULL ? s->def->name : "");
    return rc;
}

static int resume(struct run_state *s, const struct run_args *a)
{
    int rc = ct__run_ckpt_resume(a->ckpt_dir, s->ws, &s->state, s->def,
                                 &s->resumed, &s->st);

    if (rc != CT_OK || !s->resumed.resumed)
        return rc;
    s->start_iter = s->resumed.iter;
    if (!a->quiet)
        printf("resumed: %s (iteration %" PRId64 ", %zu blob%s)\n",
               s->resumed.path, s->resumed.iter, s->resumed.n_blobs,
               s->resumed.n_blobs == 1 ? "" : "s");
    return CT_OK;
}

/* Checkpoints after iteration `done` (counted from the start of training,
 * resumed iterations included) when it is a multiple of
 * --checkpoint-every or the last one of this run. */
static int maybe_checkpoint(struct run_state *s, const struct run_args *a,
                            int64_t done, bool last)
{
    if (s->ckpt.pattern == NULL)
        return CT_OK;
    if (!last && (a->ckpt_every == 0 || done % a->ckpt_every != 0))
        return CT_OK;
    if (s->ckpt.last_iter == done)
        return CT_OK;
    return ct__run_ckpt_save(&s->ckpt, s->eng, s->ws, &s->state, done, &s->st);
}

static int run_iterations(struct run_state *s, const struct run_args *a)
{
    long long iters = a->iters;
    double total = 0;
    long long i;

    for (i = 0; i < iters; i++) {
        uint64_t t0 = ct__cli_now_ns();
        int rc = ct_net_run(s->net, &s->st);
        double dt = (double)(ct__cli_now_ns() - t0);
        if (rc != CT_OK) {
            if (iters > 1)
                ct_status_prefix(&s->st, "iteration %lld: ", i + 1);
            return rc;
        }
        total += dt;
        /* Outside the timed region; the last write follows the run. */
        rc = maybe_checkpoint(s, a, s->start_iter + i + 1, i + 1 == iters);
        if (rc != CT_OK)
            return rc;
        if (a->stats_every > 0 && (i + 1) % a->stats_every == 0 &&
            i + 1 < iters &&
            (rc = ct__run_write_stats(s->eng, a->stats_json, a->stats_prom,
                                      &s->st)) != CT_OK)
            return rc;
        if (i == 0 || dt < s->min_ns)
            s->min_ns = dt;
        if (i == 0 || dt > s->max_ns)
            s->max_ns = dt;
    }
    s->mean_ns = total / (double)iters;
    return CT_OK;
}

/* The tensor in blob `name`, or NULL with st set. */
static const ct_tensor_t *output_tensor(struct run_state *s, const char *name)
{
    ct_blob_t *b = ct_workspace_get_blob(s->ws, name);
    const ct_tensor_t *t;

    if (b == NULL) {
        ct_status_setf(&s->st, CT_ENOTFOUND,
                       "no blob named \"%s\" in the workspace", name);
        return NULL;
    }
    t = ct_blob_get_tensor(b);
    if (t == NULL) {
        const ct_blob_type_t *ty = ct_blob_type(b);
        ct_status_setf(&s->st, CT_ETYPE, "blob \"%s\" %s", name,
                       ty == NULL ? "is empty (the net never wrote it)"
                                  : "does not hold a tensor");
        return NULL;
    }
    return t;
}

static int write_outputs(struct run_state *s, const struct run_args *a)
{
    char *path = NULL;
    size_t i, cap = 0;
    int rc = CT_OK;

    for (i = 0; i < a->n_outputs; i++) {
        const ct_tensor_t *t = output_tensor(s, a->outputs[i].blob);
        if (t == NULL)
            return s->st.code;
        rc = ct_npy_write_file(t, a->outputs[i].file, &s->st);
        if (rc != CT_OK)
            return rc;
    }
    if (a->output_dir == NULL)
        return CT_OK;
    if (mkdir(a->output_dir, 0755) != 0 && errno != EEXIST)
        return ct_status_setf(&s->st, CT_EIO, "--output-dir %s: %s",
                              a->output_dir, strerror(errno));
    for (i = 0; i < s->def->n_external_output; i++) {
        const char *name = s->def->external_output[i];
        const ct_tensor_t *t = output_tensor(s, name);
        size_t need = strlen(a->output_dir) + strlen(name) + 6, k, base;
        if (t == NULL) {
            rc = s->st.code;
            break;
        }
        if (need > cap) {
            char *np = realloc(path, need);
            if (np == NULL) {
                rc = ct_status_setf(&s->st, CT_ENOMEM, "out of memory");
                break;
            }
            path = np;
            cap = need;
        }
        snprintf(path, cap, "%s/", a->output_dir);
        base = strlen(path);
        for (k = 0; name[k] != '\0'; k++)
            path[base + k] = name[k] == '/' ? '_' : name[k];
        strcpy(path + base + k, ".npy");
        rc = ct_npy_write_file(t, path, &s->st);
        if (rc != CT_OK)
            break;
    }
    free(path);
    return rc;
}

static void print_tensor_line(struct run_state *s, const char *label,
                              const char *name, const char *file)
{
    ct_blob_t *b = ct_workspace_get_blob(s->ws, name);
    const ct_tensor_t *t = b != NULL ? ct_blob_get_tensor(b) : NULL;
    char shape[160];

    printf("  %-12s %s", label, name);
    if (t == NULL) {
        printf(" (%s)", b == NULL ? "missing" : "no tensor");
    } else {
        printf(" %s %s ", ct_dtype_name(ct_tensor_dtype(t)),
               ct_tensor_shape_str(t, shape, sizeof(shape)));
        ct__cli_print_values(stdout, t, 6);
    }
    if (file != NULL)
        printf(" %s %s", label[0] == 'i' ? "<-" : "->", file);
    putchar('\n');
}

static bool is_listed(const struct assign *as, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(as[i].blob, name) == 0)
            return true;
    return false;
}

/* "params       random (seed 0): 161 blobs, 25.6M values; 53 widths at
 * the default 64; ~7.71 GFLOP per run". */
static void print_fill(struct run_state *s, const struct run_args *a)
{
    const struct ct_fill_report *r = &s->fill;
    const double v = (double)r->n_param_elements;

    printf("  %-12s %s (seed %lld): %zu blob%s, ", "params",
           ct_fill_mode_name(a->fill_mode), a->seed, r->n_params,
           r->n_params == 1 ? "" : "s");
    if (v >= 1e6)
        printf("%.1fM values", v / 1e6);
    else
        printf("%.0f values", v);
    if (r->n_widths > 0)
        printf("; %zu of %zu output width%s at the default %lld",
               r->n_widths_default, r->n_widths, r->n_widths == 1 ? "" : "s",
               a->fill_width > 0 ? a->fill_width : 64);
    if (r->flops >= 1e9)
        printf("; ~%.2f GFLOP per run", r->flops / 1e9);
    else
        printf("; ~%.2f MFLOP per run", r->flops / 1e6);
    putchar('\n');
}

static void print_summary(struct run_state *s, const struct run_args *a)
{
    const struct ct_engine_config *ecfg = ct_engine_get_config(s->eng);
    enum ct_executor ex = ct_net_executor(s->net);
    int workers = ct_net_num_workers(s->net);
    char d0[32], d1[32], d2[32];
    size_t i;

    printf("net \"%s\": %d ops, %d chain%s\n", ct_net_name(s->net),
           ct_net_n_ops(s->net), ct_net_n_chains(s->net),
           ct_net_n_chains(s->net) == 1 ? "" : "s");
    if (ex == CT_EXECUTOR_SIMPLE)
        printf("  %-12s simple: ops in order on the calling thread "
               "(engine: %d thread%s)\n",
               "executor", ecfg->n_threads, ecfg->n_threads == 1 ? "" : "s");
    else
        printf("  %-12s %s, %d worker%s (engine: %d thread%s)\n", "executor",
               ct_executor_name(ex), workers, workers == 1 ? "" : "s",
               ecfg->n_threads, ecfg->n_threads == 1 ? "" : "s");
    if (s->init_def != NULL)
        printf("  %-12s \"%s\": %zu ops, %s\n", "init",
               s->init_def->name != NULL ? s->init_def->name : "",
               s->init_def->n_op,
               ct__cli_fmt_duration(s->init_ns, d0, sizeof(d0)));
    for (i = 0; i < a->n_inputs; i++)
        print_tensor_line(s, "input", a->inputs[i].blob, a->inputs[i].file);
    for (i = 0; i < a->n_shapes; i++)
        print_tensor_line(s, "input", a->shapes[i].name, "random");
    if (a->fill_mode != CT_FILL_NONE)
        print_fill(s, a);
    if (s->start_iter > 0)
        printf("  %-12s %lld (%" PRId64 " to %" PRId64 ", resumed)\n",
               "iterations", a->iters, s->start_iter + 1,
               s->start_iter + (int64_t)a->iters);
    else
        printf("  %-12s %lld\n", "iterations", a->iters);
    printf("  %-12s mean %s, min %s, max %s\n", "time/iter",
           ct__cli_fmt_duration(s->mean_ns, d0, sizeof(d0)),
           ct__cli_fmt_duration(s->min_ns, d1, sizeof(d1)),
           ct__cli_fmt_duration(s->max_ns, d2, sizeof(d2)));
    for (i = 0; i < s->def->n_external_output; i++) {
        const char *name = s->def->external_output[i];
        if (!is_listed(a->outputs, a->n_outputs, name))
            print_tensor_line(s, "output", name, NULL);
    }
    for (i = 0; i < a->n_outputs; i++)
        print_tensor_line(s, "output", a->outputs[i].blob, a->outputs[i].file);
    if (a->output_dir != NULL)
        printf("  %-12s %zu external output%s written to %s/\n", "saved",
               s->def->n_external_output,
               s->def->n_external_output == 1 ? "" : "s", a->output_dir);
    if (s->ckpt.pattern != NULL)
        printf("  %-12s %zu async save%s of %zu blob%s, latest %s/"
               "ckpt_%08" PRId64 ".minidb; stall total %s, max %s\n",
               "checkpoints", s->ckpt.n_saves, s->ckpt.n_saves == 1 ? "" : "s",
               s->ckpt.n_blobs, s->ckpt.n_blobs == 1 ? "" : "s", a->ckpt_dir,
               s->ckpt.last_iter,
               ct__cli_fmt_duration(s->ckpt.stall_ns, d0, sizeof(d0)),
               ct__cli_fmt_duration(s->ckpt.max_stall_ns, d1, sizeof(d1)));
    if (a->save_params != NULL)
        printf("  %-12s %zu blob%s written to %s/ (listed in params.txt)\n",
               "param files", s->n_params_saved,
               s->n_params_saved == 1 ? "" : "s", a->save_params);
}

static int run(struct run_state *s, const struct run_args *a)
{
    struct ct_engine_config ecfg;
    int rc;

    rc = ct__cli_read_netdef(a->net, &s->def, NULL, NULL, &s->st);
    if (rc == CT_OK && a->init != NULL)
        rc = ct__cli_read_netdef(a->init, &s->init_def, NULL, NULL, &s->st);
    if (rc != CT_OK)
        return rc;
    ct_engine_config_init(&ecfg);
    if (a->threads > 0)
        ecfg.n_threads = (int)a->threads;
    ecfg.intra_op = a->intra_op;
    ecfg.topology = a->topology;
    rc = ct_engine_new(&ecfg, &s->eng, &s->st);
    if (rc == CT_OK)
        rc = ct_workspace_new(s->eng, NULL, &s->ws, &s->st);
    if (rc != CT_OK)
        return rc;
    if (s->init_def != NULL) {
        uint64_t t0 = ct__cli_now_ns();
        rc = ct_workspace_run_net_once(s->ws, s->init_def, &s->st);
        s->init_ns = (double)(ct__cli_now_ns() - t0);
        if (rc != CT_OK) {
            ct_status_prefix(&s->st, "--init %s: ", a->init);
            return rc;
        }
        rc = ct__run_blobs_add_outputs(&s->params, s->init_def, &s->st);
        if (rc != CT_OK)
            return rc;
    }
    rc = feed_inputs(s, a);
    if (rc == CT_OK)
        rc = fill_blobs(s, a);
    if (rc == CT_OK)
        rc = check_external_inputs(s, a);
    if (rc == CT_OK && a->ckpt_dir != NULL)
        rc = collect_state(s, a);
    if (rc == CT_OK && a->resume)
        rc = resume(s, a);
    if (rc == CT_OK && a->ckpt_dir != NULL)
        rc =
            ct__run_ckpt_init(&s->ckpt, a->ckpt_dir, (int)a->ckpt_keep, &s->st);
    if (rc == CT_OK) {
        rc = compile_net(s, a);
        if (rc != CT_OK && s->net == NULL)
            ct_status_prefix(&s->st, "--net %s: ", a->net);
    }
    if (rc == CT_OK)
        rc = ct__run_attach_observers(s->eng, s->net, a->observe, a->n_observe,
                                      &s->st);
    if (rc == CT_OK && a->profile)
        rc = ct_net_set_profiling(s->net, true, &s->st);
    if (rc == CT_OK)
        rc = run_iterations(s, a);
    if (s->ckpt.pattern != NULL) {
        /* Also after a failed iteration: the saves queued are complete
         * snapshots; report the first error of theirs only if the run
         * did not fail already. */
        ct_status_t fst;
        int frc = ct__run_ckpt_finish(&s->ckpt, s->eng, &fst);
        if (rc == CT_OK && frc != CT_OK) {
            s->st = fst;
            rc = frc;
        }
    }
    if (rc == CT_OK)
        rc = write_outputs(s, a);
    if (rc == CT_OK && a->save_params != NULL)
        rc = ct__run_save_params(s->ws, &s->params, a->save_params,
                                 &s->n_params_saved, &s->st);
    if (rc == CT_OK)
        rc = ct__run_write_stats(s->eng, a->stats_json, a->stats_prom, &s->st);
    if (rc == CT_OK && !a->quiet)
        print_summary(s, a);
    if (rc == CT_OK)
        rc = ct__run_flush_observers(s->net, a->quiet, &s->st);
    if (rc == CT_OK && a->profile && !a->quiet)
        rc = ct__run_print_profile(s->net, stdout, &s->st);
    return rc;
}

int ct__cli_cmd_run(int argc, char **argv)
{
    struct run_args a;
    struct run_state s;
    int rc;

    rc = parse_args(argc, argv, &a);
    if (rc != CT_CLI_EXIT_OK) {
        args_free(&a);
        return rc < 0 ? CT_CLI_EXIT_OK : rc;
    }
    memset(&s, 0, sizeof(s));
    ct_status_clear(&s.st);
    rc = run(&s, &a);
    if (rc != CT_OK)
        ct__cli_status_error(&s.st, rc, NULL);
    ct_net_free(s.net);
    ct_workspace_free(s.ws);
    ct_engine_free(s.eng);
    ct_netdef_free(s.init_def);
    ct_netdef_free(s.def);
    ct__run_blobs_destroy(&s.params);
    ct__run_blobs_destroy(&s.state);
    ct__run_ckpt_destroy(&s.ckpt);
    ct__run_resume_destroy(&s.resumed);
    args_free(&a);
    return rc == CT_OK ? CT_CLI_EXIT_OK : CT_CLI_EXIT_FAIL;
}
