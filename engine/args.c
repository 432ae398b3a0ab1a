/* cortado: operator arguments with Caffe2's ArgumentHelper rules.
 *
 * Design note. Arguments stay in the NetDef copy the net owns; nothing is
 * indexed or copied. Lookups are linear scans: an op has a handful of
 * arguments and init_cb reads each once, at compile time, so a map would
 * cost more than it saves. The rules (spec §0.2):
 *   - every getter reads one fixed field: f for floats, i for integers,
 *     s for strings, ints/floats/strings for lists, n / nets / t /
 *     tensors for the message kinds;
 *   - a name that is present without that field is an error naming the
 *     field expected and the field(s) the argument does have;
 *   - integers narrower than int64 must convert losslessly;
 *   - the same name twice is fine when the two Arguments are identical
 *     (Caffe2 compares their serialised bytes; we compare field by field
 *     through the protobuf-c descriptors, which needs no allocation) and
 *     an error otherwise.
 * Repeated getters differ from Caffe2 in one deliberate way: Caffe2 reads
 * `ints` without looking at the other fields, so an argument given as a
 * scalar `i` silently reads as an empty list. We report the wrong field
 * when the list is empty and another field is set; a present argument
 * with no field at all still reads as an empty list (that is what an
 * empty repeated field looks like on the wire).
 * Error paths only format into the caller's status: nothing allocates.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "engine/op_internal.h"
#include "engine/strmap.h"
#include "ops/op_impl.h"

/* ---- field kinds ---- */

static const char *const kind_field[] = {
    [CT_ARG_INT] = "i",         [CT_ARG_FLOAT] = "f",
    [CT_ARG_STRING] = "s",      [CT_ARG_INTS] = "ints",
    [CT_ARG_FLOATS] = "floats", [CT_ARG_STRINGS] = "strings",
    [CT_ARG_NET] = "n",         [CT_ARG_NETS] = "nets",
    [CT_ARG_TENSOR] = "t",      [CT_ARG_TENSORS] = "tensors",
    [CT_ARG_ANY] = "any",
};

/* Whether the field of `kind` is set in a. */
static bool field_set(const Caffe2__Argument *a, enum ct_arg_kind kind)
{
    switch (kind) {
    case CT_ARG_INT:
        return a->has_i;
    case CT_ARG_FLOAT:
        return a->has_f;
    case CT_ARG_STRING:
        return a->has_s;
    case CT_ARG_INTS:
        return a->n_ints > 0;
    case CT_ARG_FLOATS:
        return a->n_floats > 0;
    case CT_ARG_STRINGS:
        return a->n_strings > 0;
    case CT_ARG_NET:
        return a->n != NULL;
    case CT_ARG_NETS:
        return a->n_nets > 0;
    case CT_ARG_TENSOR:
        return a->t != NULL;
    case CT_ARG_TENSORS:
        return a->n_tensors > 0;
    case CT_ARG_ANY:
        return true;
    }
    return false;
}

static bool kind_is_repeated(enum ct_arg_kind kind)
{
    return kind == CT_ARG_INTS || kind == CT_ARG_FLOATS ||
           kind == CT_ARG_STRINGS || kind == CT_ARG_NETS ||
           kind == CT_ARG_TENSORS;
}

/* Writes the names of the fields a has set ("i", "i and s", "none"). */
static const char *fields_str(const Caffe2__Argument *a, char *buf, size_t size)
{
    static const enum ct_arg_kind order[] = {
        CT_ARG_FLOAT,  CT_ARG_INT,     CT_ARG_STRING, CT_ARG_FLOATS,
        CT_ARG_INTS,   CT_ARG_STRINGS, CT_ARG_NET,    CT_ARG_NETS,
        CT_ARG_TENSOR, CT_ARG_TENSORS,
    };
    size_t off = 0, k;
    int n = 0;

    buf[0] = '\0';
    for (k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        int w;
        if (!field_set(a, order[k]))
            continue;
        w = snprintf(buf + off, size - off, "%s%s", n ? " and " : "",
                     kind_field[order[k]]);
        if (w < 0 || (size_t)w >= size - off)
            break;
        off += (size_t)w;
        n++;
    }
    if (a->n_qtensors > 0 && off < size)
        snprintf(buf + off, size - off, "%sqtensors", n++ ? " and " : "");
    if (n == 0)
        snprintf(buf, size, "none");
    return buf;
}

