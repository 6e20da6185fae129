package apachekafka

import (
	"encoding/base64"
	"strings"
	"testing"
)

// Cluster ids never start with '-' (StorageTool would read one as an option and refuse to
// format: a CI run failed so), and are Kafka's 22-character URL-safe base64 of 16 bytes.
func TestClusterIDsAreNeverTakenForOptions(t *testing.T) {
	for range 5000 { // about 78 would start with '-' without the rule
		id, err := newClusterID()
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(id, "-") || len(id) != 22 {
			t.Fatalf("cluster id %q", id)
		}
		if b, err := base64.RawURLEncoding.DecodeString(id); err != nil || len(b) != 16 {
			t.Fatalf("cluster id %q: %v", id, err)
		}
	}
}
