/* cortado run: checkpoints, --resume and --save-params (run_ckpt.h).
 *
 * Checkpoints go through the engine's asynchronous writer
 * (ct_engine_checkpoint_async, one stream per run: the pattern
 * DIR/ckpt_%08d.minidb), so a save costs the training loop one copy of the
 * state and never replaces the previous file before the new one is
 * complete. --resume picks the file with the highest iteration number
 * whose records all verify, loads it with the Load op into a scratch
 * workspace (Load is all-or-nothing and checks every CRC again), compares
 * every blob with the state of the run, and only when everything matches
 * moves the tensors into the run's workspace: a failed resume leaves the
 * workspace as INIT left it.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cortado/blob.h"
#include "cortado/npy.h"
#include "cortado/proto.h"
#include "cortado/storage.h"
#include "cortado/tensor.h"
#include "cortado/workspace.h"
#include "engine/cli/cli_util.h"
#include "engine/cli/run_ckpt.h"
#include "proto/caffe2.pb-c.h"

#define CKPT_PREFIX "ckpt_"
#define CKPT_SUFFIX ".minidb"

/* ---- blob lists ---- */

void ct__run_blobs_destroy(struct ct__run_blobs *l)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->origins);
    memset(l, 0, sizeof(*l));
}

static bool blobs_find(const struct ct__run_blobs *l, const char *name,
                       size_t *idx)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0) {
            if (idx != NULL)
                *idx = i;
            return true;
        }
    return false;
}

int ct__run_blobs_add(struct ct__run_blobs *l, const char *name, int origin,
                      ct_status_t *st)
{
    char *copy;

    if (blobs_find(l, name, NULL))
        return CT_OK;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **names = realloc(l->names, cap * sizeof(*names));
        unsigned char *origins;
        if (names == NULL)
            return ct_status_setf(st, CT_ENOMEM, "out of memory");
        l->names = names;
        origins = realloc(l->origins, cap);
        if (origins == NULL)
            return ct_status_setf(st, CT_ENOMEM, "out of memory");
        l->origins = origins;
        l->cap = cap;
    }
    copy = strdup(name);
    if (copy == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    l->names[l->n] = copy;
    l->origins[l->n] = (unsigned char)origin;
    l->n++;
    return CT_OK;
}

int ct__run_blobs_add_outputs(struct ct__run_blobs *l, const ct_netdef_t *def,
                              ct_status_t *st)
{
    size_t i, k;
    int rc;

    for (i = 0; i < def->n_op; i++)
        for (k = 0; k < def->op[i]->n_output; k++)
            if ((rc = ct__run_blobs_add(l, def->op[i]->output[k],
                                        CT__RUN_FROM_INIT, st)) != CT_OK)
                return rc;
    return CT_OK;
}

/* Whether an op before op `upto` of def, or op `upto` itself, reads name. */
static bool read_up_to(const ct_netdef_t *def, size_t upto, const char *name)
{
    size_t i, k;

    for (i = 0; i <= upto; i++)
        for (k = 0; k < def->op[i]->n_input; k++)
            if (strcmp(def->op[i]->input[k], name) == 0)
                return true;
    return false;
}

/* Whether an op before op `before` writes name. */
static bool written_before(const ct_netdef_t *def, size_t before,
                           const char *name)
{
    size_t i, k;

    for (i = 0; i < before; i++)
        for (k = 0; k < def->op[i]->n_output; k++)
            if (strcmp(def->op[i]->output[k], name) == 0)
                return true;
    return false;
}

int ct__run_blobs_add_carried(struct ct__run_blobs *l, const ct_netdef_t *def,
                              ct_status_t *st)
{
    size_t i, k;
    int rc;

    for (i = 0; i < def->n_op; i++) {
        const ct_opdef_t *op = def->op[i];
        bool is_iter = op->type != NULL && strcmp(op->type, "Iter") == 0;
        for (k = 0; k < op->n_output; k++) {
            const char *name = op->output[k];
            /* Only the first write of a name decides. */
            if (written_before(def, i, name))
                continue;
            if (!is_iter && !read_up_to(def, i, name))
                continue;
            if ((rc = ct__run_blobs_add(l, name, CT__RUN_FROM_NET, st)) !=
                CT_OK)
                return rc;
        }
    }
    return CT_OK;
}

