// Scrape-benchmark peer: the synthetic series set of `mlops-exporter --bench.synthetic-series N`,
// served by client_golang. One counter family synthetic_requests_total{series="i",shard="i mod 10"}
// with value i for i in 0..<N, on a fresh registry (no Go runtime or process collectors), served by
// promhttp.HandlerFor with default options (gzip is negotiated from Accept-Encoding).
//
// Built offline in GOPATH mode against Debian's golang-github-prometheus-client-golang-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o synthetic-peer main.go
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	listen := flag.String("web.listen-address", "127.0.0.1:0", "address to listen on")
	series := flag.Int("series", 1000, "number of synthetic series")
	flag.Parse()

	reg := prometheus.NewRegistry()
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "synthetic_requests_total",
		Help: "Synthetic series for load tests and benchmarks.",
	}, []string{"series", "shard"})
	reg.MustRegister(vec)
	for i := 0; i < *series; i++ {
		vec.WithLabelValues(strconv.Itoa(i), strconv.Itoa(i%10)).Add(float64(i))
	}

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}
