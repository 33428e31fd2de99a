package sqlstore

import (
	"github.com/go-aleph/go-aleph/internal/pgtest"

	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// Benchmarks (run with -cpu 1):
//
//	go test -run '^$' -bench . -cpu 1 ./store/sqlstore
//
// ALEPH_BENCH_MESSAGES sets how many messages the query benchmarks seed
// (default 100,000); ALEPH_TEST_POSTGRES enables the PostgreSQL runs. Each
// benchmark reports per-call latency percentiles (p50-ms, p99-ms); the query
// benchmarks also report the process RSS after seeding (rss-seeded-MiB) and at
// the end of the run (rss-MiB), both after returning freed heap to the OS, and
// the peak RSS of the process so far (peak-rss-MiB).

func TestMain(m *testing.M) {
	code := m.Run()
	closeSeeds()
	os.Exit(code)
}

func benchMessageCount(b testing.TB) int {
	v := os.Getenv("ALEPH_BENCH_MESSAGES")
	if v == "" {
		return 100_000
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || n <= 0 {
		b.Fatalf("ALEPH_BENCH_MESSAGES=%q: want a positive integer", v)
	}
	return n
}

// corpus sizes of the generated data set.
const (
	benchSenders  = 10_000
	benchChannels = 50
	benchRefs     = 2_000
	benchKeys     = 20
	benchPostType = 30
	benchTags     = 100
)

func benchSender(i int) string  { return fmt.Sprintf("0x%040x", i*2654435761%(1<<40)) }
func benchChannel(i int) string { return fmt.Sprintf("channel-%d", i) }
func benchRef(i int) string     { return fmt.Sprintf("ref-%d", i) }
func benchKey(i int) string     { return fmt.Sprintf("key-%d", i) }

var benchBase = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// genMessage deterministically builds the i-th message of the data set: mostly
// POSTs, 10,000 senders, 50 channels, increasing times with jitter.
func genMessage(i int) *store.Message {
	rng := mrand.New(mrand.NewPCG(uint64(i), 0x5eed))
	var typ message.Type
	switch r := rng.IntN(100); {
	case r < 50:
		typ = message.TypePost
	case r < 70:
		typ = message.TypeAggregate
	case r < 90:
		typ = message.TypeStore
	case r < 95:
		typ = message.TypeProgram
	case r < 98:
		typ = message.TypeInstance
	default:
		typ = message.TypeForget
	}
	sender := benchSender(rng.IntN(benchSenders))
	owner := sender
	if rng.IntN(10) == 0 {
		owner = benchSender(rng.IntN(benchSenders))
	}
	chain := message.ChainETH
	if r := rng.IntN(20); r < 3 {
		chain = message.ChainSOL
	} else if r == 3 {
		chain = message.ChainAVAX
	}
	channel := ""
	if rng.IntN(10) != 0 {
		channel = benchChannel(rng.IntN(benchChannels))
	}
	sec := 1.6e9 + float64(i)*0.75 + float64(rng.IntN(500_000))/1e6
	t := message.TimeFromSeconds(math.Round(sec*1e6) / 1e6)
	m := &store.Message{Owner: owner, ReceptionTime: benchBase.Add(time.Duration(i) * time.Millisecond), Status: message.StatusProcessed}
	if rng.IntN(100) == 0 {
		m.Status = message.StatusRemoving
	}
	var inner string
	switch typ {
	case message.TypePost:
		m.ContentType = fmt.Sprintf("type-%d", rng.IntN(benchPostType))
		if rng.IntN(10) < 3 {
			m.ContentRef = benchRef(rng.IntN(benchRefs))
		}
		inner = fmt.Sprintf(`"type":%q,"ref":%q`, m.ContentType, m.ContentRef)
	case message.TypeAggregate:
		m.ContentKey = benchKey(rng.IntN(benchKeys))
		inner = fmt.Sprintf(`"key":%q`, m.ContentKey)
	case message.TypeStore:
		m.ContentItemHash = message.HashContent([]byte(fmt.Sprint("file", i)))
		m.PaymentType = "hold"
		inner = fmt.Sprintf(`"item_type":"storage","item_hash":%q`, m.ContentItemHash)
	case message.TypeProgram, message.TypeInstance:
		m.PaymentType = []string{"hold", "superfluid", "credit"}[rng.IntN(3)]
		inner = `"allow_amend":false,"resources":{"vcpus":1,"memory":2048}`
	default:
		inner = fmt.Sprintf(`"hashes":[%q]`, message.HashContent([]byte(fmt.Sprint("target", i))))
	}
	for range rng.IntN(3) {
		m.Tags = append(m.Tags, fmt.Sprintf("tag-%d", rng.IntN(benchTags)))
	}
	content := fmt.Sprintf(`{"address":%q,"time":%s,%s,"content":{"body":"message number %d of the benchmark corpus, with some text to give it a realistic size","n":%d}}`,
		owner, t.String(), inner, i, rng.IntN(1_000_000))
	m.Message = message.Message{Chain: chain, Sender: sender, Type: typ, Channel: channel, Time: t, ItemType: message.ItemInline,
		ItemContent: content, ItemHash: message.HashContent([]byte(content)), Signature: "0x" + strings.Repeat("ab", 65)}
	m.Content = []byte(content)
	m.Size = int64(len(content))
	return m
}

type countKey struct{ kind, address, typ, status string }

func countMessage(counts map[countKey]int64, m *store.Message) {
	t, s := string(m.Type), string(m.Status)
	counts[countKey{"", "", t, s}]++
	counts[countKey{"s", m.Sender, t, s}]++
	counts[countKey{"o", m.Owner, t, s}]++
}

// seeded is a store filled once per process and backend.
type seeded struct {
	db        *DB
	n         int
	seedTime  time.Duration
	rssSeeded float64
	cleanup   func()
	err       error
}

var (
	seedMu sync.Mutex
	seeds  = map[string]*seeded{}
)

func closeSeeds() {
	seedMu.Lock()
	defer seedMu.Unlock()
	for _, s := range seeds {
		if s.cleanup != nil {
			s.cleanup()
		}
	}
}

// memMiB returns the process's resident set size (after returning freed heap
// to the OS) and its peak, in MiB.
func memMiB() (rss, peak float64) {
	runtime.GC()
	debug.FreeOSMemory()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for key, dst := range map[string]*float64{"VmRSS:": &rss, "VmHWM:": &peak} {
			if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				*dst = kb / 1024
			}
		}
	}
	return rss, peak
}

