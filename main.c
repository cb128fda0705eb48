/* kestrel: entry point. Dispatches to the subcommands in cmd/. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

static void usage(FILE *out)
{
	fprintf(out, "Usage: kestrel COMMAND [OPTIONS]\n"
		     "\n"
		     "Commands:\n"
		     "  run    boot a virtual machine (kestrel run --help)\n"
		     "  img    create, inspect and convert disk images (kestrel img --help)\n"
		     "  qmp    talk to a running VM's QMP monitor (kestrel qmp --help)\n"
		     "\n"
		     "  kestrel --version | --help\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		printf("kestrel %s\n", KESTREL_VERSION);
		return 0;
	}
	for (const struct kestrel_cmd *c = kestrel_cmds; c->name; c++)
		if (!strcmp(cmd, c->name))
			return c->main(argc - 1, argv + 1);
	fprintf(stderr, "kestrel: unknown command '%s' (try 'kestrel --help')\n", cmd);
	return 1;
}
