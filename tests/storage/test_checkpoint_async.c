/* The asynchronous checkpoint writer (storage/checkpoint.c): async saves
 * equal synchronous ones byte for byte; the call returns while the writer
 * is held; back-pressure at max_in_flight; errors of the I/O shim reported
 * by the next call and by flush, with the previous checkpoint intact;
 * CT_EDURABILITY reported distinctly; keep_last retention; shutdown with a
 * save in flight; the stat counters; the Checkpoint op's async=1 path
 * (reliability checklist §1.3, A1-A6, A12-A17). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cortado/stats.h"
#include "scheduler/sync.h"
#include "storage/checkpoint.h"
#include "storage/fileio.h"
#include "storage_test.h"
#include "test_util.h"

/* ---- fixture ---- */

struct env {
    ct_engine_t *eng;
    ct_workspace_t *ws;
    char *dir;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    struct ct_workspace_config cfg = {NULL, NULL};

    if (e == NULL)
        return -1;
    ct__io_reset();
    e->dir = stu_tmpdir();
    cfg.root_folder = e->dir;
    if (ct_engine_new(NULL, &e->eng, NULL) != CT_OK ||
        ct_workspace_new(e->eng, &cfg, &e->ws, NULL) != CT_OK)
        return -1;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;

    ct__io_reset();
    ct_workspace_free(e->ws);
    ct_engine_free(e->eng);
    stu_rmtree(e->dir);
    free(e);
    return 0;
}

/* ---- helpers ---- */

#define N_W 300000 /* elements of "w": more than one chunk at 100000 */

static const char *const blob_names[] = {"iter", "w", "b", "d", "s", "meta"};
#define N_BLOBS (sizeof(blob_names) / sizeof(blob_names[0]))

/* Gives every blob values that depend on v. */
static void fill_state(struct env *e, int64_t v)
{
    static float w[N_W];
    const int64_t dw = N_W, db = 7, dd[2] = {2, 3}, ds = 2;
    int32_t b[7];
    double d[6];
    char s0[32], s1[32], meta[64];
    const char *strs[2] = {s0, s1};
    ct_blob_t *blob;
    ct_status_t st;
    int64_t i;

    for (i = 0; i < N_W; i++)
        w[i] = (float)(v * 1000 + i % 977) * 0.25f;
    for (i = 0; i < 7; i++)
        b[i] = (int32_t)(v * 7 + i);
    for (i = 0; i < 6; i++)
        d[i] = (double)v / (double)(i + 3);
    snprintf(s0, sizeof(s0), "first %lld", (long long)v);
    snprintf(s1, sizeof(s1), "second\n%lld", (long long)v);
    snprintf(meta, sizeof(meta), "meta-net-def of %lld", (long long)v);
    tu_feed(e->ws, "iter", CT_DTYPE_I64, 0, NULL, &v);
    tu_feed_f32(e->ws, "w", 1, &dw, w);
    tu_feed(e->ws, "b", CT_DTYPE_I32, 1, &db, b);
    tu_feed(e->ws, "d", CT_DTYPE_F64, 2, dd, d);
    tu_feed(e->ws, "s", CT_DTYPE_STRING, 1, &ds, strs);
    assert_int_equal(ct_workspace_create_blob(e->ws, "meta", &blob, &st),
                     CT_OK);
    assert_int_equal(ct_blob_set_string(blob, meta, strlen(meta), &st), CT_OK);
}

static const struct ct_serialize_options chunked = {100000, 0};

/* The blobs as save items, for a synchronous reference save. */
static void sync_save(struct env *e, const char *path)
{
    struct ct_save_item items[N_BLOBS];
    ct_status_t st;
    size_t i;

    memset(items, 0, sizeof(items));
    for (i = 0; i < N_BLOBS; i++) {
        ct_blob_t *b = ct_workspace_get_blob(e->ws, blob_names[i]);
        items[i].name = blob_names[i];
        items[i].opts = &chunked;
        items[i].tensor = ct_blob_get_tensor(b);
        if (items[i].tensor == NULL) {
            const ct_str_t *s = ct_blob_get_string(b);
            items[i].str = s->data;
            items[i].str_len = s->len;
        }
    }
    if (ct_db_save_items("minidb", path, NULL, 0, items, N_BLOBS, NULL, &st) !=
        CT_OK)
        fail_msg("sync save %s: %s", path, st.msg);
}

static void opts_init(struct ct_checkpoint_options *o, int snapshot)
{
    ct_checkpoint_options_init(o);
    o->serialize = &chunked;
    o->snapshot = snapshot;
}

static int save_async(struct env *e, const char *pattern, int64_t iter,
                      const struct ct_checkpoint_options *o, ct_status_t *st)
{
    char *p = stu_path(e->dir, pattern);
    int rc = ct_engine_checkpoint_async(e->eng, e->ws, blob_names, N_BLOBS, p,
                                        iter, o, st);
    free(p);
    return rc;
}

static void flush_ok(struct env *e)
{
    ct_status_t st;

    if (ct_engine_flush_checkpoints(e->eng, &st) != CT_OK)
        fail_msg("flush: %s", st.msg);
}

static void assert_same_file(const char *a, const char *b)
{
    size_t la, lb;
    unsigned char *pa = stu_read(a, &la), *pb = stu_read(b, &lb);

    if (pa == NULL || pb == NULL)
        fail_msg("cannot read %s or %s", a, b);
    if (la != lb || memcmp(pa, pb, la) != 0)
        fail_msg("%s (%zu bytes) and %s (%zu bytes) differ", a, la, b, lb);
    free(pa);
    free(pb);
}

