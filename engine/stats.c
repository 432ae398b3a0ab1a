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
 * Consistent snapshots. The flavours built from several counters (avg:
 * count and sum; stddev: four; detailed: a detail and the total) must
 * export all of one event or none of it: an export with count from one
 * moment and sum from another breaks count == sum of buckets. So their
 * keys are marked (counters[i].multi, listed in reg->multi) and their
 * events go through ct__stat_add_n (ct__stat_add2 for two counters),
 * which brackets the slot writes with the shard's sequence number seq (a
 * seqlock with one writer, so plain load + store again, no
 * read-modify-write):
 *     W1  seq = q + 1                  relaxed (q: seq, even)
 *     W2  slot[h_k] += d_k, each k     release stores
 *     W3  seq = q + 2                  release
 * and an exporter, holding reg->mu, copies a shard with
 *     R0  every slot                   relaxed loads
 *     R1  q1 = seq, retry if odd       acquire
 *     R2  every marked slot, again     acquire loads
 *     R3  q2 = seq, retry if != q1     relaxed
 * Why a cut with q1 == q2 holds exactly the first q1/2 multi-counter
 * updates of the shard, for every marked slot:
 *   - none missing: R1 read the value W3 of update q1/2 stored (release),
 *     so that update and all earlier ones happen before R2, and by
 *     coherence R2 reads their stores or later ones;
 *   - none extra: if an R2 load read a store of a later update u (or a
 *     later store to the slot, which the owner made and so continues u's
 *     release sequence in C11), it synchronised with u's W2, and u's W1
 *     (seq = q1 + 1 or more) happens before R3, which therefore cannot
 *     read q1 again (seq only grows): the copy is retried.
 * Release stores and acquire loads rather than fences: they say the same
 * here, ThreadSanitizer models them (it ignores fences, and gcc warns
 * about them under -fsanitize=thread), and on x86-64 they are the same
 * plain movs as relaxed ones. ct_stat_add never touches seq: a plain
 * update to a marked counter merges like any other, ordered with nothing.
 *
 * R0 reads the unmarked slots once; a retry re-reads only the marked
 * ones, a few loads, so a writer updating an avg stat in a tight loop
 * cannot starve the export of a large registry. W1..W3 take no lock and
 * the slow path does its locked work (shard creation, growth) before W1,
 * so the exporter's wait (it spins, then yields, with reg->mu held) only
 * lasts while the owner runs a few stores or is preempted between them;
 * the owner never waits for a reader. The reset baselines are the
 * snapshot's own values, so an update after the cut is wholly in the next
 * export: every multi-counter update lands in exactly one export, whole.
 * A shard folded at thread exit is folded by its owner (no update can be
 * in progress), and an update that found no shard adds its n deltas to
 * pending under one lock: both are consistent too.
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
#include <sched.h>
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
/* Failed snapshot attempts an exporter spins through before it starts
 * yielding the CPU to the (possibly preempted) shard owner. */
#define SNAPSHOT_SPINS 64
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
    _Atomic uint64_t *seq; /* &shard->seq */
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
    atomic_init(&s->seq, 0);
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
    ct__free(reg->multi);
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
    reg->counters[idx].multi = false;
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

