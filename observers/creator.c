/* cortado: engine-wide observer state: creators, file claims, net ids.
 *
 * Design note. Creators (Caffe2's global net observer creators, but owned
 * by the engine instead of the process) form an append-only singly linked
 * list: registration appends under the engine's observer mutex and
 * publishes the node with a release store, ct_net_new walks the list with
 * acquire loads and no lock, so creator callbacks never run under a lock
 * and several threads may create nets at once. Clearing marks nodes
 * removed; nodes and their ctx live until the engine is freed, so a walk
 * in progress never touches freed memory.
 * File claims: every built-in observer with a file claims its resolved
 * path on the engine when attached and releases it when freed, so two live
 * observers never write the same file (Caffe2's nets all wrote one
 * min/max file and a shared global_<timestamp>.minmax, spec §9.10).
 * Claims compare path strings; "./a" and "a" are different claims.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cortado/observer.h"
#include "engine/alloc.h"
#include "engine/engine_impl.h"
#include "engine/net_impl.h"
#include "observers/observer_impl.h"
#include "scheduler/sync.h"

struct ct__obs_creator {
    ct_observer_create_cb create_cb;
    void *ctx;
    void (*ctx_free_cb)(void *ctx);
    int idx; /* registration order, for messages */
    /* atomic, relaxed: a clear that happens-before ct_net_new is seen by
     * coherence; a racing clear may or may not be, as documented. */
    atomic_bool removed;
    _Atomic(struct ct__obs_creator *) next; /* release on append */
};

struct ct__obs_claim {
    char *path;
    const ct_observer_t *owner;
    char *net_name; /* owner's net, for the collision message */
    struct ct__obs_claim *next;
};

struct ct__obs_engine {
    struct ct__mutex mu; /* guards tail, n_creators, claims */
    _Atomic(struct ct__obs_creator *) head; /* acquire when walking */
    struct ct__obs_creator *tail;           /* guarded by mu */
    int n_creators;                         /* guarded by mu */
    struct ct__obs_claim *claims;           /* guarded by mu */
    /* atomic, relaxed: ids need only be unique. */
    _Atomic uint64_t last_net_id;
};

int ct__obs_engine_new(struct ct__obs_engine **out)
{
    struct ct__obs_engine *oe = ct__calloc(1, sizeof(*oe));

    *out = NULL;
    if (oe == NULL)
        return CT_ENOMEM;
    if (ct__mutex_init(&oe->mu, "observers", CT_LOCK_RANK_ENGINE) != CT_OK) {
        ct__free(oe);
        return CT_ENOMEM;
    }
    atomic_init(&oe->head, NULL);
    atomic_init(&oe->last_net_id, 0);
    *out = oe;
    return CT_OK;
}

void ct__obs_engine_free(struct ct__obs_engine *oe)
{
    struct ct__obs_creator *c, *next;

    if (oe == NULL)
        return;
    /* Every net is gone (ct_engine_free asserts no workspace lives), so
     * every observer released its claim. */
    CT_ASSERT(oe->claims == NULL, "engine freed while observer %s lives",
              oe->claims->owner->name);
    for (c = atomic_load_explicit(&oe->head, memory_order_relaxed); c != NULL;
         c = next) {
        next = atomic_load_explicit(&c->next, memory_order_relaxed);
        if (c->ctx_free_cb != NULL)
            c->ctx_free_cb(c->ctx);
        ct__free(c);
    }
    ct__mutex_destroy(&oe->mu);
    ct__free(oe);
}

/* ---- creators ---- */

int ct_engine_add_observer_creator(ct_engine_t *eng,
                                   ct_observer_create_cb create_cb, void *ctx,
                                   void (*ctx_free_cb)(void *ctx),
                                   ct_status_t *st)
{
    struct ct__obs_engine *oe;
    struct ct__obs_creator *c;

    CT_ASSERT(eng != NULL && create_cb != NULL,
              "ct_engine_add_observer_creator: NULL argument");
    oe = eng->obs;
    c = ct__calloc(1, sizeof(*c));
    if (c == NULL)
        return ct_status_setf(st, CT_ENOMEM,
                              "out of memory registering an observer "
                              "creator");
    c->create_cb = create_cb;
    c->ctx = ctx;
    c->ctx_free_cb = ctx_free_cb;
    atomic_init(&c->removed, false);
    atomic_init(&c->next, NULL);
    ct__mutex_lock(&oe->mu);
    c->idx = oe->n_creators++;
    /* release: a walker that sees the pointer sees the node's fields. */
    if (oe->tail == NULL)
        atomic_store_explicit(&oe->head, c, memory_order_release);
    else
        atomic_store_explicit(&oe->tail->next, c, memory_order_release);
    oe->tail = c;
    ct__mutex_unlock(&oe->mu);
    return CT_OK;
}

void ct_engine_clear_observer_creators(ct_engine_t *eng)
{
    struct ct__obs_creator *c;

    CT_ASSERT(eng != NULL, "ct_engine_clear_observer_creators: NULL engine");
    for (c = atomic_load_explicit(&eng->obs->head, memory_order_acquire);
         c != NULL; c = atomic_load_explicit(&c->next, memory_order_acquire))
        atomic_store_explicit(&c->removed, true, memory_order_relaxed);
}

