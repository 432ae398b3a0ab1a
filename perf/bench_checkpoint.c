/* bench_checkpoint: what a checkpoint costs the training loop, synchronous
 * against asynchronous (storage/checkpoint.c), and how fast the writer
 * writes against a plain sequential write + fsync of the same bytes.
 *
 * The model state is 16 FLOAT tensors of state_bytes / 16 each in one
 * workspace. Per case, each repetition measures, in this order:
 *   seq_write  open(O_CREAT|O_TRUNC) + write in 8 MiB pieces + fsync +
 *              close of file_bytes (the size of a checkpoint of the state)
 *              from memory: the disk's own speed;
 *   sync       ct_db_save_items of the state (what Save and a synchronous
 *              Checkpoint do): the loop stalls for all of it;
 *   memcpy     a copy of the state into a buffer already faulted in: the
 *              floor of any copying snapshot;
 *   async      ct_engine_checkpoint_async (COPY snapshot) after a training
 *              step, as a training loop calls it: staging reused from the
 *              previous save, nothing in flight (the loop waits for the
 *              writer to go idle, without a flush, which would release the
 *              staging copy): the stall; then the writer's time for the
 *              save (cortado/checkpoint/write_ns) gives write_bytes_per_s.
 *              async_first_stall_ns is the first save's stall, which also
 *              allocates (and faults in) the staging copy.
 * Then, in a second loop,
 *   share      the same call with a SHARE snapshot (no copy), and the extra
 *              time of the next training step, which copies each tensor
 *              on write while the save still holds it (share_cow_ns).
 * Medians over --iters repetitions (default 3).
 * Cases: 256 MiB and 1 GiB; --bytes N for one case of N bytes; --smoke:
 * 4 MiB. --dir DIR (default $TMPDIR or /tmp) holds the files.
 * --json prints one object per case and line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cortado/cortado.h"
#include "cortado/stats.h"
#include "perf_util.h"

#define N_TENSORS 16

_Noreturn static void die(const char *what, const ct_status_t *st)
{
    fprintf(stderr, "bench_checkpoint: %s%s%s\n", what, st ? ": " : "",
            st ? st->msg : "");
    exit(1);
}

struct bench {
    ct_engine_t *eng;
    ct_workspace_t *ws;
    const char *names[N_TENSORS];
    char name_buf[N_TENSORS][16];
    size_t state_bytes;
    const char *dir;
};

static int64_t stat_get(struct bench *b, const char *name)
{
    ct_stat_registry_t *reg = ct_engine_stats(b->eng);
    ct_stat_t h;

    if (ct_stat_registry_find(reg, name, &h, NULL) != CT_OK)
        return 0;
    return ct_stat_get(reg, h);
}

static ct_tensor_t *tensor(struct bench *b, int k)
{
    return ct_blob_get_tensor(ct_workspace_get_blob(b->ws, b->names[k]));
}

/* One training step: every tensor is asked for as an output (what an op
 * does, the copy-on-write point) and every element updated. */
static uint64_t train_step(struct bench *b)
{
    uint64_t t0 = bench_now_ns();
    int k;

    for (k = 0; k < N_TENSORS; k++) {
        ct_tensor_t *t = tensor(b, k);
        int64_t dim = ct_tensor_numel(t), j;
        ct_status_t st;
        float *x;
        if (ct_tensor_resize(t, CT_DTYPE_F32, 1, &dim, &st) != CT_OK)
            die("resize", &st);
        x = ct_tensor_data(t);
        for (j = 0; j < dim; j++)
            x[j] = x[j] * 0.5f + 1.0f;
    }
    return bench_now_ns() - t0;
}

static void setup_state(struct bench *b, size_t bytes)
{
    struct ct_workspace_config wcfg = {NULL, NULL};
    int64_t dim = (int64_t)(bytes / N_TENSORS / sizeof(float));
    ct_status_t st;
    int k;

    if (ct_engine_new(NULL, &b->eng, &st) != CT_OK ||
        ct_workspace_new(b->eng, &wcfg, &b->ws, &st) != CT_OK)
        die("engine", &st);
    for (k = 0; k < N_TENSORS; k++) {
        ct_blob_t *blob;
        ct_tensor_t *t;
        float *x;
        int64_t j;
        snprintf(b->name_buf[k], sizeof(b->name_buf[k]), "layer%02d/w", k);
        b->names[k] = b->name_buf[k];
        if (ct_workspace_create_blob(b->ws, b->names[k], &blob, &st) != CT_OK ||
            ct_blob_get_mutable_tensor(blob, b->eng, &t, &st) != CT_OK ||
            ct_tensor_resize(t, CT_DTYPE_F32, 1, &dim, &st) != CT_OK)
            die("state", &st);
        x = ct_tensor_data(t);
        for (j = 0; j < dim; j++)
            x[j] = (float)((j * 2654435761u + (uint64_t)k) % 1000003u) * 1e-3f;
    }
    b->state_bytes = (size_t)dim * sizeof(float) * N_TENSORS;
}

