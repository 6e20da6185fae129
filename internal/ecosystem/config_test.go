package ecosystem

import (
	"strings"
	"testing"

	"github.com/ordersys/ecosystem/internal/platform"
)

// TLS and SASL settings are for an external Kafka: with the embedded broker (plaintext) they
// could never connect, so they are refused before anything starts.
func TestSecuritySettingsNeedAnExternalKafka(t *testing.T) {
	cases := []struct {
		name    string
		brokers []string
		s       platform.Security
		want    string
	}{
		{"TLS, embedded broker", nil, platform.Security{TLS: true}, "embedded broker speaks plaintext"},
		{"SASL, embedded broker", nil, platform.Security{SASLMechanism: platform.SASLPlain, SASLUser: "a", SASLPassword: "b"}, "embedded broker speaks plaintext"},
		{"TLS, external Kafka", []string{"kafka:9093"}, platform.Security{TLS: true}, ""},
		{"plaintext, embedded broker", nil, platform.Security{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Kafka.Brokers, cfg.Kafka.Security = c.brokers, c.s
			err := cfg.Validate()
			if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}
