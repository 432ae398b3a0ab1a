/* cortado: binary protobuf messages and message files.
 *
 * Design note
 * -----------
 * protobuf-c's unpacker trusts its input more than a loader of untrusted
 * files may: it recurses once per nested message with a large frame,
 * decodes length prefixes and tags with 32-bit shifts that overflow on
 * hostile bytes, and a length prefix near 2^32 wraps its bounds check. So
 * ct_proto_unpack first runs a guard pass over the wire bytes, driven by
 * the same descriptors, and only hands input that passed it to
 * protobuf_c_message_unpack.
 *
 * The guard walks fields with an explicit stack of CT_PROTO_MAX_DEPTH + 1
 * frames (about 3 KiB of the caller's stack, never C recursion), so
 * checking is itself stack-safe. It enters a length-delimited field only
 * when the descriptor says the field is a message, which is exactly when
 * protobuf-c recurses; unknown fields are skipped after their bounds are
 * checked. It rejects, with CT_EPARSE and the byte offset: nesting deeper
 * than CT_PROTO_MAX_DEPTH, varints that are unterminated or longer than
 * 10 bytes, tags and length prefixes longer than 5 bytes (protobuf-c reads
 * no more), field number 0, wire types 3 and 4 (groups; caffe2.proto has
 * none) and 6 and 7 (invalid), a known field sent with a wire type that
 * does not fit its type, length prefixes past the end of the enclosing
 * message, truncated fixed32/fixed64 values, packed payloads whose length
 * is not a multiple of the element size or whose last varint is cut, and
 * missing required fields. Whatever protobuf-c still refuses after that is
 * reported as "malformed <Message>".
 *
 * Stack: protobuf_c_message_unpack keeps a 16-entry ScannedMember slab and
 * a slab table on its frame, and recurses through parse_member ->
 * parse_required_member for each nested message. Measured by painting a
 * thread stack (test_proto_unpack_stack_use_per_level_is_bounded prints
 * the figures), Debian's libprotobuf-c 1.4.1 on x86-64 uses about 0.95 KiB
 * per nesting level (101 KiB at depth 100, 13 KiB at depth 8, counting
 * ~5 KiB of thread start-up), so depth 100 overflows a 64 KiB thread
 * stack near depth 65. Input whose guard depth exceeds
 * CT_PROTO_SAFE_DEPTH (8) is therefore unpacked on a thread of its own
 * with a CT_PROTO_UNPACK_STACK_BYTES (16 MiB) stack, which the caller
 * joins; shallow input, the common case, is unpacked in place. This is
 * the one place outside scheduler/ that creates a thread (STYLE §5): it
 * is short-lived, shares nothing but the job struct, and is joined before
 * return, so no locking is involved. protobuf_c_message_free_unpacked
 * (0.08 KiB per level) and the packer (0.18 KiB per level) recurse too,
 * but at depth <= 100 they stay under 23 KiB and run in place.
 *
 * Memory: every byte protobuf-c allocates goes through ct__malloc via a
 * per-call allocator that also records failure, so an allocation failure
 * is CT_ENOMEM, not "malformed".
 *
 * Files: ct_file_write replaces a file atomically: a temporary file in the
 * same directory (created with O_EXCL), a write loop that survives short
 * writes and EINTR, fsync, rename, then fsync of the directory so that the
 * rename itself is durable.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cortado/proto.h"
#include "engine/alloc.h"
#include "proto/caffe2.pb-c.h"
#include "proto/proto_impl.h"

/* ---- allocator glue ---- */

static void *alloc_cb(void *data, size_t size)
{
    struct ct__proto_alloc *a = data;
    void *p = ct__malloc(size);

    if (p == NULL)
        a->failed = true;
    return p;
}

static void free_cb(void *data, void *p)
{
    (void)data;
    ct__free(p);
}

void ct__proto_alloc_init(struct ct__proto_alloc *a)
{
    a->base.alloc = alloc_cb;
    a->base.free = free_cb;
    a->base.allocator_data = a;
    a->failed = false;
}

size_t ct__proto_elem_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* ---- the guard pass ---- */

enum varint_rc { VARINT_OK, VARINT_TRUNCATED, VARINT_OVERLONG };

/* Decodes a varint of at most 10 bytes from the `avail` bytes at p. Bits
 * past 64 are dropped, as protobuf's own readers do. */