// seededStore returns the shared store of a backend, seeding it on first use.
func seededStore(b *testing.B, backend string) *seeded {
	b.Helper()
	n := benchMessageCount(b)
	var dsn string
	if backend == "postgres" {
		dsn = pgtest.DSN(b)
	}
	seedMu.Lock()
	defer seedMu.Unlock()
	if s, ok := seeds[backend]; ok {
		if s.err != nil {
			b.Fatal(s.err)
		}
		return s
	}
	s := &seeded{n: n}
	seeds[backend] = s
	ctx := context.Background()
	start := time.Now()
	switch backend {
	case "sqlite":
		dir, err := os.MkdirTemp("", "aleph-bench-")
		if err != nil {
			s.err = err
			b.Fatal(err)
		}
		s.db, s.err = Open(ctx, dir+"/bench.db", Options{})
		s.cleanup = func() {
			if s.db != nil {
				s.db.Close()
			}
			os.RemoveAll(dir)
		}
		if s.err == nil {
			s.err = seedSQLite(ctx, s.db, n)
		}
	case "postgres":
		s.db, s.cleanup, s.err = openBenchPostgres(ctx, dsn)
		if s.err == nil {
			s.err = seedPostgres(ctx, s.db, n)
		}
	}
	if s.err != nil {
		b.Fatalf("seed %s: %v", backend, s.err)
	}
	s.seedTime = time.Since(start)
	var peak float64
	s.rssSeeded, peak = memMiB()
	b.Logf("%s: seeded %d messages in %v; RSS %.0f MiB (peak %.0f MiB)", backend, n, s.seedTime.Round(time.Millisecond), s.rssSeeded, peak)
	return s
}

