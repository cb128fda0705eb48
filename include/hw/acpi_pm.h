/* ACPI fixed-hardware power management registers of the pc machine: PM1a event block
 * (PM1_STS + PM1_EN), PM1a control block, PM timer, and the reset register at port 0xcf9.
 *
 * ACPI 6.4 section 4.8 (fixed hardware registers, 4.8.3.1 PM1 event grouping, 4.8.3.2 PM1
 * control, 4.8.3.3 PM timer) and section 4.8.3.6 (reset register). Sleep state S5 ends the VM
 * through the poweroff callback; the SCI is a level-triggered line raised while an enabled
 * status bit is set.
 */
#ifndef KESTREL_HW_ACPI_PM_H
#define KESTREL_HW_ACPI_PM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/io_bus.h"
#include "core/irq.h"
#include "core/state.h"

/* Default ports (the layout PIIX4-based machines use) and the SCI. */
#define ACPI_PM_EVT_PORT   0x600 /* 4 bytes: PM1_STS, PM1_EN */
#define ACPI_PM_CNT_PORT   0x604 /* 2 bytes: PM1_CNT */
#define ACPI_PM_TMR_PORT   0x608 /* 4 bytes: PM_TMR */
#define ACPI_PM_RESET_PORT 0xcf9
#define ACPI_PM_SCI_IRQ	   9
#define ACPI_PM_EVT_LEN	   4
#define ACPI_PM_CNT_LEN	   2
#define ACPI_PM_TMR_LEN	   4

/* SLP_TYP values this device gives a meaning to; \_S0 and \_S5 in the DSDT carry them. */
#define ACPI_PM_SLP_TYP_S0 0
#define ACPI_PM_SLP_TYP_S5 5

/* The value the FADT's RESET_VALUE holds; any write with RST_CPU (bit 2) set resets. */
#define ACPI_PM_RESET_VALUE 0x06

#define ACPI_PM_TIMER_HZ 3579545u

/* PM1_STS / PM1_EN bits (ACPI 6.4 tables 4.16, 4.17) */
#define ACPI_PM1_TMR	(1u << 0)
#define ACPI_PM1_BM_STS (1u << 4)
#define ACPI_PM1_GBL	(1u << 5)
#define ACPI_PM1_PWRBTN (1u << 8)
#define ACPI_PM1_SLPBTN (1u << 9)
#define ACPI_PM1_RTC	(1u << 10)
#define ACPI_PM1_WAK	(1u << 15)
/* PM1_CNT bits (ACPI 6.4 table 4.18) */
#define ACPI_PM1_CNT_SCI_EN	   (1u << 0)
#define ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define ACPI_PM1_CNT_SLP_TYP_MASK  (7u << 10)
#define ACPI_PM1_CNT_SLP_EN	   (1u << 13)

struct acpi_pm_config {
	uint16_t evt_port, cnt_port, tmr_port;
	uint16_t reset_port; /* 0: no reset register */
	unsigned sci_gsi;
	struct irq_router *irq;
	/* Nanoseconds of the machine's virtual clock; the PM timer counts from it. */
	uint64_t (*clock_ns)(void *opaque);
	void *clock_opaque;
	/* Called without the device lock held, on the vCPU thread that wrote the register. */
	void (*poweroff)(void *opaque);
	void (*reset)(void *opaque);
	void *cb_opaque;
};

struct acpi_pm {
	pthread_mutex_t lock; /* vCPU threads (register access) and the main thread (button) */
	struct acpi_pm_config cfg;
	uint16_t pm1_sts, pm1_en, pm1_cnt;
	uint8_t reset_reg;
	uint64_t tmr_epoch; /* timer value >> 23 when TMR_STS was last brought up to date */
	bool sci_level;
	struct io_bus *io;
	int h_evt, h_cnt, h_tmr, h_reset; /* io_bus handles */
};

/* Fills in the default ports and SCI; the caller adds irq, clock and callbacks. */
void acpi_pm_config_default(struct acpi_pm_config *cfg);
/* Initialise and register the blocks on the port I/O bus. Returns 0 or -errno. */
int acpi_pm_init(struct acpi_pm *pm, const struct acpi_pm_config *cfg, struct io_bus *io)
    __attribute__((warn_unused_result));
void acpi_pm_destroy(struct acpi_pm *pm);
/* Power-on state of the registers (machine reset); lowers the SCI. */
void acpi_pm_reset(struct acpi_pm *pm);
/* Press the power button: PWRBTN_STS, and the SCI if the guest enabled PWRBTN_EN. */
void acpi_pm_power_button(struct acpi_pm *pm);
/* The 24-bit PM timer value now. */
uint32_t acpi_pm_timer(struct acpi_pm *pm);

int acpi_pm_save(struct acpi_pm *pm, struct state_buf *s);
int acpi_pm_load(struct acpi_pm *pm, struct state_buf *s);

#endif
