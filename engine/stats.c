/* cortado: the stat registry, sharded per thread.
 *
 * Design note.
 *
 * Counters. A registry holds a name map (name -> index) and, per counter,
 * its name, kind and `pending` total, all guarded by reg->mu. A handle
 * (ct_stat_t) is the counter's index; counters are never removed, so a
 * handle stays valid for the registry's lifetime.
 *
 * Shards. Every thread that updates a registry gets its own shard: an
 * array of uint64 slots, one per counter, allocated cache-line aligned and
 * padded, written only by that thread. ct_stat_add finds the shard
 * through a small direct-mapped thread-local cache keyed by the
 * registry's id (a process-unique number from a global counter, never
 * reused, so a registry freed and another allocated at the same address
 * can never hit a stale entry), then does a relaxed load and a relaxed
 * store of its own slot. A single writer makes that pair an atomic add
 * as far as any reader can tell (readers only load), and it avoids the
 * locked read-modify-write an atomic_fetch_add would cost. No lock, no
 * store to a line another thread writes.
 *
 * Merging. The merged value of counter i is
 *     pending[i] + sum over live shards s of (s->slots[i] - s->base[i])
 * computed under reg->mu, modulo 2^64. Readers load slots with relaxed
 * loads: a slot publishes no other memory, atomicity rules out torn
 * values, and read-read coherence means a later read of a slot never
 * returns an older value, so with non-negative deltas a reader never sees
 * a counter go backwards.
 *
 * Reset baselines. An export with reset never writes another thread's
 * slot (that store would race with the owner's load-add-store and lose
 * updates). It records the value it read as the shard's baseline base[i]
 * and zeroes pending[i]. An update lands either before the exporter's load
 * of that slot (counted now and inside the baseline) or after it (counted
 * by the next export): nothing is counted twice or dropped. ct_stat_set
 * works the same way: it adjusts pending[i] by (v - merged value) under
 * the lock, so concurrent deltas still apply on top.
 *
 * Growth. A shard covers the counters that existed when it was sized. A
 * handle beyond it sends the owner to the slow path, which re-sizes its
 * own shard under reg->mu (exporters read shards only under that lock,
 * so they never see a freed array) and copies its slots (it is their only
 * writer). If that allocation fails the delta is added to pending[h]
 * under the lock instead: an update is never lost.
 *
 * Thread exit. The first shard of a thread registers a pthread key whose
 * destructor runs at thread exit; it folds each shard into its registry
 * (pending[i] += slot - base, under reg->mu), unlinks and frees it.
 *
 * Registry free with live threads. A process-wide link lock (link_mu)
 * guards the shard -> registry pointers. Thread exit takes link_mu before
 * following s->reg; ct_stat_registry_free takes link_mu, then reg->mu,
 * frees every shard's arrays and clears s->reg. Headers of shards owned by
 * the calling thread are freed at once; those of other live threads stay
 * on their owner's list (which only the owner ever walks or edits) and
 * are freed by the owner at its next shard creation or at its exit. The
 * thread-local cache may keep the freed registry's id, which no live
 * registry will ever have again.
 *
 * Lock order: link_mu, then reg->mu. Nothing else is taken inside.
 *
 * Files: the layout is in engine/stats_impl.h; queries, exports and
 * by-name updates are in engine/stats_list.c, the Caffe2 flavours and the
 * timer in engine/stats_flavors.c, JSON / Prometheus / files in
 * engine/stats_export.c.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "cortado/stats.h"
#include "engine/alloc.h"
#include "engine/engine_impl.h"
#include "engine/stats_impl.h"
#include "engine/strmap.h"
#include "scheduler/sync.h"

/* Direct-mapped thread-local cache entries (a power of two). Registry ids
 * are consecutive, so up to this many registries in use at once by one
 * thread never evict each other. */
#define TL_CACHE_SIZE 8
/* Smallest shard: one cache line of slots. */
#define SHARD_MIN_CAP (CT_CACHE_LINE / sizeof(uint64_t))
/* Keys up to this long are NUL-terminated on the stack for lookups. */
#define KEY_STACK_MAX 256
/* The link lock sits just below the registry locks, in the gap
 * lock_rank.h leaves for modules. TODO(stats, issue 4): give it a name
 * in scheduler/lock_rank.h (not this module's file). */