static enum varint_rc varint_scan(const uint8_t *p, size_t avail,
                                  uint64_t *value, size_t *used)
{
    uint64_t v = 0;
    size_t i;

    for (i = 0; i < avail && i < 10; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if ((p[i] & 0x80) == 0) {
            *value = v;
            *used = i + 1;
            return VARINT_OK;
        }
    }
    return i == 10 ? VARINT_OVERLONG : VARINT_TRUNCATED;
}

static int varint_error(ct_status_t *st, enum varint_rc vr, const char *what,
                        size_t off)
{
    if (vr == VARINT_OVERLONG)
        return ct_status_setf(st, CT_EPARSE,
                              "overlong %s varint (more than 10 bytes) at "
                              "offset %zu",
                              what, off);
    return ct_status_setf(st, CT_EPARSE, "unterminated %s varint at offset %zu",
                          what, off);
}

/* The wire type a field's values use when not packed. */
static unsigned wire_type_of(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return PROTOBUF_C_WIRE_TYPE_64BIT;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return PROTOBUF_C_WIRE_TYPE_32BIT;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
    default:
        return PROTOBUF_C_WIRE_TYPE_VARINT;
    }
}

static bool is_packable(ProtobufCType type)
{
    return type != PROTOBUF_C_TYPE_STRING && type != PROTOBUF_C_TYPE_BYTES &&
           type != PROTOBUF_C_TYPE_MESSAGE;
}

/* Checks the payload of a packed repeated field the way protobuf-c will
 * read it: fixed-size elements must tile it exactly, varints must all end
 * inside it, and booleans must be single bytes 0 or 1 (protobuf-c's packed
 * bool reader takes one byte per element). */
static int check_packed(const ProtobufCMessageDescriptor *desc,
                        const ProtobufCFieldDescriptor *f, const uint8_t *p,
                        size_t n, size_t off, ct_status_t *st)
{
    unsigned wt = wire_type_of(f->type);
    size_t i = 0;

    if (wt != PROTOBUF_C_WIRE_TYPE_VARINT) {
        size_t size = wt == PROTOBUF_C_WIRE_TYPE_64BIT ? 8 : 4;
        if (n % size != 0)
            return ct_status_setf(st, CT_EPARSE,
                                  "packed field %s.%s at offset %zu: length "
                                  "%zu is not a multiple of %zu",
                                  desc->name, f->name, off, n, size);
        return CT_OK;
    }
    if (f->type == PROTOBUF_C_TYPE_BOOL) {
        for (i = 0; i < n; i++)
            if (p[i] > 1)
                return ct_status_setf(st, CT_EPARSE,
                                      "packed bool field %s.%s at offset "
                                      "%zu: byte %zu is not 0 or 1",
                                      desc->name, f->name, off, i);
        return CT_OK;
    }
    while (i < n) {
        uint64_t v;
        size_t used;
        enum varint_rc vr = varint_scan(p + i, n - i, &v, &used);
        if (vr != VARINT_OK)
            return varint_error(st, vr, "packed", off + i);
        i += used;
    }
    return CT_OK;
}

struct guard_frame {
    const ProtobufCMessageDescriptor *desc;
    size_t start;           /* offset of the message's first byte */
    size_t end;             /* offset one past its last byte */
    uint64_t required_seen; /* bit i: required field index i was seen */
};

/* Required fields must be present, as in C++ protobuf. Field indices past
 * 63 are left to protobuf-c's own check ("malformed"). */
static int check_required(const struct guard_frame *fr, ct_status_t *st)
{
    const ProtobufCMessageDescriptor *d = fr->desc;
    unsigned i;

    for (i = 0; i < d->n_fields && i < 64; i++) {
        if (d->fields[i].label == PROTOBUF_C_LABEL_REQUIRED &&
            (fr->required_seen & ((uint64_t)1 << i)) == 0)
            return ct_status_setf(st, CT_EPARSE,
                                  "missing required field %s.%s in the "
                                  "message at offset %zu",
                                  d->name, d->fields[i].name, fr->start);
    }
    return CT_OK;
}

/* Reads one field header at *pos. Fills the field number and wire type and
 * advances *pos past the tag. */
