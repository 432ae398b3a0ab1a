/* cortado internal: a string -> pointer hash map with owned keys.
 *
 * Open addressing with linear probing over a power-of-two table, a cached
 * 64-bit hash per slot and backward-shift deletion (no tombstones), so
 * lookups stay short after any mix of inserts and removals. Keys are
 * copied in (the map owns and frees them); values are opaque pointers the
 * caller owns, released through the callback given to ct__strmap_destroy.
 * Used by the workspace (blobs, forwards, nets), the op registry and the
 * stat registry.
 * Thread-safety: none inside. Lookups (get, find, next) never write, so
 * any number of readers may share a map while no thread mutates it.
 */
#ifndef CT_ENGINE_STRMAP_H
#define CT_ENGINE_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ct__strmap_slot {
    char *key; /* owned; NULL marks an empty slot */
    void *val;
    uint64_t hash;
};

struct ct__strmap {
    struct ct__strmap_slot *slots; /* cap entries, or NULL when cap is 0 */
    size_t cap;                    /* 0 or a power of two */
    size_t n;                      /* live entries; n <= cap * 3 / 4 */
};

/* Static initialiser, equivalent to ct__strmap_init. */
#define CT__STRMAP_INIT                                                        \
    {                                                                          \
        NULL, 0, 0                                                             \
    }

/* Makes an empty map; allocates nothing until the first insert. */
void ct__strmap_init(struct ct__strmap *m);
/* Frees every key and the table, calling free_cb (may be NULL) on each
 * value first. The map is left empty and reusable. */
void ct__strmap_destroy(struct ct__strmap *m, void (*free_cb)(void *val));

/* Number of entries. */
size_t ct__strmap_size(const struct ct__strmap *m);
/* The value stored under key, or NULL when key is absent (not found).
 * Maps that store NULL values use ct__strmap_find instead. */
void *ct__strmap_get(const struct ct__strmap *m, const char *key);
/* True when key is present; *val (may be NULL) receives its value. */
bool ct__strmap_find(const struct ct__strmap *m, const char *key, void **val);
/* The map's own copy of key (borrowed, valid until the entry is removed
 * or renamed), or NULL when absent. Lets callers hand out stable names. */
const char *ct__strmap_key(const struct ct__strmap *m, const char *key);

/* Grows the table so that it holds n entries without reallocating the
 * table (key copies are still allocated per insert). CT_ENOMEM leaves
 * the map unchanged. */
int ct__strmap_reserve(struct ct__strmap *m, size_t n);
/* Adds key -> val. CT_EEXIST when key is present, CT_ENOMEM (key copy or
 * table growth); the map is unchanged on failure. */
int ct__strmap_insert(struct ct__strmap *m, const char *key, void *val);
/* Stores val under key, adding the key if needed. When key was present
 * its previous value goes to *old (may be NULL) and nothing is allocated;
 * otherwise *old is set to NULL. CT_ENOMEM leaves the map unchanged. */
int ct__strmap_put(struct ct__strmap *m, const char *key, void *val,
                   void **old);
/* Removes key. Returns true and its value in *val (may be NULL) when it
 * was present. Never allocates. */
bool ct__strmap_remove(struct ct__strmap *m, const char *key, void **val);
/* Moves the value of old_key to new_key. Only the new key copy is
 * allocated (the entry count does not change, so the table never grows).
 * CT_ENOTFOUND (old_key absent), CT_EEXIST (new_key present, including
 * new_key equal to old_key), CT_ENOMEM; the map is unchanged on failure. */
int ct__strmap_rename(struct ct__strmap *m, const char *old_key,
                      const char *new_key);

/* Iteration in table order: start with *it = 0, then call until it
 * returns false. key and val may be NULL. The map must not be modified
 * during the walk. */
bool ct__strmap_next(const struct ct__strmap *m, size_t *it, const char **key,
                     void **val);

/* The hash the map uses (exposed for tests and for callers that want to
 * shard by name). */
uint64_t ct__strmap_hash(const char *key);

#endif /* CT_ENGINE_STRMAP_H */
