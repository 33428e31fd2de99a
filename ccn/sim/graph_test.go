package sim

import (
	"math/rand/v2"
	"testing"
)

func TestRandomGraph(t *testing.T) {
	for _, tc := range []struct {
		name      string
		n, degree int
	}{
		{"pair", 2, 1},
		{"three", 3, 2},
		{"small sparse", 12, 1},
		{"test size", 12, 4},
		{"odd", 13, 4},
		{"complete", 8, 7},
		{"bench size", 100, 8},
		{"large", 400, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(20) {
				g, err := randomGraph(tc.n, tc.degree, rand.New(rand.NewPCG(seed, 1)))
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				checkGraph(t, g, tc.degree)
			}
		})
	}
}

func checkGraph(t *testing.T, g *graph, degree int) {
	t.Helper()
	seen := map[edge]bool{}
	for _, e := range g.edges {
		if e.a >= e.b || e.a < 0 || e.b >= g.n {
			t.Fatalf("edge %v is out of order or range", e)
		}
		if seen[e] {
			t.Fatalf("edge %v twice", e)
		}
		seen[e] = true
	}
	for i := range g.n {
		if len(g.adj[i]) < degree {
			t.Fatalf("node %d has %d neighbours, want at least %d", i, len(g.adj[i]), degree)
		}
	}
	if !g.connected(nil) {
		t.Fatal("the graph is not connected")
	}
	for side := range 2 {
		if !g.connected(func(i int) bool { return g.side(i) == side }) {
			t.Fatalf("side %d is not connected on its own", side)
		}
	}
	if len(g.cross()) == 0 {
		t.Fatal("no edge joins the halves")
	}
}

func TestRandomGraphRejects(t *testing.T) {
	for _, tc := range []struct{ n, degree int }{{1, 1}, {0, 0}, {5, 0}, {5, 5}, {5, -1}} {
		if _, err := randomGraph(tc.n, tc.degree, rand.New(rand.NewPCG(1, 1))); err == nil {
			t.Errorf("randomGraph(%d, %d): no error", tc.n, tc.degree)
		}
	}
}

func TestConnectedDetectsSplit(t *testing.T) {
	g := newGraph(4)
	g.add(0, 1)
	g.add(2, 3)
	if g.connected(nil) {
		t.Fatal("two components reported connected")
	}
	g.add(1, 2)
	if !g.connected(nil) {
		t.Fatal("a path reported disconnected")
	}
	if g.add(2, 1) || g.add(3, 3) {
		t.Fatal("a duplicate edge or a loop was added")
	}
}