static int read_tag(const uint8_t *buf, size_t *pos, size_t end,
                    uint32_t *number, unsigned *wire, ct_status_t *st)
{
    uint64_t tag;
    size_t used;
    enum varint_rc vr = varint_scan(buf + *pos, end - *pos, &tag, &used);

    if (vr != VARINT_OK)
        return varint_error(st, vr, "tag", *pos);
    /* protobuf-c decodes at most 5 tag bytes and shifts them into 32 bits;
     * a field number fits in 29 bits, so this loses nothing valid. */
    if (used > 5 || tag > UINT32_MAX)
        return ct_status_setf(st, CT_EPARSE,
                              "invalid tag at offset %zu: field number too "
                              "large",
                              *pos);
    if ((tag >> 3) == 0)
        return ct_status_setf(st, CT_EPARSE,
                              "invalid field number 0 at offset %zu", *pos);
    *number = (uint32_t)(tag >> 3);
    *wire = (unsigned)(tag & 7);
    *pos += used;
    return CT_OK;
}

/* Walks the whole input once without recursion. On success *max_depth is
 * the deepest message nesting seen (0 for a message without known message
 * fields). */
static int guard_check(const ProtobufCMessageDescriptor *desc,
                       const uint8_t *buf, size_t len, int *max_depth,
                       ct_status_t *st)
{
    struct guard_frame stack[CT_PROTO_MAX_DEPTH + 1];
    int depth = 0;
    size_t pos = 0;
    int rc;

    stack[0].desc = desc;
    stack[0].start = 0;
    stack[0].end = len;
    stack[0].required_seen = 0;
    *max_depth = 0;
    for (;;) {
        struct guard_frame *fr = &stack[depth];
        const ProtobufCFieldDescriptor *f;
        size_t tag_off = pos, n;
        uint32_t number = 0;
        unsigned wire = 0;
        uint64_t v;

        if (pos == fr->end) {
            rc = check_required(fr, st);
            if (rc != CT_OK)
                return rc;
            if (depth == 0)
                return CT_OK;
            depth--;
            continue;
        }
        rc = read_tag(buf, &pos, fr->end, &number, &wire, st);
        if (rc != CT_OK)
            return rc;
        f = protobuf_c_message_descriptor_get_field(fr->desc, number);
        if (f != NULL && f->label == PROTOBUF_C_LABEL_REQUIRED) {
            unsigned idx = (unsigned)(f - fr->desc->fields);
            if (idx < 64)
                fr->required_seen |= (uint64_t)1 << idx;
        }
        if (wire == 3 || wire == 4)
            return ct_status_setf(st, CT_EPARSE,
                                  "group wire type %u (field %" PRIu32
                                  ") at offset %zu: groups are not "
                                  "supported (caffe2.proto uses none)",
                                  wire, number, tag_off);
        if (wire > 5)
            return ct_status_setf(st, CT_EPARSE,
                                  "invalid wire type %u (field %" PRIu32
                                  ") at offset %zu",
                                  wire, number, tag_off);
        if (f != NULL && wire != wire_type_of(f->type) &&
            !(wire == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED &&
              f->label == PROTOBUF_C_LABEL_REPEATED && is_packable(f->type)))
            return ct_status_setf(st, CT_EPARSE,
                                  "field %s.%s at offset %zu has wire type "
                                  "%u, expected %u",
                                  fr->desc->name, f->name, tag_off, wire,
                                  wire_type_of(f->type));
        switch (wire) {
        case PROTOBUF_C_WIRE_TYPE_VARINT: {
            enum varint_rc vr = varint_scan(buf + pos, fr->end - pos, &v, &n);
            if (vr != VARINT_OK)
                return varint_error(st, vr, "value", pos);
            pos += n;
            break;
        }
        case PROTOBUF_C_WIRE_TYPE_64BIT:
        case PROTOBUF_C_WIRE_TYPE_32BIT:
            n = wire == PROTOBUF_C_WIRE_TYPE_64BIT ? 8 : 4;
            if (fr->end - pos < n)
                return ct_status_setf(st, CT_EPARSE,
                                      "truncated fixed%zu value at offset "
                                      "%zu: needs %zu bytes, %zu remain",
                                      n * 8, pos, n, fr->end - pos);
            pos += n;
            break;
        default: { /* length-delimited */
            size_t len_off = pos, used;
            enum varint_rc vr =
                varint_scan(buf + pos, fr->end - pos, &v, &used);
            if (vr != VARINT_OK)
                return varint_error(st, vr, "length", pos);
            if (v > fr->end - pos - used)
                return ct_status_setf(st, CT_EPARSE,
                                      "length %" PRIu64 " at offset %zu "
                                      "exceeds the remaining %zu bytes",
                                      v, len_off, fr->end - pos - used);
            /* protobuf-c reads at most 5 length bytes. */
            if (used > 5)
                return ct_status_setf(st, CT_EPARSE,
                                      "overlong length prefix (%zu bytes) "
                                      "at offset %zu",
                                      used, len_off);
            pos += used;
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (depth == CT_PROTO_MAX_DEPTH)
                    return ct_status_setf(st, CT_EPARSE,
                                          "nesting too deep (> %d) at "
                                          "offset %zu",
                                          CT_PROTO_MAX_DEPTH, tag_off);
                depth++;
                stack[depth].desc = f->descriptor;
                stack[depth].start = pos;
                stack[depth].end = pos + (size_t)v;
                stack[depth].required_seen = 0;
                if (depth > *max_depth)
                    *max_depth = depth;
                continue;
            }
            if (f != NULL && is_packable(f->type)) {
                rc = check_packed(fr->desc, f, buf + pos, (size_t)v, tag_off,
                                  st);
                if (rc != CT_OK)
                    return rc;
            }
            pos += (size_t)v;
            break;
        }
        }
    }
}

