/* kestrel img — placeholder until its issue lands. */
#include <stdio.h>

#include "cmd/cmd.h"

int cmd_img(int argc, char **argv)
{
	fprintf(stderr, "kestrel: 'img' is not built in this version yet\n");
	return 1;
}
