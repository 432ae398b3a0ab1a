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
    CT_PROTO_AUTO = 2 /* detect by content (reading) or extension (writing) */
};

/* Guarded binary unpack of any message type. buf is borrowed (NULL allowed
 * when len is 0). On success *out is owned by the caller, who frees it with
 * ct_proto_free; on failure *out is unchanged. Errors: CT_EPARSE naming
 * what is wrong and its byte offset ("nesting too deep (> 100) at offset
 * 812", "length N at offset O exceeds the remaining M bytes", "missing
 * required field caffe2.TensorProto.Segment.end ...", "malformed
 * caffe2.NetDef"), including input over CT_PROTO_MAX_BYTES; CT_ENOMEM.
 * Safe on any thread's stack: deep input is unpacked on a short-lived
 * thread with a 16 MiB stack. Thread-safe. */
CT_API int ct_proto_unpack(const struct ProtobufCMessageDescriptor *desc,
                           const void *buf, size_t len,
                           struct ProtobufCMessage **out, ct_status_t *st);
/* Serialises msg (borrowed) in field-number order, as C++ protobuf does.
 * *out (caller frees with ct_free) holds *len bytes. Errors: CT_ENOMEM,
 * CT_EOVERFLOW (over CT_PROTO_MAX_BYTES); *out unchanged on failure. */
CT_API int ct_proto_pack(const struct ProtobufCMessage *msg, void **out,
                         size_t *len, ct_status_t *st);
/* Frees a message from ct_proto_unpack, ct_proto_copy or ct_pbtxt_parse
 * (or any message in protobuf-c's unpacked layout allocated through the
 * library allocator). NULL allowed. */
CT_API void ct_proto_free(struct ProtobufCMessage *msg);
/* Deep copy through pack + unpack; *out freed with ct_proto_free. Errors
 * as ct_proto_pack and ct_proto_unpack. */
CT_API int ct_proto_copy(const struct ProtobufCMessage *msg,
                         struct ProtobufCMessage **out, ct_status_t *st);

/* Parses protobuf text format (C++ TextFormat syntax) as message type
 * desc. text is borrowed and need not be NUL-terminated. On success *out
 * is freed with ct_proto_free; on failure it is unchanged. Errors:
 * CT_EPARSE with "line L, column C: <what>" (unknown field names the field
 * and the message type; duplicate non-repeated fields, missing required
 * fields, out-of-range integers, nesting deeper than CT_PROTO_MAX_DEPTH);
 * CT_ENOMEM. Never recurses. Thread-safe. */
CT_API int ct_pbtxt_parse(const struct ProtobufCMessageDescriptor *desc,
                          const char *text, size_t len,
                          struct ProtobufCMessage **out, ct_status_t *st);
/* Writes msg as text format exactly as protobuf's C++ TextFormat::Print
 * does (2-space indent, fields in field-number order, shortest-round-trip
 * floats in SimpleFtoa style, CEscape'd strings). *out is NUL-terminated,
 * freed with ct_free; *len excludes the NUL. Errors: CT_ENOMEM, CT_EINVAL
 * (messages nested deeper than CT_PROTO_MAX_DEPTH); *out unchanged on
 * failure. Thread-safe. */
CT_API int ct_pbtxt_format(const struct ProtobufCMessage *msg, char **out,
                           size_t *len, ct_status_t *st);

/* Guesses whether buf holds text or binary protobuf: text starts (after an
 * optional UTF-8 BOM and blank space) with an identifier or a '#' comment
 * and is valid UTF-8 without control characters other than blank space.
 * Empty input counts as binary. Never fails. */
CT_API enum ct_proto_format ct_proto_detect(const void *buf, size_t len);

/* Reads a whole file into memory. *out (caller frees with ct_free) holds
 * *len bytes followed by a NUL, so text can be scanned as a C string.
 * Errors: CT_EIO naming the path and the errno text ("cannot open x.pb: No
 * such file or directory"), also for files larger than
 * CT_PROTO_MAX_BYTES; CT_ENOMEM. *out unchanged on failure. */
CT_API int ct_file_read(const char *path, void **out, size_t *len,
                        ct_status_t *st);
/* Replaces path atomically: readers see the old or the new contents,
 * never a mix. Writes a temporary file next to it (created with O_EXCL),
 * fsyncs it, renames it over path and fsyncs the directory. Errors:
 * CT_EIO (the old file, if any, is untouched and the temporary is
 * removed); CT_EDURABILITY when only the directory fsync failed (the new
 * contents are in place but may not survive a crash); CT_ENOMEM. */
CT_API int ct_file_write(const char *path, const void *buf, size_t len,
                         ct_status_t *st);

/* Reads a message file in the given format. AUTO detects by content, and
 * when text parsing of an input that looked like text fails, tries binary
 * before reporting the text error. Errors as ct_file_read plus those of
 * the parser, with the path prefixed to the message. */
CT_API int ct_proto_read_file(const struct ProtobufCMessageDescriptor *desc,
                              const char *path, enum ct_proto_format fmt,
                              struct ProtobufCMessage **out, ct_status_t *st);
/* Writes msg with ct_file_write. AUTO picks text for the extensions
 * .pbtxt, .prototxt, .textproto and .txt, binary otherwise. */
CT_API int ct_proto_write_file(const struct ProtobufCMessage *msg,
                               const char *path, enum ct_proto_format fmt,
                               ct_status_t *st);

/* NetDef shorthands for the calls above with caffe2.NetDef; the NetDef is
 * freed with ct_netdef_free (NULL allowed). ct_netdef_read_file detects
 * the format by content. */
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
