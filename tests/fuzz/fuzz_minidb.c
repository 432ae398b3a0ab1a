/* libFuzzer target: the minidb reader and the blob deserializer
 * (reliability checklist B10). Each input is written to a file and read
 * the three ways cortado reads minidb files: a cursor over every record
 * (framing, header, manifest, CRC32C), the Load op with load_all (the
 * BlobProto / TensorProto decoder and Caffe2's chunk states), and
 * ct_db_describe (the `cortado inspect` listing). The input is also fed
 * straight to the deserializer as one record value. Any crash, sanitizer
 * report, leak or allocation over -rss_limit_mb is a finding; errors are
 * the expected outcome for most inputs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "cortado/storage.h"
#include "cortado/workspace.h"
#include "proto/caffe2.pb-c.h"
#include "storage/storage_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ct_engine_t *eng;
static char path[4096];
static FILE *devnull;

static void init(void)
{
    struct ct_engine_config cfg;
    const char *base = getenv("TMPDIR");
    char dir[4000];

    ct_engine_config_init(&cfg);
    cfg.mem_budget_bytes = (uint64_t)1 << 30;
    if (ct_engine_new(&cfg, &eng, NULL) != CT_OK)
        abort();
    snprintf(dir, sizeof(dir), "%s/ct_fuzz_minidb_XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(path, sizeof(path), "%s/in.minidb", dir);
    devnull = fopen("/dev/null", "w");
    if (devnull == NULL)
        abort();
}

/* Overwrites in place rather than truncating first: on file systems that
 * discard freed blocks a truncating open costs milliseconds. */
static void write_input(const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0644);

    if (fd < 0 || (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size) ||
        ftruncate(fd, (off_t)size) != 0)
        abort();
    close(fd);
}

static void read_all(void)
{
    ct_db_t *db;
    ct_db_cursor_t *c = NULL;
    int rc = ct_db_open("minidb", path, CT_DB_READ, &db, NULL);

    if (rc != CT_OK)
        return;
    rc = ct_db_cursor_new(db, &c, NULL);
    while (rc == CT_OK && ct_db_cursor_valid(c)) {
        const void *v;
        size_t len;
        ct_db_cursor_value(c, &v, &len, NULL);
        rc = ct_db_cursor_next(c, NULL);
    }
    ct_db_cursor_free(c);
    ct_db_free(db);
}

static void load_all(void)
{
    static const char *const names[4] = {"db", "db_type", "absolute_path",
                                         "load_all"};
    Caffe2__OperatorDef op = CAFFE2__OPERATOR_DEF__INIT;
    Caffe2__Argument args[4], *pa[4];
    ct_workspace_t *ws;
    int i;

    for (i = 0; i < 4; i++) {
        caffe2__argument__init(&args[i]);
        args[i].name = (char *)names[i];
        pa[i] = &args[i];
    }
    args[0].has_s = 1;
    args[0].s.data = (uint8_t *)path;
    args[0].s.len = strlen(path);
    args[1].has_s = 1;
    args[1].s.data = (uint8_t *)"minidb";
    args[1].s.len = 6;
    args[2].has_i = args[3].has_i = 1;
    args[2].i = args[3].i = 1;
    op.type = (char *)"Load";
    op.n_arg = 4;
    op.arg = pa;
    if (ct_workspace_new(eng, NULL, &ws, NULL) != CT_OK)
        abort();
    ct_workspace_run_operator_once(ws, &op, NULL);
    ct_workspace_free(ws);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ct__blob_state s;

    if (eng == NULL)
        init();
    write_input(data, size);
    read_all();
    load_all();
    ct_db_describe("minidb", path, devnull, NULL);
    memset(&s, 0, sizeof(s));
    ct__blob_state_merge(&s, eng, "k#%0", data, size, size, NULL);
    ct__blob_state_destroy(&s);
    return 0;
}
