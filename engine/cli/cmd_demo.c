/* cortado demo: trains a small MLP on MNIST end to end.
 *
 * The MNIST test set (../shared/data/mnist) is the data source: the first
 * N - 1000 images train, the last 1000 are held out. Each step runs three
 * dag nets in one workspace:
 *   demo_feed    Iter, TimerBegin, K ExampleBatch ops (stride K, offset k)
 *   mlp_accum    ct_netdef_build_grad_accum: K concurrent Do scopes, each
 *                running forward + backward of the model on its
 *                micro-batch, then the gradients summed in fixed order
 *   demo_update  LearningRate (step policy), MomentumSGDUpdate per
 *                parameter, Scale + AveragePut of the loss, TimerEnd
 * The model: SpaceToBatch(block 2) -> Mul by a learned gain ->
 * BatchToSpace -> FC(784, 128) -> Relu -> FC(128, 10) -> SoftmaxWithLoss,
 * so gradients flow through both space-batch ops. The minmax observer
 * watches the step net (DIR/demo.minmax) and every subnet the scopes
 * compile (DIR/demo.<net>.<id>.minmax); an asynchronous checkpoint is
 * queued every --ckpt-every steps (DIR/ckpt/demo_<iter>.minidb). The
 * summary gives the held-out accuracy (a predict net with Accuracy), the
 * step net's profile, the checkpoint stalls and the files written.
 */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cortado/engine.h"
#include "cortado/grad_accum.h"
#include "cortado/net.h"
#include "cortado/observer.h"
#include "cortado/proto.h"
#include "cortado/stats.h"
#include "cortado/storage.h"
#include "cortado/workspace.h"
#include "engine/cli/cli_util.h"
#include "engine/cli/demo.h"
#include "engine/cli/run_report.h"

static const char synopsis[] =
    "cortado demo [--iters N] [--k K] [--batch B] [--threads N] [--out DIR]\n"
    "                    [--seed S] [--resume] [--quiet]";

static const char help[] =
    "usage: cortado demo [options]\n"
    "\n"
    "Trains a small MLP on MNIST (the test set of ../shared/data/mnist; the\n"
    "last 1000 images are held out) with K concurrent gradient-accumulation\n"
    "scopes on the dag executor, a SpaceToBatch / BatchToSpace stage, timers\n"
    "and stat registry updates, the minmax observer and an asynchronous\n"
    "checkpoint every --ckpt-every steps. Shows progress on stderr, then a\n"
    "summary: held-out accuracy, per-op profile, scheduling overhead,\n"
    "checkpoint stalls and the files written.\n"
    "\n"
    "Options:\n"
    "  --iters N         training steps (default 1000)\n"
    "  --k K             micro-batches (Do scopes) per step (default 2)\n"
    "  --batch B         images per micro-batch (default 64)\n"
    "  -t, --threads N   worker threads (default 2)\n"
    "  -o, --out DIR     output directory (default demo-out)\n"
    "  --data DIR        MNIST directory (default ../shared/data/mnist)\n"
    "  --seed S          seed of the initial weights and the shuffling "
    "(default 1)\n"
    "  --ckpt-every N    steps between checkpoints (default: iters / 4)\n"
    "  --resume          load the latest checkpoint of DIR/ckpt first\n"
    "  -q, --quiet       no progress output\n"
    "  -h, --help        show this help\n";

enum {
    OPT_ITERS = 1,
    OPT_K,
    OPT_BATCH,
    OPT_THREADS,
    OPT_OUT,
    OPT_DATA,
    OPT_SEED,
    OPT_CKPT,
    OPT_RESUME,
    OPT_QUIET,
    OPT_HELP
};

static const struct ct__cli_opt opts[] = {
    {"iters", 0, true, OPT_ITERS},    {"k", 0, true, OPT_K},
    {"batch", 0, true, OPT_BATCH},    {"threads", 't', true, OPT_THREADS},
    {"out", 'o', true, OPT_OUT},      {"data", 0, true, OPT_DATA},
    {"seed", 0, true, OPT_SEED},      {"ckpt-every", 0, true, OPT_CKPT},
    {"resume", 0, false, OPT_RESUME}, {"quiet", 'q', false, OPT_QUIET},
    {"help", 'h', false, OPT_HELP},   {NULL, 0, false, 0},
};

#define HOLDOUT 1000
#define HIDDEN 128
#define N_PARAMS 5

static const char *const params[N_PARAMS] = {"gain", "W1", "b1", "W2", "b2"};
static const char *const moments[N_PARAMS] = {"gain_mom", "W1_mom", "b1_mom",
                                              "W2_mom", "b2_mom"};