/* Asserts dir/name equals the synchronous save of the state for v. */
static void assert_file_is_state(struct env *e, const char *name, int64_t v)
{
    char *ref = stu_path(e->dir, "reference.ref");
    char *p = stu_path(e->dir, name);
    ct_status_t st;
    uint64_t n;

    fill_state(e, v);
    sync_save(e, ref);
    assert_same_file(p, ref);
    if (ct_db_verify("minidb", p, &n, &st) != CT_OK)
        fail_msg("verify %s: %s", p, st.msg);
    unlink(ref);
    free(ref);
    free(p);
}

static int count_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        n += ct__is_temp_name(de->d_name);
    closedir(d);
    return n;
}

static bool exists_in(struct env *e, const char *name)
{
    char *p = stu_path(e->dir, name);
    bool r = stu_exists(p);

    free(p);
    return r;
}

static int64_t stat_value(struct env *e, const char *name)
{
    ct_stat_registry_t *reg = ct_engine_stats(e->eng);
    ct_stat_t h;
    ct_status_t st;

    if (ct_stat_registry_find(reg, name, &h, &st) != CT_OK)
        fail_msg("%s", st.msg);
    return ct_stat_get(reg, h);
}

/* A hook that holds the writer until released. */
struct gate {
    struct ct__mutex mu;
    struct ct__cond cv;
    bool open;
    int n_entered; /* guarded by mu */
};

static void gate_init(struct gate *g)
{
    assert_int_equal(
        ct__mutex_init(&g->mu, "test gate", CT_LOCK_RANK_TEST_OUTER), CT_OK);
    assert_int_equal(ct__cond_init(&g->cv), CT_OK);
    g->open = false;
    g->n_entered = 0;
}

static void gate_destroy(struct gate *g)
{
    ct__cond_destroy(&g->cv);
    ct__mutex_destroy(&g->mu);
}

static void gate_hook(void *ctx, const char *path)
{
    struct gate *g = ctx;

    (void)path;
    ct__mutex_lock(&g->mu);
    g->n_entered++;
    ct__cond_broadcast(&g->cv);
    while (!g->open)
        ct__cond_wait(&g->cv, &g->mu);
    ct__mutex_unlock(&g->mu);
}

/* Waits until the writer has entered the hook n times. */
static void gate_wait_entered(struct gate *g, int n)
{
    ct__mutex_lock(&g->mu);
    while (g->n_entered < n)
        ct__cond_wait(&g->cv, &g->mu);
    ct__mutex_unlock(&g->mu);
}

static void gate_open(struct gate *g)
{
    ct__mutex_lock(&g->mu);
    g->open = true;
    ct__cond_broadcast(&g->cv);
    ct__mutex_unlock(&g->mu);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- async equals sync ---- */

static void test_checkpoint_async_equals_sync_byte_for_byte(void **state)
{
    struct env *e = *state;
    struct ct_checkpoint_options o;
    char *ref = stu_path(e->dir, "sync.minidb");
    char *p;
    ct_status_t st;
    int mode;

    fill_state(e, 3);
    sync_save(e, ref);
    for (mode = 0; mode < CT_CHECKPOINT_SNAPSHOT_COUNT; mode++) {
        char name[32];
        opts_init(&o, mode);
        snprintf(name, sizeof(name), "async_%d_%%d.minidb", mode);
        assert_int_equal(save_async(e, name, 7, &o, &st), CT_OK);
        flush_ok(e);
        snprintf(name, sizeof(name), "async_%d_7.minidb", mode);
        p = stu_path(e->dir, name);
        assert_same_file(p, ref);
        free(p);
    }
    free(ref);
}

static void test_checkpoint_async_copy_snapshot_survives_writes(void **state)
{
    struct env *e = *state;
    struct ct_checkpoint_options o;
    struct gate g;
    ct_status_t st;
    float *w;
    int64_t i;

    gate_init(&g);
    assert_int_equal(ct__ckpt_set_hook(e->eng, gate_hook, &g, &st), CT_OK);
    fill_state(e, 1);
    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_COPY);
    assert_int_equal(save_async(e, "c.minidb", 1, &o, &st), CT_OK);
    /* The call returned while the writer is held before writing: compute
     * continues, even through raw pointers in COPY mode. */
    gate_wait_entered(&g, 1);
    assert_int_equal(stu_count_entries(e->dir), 0);
    w = ct_tensor_data(tu_fetch(e->ws, "w"));
    for (i = 0; i < N_W; i++)
        w[i] = -1.0f;
    fill_state(e, 2);
    gate_open(&g);
    flush_ok(e);
    assert_int_equal(ct__ckpt_set_hook(e->eng, NULL, NULL, &st), CT_OK);
    assert_file_is_state(e, "c.minidb", 1);
    gate_destroy(&g);
}

