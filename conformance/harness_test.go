package conformance

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseStep(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    string // step name; empty when an error is expected
		wantOK  bool
		wantErr string
	}{
		{name: "passed step", line: `{"step":"getPost","ok":true,"detail":{"item_hash":"ab"}}`, want: "getPost", wantOK: true},
		{name: "failed step", line: `{"step":"forget","ok":false,"detail":"CheckError: boom"}`, want: "forget"},
		{name: "no detail", line: `{"step":"done","ok":true}`, want: "done", wantOK: true},
		{name: "sdk console output", line: `[Aleph-NodeWebSocket] Connection established`, wantErr: "not a step line"},
		{name: "empty line", line: ``, wantErr: "not a step line"},
		{name: "missing ok", line: `{"step":"x","detail":""}`, wantErr: "without ok"},
		{name: "ok not a bool", line: `{"step":"x","ok":"yes"}`, wantErr: "not a step line"},
		{name: "missing step", line: `{"ok":true}`, wantErr: "without a step name"},
		{name: "unknown field", line: `{"step":"x","ok":true,"extra":1}`, wantErr: "not a step line"},
		{name: "two objects", line: `{"step":"x","ok":true}{}`, wantErr: "trailing data"},
		{name: "json array", line: `[1,2]`, wantErr: "not a step line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseStep([]byte(tt.line))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseStep(%q) error = %v, want one containing %q", tt.line, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseStep(%q): %v", tt.line, err)
			}
			if s.Step != tt.want || *s.OK != tt.wantOK {
				t.Fatalf("parseStep(%q) = %q ok=%t, want %q ok=%t", tt.line, s.Step, *s.OK, tt.want, tt.wantOK)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	yes, no := true, false
	done := step{Step: "done", OK: &yes}
	tests := []struct {
		name string
		res  scenarioResult
		want int
	}{
		{name: "clean run", res: scenarioResult{steps: []step{{Step: "setup", OK: &yes}, done}}, want: 0},
		{name: "failed step", res: scenarioResult{steps: []step{{Step: "setup", OK: &no}}, exitErr: errExit}, want: 3},
		{name: "no done step", res: scenarioResult{steps: []step{{Step: "setup", OK: &yes}}}, want: 1},
		{name: "no output", res: scenarioResult{}, want: 1},
		{name: "stray line", res: scenarioResult{steps: []step{done}, badLines: []string{"x"}}, want: 1},
		{name: "timeout", res: scenarioResult{steps: []step{done}, timedOut: true}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.res.failures(); len(got) != tt.want {
				t.Fatalf("failures() = %q, want %d entries", got, tt.want)
			}
		})
	}
}

var errExit = errors.New("exit status 1")

// TestScenarioFailsAgainstBrokenNode runs the real scenario against a node
// that answers /api/v0/version but rejects every message with a 500: the
// scenario must report createPost.sync as failed, stop there and exit non-zero.
func TestScenarioFailsAgainstBrokenNode(t *testing.T) {
	node := requireNode(t)
	requireSDK(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v0/version", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"version":"broken"}`))
	})
	mux.HandleFunc("POST /api/v0/messages", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "broken on purpose", http.StatusInternalServerError)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	res := runScenario(t, node, srv.URL, "ws"+strings.TrimPrefix(srv.URL, "http"))
	if res.exitErr == nil {
		t.Fatal("scenario exited 0 against a broken node")
	}
	if len(res.badLines) != 0 {
		t.Fatalf("scenario wrote non-step lines to stdout: %q", res.badLines)
	}
	var names []string
	for _, s := range res.steps {
		names = append(names, s.Step)
	}
	if got, want := strings.Join(names, ","), "setup,version,createPost.sync"; got != want {
		t.Fatalf("steps = %s, want %s", got, want)
	}
	last := res.steps[len(res.steps)-1]
	if *last.OK || !strings.Contains(string(last.Detail), "500") {
		t.Fatalf("last step = ok %t detail %s, want a failure naming the 500", *last.OK, last.Detail)
	}
	if len(res.failures()) == 0 {
		t.Fatal("failures() is empty for a failed run")
	}
}
