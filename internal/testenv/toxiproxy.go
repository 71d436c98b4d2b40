package testenv

import (
	"net/http"
	"net/http/httptest"
	"testing"

	toxiserver "github.com/Shopify/toxiproxy/v2"
	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Toxiproxy runs Toxiproxy's own server code in the test process: its
// admin API on an httptest server (closed in t.Cleanup, which a server
// started with its Listen cannot be) and every proxy it creates listening
// on a free loopback port. In process rather than a bin/toxiproxy-server
// binary because nothing then needs building, finding or killing by pid:
// the proxies are deleted and the admin server closed when the test ends.
// It returns the admin URL and a client of it.
func Toxiproxy(t testing.TB) (string, *toxiproxy.Client) {
	t.Helper()
	srv := toxiserver.NewServer(toxiserver.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	r := mux.NewRouter()
	for _, route := range []struct {
		method, path string
		fn           http.HandlerFunc
	}{
		{"POST", "/reset", srv.ResetState},
		{"GET", "/proxies", srv.ProxyIndex},
		{"POST", "/proxies", srv.ProxyCreate},
		{"POST", "/populate", srv.Populate},
		{"GET", "/proxies/{proxy}", srv.ProxyShow},
		{"POST", "/proxies/{proxy}", srv.ProxyUpdate},
		{"DELETE", "/proxies/{proxy}", srv.ProxyDelete},
		{"GET", "/proxies/{proxy}/toxics", srv.ToxicIndex},
		{"POST", "/proxies/{proxy}/toxics", srv.ToxicCreate},
		{"GET", "/proxies/{proxy}/toxics/{toxic}", srv.ToxicShow},
		{"POST", "/proxies/{proxy}/toxics/{toxic}", srv.ToxicUpdate},
		{"DELETE", "/proxies/{proxy}/toxics/{toxic}", srv.ToxicDelete},
		{"GET", "/version", srv.Version},
	} {
		r.HandleFunc(route.path, route.fn).Methods(route.method)
	}
	admin := httptest.NewServer(r)
	client := toxiproxy.NewClient(admin.URL)
	t.Cleanup(func() {
		srv.Collection.Clear()
		admin.Close()
	})
	return admin.URL, client
}

// Proxy creates proxy name in front of upstream (host:port) on a free
// loopback port and returns its listen address.
func Proxy(t testing.TB, c *toxiproxy.Client, name, upstream string) string {
	t.Helper()
	p, err := c.CreateProxy(name, "127.0.0.1:0", upstream)
	if err != nil {
		t.Fatalf("create proxy %s: %v", name, err)
	}
	return p.Listen
}
