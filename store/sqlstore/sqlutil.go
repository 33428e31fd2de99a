package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// querier is what *sql.DB and *sql.Tx share, so that getters serve both Reader
// (outside transactions) and Tx (seeing the transaction's writes).
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// builder assembles one SQL text with numbered $N placeholders.
type builder struct {
	strings.Builder
	args []any
}

// arg adds a bound value and returns its placeholder.
func (b *builder) arg(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

// list returns "($1, $2, …)" for the values.
func (b *builder) list(vals []string) string {
	var s strings.Builder
	s.WriteByte('(')
	for i, v := range vals {
		if i > 0 {
			s.WriteString(", ")
		}
		s.WriteString(b.arg(v))
	}
	s.WriteByte(')')
	return s.String()
}

// where collects AND-ed conditions.
type where []string

func (w where) String() string {
	if len(w) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w, " AND ")
}

// nullStr maps "" to NULL.
func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// str reads a nullable text column.
func str(n sql.NullString) string { return n.String }

// nanos stores an instant as unix nanoseconds; the zero time is stored as 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// parseTime rebuilds a message.Time from its stored text.
func parseTime(text string) (message.Time, error) {
	var t message.Time
	if err := t.UnmarshalJSON([]byte(text)); err != nil {
		return t, fmt.Errorf("stored time %q: %w", text, err)
	}
	return t, nil
}

// timeText is the exact text to store for a message.Time.
func timeText(t message.Time) string { return t.String() }

// jsonList encodes a string list as a JSON array, or NULL when empty.
func jsonList(vals []string) (any, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return nil, fmt.Errorf("encode list: %w", err)
	}
	return string(b), nil
}

// parseList decodes a JSON array column; NULL is an empty list.
func parseList(n sql.NullString) ([]string, error) {
	if !n.Valid || n.String == "" {
		return nil, nil
	}
	var out []string
	if err := json.Unmarshal([]byte(n.String), &out); err != nil {
		return nil, fmt.Errorf("stored list: %w", err)
	}
	return out, nil
}

// rawOrNil turns a nullable text column into raw JSON, nil for NULL.
func rawOrNil(n sql.NullString) json.RawMessage {
	if !n.Valid {
		return nil
	}
	return json.RawMessage(n.String)
}

// nullRaw maps empty raw JSON to NULL.
func nullRaw(r json.RawMessage) any {
	if len(r) == 0 {
		return nil
	}
	return string(r)
}

// notFound turns sql.ErrNoRows into store.ErrNotFound and wraps other errors.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return fmt.Errorf("sqlstore: %s: %w", what, err)
}

// wrap adds context to an error, keeping nil as nil.
func wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlstore: %s: %w", what, err)
}

// distinct returns the values without duplicates, in first-seen order.
func distinct(vals []string) []string {
	seen := make(map[string]bool, len(vals))
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// collectStrings reads a single text column from every row.
func collectStrings(rows *sql.Rows, err error, what string) ([]string, error) {
	if err != nil {
		return nil, wrap(err, what)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, wrap(err, what)
		}
		out = append(out, s)
	}
	return out, wrap(rows.Err(), what)
}

// execAffected runs a statement and reports whether it changed at least one row.
func execAffected(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n > 0, nil
}

// stringArgs converts strings to statement arguments.
func stringArgs(vals []string) []any {
	out := make([]any, len(vals))
	for i, v := range vals {
		out[i] = v
	}
	return out
}
