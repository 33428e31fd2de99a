// Package pgtest gives tests a PostgreSQL database of their own: the server named by
// ALEPH_TEST_POSTGRES, in a fresh schema that is dropped when the test ends. Without
// that variable the test is skipped locally and fails under CI, so PostgreSQL tests
// are never silently skipped there.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx database/sql driver, for the admin connection
)

// DSN returns ALEPH_TEST_POSTGRES, skipping the test when it is unset and failing
// instead when CI is set.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("ALEPH_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("ALEPH_TEST_POSTGRES is not set; PostgreSQL tests must run in CI")
		}
		t.Skip("ALEPH_TEST_POSTGRES is not set (e.g. postgres://aleph:aleph@127.0.0.1:5432/aleph_test?sslmode=disable); skipping PostgreSQL")
	}
	return dsn
}

// Schema creates a schema named prefix plus random hex, registers its removal at
// the end of the test, and returns a DSN whose search_path selects it. Register the
// cleanup of anything opened on that DSN after calling Schema, so it runs first.
func Schema(t testing.TB, prefix string) string {
	t.Helper()
	dsn := DSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := prefix + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	return WithSearchPath(t, dsn, schema)
}

// WithSearchPath adds a search_path run-time parameter to a URL or key=value DSN.
func WithSearchPath(t testing.TB, dsn, schema string) string {
	t.Helper()
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("pgtest: parse ALEPH_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