static bool has_any_field(const Caffe2__Argument *a)
{
    char buf[8];
    return strcmp(fields_str(a, buf, sizeof(buf)), "none") != 0;
}

static const char *arg_name(const Caffe2__Argument *a)
{
    return a->name != NULL ? a->name : "";
}

static int wrong_field(const Caffe2__Argument *a, enum ct_arg_kind kind,
                       ct_status_t *st)
{
    char has[96];
    return ct_status_setf(st, CT_EARG,
                          "Argument %s does not have the right field: "
                          "expected %s, has %s",
                          arg_name(a), kind_field[kind],
                          fields_str(a, has, sizeof(has)));
}

/* Checks that a present argument can be read as `kind`. Scalars need
 * their field; lists accept an argument with no field at all (an empty
 * list). */
static int check_field(const Caffe2__Argument *a, enum ct_arg_kind kind,
                       ct_status_t *st)
{
    if (field_set(a, kind))
        return CT_OK;
    if (kind_is_repeated(kind) && !has_any_field(a))
        return CT_OK;
    return wrong_field(a, kind, st);
}

/* ---- message equality through the descriptors ---- */

static bool msg_equal(const ProtobufCMessage *a, const ProtobufCMessage *b);

static size_t scalar_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* One value of a field. Floats compare by their bits, as serialised bytes
 * would (so -0.0 != 0.0 and identical NaNs are equal). */
static bool value_equal(const ProtobufCFieldDescriptor *f, const void *pa,
                        const void *pb)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *x = *(char *const *)pa, *y = *(char *const *)pb;
        if (x == NULL || y == NULL)
            return x == y;
        return strcmp(x, y) == 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *x = pa, *y = pb;
        return x->len == y->len &&
               (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *x = *(ProtobufCMessage *const *)pa;
        const ProtobufCMessage *y = *(ProtobufCMessage *const *)pb;
        if (x == NULL || y == NULL)
            return x == y;
        return msg_equal(x, y);
    }
    case PROTOBUF_C_TYPE_BOOL:
        return (*(const protobuf_c_boolean *)pa != 0) ==
               (*(const protobuf_c_boolean *)pb != 0);
    default:
        return memcmp(pa, pb, scalar_size(f->type)) == 0;
    }
}

/* Whether an optional field is present in m. */
static bool optional_present(const ProtobufCFieldDescriptor *f,
                             const ProtobufCMessage *m)
{
    const char *base = (const char *)m;

    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->type == PROTOBUF_C_TYPE_STRING ||
        f->type == PROTOBUF_C_TYPE_MESSAGE) {
        /* protobuf-c packs neither NULL nor a pointer to the default. */
        const void *p = *(void *const *)(base + f->offset);
        return p != NULL && p != f->default_value;
    }
    if (f->label == PROTOBUF_C_LABEL_NONE)
        return true;
    return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
}

static bool msg_equal(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    const ProtobufCMessageDescriptor *d = a->descriptor;
    const char *pa = (const char *)a, *pb = (const char *)b;
    unsigned k;

    if (a->descriptor != b->descriptor)
        return false;
    for (k = 0; k < d->n_fields; k++) {
        const ProtobufCFieldDescriptor *f = &d->fields[k];
        size_t i, n, esz;

        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            const char *va, *vb;
            n = *(const size_t *)(pa + f->quantifier_offset);
            if (n != *(const size_t *)(pb + f->quantifier_offset))
                return false;
            va = *(char *const *)(pa + f->offset);
            vb = *(char *const *)(pb + f->offset);
            esz = scalar_size(f->type);
            for (i = 0; i < n; i++) {
                if (!value_equal(f, va + i * esz, vb + i * esz))
                    return false;
            }
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL ||
            f->label == PROTOBUF_C_LABEL_NONE) {
            bool ha = optional_present(f, a), hb = optional_present(f, b);
            if (ha != hb)
                return false;
            if (!ha)
                continue;
        }
        if (!value_equal(f, pa + f->offset, pb + f->offset))
            return false;
    }
    return true;
}