#define LINK_RANK CT_LOCK_RANK_STATS_LINK

/* Initial-exec TLS: one %fs-relative load on x86-64 even in the shared
 * library (no __tls_get_addr call on the update path). The blocks are
 * small (under 300 bytes) and libcortado is linked, not dlopen'ed. */
#if defined(__GNUC__)
#define TLS_MODEL __attribute__((tls_model("initial-exec")))
/* Keeps the slow path out of ct_stat_add, so the fast path needs no
 * callee-saved registers (no stack frame at all). */
#define SLOW_PATH __attribute__((noinline, cold))
#else
#define TLS_MODEL
#define SLOW_PATH
#endif

struct tl_entry {
    uint64_t id; /* 0: empty (registry ids start at 1) */
    _Atomic uint64_t *slots;
    size_t cap;
};

struct ct__stat_tls {
    /* This thread's shards; the list is owned by this thread. */
    struct ct__stat_shard *head;
    bool registered; /* exit_key holds &tl_state */
};

static _Thread_local struct tl_entry tl_cache[TL_CACHE_SIZE] TLS_MODEL;
static _Thread_local struct ct__stat_tls tl_state TLS_MODEL;

/* Process-wide state: an id source, the exit key and the link lock. */
static _Atomic uint64_t next_id = 1; /* atomic, relaxed: uniqueness only */
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
/* Written once under global_once (run by the first registry's creation);
 * every later reader reached a registry through whatever published it,
 * which orders the write first. False: shards are impossible (no key or
 * no lock) and every update takes the locked path. */
static bool shards_ok;
static struct ct__mutex link_mu;

static void tls_exit(void *arg);

static void global_init(void)
{
    if (ct__mutex_init(&link_mu, "stats link", LINK_RANK) != CT_OK)
        return;
    if (pthread_key_create(&exit_key, tls_exit) != 0) {
        ct__mutex_destroy(&link_mu);
        return;
    }
    shards_ok = true;
}

/* ---- shards ---- */

static size_t round_cap(size_t need)
{
    size_t cap = SHARD_MIN_CAP;
    while (cap < need)
        cap *= 2;
    return cap;
}

static void shard_free_arrays(struct ct__stat_shard *s)
{
    if (s->slots != NULL)
        ct__aligned_free((void *)s->slots, s->cap * sizeof(uint64_t));
    ct__free(s->base);
    s->slots = NULL;
    s->base = NULL;
    s->cap = 0;
}

/* Grows s to cover `need` counters. Called by the owner with reg->mu
 * held (the owner is the only slot writer, so the copy is exact). */
static int shard_resize(struct ct__stat_shard *s, size_t need)
{
    _Atomic uint64_t *slots;
    uint64_t *base;
    size_t cap, i;

    if (need <= s->cap)
        return CT_OK;
    cap = round_cap(need);
    slots = ct__aligned_alloc(cap * sizeof(uint64_t));
    base = ct__calloc(cap, sizeof(uint64_t));
    if (slots == NULL || base == NULL) {
        if (slots != NULL)
            ct__aligned_free((void *)slots, cap * sizeof(uint64_t));
        ct__free(base);
        return CT_ENOMEM;
    }
    for (i = 0; i < cap; i++) {
        uint64_t v = 0;
        if (i < s->cap) {
            v = atomic_load_explicit(&s->slots[i], memory_order_relaxed);
            base[i] = s->base[i];
        }
        atomic_init(&slots[i], v);
    }
    shard_free_arrays(s);
    s->slots = slots;
    s->base = base;
    s->cap = cap;
    return CT_OK;
}

/* This thread's shard of reg, or NULL. The list is edited only by this
 * thread and reg_id is immutable, so the walk needs no lock. */
static struct ct__stat_shard *shard_find(const ct_stat_registry_t *reg)
{
    struct ct__stat_shard *s;

