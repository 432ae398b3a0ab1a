/* cortado: the observer API: observer objects, attach / detach, flush.
 *
 * Design note. A net's observers live in one struct ct__obs_set hung off
 * net->obs, created at the first attach (with the op table the hooks hand
 * out: types, names, bound blobs) and freed when the last observer goes,
 * so an unobserved net pays one inline NULL test per hook. Attach and
 * remove claim the net's `running` flag exactly like a run, so the set
 * never changes while a run reads it and no lock is needed anywhere on
 * the hook path (observers/hooks.c). Built-in observers copy what they
 * keep from the op table at attach, so their results outlive the net.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortado/observer.h"
#include "engine/alloc.h"
#include "engine/net_impl.h"
#include "engine/op_internal.h"
#include "observers/observer_impl.h"

/* ---- observer objects ---- */

static void set_name(ct_observer_t *obs, const char *name)
{
    snprintf(obs->name, sizeof(obs->name), "%s",
             name != NULL && name[0] != '\0' ? name : "custom");
    obs->cbs.name = obs->name;
}

int ct_observer_new(const struct ct_observer_cbs *cbs, void *ctx,
                    ct_observer_t **out, ct_status_t *st)
{
    ct_observer_t *obs;

    CT_ASSERT(cbs != NULL && out != NULL, "ct_observer_new: NULL argument");
    *out = NULL;
    obs = ct__calloc(1, sizeof(*obs));
    if (obs == NULL) {
        if (cbs->free_cb != NULL)
            cbs->free_cb(ctx);
        return ct_status_setf(st, CT_ENOMEM, "observer %s: out of memory",
                              cbs->name != NULL ? cbs->name : "custom");
    }
    obs->cbs = *cbs;
    set_name(obs, cbs->name);
    obs->ctx = ctx;
    obs->flushed_run = UINT64_MAX;
    *out = obs;
    return CT_OK;
}

int ct_observer_create_from_spec(ct_engine_t *eng, const char *spec,
                                 ct_observer_t **out, ct_status_t *st)
{
    struct ct__obs_spec sp;
    ct_observer_t *obs = NULL;
    void *ctx = NULL;
    int rc;

    CT_ASSERT(eng != NULL && spec != NULL && out != NULL,
              "ct_observer_create_from_spec: NULL argument");
    *out = NULL;
    rc = ct__obs_spec_parse(spec, &sp, st);
    if (rc != CT_OK)
        goto done;
    rc = sp.kind->new_cb(&sp, &ctx, st);
    if (rc != CT_OK)
        goto done;
    rc = ct_observer_new(sp.kind->cbs, ctx, &obs, st);
    if (rc != CT_OK)
        goto done; /* ctx was freed by ct_observer_new */
    ((struct ct__obs_base *)ctx)->obs = obs;
    obs->kind = sp.kind;
    obs->eng = eng;
    if (sp.file != NULL) {
        obs->file_template = ct__strdup(sp.file);
        if (obs->file_template == NULL) {
            ct_observer_free(obs);
            obs = NULL;
            rc = ct_status_setf(st, CT_ENOMEM, "observer %s: out of memory",
                                sp.kind->name);
            goto done;
        }
    }
    *out = obs;
done:
    ct__obs_spec_destroy(&sp);
    return rc;
}

void ct_observer_free(ct_observer_t *obs)
{
    if (obs == NULL)
        return;
    CT_ASSERT(obs->net == NULL,
              "ct_observer_free: observer %s is attached to net \"%s\"",
              obs->name, obs->net->name);
    ct__obs_release_file(obs);
    if (obs->cbs.free_cb != NULL)
        obs->cbs.free_cb(obs->ctx);
    ct__free(obs->file_template);
    ct__free(obs->file);
    if (CT_DEBUG)
        memset(obs, 0xdb, sizeof(*obs));
    ct__free(obs);
}

const char *ct_observer_name(const ct_observer_t *obs)
{
    return obs->name;
}