static void test_checkpoint_async_share_snapshot_copies_on_write(void **state)
{
    struct env *e = *state;
    struct ct_checkpoint_options o;
    const void *before;
    struct gate g;
    ct_status_t st;

    gate_init(&g);
    assert_int_equal(ct__ckpt_set_hook(e->eng, gate_hook, &g, &st), CT_OK);
    fill_state(e, 1);
    before = ct_tensor_cdata(tu_fetch(e->ws, "w"));
    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_SHARE);
    assert_int_equal(save_async(e, "s.minidb", 1, &o, &st), CT_OK);
    gate_wait_entered(&g, 1);
    assert_int_equal(ct_tensor_storage_refs(tu_fetch(e->ws, "w")), 2);
    /* tu_feed resizes before it writes, as ops do: copy on write. */
    fill_state(e, 2);
    assert_ptr_not_equal(ct_tensor_cdata(tu_fetch(e->ws, "w")), before);
    assert_int_equal(ct_tensor_storage_refs(tu_fetch(e->ws, "w")), 1);
    gate_open(&g);
    flush_ok(e);
    assert_int_equal(ct__ckpt_set_hook(e->eng, NULL, NULL, &st), CT_OK);
    assert_file_is_state(e, "s.minidb", 1);
    gate_destroy(&g);
}

/* ---- back-pressure ---- */

struct caller {
    struct env *e;
    int rc;
    _Atomic int returned;
    ct_status_t st;
};

static void caller_main(void *arg)
{
    struct caller *c = arg;
    struct ct_checkpoint_options o;

    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_COPY);
    c->rc = save_async(c->e, "bp_%d.minidb", 2, &o, &c->st);
    atomic_store(&c->returned, 1);
}

static void
test_checkpoint_async_second_save_waits_at_max_in_flight(void **state)
{
    struct env *e = *state;
    struct ct_checkpoint_options o;
    struct ct__thread thr;
    struct caller c;
    struct gate g;
    ct_status_t st;

    gate_init(&g);
    assert_int_equal(ct__ckpt_set_hook(e->eng, gate_hook, &g, &st), CT_OK);
    fill_state(e, 1);
    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_COPY);
    assert_int_equal(save_async(e, "bp_%d.minidb", 1, &o, &st), CT_OK);
    gate_wait_entered(&g, 1);
    memset(&c, 0, sizeof(c));
    c.e = e;
    atomic_init(&c.returned, 0);
    assert_int_equal(ct__thread_create(&thr, "ckpt-caller", caller_main, &c),
                     CT_OK);
    sleep_ms(200);
    /* max_in_flight = 1 and the first save is still held. */
    assert_int_equal(atomic_load(&c.returned), 0);
    assert_int_equal(stat_value(e, "cortado/checkpoint/in_flight"), 1);
    gate_open(&g);
    ct__thread_join(&thr);
    assert_int_equal(c.rc, CT_OK);
    flush_ok(e);
    assert_int_equal(stat_value(e, "cortado/checkpoint/stalls"), 1);
    assert_true(stat_value(e, "cortado/checkpoint/stall_ns") >= 150000000);
    assert_int_equal(stat_value(e, "cortado/checkpoint/saves"), 2);
    assert_int_equal(stat_value(e, "cortado/checkpoint/in_flight"), 0);
    assert_int_equal(ct__ckpt_set_hook(e->eng, NULL, NULL, &st), CT_OK);
    assert_file_is_state(e, "bp_1.minidb", 1);
    gate_destroy(&g);
}

static void test_checkpoint_async_max_in_flight_two_queues_two(void **state)
{
    struct env *e = *state;
    struct ct_checkpoint_options o;
    struct gate g;
    ct_status_t st;

    gate_init(&g);
    assert_int_equal(ct__ckpt_set_hook(e->eng, gate_hook, &g, &st), CT_OK);
    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_COPY);
    o.max_in_flight = 2;
    fill_state(e, 1);
    assert_int_equal(save_async(e, "two_%d.minidb", 1, &o, &st), CT_OK);
    gate_wait_entered(&g, 1);
    fill_state(e, 2);
    /* A second slot: returns at once although the first is held. */
    assert_int_equal(save_async(e, "two_%d.minidb", 2, &o, &st), CT_OK);
    assert_int_equal(stat_value(e, "cortado/checkpoint/in_flight"), 2);
    gate_open(&g);
    flush_ok(e);
    assert_int_equal(stat_value(e, "cortado/checkpoint/stalls"), 0);
    assert_int_equal(ct__ckpt_set_hook(e->eng, NULL, NULL, &st), CT_OK);
    assert_file_is_state(e, "two_1.minidb", 1);
    assert_file_is_state(e, "two_2.minidb", 2);
    gate_destroy(&g);
}

/* ---- errors ---- */

struct fault {
    enum ct__io_op op;
    long nth; /* 0: the last call of a clean save */
    int err;
    int code;
    const char *needle;
};

static const struct fault faults[] = {
    {CT_IO_OPEN, 1, EMFILE, CT_EIO, "EMFILE"},
    {CT_IO_OPEN, 1, EACCES, CT_EIO, "EACCES"},
    {CT_IO_WRITE, 1, ENOSPC, CT_EIO, "ENOSPC"},
    {CT_IO_WRITE, 2, EDQUOT, CT_EIO, "EDQUOT"},
    {CT_IO_WRITE, 0, ENOSPC, CT_EIO, "ENOSPC"},
    {CT_IO_WRITE, 1, EFBIG, CT_EIO, "EFBIG"},
    {CT_IO_FSYNC, 1, EIO, CT_EIO, "fsync"},
    {CT_IO_CLOSE, 1, EIO, CT_EIO, "EIO"},
    {CT_IO_RENAME, 1, EXDEV, CT_EIO, "EXDEV"},
    {CT_IO_RENAME, 1, ENOSPC, CT_EIO, "rename"},
};

/* Writes per clean save of the state (for "the last write"). */
static long writes_per_save(struct env *e)
{
    char *p = stu_path(e->dir, "count.minidb");
    long n;

    ct__io_reset();
    sync_save(e, p);
    n = ct__io_count(CT_IO_WRITE);
    unlink(p);
    free(p);
    ct__io_reset();
    return n;
}

