package health

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/nodes"
)

// Collector serves the health figures as Prometheus gauges, read from the
// database when /metrics is scraped: steps by state, the oldest ready
// step's age, live nodes, dead letters, and the connection pool. No label
// names a team, a user or a run.
type Collector struct {
	Checker *Checker
}

var (
	stepsDesc       = prometheus.NewDesc("nofx_steps", "Steps not finished, by what they wait for (queued, running, waiting_approval, waiting_circuit, waiting_limit, scheduled).", []string{"state"}, nil)
	oldestDesc      = prometheus.NewDesc("nofx_queue_oldest_seconds", "Age of the oldest step ready and waiting for a worker, in seconds.", nil, nil)
	nodesDesc       = prometheus.NewDesc("nofx_nodes", "nofx serve processes sharing the database, by state (live, lost).", []string{"state"}, nil)
	deadDesc        = prometheus.NewDesc("nofx_dead_letters", "Step jobs given up on, waiting for a site admin to retry or discard them.", nil, nil)
	poolDesc        = prometheus.NewDesc("nofx_db_connections", "Database connections of this process, by state (in_use, idle).", []string{"state"}, nil)
	poolMaxDesc     = prometheus.NewDesc("nofx_db_connections_max", "The most database connections this process may open (0: no limit).", nil, nil)
	poolWaitDesc    = prometheus.NewDesc("nofx_db_connection_waits_total", "Times this process waited for a free database connection.", nil, nil)
	poolWaitSecDesc = prometheus.NewDesc("nofx_db_connection_wait_seconds_total", "Time this process waited for free database connections.", nil, nil)
)

// Describe sends the gauges' descriptions.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{stepsDesc, oldestDesc, nodesDesc, deadDesc, poolDesc, poolMaxDesc, poolWaitDesc, poolWaitSecDesc} {
		ch <- d
	}
}

// Collect reads the figures; what cannot be read within a few seconds is
// left out of this scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.Checker.DB.Stats()
	ch <- prometheus.MustNewConstMetric(poolDesc, prometheus.GaugeValue, float64(st.InUse), "in_use")
	ch <- prometheus.MustNewConstMetric(poolDesc, prometheus.GaugeValue, float64(st.Idle), "idle")
	ch <- prometheus.MustNewConstMetric(poolMaxDesc, prometheus.GaugeValue, float64(st.MaxOpenConnections))
	ch <- prometheus.MustNewConstMetric(poolWaitDesc, prometheus.CounterValue, float64(st.WaitCount))
	ch <- prometheus.MustNewConstMetric(poolWaitSecDesc, prometheus.CounterValue, st.WaitDuration.Seconds())

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	now := db.Now()
	if q, err := c.Checker.readQueue(ctx, now, false); err == nil {
		for state, n := range map[string]int{"queued": q.Queued, "running": q.Running, "waiting_approval": q.WaitingApproval,
			"waiting_circuit": q.WaitingCircuit, "waiting_limit": q.WaitingLimit, "scheduled": q.Scheduled} {
			ch <- prometheus.MustNewConstMetric(stepsDesc, prometheus.GaugeValue, float64(n), state)
		}
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, q.OldestQueued.Seconds())
		ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(q.DeadLetters))
	}
	if list, err := nodes.List(ctx, c.Checker.DB.Reader(), now); err == nil {
		live, lost := 0, 0
		for _, n := range list {
			if n.Lost(now) {
				lost++
			} else {
				live++
			}
		}
		ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(live), "live")
		ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(lost), "lost")
	}
}
