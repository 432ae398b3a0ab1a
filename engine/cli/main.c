/* cortado: the command-line front end.
 *
 * `cortado <command> [options]`: dispatches to one function per command
 * (cmd_run.c, cmd_inspect.c, cmd_convert.c). Exit status: 0 success,
 * 1 runtime failure, 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include "cortado/common.h"
#include "engine/cli/cli_util.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"run", ct__cli_cmd_run, "compile a NetDef and run it on .npy inputs"},
    {"inspect", ct__cli_cmd_inspect,
     "summarize a NetDef: ops by type, blobs, chains"},
    {"convert", ct__cli_cmd_convert,
     "convert a NetDef between binary (.pb) and text (.pbtxt)"},
    {"topo", ct__cli_cmd_topo,
     "print the topology and the worker layout for --threads N"},
    {"demo", ct__cli_cmd_demo,
     "train a small MLP on MNIST (scopes, checkpoints, observers)"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_help(FILE *f)
{
    size_t i;

    fputs("usage: cortado <command> [options]\n"
          "\n"
          "Runs and inspects Caffe2 nets (NetDef .pb or .pbtxt) on CPUs.\n"
          "\n"
          "Commands:\n",
          f);
    for (i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fputs("\n"
          "Options:\n"
          "  -h, --help     show this help ('cortado <command> --help' for a "
          "command)\n"
          "  -V, --version  print the version\n"
          "\n"
          "Exit status: 0 success, 1 runtime failure, 2 usage error.\n",
          f);
}

int main(int argc, char **argv)
{
    const char *cmd;
    size_t i;

    if (argc < 2) {
        ct__cli_error("no command given");
        print_help(stderr);
        return CT_CLI_EXIT_USAGE;
    }
    cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        print_help(stdout);
        return CT_CLI_EXIT_OK;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        printf("cortado %s\n", ct_version_string());
        return CT_CLI_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0) {
        /* "cortado help run" is "cortado run --help". */
        if (argc >= 3) {
            char *sub[3];
            sub[0] = argv[2];
            sub[1] = (char *)"--help";
            sub[2] = NULL;
            for (i = 0; i < N_COMMANDS; i++)
                if (strcmp(argv[2], commands[i].name) == 0)
                    return commands[i].fn(2, sub);
            ct__cli_error("unknown command '%s'", argv[2]);
            return CT_CLI_EXIT_USAGE;
        }
        print_help(stdout);
        return CT_CLI_EXIT_OK;
    }
    for (i = 0; i < N_COMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    if (cmd[0] == '-')
        ct__cli_error("unknown option '%s' (options follow the command)", cmd);
    else
        ct__cli_error("unknown command '%s'", cmd);
    fputs("usage: cortado <command> [options]; commands: run, inspect, topo, "
          "convert\nRun 'cortado --help' for details.\n",
          stderr);
    return CT_CLI_EXIT_USAGE;
}
