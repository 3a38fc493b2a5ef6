// Command nullproxy serves nullproxy.New: a do-nothing reverse proxy for
// the benchmark suite's "proxy" scenario.
//
//	nullproxy --listen 127.0.0.1:8932 --backend http://127.0.0.1:8931
package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/paygate/paygate/bench/nullproxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8932", "address to serve on")
	backend := flag.String("backend", "", "URL of the backend, e.g. http://127.0.0.1:8931 (required)")
	flag.Parse()
	target, err := url.Parse(*backend)
	if *backend == "" || err != nil || target.Host == "" {
		fmt.Fprintln(os.Stderr, "nullproxy: --backend URL is required (for example --backend http://127.0.0.1:8931)")
		os.Exit(2)
	}
	if err := http.ListenAndServe(*listen, nullproxy.New(target)); err != nil {
		fmt.Fprintln(os.Stderr, "nullproxy:", err)
		os.Exit(1)
	}
}