    for (s = tl_state.head; s != NULL; s = s->tls_next)
        if (s->reg_id == reg->id)
            return s;
    return NULL;
}

/* Frees this thread's shards whose registry is gone. link_mu held. */
static void shard_reclaim_dead(void)
{
    struct ct__stat_shard **pp = &tl_state.head;

    while (*pp != NULL) {
        struct ct__stat_shard *s = *pp;
        if (s->reg == NULL) {
            *pp = s->tls_next;
            shard_free_arrays(s);
            ct__free(s);
        } else {
            pp = &s->tls_next;
        }
    }
}

/* Creates this thread's shard of reg sized to its counters; NULL when
 * out of memory (the caller falls back to the locked path). */
static struct ct__stat_shard *shard_create(ct_stat_registry_t *reg)
{
    struct ct__stat_shard *s;

    if (!shards_ok)
        return NULL;
    if (!tl_state.registered) {
        if (pthread_setspecific(exit_key, &tl_state) != 0)
            return NULL;
        tl_state.registered = true;
    }
    s = ct__calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->reg_id = reg->id;
    s->owner = &tl_state;
    ct__mutex_lock(&link_mu);
    shard_reclaim_dead();
    ct__mutex_lock(&reg->mu);
    if (shard_resize(s, reg->n_counters) != CT_OK) {
        ct__mutex_unlock(&reg->mu);
        ct__mutex_unlock(&link_mu);
        ct__free(s);
        return NULL;
    }
    s->reg = reg;
    s->reg_next = reg->shards;
    if (reg->shards != NULL)
        reg->shards->reg_prev = s;
    reg->shards = s;
    ct__mutex_unlock(&reg->mu);
    s->tls_next = tl_state.head;
    tl_state.head = s;
    ct__mutex_unlock(&link_mu);
    return s;
}

/* Adds what s holds beyond its baselines to pending. reg->mu held. */
static void shard_fold(ct_stat_registry_t *reg, struct ct__stat_shard *s)
{
    size_t i, n = s->cap < reg->n_counters ? s->cap : reg->n_counters;

    for (i = 0; i < n; i++)
        reg->counters[i].pending +=
            atomic_load_explicit(&s->slots[i], memory_order_relaxed) -
            s->base[i];
}

static void shard_unlink(ct_stat_registry_t *reg, struct ct__stat_shard *s)
{
    if (s->reg_prev != NULL)
        s->reg_prev->reg_next = s->reg_next;
    else
        reg->shards = s->reg_next;
    if (s->reg_next != NULL)
        s->reg_next->reg_prev = s->reg_prev;
    s->reg_prev = s->reg_next = NULL;
}

/* The exit_key destructor: folds and frees every shard of the exiting
 * thread. Runs on that thread, with no lock held. */
static void tls_exit(void *arg)
{
    struct ct__stat_shard *s;

    (void)arg; /* &tl_state of this very thread */
    ct__mutex_lock(&link_mu);
    while ((s = tl_state.head) != NULL) {
        ct_stat_registry_t *reg = s->reg;
        tl_state.head = s->tls_next;
        if (reg != NULL) {
            ct__mutex_lock(&reg->mu);
            shard_fold(reg, s);
            shard_unlink(reg, s);
            ct__mutex_unlock(&reg->mu);
        }
        shard_free_arrays(s);
        ct__free(s);
    }
    tl_state.registered = false;
    ct__mutex_unlock(&link_mu);
    /* A later update (another key's destructor) starts afresh and sets
     * the key again, so it is folded too. */
    memset(tl_cache, 0, sizeof(tl_cache));
}

/* ---- registry ---- */

int ct_stat_registry_new(ct_stat_registry_t **out, ct_status_t *st)
{
    ct_stat_registry_t *reg;

    *out = NULL;
    pthread_once(&global_once, global_init);
    reg = ct__aligned_alloc(sizeof(*reg));
    if (reg == NULL)
        goto fail_alloc;
    memset(reg, 0, sizeof(*reg));
    if (ct__mutex_init(&reg->mu, "stat registry", CT_LOCK_RANK_STATS) != CT_OK)
        goto fail_mutex;
    ct__strmap_init(&reg->names);
    /* relaxed: the id only has to be unique. */
    reg->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
    *out = reg;
    return CT_OK;

fail_mutex:
    ct__aligned_free(reg, sizeof(*reg));
fail_alloc:
    return ct_status_setf(st, CT_ENOMEM, "stat registry: out of memory");
}

