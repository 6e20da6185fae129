package orders_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/orders"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// Found by review: a POST whose body was still arriving when shutdown began was not bounded
// by the drain (the body is read before the request's context exists), so the HTTP server's
// 15 s shutdown bound passed and the connection was dropped without an answer. Now the read
// is cut when the drain ends and the client gets 503.
func TestSlowBodyPostIsAnsweredOnShutdown(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 2})
	in := startInstance(t, env, "slowbody", func(c *orders.Config) { c.DrainTimeout = 500 * time.Millisecond })
	conn, err := net.Dial("tcp", in.svc.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"id\":"))
	time.Sleep(200 * time.Millisecond)
	began := time.Now()
	stopped := make(chan struct{})
	go func() { in.stop(); close(stopped) }()
	_ = conn.SetReadDeadline(time.Now().Add(25 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	t.Logf("after %v: %q %v", time.Since(began).Round(100*time.Millisecond), line, err)
	<-stopped
	if !strings.Contains(line, " 503 ") {
		t.Fatalf("slow-body POST on shutdown: %q %v after %v, want a 503", line, err, time.Since(began).Round(100*time.Millisecond))
	}
}