/* ---- unpacking ---- */

struct unpack_job {
    const ProtobufCMessageDescriptor *desc;
    ProtobufCAllocator *allocator;
    const uint8_t *data;
    size_t len;
    ProtobufCMessage *msg; /* written by the unpack thread, read after join */
};

static void *unpack_main(void *arg)
{
    struct unpack_job *job = arg;

    job->msg = protobuf_c_message_unpack(job->desc, job->allocator, job->len,
                                         job->data);
    return NULL;
}

static const char *errno_text(int err, char *buf, size_t n)
{
    /* The XSI strerror_r (no _GNU_SOURCE here) is thread-safe and writes
     * into our buffer, so error paths stay allocation-free. */
    if (strerror_r(err, buf, n) != 0)
        snprintf(buf, n, "errno %d", err);
    return buf;
}

/* Runs the job on a thread with a CT_PROTO_UNPACK_STACK_BYTES stack. */
static int unpack_on_big_stack(struct unpack_job *job, ct_status_t *st)
{
    char ebuf[128];
    pthread_attr_t attr;
    pthread_t tid;
    int err;

    err = pthread_attr_init(&attr);
    if (err == 0) {
        err = pthread_attr_setstacksize(&attr, CT_PROTO_UNPACK_STACK_BYTES);
        if (err == 0)
            err = pthread_create(&tid, &attr, unpack_main, job);
        pthread_attr_destroy(&attr);
    }
    if (err != 0)
        return ct_status_setf(st, CT_ENOMEM,
                              "cannot start a thread with a %zu MiB stack to "
                              "unpack %s: %s",
                              CT_PROTO_UNPACK_STACK_BYTES >> 20,
                              job->desc->name,
                              errno_text(err, ebuf, sizeof(ebuf)));
    err = pthread_join(tid, NULL);
    CT_ASSERT(err == 0, "pthread_join: %d", err);
    return CT_OK;
}

int ct_proto_unpack(const ProtobufCMessageDescriptor *desc, const void *buf,
                    size_t len, ProtobufCMessage **out, ct_status_t *st)
{
    static const uint8_t empty[1];
    struct ct__proto_alloc a;
    struct unpack_job job;
    int depth, rc;

    CT_ASSERT(desc != NULL && out != NULL, "NULL argument");
    CT_ASSERT(desc->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
              "not a message descriptor");
    CT_ASSERT(buf != NULL || len == 0, "NULL buffer of %zu bytes", len);
    if (len > CT_PROTO_MAX_BYTES)
        return ct_status_setf(st, CT_EPARSE,
                              "input of %zu bytes exceeds the limit of %zu "
                              "bytes",
                              len, CT_PROTO_MAX_BYTES);
    rc = guard_check(desc, buf, len, &depth, st);
    if (rc != CT_OK)
        return rc;

    ct__proto_alloc_init(&a);
    job.desc = desc;
    job.allocator = &a.base;
    job.data = len == 0 ? empty : buf;
    job.len = len;
    job.msg = NULL;
    if (depth > CT_PROTO_SAFE_DEPTH) {
        rc = unpack_on_big_stack(&job, st);
        if (rc != CT_OK)
            return rc;
    } else {
        unpack_main(&job);
    }
    if (job.msg == NULL) {
        if (a.failed)
            return ct_status_setf(st, CT_ENOMEM, "out of memory unpacking %s",
                                  desc->name);
        return ct_status_setf(st, CT_EPARSE, "malformed %s", desc->name);
    }
    *out = job.msg;
    return CT_OK;
}

