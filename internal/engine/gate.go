package engine

import "sync"

// teamGate lets one claim of a team at a time into the database from this
// process. A claim counts the team's running steps under the team's lock
// (runs.ClaimWithin); claims that queued for that lock in the database
// would each hold a pooled connection while they wait, and starve the
// process's other work of connections. Waiting here holds none. Claims of
// other processes still meet at the database's lock.
type teamGate struct {
	mu    sync.Mutex
	teams map[int64]*teamTurn
}

// teamTurn is one team's place at the gate: its lock and how many claims
// want it, so that it is dropped when none do.
type teamTurn struct {
	sync.Mutex
	waiting int
}

// enter waits for team's turn and returns the function that ends it.
func (g *teamGate) enter(team int64) (leave func()) {
	g.mu.Lock()
	if g.teams == nil {
		g.teams = map[int64]*teamTurn{}
	}
	t := g.teams[team]
	if t == nil {
		t = &teamTurn{}
		g.teams[team] = t
	}
	t.waiting++
	g.mu.Unlock()

	t.Lock()
	return func() {
		t.Unlock()
		g.mu.Lock()
		if t.waiting--; t.waiting == 0 {
			delete(g.teams, team)
		}
		g.mu.Unlock()
	}
}
