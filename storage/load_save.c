/* Save and DBExists (Caffe2's caffe2/operators/load_save_op.{h,cc}; spec
 * §4.6, §4.9), and Save's argument parsing that Checkpoint shares.
 *
 * Save          inputs 1..inf (any tensor or std::string blob), no
 *               outputs. Writes every input into a NEW db `db` of type
 *               `db_type`, one record per tensor chunk "<name>#%<k>" and
 *               one per string, in input order. Arguments:
 *                 db, db_type      required
 *                 absolute_path    0: db is relative to the workspace root
 *                                  folder and must stay inside it
 *                 strip_prefix     drop everything up to and including
 *                                  its first occurrence in each name
 *                 blob_name_overrides  stored names, one per input
 *                 chunk_size       legacy: 0 none, -1 default, n
 *                 options          serialized SerializationOptions; the
 *                                  first entry whose blob_name_regex is
 *                                  empty or fully matches the stored name
 *                                  applies (POSIX extended regex), then
 *                                  chunk_size, then the defaults
 *                 db_options       handed to the db (ignored by minidb
 *                                  and lmdb)
 *               Every argument is checked when the op is created, so a
 *               bad Save fails ct_net_new, not the run. The file is
 *               replaced crash-safely (storage/fileio.h).
 * DBExists      no inputs, output 0 a 0-d BOOL: whether `db_name` of
 *               `db_type` opens for reading (Caffe2 reads `db_name`, not
 *               `db`). An unregistered type is an error (Caffe2 said
 *               true).
 * Neither runs in place or has a gradient. Run-time allocations are
 * limited to the path string and the DB's buffers (I/O ops).
 */
#include <regex.h>
#include <string.h>

#include "cortado/proto.h"
#include "storage/storage_impl.h"
#include "storage/storage_ops.h"

/* ---- argument helpers ---- */

