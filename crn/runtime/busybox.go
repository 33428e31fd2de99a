package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// busyboxApplets lists the applet paths the busybox binary knows, sorted.
func busyboxApplets(ctx context.Context, busybox string) ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, busybox, "--list-full")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list-full: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var applets []string
	for line := range strings.Lines(string(out)) {
		if line = strings.TrimSpace(line); line != "" {
			applets = append(applets, line)
		}
	}
	if len(applets) == 0 {
		return nil, errors.New("busybox --list-full: no applets")
	}
	slices.Sort(applets)
	return slices.Compact(applets), nil
}