/* One injected failure of the async save of "prev.minidb": reported by
 * the next call (by_flush false) or by flush; the previous file stays
 * byte-identical and loadable, no temporary file is left, and the stream
 * works again afterwards. */
static void run_fault(struct env *e, const struct fault *f, bool by_flush)
{
    struct ct_checkpoint_options o;
    char *p = stu_path(e->dir, "prev.minidb");
    unsigned char *before, *after;
    size_t lb, la;
    ct_status_t st;
    uint64_t n;
    int rc;

    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_COPY);
    fill_state(e, 10);
    assert_int_equal(save_async(e, "prev.minidb", 10, &o, &st), CT_OK);
    flush_ok(e);
    before = stu_read(p, &lb);
    assert_non_null(before);

    fill_state(e, 11);
    ct__io_fail_nth(f->op, f->nth > 0 ? f->nth : writes_per_save(e), f->err);
    assert_int_equal(save_async(e, "prev.minidb", 11, &o, &st), CT_OK);
    if (by_flush) {
        rc = ct_engine_flush_checkpoints(e->eng, &st);
    } else {
        fill_state(e, 12);
        rc = save_async(e, "prev.minidb", 12, &o, &st);
    }
    if (rc != f->code || strstr(st.msg, f->needle) == NULL ||
        strstr(st.msg, "iteration 11") == NULL)
        fail_msg("%s #%ld %s: want %s \"%s\", got %s \"%s\"",
                 ct__io_op_name(f->op), f->nth, strerror(f->err),
                 ct_err_name(f->code), f->needle, ct_err_name(rc), st.msg);
    /* The call that reported the error queued nothing. */
    flush_ok(e);
    after = stu_read(p, &la);
    assert_non_null(after);
    assert_int_equal(la, lb);
    assert_memory_equal(after, before, la);
    assert_int_equal(ct_db_verify("minidb", p, &n, &st), CT_OK);
    assert_int_equal(count_temp_files(e->dir), 0);
    /* Reported once: the stream saves again. */
    ct__io_reset();
    fill_state(e, 12);
    assert_int_equal(save_async(e, "prev.minidb", 12, &o, &st), CT_OK);
    flush_ok(e);
    assert_file_is_state(e, "prev.minidb", 12);
    free(before);
    free(after);
    free(p);
}

static void test_checkpoint_async_fault_reported_by_next_call(void **state)
{
    struct env *e = *state;
    size_t i;

    for (i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
        run_fault(e, &faults[i], false);
    assert_int_equal(stat_value(e, "cortado/checkpoint/failures"),
                     (int64_t)(sizeof(faults) / sizeof(faults[0])));
}

static void test_checkpoint_async_fault_reported_by_flush(void **state)
{
    struct env *e = *state;
    size_t i;

    for (i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
        run_fault(e, &faults[i], true);
}

static void test_checkpoint_async_dir_fsync_failure_is_edurability(void **state)
{
    struct env *e = *state;
    struct ct_checkpoint_options o;
    ct_status_t st;
    int rc;

    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_COPY);
    o.keep_last = 1;
    fill_state(e, 1);
    assert_int_equal(save_async(e, "dur_%d.minidb", 1, &o, &st), CT_OK);
    flush_ok(e);
    fill_state(e, 2);
    ct__io_fail_nth(CT_IO_FSYNC_DIR, 1, EIO);
    assert_int_equal(save_async(e, "dur_%d.minidb", 2, &o, &st), CT_OK);
    rc = ct_engine_flush_checkpoints(e->eng, &st);
    tu_assert_status(&st, rc, CT_EDURABILITY, "iteration 2");
    /* Published, counted as a save, and no retention after it: the old
     * file must survive a crash that loses the new one. */
    assert_file_is_state(e, "dur_2.minidb", 2);
    assert_file_is_state(e, "dur_1.minidb", 1);
    assert_int_equal(stat_value(e, "cortado/checkpoint/durability_unknown"), 1);
    assert_int_equal(stat_value(e, "cortado/checkpoint/failures"), 0);
    assert_int_equal(stat_value(e, "cortado/checkpoint/saves"), 2);
    /* The next clean save applies retention again. */
    fill_state(e, 3);
    assert_int_equal(save_async(e, "dur_%d.minidb", 3, &o, &st), CT_OK);
    flush_ok(e);
    assert_int_equal(stu_count_entries(e->dir), 1);
    assert_file_is_state(e, "dur_3.minidb", 3);
}

static void test_checkpoint_async_errors_are_per_stream(void **state)
{
    struct env *e = *state;
    struct ct_checkpoint_options o;
    ct_status_t st;
    int rc;

    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_COPY);
    fill_state(e, 1);
    ct__io_fail_nth(CT_IO_FSYNC, 1, EIO);
    assert_int_equal(save_async(e, "a_%d.minidb", 1, &o, &st), CT_OK);
    /* Stream b does not see a's error (the writer is FIFO: a_1 fails
     * before b_1 runs, and b_2 waits for b_1). */
    assert_int_equal(save_async(e, "b_%d.minidb", 1, &o, &st), CT_OK);
    assert_int_equal(save_async(e, "b_%d.minidb", 2, &o, &st), CT_OK);
    rc = save_async(e, "a_%d.minidb", 2, &o, &st);
    tu_assert_status(&st, rc, CT_EIO, "iteration 1");
    assert_non_null(strstr(st.msg, "fsync"));
    flush_ok(e);
    assert_false(exists_in(e, "a_1.minidb"));
    assert_false(exists_in(e, "a_2.minidb"));
    assert_file_is_state(e, "b_1.minidb", 1);
    assert_file_is_state(e, "b_2.minidb", 1);
}