int ct__arg_dup_string(const ct_op_t *op, const char *name, const char *dflt,
                       char **out, ct_status_t *st)
{
    const char *s;
    size_t len;
    int rc = ct__arg_string(op, name, dflt, &s, &len, st);

    *out = NULL;
    if (rc != CT_OK)
        return rc;
    if (s == NULL)
        return CT_OK;
    if (memchr(s, '\0', len) != NULL)
        return ct_status_setf(st, CT_EARG, "argument %s holds a NUL byte",
                              name);
    *out = ct__strndup(s, len);
    if (*out == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    return CT_OK;
}

void ct__strv_free(char **v, size_t n)
{
    size_t i;

    if (v == NULL)
        return;
    for (i = 0; i < n; i++)
        ct__free(v[i]);
    ct__free(v);
}

int ct__arg_dup_strings(const ct_op_t *op, const char *name, char ***out,
                        size_t *n, ct_status_t *st)
{
    const ProtobufCBinaryData *v;
    size_t k, cnt;
    char **r;
    int rc = ct__arg_strings(op, name, &v, &cnt, st);

    *out = NULL;
    *n = 0;
    if (rc != CT_OK || cnt == 0)
        return rc;
    r = ct__calloc(cnt, sizeof(*r));
    if (r == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    for (k = 0; k < cnt; k++) {
        const char *d = v[k].data != NULL ? (const char *)v[k].data : "";
        if (memchr(d, '\0', v[k].len) != NULL) {
            ct__strv_free(r, cnt);
            return ct_status_setf(st, CT_EARG,
                                  "argument %s[%zu] holds a NUL byte", name, k);
        }
        r[k] = ct__strndup(d, v[k].len);
        if (r[k] == NULL) {
            ct__strv_free(r, cnt);
            return ct_status_setf(st, CT_ENOMEM, "out of memory");
        }
    }
    *out = r;
    *n = cnt;
    return CT_OK;
}

/* ---- Save's arguments ---- */

void ct__save_args_destroy(struct ct__save_args *a)
{
    ct__free(a->db);
    ct__free(a->db_type);
    ct__strv_free(a->names, (size_t)a->n);
    ct__free(a->opts);
    ct__free(a->items);
    ct__free(a->db_options);
    memset(a, 0, sizeof(*a));
}

/* Stored names: overrides, or input names with strip_prefix applied. */
static int derive_names(const ct_op_t *op, struct ct__save_args *a,
                        ct_status_t *st)
{
    char **over = NULL, *strip = NULL;
    size_t n_over = 0;
    int i, j, rc;

    rc = ct__arg_dup_strings(op, "blob_name_overrides", &over, &n_over, st);
    if (rc == CT_OK)
        rc = ct__arg_dup_string(op, "strip_prefix", "", &strip, st);
    if (rc != CT_OK)
        goto done;
    if (n_over > 0 && strip[0] != '\0') {
        rc = ct_status_setf(st, CT_EARG,
                            "strip_prefix and "
                            "blob_name_overrides are mutually "
                            "exclusive.");
        goto done;
    }
    if (n_over > 0 && n_over != (size_t)a->n) {
        rc = ct_status_setf(st, CT_EARG,
                            "Number of blobs and blob_name_overrides "
                            "mismatch. (%d inputs, %zu overrides)",
                            a->n, n_over);
        goto done;
    }
    for (i = 0; i < a->n; i++) {
        const char *in = ct_op_input_name(op, i), *cut;
        if (n_over > 0) {
            a->names[i] = over[i];
            over[i] = NULL;
            continue;
        }
        cut = strip[0] != '\0' ? strstr(in, strip) : NULL;
        a->names[i] = ct__strdup(cut != NULL ? cut + strlen(strip) : in);
        if (a->names[i] == NULL) {
            rc = ct_status_setf(st, CT_ENOMEM, "out of memory");
            goto done;
        }
    }
    for (i = 0; i < a->n; i++) {
        if (a->names[i][0] == '\0' || strstr(a->names[i], "#%") != NULL) {
            rc = ct_status_setf(st, CT_EARG,
                                "input %d \"%s\": stored name \"%s\" is empty "
                                "or holds the chunk separator \"#%%\"",
                                i, ct_op_input_name(op, i), a->names[i]);
            goto done;
        }
        for (j = 0; j < i; j++)
            if (strcmp(a->names[i], a->names[j]) == 0) {
                rc = ct_status_setf(st, CT_EARG, "Duplicated input: %s",
                                    a->names[i]);
                goto done;
            }
    }
done:
    ct__strv_free(over, n_over);
    ct__free(strip);
    return rc;
}

static bool regex_full_match(const regex_t *re, const char *s)
{
    return regexec(re, s, 0, NULL, 0) == 0;
}

/* Per-input options: the first matching `options` entry, else the legacy
 * chunk_size, else the defaults. */
static int resolve_options(const ct_op_t *op, struct ct__save_args *a,
                           ct_status_t *st)
{
    Caffe2__SerializationOptions *so = NULL;
    ProtobufCMessage *msg;
    const char *bytes;
    size_t len, k;
    struct ct_serialize_options legacy = {0, 0};
    bool have_legacy = ct__arg_has(op, "chunk_size");
    int64_t cs;
    int i, rc;

    rc = ct__arg_int(op, "chunk_size", 0, &cs, st);
    if (rc != CT_OK)
        return rc;
    if (have_legacy) {
        if (cs < -1)
            return ct_status_setf(st, CT_EARG,
                                  "chunk_size %lld (want 0 for no chunking, "
                                  "-1 for the default, or > 0)",
                                  (long long)cs);
        /* Save's legacy meaning is the reverse of the options'. */
        legacy.chunk_size = cs == 0 ? -1 : cs == -1 ? 0 : cs;
    }
    rc = ct__arg_string(op, "options", "", &bytes, &len, st);
    if (rc != CT_OK)
        return rc;
    if (len > 0) {
        if (ct_proto_unpack(&caffe2__serialization_options__descriptor, bytes,
                            len, &msg, NULL) != CT_OK)
            return ct_status_setf(st, CT_EARG,
                                  "unable to parse serialization options");
        so = (Caffe2__SerializationOptions *)msg;
    }
    for (i = 0; i < a->n; i++)
        a->opts[i] = have_legacy ? legacy : (struct ct_serialize_options){0, 0};
    for (k = 0; so != NULL && k < so->n_options; k++) {
        const Caffe2__BlobSerializationOptions *o = so->options[k];
        const char *re_text =
            o->blob_name_regex != NULL ? o->blob_name_regex : "";
        regex_t re;
        bool any = re_text[0] == '\0';
        if (o->has_chunk_size && o->chunk_size < -1) {
            rc = ct_status_setf(st, CT_EARG,
                                "options entry %zu: chunk_size %lld", k,
                                (long long)o->chunk_size);
            break;
        }
        if (o->has_float_format &&
            ((int)o->float_format < 0 || (int)o->float_format > 2)) {
            rc = ct_status_setf(st, CT_EARG,
                                "options entry %zu: unknown float_format %d", k,
                                (int)o->float_format);
            break;
        }
        if (!any) {
            char *anchored = ct__malloc(strlen(re_text) + 5);
            int err;
            if (anchored == NULL) {
                rc = ct_status_setf(st, CT_ENOMEM, "out of memory");
                break;
            }
            sprintf(anchored, "^(%s)$", re_text);
            err = regcomp(&re, anchored, REG_EXTENDED | REG_NOSUB);
            ct__free(anchored);
            if (err != 0) {
                char ebuf[128];
                regerror(err, &re, ebuf, sizeof(ebuf));
                rc = ct_status_setf(st, CT_EARG,
                                    "options entry %zu: bad blob_name_regex "
                                    "\"%s\": %s",
                                    k, re_text, ebuf);
                break;
            }
        }
        for (i = 0; i < a->n; i++) {
            /* Only inputs no earlier entry matched take this one: the
             * first match wins. opts[i].float_format < 0 marks "taken". */
            if (a->opts[i].float_format < 0)
                continue;
            if (any || regex_full_match(&re, a->names[i])) {
                a->opts[i].chunk_size = o->has_chunk_size ? o->chunk_size : 0;
                a->opts[i].float_format =
                    -1 - (o->has_float_format ? (int)o->float_format : 0);
            }
        }
        if (!any)
            regfree(&re);
    }
    for (i = 0; i < a->n; i++)
        if (a->opts[i].float_format < 0)
            a->opts[i].float_format = -1 - a->opts[i].float_format;
    if (so != NULL)
        ct_proto_free(&so->base);
    return rc;
}

int ct__save_args_parse(const ct_op_t *op, const char *db_missing,
                        struct ct__save_args *a, ct_status_t *st)
{
    const char *opts;
    size_t len;
    int64_t absolute;
    int rc;

    memset(a, 0, sizeof(*a));
    rc = ct__arg_dup_string(op, "db", "", &a->db, st);
    if (rc != CT_OK)
        return rc;
    if (a->db[0] == '\0')
        return ct_status_setf(st, CT_EARG, "%s", db_missing);
    rc = ct__arg_dup_string(op, "db_type", "", &a->db_type, st);
    if (rc != CT_OK)
        return rc;
    if (a->db_type[0] == '\0')
        return ct_status_setf(st, CT_EARG, "Must specify a db type.");
    if (!ct_db_type_registered(a->db_type))
        return ct_status_setf(st, CT_ENOTFOUND,
                              "Cannot find db implementation of type %s "
                              "(while trying to open %s); registered types: "
                              "%s",
                              a->db_type, a->db, ct_db_type_list());
    rc = ct__arg_int(op, "absolute_path", 0, &absolute, st);
    if (rc != CT_OK)
        return rc;
    a->absolute = absolute != 0;
    rc = ct__path_check_lexical(a->db, a->absolute, st);
    if (rc != CT_OK)
        return rc;
    a->n = op->n_in;
    a->names = ct__calloc((size_t)a->n, sizeof(*a->names));
    a->opts = ct__calloc((size_t)a->n, sizeof(*a->opts));
    a->items = ct__calloc((size_t)a->n, sizeof(*a->items));
    if (a->names == NULL || a->opts == NULL || a->items == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    rc = derive_names(op, a, st);
    if (rc == CT_OK)
        rc = resolve_options(op, a, st);
    if (rc == CT_OK)
        rc = ct__arg_string(op, "db_options", "", &opts, &len, st);
    if (rc != CT_OK)
        return rc;
    a->db_options = ct__malloc(len + 1);
    if (a->db_options == NULL)
        return ct_status_setf(st, CT_ENOMEM, "out of memory");
    memcpy(a->db_options, opts, len);
    a->db_options[len] = '\0';
    a->db_options_len = len;
    return CT_OK;
}

int ct__save_run(ct_op_ctx_t *ctx, struct ct__save_args *a, const char *db_path)
{
    const ct_op_t *op = ctx->op;
    char *path = NULL;
    ct_status_t st;
    int i, rc;

    for (i = 0; i < a->n; i++) {
        const ct_blob_t *b = op->in[i];
        struct ct_save_item *it = &a->items[i];
        const ct_str_t *s;
        it->name = a->names[i];
        it->opts = &a->opts[i];
        it->tensor = ct_blob_get_tensor(b);
        it->str = NULL;
        it->str_len = 0;
        if (it->tensor != NULL)
            continue;
        s = ct_blob_get_string(b);
        if (s == NULL) {
            const ct_blob_type_t *t = ct_blob_type(b);
            return ct_op_fail(
                ctx, CT_ETYPE, "input %d \"%s\": No known serializer for %s", i,
                ct_op_input_name(op, i), t != NULL ? t->name : "an empty blob");
        }
        it->str = s->data != NULL ? s->data : "";
        it->str_len = s->len;
    }
    ct_status_clear(&st);
    rc = ct__path_resolve(ct_workspace_root_folder(op->ws), db_path,
                          a->absolute, &path, &st);
    if (rc == CT_OK)
        rc =
            ct_db_save_items(a->db_type, path, a->db_options, a->db_options_len,
                             a->items, (size_t)a->n, NULL, &st);
    ct__free(path);
    return rc == CT_OK ? CT_OK : ct_op_fail(ctx, rc, "%s", st.msg);
}

/* ---- Save ---- */

static int save_init(ct_op_t *op, ct_status_t *st)
{
    return ct__save_args_parse(op, "Must specify a db name.", op->state, st);
}

static void save_fini(ct_op_t *op)
{
    ct__save_args_destroy(op->state);
}

static int save_run(ct_op_ctx_t *ctx)
{
    struct ct__save_args *a = ctx->op->state;

    return ct__save_run(ctx, a, a->db);
}

static const struct ct_arg_spec save_args[] = {
    {"db", CT_ARG_STRING, false},
    {"db_type", CT_ARG_STRING, false},
    {"absolute_path", CT_ARG_INT, false},
    {"strip_prefix", CT_ARG_STRING, false},
    {"blob_name_overrides", CT_ARG_STRINGS, false},
    {"chunk_size", CT_ARG_INT, false},
    {"options", CT_ARG_STRING, false},
    {"db_options", CT_ARG_STRING, false},
    {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_save = {
    .name = "Save",
    .min_inputs = 1,
    .max_inputs = CT_INF,
    .min_outputs = 0,
    .max_outputs = 0,
    .args = save_args,
    .state_size = sizeof(struct ct__save_args),
    .init_cb = save_init,
    .fini_cb = save_fini,
    .run_cb = save_run,
    .flags = CT_OP_F_IO,
    .doc = "Saves the input blobs into a db (crash-safe for minidb).",
};

/* ---- DBExists ---- */

struct exists_state {
    char *db_name;
    char *db_type;
    bool absolute;
};

static int exists_init(ct_op_t *op, ct_status_t *st)
{
    struct exists_state *s = op->state;
    int64_t absolute;
    int rc;

    rc = ct__arg_dup_string(op, "db_name", "", &s->db_name, st);
    if (rc == CT_OK)
        rc = ct__arg_dup_string(op, "db_type", "", &s->db_type, st);
    if (rc == CT_OK)
        rc = ct__arg_int(op, "absolute_path", 0, &absolute, st);
    if (rc != CT_OK)
        return rc;
    s->absolute = absolute != 0;
    if (s->db_name[0] == '\0')
        return ct_status_setf(st, CT_EARG,
                              "Must specify a db name "
                              "(argument db_name).");
    if (!ct_db_type_registered(s->db_type))
        return ct_status_setf(st, CT_ENOTFOUND,
                              "Cannot find db implementation of type \"%s\" "
                              "(while checking %s); registered types: %s",
                              s->db_type, s->db_name, ct_db_type_list());
    return ct__path_check_lexical(s->db_name, s->absolute, st);
}

static void exists_fini(ct_op_t *op)
{
    struct exists_state *s = op->state;

    ct__free(s->db_name);
    ct__free(s->db_type);
}

static int exists_run(ct_op_ctx_t *ctx)
{
    const ct_op_t *op = ctx->op;
    struct exists_state *s = op->state;
    ct_tensor_t *out;
    ct_db_t *db = NULL;
    char *path = NULL;
    ct_status_t st;
    int rc;

    ct_status_clear(&st);
    rc = ct__path_resolve(ct_workspace_root_folder(op->ws), s->db_name,
                          s->absolute, &path, &st);
    if (rc != CT_OK)
        return ct_op_fail(ctx, rc, "%s", st.msg);
    rc = ct_op_output(ctx, 0, CT_DTYPE_BOOL, 0, NULL, &out);
    if (rc == CT_OK) {
        /* Like Caffe2: whatever stops the db from opening means "no". */
        bool exists =
            ct_db_open(s->db_type, path, CT_DB_READ, &db, NULL) == CT_OK;
        ct_db_free(db);
        *CT_DATA(out, uint8_t) = exists;
    }
    ct__free(path);
    return rc;
}

static int exists_infer(const ct_op_t *op, const ct_shape_t *in,
                        ct_shape_t *out, ct_status_t *st)
{
    out[0].dtype = CT_DTYPE_BOOL;
    out[0].ndim = 0;
    return CT_OK;
}

static const struct ct_arg_spec exists_args[] = {
    {"db_name", CT_ARG_STRING, false},
    {"db_type", CT_ARG_STRING, false},
    {"absolute_path", CT_ARG_INT, false},
    {NULL, CT_ARG_ANY, false},
};

const struct ct_op_schema ct__op_db_exists = {
    .name = "DBExists",
    .min_inputs = 0,
    .max_inputs = 0,
    .min_outputs = 1,
    .max_outputs = 1,
    .args = exists_args,
    .state_size = sizeof(struct exists_state),
    .init_cb = exists_init,
    .fini_cb = exists_fini,
    .infer_cb = exists_infer,
    .run_cb = exists_run,
    .flags = CT_OP_F_IO,
    .doc = "Whether a db of the given type opens for reading (0-d bool).",
};
