/* The table of subcommands. */
#include <stddef.h>

#include "cmd/cmd.h"

const struct kestrel_cmd kestrel_cmds[] = {
    {"run", cmd_run},
    {"img", cmd_img},
    {"qmp", cmd_qmp},
    {NULL, NULL},
};
