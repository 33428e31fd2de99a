package pipeline

import (
	"github.com/go-aleph/go-aleph/internal/pgtest"

	"context"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx database/sql driver, for the schema admin connection

	"github.com/go-aleph/go-aleph/store/sqlstore"
)

// newPostgresEnv is newEnv over PostgreSQL, in a fresh schema dropped at the end.
func newPostgresEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	dsn := pgtest.Schema(t, "pipeline_test_")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	db, err := sqlstore.Open(ctx, dsn, sqlstore.Options{})
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	t.Cleanup(func() { db.Close() }) // before the schema is dropped
	return newEnvOn(t, ctx, db, o)
}