static void test_checkpoint_flush_reports_first_error_and_count(void **state)
{
    struct env *e = *state;
    struct ct_checkpoint_options o;
    struct gate g;
    ct_status_t st;
    int rc;

    /* The writer is held while the three saves are queued, so that no
     * call sees an error before the flush. */
    gate_init(&g);
    assert_int_equal(ct__ckpt_set_hook(e->eng, gate_hook, &g, &st), CT_OK);
    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_COPY);
    o.max_in_flight = 3;
    fill_state(e, 1);
    /* Two plans on one op: the first call fires the first plan only, the
     * second call the second one. */
    ct__io_fail_nth(CT_IO_RENAME, 1, EXDEV);
    ct__io_fail_nth(CT_IO_RENAME, 1, ENOSPC);
    assert_int_equal(save_async(e, "m_%d.minidb", 1, &o, &st), CT_OK);
    assert_int_equal(save_async(e, "m_%d.minidb", 2, &o, &st), CT_OK);
    assert_int_equal(save_async(e, "m_%d.minidb", 3, &o, &st), CT_OK);
    gate_open(&g);
    rc = ct_engine_flush_checkpoints(e->eng, &st);
    tu_assert_status(&st, rc, CT_EIO, "iteration 1");
    assert_non_null(strstr(st.msg, "EXDEV"));
    assert_non_null(strstr(st.msg, "and 1 more failed checkpoint"));
    assert_int_equal(ct_engine_flush_checkpoints(e->eng, &st), CT_OK);
    assert_int_equal(ct__ckpt_set_hook(e->eng, NULL, NULL, &st), CT_OK);
    assert_int_equal(stu_count_entries(e->dir), 1);
    assert_file_is_state(e, "m_3.minidb", 1);
    gate_destroy(&g);
}

static void test_checkpoint_async_over_budget_returns_enomem(void **state)
{
    struct env *e = *state;
    struct ct_engine_config cfg;
    struct ct_workspace_config wcfg = {NULL, NULL};
    struct ct_checkpoint_options o;
    ct_engine_t *eng;
    ct_workspace_t *ws;
    const char *name = "big";
    const int64_t d = 1 << 20; /* 4 MiB of floats */
    char *p = stu_path(e->dir, "big.minidb");
    ct_status_t st;
    int rc;

    ct_engine_config_init(&cfg);
    cfg.mem_budget_bytes = 6u << 20; /* the tensor fits, a copy does not */
    wcfg.root_folder = e->dir;
    assert_int_equal(ct_engine_new(&cfg, &eng, &st), CT_OK);
    assert_int_equal(ct_workspace_new(eng, &wcfg, &ws, &st), CT_OK);
    tu_feed(ws, name, CT_DTYPE_F32, 1, &d, NULL);
    ct_checkpoint_options_init(&o);
    rc = ct_engine_checkpoint_async(eng, ws, &name, 1, p, 0, &o, &st);
    tu_assert_status(&st, rc, CT_ENOMEM, "staging \"big\"");
    assert_non_null(strstr(st.msg, "memory budget"));
    assert_int_equal(ct_engine_flush_checkpoints(eng, &st), CT_OK);
    assert_int_equal(stu_count_entries(e->dir), 0);
    /* SHARE needs no staging memory. */
    o.snapshot = CT_CHECKPOINT_SNAPSHOT_SHARE;
    assert_int_equal(
        ct_engine_checkpoint_async(eng, ws, &name, 1, p, 0, &o, &st), CT_OK);
    assert_int_equal(ct_engine_flush_checkpoints(eng, &st), CT_OK);
    assert_true(stu_exists(p));
    ct_workspace_free(ws);
    ct_engine_free(eng);
    free(p);
}

static void test_checkpoint_async_bad_arguments_rejected(void **state)
{
    struct env *e = *state;
    struct ct_checkpoint_options o;
    const char *missing[] = {"nope"}, *dup[] = {"w", "w"}, *bad[] = {"a#%1"};
    ct_status_t st;
    int rc;

    fill_state(e, 1);
    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_COPY);
    o.max_in_flight = 0;
    rc = save_async(e, "x_%d", 1, &o, &st);
    tu_assert_status(&st, rc, CT_EINVAL, "max_in_flight 0");
    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_COPY);
    rc = save_async(e, "x_%s", 1, &o, &st);
    tu_assert_status(&st, rc, CT_EARG, "unsupported conversion");
    o.db_type = "leveldb";
    rc = save_async(e, "x_%d", 1, &o, &st);
    tu_assert_status(&st, rc, CT_ENOTFOUND, "leveldb");
    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_COPY);
    rc = ct_engine_checkpoint_async(e->eng, e->ws, missing, 1, "x", 1, &o, &st);
    tu_assert_status(&st, rc, CT_ENOTFOUND, "no blob \"nope\"");
    rc = ct_engine_checkpoint_async(e->eng, e->ws, dup, 2, "x", 1, &o, &st);
    tu_assert_status(&st, rc, CT_EINVAL, "Duplicated input: w");
    rc = ct_engine_checkpoint_async(e->eng, e->ws, bad, 1, "x", 1, &o, &st);
    tu_assert_status(&st, rc, CT_EINVAL, "chunk separator");
    rc = ct_engine_checkpoint_async(e->eng, e->ws, dup, 0, "x", 1, &o, &st);
    tu_assert_status(&st, rc, CT_EINVAL, "no blobs");
    assert_int_equal(stu_count_entries(e->dir), 0);
}