/* ---- lookup ---- */

const Caffe2__Argument *ct__argv_find(Caffe2__Argument *const *args,
                                      size_t n_args, const char *name)
{
    size_t k;

    for (k = 0; k < n_args; k++) {
        if (strcmp(arg_name(args[k]), name) == 0)
            return args[k];
    }
    return NULL;
}

const Caffe2__Argument *ct__arg_find(const ct_op_t *op, const char *name)
{
    return ct__argv_find(op->def->arg, op->def->n_arg, name);
}

bool ct__arg_has(const ct_op_t *op, const char *name)
{
    return ct__arg_find(op, name) != NULL;
}

/* ---- scalar getters ---- */

int ct__argv_int(Caffe2__Argument *const *args, size_t n_args, const char *name,
                 int64_t dflt, int64_t *out, ct_status_t *st)
{
    const Caffe2__Argument *a = ct__argv_find(args, n_args, name);

    if (a == NULL) {
        *out = dflt;
        return CT_OK;
    }
    if (!a->has_i)
        return wrong_field(a, CT_ARG_INT, st);
    *out = a->i;
    return CT_OK;
}

int ct__arg_int(const ct_op_t *op, const char *name, int64_t dflt, int64_t *out,
                ct_status_t *st)
{
    return ct__argv_int(op->def->arg, op->def->n_arg, name, dflt, out, st);
}

int ct__arg_int32(const ct_op_t *op, const char *name, int32_t dflt,
                  int32_t *out, ct_status_t *st)
{
    int64_t v = 0;
    int rc = ct__arg_int(op, name, dflt, &v, st);

    if (rc != CT_OK)
        return rc;
    if (v < INT32_MIN || v > INT32_MAX)
        return ct_status_setf(
            st, CT_EARG,
            "Argument %s value %" PRId64 " is out of range for int32", name, v);
    *out = (int32_t)v;
    return CT_OK;
}

int ct__arg_float(const ct_op_t *op, const char *name, float dflt, float *out,
                  ct_status_t *st)
{
    const Caffe2__Argument *a = ct__arg_find(op, name);

    if (a == NULL) {
        *out = dflt;
        return CT_OK;
    }
    if (!a->has_f)
        return wrong_field(a, CT_ARG_FLOAT, st);
    *out = a->f;
    return CT_OK;
}

int ct__arg_string(const ct_op_t *op, const char *name, const char *dflt,
                   const char **out, size_t *len, ct_status_t *st)
{
    const Caffe2__Argument *a = ct__arg_find(op, name);

    if (a == NULL) {
        *out = dflt;
        if (len != NULL)
            *len = dflt != NULL ? strlen(dflt) : 0;
        return CT_OK;
    }
    if (!a->has_s)
        return wrong_field(a, CT_ARG_STRING, st);
    /* protobuf-c leaves a NULL data pointer for an empty string. */
    *out = a->s.data != NULL ? (const char *)a->s.data : "";
    if (len != NULL)
        *len = a->s.len;
    return CT_OK;
}

/* ---- repeated getters ---- */

int ct__arg_ints(const ct_op_t *op, const char *name, const int64_t **v,
                 size_t *n, ct_status_t *st)
{
    const Caffe2__Argument *a = ct__arg_find(op, name);
    int rc;

    *v = NULL;
    *n = 0;
    if (a == NULL)
        return CT_OK;
    rc = check_field(a, CT_ARG_INTS, st);
    if (rc != CT_OK)
        return rc;
    *v = a->ints;
    *n = a->n_ints;
    return CT_OK;
}

