package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersys/ecosystem/internal/metrics"
)

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Every metric the Grafana dashboard queries exists, so the dashboard cannot silently go blank.
func TestDashboardQueriesOnlyExistingMetrics(t *testing.T) {
	known := map[string]bool{}
	for _, c := range metrics.Collectors() {
		ch := make(chan *prometheus.Desc, 16)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			if m := fqName.FindStringSubmatch(d.String()); m != nil {
				known[m[1]] = true
			}
		}
	}
	raw, err := os.ReadFile("../../deploy/grafana/ordersys-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`ordersys_[a-z_]+`)
	seen := 0
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			for _, name := range used.FindAllString(target.Expr, -1) {
				seen++
				base := name
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					base = strings.TrimSuffix(base, suffix)
				}
				if !known[base] {
					t.Errorf("panel %q queries %s, which no collector provides (known: %v)", p.Title, name, known)
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("the dashboard queries no ordersys metric")
	}
}