/* ---- retention ---- */

static void
test_checkpoint_async_keep_last_deletes_only_own_old_files(void **state)
{
    struct env *e = *state;
    struct ct_checkpoint_options o;
    char *foreign = stu_path(e->dir, "k_000.minidb");
    char *other = stu_path(e->dir, "k_001.minidb.bak");
    char *k2 = stu_path(e->dir, "k_002.minidb");
    char *k2_new = stu_path(e->dir, "k2.new");
    ct_status_t st;
    int64_t i;

    /* Files the engine did not write, one of them matching the pattern. */
    stu_write(foreign, "x", 1);
    stu_write(other, "y", 1);
    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_COPY);
    o.keep_last = 2;
    for (i = 1; i <= 3; i++) {
        fill_state(e, i);
        assert_int_equal(save_async(e, "k_%03d.minidb", i, &o, &st), CT_OK);
        flush_ok(e);
    }
    /* 1 went when 3 was published. */
    assert_false(exists_in(e, "k_001.minidb"));
    assert_int_equal(stu_count_entries(e->dir), 4);
    /* k_002 replaced by someone else (a new inode): not ours any more,
     * never deleted. */
    stu_write(k2_new, "z", 1);
    assert_int_equal(rename(k2_new, k2), 0);
    /* A failed save deletes nothing. */
    fill_state(e, 4);
    ct__io_fail_nth(CT_IO_FSYNC, 1, EIO);
    assert_int_equal(save_async(e, "k_%03d.minidb", 4, &o, &st), CT_OK);
    assert_int_equal(ct_engine_flush_checkpoints(e->eng, &st), CT_EIO);
    assert_int_equal(stu_count_entries(e->dir), 4);
    for (i = 4; i <= 6; i++) {
        fill_state(e, i);
        assert_int_equal(save_async(e, "k_%03d.minidb", i, &o, &st), CT_OK);
        flush_ok(e);
    }
    assert_true(stu_exists(foreign));
    assert_true(stu_exists(other));
    assert_true(stu_exists(k2));
    assert_false(exists_in(e, "k_003.minidb"));
    assert_false(exists_in(e, "k_004.minidb"));
    assert_file_is_state(e, "k_005.minidb", 5);
    assert_file_is_state(e, "k_006.minidb", 6);
    assert_int_equal(stu_count_entries(e->dir), 5);
    assert_int_equal(stat_value(e, "cortado/checkpoint/retention_removed"), 3);
    free(foreign);
    free(other);
    free(k2);
    free(k2_new);
}

static void
test_checkpoint_async_keep_last_same_name_never_deleted(void **state)
{
    struct env *e = *state;
    struct ct_checkpoint_options o;
    ct_status_t st;
    int64_t i;

    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_COPY);
    o.keep_last = 1;
    for (i = 1; i <= 3; i++) {
        fill_state(e, i);
        /* No conversion: every save replaces the same file. */
        assert_int_equal(save_async(e, "latest.minidb", i, &o, &st), CT_OK);
        flush_ok(e);
        assert_file_is_state(e, "latest.minidb", i);
    }
    assert_int_equal(stat_value(e, "cortado/checkpoint/retention_removed"), 0);
}

static void test_checkpoint_async_retention_unlink_failure_retried(void **state)
{
    struct env *e = *state;
    struct ct_checkpoint_options o;
    ct_status_t st;
    int64_t i;

    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_COPY);
    o.keep_last = 1;
    for (i = 1; i <= 3; i++) {
        fill_state(e, i);
        if (i == 2)
            ct__io_fail_nth(CT_IO_UNLINK, 1, EACCES);
        assert_int_equal(save_async(e, "u_%d.minidb", i, &o, &st), CT_OK);
        /* A deletion failure does not fail the save. */
        flush_ok(e);
    }
    assert_int_equal(stat_value(e, "cortado/checkpoint/retention_failures"), 1);
    assert_int_equal(stu_count_entries(e->dir), 1);
    assert_file_is_state(e, "u_3.minidb", 3);
}

/* ---- shutdown ---- */

static void opener_main(void *arg)
{
    sleep_ms(150);
    gate_open(arg);
}

static void test_checkpoint_async_engine_free_waits_for_save(void **state)
{
    struct env *e = *state;
    struct ct_checkpoint_options o;
    struct ct__thread thr;
    struct gate g;
    char *p = stu_path(e->dir, "last.minidb");
    ct_status_t st;
    uint64_t n;

    gate_init(&g);
    assert_int_equal(ct__ckpt_set_hook(e->eng, gate_hook, &g, &st), CT_OK);
    fill_state(e, 5);
    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_SHARE);
    assert_int_equal(save_async(e, "last.minidb", 5, &o, &st), CT_OK);
    gate_wait_entered(&g, 1);
    /* The workspace goes first (its tensors are shared with the save),
     * then the engine, while the save is still held. */
    ct_workspace_free(e->ws);
    e->ws = NULL;
    assert_int_equal(ct__thread_create(&thr, "opener", opener_main, &g), CT_OK);
    ct_engine_free(e->eng);
    e->eng = NULL;
    ct__thread_join(&thr);
    assert_int_equal(ct_db_verify("minidb", p, &n, &st), CT_OK);
    assert_int_equal(n, 8); /* iter, 3 chunks of w, b, d, s, meta */
    gate_destroy(&g);
    free(p);
    /* teardown frees NULLs */
}