static void free_state(struct bench *b)
{
    ct_workspace_free(b->ws);
    ct_engine_free(b->eng);
}

static char *path_in(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);

    if (p == NULL)
        die("out of memory", NULL);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static uint64_t sync_save(struct bench *b, const char *path)
{
    struct ct_save_item items[N_TENSORS];
    ct_status_t st;
    uint64_t t0;
    int k;

    memset(items, 0, sizeof(items));
    for (k = 0; k < N_TENSORS; k++) {
        items[k].name = b->names[k];
        items[k].tensor = tensor(b, k);
    }
    t0 = bench_now_ns();
    if (ct_db_save_items("minidb", path, NULL, 0, items, N_TENSORS, NULL,
                         &st) != CT_OK)
        die("sync save", &st);
    return bench_now_ns() - t0;
}

static uint64_t async_save(struct bench *b, const char *path, int snapshot)
{
    struct ct_checkpoint_options o;
    ct_status_t st;
    uint64_t t0;

    ct_checkpoint_options_init(&o);
    o.snapshot = snapshot;
    t0 = bench_now_ns();
    if (ct_engine_checkpoint_async(b->eng, b->ws, b->names, N_TENSORS, path, 0,
                                   &o, &st) != CT_OK)
        die("async save", &st);
    return bench_now_ns() - t0;
}

/* Waits for the writer (flush, or just until it is idle: a flush
 * releases the staging copy); returns the time it spent on saves since
 * *mark. */
static uint64_t wait_writer(struct bench *b, int64_t *mark, bool do_flush)
{
    const struct timespec ms = {0, 1000000};
    ct_status_t st;
    int64_t now;

    if (do_flush) {
        if (ct_engine_flush_checkpoints(b->eng, &st) != CT_OK)
            die("flush", &st);
    } else {
        while (stat_get(b, "cortado/checkpoint/in_flight") != 0)
            nanosleep(&ms, NULL);
    }
    now = stat_get(b, "cortado/checkpoint/write_ns");
    now -= *mark;
    *mark += now;
    return (uint64_t)now;
}

/* Writes `bytes` from buf (buf_len bytes, reused cyclically). */
static uint64_t seq_write(const char *path, const unsigned char *buf,
                          size_t buf_len, size_t bytes)
{
    const size_t piece = (size_t)8 << 20;
    uint64_t t0 = bench_now_ns();
    size_t off = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd < 0)
        die("open for the sequential write", NULL);
    while (off < bytes) {
        size_t at = off % buf_len,
               n = bytes - off < piece ? bytes - off : piece;
        ssize_t w;
        if (n > buf_len - at)
            n = buf_len - at;
        w = write(fd, buf + at, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("sequential write", NULL);
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0)
        die("fsync of the sequential write", NULL);
    return bench_now_ns() - t0;
}

static uint64_t memcpy_state(struct bench *b, unsigned char *dst)
{
    uint64_t t0 = bench_now_ns();
    size_t off = 0;
    int k;

    for (k = 0; k < N_TENSORS; k++) {
        const ct_tensor_t *t = tensor(b, k);
        memcpy(dst + off, ct_tensor_cdata(t), ct_tensor_nbytes(t));
        off += ct_tensor_nbytes(t);
    }
    bench_sink += dst[off / 2];
    return bench_now_ns() - t0;
}

