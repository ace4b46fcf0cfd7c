// Command exportctl is the command-line client of exportd: create, watch,
// list and download compliance exports over Connect or gRPC.
//
// Each command group lives in its own file and adds itself to the root in
// newRoot, so new groups (verify, policy, events) are one file and one line.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
