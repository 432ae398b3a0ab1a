/* cortado internal: the lock ranks (STYLE §5).
 *
 * Every ct__mutex carries a rank from this list. A thread may only acquire
 * a mutex whose rank is strictly greater than the rank of every mutex it
 * already holds; debug builds (CT_DEBUG) check this on every lock with a
 * small per-thread witness, in the manner of jemalloc's witness.c. Lower
 * ranks are "outer" locks, higher ranks are "inner" ones. Values leave
 * gaps so that modules can slot new ranks in without renumbering.
 *
 * The scheduler's hot paths take no lock at all: deques are lock-free and
 * sleeping uses a futex EventCount. The only scheduler locks guard the
 * per-node injection queues (leaf-like, held for a few pointer writes).
 */
#ifndef CT_SCHEDULER_LOCK_RANK_H
#define CT_SCHEDULER_LOCK_RANK_H

enum ct_lock_rank {
    CT_LOCK_RANK_NONE = 0,         /* placeholder: never used for a mutex */
    CT_LOCK_RANK_ENGINE = 10,      /* engine-wide registries */
    CT_LOCK_RANK_NET = 20,         /* a net's compile / run bookkeeping */
    CT_LOCK_RANK_WORKSPACE = 30,   /* a workspace's blob table */
    CT_LOCK_RANK_POOL = 40,        /* pool-wide administration */
    CT_LOCK_RANK_POOL_INJECT = 50, /* a node's injection queue */
    CT_LOCK_RANK_STATS_LINK = 55,  /* stat shards' thread links (global) */
    CT_LOCK_RANK_STATS = 60,       /* stat registry */
    CT_LOCK_RANK_TEST_OUTER = 70,  /* reserved for unit tests */
    CT_LOCK_RANK_TEST_INNER = 80,  /* reserved for unit tests */
    CT_LOCK_RANK_LEAF = 90,        /* leaf locks: nothing taken inside */
    CT_LOCK_RANK_COUNT
};

#endif /* CT_SCHEDULER_LOCK_RANK_H */