static void run_case(const struct bench_opts *o, const char *dir, size_t bytes)
{
    struct bench b;
    char *p_sync = path_in(dir, "bench_ckpt_sync.minidb");
    char *p_async = path_in(dir, "bench_ckpt_async.minidb");
    char *p_share = path_in(dir, "bench_ckpt_share.minidb");
    char *p_seq = path_in(dir, "bench_ckpt_seq.bin");
    double seq[64], sync[64], cp[64], astall[64], wr[64], sstall[64], cow[64];
    double first;
    unsigned char *buf;
    uint64_t file_bytes;
    int64_t mark;
    int i, n = o->iters < 64 ? o->iters : 64;
    char label[64];

    memset(&b, 0, sizeof(b));
    setup_state(&b, bytes);
    buf = malloc(b.state_bytes);
    if (buf == NULL)
        die("out of memory for the copy buffer", NULL);
    memset(buf, 1, b.state_bytes); /* faulted in */

    /* Warm-up: the first async save allocates its staging copy; the first
     * sync save tells the file size. */
    sync_save(&b, p_sync);
    {
        FILE *f = fopen(p_sync, "rb");
        if (f == NULL || fseek(f, 0, SEEK_END) != 0)
            die("size of the checkpoint", NULL);
        file_bytes = (uint64_t)ftell(f);
        fclose(f);
    }
    train_step(&b);
    first = (double)async_save(&b, p_async, CT_CHECKPOINT_SNAPSHOT_COPY);
    mark = 0;
    wait_writer(&b, &mark, false);
    for (i = 0; i < o->warmup && i < 1; i++)
        seq_write(p_seq, buf, b.state_bytes, file_bytes);

    for (i = 0; i < n; i++) {
        seq[i] = (double)seq_write(p_seq, buf, b.state_bytes, file_bytes);
        sync[i] = (double)sync_save(&b, p_sync);
        cp[i] = (double)memcpy_state(&b, buf);
        train_step(&b);
        astall[i] =
            (double)async_save(&b, p_async, CT_CHECKPOINT_SNAPSHOT_COPY);
        wr[i] = (double)wait_writer(&b, &mark, false);
    }
    wait_writer(&b, &mark, true); /* releases the COPY staging */
    for (i = 0; i < n; i++) {
        uint64_t base_step = train_step(&b), step;
        sstall[i] =
            (double)async_save(&b, p_share, CT_CHECKPOINT_SNAPSHOT_SHARE);
        step = train_step(&b); /* copies on write: the save holds it all */
        cow[i] = step > base_step ? (double)(step - base_step) : 0.0;
        wait_writer(&b, &mark, true);
    }
    {
        double m_seq = bench_median(seq, n), m_sync = bench_median(sync, n);
        double m_cp = bench_median(cp, n), m_as = bench_median(astall, n);
        double m_wr = bench_median(wr, n), m_ss = bench_median(sstall, n);
        double m_cow = bench_median(cow, n);
        double wbps = (double)file_bytes / (m_wr * 1e-9);
        double sbps = (double)file_bytes / (m_seq * 1e-9);
        if (b.state_bytes >= (size_t)1 << 30)
            snprintf(label, sizeof(label), "state_%zuGiB", b.state_bytes >> 30);
        else
            snprintf(label, sizeof(label), "state_%zuMiB", b.state_bytes >> 20);
        if (o->json)
            printf("{\"case\":\"%s\",\"state_bytes\":%zu,\"file_bytes\":%llu,"
                   "\"iters\":%d,\"sync_stall_ns\":%.0f,\"async_stall_ns\":"
                   "%.0f,\"memcpy_ns\":%.0f,\"stall_vs_sync\":%.4f,"
                   "\"stall_vs_memcpy\":%.3f,\"write_bytes_per_s\":%.0f,"
                   "\"seq_write_bytes_per_s\":%.0f,\"write_vs_seq\":%.3f,"
                   "\"async_first_stall_ns\":%.0f,\"share_stall_ns\":%.0f,"
                   "\"share_cow_ns\":%.0f}\n",
                   label, b.state_bytes, (unsigned long long)file_bytes, n,
                   m_sync, m_as, m_cp, m_as / m_sync, m_as / m_cp, wbps, sbps,
                   wbps / sbps, first, m_ss, m_cow);
        else
            printf("%-14s sync stall %9.2f ms | async stall %8.2f ms "
                   "(%.3fx sync, %.2fx memcpy %.2f ms) | write %7.1f MB/s "
                   "vs seq %7.1f MB/s (%.2fx) | first async stall %.2f ms | "
                   "share stall %.3f ms + cow %.2f ms\n",
                   label, m_sync * 1e-6, m_as * 1e-6, m_as / m_sync,
                   m_as / m_cp, m_cp * 1e-6, wbps * 1e-6, sbps * 1e-6,
                   wbps / sbps, first * 1e-6, m_ss * 1e-6, m_cow * 1e-6);
        fflush(stdout);
    }
    unlink(p_sync);
    unlink(p_async);
    unlink(p_share);
    unlink(p_seq);
    free(p_sync);
    free(p_async);
    free(p_share);
    free(p_seq);
    free(buf);
    free_state(&b);
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    const char *dir = getenv("TMPDIR");
    size_t one = 0;
    bool iters_given = false;
    int a;

    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    /* Our flags first; the rest goes to bench_parse. */
    for (a = 1; a < argc;) {
        if (strcmp(argv[a], "--bytes") == 0 && a + 1 < argc) {
            one = (size_t)strtoull(argv[a + 1], NULL, 10);
        } else if (strcmp(argv[a], "--dir") == 0 && a + 1 < argc) {
            dir = argv[a + 1];
        } else {
            if (strcmp(argv[a], "--iters") == 0)
                iters_given = true;
            a++;
            continue;
        }
        memmove(&argv[a], &argv[a + 2],
                (size_t)(argc - a - 2 + 1) * sizeof(argv[0]));
        argc -= 2;
    }
    bench_parse(argc, argv, &o, " [--bytes N] [--dir DIR]");
    if (!iters_given && !o.smoke)
        o.iters = 3;
    bench_print_env(&o);
    if (one > 0) {
        run_case(&o, dir, one);
    } else if (o.smoke) {
        run_case(&o, dir, (size_t)4 << 20);
    } else {
        run_case(&o, dir, (size_t)256 << 20);
        run_case(&o, dir, (size_t)1 << 30);
    }
    return 0;
}
