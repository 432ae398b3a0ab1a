/* Load (Caffe2's LoadOp in caffe2/operators/load_save_op.h; spec §4.7).
 *
 * Load          no inputs (DBReader inputs are not supported), outputs
 *               0..inf. Reads blobs from one db (`db`) or several
 *               (`dbs`, which wins) of type `db_type`.
 *   Key -> blob name: cut the key at the first "#%", apply strip_prefix
 *   (drop everything up to and including its first occurrence), prepend
 *   add_prefix.
 *   - default: output i gets the record named source_blob_names[i] (or,
 *     without them, the output's own name); records of other names are
 *     skipped without being read; each db stops early once every output
 *     is complete;
 *   - load_all: every record goes to the blob named after its key
 *     (created if needed); declared outputs must all be in the db(s);
 *   - allow_incomplete: outputs missing from the db(s) are not an error.
 *   A name found in two different dbs is "Duplicate Key K is found!"
 *   (the name -> db map lives in the op, across runs, as in Caffe2).
 *   Chunks are assembled with Caffe2's BlobState rules (deserialize.c);
 *   "!!CT_HEADER" / "!!CT_MANIFEST" never reach here (the minidb cursor
 *   hides them); "!!META_NET_DEF" of a predictor export loads as a
 *   std::string blob when asked for (or under load_all).
 *   keep_device is accepted (cortado is CPU-only); shape and dtype only
 *   feed shape inference when there is one output.
 * Deliberate differences: Load is all-or-nothing. Blobs are assembled
 * aside and put into the workspace only when every check passed, so a
 * failed Load changes no blob (Caffe2 reset outputs and wrote data
 * before validating). With allow_incomplete, outputs not found are left
 * as they were instead of being removed from the workspace: the net holds
 * their blob pointers, so removing them would leave those dangling.
 * Thread-safety: load_all creates workspace blobs at run time, which the
 * workspace contract allows only while no other op of the workspace
 * runs; the op is flagged CT_OP_F_IO.
 */
#include <string.h>

#include "engine/strmap.h"
#include "storage/storage_impl.h"
#include "storage/storage_ops.h"

struct load_state {
    char **dbs;
    size_t n_dbs;
    char *db_type;
    bool absolute, load_all, allow_incomplete;
    char *strip, *add;
    char **wanted; /* source name per output (not load_all) */
    size_t n_wanted;
    struct ct__strmap want_pos; /* wanted name -> output index + 1 */
    struct ct__strmap key_db;   /* blob name -> db index + 1, across runs */
    char *db_options;
    size_t db_options_len;
    ct_shape_t shape; /* from `shape` / `dtype`, for inference */
    bool have_shape;
};

