/* cortado: the header and manifest records of the minidb files we write.
 *
 * Design note. minidb has no header, footer or checksum, and Caffe2 must
 * keep reading our files, so integrity data travels in two extra records
 * that are ordinary BlobProtos of type "std::string" (Caffe2's Load skips
 * keys it was not asked for, and load_all makes std::string blobs of
 * them):
 *
 *   first  "!!CT_HEADER"   content "cortado minidb v1"
 *   last   "!!CT_MANIFEST" content, little-endian:
 *            "CTMF" | u32 version (1) | u64 n
 *            n x { u64 offset | u64 value_len | u32 key_len |
 *                  u32 crc32c(value) | key bytes }
 *            u32 crc32c(every byte above)
 *
 * The header says "a manifest must follow", so a file cut at a record
 * boundary (which frames perfectly) is still caught; the manifest lists
 * every data record between them, so a flipped bit anywhere is caught:
 * in a length (framing or entry mismatch), a key (entry mismatch), a
 * value (CRC), the manifest itself (its CRC, and its BlobProto bytes must
 * be exactly what the writer produces). A file with neither record is a
 * foreign (Caffe2) file and is read without checks.
 */
#include <string.h>

#include "cortado/proto.h"
#include "engine/alloc.h"
#include "storage/storage_impl.h"

#define MANIFEST_MAGIC "CTMF"
#define MANIFEST_VERSION 1u
#define HEADER_TEXT "cortado minidb v"
#define ENTRY_FIXED 24u /* bytes of an entry before its key */

/* BlobProto{name "!!CT_HEADER", type "std::string",
 *           content "cortado minidb v1"}, hand-encoded. */
static const unsigned char header_value[] = "\x0a\x0b"
                                            "!!CT_HEADER"
                                            "\x12\x0b"
                                            "std::string"
                                            "\x22\x11"
                                            "cortado minidb v1";

const unsigned char *ct__minidb_header_value(size_t *len)
{
    *len = sizeof(header_value) - 1;
    return header_value;
}

static int unpack_blob(const void *val, size_t len, Caffe2__BlobProto **out)
{
    ProtobufCMessage *m;
    int rc =
        ct_proto_unpack(&caffe2__blob_proto__descriptor, val, len, &m, NULL);
    *out = rc == CT_OK ? (Caffe2__BlobProto *)m : NULL;
    return rc;
}

static bool is_std_string(const Caffe2__BlobProto *b, const char *name)
{
    return b->name != NULL && strcmp(b->name, name) == 0 && b->type != NULL &&
           strcmp(b->type, "std::string") == 0 && b->has_content;
}

int ct__minidb_header_version(const void *val, size_t len)
{
    Caffe2__BlobProto *b;
    size_t hl = strlen(HEADER_TEXT);
    int v = 0;

    if (len > 4096 || unpack_blob(val, len, &b) != CT_OK)
        return 0;
    if (is_std_string(b, CT_MINIDB_HEADER_KEY) && b->content.len > hl &&
        b->content.len < hl + 9 &&
        memcmp(b->content.data, HEADER_TEXT, hl) == 0) {
        size_t i;
        for (i = hl; i < b->content.len; i++) {
            unsigned char c = b->content.data[i];
            if (c < '0' || c > '9') {
                v = 0;
                break;
            }
            v = v * 10 + (c - '0');
        }
    }
    ct_proto_free(&b->base);
    return v;
}

bool ct__minidb_value_is_ours(const void *val, size_t len)
{
    Caffe2__BlobProto *b;
    bool ours;

    if (len > ((size_t)64 << 20) || unpack_blob(val, len, &b) != CT_OK)
        return false;
    ours = b->name != NULL && (strcmp(b->name, CT_MINIDB_HEADER_KEY) == 0 ||
                               strcmp(b->name, CT_MINIDB_MANIFEST_KEY) == 0);
    ct_proto_free(&b->base);
    return ours;
}

int ct__manifest_add(struct ct__buf *entries, uint64_t offset, const void *key,
                     uint32_t klen, uint64_t vlen, uint32_t crc)
{
    int rc = ct__buf_reserve(entries, ENTRY_FIXED + (size_t)klen);

    if (rc != CT_OK)
        return rc;
    ct__buf_put_u64le(entries, offset);
    ct__buf_put_u64le(entries, vlen);
    ct__buf_put_u32le(entries, klen);
    ct__buf_put_u32le(entries, crc);
    ct__buf_put(entries, key, klen);
    return CT_OK;
}

int ct__manifest_value(const struct ct__buf *entries, uint64_t n,
                       struct ct__buf *out, ct_status_t *st)
{
    struct ct__buf content;
    int rc;

