package service

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The admin routes answer GET and HEAD, and 405 with an Allow header otherwise
// (schemathesis found TRACE /livez answered 200).
func TestHealthRoutesAnswerOnlyGetAndHead(t *testing.T) {
	h := NewHealth()
	h.Add("check", func() error { return errors.New("not yet") })
	handler := h.Handler()
	cases := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/livez", http.StatusOK},
		{http.MethodHead, "/livez", http.StatusOK},
		{http.MethodGet, "/readyz", http.StatusServiceUnavailable},
		{http.MethodGet, "/metrics", http.StatusOK},
		{http.MethodTrace, "/livez", http.StatusMethodNotAllowed},
		{http.MethodPost, "/readyz", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/metrics", http.StatusMethodNotAllowed},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, rec.Code, c.want)
		}
		if c.want == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", c.method, c.path, rec.Header().Get("Allow"))
		}
	}
}
