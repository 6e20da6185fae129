package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// SMTPConfig says how to reach the mail server.
type SMTPConfig struct {
	Addr     string // host:port of the submission server
	From     string // sender address, e.g. "Orders <orders@example.com>"
	Username string // empty: no authentication
	Password string // only from the environment, never a flag (flags show up in ps)
	Timeout  time.Duration
}

// SMTPEmailer sends each email as one SMTP transaction (standard library net/smtp). It upgrades
// to TLS with STARTTLS whenever the server offers it; net/smtp's PLAIN authentication refuses
// to send credentials unencrypted to anything but localhost.
type SMTPEmailer struct {
	cfg  SMTPConfig
	from *mail.Address
	host string
}

// NewSMTPEmailer checks cfg and returns the emailer.
func NewSMTPEmailer(cfg SMTPConfig) (*SMTPEmailer, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("smtp emailer: address %q: %w", cfg.Addr, err)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("smtp emailer: sender %q: %w", cfg.From, err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &SMTPEmailer{cfg: cfg, from: from, host: host}, nil
}

// Send delivers e to the customer's address. A recipient the server refuses (5xx) or an
// address that does not parse is ErrUndeliverable; everything else is transient.
func (s *SMTPEmailer) Send(ctx context.Context, e Email) error {
	to, err := mail.ParseAddress(e.Customer.Email)
	if err != nil {
		return fmt.Errorf("send email for order %s: %w: recipient %q: %v", e.Order.ID, ErrUndeliverable, e.Customer.Email, err)
	}
	to.Name = strings.TrimSpace(e.Customer.FirstName + " " + e.Customer.LastName)
	msg := composeMessage(s.from, to, e, time.Now())
	if err := s.deliver(ctx, to.Address, msg); err != nil {
		return fmt.Errorf("send email for order %s: %w", e.Order.ID, err)
	}
	return nil
}

func (s *SMTPEmailer) deliver(ctx context.Context, rcpt string, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", s.cfg.Addr, err)
	}
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return fmt.Errorf("set deadline: %w", err)
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("greet %s: %w", s.cfg.Addr, err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	}
	if s.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.host)); err != nil {
			return fmt.Errorf("authenticate as %s: %w", s.cfg.Username, err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("mail from %s: %w", s.from.Address, err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return fmt.Errorf("rcpt to %s: %w", rcpt, permanentIf5xx(err))
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end message: %w", permanentIf5xx(err))
	}
	// The server accepted the message when DATA ended; a failing goodbye loses nothing.
	_ = c.Quit()
	return nil
}

// permanentIf5xx marks a permanent SMTP reply as ErrUndeliverable.
func permanentIf5xx(err error) error {
	var tp *textproto.Error
	if errors.As(err, &tp) && tp.Code >= 500 {
		return fmt.Errorf("%w: %w", ErrUndeliverable, err)
	}
	return err
}

// MessageID is the Message-ID of an order's email. It depends only on the order id, so if an
// email is ever sent twice (a crash between sending and remembering it), both copies carry the
// same id and mail systems can recognise the duplicate.
func MessageID(orderID, domain string) string {
	sum := sha256.Sum256([]byte(orderID))
	return "<order-" + hex.EncodeToString(sum[:16]) + "@" + domain + ">"
}

// composeMessage renders the email as an RFC 5322 message. Every header value built from
// record data goes through mail.Address or MIME word encoding, which turns CR and LF into
// encoded text, so a customer name or order id cannot inject headers.
func composeMessage(from, to *mail.Address, e Email, now time.Time) []byte {
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", from.String())
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", "Your order "+e.Order.ID+" is confirmed"))
	header("Date", now.UTC().Format(time.RFC1123Z))
	header("Message-ID", MessageID(e.Order.ID, domain))
	header("MIME-Version", "1.0")
	header("Content-Type", `text/plain; charset="utf-8"`)
	header("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	body := fmt.Sprintf(`Dear %s %s,

thank you for your order %s: %d x %s at %.2f each.
We received your payment %s of %.2f %s.

It will be delivered to:
%s

Your order service
`, e.Customer.FirstName, e.Customer.LastName, e.Order.ID, e.Order.Quantity, e.Order.Product,
		e.Order.Price, e.Payment.ID, e.Payment.Amount, e.Payment.Ccy, e.Customer.Address)
	// SMTP lines end in CRLF; a lone CR or LF in the data would be normalised differently by
	// each server.
	body = strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\r", "\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	return b.Bytes()
}
