package live_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/live"
)

func receive(t *testing.T, ch <-chan live.Message) live.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return live.Message{}
	}
}

func TestLocalBroker(t *testing.T) {
	t.Parallel()
	b := live.NewLocal()
	one, unsubscribe := b.Subscribe(1)
	other, unsubscribeOther := b.Subscribe(2)
	defer unsubscribeOther()

	b.Publish(context.Background(), live.Message{RunID: 1, Kind: live.KindChanged})
	require.Equal(t, live.Message{RunID: 1, Kind: live.KindChanged}, receive(t, one))
	select {
	case m := <-other:
		t.Fatalf("run 2 got run 1's message %+v", m)
	default:
	}

	unsubscribe()
	unsubscribe() // twice is fine
	require.Zero(t, b.Subscribers(1))
	b.Publish(context.Background(), live.Message{RunID: 1, Kind: live.KindChanged}) // nobody listens: no block
}

func TestLocalBrokerDropsForSlowSubscribers(t *testing.T) {
	t.Parallel()
	b := live.NewLocal()
	ch, unsubscribe := b.Subscribe(1)
	defer unsubscribe()
	for range 1000 {
		b.Publish(context.Background(), live.Message{RunID: 1, Kind: live.KindDelta, Text: "x"})
	}
	require.Equal(t, 256, len(ch), "a slow subscriber never blocks the publisher")
}

// twoProcesses is two brokers on one PostgreSQL database, as two
// processes would have, closed when the test ends.
func twoProcesses(t *testing.T) (a, b *live.Postgres) {
	t.Helper()
	url := dbtest.PostgresURL(t)
	d := dbtest.Postgres(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := live.NewPostgres(url, d.DB.DB, log)
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	b, err = live.NewPostgres(url, d.DB.DB, log)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return a, b
}

func TestPostgresBrokerReachesOtherProcesses(t *testing.T) {
	t.Parallel()
	a, b := twoProcesses(t)

	onB, unsubscribe := b.Subscribe(7)
	defer unsubscribe()
	onA, unsubscribeA := a.Subscribe(7)
	defer unsubscribeA()

	a.Publish(context.Background(), live.Message{RunID: 7, Kind: live.KindDelta, Step: "s", Text: "héllo"})
	require.Equal(t, live.Message{RunID: 7, Kind: live.KindDelta, Step: "s", Text: "héllo"}, receive(t, onB))
	require.Equal(t, "héllo", receive(t, onA).Text, "the publisher's own subscribers hear it too")

	// Text too long for one notification is cut, not lost.
	a.Publish(context.Background(), live.Message{RunID: 7, Kind: live.KindDelta, Step: "s", Text: strings.Repeat("y", 20000)})
	m := receive(t, onB)
	require.NotEmpty(t, m.Text)
	require.Less(t, len(m.Text), 8000)
}

// Messages published faster than one notification each go out in batches,
// in order, each once, including a chunk of text streamed twice in a row
// (PostgreSQL would deliver a payload repeated in one transaction once);
// Close sends what is still queued.
func TestPostgresBrokerBatchesInOrder(t *testing.T) {
	t.Parallel()
	a, b := twoProcesses(t)
	onB, unsubscribe := b.Subscribe(9)
	defer unsubscribe()

	// Published in rounds that each fit a subscriber's buffer: one that
	// falls further behind loses messages by design, which a busy machine
	// could otherwise cause by not running the reader for a while.
	const n, round = 1200, 200
	got := make(chan []string)
	received := make(chan int, n)
	go func() {
		var texts []string
		for range n {
			select {
			case m := <-onB:
				texts = append(texts, m.Text)
				received <- len(texts)
			case <-time.After(5 * time.Second):
				got <- texts
				return
			}
		}
		got <- texts
	}()
	var want []string
	for i := range n {
		text := fmt.Sprintf("chunk %d", i/2) // each chunk twice
		want = append(want, text)
		a.Publish(context.Background(), live.Message{RunID: 9, Kind: live.KindDelta, Step: "s", Text: text})
		if sent := i + 1; sent%round == 0 && sent < n { // the last round is left to Close
			for heard := 0; heard < sent; {
				select {
				case heard = <-received:
				case <-time.After(10 * time.Second):
					t.Fatalf("%d of the first %d messages arrived", heard, sent)
				}
			}
		}
	}
	require.NoError(t, a.Close())
	require.Equal(t, want, <-got)
}

func TestTeamTopicHearsTheTeamsRuns(t *testing.T) {
	t.Parallel()
	b := live.NewLocal()
	team, unsubscribe := b.Subscribe(live.TeamTopic(3))
	defer unsubscribe()
	other, unsubscribeOther := b.Subscribe(live.TeamTopic(4))
	defer unsubscribeOther()
	run, unsubscribeRun := b.Subscribe(9)
	defer unsubscribeRun()

	m := live.Message{RunID: 9, TeamID: 3, Kind: live.KindChanged}
	b.Publish(context.Background(), m)
	require.Equal(t, m, receive(t, run), "the run's subscribers hear it")
	require.Equal(t, m, receive(t, team), "and so do its team's")
	b.Publish(context.Background(), live.Message{RunID: 9, Kind: live.KindDelta, Text: "x"})
	require.Equal(t, "x", receive(t, run).Text)
	select {
	case m := <-team:
		t.Fatalf("a message without a team reached the team: %+v", m)
	case m := <-other:
		t.Fatalf("another team heard team 3's run: %+v", m)
	default:
	}
}

func TestPostgresBrokerTeamTopic(t *testing.T) {
	t.Parallel()
	a, b := twoProcesses(t)

	onB, unsubscribe := b.Subscribe(live.TeamTopic(5))
	defer unsubscribe()
	m := live.Message{RunID: 11, TeamID: 5, Kind: live.KindChanged}
	a.Publish(context.Background(), m)
	require.Equal(t, m, receive(t, onB), "another process's team subscribers hear the run")
}
