/* cortado: stat registry queries (merged values, set, pin), exports to a
 * list, by-name updates (Caffe2's StatRegistry::update, which adds) and
 * list helpers. The sharding, reset-baseline and snapshot rules are in the
 * design note of engine/stats.c; merged values and exports here read
 * shards only under the registry lock.
 */
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "cortado/stats.h"
#include "engine/alloc.h"
#include "engine/stats_impl.h"

/* ---- queries ---- */

size_t ct_stat_registry_size(ct_stat_registry_t *reg)
{
    size_t n;

    ct__mutex_lock(&reg->mu);
    n = reg->n_counters;
    ct__mutex_unlock(&reg->mu);
    return n;
}

int ct_stat_registry_find(ct_stat_registry_t *reg, const char *name,
                          ct_stat_t *out, ct_status_t *st)
{
    void *v;

    ct__mutex_lock(&reg->mu);
    v = ct__strmap_get(&reg->names, name);
    ct__mutex_unlock(&reg->mu);
    if (v == NULL)
        return ct_status_setf(st, CT_ENOTFOUND, "no stat named \"%s\"", name);
    *out = (ct_stat_t)((uintptr_t)v - 1);
    return CT_OK;
}

const char *ct_stat_registry_name(ct_stat_registry_t *reg, ct_stat_t h)
{
    const char *name;

    ct__mutex_lock(&reg->mu);
    CT_ASSERT(h < reg->n_counters, "stat handle %u of a registry with %zu",
              (unsigned)h, reg->n_counters);
    name = reg->counters[h].name;
    ct__mutex_unlock(&reg->mu);
    return name;
}

/* Merged value of counter h. reg->mu held. */
static uint64_t merged_locked(const ct_stat_registry_t *reg, ct_stat_t h)
{
    uint64_t v = reg->counters[h].pending;
    const struct ct__stat_shard *s;

    for (s = reg->shards; s != NULL; s = s->reg_next)
        if (h < s->cap)
            v += atomic_load_explicit(&s->slots[h], memory_order_relaxed) -
                 s->base[h];
    return v;
}

int64_t ct_stat_get(ct_stat_registry_t *reg, ct_stat_t h)
{
    uint64_t v;

    ct__mutex_lock(&reg->mu);
    CT_ASSERT(h < reg->n_counters, "stat handle %u of a registry with %zu",
              (unsigned)h, reg->n_counters);
    v = merged_locked(reg, h);
    ct__mutex_unlock(&reg->mu);
    return (int64_t)v;
}

int64_t ct_stat_set(ct_stat_registry_t *reg, ct_stat_t h, int64_t v)
{
    uint64_t old;

    ct__mutex_lock(&reg->mu);
    CT_ASSERT(h < reg->n_counters, "stat handle %u of a registry with %zu",
              (unsigned)h, reg->n_counters);
    old = merged_locked(reg, h);
    reg->counters[h].pending += (uint64_t)v - old;
    ct__mutex_unlock(&reg->mu);
    return (int64_t)old;
}

int64_t ct__stat_registry_pin(ct_stat_registry_t *reg, ct_stat_t h, int64_t v)
{
    struct ct__stat_counter *c;

    ct__mutex_lock(&reg->mu);
    CT_ASSERT(h < reg->n_counters, "stat handle %u of a registry with %zu",
              (unsigned)h, reg->n_counters);
    c = &reg->counters[h];
    if (!c->pinned) {
        c->pinned = true;
        c->pin = v;
    }
    v = c->pin;
    ct__mutex_unlock(&reg->mu);
    return v;
}

/* ---- updates by name ---- */

/* Reads key i of an update source. */
typedef void (*key_at_cb)(const void *src, size_t i, const char **key,
                          size_t *len, int64_t *value);

/* Caffe2's update: every key checked, then all registered, then all
 * values added to pending in one critical section. */
static int update_common(ct_stat_registry_t *reg, const void *src, size_t n,
                         key_at_cb key_at, ct_status_t *st)
{
    size_t i, max_len = 0;
    char *buf;
    int rc = CT_OK;

    for (i = 0; i < n; i++) {
        const char *k;
        size_t len;
        int64_t v;
        key_at(src, i, &k, &len, &v);
        if (len > 0 && (rc = ct__stat_check_name(k, len, st)) != CT_OK) {
            ct_status_prefix(st, "key %zu: ", i);
            return rc;
        }
        if (len > max_len)
            max_len = len;
    }
    buf = ct__malloc(max_len + 1);
    if (buf == NULL)
        return ct_status_setf(st, CT_ENOMEM,
                              "stat registry: out of memory for a %zu-byte "
                              "key",
                              max_len);
    ct__mutex_lock(&reg->mu);
    for (i = 0; i < n && rc == CT_OK; i++) {
        const char *k;
        size_t len;
        int64_t v;
        ct_stat_t h;
        key_at(src, i, &k, &len, &v);
        if (len > 0)
            memcpy(buf, k, len);
        buf[len] = '\0';
        rc = ct__stat_add_locked(reg, buf, len, CT_STAT_COUNTER, &h, st);
    }
    for (i = 0; i < n && rc == CT_OK; i++) {
        const char *k;
        size_t len;
        int64_t v;
        ct_stat_t h;
        key_at(src, i, &k, &len, &v);
        if (len > 0)
            memcpy(buf, k, len);
        buf[len] = '\0';
        /* Registered by the first pass: cannot fail. */
        ct__stat_add_locked(reg, buf, len, CT_STAT_COUNTER, &h, NULL);
        reg->counters[h].pending += (uint64_t)v;
    }
    ct__mutex_unlock(&reg->mu);
    ct__free(buf);
    return rc;
}

