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

// checkTimeout is CheckTimeout; tests of the slow paths shorten it.
var checkTimeout = CheckTimeout

// CheckCluster connects to the cluster once, with cfg's TLS and SASL, and turns a failure into
// one line that says what is wrong: the credentials, the mechanism, a certificate, or TLS on
// one side only. Every binary calls it at start and exits on its error, where goka and sarama
// would otherwise retry without end and readiness would stay red without a reason. One
// bootstrap broker that answers is enough; a refusal from any of them (credentials,
// certificates) ends the check at once, whatever the others say.
func CheckCluster(ctx context.Context, cfg Config) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	all := strings.Join(cfg.Brokers, ",")
	if len(cfg.Brokers) == 0 {
		return errors.New("connect to Kafka: no bootstrap brokers")
	}
	// One client per seed: a client's Ping reports only the last seed it tried, so a
	// refused password on one broker would hide behind another that is down.
	clients := make([]*kgo.Client, 0, len(cfg.Brokers))
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	for _, seed := range cfg.Brokers {
		one := cfg
		one.Brokers = []string{seed}
		cl, err := kgo.NewClient(ClientOptions(one, kgo.ClientID(cfg.ClientID+"-check"), kgo.RetryTimeout(checkTimeout))...)
		if err != nil {
			return fmt.Errorf("connect to Kafka %s: %w", all, err)
		}
		clients = append(clients, cl)
	}
	var last error
	diagnosed := map[string]bool{}
	for {
		for i, cl := range clients {
			// A metadata request goes through the whole handshake (TLS, SASL).
			err := cl.Ping(ctx)
			if err == nil {
				return nil
			}
			if ctx.Err() != nil && last != nil {
				break // the deadline's error says less than the one before it
			}
			last = err
			if permanent(err) {
				return fmt.Errorf("connect to Kafka %s: %s", all, explain(cfg.Security, err))
			}
			// TLS on one side only shows as a timeout or a closed connection, like a broker
			// that is still starting; one probe of the other protocol tells them apart.
			if seed := cfg.Brokers[i]; !diagnosed[seed] {
				diagnosed[seed] = true
				if hint := listenerMismatch(ctx, seed, cfg.Security.TLS); hint != "" {
					return fmt.Errorf("connect to Kafka %s: %s (%v)", all, hint, err)
				}
			}
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return fmt.Errorf("connect to Kafka %s: %s", all, explain(cfg.Security, last))
		case <-time.After(250 * time.Millisecond):
		}
	}
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
	case strings.Contains(msg, "remote error: tls:") && strings.Contains(msg, "certificate"):
		return fmt.Sprintf("the broker refused the TLS handshake: it rejects our client certificate or has none for us; check --tls-cert-file and --tls-key-file (%v)", err)
	case strings.Contains(msg, "remote error: tls:"):
		return fmt.Sprintf("the broker refused the TLS handshake (%v)", err)
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
		return fmt.Sprintf("no broker answered within %s (%v)", checkTimeout, err)
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
