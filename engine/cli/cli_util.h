/* cortado CLI internals: option parsing, error reporting, formatting.
 *
 * Every command is a function `int ct__cli_cmd_<name>(argc, argv)` that
 * returns the process exit status: CT_CLI_EXIT_OK (0), CT_CLI_EXIT_FAIL (1,
 * the command ran and failed: missing file, bad input, net error) or
 * CT_CLI_EXIT_USAGE (2, the command line itself is wrong). Errors are one
 * line on stderr, `cortado: error: <message>`; usage errors add the
 * command's synopsis and a pointer to --help. Nothing here exits the
 * process: main() returns what the command returned.
 */
#ifndef CT_ENGINE_CLI_CLI_UTIL_H
#define CT_ENGINE_CLI_CLI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cortado/error.h"
#include "cortado/proto.h"
#include "cortado/tensor.h"

#define CT_CLI_EXIT_OK 0
#define CT_CLI_EXIT_FAIL 1
#define CT_CLI_EXIT_USAGE 2

/* ---- commands ---- */
int ct__cli_cmd_run(int argc, char **argv);
int ct__cli_cmd_inspect(int argc, char **argv);
int ct__cli_cmd_convert(int argc, char **argv);
int ct__cli_cmd_topo(int argc, char **argv);
int ct__cli_cmd_demo(int argc, char **argv);

/* ---- option parsing ---- */

/* One option of a command. `name` is the long name without "--";
 * `short_name` a letter or 0; `has_arg` says whether it takes a value
 * (given as "--name VALUE" or "--name=VALUE", "-x VALUE"). */
struct ct__cli_opt {
    const char *name;
    char short_name;
    bool has_arg;
    int id; /* > 0, returned by ct__cli_next */
};

/* Iterates over argv[1..argc) of one command. */
struct ct__cli_parser {
    int argc;
    char **argv;
    int idx;                        /* next argv entry */
    bool only_positionals;          /* after "--" */
    const char *cmd;                /* e.g. "run", for messages */
    const char *synopsis;           /* one-line usage of the command */
    const struct ct__cli_opt *opts; /* terminated by a NULL name */
};

#define CT_CLI_END 0           /* no more arguments */
#define CT_CLI_POSITIONAL (-1) /* *val is a positional argument */
#define CT_CLI_BAD (-2)        /* usage error, already printed */

void ct__cli_parser_init(struct ct__cli_parser *p, int argc, char **argv,
                         const char *cmd, const char *synopsis,
                         const struct ct__cli_opt *opts);
/* Returns the next option's id (with its value in *val, or NULL),
 * CT_CLI_POSITIONAL, CT_CLI_END or CT_CLI_BAD (unknown option, missing
 * value, value given to a flag; the error is printed). */
int ct__cli_next(struct ct__cli_parser *p, const char **val);

/* Parses a whole decimal number in [lo, hi] for option `opt`; prints a
 * usage error and returns false otherwise. */
bool ct__cli_parse_int(const struct ct__cli_parser *p, const char *opt,
                       const char *s, long long lo, long long hi,
                       long long *out);
/* Splits "BLOB=FILE" at the first '='. Both parts must be non-empty;
 * otherwise prints a usage error for `opt` and returns false. The parts
 * point into a copy the caller frees with free() (*blob is the copy). */
bool ct__cli_split_assign(const struct ct__cli_parser *p, const char *opt,
                          const char *s, char **blob, const char **file);

/* ---- errors ---- */

/* Prints "cortado: error: <message>" on one line (newlines in the message
 * become spaces). */
void ct__cli_error(const char *fmt, ...) CT_PRINTF(1, 2);
/* Prints the error, the synopsis and a --help hint; returns
 * CT_CLI_EXIT_USAGE. */
int ct__cli_usage_error(const struct ct__cli_parser *p, const char *fmt, ...)
    CT_PRINTF(2, 3);
/* Prints st's message (or rc's default text when empty), prefixed by
 * `what: ` when what is not NULL; returns CT_CLI_EXIT_FAIL. */
int ct__cli_status_error(const ct_status_t *st, int rc, const char *what);

/* ---- NetDef files ---- */

/* Reads a NetDef file, detecting binary or text by content (falling back
 * to binary when an apparent text file does not parse as text, like
 * ct_netdef_read_file). *fmt receives the format that parsed; *size the
 * file size. */
int ct__cli_read_netdef(const char *path, ct_netdef_t **out,
                        enum ct_proto_format *fmt, size_t *size,
                        ct_status_t *st);
const char *ct__cli_format_name(enum ct_proto_format fmt);

/* ---- formatting ---- */

/* Formats a duration in nanoseconds with a unit that keeps 3-4 digits
 * ("812 ns", "12.4 us", "3.07 ms", "1.25 s"). */
const char *ct__cli_fmt_duration(double ns, char *buf, size_t size);
/* Writes up to max_values elements of t as "[a, b, c, ...]". */
void ct__cli_print_values(FILE *f, const ct_tensor_t *t, int max_values);
/* Monotonic clock in nanoseconds. */
uint64_t ct__cli_now_ns(void);

#endif /* CT_ENGINE_CLI_CLI_UTIL_H */