// seedSQLite writes n messages with prepared statements, 50,000 per transaction.
func seedSQLite(ctx context.Context, db *DB, n int) error {
	counts := map[countKey]int64{}
	const chunk = 50_000
	for start := 0; start < n; start += chunk {
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			insM, err := tx.PrepareContext(ctx, insertMessageSQL)
			if err != nil {
				return err
			}
			defer insM.Close()
			insT, err := tx.PrepareContext(ctx, "INSERT INTO message_tags (item_hash, tag, time) VALUES ($1, $2, $3)")
			if err != nil {
				return err
			}
			defer insT.Close()
			for i := start; i < min(start+chunk, n); i++ {
				m := genMessage(i)
				args, _, err := messageArgs(m)
				if err != nil {
					return err
				}
				if _, err := insM.ExecContext(ctx, args...); err != nil {
					return err
				}
				for _, tag := range distinct(m.Tags) {
					if _, err := insT.ExecContext(ctx, m.ItemHash, tag, m.Time.Seconds()); err != nil {
						return err
					}
				}
				countMessage(counts, m)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, "INSERT INTO message_counts (kind, address, type, status, n) VALUES ($1, $2, $3, $4, $5)")
		if err != nil {
			return err
		}
		defer ins.Close()
		for k, v := range counts {
			if _, err := ins.ExecContext(ctx, k.kind, k.address, k.typ, k.status, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// openBenchPostgres opens a store in a fresh schema and returns its cleanup.
func openBenchPostgres(ctx context.Context, dsn string) (*DB, func(), error) {
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, nil, err
	}
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	schema := "aleph_bench_" + hex.EncodeToString(rb[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return nil, nil, err
	}
	drop := func() {
		_, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	}
	u := dsn
	if strings.Contains(u, "?") {
		u += "&search_path=" + schema
	} else {
		u += "?search_path=" + schema
	}
	db, err := Open(ctx, u, Options{})
	if err != nil {
		drop()
		return nil, nil, err
	}
	return db, func() { db.Close(); drop() }, nil
}

// seedPostgres copies n messages with COPY (pgx CopyFrom), then analyzes.
func seedPostgres(ctx context.Context, db *DB, n int) error {
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	counts := map[countKey]int64{}
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		// Messages, then their tags in a second pass (regenerated, so that
		// seeding holds no more than one message in memory).
		i := 0
		_, err := pc.CopyFrom(ctx, pgx.Identifier{"messages"}, messageColumns, pgx.CopyFromFunc(func() ([]any, error) {
			if i >= n {
				return nil, nil
			}
			m := genMessage(i)
			i++
			args, _, err := messageArgs(m)
			countMessage(counts, m)
			return args, err
		}))
		if err != nil {
			return fmt.Errorf("copy messages: %w", err)
		}
		i = 0
		var pending [][]any
		_, err = pc.CopyFrom(ctx, pgx.Identifier{"message_tags"}, []string{"item_hash", "tag", "time"}, pgx.CopyFromFunc(func() ([]any, error) {
			for len(pending) == 0 {
				if i >= n {
					return nil, nil
				}
				m := genMessage(i)
				i++
				for _, tag := range distinct(m.Tags) {
					pending = append(pending, []any{m.ItemHash, tag, m.Time.Seconds()})
				}
			}
			row := pending[0]
			pending = pending[1:]
			return row, nil
		}))
		if err != nil {
			return fmt.Errorf("copy tags: %w", err)
		}
		var countRows [][]any
		for k, v := range counts {
			countRows = append(countRows, []any{k.kind, k.address, k.typ, k.status, v})
		}
		if _, err := pc.CopyFrom(ctx, pgx.Identifier{"message_counts"}, []string{"kind", "address", "type", "status", "n"}, pgx.CopyFromRows(countRows)); err != nil {
			return fmt.Errorf("copy counts: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = db.w.ExecContext(ctx, "ANALYZE")
	return err
}

// reportLatency reports the p50, p99 and maximum of per-call latencies, in milliseconds.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(lat)))) - 1
		return float64(lat[max(i, 0)]) / float64(time.Millisecond)
	}
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(p(1), "max-ms")
}

// benchBackends runs fn per backend (PostgreSQL only with ALEPH_TEST_POSTGRES).
func benchBackends(b *testing.B, fn func(b *testing.B, backend string)) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) { fn(b, backend) })
	}
}

