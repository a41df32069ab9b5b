// Command refcontrol serves tailscale's own test control server
// (tstest/integration/testcontrol) on loopback, as the reference the
// benchmarks measure devmesh's control plane against. It prints its URL
// on the first line of stdout and serves until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration/testcontrol"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	verbose := flag.Bool("v", false, "log the control server's events to stderr")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ctl := &testcontrol.Server{
		Logf:             func(string, ...any) {},
		Verbose:          *verbose,
		DERPMap:          &tailcfg.DERPMap{}, // never the default (Tailscale-operated) map
		AllNodesSameUser: true,
		ExplicitBaseURL:  url,
	}
	if *verbose {
		ctl.Logf = log.Printf
	}
	srv := &http.Server{Handler: ctl, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Println(url)
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
