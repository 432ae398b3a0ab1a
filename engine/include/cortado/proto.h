/* cortado: reading and writing Caffe2 protobuf messages.
 *
 * Binary messages are unpacked by protobuf-c after a guard pass that
 * bounds nesting depth (CT_PROTO_MAX_DEPTH), checks every length prefix
 * against the input, and rejects invalid wire types, so hostile input is
 * a CT_EPARSE with a message, never a crash, on any thread's stack. Text
 * format (protobuf's pbtxt) is read and written for any message through
 * the protobuf-c descriptors. Files are detected as binary or text by
 * content. All functions are thread-safe.
 */
#ifndef CORTADO_PROTO_H
#define CORTADO_PROTO_H

#include <stdbool.h>

#include "cortado/common.h"
#include "cortado/error.h"
#include "cortado/workspace.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Deepest message nesting accepted (like canonical protobuf's 100). */
#define CT_PROTO_MAX_DEPTH 100
/* Largest input accepted, in bytes (protobuf's own 2 GiB limit). */
#define CT_PROTO_MAX_BYTES ((size_t)INT32_MAX)

/* Opaque to users; the full definitions come from the generated
 * caffe2.pb-c.h, installed as cortado/caffe2.pb-c.h. */
struct ProtobufCMessageDescriptor;
struct ProtobufCMessage;

enum ct_proto_format {
    CT_PROTO_BINARY = 0,
    CT_PROTO_TEXT = 1,
    CT_PROTO_AUTO = 2 /* detect by content */
};

/* Guarded binary unpack of any message type. *out is freed with
 * ct_proto_free. Errors: CT_EPARSE (with what and where), CT_ENOMEM. */
CT_API int ct_proto_unpack(const struct ProtobufCMessageDescriptor *desc,
                           const void *buf, size_t len,
                           struct ProtobufCMessage **out, ct_status_t *st);
/* Serialises msg; *out freed with ct_free. */
CT_API int ct_proto_pack(const struct ProtobufCMessage *msg, void **out,
                         size_t *len, ct_status_t *st);
CT_API void ct_proto_free(struct ProtobufCMessage *msg);
/* Deep copy through pack + unpack. */
CT_API int ct_proto_copy(const struct ProtobufCMessage *msg,
                         struct ProtobufCMessage **out, ct_status_t *st);

/* Parses protobuf text format. Syntax and type errors give CT_EPARSE with
 * "line L, column C: <what>". */
CT_API int ct_pbtxt_parse(const struct ProtobufCMessageDescriptor *desc,
                          const char *text, size_t len,
                          struct ProtobufCMessage **out, ct_status_t *st);
/* Writes msg as text format (2-space indent, fields in field-number
 * order, as protobuf's C++ TextFormat prints). *out is NUL-terminated,
 * freed with ct_free; *len excludes the NUL. */
CT_API int ct_pbtxt_format(const struct ProtobufCMessage *msg, char **out,
                           size_t *len, ct_status_t *st);

/* Guesses whether buf holds text or binary protobuf. */
CT_API enum ct_proto_format ct_proto_detect(const void *buf, size_t len);

/* Reads a whole file into memory (freed with ct_free). CT_EIO naming the
 * path and errno text. */
CT_API int ct_file_read(const char *path, void **out, size_t *len,
                        ct_status_t *st);
/* Writes a file atomically (temp file, fsync, rename). */
CT_API int ct_file_write(const char *path, const void *buf, size_t len,
                         ct_status_t *st);

/* Reads a message file in the given format (AUTO detects). */
CT_API int ct_proto_read_file(const struct ProtobufCMessageDescriptor *desc,
                              const char *path, enum ct_proto_format fmt,
                              struct ProtobufCMessage **out, ct_status_t *st);
CT_API int ct_proto_write_file(const struct ProtobufCMessage *msg,
                               const char *path, enum ct_proto_format fmt,
                               ct_status_t *st);

/* NetDef shorthands. */
CT_API int ct_netdef_read_file(const char *path, ct_netdef_t **out,
                               ct_status_t *st);
CT_API int ct_netdef_parse(const void *buf, size_t len,
                           enum ct_proto_format fmt, ct_netdef_t **out,
                           ct_status_t *st);
CT_API void ct_netdef_free(ct_netdef_t *def);

#ifdef __cplusplus
}
#endif
#endif /* CORTADO_PROTO_H */