void ct_stat_registry_free(ct_stat_registry_t *reg)
{
    struct ct__stat_shard *s;
    struct tl_entry *e;

    if (reg == NULL)
        return;
    if (shards_ok)
        ct__mutex_lock(&link_mu);
    ct__mutex_lock(&reg->mu);
    while ((s = reg->shards) != NULL) {
        reg->shards = s->reg_next;
        s->reg = NULL;
        s->reg_prev = s->reg_next = NULL;
        shard_free_arrays(s);
    }
    /* Our own dead shards can go now; other threads free theirs. */
    if (shards_ok)
        shard_reclaim_dead();
    ct__mutex_unlock(&reg->mu);
    if (shards_ok)
        ct__mutex_unlock(&link_mu);
    e = &tl_cache[reg->id & (TL_CACHE_SIZE - 1)];
    if (e->id == reg->id)
        memset(e, 0, sizeof(*e));
    ct__mutex_destroy(&reg->mu);
    ct__strmap_destroy(&reg->names, NULL);
    ct__free(reg->counters);
    if (CT_DEBUG)
        memset(reg, 0xdb, sizeof(*reg));
    ct__aligned_free(reg, sizeof(*reg));
}

static void registry_destroy_cb(void *obj)
{
    ct_stat_registry_free(obj);
}

const ct_blob_type_t ct_blob_type_stat_registry = {"StatRegistry",
                                                   registry_destroy_cb};

ct_stat_registry_t *ct_engine_stats(const ct_engine_t *eng)
{
    CT_ASSERT(eng != NULL && eng->stats != NULL, "ct_engine_stats: no engine");
    return eng->stats;
}

/* Looks up or creates counter `name` (NUL-terminated, len bytes).
 * reg->mu held. Unchanged on failure. */
int ct__stat_add_locked(ct_stat_registry_t *reg, const char *name, size_t len,
                        int kind, ct_stat_t *out, ct_status_t *st)
{
    void *v = ct__strmap_get(&reg->names, name);
    size_t idx = reg->n_counters;

    if (v != NULL) {
        *out = (ct_stat_t)((uintptr_t)v - 1);
        return CT_OK;
    }
    if (idx >= (size_t)UINT32_MAX - 1)
        return ct_status_setf(st, CT_EOVERFLOW,
                              "stat registry: too many counters (%zu)", idx);
    if (ct__grow((void **)&reg->counters, &reg->cap_counters, idx + 1,
                 sizeof(struct ct__stat_counter)) != CT_OK ||
        ct__strmap_insert(&reg->names, name, (void *)(uintptr_t)(idx + 1)) !=
            CT_OK)
        return ct_status_setf(
            st, CT_ENOMEM, "stat registry: out of memory adding \"%s\"", name);
    reg->counters[idx].name = ct__strmap_key(&reg->names, name);
    reg->counters[idx].pending = 0;
    reg->counters[idx].kind = kind;
    reg->counters[idx].pinned = false;
    reg->counters[idx].pin = 0;
    reg->n_counters = idx + 1;
    reg->key_bytes += len + 1;
    *out = (ct_stat_t)idx;
    return CT_OK;
}

int ct__stat_check_name(const char *name, size_t len, ct_status_t *st)
{
    const char *nul = memchr(name, '\0', len);

    if (nul != NULL)
        return ct_status_setf(st, CT_EINVAL,
                              "stat name contains a NUL byte at offset %zu",
                              (size_t)(nul - name));
    return CT_OK;
}

