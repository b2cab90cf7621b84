// Package mail sends NOFX's email: through an SMTP server when
// NOFX_SMTP_URL is set, or into the outbox table, where site admins read it.
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nofxhq/nofx/internal/db"
)

// Message is one plain-text email to one address.
type Message struct {
	To      string
	Subject string
	Body    string
}

// Mailer sends messages.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// New returns the SMTP mailer for smtpURL, or the outbox on d when smtpURL
// is empty.
func New(smtpURL string, d *db.DB) (Mailer, error) {
	if smtpURL == "" {
		return &Outbox{DB: d}, nil
	}
	return NewSMTP(smtpURL)
}

// sendTimeout bounds one SMTP conversation when ctx has no deadline.
const sendTimeout = 30 * time.Second

// SMTP sends messages through an SMTP server.
type SMTP struct {
	Host     string
	Port     string
	Username string
	Password string
	From     string
	// ImplicitTLS is smtps://: TLS from the first byte. Otherwise STARTTLS
	// is used when the server offers it.
	ImplicitTLS bool
}

// NewSMTP parses smtp://user:pass@host:587?from=addr or smtps://host:465.
func NewSMTP(rawURL string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return nil, errors.New("mail: the SMTP URL must look like smtp://user:pass@host:587 or smtps://host:465")
	}
	s := &SMTP{Host: u.Hostname(), Port: u.Port(), ImplicitTLS: u.Scheme == "smtps", From: u.Query().Get("from")}
	if s.Port == "" {
		s.Port = "587"
		if s.ImplicitTLS {
			s.Port = "465"
		}
	}
	if u.User != nil {
		s.Username = u.User.Username()
		s.Password, _ = u.User.Password()
	}
	if s.From == "" {
		s.From = "nofx@" + s.Host
	}
	return s, nil
}

// Send delivers m in one SMTP conversation.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, sendTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	addr := net.JoinHostPort(s.Host, s.Port)
	dialer := &net.Dialer{Deadline: deadline}
	var (
		conn net.Conn
		err  error
	)
	if s.ImplicitTLS {
		conn, err = tls.DialWithDialer(dialer, "tcp", addr, &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12})
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("mail: connect to %s: %w", addr, err)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return fmt.Errorf("mail: %w", err)
	}
	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("mail: greet %s: %w", addr, err)
	}
	defer c.Close()
	if !s.ImplicitTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(&tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}); err != nil {
				return fmt.Errorf("mail: starttls: %w", err)
			}
		}
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, s.Host)); err != nil {
			return fmt.Errorf("mail: authenticate: %w", err)
		}
	}
	if err := c.Mail(s.From); err != nil {
		return fmt.Errorf("mail: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(m.To); err != nil {
		return fmt.Errorf("mail: RCPT TO %s: %w", m.To, err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("mail: DATA: %w", err)
	}
	if _, err := w.Write(compose(s.From, m)); err != nil {
		return fmt.Errorf("mail: write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail: end message: %w", err)
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("mail: QUIT: %w", err)
	}
	return nil
}

// compose writes m as an RFC 5322 message; header values lose any line
// breaks, so that no input can add a header.
func compose(from string, m Message) []byte {
	oneLine := strings.NewReplacer("\r", " ", "\n", " ")
	var b strings.Builder
	b.WriteString("From: " + oneLine.Replace(from) + "\r\n")
	b.WriteString("To: " + oneLine.Replace(m.To) + "\r\n")
	b.WriteString("Subject: " + mime.QEncoding.Encode("utf-8", oneLine.Replace(m.Subject)) + "\r\n")
	b.WriteString("Date: " + time.Now().Format(time.RFC1123Z) + "\r\n")
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("Content-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n", "\r\n"))
	return []byte(b.String())
}

// Outbox keeps messages in the outbox table instead of sending them.
type Outbox struct {
	DB *db.DB
}

// Send writes m to the outbox.
func (o *Outbox) Send(ctx context.Context, m Message) error {
	return o.Write(ctx, o.DB, m)
}

// Write adds m to the outbox using q, so that a change and its mail can be
// written in one transaction.
func (o *Outbox) Write(ctx context.Context, q db.Queryer, m Message) error {
	_, err := db.Exec(ctx, q, `INSERT INTO outbox (to_address, subject, body, created_at) VALUES (?, ?, ?, ?)`,
		m.To, m.Subject, m.Body, db.Now())
	if err != nil {
		return fmt.Errorf("mail: write outbox: %w", err)
	}
	return nil
}

// OutboxOf returns the outbox m writes to, itself or under a Tracked, and
// whether it is one: mail to it is kept, not sent.
func OutboxOf(m Mailer) (*Outbox, bool) {
	if t, ok := m.(*Tracked); ok {
		m = t.Mailer
	}
	o, ok := m.(*Outbox)
	return o, ok
}

// Stored is a message in the outbox.
type Stored struct {
	ID        int64      `db:"id"`
	To        string     `db:"to_address"`
	Subject   string     `db:"subject"`
	Body      string     `db:"body"`
	CreatedAt time.Time  `db:"created_at"`
	SentAt    *time.Time `db:"sent_at"`
}

// List returns the newest messages in the outbox, newest first.
func List(ctx context.Context, q db.Queryer, limit int) ([]Stored, error) {
	var out []Stored
	err := db.Select(ctx, q, &out, `SELECT id, to_address, subject, body, created_at, sent_at
		FROM outbox ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("mail: list outbox: %w", err)
	}
	return out, nil
}

// Tracked is a Mailer that remembers its last failure and success, for the
// health page.
type Tracked struct {
	Mailer
	mu      sync.Mutex
	lastErr string
	errAt   time.Time
	okAt    time.Time
}

// Send sends m and remembers how it went.
func (t *Tracked) Send(ctx context.Context, m Message) error {
	err := t.Mailer.Send(ctx, m)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.lastErr, t.errAt = err.Error(), time.Now()
	} else {
		t.okAt = time.Now()
	}
	return err
}

// LastError returns the last failure and when it was, and when mail last
// went out; zero times when there was none.
func (t *Tracked) LastError() (msg string, at, lastOK time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastErr, t.errAt, t.okAt
}
