/* ACPI PM1a event/control blocks, PM timer and reset register (ACPI 6.4 sections 4.8.3.1-4.8.3.3,
 * 4.8.3.6; register bits in tables 4.16-4.18).
 *
 * Linux (ACPICA) drives these: it reads PM1_STS and writes 1s back to clear what it handled,
 * enables PWRBTN_EN at boot for the fixed power button, polls the PM timer for calibration,
 * and powers off by writing SLP_TYP(S5) and then SLP_TYP|SLP_EN to PM1_CNT. Every register is
 * handled a byte at a time, so any access size at any offset inside a block behaves the same.
 *
 * There is no SMI handler: SMI_CMD is 0 in the FADT, so SCI_EN reads as 1 forever.
 * TMR_STS (the timer's bit 23 changed) is brought up to date whenever the guest looks at the
 * event block rather than by a host timer; guests do not enable TMR_EN, so an SCI for it is
 * only raised at such an access.
 */
#include <errno.h>
#include <string.h>

#define LOG_SUBSYS "acpi-pm"
#include "hw/acpi_pm.h"
#include "util/log.h"

#define STS_BITS                                                                             \
	(ACPI_PM1_TMR | ACPI_PM1_BM_STS | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | \
	 ACPI_PM1_RTC | ACPI_PM1_WAK)
#define EN_BITS	      (ACPI_PM1_TMR | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | ACPI_PM1_RTC)
#define SCI_BITS      EN_BITS
#define CNT_BM_RLD    (1u << 1)
#define CNT_STORED    (ACPI_PM1_CNT_SCI_EN | CNT_BM_RLD | ACPI_PM1_CNT_SLP_TYP_MASK)
#define RST_CPU	      0x04
#define STATE_VERSION 1

void acpi_pm_config_default(struct acpi_pm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->evt_port = ACPI_PM_EVT_PORT;
	cfg->cnt_port = ACPI_PM_CNT_PORT;
	cfg->tmr_port = ACPI_PM_TMR_PORT;
	cfg->reset_port = ACPI_PM_RESET_PORT;
	cfg->sci_gsi = ACPI_PM_SCI_IRQ;
}

/* The free-running 3.579545 MHz count since the clock's zero, not wrapped. */
static uint64_t timer_ticks(struct acpi_pm *pm)
{
	uint64_t ns = pm->cfg.clock_ns ? pm->cfg.clock_ns(pm->cfg.clock_opaque) : 0;
	return (uint64_t)((unsigned __int128)ns * ACPI_PM_TIMER_HZ / 1000000000u);
}

/* Called with the lock held. */
static void update_sci(struct acpi_pm *pm, bool force)
{
	bool level = (pm->pm1_sts & pm->pm1_en & SCI_BITS) != 0;
	if (level == pm->sci_level && !force)
		return;
	pm->sci_level = level;
	irq_line_set(pm->cfg.irq, pm->cfg.sci_gsi, level);
}

static void update_timer_status(struct acpi_pm *pm)
{
	uint64_t epoch = timer_ticks(pm) >> 23;
	if (epoch != pm->tmr_epoch) {
		pm->tmr_epoch = epoch;
		pm->pm1_sts |= ACPI_PM1_TMR;
	}
}

static uint64_t evt_read(void *opaque, uint64_t off, unsigned size)
{
	struct acpi_pm *pm = opaque;
	uint64_t v = 0;
	pthread_mutex_lock(&pm->lock);
	update_timer_status(pm);
	update_sci(pm, false);
	uint32_t regs = pm->pm1_sts | (uint32_t)pm->pm1_en << 16;
	for (unsigned i = 0; i < size && off + i < ACPI_PM_EVT_LEN; i++)
		v |= (uint64_t)((regs >> (8 * (off + i))) & 0xff) << (8 * i);
	pthread_mutex_unlock(&pm->lock);
	return v;
}

static void evt_write(void *opaque, uint64_t off, uint64_t value, unsigned size)
{
	struct acpi_pm *pm = opaque;
	pthread_mutex_lock(&pm->lock);
	update_timer_status(pm);
	for (unsigned i = 0; i < size && off + i < ACPI_PM_EVT_LEN; i++) {
		unsigned byte = (unsigned)(off + i);
		uint16_t b = (uint16_t)((value >> (8 * i)) & 0xff);
		if (byte < 2) { /* PM1_STS: write 1 to clear */
			pm->pm1_sts &= (uint16_t) ~(b << (8 * byte));
		} else {
			unsigned sh = 8 * (byte - 2);
			pm->pm1_en = (uint16_t)((pm->pm1_en & ~(0xff << sh)) | (b << sh));
		}
	}
	if (pm->pm1_en & ~EN_BITS)
		log_guest_error("PM1_EN write sets reserved bits 0x%x", pm->pm1_en & ~EN_BITS);
	pm->pm1_en &= EN_BITS;
	update_sci(pm, false);
	pthread_mutex_unlock(&pm->lock);
}