int ct__arg_floats(const ct_op_t *op, const char *name, const float **v,
                   size_t *n, ct_status_t *st)
{
    const Caffe2__Argument *a = ct__arg_find(op, name);
    int rc;

    *v = NULL;
    *n = 0;
    if (a == NULL)
        return CT_OK;
    rc = check_field(a, CT_ARG_FLOATS, st);
    if (rc != CT_OK)
        return rc;
    *v = a->floats;
    *n = a->n_floats;
    return CT_OK;
}

int ct__arg_strings(const ct_op_t *op, const char *name,
                    const ProtobufCBinaryData **v, size_t *n, ct_status_t *st)
{
    const Caffe2__Argument *a = ct__arg_find(op, name);
    int rc;

    *v = NULL;
    *n = 0;
    if (a == NULL)
        return CT_OK;
    rc = check_field(a, CT_ARG_STRINGS, st);
    if (rc != CT_OK)
        return rc;
    *v = a->strings;
    *n = a->n_strings;
    return CT_OK;
}

/* ---- the creation-time check ---- */

/* Arguments k and j (j < k) share a name: identical values are accepted
 * (Caffe2 only warns), different ones are CT_EARG. */
static int check_pair(const Caffe2__OperatorDef *def, size_t j, size_t k,
                      ct_status_t *st)
{
    if (!msg_equal(&def->arg[j]->base, &def->arg[k]->base))
        return ct_status_setf(st, CT_EARG,
                              "argument %s given twice with different "
                              "values",
                              arg_name(def->arg[k]));
    return CT_OK;
}

/* Every repeated argument name against its first occurrence: pairwise
 * for the usual handful of arguments, through a hash map of first
 * occurrences beyond that (a generated NetDef may carry 10^6). */
static int check_duplicates(const Caffe2__OperatorDef *def, ct_status_t *st)
{
    struct ct__strmap first;
    size_t j, k;
    void *v;
    int rc = CT_OK;

    if (def->n_arg <= 16) {
        for (k = 0; k < def->n_arg; k++)
            for (j = 0; j < k; j++)
                if (strcmp(arg_name(def->arg[j]), arg_name(def->arg[k])) == 0) {
                    if ((rc = check_pair(def, j, k, st)) != CT_OK)
                        return rc;
                    break;
                }
        return CT_OK;
    }
    ct__strmap_init(&first);
    for (k = 0; k < def->n_arg && rc == CT_OK; k++) {
        if (ct__strmap_find(&first, arg_name(def->arg[k]), &v))
            rc = check_pair(def, (size_t)(uintptr_t)v, k, st);
        else if (ct__strmap_insert(&first, arg_name(def->arg[k]),
                                   (void *)(uintptr_t)k) != CT_OK)
            rc = ct_status_setf(st, CT_ENOMEM,
                                "out of memory checking %zu arguments",
                                def->n_arg);
    }
    ct__strmap_destroy(&first, NULL);
    return rc;
}

int ct__args_check(const ct_op_t *op, ct_status_t *st)
{
    const Caffe2__OperatorDef *def = op->def;
    const struct ct_arg_spec *spec;
    int rc;

    rc = check_duplicates(def, st);
    if (rc != CT_OK)
        return rc;
    if (op->schema == NULL || op->schema->args == NULL)
        return CT_OK;
    for (spec = op->schema->args; spec->name != NULL; spec++) {
        const Caffe2__Argument *a = ct__arg_find(op, spec->name);
        if (a == NULL) {
            if (spec->required)
                return ct_status_setf(st, CT_EARG,
                                      "%s: Required argument %s is not "
                                      "provided",
                                      op->schema->name, spec->name);
            continue;
        }
        if (spec->kind == CT_ARG_ANY)
            continue;
        rc = check_field(a, spec->kind, st);
        if (rc != CT_OK)
            return rc;
    }
    return CT_OK;
}