/* ---- stats ---- */

static void test_checkpoint_async_stats_count_saves_bytes_and_time(void **state)
{
    struct env *e = *state;
    struct ct_checkpoint_options o;
    struct stat sb;
    int64_t i, bytes = 0;
    ct_status_t st;

    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_COPY);
    for (i = 1; i <= 4; i++) {
        char name[32], *p;
        fill_state(e, i);
        assert_int_equal(save_async(e, "st_%d.minidb", i, &o, &st), CT_OK);
        flush_ok(e);
        snprintf(name, sizeof(name), "st_%lld.minidb", (long long)i);
        p = stu_path(e->dir, name);
        assert_int_equal(stat(p, &sb), 0);
        bytes += sb.st_size;
        free(p);
    }
    ct__io_fail_nth(CT_IO_WRITE, 1, ENOSPC);
    assert_int_equal(save_async(e, "st_%d.minidb", 5, &o, &st), CT_OK);
    assert_int_equal(ct_engine_flush_checkpoints(e->eng, &st), CT_EIO);
    assert_int_equal(stat_value(e, "cortado/checkpoint/saves"), 4);
    assert_int_equal(stat_value(e, "cortado/checkpoint/failures"), 1);
    assert_int_equal(stat_value(e, "cortado/checkpoint/bytes"), bytes);
    assert_true(stat_value(e, "cortado/checkpoint/write_ns") > 0);
    assert_true(stat_value(e, "cortado/checkpoint/stage_ns") > 0);
    assert_int_equal(stat_value(e, "cortado/checkpoint/stalls"), 0);
    assert_int_equal(stat_value(e, "cortado/checkpoint/in_flight"), 0);
}

static void test_checkpoint_async_flush_releases_staging_memory(void **state)
{
    struct env *e = *state;
    struct ct_checkpoint_options o;
    uint64_t base;
    ct_status_t st;
    int64_t i;

    fill_state(e, 1);
    base = ct_engine_mem_in_use(e->eng);
    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_COPY);
    for (i = 1; i <= 20; i++) {
        assert_int_equal(save_async(e, "mem.minidb", i, &o, &st), CT_OK);
        /* One staging copy kept for reuse, never more. */
        assert_true(ct_engine_mem_in_use(e->eng) <= 2 * base);
    }
    flush_ok(e);
    assert_int_equal(ct_engine_mem_in_use(e->eng), base);
}

/* ---- allocation failures (STYLE §9, checklist G2) ---- */

static void
test_checkpoint_async_alloc_failure_is_enomem_and_leaks_nothing(void **state)
{
    struct env *e = *state;
    struct ct_checkpoint_options o;
    char *p = stu_path(e->dir, "af.minidb");
    unsigned char *prev, *now;
    size_t prev_len, len;
    ct_status_t st, st2;
    int rc = CT_ENOMEM, rc2 = CT_ENOMEM;
    long k;

    /* The writer, its thread, the stream and the stat shards exist. */
    opts_init(&o, CT_CHECKPOINT_SNAPSHOT_COPY);
    fill_state(e, 1);
    assert_int_equal(save_async(e, "af.minidb", 1, &o, &st), CT_OK);
    flush_ok(e);
    prev = stu_read(p, &prev_len);
    assert_non_null(prev);
    fill_state(e, 2);
    for (k = 1; rc != CT_OK || rc2 != CT_OK; k++) {
        long live = tu_alloc_live();
        tu_fail_alloc_after(k);
        rc = save_async(e, "af.minidb", 2, &o, &st);
        /* Allocations of the writer thread fail too: flush reports them. */
        rc2 = ct_engine_flush_checkpoints(e->eng, &st2);
        tu_fail_alloc_off();
        if (rc == CT_OK && rc2 == CT_OK)
            break;
        if (rc != CT_OK && rc != CT_ENOMEM)
            fail_msg("allocation %ld: call %s %s", k, ct_err_name(rc), st.msg);
        if (rc2 != CT_OK && rc2 != CT_ENOMEM)
            fail_msg("allocation %ld: flush %s %s", k, ct_err_name(rc2),
                     st2.msg);
        assert_true(rc == CT_OK || rc2 == CT_OK); /* reported once */
        assert_int_equal(tu_alloc_live(), live);
        now = stu_read(p, &len);
        assert_int_equal(len, prev_len);
        assert_memory_equal(now, prev, len);
        free(now);
        assert_int_equal(count_temp_files(e->dir), 0);
    }
    assert_true(k > 5);
    assert_file_is_state(e, "af.minidb", 2);
    free(prev);
    free(p);
}

/* ---- the Checkpoint op ---- */

static Caffe2__OperatorDef *ckpt_op(const char *pattern, int async)
{
    Caffe2__OperatorDef *op = tu_op("Checkpoint", "iter,w,b,d,s,meta", "");

    tu_arg_s(op, "db", pattern);
    tu_arg_s(op, "db_type", "minidb");
    tu_arg_i(op, "chunk_size", 100000);
    tu_arg_i(op, "async", async);
    return op;
}

