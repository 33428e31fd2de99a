package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// Multi-row statements. SQLite runs in the process, so a statement costs no
// round trip: rows go in VALUES lists of a few fixed sizes (chunkSize), each
// size one cached statement. Every PostgreSQL statement is a round trip, so
// rows go in one statement whatever their number, as one array per column
// expanded by unnest (lists: = ANY of one array); its text never varies.

// col is a column of a multi-row statement with its PostgreSQL element type:
// text, float8, int8, int4 or bool.
type col struct{ name, pg string }

// colNames returns the names of cols.
func colNames(cols []col) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.name
	}
	return out
}

// stmtFunc returns the statement for a text, bound to the current transaction.
type stmtFunc func(ctx context.Context, text string) (*sql.Stmt, error)

// insertRows runs "INSERT INTO table (cols) <rows>" + suffix for rows of
// len(cols) values each; with scan set (a RETURNING suffix), every returned
// row goes to scan.
func (d dialect) insertRows(ctx context.Context, stmt stmtFunc, table string, cols []col, rows [][]any, suffix string, scan func(*sql.Rows) error) error {
	if len(rows) == 0 {
		return nil
	}
	head := "INSERT INTO " + table + " (" + strings.Join(colNames(cols), ", ") + ") "
	if d.name == postgresDialect.name {
		sel, args, err := pgUnnest(cols, rows)
		if err != nil {
			return err
		}
		return run(ctx, stmt, head+sel+suffix, args, scan)
	}
	k := len(cols)
	return eachChunk(len(rows), k, func(start, n int) error {
		args := make([]any, 0, n*k)
		for _, r := range rows[start : start+n] {
			args = append(args, r...)
		}
		return run(ctx, stmt, head+"VALUES "+d.values(n, k)+suffix, args, scan)
	})
}

// pgUnnest returns "SELECT * FROM unnest($1::type[], …)" and its arguments,
// one array per column, for rows of len(cols) values.
func pgUnnest(cols []col, rows [][]any) (string, []any, error) {
	var b strings.Builder
	args := make([]any, len(cols))
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(i+1) + "::" + c.pg + "[]")
		a, err := pgArray(c.pg, rows, i)
		if err != nil {
			return "", nil, fmt.Errorf("column %s: %w", c.name, err)
		}
		args[i] = a
	}
	return "SELECT * FROM unnest(" + b.String() + ")", args, nil
}

// inList runs prefix + " IN (vals)" + suffix (on PostgreSQL, prefix + " =
// ANY($1)" + suffix) for values of PostgreSQL type pg; with scan set, every
// returned row goes to scan.
func (d dialect) inList(ctx context.Context, stmt stmtFunc, prefix, pg string, vals []any, suffix string, scan func(*sql.Rows) error) error {
	if len(vals) == 0 {
		return nil
	}
	if d.name == postgresDialect.name {
		rows := make([][]any, len(vals))
		for i, v := range vals {
			rows[i] = []any{v}
		}
		a, err := pgArray(pg, rows, 0)
		if err != nil {
			return err
		}
		return run(ctx, stmt, prefix+" = ANY($1::"+pg+"[])"+suffix, []any{a}, scan)
	}
	return eachChunk(len(vals), 1, func(start, n int) error {
		return run(ctx, stmt, prefix+" IN "+d.placeholders(n)+suffix, vals[start:start+n], scan)
	})
}

// run executes one statement, as a query when scan is set.
func run(ctx context.Context, stmt stmtFunc, text string, args []any, scan func(*sql.Rows) error) error {
	s, err := stmt(ctx, text)
	if err != nil {
		return err
	}
	if scan == nil {
		_, err := s.ExecContext(ctx, args...)
		return err
	}
	rows, err := s.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// pgArray gathers column i of rows into a typed slice for a PostgreSQL array
// of element type pg; NULL (nil) is allowed in text columns only.
func pgArray(pg string, rows [][]any, i int) (any, error) {
	switch pg {
	case "text":
		out := make([]*string, len(rows))
		for j, r := range rows {
			switch v := r[i].(type) {
			case nil:
			case string:
				out[j] = &v
			default:
				return nil, fmt.Errorf("value %T for a text column", v)
			}
		}
		return out, nil
	case "float8":
		out := make([]float64, len(rows))
		for j, r := range rows {
			v, ok := r[i].(float64)
			if !ok {
				return nil, fmt.Errorf("value %T for a float8 column", r[i])
			}
			out[j] = v
		}
		return out, nil
	case "int8", "int4":
		out := make([]int64, len(rows))
		for j, r := range rows {
			switch v := r[i].(type) {
			case int64:
				out[j] = v
			case int:
				out[j] = int64(v)
			default:
				return nil, fmt.Errorf("value %T for an integer column", v)
			}
		}
		return out, nil
	case "bool":
		out := make([]bool, len(rows))
		for j, r := range rows {
			v, ok := r[i].(bool)
			if !ok {
				return nil, fmt.Errorf("value %T for a bool column", r[i])
			}
			out[j] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("no array type %q", pg)
}