    ct__buf_init(&content);
    rc = ct__buf_reserve(&content, 16 + entries->len + 4);
    if (rc != CT_OK) {
        ct__buf_destroy(&content);
        return ct_status_setf(st, CT_ENOMEM,
                              "out of memory writing the manifest");
    }
    ct__buf_put(&content, MANIFEST_MAGIC, 4);
    ct__buf_put_u32le(&content, MANIFEST_VERSION);
    ct__buf_put_u64le(&content, n);
    ct__buf_put(&content, entries->p, entries->len);
    ct__buf_put_u32le(&content, ct_crc32c(0, content.p, content.len));
    rc = ct__serialize_string_value(CT_MINIDB_MANIFEST_KEY, content.p,
                                    content.len, out, st);
    ct__buf_destroy(&content);
    return rc;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

void ct__manifest_destroy(struct ct__manifest *m)
{
    ct__free(m->e);
    if (m->proto != NULL)
        ct_proto_free(&m->proto->base);
    memset(m, 0, sizeof(*m));
}

static int bad(ct_status_t *st, const char *where, const char *what)
{
    return ct_status_setf(st, CT_ECORRUPT, "%s: damaged manifest (%s)", where,
                          what);
}

int ct__manifest_parse(const void *val, size_t len, const char *where,
                       struct ct__manifest *m, ct_status_t *st)
{
    struct ct__buf canon;
    const unsigned char *c;
    size_t clen, pos, i;
    uint64_t n;
    uint32_t version;
    int rc;

    memset(m, 0, sizeof(*m));
    rc = unpack_blob(val, len, &m->proto);
    if (rc == CT_ENOMEM)
        return ct_status_setf(st, CT_ENOMEM, "%s: out of memory", where);
    if (rc != CT_OK)
        return bad(st, where, "not a BlobProto");
    if (!is_std_string(m->proto, CT_MINIDB_MANIFEST_KEY)) {
        ct__manifest_destroy(m);
        return bad(st, where,
                   "not a std::string BlobProto named " CT_MINIDB_MANIFEST_KEY);
    }
    c = m->proto->content.data;
    clen = m->proto->content.len;
    /* The record must be byte for byte what the writer makes of this
     * content, so no bit of the wrapper can change unnoticed. */
    ct__buf_init(&canon);
    rc =
        ct__serialize_string_value(CT_MINIDB_MANIFEST_KEY, c, clen, &canon, st);
    if (rc != CT_OK) {
        ct__buf_destroy(&canon);
        ct__manifest_destroy(m);
        return rc;
    }
    rc = canon.len == len && memcmp(canon.p, val, len) == 0;
    ct__buf_destroy(&canon);
    if (!rc) {
        ct__manifest_destroy(m);
        return bad(st, where, "non-canonical BlobProto encoding");
    }
    if (clen < 20 || memcmp(c, MANIFEST_MAGIC, 4) != 0) {
        ct__manifest_destroy(m);
        return bad(st, where, "bad magic");
    }
    version = get_u32(c + 4);
    if (get_u32(c + clen - 4) != ct_crc32c(0, c, clen - 4)) {
        ct__manifest_destroy(m);
        return bad(st, where, "its own CRC32C does not match");
    }
    if (version != MANIFEST_VERSION) {
        ct__manifest_destroy(m);
        if (version > MANIFEST_VERSION)
            return ct_status_setf(st, CT_ENOTSUP,
                                  "%s: manifest version %u is newer than the "
                                  "version %u this build reads",
                                  where, version, MANIFEST_VERSION);
        return bad(st, where, "version 0");
    }
    n = get_u64(c + 8);
    /* Every entry takes at least ENTRY_FIXED + 1 bytes: bound n by the
     * bytes present before allocating anything for it. */
    if (n > (clen - 20) / (ENTRY_FIXED + 1)) {
        ct__manifest_destroy(m);
        return bad(st, where, "entry count larger than its bytes allow");
    }
    m->e = ct__calloc(n > 0 ? (size_t)n : 1, sizeof(*m->e));
    if (m->e == NULL) {
        ct__manifest_destroy(m);
        return ct_status_setf(st, CT_ENOMEM, "%s: out of memory", where);
    }
    pos = 16;
    for (i = 0; i < n; i++) {
        struct ct__manifest_entry *e = &m->e[i];
        if (clen - 4 - pos < ENTRY_FIXED)
            break;
        e->offset = get_u64(c + pos);
        e->vlen = get_u64(c + pos + 8);
        e->klen = get_u32(c + pos + 16);
        e->crc = get_u32(c + pos + 20);
        pos += ENTRY_FIXED;
        if (e->klen == 0 || e->klen > clen - 4 - pos)
            break;
        e->key = (const char *)c + pos;
        pos += e->klen;
    }
    if (i < n || pos != clen - 4) {
        ct__manifest_destroy(m);
        return bad(st, where, "entries do not fill it exactly");
    }
    m->n = (size_t)n;
    return CT_OK;
}
