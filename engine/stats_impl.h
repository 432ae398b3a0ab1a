/* cortado internal: the stat registry's layout and the helpers its
 * files share (engine/stats.c: shards and updates; engine/stats_list.c:
 * exports and by-name updates; engine/stats_flavors.c; the stats
 * operators). See the design note at the top of engine/stats.c. */
#ifndef CT_ENGINE_STATS_IMPL_H
#define CT_ENGINE_STATS_IMPL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cortado/stats.h"
#include "engine/strmap.h"
#include "scheduler/sync.h"

struct ct__stat_counter {
    const char *name; /* the name map's own key copy */
    uint64_t pending; /* exited threads, unsharded adds, sets, resets */
    int kind;         /* enum ct_stat_kind */
    bool pinned;      /* pin holds ct__stat_registry_pin's value */
    bool multi;       /* in reg->multi: part of a multi-counter stat */
    int64_t pin;
};

struct ct__stat_tls;

struct ct__stat_shard {
    /* Sequence number of the owner's multi-counter updates
     * (ct__stat_add_n): odd while one is under way. Written only by the
     * owner, read by exporters; see "Consistent snapshots" in
     * engine/stats.c. */
    _Atomic uint64_t seq;
    /* cap slots, CT_CACHE_LINE aligned, cap a multiple of a line. Slot
     * values: atomic, written only by the owner thread (relaxed: they
     * publish nothing). The pointer and cap: written by the owner under
     * reg->mu (growth) or by registry free under link_mu + reg->mu; read
     * by the owner without a lock (its own writes) and by others under
     * reg->mu. */
    _Atomic uint64_t *slots;
    uint64_t *base; /* cap reset baselines; guarded by reg->mu */
    size_t cap;
    uint64_t reg_id;                 /* immutable */
    struct ct__stat_tls *owner;      /* immutable */
    ct_stat_registry_t *reg;         /* NULL once freed; guarded by link_mu */
    struct ct__stat_shard *reg_prev; /* in reg->shards; guarded by reg->mu */
    struct ct__stat_shard *reg_next; /* guarded by reg->mu */
    struct ct__stat_shard *tls_next; /* owner's list; owned by the owner */
};

struct ct_stat_registry_s {
    /* Immutable; alone on the first cache line so the lock's writes never
     * evict it from the updating threads' caches. */
    uint64_t id;
    _Alignas(CT_CACHE_LINE) struct ct__mutex mu;
    struct ct__strmap names;           /* name -> index + 1; guarded by mu */
    struct ct__stat_counter *counters; /* n_counters entries; guarded by mu */
    size_t n_counters, cap_counters;
    size_t key_bytes; /* sum of (strlen(name) + 1); guarded by mu */
    struct ct__stat_shard *shards; /* live threads' shards; guarded by mu */
    /* Indices of the counters with multi set (n_multi of cap_multi), in
     * the order they were marked; guarded by mu. */
    ct_stat_t *multi;
    size_t n_multi, cap_multi;
};

/* ct_stat_registry_add that also marks the counter as part of a
 * multi-counter stat (the flavours' keys), so exports read it together
 * with the other marked counters of each shard. CT_ENOMEM leaves the
 * registry unchanged. */
int ct__stat_registry_add_multi(ct_stat_registry_t *reg, const char *name,
                                int kind, ct_stat_t *out, ct_status_t *st);

/* Adds delta[k] to counter h[k] for k < n as one update: an export sees
 * all n deltas of it or none (counters marked by
 * ct__stat_registry_add_multi). Lock-free like ct_stat_add; no handle
 * may repeat. */
void ct__stat_add_n(ct_stat_registry_t *reg, const ct_stat_t *h,
                    const int64_t *delta, size_t n);

/* ct__stat_add_n for two counters (h0 != h1), without the arrays: the
 * avg and detailed flavours' update. */
void ct__stat_add2(ct_stat_registry_t *reg, ct_stat_t h0, int64_t d0,
                   ct_stat_t h1, int64_t d1);

/* Copies the first m slots of shard s into out, with reg->mu held: the
 * marked counters (reg->multi) as one consistent cut of the owner's
 * multi-counter updates, the others one by one. Waits (spinning, then
 * yielding) while the owner is inside a multi-counter update; never
 * blocks the owner. */
void ct__stat_shard_snapshot(const ct_stat_registry_t *reg,
                             struct ct__stat_shard *s, size_t m, uint64_t *out);

/* Looks up or creates counter `name` (NUL-terminated, len bytes) with
 * reg->mu held. CT_ENOMEM / CT_EOVERFLOW leave the registry unchanged. */
int ct__stat_add_locked(ct_stat_registry_t *reg, const char *name, size_t len,
                        int kind, ct_stat_t *out, ct_status_t *st);
/* CT_EINVAL "stat name contains a NUL byte at offset <k>" when the len
 * bytes at name hold a NUL. */
int ct__stat_check_name(const char *name, size_t len, ct_status_t *st);

/* Puts back the values of l, an unmodified export of reg taken with
 * reset, after its delivery failed: item i is counter i (exports are in
 * registration order and counters are never removed), so this adds by
 * index under the registry lock and never allocates or fails. */
void ct__stat_registry_restore(ct_stat_registry_t *reg,
                               const struct ct_stat_list *l);

/* Pins v as counter h's offset the first time it is called for h and
 * returns the pinned offset (v then, the first caller's value ever
 * after; exports and resets keep it). StdDev stats keep their offset
 * here, so every instance sharing the counters shares the offset.
 * Takes the registry lock. */
int64_t ct__stat_registry_pin(ct_stat_registry_t *reg, ct_stat_t h, int64_t v);

#endif /* CT_ENGINE_STATS_IMPL_H */