/* The model, written once with a prefix for the predict net's blobs. */
static const char fwd_txt[] =
    "name: \"mlp\"\n"
    "op { input: \"data\" output: \"s2b\" type: \"SpaceToBatch\"\n"
    "     arg { name: \"block_size\" i: 2 } }\n"
    "op { input: \"s2b\" input: \"gain\" output: \"s2b_g\" type: \"Mul\"\n"
    "     arg { name: \"broadcast\" i: 1 } }\n"
    "op { input: \"s2b_g\" output: \"b2s\" type: \"BatchToSpace\"\n"
    "     arg { name: \"block_size\" i: 2 } }\n"
    "op { input: \"b2s\" input: \"W1\" input: \"b1\" output: \"h\" "
    "type: \"FC\" }\n"
    "op { input: \"h\" output: \"h\" type: \"Relu\" }\n"
    "op { input: \"h\" input: \"W2\" input: \"b2\" output: \"logits\" "
    "type: \"FC\" }\n"
    "op { input: \"logits\" input: \"label\" output: \"prob\" "
    "output: \"loss\" type: \"SoftmaxWithLoss\" }\n";

struct demo_args {
    long long iters, k, batch, threads, seed, ckpt_every;
    const char *out, *data;
    bool resume, quiet;
};

/* Subnets compiled by the Do scopes: profiled, the first one reported. */
struct subnets {
    pthread_mutex_t mu;
    ct_net_t *nets[16];
    int n;
};

struct demo {
    struct demo_args a;
    ct_engine_t *eng;
    ct_workspace_t *ws;
    ct_netdef_t *fwd, *step_def, *feed_def, *upd_def, *pred_def;
    ct_net_t *feed, *step, *upd, *pred;
    struct subnets sub;
    ct_status_t st;
    char ckpt_dir[4096], ckpt_pattern[8300], minmax[4200];
    int64_t start_iter;
    uint64_t stall_ns, stall_max_ns, flush_ns;
    int n_ckpt;
    char last_ckpt[4400];
};

/* ---- small helpers ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_uniform(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)((rng_next(s) >> 40) * (1.0 / 16777216.0));
}

static int parse_def(const char *txt, ct_netdef_t **out, ct_status_t *st)
{
    return ct_netdef_parse(txt, strlen(txt), CT_PROTO_TEXT, out, st);
}

/* Appends to a growing text buffer; false when it is full. */
static bool cat(char *buf, size_t size, const char *fmt, ...) CT_PRINTF(3, 4);
static bool cat(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < size - len;
}

static int mkdir_p(const char *path, ct_status_t *st)
{
    char tmp[4096];
    size_t i, len = strlen(path);

    if (len == 0 || len >= sizeof(tmp))
        return ct_status_setf(st, CT_EINVAL, "bad directory \"%s\"", path);
    memcpy(tmp, path, len + 1);
    for (i = 1; i <= len; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0')
            continue;
        tmp[i] = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
            return ct_status_setf(st, CT_EIO, "cannot create %s: %s", tmp,
                                  strerror(errno));
        tmp[i] = path[i];
    }
    return CT_OK;
}