static uint64_t cnt_read(void *opaque, uint64_t off, unsigned size)
{
	struct acpi_pm *pm = opaque;
	uint64_t v = 0;
	pthread_mutex_lock(&pm->lock);
	uint16_t reg = pm->pm1_cnt | ACPI_PM1_CNT_SCI_EN; /* SLP_EN reads as 0 */
	for (unsigned i = 0; i < size && off + i < ACPI_PM_CNT_LEN; i++)
		v |= (uint64_t)((reg >> (8 * (off + i))) & 0xff) << (8 * i);
	pthread_mutex_unlock(&pm->lock);
	return v;
}

static void cnt_write(void *opaque, uint64_t off, uint64_t value, unsigned size)
{
	struct acpi_pm *pm = opaque;
	bool poweroff = false;
	pthread_mutex_lock(&pm->lock);
	uint16_t reg = pm->pm1_cnt;
	for (unsigned i = 0; i < size && off + i < ACPI_PM_CNT_LEN; i++) {
		unsigned sh = 8 * (unsigned)(off + i);
		reg = (uint16_t)((reg & ~(0xff << sh)) | (((value >> (8 * i)) & 0xff) << sh));
	}
	pm->pm1_cnt = (reg & CNT_STORED) | ACPI_PM1_CNT_SCI_EN;
	if (reg & ACPI_PM1_CNT_SLP_EN) {
		unsigned typ = (reg & ACPI_PM1_CNT_SLP_TYP_MASK) >> ACPI_PM1_CNT_SLP_TYP_SHIFT;
		if (typ == ACPI_PM_SLP_TYP_S5) {
			log_info("guest entered S5 (soft off)");
			poweroff = true;
		} else if (typ == ACPI_PM_SLP_TYP_S0) {
			log_debug("guest wrote SLP_EN for S0: nothing to do");
		} else {
			log_warn(
			    "guest asked for sleep type %u, which this machine does not support",
			    typ);
		}
	}
	pthread_mutex_unlock(&pm->lock);
	if (poweroff && pm->cfg.poweroff)
		pm->cfg.poweroff(pm->cfg.cb_opaque);
}

static uint64_t tmr_read(void *opaque, uint64_t off, unsigned size)
{
	struct acpi_pm *pm = opaque;
	uint32_t t = acpi_pm_timer(pm);
	uint64_t v = 0;
	for (unsigned i = 0; i < size && off + i < ACPI_PM_TMR_LEN; i++)
		v |= (uint64_t)((t >> (8 * (off + i))) & 0xff) << (8 * i);
	return v;
}

static void tmr_write(void *opaque, uint64_t off, uint64_t value, unsigned size)
{
	log_guest_error("write of 0x%llx to the read-only PM timer", (unsigned long long)value);
}

static uint64_t reset_read(void *opaque, uint64_t off, unsigned size)
{
	struct acpi_pm *pm = opaque;
	pthread_mutex_lock(&pm->lock);
	uint8_t v = pm->reset_reg;
	pthread_mutex_unlock(&pm->lock);
	return v;
}

static void reset_write(void *opaque, uint64_t off, uint64_t value, unsigned size)
{
	struct acpi_pm *pm = opaque;
	/* RST_CPU (bit 2) going to 1 resets; SYS_RST (bit 1) and FULL_RST (bit 3) only say how
	 * hard, which for a VM is the same thing. RST_CPU reads back as 0. */
	pthread_mutex_lock(&pm->lock);
	pm->reset_reg = (uint8_t)(value & ~RST_CPU);
	pthread_mutex_unlock(&pm->lock);
	if (value & RST_CPU) {
		log_info("guest reset through the reset register (0x%02x)",
			 (unsigned)(value & 0xff));
		if (pm->cfg.reset)
			pm->cfg.reset(pm->cfg.cb_opaque);
	}
}

static const struct io_ops evt_ops = {.read = evt_read, .write = evt_write};
static const struct io_ops cnt_ops = {.read = cnt_read, .write = cnt_write};
static const struct io_ops tmr_ops = {.read = tmr_read, .write = tmr_write};
static const struct io_ops reset_ops = {.read = reset_read, .write = reset_write};

uint32_t acpi_pm_timer(struct acpi_pm *pm)
{
	return (uint32_t)(timer_ticks(pm) & 0xffffff);
}