int ct_stat_registry_add(ct_stat_registry_t *reg, const char *name, int kind,
                         ct_stat_t *out, ct_status_t *st)
{
    int rc;

    CT_ASSERT(name != NULL, "ct_stat_registry_add: NULL name");
    CT_ASSERT(kind >= 0 && kind < CT_STAT_KIND_COUNT, "bad stat kind %d", kind);
    ct__mutex_lock(&reg->mu);
    rc = ct__stat_add_locked(reg, name, strlen(name), kind, out, st);
    ct__mutex_unlock(&reg->mu);
    return rc;
}

int ct_stat_registry_add_n(ct_stat_registry_t *reg, const char *name,
                           size_t len, int kind, ct_stat_t *out,
                           ct_status_t *st)
{
    char stack[KEY_STACK_MAX + 1], *key = stack;
    int rc;

    CT_ASSERT(name != NULL || len == 0, "ct_stat_registry_add_n: NULL name");
    CT_ASSERT(kind >= 0 && kind < CT_STAT_KIND_COUNT, "bad stat kind %d", kind);
    if (len > 0 && (rc = ct__stat_check_name(name, len, st)) != CT_OK)
        return rc;
    if (len > KEY_STACK_MAX) {
        key = ct__malloc(len + 1);
        if (key == NULL)
            return ct_status_setf(st, CT_ENOMEM,
                                  "stat registry: out of memory for a "
                                  "%zu-byte name",
                                  len);
    }
    if (len > 0)
        memcpy(key, name, len);
    key[len] = '\0';
    ct__mutex_lock(&reg->mu);
    rc = ct__stat_add_locked(reg, key, len, kind, out, st);
    ct__mutex_unlock(&reg->mu);
    if (key != stack)
        ct__free(key);
    return rc;
}

/* ---- updates ---- */

/* Registers this thread's shard of reg in the cache and returns it, or
 * NULL when shards are unavailable. */
static struct ct__stat_shard *shard_for(ct_stat_registry_t *reg, ct_stat_t h)
{
    struct ct__stat_shard *s = shard_find(reg);
    int rc = CT_OK;

    if (s == NULL)
        s = shard_create(reg);
    if (s == NULL)
        return NULL;
    if (h >= s->cap) {
        ct__mutex_lock(&reg->mu);
        CT_ASSERT(h < reg->n_counters, "stat handle %u of a registry with %zu",
                  (unsigned)h, reg->n_counters);
        rc = shard_resize(s, reg->n_counters);
        ct__mutex_unlock(&reg->mu);
    }
    return rc == CT_OK ? s : NULL;
}

static SLOW_PATH void add_slow(ct_stat_registry_t *reg, ct_stat_t h,
                               int64_t delta)
{
    struct tl_entry *e = &tl_cache[reg->id & (TL_CACHE_SIZE - 1)];
    struct ct__stat_shard *s = shard_for(reg, h);
    _Atomic uint64_t *p;

    if (s == NULL) {
        /* Out of memory for a shard: the registry's total takes it. */
        ct__mutex_lock(&reg->mu);
        CT_ASSERT(h < reg->n_counters, "stat handle %u of a registry with %zu",
                  (unsigned)h, reg->n_counters);
        reg->counters[h].pending += (uint64_t)delta;
        ct__mutex_unlock(&reg->mu);
        return;
    }
    e->id = reg->id;
    e->slots = s->slots;
    e->cap = s->cap;
    p = &s->slots[h];
    atomic_store_explicit(
        p, atomic_load_explicit(p, memory_order_relaxed) + (uint64_t)delta,
        memory_order_relaxed);
}

void ct_stat_add(ct_stat_registry_t *reg, ct_stat_t h, int64_t delta)
{
    uint64_t id = reg->id;
    struct tl_entry *e = &tl_cache[id & (TL_CACHE_SIZE - 1)];

    if (CT_LIKELY(e->id == id && h < e->cap)) {
        _Atomic uint64_t *p = &e->slots[h];
        /* relaxed load + store: this thread is the slot's only writer, so
         * the pair is an atomic add to every reader (they only load), and
         * the slot publishes no other data. */
        atomic_store_explicit(
            p, atomic_load_explicit(p, memory_order_relaxed) + (uint64_t)delta,
            memory_order_relaxed);
        return;
    }
    add_slow(reg, h, delta);
}