static int load_args(ct_op_t *op, struct load_state *s, ct_status_t *st)
{
    char *db = NULL, **src = NULL;
    size_t n_src = 0, i, j;
    int64_t v;
    const int64_t *shape;
    size_t n_shape;
    const char *opts;
    size_t len;
    int rc;

    if (op->n_in > 0)
        return ct_status_setf(st, CT_ENOTSUP,
                              "Load from DBReader inputs is not supported "
                              "(cortado has no DBReader blobs)");
    rc = ct__arg_dup_string(op, "db_type", "", &s->db_type, st);
    if (rc != CT_OK)
        return rc;
    if (s->db_type[0] == '\0')
        return ct_status_setf(st, CT_EARG, "Must specify a db type.");
    rc = ct__arg_dup_strings(op, "dbs", &s->dbs, &s->n_dbs, st);
    if (rc == CT_OK)
        rc = ct__arg_dup_string(op, "db", "", &db, st);
    if (rc != CT_OK) {
        ct__free(db);
        return rc;
    }
    if (s->n_dbs == 0) {
        if (db[0] == '\0') {
            ct__free(db);
            return ct_status_setf(st, CT_EARG, "Must specify a db name.");
        }
        s->dbs = ct__malloc(sizeof(*s->dbs));
        if (s->dbs == NULL) {
            ct__free(db);
            return ct_status_setf(st, CT_ENOMEM, "out of memory");
        }
        s->dbs[0] = db;
        s->n_dbs = 1;
    } else {
        ct__free(db);
        for (i = 0; i < s->n_dbs; i++) {
            if (s->dbs[i][0] == '\0')
                return ct_status_setf(st, CT_EARG,
                                      "Db name should not be empty.");
            for (j = 0; j < i; j++)
                if (strcmp(s->dbs[i], s->dbs[j]) == 0)
                    return ct_status_setf(st, CT_EARG, "Duplicated db name: %s",
                                          s->dbs[i]);
        }
    }
    if (!ct_db_type_registered(s->db_type))
        return ct_status_setf(st, CT_ENOTFOUND,
                              "Cannot find db implementation of type %s "
                              "(while trying to open %s); registered types: "
                              "%s",
                              s->db_type, s->dbs[0], ct_db_type_list());
    rc = ct__arg_int(op, "absolute_path", 0, &v, st);
    if (rc != CT_OK)
        return rc;
    s->absolute = v != 0;
    for (i = 0; i < s->n_dbs; i++)
        if ((rc = ct__path_check_lexical(s->dbs[i], s->absolute, st)) != CT_OK)
            return rc;
    if ((rc = ct__arg_int(op, "keep_device", 0, &v, st)) != CT_OK ||
        (rc = ct__arg_int(op, "load_all", 0, &v, st)) != CT_OK)
        return rc;
    s->load_all = v != 0;
    if ((rc = ct__arg_int(op, "allow_incomplete", 0, &v, st)) != CT_OK)
        return rc;
    s->allow_incomplete = v != 0;
    if ((rc = ct__arg_dup_string(op, "strip_prefix", "", &s->strip, st)) !=
            CT_OK ||
        (rc = ct__arg_dup_string(op, "add_prefix", "", &s->add, st)) != CT_OK ||
        (rc = ct__arg_string(op, "db_options", "", &opts, &len, st)) != CT_OK)
        return rc;
    s->db_options = ct__malloc(len + 1);
    if (s->db_options == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    memcpy(s->db_options, opts, len);
    s->db_options[len] = '\0';
    s->db_options_len = len;

    rc = ct__arg_dup_strings(op, "source_blob_names", &src, &n_src, st);
    if (rc != CT_OK)
        return rc;
    if (n_src > 0 && n_src != (size_t)op->n_out)
        rc = ct_status_setf(st, CT_EARG,
                            "Number of output blobs and source_blob_names "
                            "mismatch. (%d outputs, %zu names)",
                            op->n_out, n_src);
    else if (n_src > 0 && s->strip[0] != '\0')
        rc = ct_status_setf(st, CT_EARG,
                            "source_blob_names and strip_prefix are "
                            "mutually exclusive.");
    else if (n_src > 0 && s->load_all)
        rc = ct_status_setf(st, CT_EARG,
                            "cannot load_all_ while using "
                            "source_blob_names.");
    if (rc != CT_OK) {
        ct__strv_free(src, n_src);
        return rc;
    }
    s->wanted = src;
    s->n_wanted = n_src;
    if (!s->load_all) {
        if (n_src == 0) {
            s->wanted = ct__calloc((size_t)op->n_out + 1, sizeof(char *));
            if (s->wanted == NULL)
                return ct_status_setf(st, CT_ENOMEM, "out of memory");
            s->n_wanted = (size_t)op->n_out;
            for (i = 0; i < s->n_wanted; i++)
                if ((s->wanted[i] =
                         ct__strdup(ct_op_output_name(op, (int)i))) == NULL)
                    return ct_status_setf(st, CT_ENOMEM, "out of memory");
        }
        for (i = 0; i < s->n_wanted; i++) {
            rc = ct__strmap_insert(&s->want_pos, s->wanted[i],
                                   (void *)(uintptr_t)(i + 1));
            if (rc == CT_EEXIST)
                return ct_status_setf(st, CT_EARG,
                                      "Duplicated source blob name: %s",
                                      s->wanted[i]);
            if (rc != CT_OK)
                return ct_status_setf(st, CT_ENOMEM, "out of memory");
        }
    }
    /* Inference only. */
    rc = ct__arg_ints(op, "shape", &shape, &n_shape, st);
    if (rc == CT_OK)
        rc = ct__arg_int(op, "dtype", CT_DTYPE_F32, &v, st);
    if (rc != CT_OK)
        return rc;
    if (op->n_out == 1 && n_shape > 0 && n_shape <= CT_MAX_DIMS &&
        ct_dtype_valid((int)v)) {
        s->have_shape = true;
        s->shape.dtype = (ct_dtype_t)v;
        s->shape.ndim = (int)n_shape;
        for (i = 0; i < n_shape; i++)
            s->shape.dims[i] = shape[i];
    }
    return CT_OK;
}

static void load_fini(ct_op_t *op)
{
    struct load_state *s = op->state;

    ct__strv_free(s->dbs, s->n_dbs);
    ct__free(s->db_type);
    ct__free(s->strip);
    ct__free(s->add);
    ct__strv_free(s->wanted, s->n_wanted);
    ct__strmap_destroy(&s->want_pos, NULL);
    ct__strmap_destroy(&s->key_db, NULL);
    ct__free(s->db_options);
}

static int load_init(ct_op_t *op, ct_status_t *st)
{
    struct load_state *s = op->state;

    ct__strmap_init(&s->want_pos);
    ct__strmap_init(&s->key_db);
    return load_args(op, s, st);
}

static int load_infer(const ct_op_t *op, const ct_shape_t *in, ct_shape_t *out,
                      ct_status_t *st)
{
    const struct load_state *s = op->state;

    if (s->have_shape)
        out[0] = s->shape;
    return CT_OK;
}

/* ---- run ---- */

static void state_free(void *p)
{
    if (p != NULL)
        ct__blob_state_destroy(p);
    ct__free(p);
}

struct run {
    ct_op_ctx_t *ctx;
    struct load_state *s;
    struct ct__strmap staged; /* blob name -> struct ct__blob_state * */
    size_t loaded;
    struct ct__buf name;
    ct_status_t st;
};

/* The blob name of a key, into r->name (NUL-terminated). */
static int key_to_name(struct run *r, const char *key, size_t klen)
{
    size_t n = ct__key_name_len(key, klen), strip_len = strlen(r->s->strip);
    const char *p = key;

    if (strip_len > 0) {
        size_t i;
        for (i = 0; i + strip_len <= n; i++)
            if (memcmp(key + i, r->s->strip, strip_len) == 0) {
                p = key + i + strip_len;
                n -= i + strip_len;
                break;
            }
    }
    r->name.len = 0;
    if (ct__buf_reserve(&r->name, strlen(r->s->add) + n + 1) != CT_OK)
        return ct_status_setf(&r->st, CT_ENOMEM, "out of memory");
    ct__buf_put(&r->name, r->s->add, strlen(r->s->add));
    ct__buf_put(&r->name, p, n);
    ct__buf_put(&r->name, "", 1);
    return CT_OK;
}

static int take_record(struct run *r, size_t db_idx, ct_db_cursor_t *c,
                       uint64_t bound)
{
    const char *name = (const char *)r->name.p, *key;
    struct ct__blob_state *bs;
    const void *val;
    size_t vlen, klen;
    void *prev;
    bool was_complete;
    int rc;

    if (ct__strmap_find(&r->s->key_db, name, &prev)) {
        if ((uintptr_t)prev != db_idx + 1)
            return ct_status_setf(&r->st, CT_EEXIST,
                                  "Duplicate Key %s is found!", name);
    } else if (ct__strmap_insert(&r->s->key_db, name,
                                 (void *)(uintptr_t)(db_idx + 1)) != CT_OK) {
        return ct_status_setf(&r->st, CT_ENOMEM, "out of memory");
    }
    rc = ct_db_cursor_value(c, &val, &vlen, &r->st);
    if (rc != CT_OK)
        return rc;
    bs = ct__strmap_get(&r->staged, name);
    if (bs == NULL) {
        bs = ct__calloc(1, sizeof(*bs));
        if (bs == NULL || ct__strmap_insert(&r->staged, name, bs) != CT_OK) {
            ct__free(bs);
            return ct_status_setf(&r->st, CT_ENOMEM, "out of memory");
        }
    }
    was_complete = bs->kind != 0 && bs->current == bs->total;
    key = ct_db_cursor_key(c, &klen);
    rc = ct__blob_state_merge(bs, r->ctx->eng, key, val, vlen, bound, &r->st);
    if (rc != CT_OK)
        return rc;
    if (!was_complete && bs->current == bs->total)
        r->loaded++;
    return CT_OK;
}

static int read_db(struct run *r, size_t db_idx)
{
    struct load_state *s = r->s;
    const ct_op_t *op = r->ctx->op;
    ct_db_t *db = NULL;
    ct_db_cursor_t *c = NULL;
    char *path = NULL;
    int rc;

    rc = ct__path_resolve(ct_workspace_root_folder(op->ws), s->dbs[db_idx],
                          s->absolute, &path, &r->st);
    if (rc == CT_OK)
        rc = ct_db_open(s->db_type, path, CT_DB_READ, &db, &r->st);
    if (rc == CT_OK)
        rc = ct_db_set_options(db, s->db_options, s->db_options_len, &r->st);
    if (rc == CT_OK)
        rc = ct_db_cursor_new(db, &c, &r->st);
    while (rc == CT_OK && ct_db_cursor_valid(c)) {
        size_t klen;
        const char *key = ct_db_cursor_key(c, &klen);
        if (!s->load_all && r->loaded == s->n_wanted)
            break; /* every output is complete: stop this source */
        rc = key_to_name(r, key, klen);
        if (rc == CT_OK &&
            (s->load_all ||
             ct__strmap_find(&s->want_pos, (const char *)r->name.p, NULL))) {
            rc = take_record(r, db_idx, c, ct_db_size(db));
            if (rc != CT_OK && rc != CT_ENOMEM &&
                strstr(r->st.msg, path) == NULL)
                ct_status_prefix(&r->st, "%s: ", path);
        }
        if (rc == CT_OK)
            rc = ct_db_cursor_next(c, &r->st);
    }
    ct_db_cursor_free(c);
    ct_db_free(db);
    ct__free(path);
    return rc;
}

/* Every check passed: move the staged blobs into the workspace. Blobs are
 * looked up (or created, for load_all) first, since that can fail; a
 * failure removes the blobs this call created, so the workspace is left
 * as it was. Installing cannot fail. */
static int install(struct run *r)
{
    const ct_op_t *op = r->ctx->op;
    size_t n = ct__strmap_size(&r->staged), k = 0, it = 0, j;
    ct_blob_t **blobs;
    bool *created;
    const char *name;
    void *val;
    int rc = CT_OK;

    blobs = ct__calloc(n > 0 ? n : 1, sizeof(*blobs));
    created = ct__calloc(n > 0 ? n : 1, sizeof(*created));
    if (blobs == NULL || created == NULL) {
        ct__free(blobs);
        ct__free(created);
        return ct_status_setf(&r->st, CT_ENOMEM, "out of memory");
    }
    while (ct__strmap_next(&r->staged, &it, &name, &val)) {
        if (r->s->load_all) {
            ct_status_t tmp;
            created[k] = !ct_workspace_has_blob(op->ws, name);
            rc = ct_workspace_create_blob(op->ws, name, &blobs[k], &tmp);
            if (rc != CT_OK) {
                rc = ct_status_setf(&r->st, rc, "%s", tmp.msg);
                break;
            }
        } else {
            uintptr_t pos = (uintptr_t)ct__strmap_get(&r->s->want_pos, name);
            blobs[k] = op->out[pos - 1];
        }
        k++;
    }
    if (rc != CT_OK) {
        for (j = 0; j < k; j++)
            if (created[j])
                ct_workspace_remove_blob(op->ws, ct_blob_name(blobs[j]), NULL);
    }
    it = 0;
    k = 0;
    while (rc == CT_OK && ct__strmap_next(&r->staged, &it, &name, &val)) {
        struct ct__blob_state *bs = val;
        if (bs->kind == CT_BLOB_KIND_TENSOR) {
            ct_blob_reset(blobs[k], &ct_blob_type_tensor, bs->tensor);
            bs->tensor = NULL;
        } else {
            ct_blob_reset(blobs[k], &ct_blob_type_string, bs->str);
            bs->str = NULL;
        }
        k++;
    }
    ct__free(blobs);
    ct__free(created);
    return rc;
}

static int check_outcome(struct run *r)
{
    struct load_state *s = r->s;
    const ct_op_t *op = r->ctx->op;
    size_t it = 0, i;
    const char *name;
    void *val;
    int rc;

    while (ct__strmap_next(&r->staged, &it, &name, &val))
        if ((rc = ct__blob_state_check(val, name, &r->st)) != CT_OK)
            return rc;
    if (s->load_all) {
        for (i = 0; i < (size_t)op->n_out; i++)
            if (ct__strmap_get(&r->staged, ct_op_output_name(op, (int)i)) ==
                NULL)
                return ct_status_setf(&r->st, CT_ENOTFOUND,
                                      "Output blob name %s does not exist in "
                                      "the db(s).",
                                      ct_op_output_name(op, (int)i));
        return CT_OK;
    }
    if (r->loaded == s->n_wanted || s->allow_incomplete)
        return CT_OK;
    {
        char missing[160] = "";
        size_t off = 0;
        for (i = 0; i < s->n_wanted && off < sizeof(missing) - 1; i++) {
            int w;
            if (ct__strmap_get(&r->staged, s->wanted[i]) != NULL)
                continue;
            w = snprintf(missing + off, sizeof(missing) - off, "%s%s",
                         off > 0 ? ", " : "", s->wanted[i]);
            off += w > 0 ? (size_t)w : 0;
        }
        return ct_status_setf(&r->st, CT_ENOTFOUND,
                              "Expected to load %zu blobs, got %zu only. "
                              "Failed to load: %s",
                              s->n_wanted, r->loaded, missing);
    }
}

static int load_run(ct_op_ctx_t *ctx)
{
    struct run r;
    size_t i;
    int rc = CT_OK;

    memset(&r, 0, sizeof(r));
    r.ctx = ctx;
    r.s = ctx->op->state;
    ct__strmap_init(&r.staged);
    ct__buf_init(&r.name);
    ct_status_clear(&r.st);
    for (i = 0; i < r.s->n_dbs && rc == CT_OK; i++)
        if (r.s->load_all || r.loaded < r.s->n_wanted || r.s->n_wanted == 0)
            rc = read_db(&r, i);
    if (rc == CT_OK)
        rc = check_outcome(&r);
    if (rc == CT_OK)
        rc = install(&r);
    ct__strmap_destroy(&r.staged, state_free);
    ct__buf_destroy(&r.name);
    return rc == CT_OK ? CT_OK : ct_op_fail(ctx, rc, "%s", r.st.msg);
}

static const struct ct_arg_spec load_arg_specs[] = {
    {"db", CT_ARG_STRING, false},
    {"dbs", CT_ARG_STRINGS, false},
    {"db_type", CT_ARG_STRING, false},
    {"absolute_path", CT_ARG_INT, false},
    {"add_prefix", CT_ARG_STRING, false},
    {"strip_prefix", CT_ARG_STRING, false},
    {"keep_device", CT_ARG_INT, false},
    {"load_all", CT_ARG_INT, false},
    {"allow_incomplete", CT_ARG_INT, false},
    {"source_blob_names", CT_ARG_STRINGS, false},
    {"db_options", CT_ARG_STRING, false},
    {"shape", CT_ARG_INTS, false},
    {"dtype", CT_ARG_INT, false},
    {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_load = {
    .name = "Load",
    .min_inputs = 0,
    .max_inputs = CT_INF,
    .min_outputs = 0,
    .max_outputs = CT_INF,
    .args = load_arg_specs,
    .state_size = sizeof(struct load_state),
    .init_cb = load_init,
    .fini_cb = load_fini,
    .infer_cb = load_infer,
    .run_cb = load_run,
    .flags = CT_OP_F_IO,
    .doc = "Loads blobs from one or more dbs (all-or-nothing).",
};
