// Package output writes the CLI's two output forms: machine JSON (indented, no
// HTML escaping, number text preserved) and human tables aligned with
// text/tabwriter. Text that comes from the network is sanitized before it reaches
// a terminal: control characters are shown escaped, never sent raw.
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// JSON writes v as JSON indented by two spaces, followed by a newline.
func JSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode json output: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// RawJSON writes raw JSON re-indented by two spaces (keys, order and number text
// unchanged), followed by a newline.
func RawJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return fmt.Errorf("node answer is not valid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// CompactJSON writes raw JSON on one line, followed by a newline.
func CompactJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return fmt.Errorf("node answer is not valid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// Sanitize makes s safe to print in a table cell: tabs and line breaks become
// spaces, and other control characters (C0, DEL, C1, and invalid UTF-8) are
// written as Go escapes, so a node cannot send terminal escape sequences.
func Sanitize(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			q := fmt.Sprintf("%+q", string(r))
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Truncate shortens s to at most n characters, ending with "…" when cut.
func Truncate(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// Time formats t for humans in UTC, or "-" when zero.
func Time(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// Table is a human table: a header row and rows of cells.
type Table struct {
	headers []string
	rows    [][]string
}

// NewTable starts a table with the given column headers.
func NewTable(headers ...string) *Table { return &Table{headers: headers} }

// Row adds a row; missing cells are empty and extra cells are dropped.
func (t *Table) Row(cells ...string) {
	row := make([]string, len(t.headers))
	for i := range row {
		if i < len(cells) {
			row[i] = cells[i]
		}
	}
	t.rows = append(t.rows, row)
}

// Len returns the number of rows.
func (t *Table) Len() int { return len(t.rows) }

// Write prints the table, columns separated by at least two spaces. Empty cells
// print as "-".
func (t *Table) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	write := func(cells []string) {
		for i, c := range cells {
			c = Sanitize(c)
			if c == "" {
				c = "-"
			}
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprint(tw, "\n")
	}
	write(t.headers)
	for _, r := range t.rows {
		write(r)
	}
	return tw.Flush()
}

// Fields prints label/value pairs, one per line, with the values aligned.
func Fields(w io.Writer, pairs [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, p := range pairs {
		v := Sanitize(p[1])
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\n", Sanitize(p[0]), v)
	}
	return tw.Flush()
}
