package orders_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/orders"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// openAPIDoc is the part of the OpenAPI document the contract test reads.
type openAPIDoc struct {
	Paths      map[string]map[string]operation `json:"paths"`
	Components struct {
		Responses map[string]response `json:"responses"`
	} `json:"components"`
}

type operation struct {
	OperationID string `json:"operationId"`
	RequestBody *struct {
		Content map[string]media `json:"content"`
	} `json:"requestBody"`
	Responses map[string]response `json:"responses"`
}

type response struct {
	Ref     string           `json:"$ref"`
	Content map[string]media `json:"content"`
}

type media struct {
	Examples map[string]struct {
		Value json.RawMessage `json:"value"`
	} `json:"examples"`
}

func loadDoc(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(orders.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc
}

// example returns the named example of an operation's response, following $ref.
func (d openAPIDoc) example(t *testing.T, path, method, status, name string) json.RawMessage {
	t.Helper()
	resp, ok := d.Paths[path][method].Responses[status]
	if !ok {
		t.Fatalf("%s %s documents no %s response", method, path, status)
	}
	if resp.Ref != "" {
		resp = d.Components.Responses[strings.TrimPrefix(resp.Ref, "#/components/responses/")]
	}
	for _, m := range resp.Content {
		if ex, ok := m.Examples[name]; ok {
			return ex.Value
		}
	}
	t.Fatalf("%s %s %s has no example %q", method, path, status, name)
	return nil
}

// Every route the router serves is documented, and every documented path is served.
func TestOpenAPIDocumentsExactlyTheServedRoutes(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 2})
	in := startInstance(t, env, "contract-routes")
	served := map[string]bool{}
	err := chi.Walk(in.svc.Router(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.TrimSuffix(route, "/")
		if method == http.MethodGet || method == http.MethodPost {
			served[strings.ToLower(method)+" "+route] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, ops := range loadDoc(t).Paths {
		for method := range ops {
			documented[method+" "+path] = true
		}
	}
	// Routes mounted with Handle answer every method; the document lists the ones that matter.
	for _, p := range []string{"/livez", "/readyz", "/metrics"} {
		delete(served, "post "+p)
	}
	var missing, extra []string
	for r := range served {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for r := range documented {
		if !served[r] {
			extra = append(extra, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Fatalf("served but undocumented: %v; documented but not served: %v", missing, extra)
	}
}

// The document's examples are what the service really sends and answers.
func TestOpenAPIExamplesAreRealExchanges(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 2})
	in := startInstance(t, env, "contract-examples")
	doc := loadDoc(t)

	exchange := func(method, path string, body []byte) (int, http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, in.url+path, bytes.NewReader(body))
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	same := func(what string, got []byte, want json.RawMessage) {
		t.Helper()
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%s: answer is not JSON: %s", what, got)
		}
		_ = json.Unmarshal(want, &w)
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		if !bytes.Equal(gb, wb) {
			t.Errorf("%s:\n got  %s\n want %s", what, gb, wb)
		}
	}

	created := doc.Paths["/v1/orders"]["post"].RequestBody.Content["application/json"].Examples["created"].Value
	status, hdr, body := exchange("POST", "/v1/orders", created)
	if status != 201 || hdr.Get("Location") != "/v1/orders/contract-1" {
		t.Fatalf("POST example: %d %q %s", status, hdr.Get("Location"), body)
	}
	same("POST 201", body, doc.example(t, "/v1/orders", "post", "201", "created"))

	status, _, body = exchange("GET", "/v1/orders/contract-1", nil)
	if status != 200 {
		t.Fatalf("GET example: %d %s", status, body)
	}
	same("GET 200", body, doc.example(t, "/v1/orders/{id}", "get", "200", "created"))

	validated := doc.example(t, "/v1/orders/{id}/validated", "get", "200", "validated")
	var o domain.Order
	_ = json.Unmarshal(validated, &o)
	// The order's CREATED, then the aggregator's decision on it.
	asCreated := o
	asCreated.State = domain.OrderCreated
	for _, version := range []domain.Order{asCreated, o} {
		b, _ := platform.StaticCodecs().Order.Marshal(version)
		env.Produce(t, env.Names.Topic(string(platform.TopicOrders)), version.ID, b)
	}
	status, _, body = exchange("GET", "/v1/orders/"+o.ID+"/validated", nil)
	if status != 200 {
		t.Fatalf("GET validated example: %d %s", status, body)
	}
	same("GET validated 200", body, validated)

	status, _, body = exchange("POST", "/v1/orders", []byte(`{"id":"contract-3","customerId":2,"state":"CREATED","product":"SOCKS","quantity":1,"price":1.0}`))
	if status != 400 {
		t.Fatalf("bad POST: %d %s", status, body)
	}
	same("POST 400", body, doc.example(t, "/v1/orders", "post", "400", "unknownProduct"))

	conflicting := bytes.Replace(created, []byte(`"quantity": 1`), []byte(`"quantity": 2`), 1)
	status, _, body = exchange("POST", "/v1/orders", conflicting)
	if status != 409 {
		t.Fatalf("conflicting POST: %d %s", status, body)
	}
	same("POST 409", body, doc.example(t, "/v1/orders", "post", "409", "conflict"))

	status, _, body = exchange("GET", "/v1/orders/contract-missing?timeout=100", nil)
	if status != 504 {
		t.Fatalf("GET missing: %d %s", status, body)
	}
	same("GET 504", body, doc.example(t, "/v1/orders/{id}", "get", "504", "timeout"))

	for path, name := range map[string]string{"/livez": "ok", "/readyz": "ready"} {
		status, _, body = exchange("GET", path, nil)
		if status != 200 {
			t.Fatalf("GET %s: %d", path, status)
		}
		same("GET "+path, body, doc.example(t, path, "get", "200", name))
	}
	status, _, body = exchange("GET", "/openapi.json", nil)
	if status != 200 || !bytes.Equal(body, orders.OpenAPI) {
		t.Fatalf("GET /openapi.json: %d", status)
	}
}
