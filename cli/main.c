/* The bnn command: git-style subcommands over the library. */
#include "cli.h"

#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "bnn %s — Bayesian deep learning in C\n\n"
            "usage: bnn COMMAND [options]\n\n"
            "commands:\n"
            "  train   train a network (MAP: adamw or sgd) and save it\n"
            "  eval    metrics of a saved model on a test split\n"
            "  info    what a model file holds\n"
            "  version print the version\n\n"
            "'bnn COMMAND --help' describes each command's options.\n"
            "example:\n"
            "  bnn train --data fmnist --model mlp:784-512-256-10 --epochs 10 -o map.safetensors\n"
            "  bnn eval -m map.safetensors\n",
            BNN_VERSION);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *c = argv[1];
    if (!strcmp(c, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(c, "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(c, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(c, "version") || !strcmp(c, "--version")) {
        printf("bnn %s (%s)\n", BNN_VERSION, bnn_have_blas() ? "OpenBLAS" : "plain C GEMM");
        return 0;
    }
    if (!strcmp(c, "help") || !strcmp(c, "--help") || !strcmp(c, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "bnn: unknown command '%s' (commands: train, eval, info, version; see 'bnn "
            "--help')\n", c);
    return 2;
}
