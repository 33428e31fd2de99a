package vmboot

import (
	"bytes"
	"strings"
	"testing"
)

func TestDetectOutsideVM(t *testing.T) {
	// Not PID 1 (and the root is not an initramfs): sandbox mode, whatever
	// the host's command line says.
	cl, vm, err := Detect()
	if vm || err != nil || cl != (Cmdline{}) {
		t.Fatalf("Detect = %+v, %v, %v; want no VM", cl, vm, err)
	}
}

func TestNewLogger(t *testing.T) {
	for _, debug := range []bool{false, true} {
		var buf bytes.Buffer
		log := NewLogger(&buf, debug)
		log.Debug("step", "k", 1)
		log.Info("booted")
		out := buf.String()
		if strings.Contains(out, "time=") || !strings.Contains(out, "msg=booted component=aleph-init") {
			t.Errorf("debug=%v: %q", debug, out)
		}
		if strings.Contains(out, "msg=step") != debug {
			t.Errorf("debug=%v: debug line present = %v", debug, !debug)
		}
	}
}