struct str_src {
    const ct_str_t *keys;
    const int64_t *values;
};

static void str_key_at(const void *src, size_t i, const char **key, size_t *len,
                       int64_t *value)
{
    const struct str_src *s = src;
    *key = s->keys[i].data != NULL ? s->keys[i].data : "";
    *len = s->keys[i].len;
    *value = s->values[i];
}

static void list_key_at(const void *src, size_t i, const char **key,
                        size_t *len, int64_t *value)
{
    const struct ct_stat_list *l = src;
    *key = l->items[i].key;
    *len = strlen(l->items[i].key);
    *value = l->items[i].value;
}

int ct_stat_registry_update(ct_stat_registry_t *reg, const ct_str_t *keys,
                            const int64_t *values, size_t n, ct_status_t *st)
{
    struct str_src src = {keys, values};
    return update_common(reg, &src, n, str_key_at, st);
}

int ct_stat_registry_update_list(ct_stat_registry_t *reg,
                                 const struct ct_stat_list *l, ct_status_t *st)
{
    return update_common(reg, l, l->n, list_key_at, st);
}

/* ---- exports ---- */

int ct_stat_registry_export(ct_stat_registry_t *reg, bool reset,
                            struct ct_stat_list *out, ct_status_t *st)
{
    struct ct__stat_shard *s;
    struct timespec ts;
    uint64_t *sums, *snap;
    int64_t now;
    size_t i, n, off = 0;

    memset(out, 0, sizeof(*out));
    ct__mutex_lock(&reg->mu);
    n = reg->n_counters;
    /* Everything is allocated before a baseline moves: a failure leaves
     * the registry as it was. */
    sums = ct__calloc(n > 0 ? n : 1, sizeof(uint64_t));
    snap = ct__malloc((n > 0 ? n : 1) * sizeof(uint64_t));
    out->items = ct__calloc(n > 0 ? n : 1, sizeof(*out->items));
    out->keys = ct__malloc(reg->key_bytes > 0 ? reg->key_bytes : 1);
    if (sums == NULL || snap == NULL || out->items == NULL ||
        out->keys == NULL) {
        ct__mutex_unlock(&reg->mu);
        ct__free(sums);
        ct__free(snap);
        ct_stat_list_destroy(out);
        return ct_status_setf(st, CT_ENOMEM,
                              "stat registry: out of memory exporting %zu "
                              "counters",
                              n);
    }
    for (i = 0; i < n; i++) {
        sums[i] = reg->counters[i].pending;
        if (reset)
            reg->counters[i].pending = 0;
    }
    /* Each shard as one cut (its multi-counter updates whole), and the
     * baselines from that same cut. */
    for (s = reg->shards; s != NULL; s = s->reg_next) {
        size_t m = s->cap < n ? s->cap : n;
        ct__stat_shard_snapshot(reg, s, m, snap);
        for (i = 0; i < m; i++) {
            sums[i] += snap[i] - s->base[i];
            if (reset)
                s->base[i] = snap[i];
        }
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    for (i = 0; i < n; i++) {
        size_t len = strlen(reg->counters[i].name) + 1;
        memcpy(out->keys + off, reg->counters[i].name, len);
        out->items[i].key = out->keys + off;
        out->items[i].value = (int64_t)sums[i];
        out->items[i].ts_ns = now;
        out->items[i].kind = reg->counters[i].kind;
        off += len;
    }
    out->n = n;
    out->ts_ns = now;
    ct__mutex_unlock(&reg->mu);
    ct__free(sums);
    ct__free(snap);
    return CT_OK;
}

void ct__stat_registry_restore(ct_stat_registry_t *reg,
                               const struct ct_stat_list *l)
{
    size_t i;

    ct__mutex_lock(&reg->mu);
    CT_ASSERT(l->n <= reg->n_counters, "restoring %zu counters into %zu", l->n,
              reg->n_counters);
    for (i = 0; i < l->n; i++)
        reg->counters[i].pending += (uint64_t)l->items[i].value;
    ct__mutex_unlock(&reg->mu);
}

void ct_stat_list_destroy(struct ct_stat_list *l)
{
    if (l == NULL)
        return;
    ct__free(l->items);
    ct__free(l->keys);
    memset(l, 0, sizeof(*l));
}

int ct_stat_list_get(const struct ct_stat_list *l, const char *key,
                     int64_t *out)
{
    uint64_t sum = 0;
    bool found = false;
    size_t i;

    for (i = 0; i < l->n; i++) {
        if (strcmp(l->items[i].key, key) == 0) {
            sum += (uint64_t)l->items[i].value;
            found = true;
        }
    }
    if (!found)
        return CT_ENOTFOUND;
    *out = (int64_t)sum;
    return CT_OK;
}