const char *ct_observer_file(const ct_observer_t *obs)
{
    return obs->file;
}

void *ct__obs_kind_ctx(const ct_observer_t *obs,
                       const struct ct__obs_kind *kind, const char *fn,
                       ct_status_t *st)
{
    CT_ASSERT(obs != NULL, "%s: NULL observer", fn);
    if (obs->kind != kind) {
        ct_status_setf(st, CT_EINVAL,
                       "%s: observer \"%s\" is not a %s observer", fn,
                       obs->name, kind->name);
        return NULL;
    }
    return obs->ctx;
}

/* ---- the per-net set ---- */

static void free_set(struct ct__obs_set *s)
{
    if (s == NULL)
        return;
    ct__free(s->v);
    ct__free(s->op_start);
    ct__free(s->op_end);
    ct__free(s->ops);
    ct__free(s);
}

static struct ct__obs_set *new_set(ct_net_t *net)
{
    struct ct__obs_set *s = ct__calloc(1, sizeof(*s));
    int i;

    if (s == NULL)
        return NULL;
    s->ops = ct__calloc((size_t)net->n_ops + 1, sizeof(*s->ops));
    if (s->ops == NULL) {
        ct__free(s);
        return NULL;
    }
    for (i = 0; i < net->n_ops; i++) {
        const ct_op_t *op = net->ops[i];
        const Caffe2__OperatorDef *d = op->def;
        struct ct_observer_op *o = &s->ops[i];
        o->idx = i;
        o->type = d->type != NULL ? d->type : "";
        o->name = d->name != NULL ? d->name : "";
        o->n_inputs = op->n_in;
        o->n_outputs = op->n_out;
        /* char ** to const char *const *: same representation. */
        o->input_names = (const char *const *)d->input;
        o->output_names = (const char *const *)d->output;
        o->inputs = op->in;
        o->outputs = op->out;
    }
    s->info.net = net;
    s->info.name = net->name;
    s->info.id = net->id;
    s->info.n_ops = net->n_ops;
    s->info.ops = s->ops;
    return s;
}

/* Claims the net for a change of its observer set (like a run). */
static int claim_net(ct_net_t *net, const char *what, ct_status_t *st)
{
    bool idle = false;

    if (!atomic_compare_exchange_strong_explicit(&net->running, &idle, true,
                                                 memory_order_acquire,
                                                 memory_order_relaxed))
        return ct_status_setf(st, CT_EBUSY,
                              "net %s is running; %s observers between runs",
                              net->name, what);
    return CT_OK;
}

static void release_net(ct_net_t *net)
{
    atomic_store_explicit(&net->running, false, memory_order_release);
}

/* Rebuilds the per-hook lists and flags after v changed (never
 * allocates: the lists have v's capacity). */
static void update_hooks(struct ct__obs_set *s)
{
    int k;

    s->want_time = false;
    s->n_op_start = s->n_op_end = s->n_net_start = s->n_net_end = 0;
    for (k = 0; k < s->n; k++) {
        ct_observer_t *o = s->v[k];
        if (o->cbs.flags & CT_OBSERVER_F_TIME)
            s->want_time = true;
        s->n_net_start += o->cbs.net_start_cb != NULL;
        s->n_net_end += o->cbs.net_end_cb != NULL;
        if (o->cbs.op_start_cb != NULL)
            s->op_start[s->n_op_start++] = o;
        if (o->cbs.op_end_cb != NULL)
            s->op_end[s->n_op_end++] = o;
    }
}

/* Grows v and the hook lists to hold `cap` observers. */
static int grow_set(struct ct__obs_set *s, int cap)
{
    ct_observer_t **p[3] = {s->v, s->op_start, s->op_end};
    int k;

    for (k = 0; k < 3; k++) {
        ct_observer_t **q = ct__realloc(p[k], (size_t)cap * sizeof(*q));
        if (q == NULL)
            return CT_ENOMEM; /* the ones grown so far just stay bigger */
        p[k] = q;
        if (k == 0)
            s->v = q;
        else if (k == 1)
            s->op_start = q;
        else
            s->op_end = q;
    }
    s->cap = cap;
    return CT_OK;
}