/* Observer creator for the subnets: no observer, but profiling on. */
static int subnet_cb(void *ctx, ct_net_t *net, ct_observer_t **out,
                     ct_status_t *st)
{
    struct subnets *s = ctx;
    int rc = CT_OK;

    *out = NULL;
    if (strcmp(ct_net_name(net), "mlp") != 0)
        return CT_OK;
    pthread_mutex_lock(&s->mu);
    if (s->n < (int)(sizeof(s->nets) / sizeof(s->nets[0]))) {
        rc = ct_net_set_profiling(net, true, st);
        if (rc == CT_OK)
            s->nets[s->n++] = net;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int64_t stat_value(ct_engine_t *eng, const char *name)
{
    ct_stat_registry_t *reg = ct_engine_stats(eng);
    ct_stat_t h;

    if (ct_stat_registry_find(reg, name, &h, NULL) != CT_OK)
        return 0;
    return ct_stat_get(reg, h);
}

static int64_t read_i64(ct_workspace_t *ws, const char *name)
{
    ct_blob_t *b = ct_workspace_get_blob(ws, name);
    ct_tensor_t *t = b ? ct_blob_get_tensor(b) : NULL;

    if (t == NULL || ct_tensor_dtype(t) != CT_DTYPE_I64 ||
        ct_tensor_numel(t) < 1)
        return -1;
    return ((const int64_t *)ct_tensor_cdata(t))[0];
}

static double read_f32(ct_workspace_t *ws, const char *name)
{
    ct_blob_t *b = ct_workspace_get_blob(ws, name);
    ct_tensor_t *t = b ? ct_blob_get_tensor(b) : NULL;

    if (t == NULL || ct_tensor_dtype(t) != CT_DTYPE_F32 ||
        ct_tensor_numel(t) < 1)
        return NAN;
    return ((const float *)ct_tensor_cdata(t))[0];
}

/* ---- setup ---- */

static int setup_data(struct demo *d)
{
    struct ct__demo_mnist m;
    int64_t ntrain, dims[4];
    int rc;

    rc = ct__demo_load_mnist(d->a.data, &m, &d->st);
    if (rc != CT_OK)
        return rc;
    ntrain = m.n - HOLDOUT;
    dims[0] = ntrain;
    dims[1] = 1;
    dims[2] = 28;
    dims[3] = 28;
    rc = ct__demo_put(d->ws, "images", CT_DTYPE_U8, 4, dims, m.images, &d->st);
    if (rc == CT_OK)
        rc = ct__demo_put(d->ws, "labels", CT_DTYPE_I32, 1, dims, m.labels,
                          &d->st);
    dims[0] = HOLDOUT;
    if (rc == CT_OK)
        rc = ct__demo_put(d->ws, "eval_images", CT_DTYPE_U8, 4, dims,
                          m.images + ntrain * 784, &d->st);
    if (rc == CT_OK)
        rc = ct__demo_put(d->ws, "eval_labels", CT_DTYPE_I32, 1, dims,
                          m.labels + ntrain, &d->st);
    if (rc == CT_OK && !d->a.quiet)
        printf("data: %" PRId64 " MNIST images from %s: %" PRId64
               " train, %d held out\n",
               m.n, d->a.data, ntrain, HOLDOUT);
    ct__demo_mnist_free(&m);
    return rc;
}

/* Weights: uniform Xavier from --seed, gain 1, biases and moments 0. */
static int setup_params(struct demo *d)
{
    static const int64_t shapes[N_PARAMS][3] = {
        {1, 14, 14}, {HIDDEN, 784, 0}, {HIDDEN, 0, 0}, {10, HIDDEN, 0}, {10}};
    static const int ndims[N_PARAMS] = {3, 2, 1, 2, 1};
    uint64_t s = (uint64_t)d->a.seed * 0x2545f4914f6cdd1dull + 1;
    float *buf = malloc(sizeof(float) * HIDDEN * 784);
    int64_t zero = 0, one_dim = 1;
    int i, rc = CT_OK;

    if (buf == NULL)
        return ct_status_setf(&d->st, CT_ENOMEM, "out of memory");
    for (i = 0; i < N_PARAMS && rc == CT_OK; i++) {
        int64_t n = 1, j;
        float lim;
        int k;

        for (k = 0; k < ndims[i]; k++)
            n *= shapes[i][k];
        lim = ndims[i] == 2 ? sqrtf(3.0f / (float)shapes[i][1]) : 0.0f;
        for (j = 0; j < n; j++)
            buf[j] =
                i == 0 ? 1.0f : (lim > 0 ? rng_uniform(&s, -lim, lim) : 0.0f);
        rc = ct__demo_put(d->ws, params[i], CT_DTYPE_F32, ndims[i], shapes[i],
                          buf, &d->st);
        if (rc == CT_OK)
            rc = ct__demo_put(d->ws, moments[i], CT_DTYPE_F32, ndims[i],
                              shapes[i], NULL, &d->st);
    }
    free(buf);
    if (rc == CT_OK)
        rc =
            ct__demo_put(d->ws, "it", CT_DTYPE_I64, 1, &one_dim, &zero, &d->st);
    if (rc == CT_OK)
        rc = ct__demo_put(d->ws, "zero_it", CT_DTYPE_I64, 1, &one_dim, &zero,
                          &d->st);
    return rc;
}

/* Finds the checkpoint with the highest iteration in ckpt_dir. */
static bool latest_checkpoint(const char *dir, char *out, size_t size)
{
    DIR *dp = opendir(dir);
    struct dirent *e;
    long long best = -1;

    if (dp == NULL)
        return false;
    while ((e = readdir(dp)) != NULL) {
        long long it;
        char tail[16];
        if (sscanf(e->d_name, "demo_%lld%15s", &it, tail) == 2 &&
            strcmp(tail, ".minidb") == 0 && it > best) {
            best = it;
            snprintf(out, size, "%s/%s", dir, e->d_name);
        }
    }
    closedir(dp);
    return best >= 0;
}

static int resume(struct demo *d)
{
    char path[4400], txt[9000];
    ct_netdef_t *def = NULL;
    int rc;

    if (!latest_checkpoint(d->ckpt_dir, path, sizeof(path)))
        return ct_status_setf(&d->st, CT_ENOTFOUND,
                              "--resume: no checkpoint demo_*.minidb in %s",
                              d->ckpt_dir);
    if (strchr(path, '"') != NULL || strchr(path, '\\') != NULL)
        return ct_status_setf(&d->st, CT_EINVAL,
                              "--resume: unsupported path %s", path);
    snprintf(txt, sizeof(txt),
             "name: \"demo_resume\"\n"
             "op { type: \"Load\" arg { name: \"db\" s: \"%s\" }\n"
             "     arg { name: \"db_type\" s: \"minidb\" }\n"
             "     arg { name: \"absolute_path\" i: 1 }\n"
             "     arg { name: \"load_all\" i: 1 } }\n",
             path);
    rc = parse_def(txt, &def, &d->st);
    if (rc == CT_OK)
        rc = ct_workspace_run_net_once(d->ws, def, &d->st);
    ct_netdef_free(def);
    if (rc != CT_OK) {
        ct_status_prefix(&d->st, "--resume %s: ", path);
        return rc;
    }
    d->start_iter = read_i64(d->ws, "it");
    if (!d->a.quiet)
        printf("resumed: %s (iteration %" PRId64 ")\n", path, d->start_iter);
    return CT_OK;
}

static int build_nets(struct demo *d)
{
    struct ct_grad_accum_config cfg;
    static const char *const inputs[2] = {"data", "label"};
    char *txt;
    size_t size = 16384;
    long long k;
    int i, rc;
    int64_t dummy = 1;

    txt = calloc(1, size);
    if (txt == NULL)
        return ct_status_setf(&d->st, CT_ENOMEM, "out of memory");
    /* Feed: Iter, TimerBegin, one ExampleBatch per micro-batch. */
    cat(txt, size,
        "name: \"demo_feed\" type: \"dag\"\n"
        "op { input: \"it\" output: \"it\" type: \"Iter\" }\n"
        "op { output: \"step_timer\" type: \"TimerBegin\"\n"
        "     arg { name: \"counter_name\" s: \"demo/step\" } }\n");
    for (k = 0; k < d->a.k; k++)
        cat(txt, size,
            "op { input: \"images\" input: \"labels\" input: \"it\"\n"
            "     output: \"data_%lld\" output: \"label_%lld\" "
            "type: \"ExampleBatch\"\n"
            "     arg { name: \"batch_size\" i: %lld }\n"
            "     arg { name: \"scale\" f: 0.00392156862 }\n"
            "     arg { name: \"stride\" i: %lld } arg { name: \"offset\" "
            "i: %lld }\n"
            "     arg { name: \"shuffle\" i: 1 } arg { name: \"seed\" i: "
            "%lld } }\n",
            k, k, d->a.batch, d->a.k, k, d->a.seed);
    rc = parse_def(txt, &d->feed_def, &d->st);
    /* Update: LearningRate, MomentumSGDUpdate, loss stat, TimerEnd. The
     * accumulated gradient is the sum of K micro-batch means. */
    txt[0] = '\0';
    cat(txt, size,
        "name: \"demo_update\" type: \"dag\"\n"
        "op { input: \"it\" output: \"lr\" type: \"LearningRate\"\n"
        "     arg { name: \"base_lr\" f: %g } arg { name: \"policy\" s: "
        "\"step\" }\n"
        "     arg { name: \"stepsize\" i: %lld } arg { name: \"gamma\" f: "
        "0.5 } }\n",
        0.05 / (double)d->a.k, d->a.iters / 2 > 0 ? d->a.iters / 2 : 1);
    for (i = 0; i < N_PARAMS; i++)
        cat(txt, size,
            "op { input: \"%s_grad\" input: \"%s\" input: \"lr\" "
            "input: \"%s\"\n"
            "     output: \"%s_grad\" output: \"%s\" output: \"%s\"\n"
            "     type: \"MomentumSGDUpdate\" arg { name: \"momentum\" f: "
            "0.9 } }\n",
            params[i], moments[i], params[i], params[i], moments[i], params[i]);
    cat(txt, size,
        "op { input: \"loss\" output: \"mean_loss\" type: \"Scale\"\n"
        "     arg { name: \"scale\" f: %g } }\n"
        "op { input: \"mean_loss\" type: \"AveragePut\"\n"
        "     arg { name: \"stat_name\" s: \"demo/loss\" }\n"
        "     arg { name: \"magnitude_expand\" i: 1000000 } }\n"
        "op { input: \"step_timer\" type: \"TimerEnd\" }\n",
        1.0 / (double)d->a.k);
    if (rc == CT_OK)
        rc = parse_def(txt, &d->upd_def, &d->st);
    /* Predict: the model on the held-out slice, then Accuracy. */
    txt[0] = '\0';
    cat(txt, size,
        "name: \"demo_predict\" type: \"dag\"\n"
        "op { input: \"eval_images\" input: \"eval_labels\" input: "
        "\"zero_it\"\n"
        "     output: \"eval_data\" output: \"eval_label\" "
        "type: \"ExampleBatch\"\n"
        "     arg { name: \"batch_size\" i: %d }\n"
        "     arg { name: \"scale\" f: 0.00392156862 } }\n"
        "op { input: \"eval_data\" output: \"eval_s2b\" type: "
        "\"SpaceToBatch\"\n"
        "     arg { name: \"block_size\" i: 2 } }\n"
        "op { input: \"eval_s2b\" input: \"gain\" output: \"eval_s2b_g\" "
        "type: \"Mul\"\n"
        "     arg { name: \"broadcast\" i: 1 } }\n"
        "op { input: \"eval_s2b_g\" output: \"eval_b2s\" type: "
        "\"BatchToSpace\"\n"
        "     arg { name: \"block_size\" i: 2 } }\n"
        "op { input: \"eval_b2s\" input: \"W1\" input: \"b1\" output: "
        "\"eval_h\" type: \"FC\" }\n"
        "op { input: \"eval_h\" output: \"eval_h\" type: \"Relu\" }\n"
        "op { input: \"eval_h\" input: \"W2\" input: \"b2\" output: "
        "\"eval_logits\" type: \"FC\" }\n"
        "op { input: \"eval_logits\" output: \"eval_prob\" type: "
        "\"Softmax\" }\n"
        "op { input: \"eval_prob\" input: \"eval_label\" output: "
        "\"accuracy\" type: \"Accuracy\" }\n",
        HOLDOUT);
    if (rc == CT_OK)
        rc = parse_def(txt, &d->pred_def, &d->st);
    free(txt);
    if (rc != CT_OK)
        return rc;

    rc = parse_def(fwd_txt, &d->fwd, &d->st);
    if (rc != CT_OK)
        return rc;
    memset(&cfg, 0, sizeof(cfg));
    cfg.k = (int)d->a.k;
    cfg.params = params;
    cfg.n_params = N_PARAMS;
    cfg.inputs = inputs;
    cfg.n_inputs = 2;
    cfg.loss = "loss";
    cfg.lr = 0.0f; /* the update net applies it */
    rc = ct_netdef_build_grad_accum(d->fwd, &cfg, &d->step_def, &d->st);
    if (rc != CT_OK)
        return rc;

    rc = ct_net_new(d->ws, d->feed_def, NULL, &d->feed, &d->st);
    /* The step net's inputs exist before the feed net first runs. */
    for (k = 0; rc == CT_OK && k < d->a.k; k++) {
        char name[32];
        snprintf(name, sizeof(name), "data_%lld", k);
        rc = ct__demo_put(d->ws, name, CT_DTYPE_F32, 1, &dummy, NULL, &d->st);
        snprintf(name, sizeof(name), "label_%lld", k);
        if (rc == CT_OK)
            rc = ct__demo_put(d->ws, name, CT_DTYPE_I32, 1, &dummy, NULL,
                              &d->st);
    }
    if (rc == CT_OK)
        rc = ct_net_new(d->ws, d->step_def, NULL, &d->step, &d->st);
    if (rc == CT_OK)
        rc = ct__demo_put(d->ws, "loss", CT_DTYPE_F32, 0, &dummy, NULL, &d->st);
    for (i = 0; rc == CT_OK && i < N_PARAMS; i++) {
        char name[32];
        ct_blob_t *b;
        snprintf(name, sizeof(name), "%s_grad", params[i]);
        if (!ct_workspace_has_blob(d->ws, name))
            rc = ct_workspace_create_blob(d->ws, name, &b, &d->st);
    }
    if (rc == CT_OK)
        rc = ct_net_new(d->ws, d->upd_def, NULL, &d->upd, &d->st);
    return rc;
}

static int attach_observers(struct demo *d)
{
    ct_observer_t *obs = NULL;
    char spec[4300];
    int rc;

    snprintf(spec, sizeof(spec), "minmax=%s/demo.minmax", d->a.out);
    snprintf(d->minmax, sizeof(d->minmax), "%s/demo.minmax", d->a.out);
    rc = ct_observer_create_from_spec(d->eng, spec, &obs, &d->st);
    if (rc == CT_OK) {
        rc = ct_net_add_observer(d->step, obs, &d->st);
        if (rc != CT_OK)
            ct_observer_free(obs);
    }
    if (rc != CT_OK)
        return rc;
    /* Subnets (one per scope) are compiled at the first run: each gets
     * its own minmax file and profiling. */
    snprintf(spec, sizeof(spec), "minmax=%s/demo.%%n.%%i.minmax", d->a.out);
    rc = ct_engine_add_observer_spec(d->eng, spec, &d->st);
    if (rc == CT_OK)
        rc = ct_engine_add_observer_creator(d->eng, subnet_cb, &d->sub, NULL,
                                            &d->st);
    if (rc == CT_OK)
        rc = ct_net_set_profiling(d->step, true, &d->st);
    return rc;
}

/* ---- training ---- */

static int checkpoint(struct demo *d, int64_t iter)
{
    const char *names[2 * N_PARAMS + 1];
    struct ct_checkpoint_options o;
    uint64_t t0, dt;
    int i, rc;

    for (i = 0; i < N_PARAMS; i++) {
        names[i] = params[i];
        names[N_PARAMS + i] = moments[i];
    }
    names[2 * N_PARAMS] = "it";
    ct_checkpoint_options_init(&o);
    o.keep_last = 3;
    t0 = ct__cli_now_ns();
    rc = ct_engine_checkpoint_async(d->eng, d->ws, names, 2 * N_PARAMS + 1,
                                    d->ckpt_pattern, iter, &o, &d->st);
    dt = ct__cli_now_ns() - t0;
    if (rc != CT_OK) {
        ct_status_prefix(&d->st, "checkpoint of iteration %" PRId64 ": ", iter);
        return rc;
    }
    d->stall_ns += dt;
    if (dt > d->stall_max_ns)
        d->stall_max_ns = dt;
    d->n_ckpt++;
    snprintf(d->last_ckpt, sizeof(d->last_ckpt), "%s/demo_%06" PRId64 ".minidb",
             d->ckpt_dir, iter);
    return CT_OK;
}

static void progress(const struct demo *d, bool tty, long long i, double loss,
                     double ips, bool final)
{
    long long n = d->a.iters;
    int pct = (int)(100 * i / n);

    if (d->a.quiet)
        return;
    if (tty) {
        char bar[31];
        int j, fill = (int)(30 * i / n);
        for (j = 0; j < 30; j++)
            bar[j] = j < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %3d%% step %lld/%lld loss %.4f %7.0f img/s",
                bar, pct, i, n, loss, ips);
        if (final)
            fputc('\n', stderr);
        fflush(stderr);
        return;
    }
    /* Not a terminal: a line every 10%. */
    if (final || (10 * i / n) != (10 * (i - 1) / n))
        fprintf(stderr, "step %lld/%lld (%3d%%) loss %.4f %.0f img/s\n", i, n,
                pct, loss, ips);
}

static int train(struct demo *d, uint64_t *train_ns)
{
    bool tty = isatty(STDERR_FILENO) != 0;
    uint64_t t0 = ct__cli_now_ns();
    double loss = NAN, ips = 0;
    long long i;
    int rc = CT_OK;

    for (i = 1; i <= d->a.iters; i++) {
        int64_t it;
        rc = ct_net_run(d->feed, &d->st);
        if (rc == CT_OK)
            rc = ct_net_run(d->step, &d->st);
        if (rc == CT_OK)
            rc = ct_net_run(d->upd, &d->st);
        if (rc != CT_OK) {
            ct_status_prefix(&d->st, "step %lld: ", i);
            break;
        }
        it = read_i64(d->ws, "it");
        loss = read_f32(d->ws, "mean_loss");
        if (d->a.ckpt_every > 0 &&
            (i % d->a.ckpt_every == 0 || i == d->a.iters)) {
            rc = checkpoint(d, it);
            if (rc != CT_OK)
                break;
        }
        ips = (double)(i * d->a.k * d->a.batch) * 1e9 /
              (double)(ct__cli_now_ns() - t0);
        progress(d, tty, i, loss, ips, i == d->a.iters);
    }
    *train_ns = ct__cli_now_ns() - t0;
    if (rc == CT_OK) {
        uint64_t f0 = ct__cli_now_ns();
        rc = ct_engine_flush_checkpoints(d->eng, &d->st);
        d->flush_ns = ct__cli_now_ns() - f0;
    }
    return rc;
}

/* ---- summary ---- */

static int summary(struct demo *d, uint64_t train_ns)
{
    struct ct_net_profile p;
    char b1[32], b2[32], b3[32], b4[32];
    int64_t loss_sum, loss_n, step_sum, step_n;
    double acc;
    long long images = d->a.iters * d->a.k * d->a.batch;
    int rc;

    rc = ct_net_new(d->ws, d->pred_def, NULL, &d->pred, &d->st);
    if (rc == CT_OK)
        rc = ct_net_run(d->pred, &d->st);
    if (rc != CT_OK) {
        ct_status_prefix(&d->st, "predict: ");
        return rc;
    }
    acc = read_f32(d->ws, "accuracy");
    loss_sum = stat_value(d->eng, "demo/loss/stat_value/sum");
    loss_n = stat_value(d->eng, "demo/loss/stat_value/count");
    step_sum = stat_value(d->eng, "demo/step/time_ns/sum");
    step_n = stat_value(d->eng, "demo/step/time_ns/count");

    printf("\n== summary ==\n");
    printf("trained      %lld steps x %lld scopes x %lld images = %lld "
           "images in %s (%.0f images/s, %lld threads)\n",
           d->a.iters, d->a.k, d->a.batch, images,
           ct__cli_fmt_duration((double)train_ns, b1, sizeof(b1)),
           (double)images * 1e9 / (double)(train_ns ? train_ns : 1),
           d->a.threads);
    printf("final loss   %.4f (mean over the run %.4f, stat demo/loss)\n",
           read_f32(d->ws, "mean_loss"),
           loss_n ? (double)loss_sum / 1e6 / (double)loss_n : NAN);
    printf("accuracy     %.2f%% on the %d held-out images\n", 100.0 * acc,
           HOLDOUT);
    printf("step timer   mean %s over %" PRId64
           " steps (TimerBegin/TimerEnd demo/step)\n",
           ct__cli_fmt_duration(step_n ? (double)step_sum / (double)step_n : 0,
                                b1, sizeof(b1)),
           step_n);
    if (d->n_ckpt > 0)
        printf("checkpoints  %d async, stall total %s, max %s, mean %s; "
               "final flush %s; writer stalls %" PRId64 "\n",
               d->n_ckpt,
               ct__cli_fmt_duration((double)d->stall_ns, b1, sizeof(b1)),
               ct__cli_fmt_duration((double)d->stall_max_ns, b2, sizeof(b2)),
               ct__cli_fmt_duration((double)d->stall_ns / d->n_ckpt, b3,
                                    sizeof(b3)),
               ct__cli_fmt_duration((double)d->flush_ns, b4, sizeof(b4)),
               stat_value(d->eng, "cortado/checkpoint/stalls"));
    else
        printf("checkpoints  none\n");

    printf("\n-- step net \"%s\" (%d ops, dag) --\n", ct_net_name(d->step),
           ct_net_n_ops(d->step));
    rc = ct__run_print_profile(d->step, stdout, &d->st);
    if (rc == CT_OK && ct_net_get_profile(d->step, &p, &d->st) == CT_OK &&
        p.runs > 0)
        printf("scheduling overhead: %s per step (%.1f%% of the step "
               "net's thread time), ready->start %s per task\n",
               ct__cli_fmt_duration((double)p.overhead_ns / (double)p.runs, b1,
                                    sizeof(b1)),
               100.0 * (double)p.overhead_ns /
                   (double)((p.kernel_ns + p.overhead_ns)
                                ? p.kernel_ns + p.overhead_ns
                                : 1),
               ct__cli_fmt_duration(p.n_tasks ? (double)p.ready_latency_ns /
                                                    (double)p.n_tasks
                                              : 0,
                                    b2, sizeof(b2)));
    if (rc == CT_OK && d->sub.n > 0) {
        printf("\n-- scope subnet \"%s\" (forward + backward of one "
               "micro-batch; %d scope nets) --\n",
               ct_net_name(d->sub.nets[0]), d->sub.n);
        rc = ct__run_print_profile(d->sub.nets[0], stdout, &d->st);
    }
    return rc;
}

static void print_files(const struct demo *d)
{
    DIR *dp;
    struct dirent *e;

    printf("\nfiles in %s/:\n", d->a.out);
    printf("  %-28s minmax of the step net\n", "demo.minmax");
    dp = opendir(d->a.out);
    if (dp != NULL) {
        while ((e = readdir(dp)) != NULL)
            if (strncmp(e->d_name, "demo.", 5) == 0 &&
                strcmp(e->d_name, "demo.minmax") != 0)
                printf("  %-28s minmax of net %s\n", e->d_name,
                       strncmp(e->d_name, "demo.mlp.", 9) == 0
                           ? "mlp (a scope's subnet)"
                           : "demo_predict");
        closedir(dp);
    }
    if (d->n_ckpt > 0)
        printf("  ckpt/%-23s latest checkpoint (resume with --resume)\n",
               strrchr(d->last_ckpt, '/') + 1);
}

static int parse_args(struct demo_args *a, int argc, char **argv, int *exit_rc)
{
    struct ct__cli_parser p;
    const char *val;
    int id;

    a->iters = 1000;
    a->k = 2;
    a->batch = 64;
    a->threads = 2;
    a->seed = 1;
    a->ckpt_every = -1;
    a->out = "demo-out";
    a->data = "../shared/data/mnist";
    ct__cli_parser_init(&p, argc, argv, "demo", synopsis, opts);
    while ((id = ct__cli_next(&p, &val)) != CT_CLI_END) {
        bool ok = true;
        switch (id) {
        case CT_CLI_BAD:
            *exit_rc = CT_CLI_EXIT_USAGE;
            return -1;
        case OPT_HELP:
            fputs(help, stdout);
            *exit_rc = CT_CLI_EXIT_OK;
            return -1;
        case OPT_ITERS:
            ok = ct__cli_parse_int(&p, "--iters", val, 1, 100000000, &a->iters);
            break;
        case OPT_K:
            ok = ct__cli_parse_int(&p, "--k", val, 1, 64, &a->k);
            break;
        case OPT_BATCH:
            ok = ct__cli_parse_int(&p, "--batch", val, 1, 9000, &a->batch);
            break;
        case OPT_THREADS:
            ok = ct__cli_parse_int(&p, "--threads", val, 1, 1024, &a->threads);
            break;
        case OPT_SEED:
            ok = ct__cli_parse_int(&p, "--seed", val, 0, INT32_MAX, &a->seed);
            break;
        case OPT_CKPT:
            ok = ct__cli_parse_int(&p, "--ckpt-every", val, 0, 100000000,
                                   &a->ckpt_every);
            break;
        case OPT_OUT:
            a->out = val;
            break;
        case OPT_DATA:
            a->data = val;
            break;
        case OPT_RESUME:
            a->resume = true;
            break;
        case OPT_QUIET:
            a->quiet = true;
            break;
        case CT_CLI_POSITIONAL:
            ct__cli_usage_error(&p, "unexpected argument '%s'", val);
            ok = false;
            break;
        }
        if (!ok) {
            *exit_rc = CT_CLI_EXIT_USAGE;
            return -1;
        }
    }
    if (a->out[0] == '\0') {
        *exit_rc = ct__cli_usage_error(&p, "--out: empty directory name");
        return -1;
    }
    if (a->ckpt_every < 0)
        a->ckpt_every = a->iters >= 4 ? a->iters / 4 : 1;
    return 0;
}

static int run_demo(struct demo *d)
{
    struct ct_engine_config ecfg;
    uint64_t train_ns = 0;
    size_t i, j;
    int rc;

    snprintf(d->ckpt_dir, sizeof(d->ckpt_dir), "%s/ckpt", d->a.out);
    /* The pattern's only conversion is ours: escape '%' in DIR. */
    for (i = 0, j = 0; d->ckpt_dir[i] && j + 2 < 8000; i++) {
        if (d->ckpt_dir[i] == '%')
            d->ckpt_pattern[j++] = '%';
        d->ckpt_pattern[j++] = d->ckpt_dir[i];
    }
    d->ckpt_pattern[j] = '\0';
    strcat(d->ckpt_pattern, "/demo_%06d.minidb");
    rc = mkdir_p(d->ckpt_dir, &d->st);
    if (rc != CT_OK)
        return rc;
    ct_engine_config_init(&ecfg);
    ecfg.n_threads = (int)d->a.threads;
    /* With at least one scope per thread the scopes are the parallelism:
     * ops inside them run whole (docs/training.md, gradient accumulation
     * benchmark). Results are the same bits either way. */
    if (d->a.k >= d->a.threads)
        ecfg.intra_op = CT_INTRA_OP_SERIAL;
    rc = ct_engine_new(&ecfg, &d->eng, &d->st);
    if (rc == CT_OK)
        rc = ct_workspace_new(d->eng, NULL, &d->ws, &d->st);
    if (rc == CT_OK)
        rc = setup_data(d);
    if (rc == CT_OK)
        rc = setup_params(d);
    if (rc == CT_OK && d->a.resume)
        rc = resume(d);
    if (rc == CT_OK)
        rc = build_nets(d);
    if (rc == CT_OK)
        rc = attach_observers(d);
    if (rc == CT_OK && !d->a.quiet)
        printf("model: SpaceToBatch(2) -> Mul(gain) -> BatchToSpace(2) -> "
               "FC(784,%d) -> Relu -> FC(%d,10) -> SoftmaxWithLoss\n"
               "training: %lld steps, K=%lld scopes x batch %lld, "
               "MomentumSGD 0.9, %lld threads, dag executor, checkpoint "
               "every %lld steps\n",
               HIDDEN, HIDDEN, d->a.iters, d->a.k, d->a.batch, d->a.threads,
               d->a.ckpt_every);
    fflush(stdout);
    if (rc == CT_OK)
        rc = train(d, &train_ns);
    if (rc == CT_OK)
        rc = summary(d, train_ns);
    return rc;
}

int ct__cli_cmd_demo(int argc, char **argv)
{
    struct demo *d;
    int rc, exit_rc = CT_CLI_EXIT_OK;

    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        ct__cli_error("out of memory");
        return CT_CLI_EXIT_FAIL;
    }
    if (parse_args(&d->a, argc, argv, &exit_rc) != 0) {
        free(d);
        return exit_rc;
    }
    pthread_mutex_init(&d->sub.mu, NULL);
    ct_status_clear(&d->st);
    rc = run_demo(d);
    if (rc != CT_OK)
        exit_rc = ct__cli_status_error(&d->st, rc, "demo");
    /* Nets and workspace go first: freeing them flushes the observers. */
    ct_net_free(d->pred);
    ct_net_free(d->upd);
    ct_net_free(d->step);
    ct_net_free(d->feed);
    ct_workspace_free(d->ws);
    ct_engine_free(d->eng);
    if (rc == CT_OK)
        print_files(d);
    ct_netdef_free(d->fwd);
    ct_netdef_free(d->step_def);
    ct_netdef_free(d->feed_def);
    ct_netdef_free(d->upd_def);
    ct_netdef_free(d->pred_def);
    pthread_mutex_destroy(&d->sub.mu);
    free(d);
    return exit_rc;
}