int ct_proto_pack(const ProtobufCMessage *msg, void **out, size_t *len,
                  ct_status_t *st)
{
    size_t n, written;
    uint8_t *buf;

    CT_ASSERT(msg != NULL && out != NULL && len != NULL, "NULL argument");
    n = protobuf_c_message_get_packed_size(msg);
    if (n > CT_PROTO_MAX_BYTES)
        return ct_status_setf(st, CT_EOVERFLOW,
                              "%s packs to %zu bytes, over the limit of %zu",
                              msg->descriptor->name, n, CT_PROTO_MAX_BYTES);
    buf = ct__malloc(n);
    if (buf == NULL)
        return ct_status_setf(st, CT_ENOMEM,
                              "out of memory packing %s (%zu bytes)",
                              msg->descriptor->name, n);
    written = protobuf_c_message_pack(msg, buf);
    CT_ASSERT(written == n, "protobuf-c packed %zu of %zu bytes", written, n);
    *out = buf;
    *len = n;
    return CT_OK;
}

void ct_proto_free(ProtobufCMessage *msg)
{
    struct ct__proto_alloc a;

    if (msg == NULL)
        return;
    ct__proto_alloc_init(&a);
    protobuf_c_message_free_unpacked(msg, &a.base);
}

int ct_proto_copy(const ProtobufCMessage *msg, ProtobufCMessage **out,
                  ct_status_t *st)
{
    void *buf;
    size_t len;
    int rc;

    CT_ASSERT(msg != NULL && out != NULL, "NULL argument");
    rc = ct_proto_pack(msg, &buf, &len, st);
    if (rc != CT_OK)
        return rc;
    rc = ct_proto_unpack(msg->descriptor, buf, len, out, st);
    ct__free(buf);
    return rc;
}

/* ---- format detection ---- */

/* Length of the UTF-8 sequence at p (1-4), or 0 when it is invalid
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_len(const uint8_t *p, size_t avail)
{
    uint32_t cp;
    size_t n, i;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2, cp = p[0] & 0x1f;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3, cp = p[0] & 0x0f;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (avail < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

enum ct_proto_format ct_proto_detect(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t i = 0;

    if (len == 0)
        return CT_PROTO_BINARY;
    CT_ASSERT(buf != NULL, "NULL buffer of %zu bytes", len);
    /* Text starts, after an optional BOM and blank space, with a field
     * name or a comment. A binary message starts with a tag byte, which
     * can look like blank space (0x0a is field 1, length-delimited) but is
     * then followed by a length byte, almost always a control character;
     * so the whole input must also be valid UTF-8 without control
     * characters. The caller falls back to binary when text parsing of an
     * auto-detected input fails. */
    if (len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
        i = 3;
    while (i < len && is_space(p[i]))
        i++;
    if (i < len &&
        !(p[i] == '#' || p[i] == '_' || (p[i] >= 'a' && p[i] <= 'z') ||
          (p[i] >= 'A' && p[i] <= 'Z')))
        return CT_PROTO_BINARY;
    while (i < len) {
        size_t n;
        if (p[i] < 0x20 && !is_space(p[i]))
            return CT_PROTO_BINARY;
        if (p[i] == 0x7f)
            return CT_PROTO_BINARY;
        n = utf8_len(p + i, len - i);
        if (n == 0)
            return CT_PROTO_BINARY;
        i += n;
    }
    return CT_PROTO_TEXT;
}

/* ---- files ---- */

static int io_error(ct_status_t *st, const char *what, const char *path,
                    int err)
{
    char ebuf[128];

    return ct_status_setf(st, CT_EIO, "cannot %s %s: %s", what, path,
                          errno_text(err, ebuf, sizeof(ebuf)));
}