int ct__obs_run_creators(ct_net_t *net, ct_status_t *st)
{
    struct ct__obs_engine *oe = net->eng->obs;
    struct ct__obs_creator *c;
    int rc;

    net->id =
        atomic_fetch_add_explicit(&oe->last_net_id, 1, memory_order_relaxed) +
        1;
    for (c = atomic_load_explicit(&oe->head, memory_order_acquire); c != NULL;
         c = atomic_load_explicit(&c->next, memory_order_acquire)) {
        ct_observer_t *obs = NULL;
        if (atomic_load_explicit(&c->removed, memory_order_relaxed))
            continue;
        rc = c->create_cb(c->ctx, net, &obs, st);
        if (rc != CT_OK) {
            ct_observer_free(obs);
            if (st != NULL && st->code != rc)
                ct_status_setf(st, rc, "%s", ct_strerror(rc));
            ct_status_prefix(st, "net %s: observer creator %d: ", net->name,
                             c->idx);
            return rc;
        }
        if (obs == NULL)
            continue;
        rc = ct__obs_attach_new_net(net, obs, st);
        if (rc != CT_OK) {
            ct_observer_free(obs);
            return rc;
        }
    }
    return CT_OK;
}

/* ---- spec creators ---- */

static int spec_create_cb(void *ctx, ct_net_t *net, ct_observer_t **out,
                          ct_status_t *st)
{
    int rc = ct_observer_create_from_spec(net->eng, ctx, out, st);

    if (rc == CT_OK)
        (*out)->per_net_file = true;
    return rc;
}

static void spec_free_cb(void *ctx)
{
    ct__free(ctx);
}

int ct_engine_add_observer_spec(ct_engine_t *eng, const char *spec,
                                ct_status_t *st)
{
    ct_observer_t *probe = NULL;
    char *copy;
    int rc;

    CT_ASSERT(eng != NULL && spec != NULL,
              "ct_engine_add_observer_spec: NULL argument");
    /* Check the whole spec now rather than at the first net. */
    rc = ct_observer_create_from_spec(eng, spec, &probe, st);
    ct_observer_free(probe);
    if (rc != CT_OK)
        return rc;
    copy = ct__strdup(spec);
    if (copy == NULL)
        return ct_status_setf(st, CT_ENOMEM,
                              "out of memory registering observer spec");
    rc = ct_engine_add_observer_creator(eng, spec_create_cb, copy, spec_free_cb,
                                        st);
    if (rc != CT_OK)
        ct__free(copy);
    return rc;
}

/* ---- file claims ---- */

/* The claim of path, or NULL (not found). Caller holds oe->mu. */
static struct ct__obs_claim *find_claim(struct ct__obs_engine *oe,
                                        const char *path)
{
    struct ct__obs_claim *c;

    for (c = oe->claims; c != NULL; c = c->next)
        if (strcmp(c->path, path) == 0)
            return c;
    return NULL;
}

int ct__obs_claim_file(ct_observer_t *obs, const ct_net_t *net, ct_status_t *st)
{
    struct ct__obs_engine *oe = net->eng->obs;
    struct ct__obs_claim *claim, *taken;
    char *path;

    CT_ASSERT(obs->file == NULL, "observer %s claims a second file", obs->name);
    path = ct__obs_template_expand(obs->file_template, net->name, net->id,
                                   obs->per_net_file, false);
    claim = ct__calloc(1, sizeof(*claim));
    if (claim != NULL)
        claim->net_name = ct__strdup(net->name);
    if (path == NULL || claim == NULL || claim->net_name == NULL)
        goto oom;
    ct__mutex_lock(&oe->mu);
    taken = find_claim(oe, path);
    if (taken != NULL && obs->per_net_file &&
        strchr(obs->file_template, '%') == NULL) {
        /* Two live nets of the same name: add the net id too. */
        char *with_id = ct__obs_template_expand(obs->file_template, net->name,
                                                net->id, true, true);
        if (with_id == NULL) {
            ct__mutex_unlock(&oe->mu);
            goto oom;
        }
        ct__free(path);
        path = with_id;
        taken = find_claim(oe, path);
    }
    if (taken != NULL) {
        int rc = ct_status_setf(
            st, CT_EEXIST,
            "observer %s: file \"%s\" is already written by observer %s of "
            "net %s; put %%n (net name) or %%i (net id) in the file name",
            obs->name, path, taken->owner->name, taken->net_name);
        ct__mutex_unlock(&oe->mu);
        ct__free(path);
        ct__free(claim->net_name);
        ct__free(claim);
        return rc;
    }
    claim->path = path;
    claim->owner = obs;
    claim->next = oe->claims;
    oe->claims = claim;
    ct__mutex_unlock(&oe->mu);
    obs->file = ct__strdup(path);
    if (obs->file == NULL) {
        ct__obs_release_file(obs);
        return ct_status_setf(st, CT_ENOMEM,
                              "observer %s: out of memory resolving its "
                              "file name",
                              obs->name);
    }
    return CT_OK;

oom:
    ct__free(path);
    if (claim != NULL)
        ct__free(claim->net_name);
    ct__free(claim);
    return ct_status_setf(st, CT_ENOMEM,
                          "observer %s: out of memory resolving its file name",
                          obs->name);
}

void ct__obs_release_file(ct_observer_t *obs)
{
    struct ct__obs_engine *oe;
    struct ct__obs_claim **pp, *c;

    if (obs->eng == NULL || obs->file_template == NULL)
        return;
    oe = obs->eng->obs;
    ct__mutex_lock(&oe->mu);
    for (pp = &oe->claims; (c = *pp) != NULL; pp = &c->next)
        if (c->owner == obs) {
            *pp = c->next;
            break;
        }
    ct__mutex_unlock(&oe->mu);
    if (c != NULL) {
        ct__free(c->path);
        ct__free(c->net_name);
        ct__free(c);
    }
    ct__free(obs->file);
    obs->file = NULL;
}
