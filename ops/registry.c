/* cortado: the operator registry, generated from ops/op_list.def.
 *
 * Design note. ops/op_list.def is the only list of operators: each
 * CT_OP(x) line expands here into an extern declaration of ct__op_x and
 * an entry of a static table. There is no constructor-attribute
 * self-registration, so a static link can never drop an op.
 * Lookup is a binary search over a copy of the table sorted by the Caffe2
 * type string (case-sensitive, as Caffe2's registry). The sorted copy is
 * built once, on first use, under pthread_once (C11's call_once would do
 * the same, but ThreadSanitizer does not intercept it and would report
 * the readers); after that every reader sees an immutable array, so
 * lookups from any thread take no lock. Two entries with the same type
 * string are a build error caught by an assertion on first use. The list
 * may be empty (the table then holds only its NULL terminator).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op_impl.h"

#define CT_OP(name) extern const struct ct_op_schema ct__op_##name;
#include "ops/op_list.def"
#undef CT_OP

/* In list order, NULL-terminated so an empty list still compiles. */
static const struct ct_op_schema *const table[] = {
#define CT_OP(name) &ct__op_##name,
#include "ops/op_list.def"
#undef CT_OP
    NULL,
};

#define N_OPS (sizeof(table) / sizeof(table[0]) - 1)
/* Signed, so loops over an empty list draw no -Wtype-limits warning. */
static const int n_ops = (int)N_OPS;

/* Written once by sort_table under pthread_once, read-only afterwards;
 * pthread_once orders the writes before every caller that returns from
 * it. */
static const struct ct_op_schema *sorted[N_OPS + 1];
static pthread_once_t sorted_once = PTHREAD_ONCE_INIT;

static int cmp_schema(const void *a, const void *b)
{
    const struct ct_op_schema *x = *(const struct ct_op_schema *const *)a;
    const struct ct_op_schema *y = *(const struct ct_op_schema *const *)b;
    return strcmp(x->name, y->name);
}

static void sort_table(void)
{
    int k;

    for (k = 0; k < n_ops; k++) {
        CT_ASSERT(table[k]->name != NULL && table[k]->run_cb != NULL,
                  "op schema %d in ops/op_list.def lacks a name or run_cb", k);
        sorted[k] = table[k];
    }
    if (n_ops > 1)
        qsort((void *)sorted, (size_t)n_ops, sizeof(sorted[0]), cmp_schema);
    for (k = 1; k < n_ops; k++)
        CT_ASSERT(strcmp(sorted[k - 1]->name, sorted[k]->name) != 0,
                  "op type \"%s\" is registered twice", sorted[k]->name);
    sorted[n_ops] = NULL;
}

static void ensure_sorted(void)
{
    int rc = pthread_once(&sorted_once, sort_table);
    CT_ASSERT(rc == 0, "pthread_once failed (%d)", rc);
}

const struct ct_op_schema *ct__op_schema_find(const char *type)
{
    size_t lo = 0, hi = (size_t)n_ops;

    if (type == NULL)
        return NULL;
    ensure_sorted();
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(type, sorted[mid]->name);
        if (c == 0)
            return sorted[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

size_t ct__op_schema_list(const struct ct_op_schema *const **out)
{
    ensure_sorted();
    *out = sorted;
    return (size_t)n_ops;
}