int ct__stat_registry_add_multi(ct_stat_registry_t *reg, const char *name,
                                int kind, ct_stat_t *out, ct_status_t *st)
{
    int rc;

    CT_ASSERT(name != NULL, "ct__stat_registry_add_multi: NULL name");
    CT_ASSERT(kind >= 0 && kind < CT_STAT_KIND_COUNT, "bad stat kind %d", kind);
    ct__mutex_lock(&reg->mu);
    /* Room for the mark first: a failure then leaves nothing behind. */
    if (ct__grow((void **)&reg->multi, &reg->cap_multi, reg->n_multi + 1,
                 sizeof(ct_stat_t)) != CT_OK) {
        ct__mutex_unlock(&reg->mu);
        return ct_status_setf(
            st, CT_ENOMEM, "stat registry: out of memory adding \"%s\"", name);
    }
    rc = ct__stat_add_locked(reg, name, strlen(name), kind, out, st);
    if (rc == CT_OK && !reg->counters[*out].multi) {
        reg->counters[*out].multi = true;
        reg->multi[reg->n_multi++] = *out;
    }
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
    e->seq = &s->seq;
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

/* One multi-counter update of this thread's shard: W1..W3 of the design
 * note. The owner is the only writer of seq and of the slots, so each
 * load + store pair is an atomic add as far as readers can tell. */
static inline void add_n_shard(_Atomic uint64_t *seq, _Atomic uint64_t *slots,
                               const ct_stat_t *h, const int64_t *delta,
                               size_t n)
{
    uint64_t q = atomic_load_explicit(seq, memory_order_relaxed);
    size_t k;

    /* W1: odd, an update is under way. Ordered before the slot stores
     * (for any reader that sees one of them) by their release. */
    atomic_store_explicit(seq, q + 1, memory_order_relaxed);
    for (k = 0; k < n; k++) {
        _Atomic uint64_t *p = &slots[h[k]];
        /* W2: release, so a reader that sees this value also sees W1. */
        atomic_store_explicit(p,
                              atomic_load_explicit(p, memory_order_relaxed) +
                                  (uint64_t)delta[k],
                              memory_order_release);
    }
    /* W3: even again; release publishes the slot stores to a reader that
     * acquires this value. */
    atomic_store_explicit(seq, q + 2, memory_order_release);
}

static SLOW_PATH void add_n_slow(ct_stat_registry_t *reg, const ct_stat_t *h,
                                 const int64_t *delta, size_t n)
{
    struct tl_entry *e = &tl_cache[reg->id & (TL_CACHE_SIZE - 1)];
    struct ct__stat_shard *s;
    ct_stat_t hmax = 0;
    size_t k;

    for (k = 0; k < n; k++)
        if (h[k] > hmax)
            hmax = h[k];
    /* Every lock is taken here, before W1: a reader never waits on an
     * update that waits on the registry lock. */
    s = shard_for(reg, hmax);
    if (s == NULL) {
        /* Out of memory for a shard: the totals take all n, at once. */
        ct__mutex_lock(&reg->mu);
        for (k = 0; k < n; k++) {
            CT_ASSERT(h[k] < reg->n_counters,
                      "stat handle %u of a registry with %zu", (unsigned)h[k],
                      reg->n_counters);
            reg->counters[h[k]].pending += (uint64_t)delta[k];
        }
        ct__mutex_unlock(&reg->mu);
        return;
    }
    e->id = reg->id;
    e->slots = s->slots;
    e->cap = s->cap;
    e->seq = &s->seq;
    add_n_shard(&s->seq, s->slots, h, delta, n);
}

void ct__stat_add_n(ct_stat_registry_t *reg, const ct_stat_t *h,
                    const int64_t *delta, size_t n)
{
    uint64_t id = reg->id;
    struct tl_entry *e = &tl_cache[id & (TL_CACHE_SIZE - 1)];
    size_t k = 0;

    if (CT_LIKELY(e->id == id)) {
        while (k < n && h[k] < e->cap)
            k++;
        if (CT_LIKELY(k == n)) {
            add_n_shard(e->seq, e->slots, h, delta, n);
            return;
        }
    }
    add_n_slow(reg, h, delta, n);
}

void ct__stat_add2(ct_stat_registry_t *reg, ct_stat_t h0, int64_t d0,
                   ct_stat_t h1, int64_t d1)
{
    uint64_t id = reg->id;
    struct tl_entry *e = &tl_cache[id & (TL_CACHE_SIZE - 1)];

    if (CT_LIKELY(e->id == id && h0 < e->cap && h1 < e->cap)) {
        /* add_n_shard for n = 2, straight-line: W1, W2 twice, W3. */
        _Atomic uint64_t *seq = e->seq;
        _Atomic uint64_t *p0 = &e->slots[h0], *p1 = &e->slots[h1];
        uint64_t q = atomic_load_explicit(seq, memory_order_relaxed);
        atomic_store_explicit(seq, q + 1, memory_order_relaxed);
        atomic_store_explicit(
            p0, atomic_load_explicit(p0, memory_order_relaxed) + (uint64_t)d0,
            memory_order_release);
        atomic_store_explicit(
            p1, atomic_load_explicit(p1, memory_order_relaxed) + (uint64_t)d1,
            memory_order_release);
        atomic_store_explicit(seq, q + 2, memory_order_release);
        return;
    }
    {
        const ct_stat_t h[2] = {h0, h1};
        const int64_t d[2] = {d0, d1};
        add_n_slow(reg, h, d, 2);
    }
}

void ct__stat_shard_snapshot(const ct_stat_registry_t *reg,
                             struct ct__stat_shard *s, size_t m, uint64_t *out)
{
    unsigned tries = 0;
    size_t i, k;

    /* R0: the unmarked slots need no cut (and the marked ones are read
     * again below). */
    for (i = 0; i < m; i++)
        out[i] = atomic_load_explicit(&s->slots[i], memory_order_relaxed);
    if (reg->n_multi == 0)
        return;
    for (;;) {
        /* R1: acquire pairs with W3, so every update up to q1 is seen. */
        uint64_t q1 = atomic_load_explicit(&s->seq, memory_order_acquire);
        if ((q1 & 1) == 0) {
            for (k = 0; k < reg->n_multi; k++) {
                ct_stat_t j = reg->multi[k];
                /* R2: acquire pairs with W2, so a store of a later update
                 * brings its W1 along to R3. */
                if (j < m)
                    out[j] = atomic_load_explicit(&s->slots[j],
                                                  memory_order_acquire);
            }
            /* R3: after the acquire loads, so it cannot read an older
             * value than a W1 they brought along. */
            if (atomic_load_explicit(&s->seq, memory_order_relaxed) == q1)
                return;
        }
        if (++tries > SNAPSHOT_SPINS)
            sched_yield();
    }
}
