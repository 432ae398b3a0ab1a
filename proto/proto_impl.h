/* cortado internal: glue shared by proto/proto.c and proto/pbtxt.c.
 *
 * protobuf-c allocates through a ProtobufCAllocator. The library routes it
 * to ct__malloc/ct__free so that ct_set_allocator() hooks see every byte a
 * message owns, and so that messages built by the text reader (which
 * allocates with ct__malloc/ct__realloc directly) can be released by
 * protobuf_c_message_free_unpacked() like any unpacked message.
 */
#ifndef CT_PROTO_PROTO_IMPL_H
#define CT_PROTO_PROTO_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

/* Messages nested deeper than this are unpacked on a thread of their own
 * with a CT_PROTO_UNPACK_STACK_BYTES stack (see the note in proto.c). */
#define CT_PROTO_SAFE_DEPTH 8
#define CT_PROTO_UNPACK_STACK_BYTES ((size_t)16 << 20)

/* A per-call allocator. protobuf-c reports every failure as a NULL
 * message, so the allocator remembers whether it ran out of memory and the
 * caller can tell CT_ENOMEM from CT_EPARSE. `base` must stay the first
 * member: protobuf-c gets &a->base and the callbacks get `a` back through
 * allocator_data. */
struct ct__proto_alloc {
    ProtobufCAllocator base;
    bool failed; /* written by whichever thread unpacks; read after join */
};

/* Fills a with callbacks that call ct__malloc and ct__free. */
void ct__proto_alloc_init(struct ct__proto_alloc *a);

/* Size of one element of a repeated field of the given type, as protobuf-c
 * lays the array out (e.g. sizeof(char *) for strings). */
size_t ct__proto_elem_size(ProtobufCType type);

#endif /* CT_PROTO_PROTO_IMPL_H */