int ct_file_read(const char *path, void **out, size_t *len, ct_status_t *st)
{
    struct stat sb;
    size_t n = 0, cap;
    char *buf, *nbuf;
    int fd, err;

    CT_ASSERT(path != NULL && out != NULL && len != NULL, "NULL argument");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_error(st, "open", path, errno);
    if (fstat(fd, &sb) != 0) {
        err = errno;
        close(fd);
        return io_error(st, "stat", path, err);
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return io_error(st, "read", path, EISDIR);
    }
    if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > CT_PROTO_MAX_BYTES) {
        close(fd);
        return ct_status_setf(st, CT_EIO,
                              "cannot read %s: %jd bytes exceed the limit "
                              "of %zu bytes",
                              path, (intmax_t)sb.st_size, CT_PROTO_MAX_BYTES);
    }
    /* Room for the file, one byte to see EOF without growing, and a NUL. */
    cap = S_ISREG(sb.st_mode) ? (size_t)sb.st_size + 2 : 4096;
    buf = ct__malloc(cap);
    if (buf == NULL) {
        close(fd);
        return ct_status_setf(
            st, CT_ENOMEM, "out of memory reading %s (%zu bytes)", path, cap);
    }
    for (;;) {
        ssize_t got;
        if (n + 1 == cap) {
            if (n > CT_PROTO_MAX_BYTES) {
                ct__free(buf);
                close(fd);
                return ct_status_setf(st, CT_EIO,
                                      "cannot read %s: more than %zu bytes",
                                      path, CT_PROTO_MAX_BYTES);
            }
            nbuf = ct__realloc(buf, cap * 2);
            if (nbuf == NULL) {
                ct__free(buf);
                close(fd);
                return ct_status_setf(st, CT_ENOMEM, "out of memory reading %s",
                                      path);
            }
            buf = nbuf;
            cap *= 2;
        }
        got = read(fd, buf + n, cap - 1 - n);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            err = errno;
            ct__free(buf);
            close(fd);
            return io_error(st, "read", path, err);
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    if (n > CT_PROTO_MAX_BYTES) {
        ct__free(buf);
        return ct_status_setf(st, CT_EIO, "cannot read %s: more than %zu bytes",
                              path, CT_PROTO_MAX_BYTES);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return CT_OK;
}

/* Names temporary files uniquely within the process; the pid separates
 * processes. atomic, relaxed: only uniqueness matters, not ordering. */
static atomic_uint tmp_counter;

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        /* Linux writes at most 0x7ffff000 bytes per call anyway. */
        size_t chunk = len > ((size_t)1 << 30) ? (size_t)1 << 30 : len;
        ssize_t n = write(fd, p, chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_retry(int fd)
{
    while (fsync(fd) != 0) {
        if (errno != EINTR)
            return errno;
    }
    return 0;
}

int ct_file_write(const char *path, const void *buf, size_t len,
                  ct_status_t *st)
{
    size_t plen, cut;
    char *tmp, *dir;
    const char *slash;
    int fd = -1, err, attempt, rc;

    CT_ASSERT(path != NULL && (buf != NULL || len == 0), "NULL argument");
    plen = strlen(path);
    slash = strrchr(path, '/');
    cut = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);
    /* Both names are built before anything can fail, so that the error
     * paths below never allocate. */
    tmp = ct__malloc(plen + 48);
    dir = slash == NULL ? ct__strdup(".") : ct__strndup(path, cut);
    if (tmp == NULL || dir == NULL) {
        ct__free(tmp);
        ct__free(dir);
        return ct_status_setf(st, CT_ENOMEM, "out of memory writing %s", path);
    }
    for (attempt = 0; attempt < 100; attempt++) {
        unsigned k =
            atomic_fetch_add_explicit(&tmp_counter, 1, memory_order_relaxed);
        snprintf(tmp, plen + 48, "%s.tmp.%ld.%u", path, (long)getpid(), k);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0) {
        rc = io_error(st, "create", tmp, errno);
        goto fail_create;
    }
    err = write_all(fd, buf, len);
    if (err != 0) {
        rc = io_error(st, "write", tmp, err);
        close(fd);
        goto fail_written;
    }
    err = fsync_retry(fd);
    if (err != 0) {
        rc = io_error(st, "fsync", tmp, err);
        close(fd);
        goto fail_written;
    }
    if (close(fd) != 0) {
        rc = io_error(st, "close", tmp, errno);
        goto fail_written;
    }
    if (rename(tmp, path) != 0) {
        rc = io_error(st, "rename to", path, errno);
        goto fail_written;
    }
    /* The new file is in place; only the durability of the rename is left.
     * A failure from here on is CT_EDURABILITY: readers already see the
     * new contents, but a crash could still bring back the old ones. */
    rc = CT_OK;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    err = fd < 0 ? errno : fsync_retry(fd);
    if (fd >= 0)
        close(fd);
    if (err != 0) {
        char ebuf[128];
        rc = ct_status_setf(st, CT_EDURABILITY,
                            "wrote %s, but cannot fsync its directory %s: %s",
                            path, dir, errno_text(err, ebuf, sizeof(ebuf)));
    }
    ct__free(tmp);
    ct__free(dir);
    return rc;

fail_written:
    unlink(tmp);
fail_create:
    ct__free(tmp);
    ct__free(dir);
    return rc;
}

/* ---- message files ---- */

static int parse_any(const ProtobufCMessageDescriptor *desc, const void *buf,
                     size_t len, enum ct_proto_format fmt,
                     ProtobufCMessage **out, ct_status_t *st)
{
    enum ct_proto_format use = fmt;
    int rc;

    CT_ASSERT(fmt == CT_PROTO_BINARY || fmt == CT_PROTO_TEXT ||
                  fmt == CT_PROTO_AUTO,
              "bad format %d", (int)fmt);
    if (use == CT_PROTO_AUTO)
        use = ct_proto_detect(buf, len);
    if (use == CT_PROTO_BINARY)
        return ct_proto_unpack(desc, buf, len, out, st);
    rc = ct_pbtxt_parse(desc, buf, len, out, st);
    if (rc == CT_EPARSE && fmt == CT_PROTO_AUTO) {
        /* Detection guessed text; a binary message that happens to look
         * like text still loads. The text error is the one reported when
         * both fail, since the input looked like text. */
        if (ct_proto_unpack(desc, buf, len, out, NULL) == CT_OK)
            rc = CT_OK;
    }
    return rc;
}

int ct_proto_read_file(const ProtobufCMessageDescriptor *desc, const char *path,
                       enum ct_proto_format fmt, ProtobufCMessage **out,
                       ct_status_t *st)
{
    void *buf;
    size_t len;
    int rc;

    CT_ASSERT(desc != NULL && path != NULL && out != NULL, "NULL argument");
    rc = ct_file_read(path, &buf, &len, st);
    if (rc != CT_OK)
        return rc;
    rc = parse_any(desc, buf, len, fmt, out, st);
    ct__free(buf);
    if (rc != CT_OK)
        ct_status_prefix(st, "%s: ", path);
    return rc;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int ct_proto_write_file(const ProtobufCMessage *msg, const char *path,
                        enum ct_proto_format fmt, ct_status_t *st)
{
    void *buf;
    size_t len;
    int rc;

    CT_ASSERT(msg != NULL && path != NULL, "NULL argument");
    if (fmt == CT_PROTO_AUTO)
        fmt = has_suffix(path, ".pbtxt") || has_suffix(path, ".prototxt") ||
                      has_suffix(path, ".textproto") || has_suffix(path, ".txt")
                  ? CT_PROTO_TEXT
                  : CT_PROTO_BINARY;
    if (fmt == CT_PROTO_TEXT) {
        char *text;
        rc = ct_pbtxt_format(msg, &text, &len, st);
        buf = text;
    } else {
        rc = ct_proto_pack(msg, &buf, &len, st);
    }
    if (rc != CT_OK)
        return rc;
    rc = ct_file_write(path, buf, len, st);
    ct__free(buf);
    return rc;
}

/* ---- NetDef shorthands ---- */

int ct_netdef_read_file(const char *path, ct_netdef_t **out, ct_status_t *st)
{
    ProtobufCMessage *msg;
    int rc;

    CT_ASSERT(out != NULL, "NULL argument");
    rc = ct_proto_read_file(&caffe2__net_def__descriptor, path, CT_PROTO_AUTO,
                            &msg, st);
    if (rc == CT_OK)
        *out = (ct_netdef_t *)msg;
    return rc;
}

int ct_netdef_parse(const void *buf, size_t len, enum ct_proto_format fmt,
                    ct_netdef_t **out, ct_status_t *st)
{
    ProtobufCMessage *msg;
    int rc;

    CT_ASSERT(out != NULL, "NULL argument");
    rc = parse_any(&caffe2__net_def__descriptor, buf, len, fmt, &msg, st);
    if (rc == CT_OK)
        *out = (ct_netdef_t *)msg;
    return rc;
}

void ct_netdef_free(ct_netdef_t *def)
{
    ct_proto_free(def == NULL ? NULL : &def->base);
}