func BenchmarkQueryMessages(b *testing.B) {
	benchBackends(b, func(b *testing.B, backend string) {
		s := seededStore(b, backend)
		ctx := context.Background()
		one := func(v string) []string { return []string{v} }
		cases := []struct {
			name   string
			filter func(r *mrand.Rand) store.MessageFilter
		}{
			{"default", func(*mrand.Rand) store.MessageFilter { return store.MessageFilter{} }},
			{"sender", func(r *mrand.Rand) store.MessageFilter {
				return store.MessageFilter{Senders: one(benchSender(r.IntN(benchSenders)))}
			}},
			{"owner", func(r *mrand.Rand) store.MessageFilter {
				return store.MessageFilter{Owners: one(benchSender(r.IntN(benchSenders)))}
			}},
			{"type", func(r *mrand.Rand) store.MessageFilter {
				return store.MessageFilter{Types: []message.Type{[]message.Type{message.TypePost, message.TypeStore, message.TypeForget}[r.IntN(3)]}}
			}},
			{"channel", func(r *mrand.Rand) store.MessageFilter {
				return store.MessageFilter{Channels: one(benchChannel(r.IntN(benchChannels)))}
			}},
			{"ref", func(r *mrand.Rand) store.MessageFilter {
				return store.MessageFilter{Refs: one(benchRef(r.IntN(benchRefs)))}
			}},
			{"content_key", func(r *mrand.Rand) store.MessageFilter {
				return store.MessageFilter{ContentKeys: one(benchKey(r.IntN(benchKeys)))}
			}},
			{"content_type", func(r *mrand.Rand) store.MessageFilter {
				return store.MessageFilter{ContentTypes: one(fmt.Sprintf("type-%d", r.IntN(benchPostType)))}
			}},
			{"tag", func(r *mrand.Rand) store.MessageFilter {
				return store.MessageFilter{Tags: one(fmt.Sprintf("tag-%d", r.IntN(benchTags)))}
			}},
			{"ascending", func(*mrand.Rand) store.MessageFilter { return store.MessageFilter{SortOrder: store.Ascending} }},
		}
		for _, c := range cases {
			for _, mode := range []string{"page", "cursor"} {
				b.Run(c.name+"/"+mode, func(b *testing.B) {
					r := mrand.New(mrand.NewPCG(1, 2))
					// Cursor mode reads the second page: the cursors of the
					// first pages are taken before timing.
					var cursors []*store.Cursor
					var filters []store.MessageFilter
					for range 64 {
						f := c.filter(r)
						var cur *store.Cursor
						if mode == "cursor" {
							_, next, err := s.db.QueryMessages(ctx, f, store.Page{Size: 20, Cursor: &store.Cursor{}})
							if err != nil {
								b.Fatal(err)
							}
							cur = next
							if cur == nil {
								cur = &store.Cursor{}
							}
						}
						filters, cursors = append(filters, f), append(cursors, cur)
					}
					lat := make([]time.Duration, 0, b.N)
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						p := store.Page{Size: 20, Number: 1, Cursor: cursors[i%64]}
						t0 := time.Now()
						_, _, err := s.db.QueryMessages(ctx, filters[i%64], p)
						lat = append(lat, time.Since(t0))
						if err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					reportLatency(b, lat)
					b.ReportMetric(float64(s.n), "messages")
					b.ReportMetric(s.rssSeeded, "rss-seeded-MiB")
					rss, peak := memMiB()
					b.ReportMetric(rss, "rss-MiB")
					b.ReportMetric(peak, "peak-rss-MiB")
				})
			}
		}
	})
}

