/* cortado: string -> pointer hash map (see strmap.h).
 *
 * Design: one flat array of slots {key, val, hash}, linear probing from
 * hash & (cap - 1). The load factor is kept at or below 3/4, so a probe
 * always reaches an empty slot and the expected probe length stays short.
 * The full 64-bit hash is cached in the slot: a probe compares hashes
 * first and calls strcmp only on a hash match, and growth rehashes
 * without touching the key bytes.
 *
 * Removal uses backward shifting instead of tombstones: the entries that
 * follow the hole in the same probe run are moved back when their home
 * slot allows it. The table therefore never fills up with dead slots and
 * a lookup miss stops at the first empty slot, whatever the history of
 * the map. Lookups never write to the map, which is what lets the
 * workspace promise lock-free concurrent readers.
 *
 * The hash is FNV-1a finished with the splitmix64 mixer, so the low bits
 * used for the bucket depend on every input byte. It is not keyed:
 * names come from model files, and a hostile model could force long
 * probe runs, but never incorrect results (cost is bounded by the
 * number of names the model itself declares).
 */
#include <string.h>

#include "cortado/error.h"
#include "engine/alloc.h"
#include "engine/strmap.h"

/* Smallest table, in slots, once anything is inserted. */
#define MIN_CAP 8

uint64_t ct__strmap_hash(const char *key)
{
    const unsigned char *p = (const unsigned char *)key;
    uint64_t h = 0xcbf29ce484222325ull;

    while (*p != '\0') {
        h ^= *p++;
        h *= 0x100000001b3ull;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

/* Largest entry count a table of cap slots may hold. */
static size_t max_load(size_t cap)
{
    return cap / 4 * 3;
}

/* Index of key's slot, or SIZE_MAX when absent. */
static size_t lookup(const struct ct__strmap *m, const char *key, uint64_t h)
{
    size_t mask, i;

    if (m->n == 0)
        return SIZE_MAX;
    mask = m->cap - 1;
    for (i = (size_t)h & mask;; i = (i + 1) & mask) {
        const struct ct__strmap_slot *s = &m->slots[i];
        if (s->key == NULL)
            return SIZE_MAX;
        if (s->hash == h && strcmp(s->key, key) == 0)
            return i;
    }
}

/* Puts an entry known to be absent into the first free slot of its probe
 * run. The caller guarantees room (n < max_load). Never allocates. */
static void place(struct ct__strmap_slot *slots, size_t cap, char *key,
                  void *val, uint64_t h)
{
    size_t mask = cap - 1;
    size_t i = (size_t)h & mask;

    while (slots[i].key != NULL)
        i = (i + 1) & mask;
    slots[i].key = key;
    slots[i].val = val;
    slots[i].hash = h;
}

/* Rebuilds the table with new_cap slots; CT_ENOMEM leaves it as it was. */
static int rehash(struct ct__strmap *m, size_t new_cap)
{
    struct ct__strmap_slot *slots;
    size_t i;

    slots = ct__calloc(new_cap, sizeof(*slots));
    if (slots == NULL)
        return CT_ENOMEM;
    for (i = 0; i < m->cap; i++) {
        struct ct__strmap_slot *s = &m->slots[i];
        if (s->key != NULL)
            place(slots, new_cap, s->key, s->val, s->hash);
    }
    ct__free(m->slots);
    m->slots = slots;
    m->cap = new_cap;
    return CT_OK;
}

void ct__strmap_init(struct ct__strmap *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->n = 0;
}

void ct__strmap_destroy(struct ct__strmap *m, void (*free_cb)(void *val))
{
    size_t i;

    for (i = 0; i < m->cap; i++) {
        struct ct__strmap_slot *s = &m->slots[i];
        if (s->key == NULL)
            continue;
        if (free_cb != NULL)
            free_cb(s->val);
        ct__free(s->key);
    }
    ct__free(m->slots);
    ct__strmap_init(m);
}

size_t ct__strmap_size(const struct ct__strmap *m)
{
    return m->n;
}

bool ct__strmap_find(const struct ct__strmap *m, const char *key, void **val)
{
    size_t i = lookup(m, key, ct__strmap_hash(key));

    if (i == SIZE_MAX)
        return false;
    if (val != NULL)
        *val = m->slots[i].val;
    return true;
}

void *ct__strmap_get(const struct ct__strmap *m, const char *key)
{
    void *val = NULL;

    ct__strmap_find(m, key, &val);
    return val;
}

const char *ct__strmap_key(const struct ct__strmap *m, const char *key)
{
    size_t i = lookup(m, key, ct__strmap_hash(key));

    return i == SIZE_MAX ? NULL : m->slots[i].key;
}

int ct__strmap_reserve(struct ct__strmap *m, size_t n)
{
    size_t cap = m->cap ? m->cap : MIN_CAP;

    while (max_load(cap) < n) {
        if (cap > SIZE_MAX / 2 / sizeof(struct ct__strmap_slot))
            return CT_ENOMEM;
        cap *= 2;
    }
    if (cap == m->cap)
        return CT_OK;
    return rehash(m, cap);
}

/* Inserts a key known to be absent: copies it, grows if needed. */
static int insert_new(struct ct__strmap *m, const char *key, void *val,
                      uint64_t h)
{
    char *copy;
    int rc;

    /* Grow before copying the key so a failed growth has nothing to undo;
     * a grown but otherwise unchanged table is not an observable change. */
    rc = ct__strmap_reserve(m, m->n + 1);
    if (rc != CT_OK)
        return rc;
    copy = ct__strdup(key);
    if (copy == NULL)
        return CT_ENOMEM;
    place(m->slots, m->cap, copy, val, h);
    m->n++;
    return CT_OK;
}

int ct__strmap_insert(struct ct__strmap *m, const char *key, void *val)
{
    uint64_t h = ct__strmap_hash(key);

    if (lookup(m, key, h) != SIZE_MAX)
        return CT_EEXIST;
    return insert_new(m, key, val, h);
}

int ct__strmap_put(struct ct__strmap *m, const char *key, void *val, void **old)
{
    uint64_t h = ct__strmap_hash(key);
    size_t i = lookup(m, key, h);

    if (old != NULL)
        *old = NULL;
    if (i == SIZE_MAX)
        return insert_new(m, key, val, h);
    if (old != NULL)
        *old = m->slots[i].val;
    m->slots[i].val = val;
    return CT_OK;
}

/* Empties slot i and closes the hole by shifting later entries of the
 * same probe run back. An entry at j whose home slot lies cyclically in
 * (i, j] must stay where it is: moving it before its home would make it
 * unreachable. Every other entry may move into the hole. */
static void erase_at(struct ct__strmap *m, size_t i)
{
    size_t mask = m->cap - 1;
    size_t j = i;

    for (;;) {
        size_t home;
        bool stays;

        j = (j + 1) & mask;
        if (m->slots[j].key == NULL)
            break;
        home = (size_t)m->slots[j].hash & mask;
        if (i <= j)
            stays = i < home && home <= j;
        else
            stays = i < home || home <= j;
        if (stays)
            continue;
        m->slots[i] = m->slots[j];
        i = j;
    }
    m->slots[i].key = NULL;
    m->slots[i].val = NULL;
    m->slots[i].hash = 0;
    m->n--;
}

bool ct__strmap_remove(struct ct__strmap *m, const char *key, void **val)
{
    size_t i = lookup(m, key, ct__strmap_hash(key));
    char *k;

    if (i == SIZE_MAX)
        return false;
    if (val != NULL)
        *val = m->slots[i].val;
    k = m->slots[i].key;
    erase_at(m, i);
    ct__free(k);
    return true;
}

int ct__strmap_rename(struct ct__strmap *m, const char *old_key,
                      const char *new_key)
{
    uint64_t h_new = ct__strmap_hash(new_key);
    size_t i = lookup(m, old_key, ct__strmap_hash(old_key));
    char *copy, *k;
    void *val;

    if (i == SIZE_MAX)
        return CT_ENOTFOUND;
    if (lookup(m, new_key, h_new) != SIZE_MAX)
        return CT_EEXIST;
    copy = ct__strdup(new_key);
    if (copy == NULL)
        return CT_ENOMEM;
    /* Erase then place: the count drops by one before it rises by one,
     * so the load bound holds and place() needs no growth. */
    val = m->slots[i].val;
    k = m->slots[i].key;
    erase_at(m, i);
    ct__free(k);
    place(m->slots, m->cap, copy, val, h_new);
    m->n++;
    return CT_OK;
}

bool ct__strmap_next(const struct ct__strmap *m, size_t *it, const char **key,
                     void **val)
{
    size_t i;

    for (i = *it; i < m->cap; i++) {
        if (m->slots[i].key == NULL)
            continue;
        if (key != NULL)
            *key = m->slots[i].key;
        if (val != NULL)
            *val = m->slots[i].val;
        *it = i + 1;
        return true;
    }
    *it = m->cap;
    return false;
}
