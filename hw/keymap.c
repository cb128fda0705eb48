/* QKeyCode names to PS/2 scancode set 2, and the i8042's set 2 -> set 1 translation.
 *
 * Names and order: QEMU's qapi/ui.json, enum QKeyCode. Codes: the IBM PS/2 keyboard
 * technical reference (scan code set 2; E0-prefixed keys; Print Screen and Pause as
 * multi-byte sequences) and Microsoft's "Keyboard Scan Code Specification" (multimedia,
 * ACPI power keys, F13-F24, Japanese/Korean keys). The translation table is the 8042's
 * fixed mapping; every set 1 code it yields for our keys was checked against set 1.
 */
#define LOG_SUBSYS "keymap"
#include <errno.h>
#include <string.h>

#include "hw/keymap.h"

/* code: 0x00xx plain, 0xE0xx extended, or one of the special sequences below; 0 = none. */
#define SEQ_PRINT 0x10000
#define SEQ_PAUSE 0x10001
#define NOBREAK	  0x20000 /* keys that send no break code (Korean Hangul/Hanja) */

struct keymap_entry {
	const char *name;
	uint32_t code;
};

/* In QKeyCode enum order: the index is the keycode. */
static const struct keymap_entry keymap[] = {
    {"unmapped", 0},
    {"shift", 0x12},
    {"shift_r", 0x59},
    {"alt", 0x11},
    {"alt_r", 0xe011},
    {"ctrl", 0x14},
    {"ctrl_r", 0xe014},
    {"menu", 0xe02f},
    {"esc", 0x76},
    {"1", 0x16},
    {"2", 0x1e},
    {"3", 0x26},
    {"4", 0x25},
    {"5", 0x2e},
    {"6", 0x36},
    {"7", 0x3d},
    {"8", 0x3e},
    {"9", 0x46},
    {"0", 0x45},
    {"minus", 0x4e},
    {"equal", 0x55},
    {"backspace", 0x66},
    {"tab", 0x0d},
    {"q", 0x15},
    {"w", 0x1d},
    {"e", 0x24},
    {"r", 0x2d},
    {"t", 0x2c},
    {"y", 0x35},
    {"u", 0x3c},
    {"i", 0x43},
    {"o", 0x44},
    {"p", 0x4d},
    {"bracket_left", 0x54},
    {"bracket_right", 0x5b},
    {"ret", 0x5a},
    {"a", 0x1c},
    {"s", 0x1b},
    {"d", 0x23},
    {"f", 0x2b},
    {"g", 0x34},
    {"h", 0x33},
    {"j", 0x3b},
    {"k", 0x42},
    {"l", 0x4b},
    {"semicolon", 0x4c},
    {"apostrophe", 0x52},
    {"grave_accent", 0x0e},
    {"backslash", 0x5d},
    {"z", 0x1a},
    {"x", 0x22},
    {"c", 0x21},
    {"v", 0x2a},
    {"b", 0x32},
    {"n", 0x31},
    {"m", 0x3a},
    {"comma", 0x41},
    {"dot", 0x49},
    {"slash", 0x4a},
    {"asterisk", 0x7c},
    {"spc", 0x29},
    {"caps_lock", 0x58},
    {"f1", 0x05},
    {"f2", 0x06},
    {"f3", 0x04},
    {"f4", 0x0c},
    {"f5", 0x03},
    {"f6", 0x0b},
    {"f7", 0x83},
    {"f8", 0x0a},
    {"f9", 0x01},
    {"f10", 0x09},
    {"num_lock", 0x77},
    {"scroll_lock", 0x7e},
    {"kp_divide", 0xe04a},
    {"kp_multiply", 0x7c},
    {"kp_subtract", 0x7b},
    {"kp_add", 0x79},
    {"kp_enter", 0xe05a},
    {"kp_decimal", 0x71},
    {"sysrq", SEQ_PRINT},
    {"kp_0", 0x70},
    {"kp_1", 0x69},
    {"kp_2", 0x72},
    {"kp_3", 0x7a},
    {"kp_4", 0x6b},
    {"kp_5", 0x73},
    {"kp_6", 0x74},
    {"kp_7", 0x6c},
    {"kp_8", 0x75},
    {"kp_9", 0x7d},
    {"less", 0x61},
    {"f11", 0x78},
    {"f12", 0x07},
    {"print", SEQ_PRINT},
    {"home", 0xe06c},
    {"pgup", 0xe07d},
    {"pgdn", 0xe07a},
    {"end", 0xe069},
    {"left", 0xe06b},
    {"up", 0xe075},
    {"down", 0xe072},
    {"right", 0xe074},
    {"insert", 0xe070},
    {"delete", 0xe071},
    {"stop", 0xe028},
    {"again", 0},
    {"props", 0},
    {"undo", 0},
    {"front", 0},
    {"copy", 0},
    {"open", 0},
    {"paste", 0},
    {"find", 0},
    {"cut", 0},
    {"lf", 0},
    {"help", 0},
    {"meta_l", 0xe01f},
    {"meta_r", 0xe027},
    {"compose", 0xe02f},
    {"pause", SEQ_PAUSE},
    {"ro", 0x51},
    {"hiragana", 0x62},
    {"henkan", 0x64},
    {"yen", 0x6a},
    {"muhenkan", 0x67},
    {"katakanahiragana", 0x13},
    {"kp_comma", 0x6d},
    {"kp_equals", 0x0f},
    {"power", 0xe037},
    {"sleep", 0xe03f},
    {"wake", 0xe05e},
    {"audionext", 0xe04d},
    {"audioprev", 0xe015},
    {"audiostop", 0xe03b},
    {"audioplay", 0xe034},
    {"audiomute", 0xe023},
    {"volumeup", 0xe032},
    {"volumedown", 0xe021},
    {"mediaselect", 0xe050},
    {"mail", 0xe048},
    {"calculator", 0xe02b},
    {"computer", 0xe040},
    {"ac_home", 0xe03a},
    {"ac_back", 0xe038},
    {"ac_forward", 0xe030},
    {"ac_refresh", 0xe020},
    {"ac_bookmarks", 0xe018},
    {"lang1", NOBREAK | 0xf2},
    {"lang2", NOBREAK | 0xf1},
    {"f13", 0x08},
    {"f14", 0x10},
    {"f15", 0x18},
    {"f16", 0x20},
    {"f17", 0x28},
    {"f18", 0x30},
    {"f19", 0x38},
    {"f20", 0x40},
    {"f21", 0x48},
    {"f22", 0x50},
    {"f23", 0x57},
    {"f24", 0x5f},
};