/* Attaches with the net claimed (or not yet visible to anyone). On
 * failure obs and net are unchanged and st reads `net <name>: ...`. */
static int attach_locked(ct_net_t *net, ct_observer_t *obs, ct_status_t *st)
{
    struct ct__obs_set *s = net->obs;
    bool new = false;
    int rc = CT_ENOMEM;

    if (s == NULL) {
        s = new_set(net);
        if (s == NULL)
            goto oom;
        new = true;
    }
    if (s->n == s->cap && grow_set(s, s->cap ? s->cap * 2 : 4) != CT_OK)
        goto oom;
    if (obs->file_template != NULL) {
        rc = ct__obs_claim_file(obs, net, st);
        if (rc != CT_OK)
            goto fail;
        rc = ct__obs_probe_file(obs->file, st);
        if (rc != CT_OK) {
            ct_status_prefix(st, "observer %s: ", obs->name);
            goto fail_file;
        }
    }
    if (obs->cbs.attach_cb != NULL) {
        ct_status_t scratch, *cst = st != NULL ? st : &scratch;
        ct_status_clear(cst);
        rc = obs->cbs.attach_cb(obs->ctx, &s->info, cst);
        if (rc != CT_OK) {
            if (cst->code != rc)
                ct_status_setf(cst, rc, "%s", ct_strerror(rc));
            ct_status_prefix(st, "observer %s: ", obs->name);
            goto fail_file;
        }
    }
    s->v[s->n++] = obs;
    update_hooks(s);
    net->obs = s;
    obs->net = net;
    obs->was_attached = true;
    return CT_OK;

oom:
    ct_status_setf(st, CT_ENOMEM, "out of memory attaching observer %s",
                   obs->name);
    goto fail;
fail_file:
    ct__obs_release_file(obs);
fail:
    if (new)
        free_set(s);
    ct_status_prefix(st, "net %s: ", net->name);
    return rc;
}

int ct_net_add_observer(ct_net_t *net, ct_observer_t *obs, ct_status_t *st)
{
    int rc;

    CT_ASSERT(net != NULL && obs != NULL, "ct_net_add_observer: NULL argument");
    if (obs->net == net)
        return CT_OK;
    if (obs->net != NULL)
        return ct_status_setf(st, CT_EBUSY,
                              "observer %s is already attached to net %s",
                              obs->name, obs->net->name);
    if (obs->was_attached)
        return ct_status_setf(st, CT_ESTATE,
                              "observer %s was attached to a net before; "
                              "make a new one",
                              obs->name);
    if (obs->eng != NULL && obs->eng != net->eng)
        return ct_status_setf(st, CT_EINVAL,
                              "observer %s was made for another engine than "
                              "net %s's",
                              obs->name, net->name);
    rc = claim_net(net, "attach", st);
    if (rc != CT_OK)
        return rc;
    rc = attach_locked(net, obs, st);
    release_net(net);
    return rc;
}

int ct_net_remove_observer(ct_net_t *net, ct_observer_t *obs, ct_status_t *st)
{
    struct ct__obs_set *s;
    int k, rc;

    CT_ASSERT(net != NULL && obs != NULL,
              "ct_net_remove_observer: NULL argument");
    if (obs->net != net)
        return ct_status_setf(st, CT_ENOTFOUND,
                              "observer %s is not attached to net %s",
                              obs->name, net->name);
    rc = claim_net(net, "remove", st);
    if (rc != CT_OK)
        return rc;
    s = net->obs;
    for (k = 0; k < s->n && s->v[k] != obs; k++)
        ;
    CT_ASSERT(k < s->n, "observer %s missing from net %s", obs->name,
              net->name);
    memmove(&s->v[k], &s->v[k + 1], (size_t)(s->n - k - 1) * sizeof(*s->v));
    s->n--;
    update_hooks(s);
    if (s->n == 0) {
        net->obs = NULL;
        free_set(s);
    }
    obs->net = NULL;
    release_net(net);
    return ct_observer_flush(obs, st);
}

