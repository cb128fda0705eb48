/* Key codes: QEMU's QKeyCode names (QAPI enum QKeyCode, the names QMP send-key takes) and
 * their PS/2 scancode set 2 make/break sequences.
 *
 * A keycode is the key's position in the QKeyCode enum ("unmapped" = 0, "shift" = 1, ...),
 * so numbers agree with QEMU's. Keys without a PS/2 code (the Sun keys "stop", "again",
 * "props", ... except where a PC code exists) look up fine but produce no bytes.
 */
#ifndef KESTREL_HW_KEYMAP_H
#define KESTREL_HW_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest sequence: Pause, E1 14 77 E1 F0 14 F0 77. */
#define KEYMAP_MAX_SEQ 8

/* Number of QKeyCode values (valid keycodes are 0 .. keymap_count() - 1). */
int keymap_count(void);
/* Keycode for a QKeyCode name ("a", "ctrl", "kp_1", ...), or -ENOENT. "sysrq" is an alias
 * of "print" as in QEMU. */
int keymap_lookup_qcode(const char *name);
/* The name of a keycode, NULL if out of range. */
const char *keymap_qcode_name(int keycode);
/* The set 2 bytes for pressing (down) or releasing a key into buf (at least
 * KEYMAP_MAX_SEQ bytes). Returns the length (0: the key sends nothing, as Pause on
 * release) or -ENOENT for an unknown or unmapped keycode. */
int keymap_set2_sequence(int keycode, bool down, uint8_t *buf);
/* Set 2 -> set 1 translation as the i8042 does it (command byte bit 6), per byte; the
 * caller handles the F0 break prefix (next byte | 0x80). */
uint8_t keymap_set2_to_set1(uint8_t code);

#endif