func BenchmarkCountMessages(b *testing.B) {
	benchBackends(b, func(b *testing.B, backend string) {
		s := seededStore(b, backend)
		ctx := context.Background()
		cases := []struct {
			name string
			f    func(r *mrand.Rand) store.MessageFilter
		}{
			{"all", func(*mrand.Rand) store.MessageFilter { return store.MessageFilter{} }},
			{"sender_counters", func(r *mrand.Rand) store.MessageFilter {
				return store.MessageFilter{Senders: []string{benchSender(r.IntN(benchSenders))}, Types: []message.Type{message.TypePost}}
			}},
			{"ref_count", func(r *mrand.Rand) store.MessageFilter {
				return store.MessageFilter{Refs: []string{benchRef(r.IntN(benchRefs))}}
			}},
		}
		for _, c := range cases {
			b.Run(c.name, func(b *testing.B) {
				r := mrand.New(mrand.NewPCG(3, 4))
				lat := make([]time.Duration, 0, b.N)
				for i := 0; i < b.N; i++ {
					f := c.f(r)
					t0 := time.Now()
					if _, err := s.db.CountMessages(ctx, f); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
				}
				b.StopTimer()
				reportLatency(b, lat)
			})
		}
	})
}

// benchPending builds the i-th queued message of the Enqueue benchmark.
func benchPending(i int64) *store.Pending {
	m := genMessage(int(i))
	raw, _ := m.Message.MarshalJSON()
	return &store.Pending{Message: m.Message, Raw: raw, ReceptionTime: benchBase, NextAttempt: m.Time.Std(),
		CheckSignature: true, Origin: "api"}
}

func openBench(b *testing.B, backend string) *DB {
	if backend == "postgres" {
		return openPostgres(b)
	}
	return openSQLite(b)
}

func BenchmarkEnqueue(b *testing.B) {
	benchBackends(b, func(b *testing.B, backend string) {
		for _, callers := range []int{1, 64} {
			b.Run(fmt.Sprintf("callers-%d", callers), func(b *testing.B) {
				db := openBench(b, backend)
				ctx := context.Background()
				var (
					seq int64
					mu  sync.Mutex
					lat = make([]time.Duration, 0, b.N)
				)
				// Build the inputs before timing.
				inputs := make([]*store.Pending, b.N)
				for i := range inputs {
					inputs[i] = benchPending(int64(i))
				}
				b.SetParallelism(callers)
				b.ResetTimer()
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					var mine []time.Duration
					for pb.Next() {
						p := inputs[atomic.AddInt64(&seq, 1)-1]
						t0 := time.Now()
						if _, err := db.Enqueue(ctx, []*store.Pending{p}); err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(t0))
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
				b.ReportMetric(float64(b.N)/float64(max(db.commits.Load(), 1)), "msgs/commit")
				reportLatency(b, lat)
			})
		}
	})
}

