package mail_test

import (
	"context"
	"net"
	"net/textproto"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/mail"
)

func TestOutbox(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		m, err := mail.New("", d)
		require.NoError(t, err)
		require.IsType(t, &mail.Outbox{}, m)
		require.NoError(t, m.Send(ctx, mail.Message{To: "a@example.com", Subject: "First", Body: "one"}))
		require.NoError(t, m.Send(ctx, mail.Message{To: "b@example.com", Subject: "Second", Body: "two\nlines"}))

		got, err := mail.List(ctx, d, 10)
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.Equal(t, "b@example.com", got[0].To)
		require.Equal(t, "Second", got[0].Subject)
		require.Equal(t, "two\nlines", got[0].Body)
		require.Nil(t, got[0].SentAt)
		require.Equal(t, "a@example.com", got[1].To)

		got, err = mail.List(ctx, d, 1)
		require.NoError(t, err)
		require.Len(t, got, 1)
	})
}

func TestNewSMTP(t *testing.T) {
	t.Parallel()
	s, err := mail.NewSMTP("smtps://u:p%40ss@mail.example.com?from=team@example.com")
	require.NoError(t, err)
	require.Equal(t, &mail.SMTP{Host: "mail.example.com", Port: "465", Username: "u", Password: "p@ss", From: "team@example.com", ImplicitTLS: true}, s)

	s, err = mail.NewSMTP("smtp://mail.example.com:2525")
	require.NoError(t, err)
	require.Equal(t, "2525", s.Port)
	require.Equal(t, "nofx@mail.example.com", s.From)
	require.False(t, s.ImplicitTLS)

	_, err = mail.NewSMTP("http://mail.example.com")
	require.Error(t, err)
}

// received is what the fake SMTP server was given.
type received struct {
	from, to, data string
}

// fakeSMTP serves one SMTP conversation on 127.0.0.1, without STARTTLS or
// AUTH, and reports what it received.
func fakeSMTP(t *testing.T) (port string, got <-chan received) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	out := make(chan received, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		tp := textproto.NewConn(conn)
		var r received
		_ = tp.PrintfLine("220 fake ESMTP")
		for {
			line, err := tp.ReadLine()
			if err != nil {
				return
			}
			verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
			switch verb {
			case "EHLO", "HELO":
				_ = tp.PrintfLine("250-fake greets you")
				_ = tp.PrintfLine("250 8BITMIME")
			case "MAIL":
				r.from = line
				_ = tp.PrintfLine("250 OK")
			case "RCPT":
				r.to = line
				_ = tp.PrintfLine("250 OK")
			case "DATA":
				_ = tp.PrintfLine("354 go ahead")
				lines, err := tp.ReadDotLines()
				if err != nil {
					return
				}
				r.data = strings.Join(lines, "\n")
				_ = tp.PrintfLine("250 queued")
			case "QUIT":
				_ = tp.PrintfLine("221 bye")
				out <- r
				return
			default:
				_ = tp.PrintfLine("502 not implemented")
			}
		}
	}()
	_, port, err = net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)
	return port, out
}

func TestSMTPSendsToServer(t *testing.T) {
	t.Parallel()
	port, got := fakeSMTP(t)
	m, err := mail.New("smtp://127.0.0.1:"+port+"?from=nofx@example.com", nil)
	require.NoError(t, err)
	err = m.Send(context.Background(), mail.Message{
		To:      "alice@example.com",
		Subject: "Join the team\r\nBcc: evil@example.com",
		Body:    "Hello\n.dot line\nbye",
	})
	require.NoError(t, err)
	r := <-got
	require.Equal(t, "MAIL FROM:<nofx@example.com> BODY=8BITMIME", r.from)
	require.Equal(t, "RCPT TO:<alice@example.com>", r.to)
	require.Contains(t, r.data, "To: alice@example.com")
	require.Contains(t, r.data, "Subject: Join the team  Bcc: evil@example.com")
	require.NotContains(t, r.data, "\nBcc:")
	require.Contains(t, r.data, "Hello\n.dot line\nbye")
}

func TestOutboxOfSeesThroughTracked(t *testing.T) {
	o := &mail.Outbox{}
	got, ok := mail.OutboxOf(o)
	require.True(t, ok)
	require.Same(t, o, got)
	got, ok = mail.OutboxOf(&mail.Tracked{Mailer: o})
	require.True(t, ok, "the app tracks its mailer")
	require.Same(t, o, got)
	smtp, err := mail.NewSMTP("smtp://mail.example.com:587")
	require.NoError(t, err)
	_, ok = mail.OutboxOf(&mail.Tracked{Mailer: smtp})
	require.False(t, ok)
}
