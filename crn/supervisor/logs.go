package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/go-aleph/go-aleph/crn/api"
)

const (
	logLines    = 1000  // lines kept per program
	logLineSize = 16384 // longer lines are cut
)

// logBuffer keeps a program's latest console lines, across executions.
type logBuffer struct {
	mu      sync.Mutex
	now     func() time.Time
	lines   []api.LogEntry
	partial []byte
}

func (b *logBuffer) add(stream, line string) {
	b.lines = append(b.lines, api.LogEntry{Time: b.now().UTC(), Stream: stream, Message: line})
	if len(b.lines) > logLines {
		b.lines = slices.Delete(b.lines, 0, len(b.lines)-logLines)
	}
}

// Write splits console output into lines (the sandbox merges stdout and
// stderr, so every line is stdout).
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			b.partial = append(b.partial, p...)
			if len(b.partial) > logLineSize {
				b.add("stdout", string(b.partial[:logLineSize]))
				b.partial = b.partial[:0]
			}
			break
		}
		line := append(b.partial, p[:i]...)
		if len(line) > logLineSize {
			line = line[:logLineSize]
		}
		b.add("stdout", string(bytes.TrimSuffix(line, []byte("\r"))))
		b.partial = b.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (b *logBuffer) snapshot() []api.LogEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := slices.Clone(b.lines)
	if len(b.partial) > 0 {
		out = append(out, api.LogEntry{Time: b.now().UTC(), Stream: "stdout", Message: string(b.partial)})
	}
	return out
}

// buffer returns the program's log buffer, keeping logPrograms of them.
func (p *Pool) buffer(hash string, create bool) *logBuffer {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.logs[hash]
	if b != nil || !create {
		return b
	}
	b = &logBuffer{now: p.cfg.Now}
	p.logs[hash] = b
	p.logOrder = append(p.logOrder, hash)
	if len(p.logOrder) > logPrograms {
		old := p.logOrder[0]
		p.logOrder = p.logOrder[1:]
		if _, live := p.execs[old]; !live {
			delete(p.logs, old)
		} else {
			p.logOrder = append(p.logOrder, old)
		}
	}
	return b
}

// console is the writer the executor sends the guest's console to.
func (p *Pool) console(hash string) io.Writer {
	b := p.buffer(hash, true)
	if p.cfg.Log.Enabled(context.Background(), slog.LevelDebug) {
		return io.MultiWriter(b, prefixWriter{w: os.Stderr, prefix: fmt.Sprintf("[vm %.8s] ", hash)})
	}
	return b
}

// logLine records a line of the node's own about a program.
func (p *Pool) logLine(hash, stream, line string) {
	b := p.buffer(hash, true)
	b.mu.Lock()
	b.add(stream, line)
	b.mu.Unlock()
}

type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (pw prefixWriter) Write(p []byte) (int, error) {
	for _, l := range bytes.SplitAfter(p, []byte("\n")) {
		if len(l) > 0 {
			_, _ = pw.w.Write(append([]byte(pw.prefix), l...))
		}
	}
	return len(p), nil
}