static void test_checkpoint_op_async_equals_sync(void **state)
{
    struct env *e = *state;
    Caffe2__OperatorDef *sync_op = ckpt_op("sync_%d.minidb", 0);
    Caffe2__OperatorDef *async_op = ckpt_op("async_%d.minidb", 1);
    ct_status_t st;
    int64_t i;

    for (i = 1; i <= 3; i++) {
        char a[64], b[64];
        char *pa, *pb;
        fill_state(e, i);
        assert_int_equal(tu_run_op(e->ws, sync_op, &st), CT_OK);
        if (tu_run_op(e->ws, async_op, &st) != CT_OK)
            fail_msg("%s", st.msg);
        fill_state(e, 100 + i); /* compute continues */
        flush_ok(e);
        snprintf(a, sizeof(a), "sync_%lld.minidb", (long long)i);
        snprintf(b, sizeof(b), "async_%lld.minidb", (long long)i);
        pa = stu_path(e->dir, a);
        pb = stu_path(e->dir, b);
        assert_same_file(pa, pb);
        free(pa);
        free(pb);
        assert_file_is_state(e, b, i);
    }
    tu_op_free(sync_op);
    tu_op_free(async_op);
}

static void test_checkpoint_op_async_error_fails_next_run(void **state)
{
    struct env *e = *state;
    Caffe2__OperatorDef *op = ckpt_op("op_%d.minidb", 1);
    ct_status_t st;
    int rc;

    tu_arg_i(op, "keep_last", 1);
    fill_state(e, 1);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    flush_ok(e);
    fill_state(e, 2);
    ct__io_fail_nth(CT_IO_RENAME, 1, EACCES);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    fill_state(e, 3);
    rc = tu_run_op(e->ws, op, &st);
    tu_assert_status(&st, rc, CT_EIO, "iteration 2");
    assert_non_null(strstr(st.msg, "EACCES"));
    flush_ok(e);
    assert_file_is_state(e, "op_1.minidb", 1);
    fill_state(e, 3);
    assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    flush_ok(e);
    assert_int_equal(stu_count_entries(e->dir), 1);
    assert_file_is_state(e, "op_3.minidb", 3);
    tu_op_free(op);
}

static void test_checkpoint_op_sync_keep_last(void **state)
{
    struct env *e = *state;
    Caffe2__OperatorDef *op = ckpt_op("sk_%d.minidb", 0);
    ct_status_t st;
    int64_t i;

    tu_arg_i(op, "keep_last", 2);
    for (i = 1; i <= 4; i++) {
        fill_state(e, i);
        assert_int_equal(tu_run_op(e->ws, op, &st), CT_OK);
    }
    assert_int_equal(stu_count_entries(e->dir), 2);
    assert_file_is_state(e, "sk_3.minidb", 3);
    assert_file_is_state(e, "sk_4.minidb", 4);
    tu_op_free(op);
}

static void test_checkpoint_op_async_args_checked_at_creation(void **state)
{
    struct env *e = *state;
    Caffe2__OperatorDef *op;
    ct_status_t st;
    int rc;

    fill_state(e, 1);
    op = ckpt_op("a_%d", 1);
    tu_arg_i(op, "max_in_flight", 0);
    rc = tu_run_op(e->ws, op, &st);
    tu_assert_status(&st, rc, CT_EARG, "max_in_flight = 0");
    tu_op_free(op);
    op = ckpt_op("a_%d", 1);
    tu_arg_i(op, "keep_last", -1);
    rc = tu_run_op(e->ws, op, &st);
    tu_assert_status(&st, rc, CT_EARG, "keep_last = -1");
    tu_op_free(op);
    op = ckpt_op("a_%d", 1);
    tu_arg_s(op, "snapshot", "deep");
    rc = tu_run_op(e->ws, op, &st);
    tu_assert_status(&st, rc, CT_EARG, "snapshot \"deep\"");
    tu_op_free(op);
    assert_int_equal(stu_count_entries(e->dir), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_checkpoint_async_equals_sync_byte_for_byte),
        T(test_checkpoint_async_copy_snapshot_survives_writes),
        T(test_checkpoint_async_share_snapshot_copies_on_write),
        T(test_checkpoint_async_second_save_waits_at_max_in_flight),
        T(test_checkpoint_async_max_in_flight_two_queues_two),
        T(test_checkpoint_async_fault_reported_by_next_call),
        T(test_checkpoint_async_fault_reported_by_flush),
        T(test_checkpoint_async_dir_fsync_failure_is_edurability),
        T(test_checkpoint_async_errors_are_per_stream),
        T(test_checkpoint_flush_reports_first_error_and_count),
        T(test_checkpoint_async_over_budget_returns_enomem),
        T(test_checkpoint_async_bad_arguments_rejected),
        T(test_checkpoint_async_keep_last_deletes_only_own_old_files),
        T(test_checkpoint_async_keep_last_same_name_never_deleted),
        T(test_checkpoint_async_retention_unlink_failure_retried),
        T(test_checkpoint_async_engine_free_waits_for_save),
        T(test_checkpoint_async_stats_count_saves_bytes_and_time),
        T(test_checkpoint_async_flush_releases_staging_memory),
        T(test_checkpoint_async_alloc_failure_is_enomem_and_leaks_nothing),
        T(test_checkpoint_op_async_equals_sync),
        T(test_checkpoint_op_async_error_fails_next_run),
        T(test_checkpoint_op_sync_keep_last),
        T(test_checkpoint_op_async_args_checked_at_creation),
    };
#undef T
    /* Allocation hooks before any allocation (they count live blocks). */
    tu_fail_alloc_off();
    return cmocka_run_group_tests_name("storage.checkpoint_async", tests, NULL,
                                       NULL);
}
