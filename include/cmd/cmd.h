/* Subcommands of the kestrel binary. Each takes argv with argv[0] = its own name and
 * returns the process exit code. */
#ifndef KESTREL_CMD_CMD_H
#define KESTREL_CMD_CMD_H

struct kestrel_cmd {
	const char *name;
	int (*main)(int argc, char **argv);
};

/* NULL-terminated table, in cmd/cmd.c. */
extern const struct kestrel_cmd kestrel_cmds[];

int cmd_run(int argc, char **argv);
int cmd_img(int argc, char **argv);
int cmd_qmp(int argc, char **argv);

#endif
