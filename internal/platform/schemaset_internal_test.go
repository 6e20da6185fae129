package platform

import (
	"context"
	"testing"
)

// A producer registering schema after schema cannot grow the cache of foreign writer schemas
// past its bound, whether they parse or not; the binary's own schemas stay.
func TestForeignSchemaCacheIsBounded(t *testing.T) {
	cases := []struct {
		name string
		text string
	}{
		{"unparseable", `{"type":"record","name":"Order","fields":[{"name":"pad","type":"int","default":"x"}]}`},
		{"parseable", `{"type":"record","name":"Other","fields":[{"name":"a","type":"int"}]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := newSchemaSet()
			if err != nil {
				t.Fatal(err)
			}
			s.byID[1] = writerSchema{record: "Order", codec: s.own["Order"]}
			s.lookup = func(context.Context, int) (string, error) { return c.text, nil }
			for id := 2; id < maxForeignSchemas+100; id++ {
				s.writer(id)
			}
			if n := len(s.byID); n > len(s.own)+maxForeignSchemas {
				t.Fatalf("%d cached schemas, bound %d", n, len(s.own)+maxForeignSchemas)
			}
			if w, ok := s.byID[1]; !ok || w.codec != s.own["Order"] {
				t.Fatal("the binary's own schema was forgotten")
			}
		})
	}
}