static void reset_regs(struct acpi_pm *pm)
{
	pm->pm1_sts = 0;
	pm->pm1_en = 0;
	pm->pm1_cnt = ACPI_PM1_CNT_SCI_EN;
	pm->reset_reg = 0;
	pm->tmr_epoch = timer_ticks(pm) >> 23;
}

static void unregister(struct acpi_pm *pm)
{
	int *handles[] = {&pm->h_evt, &pm->h_cnt, &pm->h_tmr, &pm->h_reset};
	for (unsigned i = 0; i < sizeof(handles) / sizeof(handles[0]); i++) {
		if (*handles[i] > 0)
			io_bus_remove(pm->io, *handles[i]);
		*handles[i] = 0;
	}
}

int acpi_pm_init(struct acpi_pm *pm, const struct acpi_pm_config *cfg, struct io_bus *io)
{
	int ret;
	memset(pm, 0, sizeof(*pm));
	if (!cfg->evt_port || !cfg->cnt_port || !cfg->tmr_port)
		return -EINVAL;
	pm->cfg = *cfg;
	pm->io = io;
	ret = pthread_mutex_init(&pm->lock, NULL);
	if (ret)
		return -ret;
	reset_regs(pm);

	ret = io_bus_register(io, cfg->evt_port, ACPI_PM_EVT_LEN, &evt_ops, pm, "acpi-pm1a-evt");
	if (ret < 0)
		goto err_reg;
	pm->h_evt = ret;
	ret = io_bus_register(io, cfg->cnt_port, ACPI_PM_CNT_LEN, &cnt_ops, pm, "acpi-pm1a-cnt");
	if (ret < 0)
		goto err_reg;
	pm->h_cnt = ret;
	ret = io_bus_register(io, cfg->tmr_port, ACPI_PM_TMR_LEN, &tmr_ops, pm, "acpi-pm-tmr");
	if (ret < 0)
		goto err_reg;
	pm->h_tmr = ret;
	if (cfg->reset_port) {
		/* One byte at 0xcf9 sits inside the PCI host's 0xcf8 CONFIG_ADDRESS dword: a
		 * higher priority makes byte accesses there ours while the dword at 0xcf8 (which
		 * starts below us) still goes to the PCI host. */
		ret = io_bus_register_prio(io, cfg->reset_port, 1, &reset_ops, pm, "acpi-reset", 1);
		if (ret < 0)
			goto err_reg;
		pm->h_reset = ret;
	}
	return 0;

err_reg:
	unregister(pm);
	pthread_mutex_destroy(&pm->lock);
	return ret;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	unregister(pm);
	pthread_mutex_destroy(&pm->lock);
}

void acpi_pm_reset(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	reset_regs(pm);
	update_sci(pm, true);
	pthread_mutex_unlock(&pm->lock);
}

void acpi_pm_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->pm1_sts |= ACPI_PM1_PWRBTN;
	if (!(pm->pm1_en & ACPI_PM1_PWRBTN))
		log_info("power button pressed, but the guest has not enabled its event");
	update_sci(pm, false);
	pthread_mutex_unlock(&pm->lock);
}

int acpi_pm_save(struct acpi_pm *pm, struct state_buf *s)
{
	pthread_mutex_lock(&pm->lock);
	state_put_u8(s, STATE_VERSION);
	state_put_u16(s, pm->pm1_sts);
	state_put_u16(s, pm->pm1_en);
	state_put_u16(s, pm->pm1_cnt);
	state_put_u8(s, pm->reset_reg);
	state_put_u64(s, pm->tmr_epoch);
	pthread_mutex_unlock(&pm->lock);
	return state_status(s);
}

int acpi_pm_load(struct acpi_pm *pm, struct state_buf *s)
{
	uint8_t version = state_get_u8(s);
	uint16_t sts = state_get_u16(s);
	uint16_t en = state_get_u16(s);
	uint16_t cnt = state_get_u16(s);
	uint8_t rst = state_get_u8(s);
	uint64_t epoch = state_get_u64(s);
	int ret = state_status(s);
	if (ret)
		return ret;
	if (version != STATE_VERSION) {
		log_error("ACPI PM state version %u, expected %u", version, STATE_VERSION);
		return -EINVAL;
	}
	if ((sts & ~STS_BITS) || (en & ~EN_BITS) || (cnt & ~CNT_STORED) || (rst & RST_CPU)) {
		log_error("ACPI PM state has reserved register bits set");
		return -EINVAL;
	}
	pthread_mutex_lock(&pm->lock);
	pm->pm1_sts = sts;
	pm->pm1_en = en;
	pm->pm1_cnt = cnt | ACPI_PM1_CNT_SCI_EN;
	pm->reset_reg = rst;
	pm->tmr_epoch = epoch;
	update_sci(pm, true);
	pthread_mutex_unlock(&pm->lock);
	return 0;
}
