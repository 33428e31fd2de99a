package sim

import (
	"fmt"
	"math/rand/v2"
)

// edge joins two node indexes, a < b.
type edge struct{ a, b int }

// graph is an undirected simple graph over nodes 0..n-1, split into two
// halves for the partition: side 0 is [0, n/2), side 1 is [n/2, n).
type graph struct {
	n     int
	edges []edge
	adj   []map[int]bool
}

func newGraph(n int) *graph {
	g := &graph{n: n, adj: make([]map[int]bool, n)}
	for i := range g.adj {
		g.adj[i] = map[int]bool{}
	}
	return g
}

func (g *graph) side(i int) int {
	if i < g.n/2 {
		return 0
	}
	return 1
}

func (g *graph) add(a, b int) bool {
	if a == b || g.adj[a][b] {
		return false
	}
	if a > b {
		a, b = b, a
	}
	g.adj[a][b], g.adj[b][a] = true, true
	g.edges = append(g.edges, edge{a, b})
	return true
}

// cross returns the edges between the two halves.
func (g *graph) cross() []edge {
	var out []edge
	for _, e := range g.edges {
		if g.side(e.a) != g.side(e.b) {
			out = append(out, e)
		}
	}
	return out
}

// randomGraph builds a random graph in which every node has at least degree
// neighbours (when n allows), each half is connected on its own (so it can
// agree internally during a partition) and the halves are joined by at least
// one edge (so the whole is connected).
func randomGraph(n, degree int, rng *rand.Rand) (*graph, error) {
	if n < 2 {
		return nil, fmt.Errorf("graph: %d nodes, want at least 2", n)
	}
	if degree < 1 || degree > n-1 {
		return nil, fmt.Errorf("graph: degree %d, want 1 to %d for %d nodes", degree, n-1, n)
	}
	g := newGraph(n)
	// A random spanning tree in each half.
	for _, half := range [][2]int{{0, n / 2}, {n / 2, n}} {
		perm := rng.Perm(half[1] - half[0])
		for i := 1; i < len(perm); i++ {
			g.add(half[0]+perm[i], half[0]+perm[rng.IntN(i)])
		}
	}
	g.add(rng.IntN(n/2), n/2+rng.IntN(n-n/2))
	// Fill up to degree, preferring partners that still need edges.
	for _, i := range rng.Perm(n) {
		for tries := 0; len(g.adj[i]) < degree && tries < 64*n; tries++ {
			j := rng.IntN(n)
			if j == i || g.adj[i][j] || (len(g.adj[j]) >= degree && tries < 32*n) {
				continue
			}
			g.add(i, j)
		}
	}
	if !g.connected(nil) {
		return nil, fmt.Errorf("graph: %d nodes of degree %d are not connected", n, degree)
	}
	return g, nil
}

// connected reports whether the nodes keep(i) selects (all when keep is nil)
// form one component over the edges between them.
func (g *graph) connected(keep func(int) bool) bool {
	in := func(i int) bool { return keep == nil || keep(i) }
	start, want := -1, 0
	for i := range g.n {
		if in(i) {
			want++
			if start < 0 {
				start = i
			}
		}
	}
	if want == 0 {
		return true
	}
	seen := map[int]bool{start: true}
	queue := []int{start}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for j := range g.adj[i] {
			if in(j) && !seen[j] {
				seen[j] = true
				queue = append(queue, j)
			}
		}
	}
	return len(seen) == want
}
