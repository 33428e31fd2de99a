package vmboot

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// PowerOff flushes the filesystems and powers the machine off (QEMU exits).
// If power-off is refused it tries a restart, which QEMU's -no-reboot also
// turns into an exit. It returns only if both fail.
func PowerOff() error {
	unix.Sync()
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	if rerr := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); rerr != nil {
		return fmt.Errorf("power off: %w; restart: %w", err, rerr)
	}
	return nil
}
