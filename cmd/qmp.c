/* kestrel qmp — placeholder until its issue lands. */
#include <stdio.h>

#include "cmd/cmd.h"

int cmd_qmp(int argc, char **argv)
{
	fprintf(stderr, "kestrel: 'qmp' is not built in this version yet\n");
	return 1;
}
