/* The VM's console on the host: stdio (raw mode on a terminal, Ctrl-a escapes), a file,
 * or nothing. It is the backend of the serial port the guest uses as its console. */
#ifndef KESTREL_VMM_CONSOLE_H
#define KESTREL_VMM_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include "core/event_loop.h"
#include "hw/serial8250.h"
#include "util/error.h"

enum console_kind { CONSOLE_STDIO, CONSOLE_NONE, CONSOLE_FILE };

struct console_config {
	enum console_kind kind;
	const char *path; /* CONSOLE_FILE */
};

struct console {
	struct console_config cfg;
	int in_fd, out_fd;
	bool raw; /* the terminal was put in raw mode and must be restored */
	struct termios saved;
	bool escape;	      /* the previous input byte was Ctrl-a */
	uint8_t pending[256]; /* input the UART had no room for yet */
	size_t pending_len;
	bool in_paused;	 /* stdin polling paused until the UART has room */
	bool vm_paused;	 /* the VM is stopped: input waits in pending (Ctrl-a still works) */
	int rx_space_fd; /* eventfd the UART's rx_space callback writes */
	struct serial8250 *uart;
	struct event_loop *loop;
	/* A second input sink (the virtio-console, hvc0): Ctrl-a c switches between them. */
	size_t (*hvc_input)(void *opaque, const uint8_t *buf, size_t len);
	void *hvc_opaque;
	bool to_hvc; /* input goes to hvc_input, not the UART */
	/* Ctrl-a x */
	void (*quit)(void *opaque);
	void *quit_opaque;
};

int console_open(struct console *c, const struct console_config *cfg, struct error *err);
/* Connect to the UART and the event loop (after both exist). */
int console_attach(struct console *c, struct serial8250 *uart, struct event_loop *loop,
		   void (*quit)(void *opaque), void *opaque);
/* The serial backend to give the UART at init. */
struct serial8250_backend console_backend(struct console *c);
/* Offer input to hvc_input too (Ctrl-a c switches); to_hvc: start there. */
void console_set_hvc(struct console *c,
		     size_t (*input)(void *opaque, const uint8_t *buf, size_t len), void *opaque,
		     bool to_hvc);
/* The current input sink has room again (any thread): pending input is offered again. */
void console_input_space(struct console *c);
/* The VM stops / goes on (main thread): input is held in pending meanwhile, then delivered. */
void console_pause(struct console *c);
void console_resume(struct console *c);
/* Restore the terminal; idempotent, also done at exit and on fatal signals. */
void console_restore(struct console *c);
void console_close(struct console *c);

#endif
