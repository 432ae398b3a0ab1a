/* cortado: the slow paths of the observer hooks (observer_impl.h has the
 * inline fast paths and the contract executors follow).
 *
 * Hooks run in attach order, over per-hook lists so observers without a
 * callback cost nothing. Errors: an observer's error is written into the
 * op's own status slot (op hooks, on the op's thread: nothing is shared
 * between concurrent ops) or into the run's status (net hooks), prefixed
 * with the observer's name and the hook, and the run fails with it unless
 * an earlier error won. No lock is taken and nothing is allocated.
 */
#include <stdio.h>

#include "cortado/observer.h"
#include "engine/net_impl.h"
#include "observers/observer_impl.h"

static void fill_event(struct ct_observer_event *ev,
                       const struct ct__obs_set *s, int i, int ith, int rc)
{
    ev->net = &s->info;
    ev->op = i >= 0 ? &s->ops[i] : NULL;
    ev->run = s->run;
    ev->t_ns = s->want_time ? ct__obs_now_ns() : 0;
    ev->ith = ith;
    ev->rc = rc;
}

/* Prefixes an observer's error in st with who failed and where; gives a
 * default message when the callback left none. */
static int observer_error(const ct_observer_t *obs, const char *hook, int rc,
                          ct_status_t *st, bool net_level, const ct_net_t *net)
{
    if (st == NULL)
        return rc;
    if (st->code != rc || st->msg[0] == '\0')
        ct_status_setf(st, rc, "%s", ct_strerror(rc));
    if (net_level)
        ct_status_prefix(st, "net %s: observer \"%s\" (%s): ", net->name,
                         obs->name, hook);
    else
        ct_status_prefix(st, "observer \"%s\" (%s): ", obs->name, hook);
    return rc;
}

/* Net end for observers [0, n) with rc; returns the first error. */
static int net_end_n(ct_net_t *net, int n, int rc, ct_status_t *st)
{
    struct ct__obs_set *s = net->obs;
    struct ct_observer_event ev;
    ct_status_t scratch;
    int k, err = CT_OK;

    fill_event(&ev, s, -1, 0, rc);
    for (k = 0; k < n; k++) {
        ct_observer_t *obs = s->v[k];
        int r;
        if (obs->cbs.net_end_cb == NULL)
            continue;
        ct_status_clear(&scratch);
        r = obs->cbs.net_end_cb(obs->ctx, &ev, &scratch);
        if (r != CT_OK && err == CT_OK) {
            err = observer_error(obs, "net end", r, &scratch, true, net);
            if (rc == CT_OK && st != NULL)
                *st = scratch;
        }
    }
    return rc != CT_OK ? rc : err;
}

int ct__obs_net_start_slow(ct_net_t *net, ct_status_t *st)
{
    struct ct__obs_set *s = net->obs;
    struct ct_observer_event ev;
    ct_status_t scratch;
    int k, rc;

    fill_event(&ev, s, -1, 0, CT_OK);
    for (k = 0; k < s->n; k++) {
        ct_observer_t *obs = s->v[k];
        if (obs->cbs.net_start_cb == NULL)
            continue;
        ct_status_clear(&scratch);
        rc = obs->cbs.net_start_cb(obs->ctx, &ev, &scratch);
        if (rc != CT_OK) {
            observer_error(obs, "net start", rc, &scratch, true, net);
            if (st != NULL)
                *st = scratch;
            /* The ones that started still see the run end. */
            net_end_n(net, k, rc, NULL);
            return rc;
        }
    }
    return CT_OK;
}

int ct__obs_net_end_slow(ct_net_t *net, int rc, ct_status_t *st)
{
    return net_end_n(net, net->obs->n, rc, st);
}

int ct__obs_op_start_slow(ct_net_t *net, int i, int ith)
{
    struct ct__obs_set *s = net->obs;
    ct_status_t *slot = &net->node_status[i];
    struct ct_observer_event ev;
    int k, rc;

    fill_event(&ev, s, i, ith, CT_OK);
    /* The slot may hold the previous run's error; callbacks only write
     * it when they fail. */
    slot->code = CT_OK;
    slot->msg[0] = '\0';
    for (k = 0; k < s->n_op_start; k++) {
        ct_observer_t *obs = s->op_start[k];
        rc = obs->cbs.op_start_cb(obs->ctx, &ev, slot);
        if (rc != CT_OK)
            return observer_error(obs, "op start", rc, slot, false, net);
    }
    return CT_OK;
}

int ct__obs_op_end_slow(ct_net_t *net, int i, int ith, int rc)
{
    struct ct__obs_set *s = net->obs;
    ct_status_t *slot = &net->node_status[i];
    struct ct_observer_event ev;
    ct_status_t scratch;
    int k, r;

    fill_event(&ev, s, i, ith, rc);
    for (k = 0; k < s->n_op_end; k++) {
        ct_observer_t *obs = s->op_end[k];
        /* A successful kernel left the slot clear. Once the op failed,
         * the slot holds the error that wins; later observer errors go to
         * a scratch status and are dropped. */
        ct_status_t *use = slot;
        if (rc != CT_OK) {
            use = &scratch;
            scratch.code = CT_OK;
            scratch.msg[0] = '\0';
        }
        r = obs->cbs.op_end_cb(obs->ctx, &ev, use);
        if (r != CT_OK && rc == CT_OK) {
            rc = observer_error(obs, "op end", r, slot, false, net);
            ev.rc = rc;
        }
    }
    return rc;
}
