package pipeline

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

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx database/sql driver, for the schema admin connection

	"github.com/go-aleph/go-aleph/store/sqlstore"
)

// postgresDSN returns ALEPH_TEST_POSTGRES, skipping the test when it is unset,
// and failing instead when CI is set: PostgreSQL tests are never silently
// skipped in CI.
func postgresDSN(t testing.TB) string {
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

// newPostgresEnv is newEnv over PostgreSQL, in a fresh schema dropped at the end.
func newPostgresEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	dsn := postgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("connect postgres: %v", err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "pipeline_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	u, err := url.Parse(dsn)
	if err != nil || !strings.HasPrefix(u.Scheme, "postgres") {
		t.Fatalf("ALEPH_TEST_POSTGRES must be a postgres:// URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := sqlstore.Open(ctx, u.String(), sqlstore.Options{})
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	t.Cleanup(func() { db.Close() }) // before the schema is dropped
	return newEnvOn(t, ctx, db, o)
}
