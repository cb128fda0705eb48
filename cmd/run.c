/* kestrel run — placeholder until its issue lands. */
#include <stdio.h>

#include "cmd/cmd.h"

int cmd_run(int argc, char **argv)
{
	fprintf(stderr, "kestrel: 'run' is not built in this version yet\n");
	return 1;
}