int ct_net_n_observers(const ct_net_t *net)
{
    return net->obs != NULL ? net->obs->n : 0;
}

ct_observer_t *ct_net_get_observer(const ct_net_t *net, int i)
{
    CT_ASSERT(i >= 0 && i < ct_net_n_observers(net),
              "observer %d of a net with %d", i, ct_net_n_observers(net));
    return net->obs->v[i];
}

/* ---- flush, describe ---- */

int ct_observer_flush(ct_observer_t *obs, ct_status_t *st)
{
    ct_status_t scratch;
    int rc = CT_OK;

    CT_ASSERT(obs != NULL, "ct_observer_flush: NULL observer");
    if (!obs->was_attached)
        return ct_status_setf(st, CT_ESTATE,
                              "observer %s was never attached to a net; "
                              "nothing to write",
                              obs->name);
    if (obs->cbs.flush_cb != NULL) {
        ct_status_t *cst = st != NULL ? st : &scratch;
        ct_status_clear(cst);
        rc = obs->cbs.flush_cb(obs->ctx, cst);
        if (rc != CT_OK) {
            if (cst->code != rc || cst->msg[0] == '\0')
                ct_status_setf(cst, rc, "flush failed: %s", ct_strerror(rc));
            ct_status_prefix(cst, "observer %s: ", obs->name);
        }
    }
    if (rc == CT_OK && obs->net != NULL)
        obs->flushed_run = obs->net->obs->run;
    return rc;
}

int ct_observer_describe(const ct_observer_t *obs, char **out, ct_status_t *st)
{
    struct ct__obs_buf b = {NULL, 0, 0, false};

    CT_ASSERT(obs != NULL && out != NULL,
              "ct_observer_describe: NULL argument");
    *out = NULL;
    if (obs->kind != NULL && obs->was_attached)
        obs->kind->describe_cb(obs, &b);
    else
        ct__obs_buf_printf(&b, "%s: %s\n", obs->name,
                           obs->was_attached ? "custom observer"
                                             : "not attached yet");
    if (b.oom || b.p == NULL) {
        ct__obs_buf_free(&b);
        return ct_status_setf(st, CT_ENOMEM,
                              "observer %s: out of memory describing it",
                              obs->name);
    }
    *out = b.p;
    return CT_OK;
}

/* ---- net integration ---- */

void ct__obs_net_destroy(ct_net_t *net)
{
    struct ct__obs_set *s = net->obs;
    ct_status_t st;
    int k;

    if (s == NULL)
        return;
    net->obs = NULL;
    for (k = 0; k < s->n; k++) {
        ct_observer_t *obs = s->v[k];
        obs->net = NULL;
        if (obs->flushed_run != s->run && ct_observer_flush(obs, &st) != CT_OK)
            /* ct_net_free cannot return an error: say it once here. Call
             * ct_observer_flush before ct_net_free to handle it. */
            fprintf(stderr, "cortado: warning: net %s: %s\n", net->name,
                    st.msg);
        ct_observer_free(obs);
    }
    free_set(s);
}

/* Frees the observers attached so far without flushing them (their net
 * never came to be). */
static void discard_all(ct_net_t *net)
{
    struct ct__obs_set *s = net->obs;
    int k;

    if (s == NULL)
        return;
    net->obs = NULL;
    for (k = 0; k < s->n; k++) {
        s->v[k]->net = NULL;
        ct_observer_free(s->v[k]);
    }
    free_set(s);
}

int ct__obs_net_init(ct_net_t *net, ct_status_t *st)
{
    int rc = ct__obs_run_creators(net, st);

    if (rc != CT_OK)
        discard_all(net);
    return rc;
}

int ct__obs_attach_new_net(ct_net_t *net, ct_observer_t *obs, ct_status_t *st)
{
    return attach_locked(net, obs, st);
}
