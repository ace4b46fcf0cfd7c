// Command exportctl is the command-line client of exportd: create, watch,
// list and download compliance exports over Connect or gRPC, verify a report
// against its signed manifest offline, dry-run the export policy, and tail
// and verify the tenant's audit log.
//
// Each command group lives in its own file (export.go, verify.go, policy.go,
// events.go, whoami.go) and adds itself to the root in newRoot, so a new
// group is one file and one line.
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
