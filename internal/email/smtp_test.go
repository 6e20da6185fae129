package email_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/email"
)

// fakeSMTP is a minimal SMTP server on the loopback interface that records what it receives
// and refuses recipients containing "nobody".
type fakeSMTP struct {
	ln       net.Listener
	mu       sync.Mutex
	received []receivedMail
}

type receivedMail struct {
	from, rcpt string
	data       []byte
}

func startFakeSMTP(t *testing.T) *fakeSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeSMTP{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(conn)
		}
	}()
	return s
}

func (s *fakeSMTP) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(conn)
	var m receivedMail
	_ = tp.PrintfLine("220 fake ESMTP")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			_ = tp.PrintfLine("250-fake\r\n250 8BITMIME")
		case "MAIL":
			m.from = arg
			_ = tp.PrintfLine("250 ok")
		case "RCPT":
			if strings.Contains(arg, "nobody") {
				_ = tp.PrintfLine("550 no such user")
				continue
			}
			m.rcpt = arg
			_ = tp.PrintfLine("250 ok")
		case "DATA":
			_ = tp.PrintfLine("354 go ahead")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			m.data = data
			s.mu.Lock()
			s.received = append(s.received, m)
			s.mu.Unlock()
			_ = tp.PrintfLine("250 queued")
		case "QUIT":
			_ = tp.PrintfLine("221 bye")
			return
		default:
			_ = tp.PrintfLine("250 ok")
		}
	}
}

func (s *fakeSMTP) mails() []receivedMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]receivedMail(nil), s.received...)
}

func newSMTPEmailer(t *testing.T, addr string) *email.SMTPEmailer {
	t.Helper()
	e, err := email.NewSMTPEmailer(email.SMTPConfig{Addr: addr, From: "Orders <orders@example.com>", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestSMTPEmailerDeliversTheWorkedCase(t *testing.T) {
	srv := startFakeSMTP(t)
	e := newSMTPEmailer(t, srv.ln.Addr().String())
	if err := e.Send(context.Background(), email.Email{Order: order0, Payment: payment0, Customer: franz}); err != nil {
		t.Fatal(err)
	}
	mails := srv.mails()
	if len(mails) != 1 {
		t.Fatalf("%d mails received, want 1", len(mails))
	}
	if !strings.HasPrefix(mails[0].from, "FROM:<orders@example.com>") || mails[0].rcpt != "TO:<frans@thedarkside.net>" {
		t.Fatalf("envelope %q → %q", mails[0].from, mails[0].rcpt)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(mails[0].data))
	if err != nil {
		t.Fatal(err)
	}
	to, err := msg.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != "Franz Kafka" || to[0].Address != franz.Email {
		t.Fatalf("To %v (%v)", to, err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != "Your order 0 is confirmed" {
		t.Fatalf("Subject %q (%v)", subject, err)
	}
	if id := msg.Header.Get("Message-ID"); id != email.MessageID("0", "example.com") {
		t.Fatalf("Message-ID %q", id)
	}
	body, _ := io.ReadAll(msg.Body)
	for _, want := range []string{"Dear Franz Kafka", "3 x UNDERPANTS", "Payment:1234", "1000.00 CZK", franz.Address} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}

func TestSMTPEmailerRefusesHeaderInjection(t *testing.T) {
	srv := startFakeSMTP(t)
	e := newSMTPEmailer(t, srv.ln.Addr().String())
	evil := franz
	evil.FirstName = "Eve\r\nBcc: victim@example.com"
	o := order0
	o.ID = "0\r\nBcc: victim@example.com"
	if err := e.Send(context.Background(), email.Email{Order: o, Payment: payment0, Customer: evil}); err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(srv.mails()[0].data))
	if err != nil {
		t.Fatal(err)
	}
	if bcc := msg.Header.Get("Bcc"); bcc != "" {
		t.Fatalf("injected Bcc header %q", bcc)
	}
}

func TestSMTPEmailerErrors(t *testing.T) {
	srv := startFakeSMTP(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	cases := []struct {
		name          string
		addr, to      string
		undeliverable bool
	}{
		{"recipient refused", srv.ln.Addr().String(), "nobody@example.com", true},
		{"address does not parse", srv.ln.Addr().String(), "not an address", true},
		{"server unreachable", closedAddr, franz.Email, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			customer := franz
			customer.Email = c.to
			err := newSMTPEmailer(t, c.addr).Send(context.Background(), email.Email{Order: order0, Payment: payment0, Customer: customer})
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, email.ErrUndeliverable); got != c.undeliverable {
				t.Fatalf("undeliverable = %v, want %v (%v)", got, c.undeliverable, err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name    string
		change  func(*email.Config)
		wantErr string
	}{
		{"defaults", func(*email.Config) {}, ""},
		{"smtp", func(c *email.Config) {
			c.Emailer, c.SMTP.Addr, c.SMTP.From = "smtp", "mail.example.com:587", "orders@example.com"
		}, ""},
		{"unknown emailer", func(c *email.Config) { c.Emailer = "pigeon" }, "neither log nor smtp"},
		{"smtp without server", func(c *email.Config) { c.Emailer, c.SMTP.From = "smtp", "orders@example.com" }, "address"},
		{"smtp without sender", func(c *email.Config) { c.Emailer, c.SMTP.Addr = "smtp", "mail.example.com:587" }, "sender"},
		{"join retention inside the window", func(c *email.Config) { c.Retention.Join = 30 * time.Second }, "join window"},
		{"no hold", func(c *email.Config) { c.Retention.Hold = 0 }, "hold timeout"},
		{"dedup shorter than the hold", func(c *email.Config) { c.Retention.Dedup = 30 * time.Minute }, "dedup retention"},
		{"no sweep", func(c *email.Config) { c.SweepInterval = 0 }, "sweep interval"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := email.DefaultConfig()
			c.change(&cfg)
			err := cfg.Validate()
			if c.wantErr == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("error %v, want one mentioning %q", err, c.wantErr)
			}
		})
	}
}

// The SMTP password comes from the environment only and never reaches the log.
func TestConfigPasswordFromEnvironmentNotLogged(t *testing.T) {
	t.Setenv("SMTP_PASSWORD", "s3cret")
	t.Setenv("HOLD_TIMEOUT", "2h")
	cfg := email.DefaultConfig()
	fs := flag.NewFlagSet("email", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"-emailer", "smtp", "-smtp-addr", "localhost:25", "-smtp-from", "orders@example.com"}); err != nil {
		t.Fatal(err)
	}
	if cfg.SMTP.Password != "s3cret" || cfg.Retention.Hold != 2*time.Hour || cfg.Emailer != "smtp" {
		t.Fatalf("config %+v", cfg)
	}
	if fs.Lookup("smtp-password") != nil {
		t.Fatal("the password must not be a flag")
	}
	var out bytes.Buffer
	slog.New(slog.NewJSONHandler(&out, nil)).Info("starting", slog.Any("config", cfg))
	if strings.Contains(out.String(), "s3cret") || !strings.Contains(out.String(), `"smtp_password_set":true`) {
		t.Fatalf("config log line: %s", out.String())
	}
}
