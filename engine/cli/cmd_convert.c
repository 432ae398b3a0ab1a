/* cortado convert: NetDef binary <-> text.
 *
 * The output format comes from --to, else from OUT's extension (.pb,
 * .pbtxt, .prototxt, .textproto, .txt), else it is the opposite of the
 * format detected in IN. OUT "-" writes to stdout. Files are replaced
 * atomically (ct_proto_write_file).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/engine.h"
#include "cortado/proto.h"
#include "engine/cli/cli_util.h"
#include "proto/caffe2.pb-c.h"

static const char synopsis[] = "cortado convert IN OUT [--to pb|pbtxt]";

static const char help[] =
    "usage: cortado convert IN OUT [--to pb|pbtxt] [--quiet]\n"
    "\n"
    "Converts a Caffe2 NetDef between binary protobuf (.pb) and protobuf\n"
    "text format (.pbtxt). IN's format is detected from its content.\n"
    "\n"
    "Options:\n"
    "  --to FORMAT   pb (binary) or pbtxt (text). Default: from OUT's\n"
    "                extension (.pb; .pbtxt .prototxt .textproto .txt),\n"
    "                else the opposite of IN's format\n"
    "  -q, --quiet   print nothing on success\n"
    "  -h, --help    show this help\n"
    "\n"
    "OUT may be '-' for stdout. An existing OUT is replaced atomically.\n"
    "Text output prints fields in field-number order with 2-space indent,\n"
    "as protobuf's TextFormat does, so pb -> pbtxt -> pb is byte-stable.\n";

enum { OPT_TO = 1, OPT_QUIET, OPT_HELP };

static const struct ct__cli_opt opts[] = {
    {"to", 0, true, OPT_TO},
    {"quiet", 'q', false, OPT_QUIET},
    {"help", 'h', false, OPT_HELP},
    {NULL, 0, false, 0},
};

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Format named by OUT's extension, or CT_PROTO_AUTO when it names none. */
static enum ct_proto_format format_of_path(const char *path)
{
    static const char *const text_ext[] = {".pbtxt", ".prototxt", ".textproto",
                                           ".txt", ".pbtext"};
    size_t i;

    for (i = 0; i < sizeof(text_ext) / sizeof(text_ext[0]); i++)
        if (has_suffix(path, text_ext[i]))
            return CT_PROTO_TEXT;
    if (has_suffix(path, ".pb") || has_suffix(path, ".bin") ||
        has_suffix(path, ".protobuf"))
        return CT_PROTO_BINARY;
    return CT_PROTO_AUTO;
}

static int write_stdout(const ct_netdef_t *def, enum ct_proto_format fmt,
                        ct_status_t *st)
{
    void *buf = NULL;
    size_t len = 0;
    int rc;

    if (fmt == CT_PROTO_TEXT) {
        char *text = NULL;
        rc = ct_pbtxt_format(&def->base, &text, &len, st);
        buf = text;
    } else {
        rc = ct_proto_pack(&def->base, &buf, &len, st);
    }
    if (rc != CT_OK)
        return rc;
    if (fwrite(buf, 1, len, stdout) != len || fflush(stdout) != 0)
        rc = ct_status_setf(st, CT_EIO, "write to stdout failed");
    ct_free(buf);
    return rc;
}

int ct__cli_cmd_convert(int argc, char **argv)
{
    struct ct__cli_parser p;
    const char *val, *in = NULL, *out = NULL, *to = NULL;
    enum ct_proto_format in_fmt, out_fmt;
    ct_netdef_t *def = NULL;
    ct_status_t st;
    bool quiet = false;
    size_t size;
    int id, rc;

    ct__cli_parser_init(&p, argc, argv, "convert", synopsis, opts);
    while ((id = ct__cli_next(&p, &val)) != CT_CLI_END) {
        switch (id) {
        case CT_CLI_BAD:
            return CT_CLI_EXIT_USAGE;
        case OPT_HELP:
            fputs(help, stdout);
            return CT_CLI_EXIT_OK;
        case OPT_QUIET:
            quiet = true;
            break;
        case OPT_TO:
            to = val;
            break;
        case CT_CLI_POSITIONAL:
            if (in == NULL)
                in = val;
            else if (out == NULL)
                out = val;
            else
                return ct__cli_usage_error(&p, "unexpected argument '%s'", val);
            break;
        default:
            break;
        }
    }
    if (in == NULL || out == NULL)
        return ct__cli_usage_error(&p, "convert needs IN and OUT");
    if (to != NULL) {
        if (strcmp(to, "pb") == 0 || strcmp(to, "binary") == 0)
            out_fmt = CT_PROTO_BINARY;
        else if (strcmp(to, "pbtxt") == 0 || strcmp(to, "text") == 0)
            out_fmt = CT_PROTO_TEXT;
        else
            return ct__cli_usage_error(&p, "--to wants pb or pbtxt, got '%s'",
                                       to);
    } else {
        out_fmt = strcmp(out, "-") == 0 ? CT_PROTO_AUTO : format_of_path(out);
    }

    rc = ct__cli_read_netdef(in, &def, &in_fmt, &size, &st);
    if (rc != CT_OK)
        return ct__cli_status_error(&st, rc, NULL);
    if (out_fmt == CT_PROTO_AUTO)
        out_fmt = in_fmt == CT_PROTO_TEXT ? CT_PROTO_BINARY : CT_PROTO_TEXT;
    if (strcmp(out, "-") == 0) {
        rc = write_stdout(def, out_fmt, &st);
        quiet = true;
    } else {
        rc = ct_proto_write_file(&def->base, out, out_fmt, &st);
    }
    if (rc != CT_OK) {
        ct_netdef_free(def);
        return ct__cli_status_error(&st, rc, out);
    }
    if (!quiet)
        printf("%s (%s) -> %s (%s): net \"%s\", %zu ops\n", in,
               ct__cli_format_name(in_fmt), out, ct__cli_format_name(out_fmt),
               def->name != NULL ? def->name : "", def->n_op);
    ct_netdef_free(def);
    return CT_CLI_EXIT_OK;
}