func BenchmarkGetAggregates(b *testing.B) {
	benchBackends(b, func(b *testing.B, backend string) {
		db := openBench(b, backend)
		ctx := context.Background()
		const owner, key, elements = "0xOwner", "profile", 1000
		err := db.Update(ctx, func(tx store.Tx) error {
			for i := range elements {
				content := fmt.Sprintf(`{"field-%d":%d,"field-%d":{"nested":[%d,"x"]},"common":"v%d"}`, i%200, i, (i*7)%200, i, i)
				e := &store.AggregateElement{ItemHash: message.HashContent([]byte(content)), Key: key, Owner: owner,
					Content: []byte(content), CreationTime: 1.7e9 + float64(i)}
				if err := tx.InsertAggregateElement(ctx, e); err != nil {
					return err
				}
			}
			return tx.PutAggregate(ctx, &store.Aggregate{Key: key, Owner: owner, Content: []byte(`{}`), Dirty: true})
		})
		if err != nil {
			b.Fatal(err)
		}
		for _, mode := range []string{"dirty", "clean"} {
			b.Run(mode, func(b *testing.B) {
				lat := make([]time.Duration, 0, b.N)
				for i := 0; i < b.N; i++ {
					if mode == "dirty" {
						b.StopTimer()
						if _, err := db.w.ExecContext(ctx, "UPDATE aggregates SET dirty = TRUE"); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
					t0 := time.Now()
					aggs, err := db.GetAggregates(ctx, owner, []string{key})
					lat = append(lat, time.Since(t0))
					if err != nil || len(aggs) != 1 || aggs[0].Dirty {
						b.Fatalf("get aggregates: %v (%d)", err, len(aggs))
					}
				}
				b.StopTimer()
				reportLatency(b, lat)
			})
		}
	})
}

// digestStore returns a store of the backend seeded by seedDigest with
// benchMessageCount messages, once per process.
func digestStore(b *testing.B, backend string) *seeded {
	b.Helper()
	n := benchMessageCount(b)
	var dsn string
	if backend == "postgres" {
		dsn = pgtest.DSN(b)
	}
	seedMu.Lock()
	defer seedMu.Unlock()
	key := "digest-" + backend
	if s, ok := seeds[key]; ok {
		if s.err != nil {
			b.Fatal(s.err)
		}
		return s
	}
	s := &seeded{n: n}
	seeds[key] = s
	ctx := context.Background()
	start := time.Now()
	switch backend {
	case "sqlite":
		dir, err := os.MkdirTemp("", "aleph-bench-digest-")
		if err != nil {
			s.err = err
			b.Fatal(err)
		}
		s.db, s.err = Open(ctx, dir+"/bench.db", Options{})
		s.cleanup = func() {
			if s.db != nil {
				s.db.Close()
			}
			os.RemoveAll(dir)
		}
	case "postgres":
		s.db, s.cleanup, s.err = openBenchPostgres(ctx, dsn)
	}
	if s.err == nil {
		s.err = seedDigest(ctx, s.db, n)
	}
	if s.err == nil && backend == "postgres" {
		_, s.err = s.db.w.ExecContext(ctx, "ANALYZE")
	}
	if s.err != nil {
		b.Fatalf("seed %s: %v", backend, s.err)
	}
	s.seedTime = time.Since(start)
	b.Logf("%s: seeded %d messages with their records in %v", backend, n, s.seedTime.Round(time.Millisecond))
	return s
}

// BenchmarkStateDigest hashes the whole state of a seeded store.
func BenchmarkStateDigest(b *testing.B) {
	benchBackends(b, func(b *testing.B, backend string) {
		s := digestStore(b, backend)
		ctx := context.Background()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			d, err := s.db.StateDigest(ctx)
			lat = append(lat, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
			if d.Sections[store.DigestStatuses].Count != int64(s.n) {
				b.Fatalf("digest counts %d statuses, want %d", d.Sections[store.DigestStatuses].Count, s.n)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(s.n), "messages")
		reportLatency(b, lat)
	})
}

// BenchmarkSyncItemsLoad reads the whole anti-entropy set in pages of 10,000,
// as a node loads its index at start-up.
func BenchmarkSyncItemsLoad(b *testing.B) {
	benchBackends(b, func(b *testing.B, backend string) {
		s := digestStore(b, backend)
		ctx := context.Background()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			var after *store.SyncKey
			total := 0
			for {
				page, err := s.db.SyncItems(ctx, after, 10_000)
				if err != nil {
					b.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				total += len(page)
				after = &page[len(page)-1]
			}
			lat = append(lat, time.Since(t0))
			if total != s.n {
				b.Fatalf("loaded %d items, want %d", total, s.n)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(s.n), "items")
		reportLatency(b, lat)
	})
}
