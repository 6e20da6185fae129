package platform_test

import (
	"flag"
	"reflect"
	"testing"

	"github.com/ordersys/ecosystem/internal/platform"
)

func TestConfigPrecedenceFlagOverEnvOverDefault(t *testing.T) {
	cases := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, c platform.Config)
	}{
		{"defaults", nil, nil, func(t *testing.T, c platform.Config) {
			if !reflect.DeepEqual(c, platform.DefaultConfig()) {
				t.Fatalf("got %+v", c)
			}
		}},
		{"env", map[string]string{"KAFKA_BROKERS": "a:1, b:2", "PARTITIONS": "12", "STATE_DIR": "/s", "SCHEMA_REGISTRY_URL": "http://sr"}, nil,
			func(t *testing.T, c platform.Config) {
				if !reflect.DeepEqual(c.Brokers, []string{"a:1", "b:2"}) || c.Partitions != 12 || c.StateDir != "/s" || c.SchemaRegistryURL != "http://sr" {
					t.Fatalf("got %+v", c)
				}
			}},
		{"flag beats env", map[string]string{"KAFKA_BROKERS": "a:1", "PARTITIONS": "12"}, []string{"--brokers", "c:3", "--partitions", "3"},
			func(t *testing.T, c platform.Config) {
				if !reflect.DeepEqual(c.Brokers, []string{"c:3"}) || c.Partitions != 3 {
					t.Fatalf("got %+v", c)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"KAFKA_BROKERS", "PARTITIONS", "STATE_DIR", "SCHEMA_REGISTRY_URL"} {
				t.Setenv(k, "")
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg := platform.DefaultConfig()
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			cfg.RegisterFlags(fs)
			if err := platform.Parse(fs, tc.args); err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
		})
	}
}

func TestConfigRejectsBadEnvironment(t *testing.T) {
	t.Setenv("PARTITIONS", "many")
	cfg := platform.DefaultConfig()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := platform.Parse(fs, nil); err == nil {
		t.Fatal("PARTITIONS=many must be reported")
	}
}
