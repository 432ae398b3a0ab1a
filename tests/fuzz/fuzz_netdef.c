/* libFuzzer target: the NetDef loader (reliability checklist C1-C11).
 * Each input is parsed as a NetDef (binary or text, detected by content,
 * through the guarded reader) and, when it parses, compiled with
 * ct_net_new in a scratch workspace whose root folder is a private
 * directory and where every external input already exists as an empty
 * blob: op lookup, schema and argument checks, every op's init (Save /
 * Load / Checkpoint path and pattern rules included), graph building and
 * validation. Nothing is run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cortado/net.h"
#include "cortado/proto.h"
#include "cortado/workspace.h"
#include "proto/caffe2.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ct_engine_t *eng;
static char root[4096];

static void init(void)
{
    struct ct_engine_config cfg;
    const char *base = getenv("TMPDIR");

    ct_engine_config_init(&cfg);
    cfg.mem_budget_bytes = (uint64_t)1 << 30;
    cfg.n_threads = 1;
    if (ct_engine_new(&cfg, &eng, NULL) != CT_OK)
        abort();
    snprintf(root, sizeof(root), "%s/ct_fuzz_netdef_XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    if (mkdtemp(root) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ct_workspace_config wcfg = {NULL, NULL};
    ct_workspace_t *ws;
    ct_netdef_t *def;
    ct_net_t *net;
    size_t i;

    if (eng == NULL)
        init();
    if (ct_netdef_parse(data, size, CT_PROTO_AUTO, &def, NULL) != CT_OK)
        return 0;
    wcfg.root_folder = root;
    if (ct_workspace_new(eng, &wcfg, &ws, NULL) != CT_OK)
        abort();
    for (i = 0; i < def->n_external_input; i++) {
        ct_blob_t *b;
        if (def->external_input[i] != NULL)
            ct_workspace_create_blob(ws, def->external_input[i], &b, NULL);
    }
    if (ct_net_new(ws, def, NULL, &net, NULL) == CT_OK)
        ct_net_free(net);
    ct_workspace_free(ws);
    ct_netdef_free(def);
    return 0;
}
