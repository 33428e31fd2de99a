package resolve

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestExecutorOf(t *testing.T) {
	for _, tc := range []struct {
		meta, want string
		ok         bool
	}{
		{``, "", true},
		{`null`, "", true},
		{`{"name":"x"}`, "", true},
		{`{"executor":"qemu"}`, ExecutorQEMU, true},
		{`{"executor":"sandbox"}`, ExecutorSandbox, true},
		{`{"executor":"vm"}`, ExecutorVM, true},
		{`{"executor":"firecracker"}`, ExecutorVM, true},
		{`{"executor":"xen"}`, "", false},
		{`{"executor":3}`, "", false},
		{`{"executor":""}`, "", false},
	} {
		got, err := executorOf(json.RawMessage(tc.meta))
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("executorOf(%s) = %q, %v", tc.meta, got, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidProgram) {
			t.Errorf("executorOf(%s): %v is not ErrInvalidProgram", tc.meta, err)
		}
	}
}
