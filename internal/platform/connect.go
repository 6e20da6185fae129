package platform

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// CheckTimeout bounds CheckCluster: long enough for a broker that is still starting, short
// enough that a wrong setting ends the process promptly.
const CheckTimeout = 20 * time.Second

// CheckCluster connects to the cluster once, with cfg's TLS and SASL, and turns a failure into
// one line that says what is wrong: the credentials, the mechanism, a certificate, or TLS on
// one side only. Every binary calls it at start and exits on its error, where goka and sarama
// would otherwise retry without end and readiness would stay red without a reason.
func CheckCluster(ctx context.Context, cfg Config) error {
	ctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	cl, err := kgo.NewClient(ClientOptions(cfg, kgo.ClientID(cfg.ClientID+"-check"), kgo.RetryTimeout(CheckTimeout))...)
	if err != nil {
		return fmt.Errorf("connect to Kafka %s: %w", strings.Join(cfg.Brokers, ","), err)
	}
	defer cl.Close()
	// A metadata request goes through the whole handshake (TLS, SASL) on a broker connection.
	var last error
	diagnosed := false
	for {
		if last = cl.Ping(ctx); last == nil {
			return nil
		}
		if permanent(last) || ctx.Err() != nil {
			break
		}
		// TLS on one side only shows as a timeout or a closed connection, like a broker that
		// is still starting; one probe of the other protocol tells them apart.
		if !diagnosed && len(cfg.Brokers) > 0 {
			diagnosed = true
			if hint := listenerMismatch(ctx, cfg.Brokers[0], cfg.Security.TLS); hint != "" {
				return fmt.Errorf("connect to Kafka %s: %s (%v)", strings.Join(cfg.Brokers, ","), hint, last)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("connect to Kafka %s: %s", strings.Join(cfg.Brokers, ","), explain(cfg.Security, last))
}

// permanent reports errors that no retry mends: refused credentials or certificates.
func permanent(err error) bool {
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostname x509.HostnameError
	var header tls.RecordHeaderError
	var alert tls.AlertError
	return errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.UnsupportedSaslMechanism) ||
		errors.Is(err, kerr.IllegalSaslState) || errors.As(err, &unknownCA) || errors.As(err, &invalid) ||
		errors.As(err, &hostname) || errors.As(err, &header) || errors.As(err, &alert) ||
		strings.Contains(err.Error(), "remote error: tls:")
}

// explain says in words what err means for these settings.
func explain(s Security, err error) string {
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostname x509.HostnameError
	var header tls.RecordHeaderError
	msg := err.Error()
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Sprintf("SASL %s authentication of user %q failed: wrong user name or password (%v)", s.SASLMechanism, s.SASLUser, err)
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fmt.Sprintf("the broker does not offer SASL %s on this listener (%v)", s.SASLMechanism, err)
	case errors.Is(err, kerr.IllegalSaslState):
		return fmt.Sprintf("the broker refused the SASL exchange (%v)", err)
	case errors.As(err, &unknownCA):
		return fmt.Sprintf("the broker's certificate is signed by an unknown authority: set --tls-ca-file to the CA that signed it (%v)", err)
	case errors.As(err, &hostname):
		return fmt.Sprintf("the broker's certificate is not for the host dialled: check the bootstrap address or --tls-server-name (%v)", err)
	case errors.As(err, &invalid):
		return fmt.Sprintf("the broker's certificate is not valid (%v)", err)
	case errors.As(err, &header):
		return fmt.Sprintf("the broker did not answer TLS: its listener is plaintext, so turn --tls off or use its TLS port (%v)", err)
	case strings.Contains(msg, "remote error: tls:"):
		return fmt.Sprintf("the broker refused the TLS handshake: it rejects our client certificate or has none for us; check --tls-cert-file and --tls-key-file (%v)", err)
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed):
		hint := "the broker closed the connection at the first request"
		switch {
		case !s.TLS:
			hint += ": the listener may expect TLS (--tls) or SASL (--sasl-mechanism)"
		case s.SASLMechanism == "":
			hint += ": the listener may expect SASL (--sasl-mechanism)"
		}
		return fmt.Sprintf("%s (%v)", hint, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no broker answered within %s (%v)", CheckTimeout, err)
	}
	return msg
}

// listenerMismatch probes addr with the protocol the settings do not use: a TLS handshake when
// TLS is off, a plaintext Kafka request when it is on. It returns what to fix when the probe
// succeeds, else "".
func listenerMismatch(ctx context.Context, addr string, tlsOn bool) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if !tlsOn {
		// Only whether a handshake completes is asked; no data is sent, so nothing is trusted.
		d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return ""
		}
		conn.Close()
		return "the broker's listener speaks TLS: set --tls (and --tls-ca-file for a private CA)"
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0), kgo.DialTimeout(2*time.Second))
	if err != nil {
		return ""
	}
	defer cl.Close()
	if cl.Ping(ctx) != nil {
		return ""
	}
	return "the broker's listener is plaintext: turn --tls off or use its TLS port"
}
