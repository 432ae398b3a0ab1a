/* Embedding cortado: run the example MLP from C (the README's example).
 *
 *   cc -std=c11 examples/embed.c $(pkg-config --cflags --libs cortado) \
 *      -o embed
 *   ./embed examples/mlp_init.pbtxt examples/mlp_predict.pbtxt \
 *      examples/mlp_input.npy
 *
 * prints "prob [5, 4], row 0: 0.1083 0.2545 0.2522 0.3850".
 */
#include <stdio.h>

#include <cortado/cortado.h>

int main(int argc, char **argv)
{
    ct_engine_t *eng = NULL;
    ct_workspace_t *ws = NULL;
    ct_netdef_t *init = NULL, *predict = NULL;
    ct_net_t *net = NULL;
    ct_tensor_t *x = NULL;
    const ct_tensor_t *prob;
    ct_blob_t *blob;
    ct_status_t st;
    char shape[64];
    int rc;

    if (argc != 4) {
        fprintf(stderr, "usage: %s INIT_NET NET INPUT.npy\n", argv[0]);
        return 2;
    }
    if ((rc = ct_engine_new(NULL, &eng, &st)) != CT_OK ||
        (rc = ct_workspace_new(eng, NULL, &ws, &st)) != CT_OK ||
        (rc = ct_netdef_read_file(argv[1], &init, &st)) != CT_OK ||
        (rc = ct_netdef_read_file(argv[2], &predict, &st)) != CT_OK ||
        /* The init net fills the weights W1, b1, W2, b2. */
        (rc = ct_workspace_run_net_once(ws, init, &st)) != CT_OK ||
        (rc = ct_npy_read_file(eng, argv[3], &x, &st)) != CT_OK ||
        (rc = ct_workspace_create_blob(ws, "data", &blob, &st)) != CT_OK)
        goto done;
    ct_blob_reset(blob, &ct_blob_type_tensor, x); /* the blob owns x now */
    x = NULL;
    if ((rc = ct_net_new(ws, predict, NULL, &net, &st)) != CT_OK ||
        (rc = ct_net_run(net, &st)) != CT_OK)
        goto done;

    prob = ct_blob_get_tensor(ct_workspace_get_blob(ws, "prob"));
    printf("prob %s, row 0:", ct_tensor_shape_str(prob, shape, sizeof(shape)));
    for (int j = 0; j < ct_tensor_dim(prob, 1); j++)
        printf(" %.4f", ((const float *)ct_tensor_cdata(prob))[j]);
    printf("\n");
done:
    if (rc != CT_OK)
        fprintf(stderr, "error: %s (%s)\n", st.msg, ct_err_name(rc));
    ct_net_free(net);
    ct_tensor_free(x);
    ct_workspace_free(ws);
    ct_netdef_free(predict);
    ct_netdef_free(init);
    ct_engine_free(eng);
    return rc == CT_OK ? 0 : 1;
}