const char *ct__run_origin_text(int origin)
{
    switch (origin) {
    case CT__RUN_FROM_INIT:
        return "produced by --init";
    case CT__RUN_FROM_FILL:
        return "created by --fill-params";
    default:
        return "updated in place by --net";
    }
}

/* Whether b holds something a checkpoint can store. */
static bool is_saveable(const ct_blob_t *b)
{
    return b != NULL &&
           (ct_blob_get_tensor(b) != NULL || ct_blob_get_string(b) != NULL);
}

/* mkdir DIR unless it is a directory already. */
static int make_dir(const char *opt, const char *dir, ct_status_t *st)
{
    struct stat sb;

    if (mkdir(dir, 0755) == 0)
        return CT_OK;
    if (errno != EEXIST)
        return ct_status_setf(st, CT_EIO, "%s %s: cannot create: %s", opt, dir,
                              strerror(errno));
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ct_status_setf(st, CT_EIO, "%s %s: not a directory", opt, dir);
    return CT_OK;
}

/* ---- checkpoints ---- */

int ct__run_ckpt_init(struct ct__run_ckpt *c, const char *dir, int keep,
                      ct_status_t *st)
{
    static const char tail[] = "/" CKPT_PREFIX "%08d" CKPT_SUFFIX;
    size_t i, n = 0, len = strlen(dir);
    int rc;

    memset(c, 0, sizeof(*c));
    c->dir = dir;
    c->keep = keep;
    c->last_iter = -1;
    rc = make_dir("--checkpoint-dir", dir, st);
    if (rc != CT_OK)
        return rc;
    c->pattern = malloc(2 * len + sizeof(tail));
    if (c->pattern == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    /* The directory is literal text of the pattern. */
    for (i = 0; i < len; i++) {
        c->pattern[n++] = dir[i];
        if (dir[i] == '%')
            c->pattern[n++] = '%';
    }
    memcpy(c->pattern + n, tail, sizeof(tail));
    return CT_OK;
}

void ct__run_ckpt_destroy(struct ct__run_ckpt *c)
{
    free(c->pattern);
    c->pattern = NULL;
}

int ct__run_ckpt_save(struct ct__run_ckpt *c, ct_engine_t *eng,
                      const ct_workspace_t *ws,
                      const struct ct__run_blobs *state, int64_t iter,
                      ct_status_t *st)
{
    struct ct_checkpoint_options o;
    const char **names;
    size_t i, n = 0;
    uint64_t t0;
    double dt;
    int rc;

    names = calloc(state->n > 0 ? state->n : 1, sizeof(*names));
    if (names == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    for (i = 0; i < state->n; i++)
        if (is_saveable(ct_workspace_get_blob(ws, state->names[i])))
            names[n++] = state->names[i];
    ct_checkpoint_options_init(&o);
    o.keep_last = c->keep;
    t0 = ct__cli_now_ns();
    rc =
        ct_engine_checkpoint_async(eng, ws, names, n, c->pattern, iter, &o, st);
    dt = (double)(ct__cli_now_ns() - t0);
    free(names);
    if (rc != CT_OK) {
        ct_status_prefix(st, "--checkpoint-dir %s: ", c->dir);
        return rc;
    }
    c->stall_ns += dt;
    if (dt > c->max_stall_ns)
        c->max_stall_ns = dt;
    c->last_iter = iter;
    c->n_blobs = n;
    c->n_saves++;
    return CT_OK;
}

int ct__run_ckpt_finish(struct ct__run_ckpt *c, ct_engine_t *eng,
                        ct_status_t *st)
{
    int rc = ct_engine_flush_checkpoints(eng, st);

    if (rc != CT_OK)
        ct_status_prefix(st, "--checkpoint-dir %s: ", c->dir);
    return rc;
}

/* ---- --resume ---- */

struct cand {
    int64_t iter;
    char *name;
};

static int cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;

    return x->iter < y->iter ? 1 : x->iter > y->iter ? -1 : 0;
}

/* The iteration of "ckpt_<digits>.minidb", or -1 for any other name. */
static int64_t ckpt_iter(const char *name)
{
    const size_t np = strlen(CKPT_PREFIX);
    const char *p = name + np;
    int64_t v = 0;
    size_t nd = 0;

    if (strncmp(name, CKPT_PREFIX, np) != 0)
        return -1;
    for (; *p >= '0' && *p <= '9'; p++, nd++) {
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (nd == 0 || strcmp(p, CKPT_SUFFIX) != 0)
        return -1;
    return v;
}

/* Whether name is a temporary file of an unfinished save of a checkpoint
 * (".ckpt_N.minidb.tmp.<pid>.<seq>", storage/fileio.c). */
static bool is_ckpt_temp(const char *name)
{
    return name[0] == '.' &&
           strncmp(name + 1, CKPT_PREFIX, strlen(CKPT_PREFIX)) == 0 &&
           strstr(name, CKPT_SUFFIX ".tmp.") != NULL;
}

static void cands_free(struct cand *c, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(c[i].name);
    free(c);
}

/* The checkpoint files of dir, newest first. A missing dir gives none. */
static int list_cands(const char *dir, struct cand **out, size_t *n_out,
                      ct_status_t *st)
{
    struct cand *c = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    DIR *dp;

    *out = NULL;
    *n_out = 0;
    dp = opendir(dir);
    if (dp == NULL) {
        if (errno == ENOENT)
            return CT_OK;
        return ct_status_setf(st, CT_EIO, "--checkpoint-dir %s: %s", dir,
                              strerror(errno));
    }
    while ((e = readdir(dp)) != NULL) {
        int64_t it = ckpt_iter(e->d_name);
        if (it < 0) {
            if (is_ckpt_temp(e->d_name))
                fprintf(stderr,
                        "cortado: notice: --resume: skipping %s/%s: "
                        "temporary file of an unfinished save\n",
                        dir, e->d_name);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            struct cand *nc = realloc(c, ncap * sizeof(*nc));
            if (nc == NULL)
                goto oom;
            c = nc;
            cap = ncap;
        }
        c[n].iter = it;
        c[n].name = malloc(strlen(dir) + strlen(e->d_name) + 2);
        if (c[n].name == NULL)
            goto oom;
        sprintf(c[n].name, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(dp);
    if (n > 0)
        qsort(c, n, sizeof(*c), cand_cmp);
    *out = c;
    *n_out = n;
    return CT_OK;
oom:
    closedir(dp);
    cands_free(c, n);
    return ct_status_setf(st, CT_ENOMEM, "out of memory");
}

/* Runs Load (load_all, absolute path) of path into ws. */
static int load_into(ct_workspace_t *ws, const char *path, ct_status_t *st)
{
    static const char *const names[4] = {"db", "db_type", "absolute_path",
                                         "load_all"};
    Caffe2__OperatorDef op = CAFFE2__OPERATOR_DEF__INIT;
    Caffe2__Argument args[4], *pa[4];
    int i;

    for (i = 0; i < 4; i++) {
        caffe2__argument__init(&args[i]);
        args[i].name = (char *)names[i];
        pa[i] = &args[i];
    }
    args[0].has_s = 1;
    args[0].s.data = (uint8_t *)path;
    args[0].s.len = strlen(path);
    args[1].has_s = 1;
    args[1].s.data = (uint8_t *)"minidb";
    args[1].s.len = strlen("minidb");
    args[2].has_i = args[3].has_i = 1;
    args[2].i = args[3].i = 1;
    op.type = (char *)"Load";
    op.n_arg = 4;
    op.arg = pa;
    return ct_workspace_run_operator_once(ws, &op, st);
}

/* "FLOAT [2, 3]" or "std::string" of a saveable blob. */
static const char *describe(const ct_blob_t *b, char *buf, size_t size)
{
    const ct_tensor_t *t = ct_blob_get_tensor(b);
    char shape[200];

    if (t == NULL) {
        snprintf(buf, size, "a std::string");
        return buf;
    }
    snprintf(buf, size, "%s %s", ct_dtype_name(ct_tensor_dtype(t)),
             ct_tensor_shape_str(t, shape, sizeof(shape)));
    return buf;
}

static bool same_kind(const ct_blob_t *a, const ct_blob_t *b)
{
    const ct_tensor_t *x = ct_blob_get_tensor(a), *y = ct_blob_get_tensor(b);

    if (x == NULL || y == NULL)
        return x == NULL && y == NULL && ct_blob_get_string(a) != NULL &&
               ct_blob_get_string(b) != NULL;
    return ct_tensor_dtype(x) == ct_tensor_dtype(y) &&
           ct_tensor_ndim(x) == ct_tensor_ndim(y) &&
           memcmp(ct_tensor_dims(x), ct_tensor_dims(y),
                  (size_t)ct_tensor_ndim(x) * sizeof(int64_t)) == 0;
}

/* CT_ESHAPE when both are tensors of one dtype, else CT_ETYPE. */
static int mismatch_code(const ct_blob_t *a, const ct_blob_t *b)
{
    const ct_tensor_t *x = ct_blob_get_tensor(a), *y = ct_blob_get_tensor(b);

    return x != NULL && y != NULL && ct_tensor_dtype(x) == ct_tensor_dtype(y)
               ? CT_ESHAPE
               : CT_ETYPE;
}

/* Every blob of the checkpoint (loaded into tmp) must be a blob of the
 * state with the dtype and shape the workspace has; every blob of the
 * state that the workspace holds as a tensor or string, or that NET has
 * not created yet, must be in the checkpoint. */
static int check_match(const ct_workspace_t *ws, const ct_workspace_t *tmp,
                       const struct ct__run_blobs *state, const char *path,
                       ct_status_t *st)
{
    const char **names = NULL;
    char d0[256], d1[256];
    size_t i, n = 0, idx;
    int rc;

    rc = ct_workspace_list_local_blobs(tmp, &names, &n, st);
    if (rc != CT_OK)
        return rc;
    for (i = 0; i < n && rc == CT_OK; i++) {
        const ct_blob_t *src = ct_workspace_get_blob(tmp, names[i]);
        const ct_blob_t *dst = ct_workspace_get_blob(ws, names[i]);
        if (!blobs_find(state, names[i], &idx))
            rc = ct_status_setf(st, CT_ENOTFOUND,
                                "checkpoint %s holds blob \"%s\", which is "
                                "not part of the state of this run (not "
                                "produced by --init, created by "
                                "--fill-params nor updated in place by "
                                "--net): a checkpoint of another net?",
                                path, names[i]);
        else if (!is_saveable(src))
            rc = ct_status_setf(st, CT_ETYPE,
                                "checkpoint %s: blob \"%s\" holds neither a "
                                "tensor nor a string",
                                path, names[i]);
        else if (dst != NULL && !ct_blob_is_empty(dst) && !same_kind(src, dst))
            rc = ct_status_setf(
                st, mismatch_code(src, dst),
                "checkpoint %s: blob \"%s\" is %s there but %s in the "
                "workspace (%s)",
                path, names[i], describe(src, d0, sizeof(d0)),
                is_saveable(dst) ? describe(dst, d1, sizeof(d1))
                                 : "another type",
                ct__run_origin_text(state->origins[idx]));
    }
    ct_free(names);
    for (i = 0; i < state->n && rc == CT_OK; i++) {
        const ct_blob_t *dst = ct_workspace_get_blob(ws, state->names[i]);
        bool wanted = dst == NULL || ct_blob_is_empty(dst) || is_saveable(dst);
        if (wanted && !ct_workspace_has_blob(tmp, state->names[i]))
            rc = ct_status_setf(st, CT_ENOTFOUND,
                                "checkpoint %s has no blob \"%s\" (%s): a "
                                "checkpoint of another net?",
                                path, state->names[i],
                                ct__run_origin_text(state->origins[i]));
    }
    return rc;
}

/* Moves every blob of tmp into ws. Creating the blobs first (the only
 * step that can fail) keeps the move all-or-nothing. */
static int install(ct_workspace_t *ws, ct_workspace_t *tmp, size_t *n_out,
                   ct_status_t *st)
{
    const char **names = NULL;
    ct_blob_t *dst;
    size_t i, n = 0;
    int rc;

    rc = ct_workspace_list_local_blobs(tmp, &names, &n, st);
    for (i = 0; i < n && rc == CT_OK; i++)
        rc = ct_workspace_create_blob(ws, names[i], &dst, st);
    for (i = 0; i < n && rc == CT_OK; i++) {
        ct_blob_t *src = ct_workspace_get_blob(tmp, names[i]);
        const ct_blob_type_t *type = ct_blob_type(src);
        dst = ct_workspace_get_blob(ws, names[i]);
        ct_blob_reset(dst, type, ct_blob_take(src));
    }
    ct_free(names);
    *n_out = n;
    return rc;
}

/* The counter of NET's first Iter op, or -1 when there is none. */
static int64_t iter_counter(const ct_workspace_t *ws, const ct_netdef_t *net)
{
    size_t i;

    for (i = 0; i < net->n_op; i++) {
        const ct_opdef_t *op = net->op[i];
        const ct_blob_t *b;
        const ct_tensor_t *t;
        if (op->type == NULL || strcmp(op->type, "Iter") != 0 ||
            op->n_output < 1)
            continue;
        b = ct_workspace_get_blob(ws, op->output[0]);
        t = b != NULL ? ct_blob_get_tensor(b) : NULL;
        if (t == NULL || ct_tensor_dtype(t) != CT_DTYPE_I64 ||
            ct_tensor_numel(t) != 1)
            return -1;
        return ((const int64_t *)ct_tensor_cdata(t))[0];
    }
    return -1;
}

int ct__run_ckpt_resume(const char *dir, ct_workspace_t *ws,
                        const struct ct__run_blobs *state,
                        const ct_netdef_t *net, struct ct__run_resume *r,
                        ct_status_t *st)
{
    struct cand *c = NULL;
    ct_workspace_t *tmp = NULL;
    size_t i, n = 0;
    int64_t counter;
    int rc;

    memset(r, 0, sizeof(*r));
    rc = list_cands(dir, &c, &n, st);
    if (rc != CT_OK)
        return rc;
    for (i = 0; i < n; i++) {
        ct_status_t vst;
        size_t plen = strlen(c[i].name);
        const char *why;
        ct_status_clear(&vst);
        if (ct_db_verify("minidb", c[i].name, NULL, &vst) == CT_OK)
            break;
        /* The message usually starts with the path already. */
        why = vst.msg;
        if (strncmp(why, c[i].name, plen) == 0 &&
            strncmp(why + plen, ": ", 2) == 0)
            why += plen + 2;
        fprintf(stderr, "cortado: notice: --resume: skipping %s: %s\n",
                c[i].name, why[0] != '\0' ? why : "does not verify");
        r->n_skipped++;
    }
    if (i == n) {
        fprintf(stderr,
                "cortado: notice: --resume: no complete checkpoint in %s%s; "
                "starting from scratch\n",
                dir, n > 0 ? " (every one was skipped)" : "");
        cands_free(c, n);
        return CT_OK;
    }
    r->path = c[i].name;
    r->iter = c[i].iter;
    c[i].name = NULL;
    cands_free(c, n);
    rc = ct_workspace_new(ct_workspace_engine(ws), NULL, &tmp, st);
    if (rc == CT_OK)
        rc = load_into(tmp, r->path, st);
    if (rc == CT_OK)
        rc = check_match(ws, tmp, state, r->path, st);
    if (rc == CT_OK)
        rc = install(ws, tmp, &r->n_blobs, st);
    ct_workspace_free(tmp);
    if (rc != CT_OK) {
        if (strstr(st->msg, r->path) == NULL)
            ct_status_prefix(st, "--resume %s: ", r->path);
        else
            ct_status_prefix(st, "--resume: ");
        return rc;
    }
    counter = iter_counter(ws, net);
    if (counter >= 0)
        r->iter = counter;
    r->resumed = true;
    return CT_OK;
}

void ct__run_resume_destroy(struct ct__run_resume *r)
{
    free(r->path);
    r->path = NULL;
}

/* ---- --save-params ---- */

/* name with '/' replaced by '_' and ".npy" appended (malloc'd). */
static char *npy_name(const char *name)
{
    size_t i, n = strlen(name);
    char *s = malloc(n + 5);

    if (s == NULL)
        return NULL;
    for (i = 0; i < n; i++)
        s[i] = name[i] == '/' ? '_' : name[i];
    memcpy(s + n, ".npy", 5);
    return s;
}

/* Appends printf output to a growing text buffer. */
static int text_appendf(char **buf, size_t *len, size_t *cap, ct_status_t *st,
                        const char *fmt, ...) CT_PRINTF(5, 6);

static int text_appendf(char **buf, size_t *len, size_t *cap, ct_status_t *st,
                        const char *fmt, ...)
{
    va_list ap;
    int k;

    va_start(ap, fmt);
    k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0)
        return ct_status_setf(st, CT_EINVAL, "cannot format params.txt");
    if (*len + (size_t)k + 1 > *cap) {
        size_t ncap = 2 * (*len + (size_t)k + 1);
        char *nb = realloc(*buf, ncap);
        if (nb == NULL)
            return ct_status_setf(st, CT_ENOMEM, "out of memory");
        *buf = nb;
        *cap = ncap;
    }
    va_start(ap, fmt);
    vsnprintf(*buf + *len, *cap - *len, fmt, ap);
    va_end(ap);
    *len += (size_t)k;
    return CT_OK;
}

int ct__run_save_params(const ct_workspace_t *ws,
                        const struct ct__run_blobs *params, const char *dir,
                        size_t *n_written, ct_status_t *st)
{
    char **files = NULL, *path = NULL, *text = NULL, shape[256];
    size_t i, k, len = 0, cap = 0, n = 0;
    int rc;

    *n_written = 0;
    rc = make_dir("--save-params", dir, st);
    if (rc != CT_OK)
        return rc;
    files = calloc(params->n > 0 ? params->n : 1, sizeof(*files));
    path = malloc(strlen(dir) + 64);
    if (files == NULL || path == NULL) {
        rc = ct_status_setf(st, CT_ENOMEM, "out of memory");
        goto done;
    }
    /* Names first, so that a collision fails before any file is written. */
    for (i = 0; i < params->n && rc == CT_OK; i++) {
        files[i] = npy_name(params->names[i]);
        if (files[i] == NULL) {
            rc = ct_status_setf(st, CT_ENOMEM, "out of memory");
            break;
        }
        for (k = 0; k < i; k++)
            if (strcmp(files[k], files[i]) == 0)
                rc = ct_status_setf(st, CT_EEXIST,
                                    "--save-params: blobs \"%s\" and \"%s\" "
                                    "would both be written to %s/%s",
                                    params->names[k], params->names[i], dir,
                                    files[i]);
    }
    for (i = 0; i < params->n && rc == CT_OK; i++) {
        const ct_blob_t *b = ct_workspace_get_blob(ws, params->names[i]);
        const ct_tensor_t *t = b != NULL ? ct_blob_get_tensor(b) : NULL;
        char *np;
        if (t == NULL) {
            fprintf(stderr,
                    "cortado: notice: --save-params: blob \"%s\" (%s) holds "
                    "no tensor; not saved\n",
                    params->names[i], ct__run_origin_text(params->origins[i]));
            continue;
        }
        np = realloc(path, strlen(dir) + strlen(files[i]) + 2);
        if (np == NULL) {
            rc = ct_status_setf(st, CT_ENOMEM, "out of memory");
            break;
        }
        path = np;
        sprintf(path, "%s/%s", dir, files[i]);
        rc = ct_npy_write_file(t, path, st);
        if (rc != CT_OK) {
            ct_status_prefix(st, "--save-params %s: ", params->names[i]);
            break;
        }
        rc = text_appendf(&text, &len, &cap, st, "%s\t%s\t%s\t%s\n",
                          params->names[i], files[i],
                          ct_dtype_name(ct_tensor_dtype(t)),
                          ct_tensor_shape_str(t, shape, sizeof(shape)));
        n++;
    }
    if (rc == CT_OK) {
        char *np = realloc(path, strlen(dir) + sizeof("/params.txt"));
        if (np == NULL) {
            rc = ct_status_setf(st, CT_ENOMEM, "out of memory");
            goto done;
        }
        path = np;
        sprintf(path, "%s/params.txt", dir);
        rc = ct_file_write(path, text != NULL ? text : "", len, st);
        if (rc != CT_OK)
            ct_status_prefix(st, "--save-params: ");
    }
    *n_written = n;
done:
    if (files != NULL)
        for (i = 0; i < params->n; i++)
            free(files[i]);
    free(files);
    free(path);
    free(text);
    return rc;
}