#define KEYMAP_COUNT ((int)(sizeof(keymap) / sizeof(keymap[0])))

int keymap_count(void)
{
	return KEYMAP_COUNT;
}

int keymap_lookup_qcode(const char *name)
{
	if (!name)
		return -ENOENT;
	for (int i = 0; i < KEYMAP_COUNT; i++) {
		if (!strcmp(keymap[i].name, name))
			return i;
	}
	return -ENOENT;
}

const char *keymap_qcode_name(int keycode)
{
	if (keycode < 0 || keycode >= KEYMAP_COUNT)
		return NULL;
	return keymap[keycode].name;
}

int keymap_set2_sequence(int keycode, bool down, uint8_t *buf)
{
	static const uint8_t print_make[] = {0xe0, 0x12, 0xe0, 0x7c};
	static const uint8_t print_break[] = {0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12};
	static const uint8_t pause_make[] = {0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77};

	if (keycode < 0 || keycode >= KEYMAP_COUNT || !keymap[keycode].code)
		return -ENOENT;
	uint32_t code = keymap[keycode].code;
	int n = 0;
	switch (code) {
	case SEQ_PRINT:
		if (down) {
			memcpy(buf, print_make, sizeof(print_make));
			return sizeof(print_make);
		}
		memcpy(buf, print_break, sizeof(print_break));
		return sizeof(print_break);
	case SEQ_PAUSE: /* make only: Pause has no break code */
		if (!down)
			return 0;
		memcpy(buf, pause_make, sizeof(pause_make));
		return sizeof(pause_make);
	}
	if (code & NOBREAK) {
		if (!down)
			return 0;
		buf[0] = code & 0xff;
		return 1;
	}
	if (code & 0xff00)
		buf[n++] = 0xe0;
	if (!down)
		buf[n++] = 0xf0;
	buf[n++] = code & 0xff;
	return n;
}

/* The 8042's translation of set 2 codes 0x00-0x7f; 0x80-0xff pass through except F7's
 * 0x83 (-> 0x41, the set 1 F7) and Alt+SysRq's 0x84 (-> 0x54). */
static const uint8_t set2_to_set1_low[128] = {
    0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
    0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
    0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
    0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, 0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
    0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, 0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
    0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
    0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
    0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, 0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
};

uint8_t keymap_set2_to_set1(uint8_t code)
{
	if (code < 0x80)
		return set2_to_set1_low[code];
	if (code == 0x83)
		return 0x41;
	if (code == 0x84)
		return 0x54;
	return code;
}
