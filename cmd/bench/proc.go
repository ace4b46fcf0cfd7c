package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is one exportd serve process.
type server struct {
	cmd  *exec.Cmd
	url  string
	logf string
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done
}

// optionalServeFlags are passed only when this exportd knows them: they lift
// guards that would otherwise throttle a benchmark (per-key rate limits,
// per-tenant queue caps), so the figures measure the work, not the limits;
// and the retention purge, which visits every tenant when the server starts
// and would mix its statements into the ones the capture records.
var optionalServeFlags = [][2]string{
	{"rate-limit", "0"},
	{"max-queued-per-tenant", "0"},
	{"max-running-per-tenant", "0"},
	{"retention-interval", "0"},
}

// startServer starts exportd serve on dsn with workers export workers and
// waits until /healthz answers.
func (b *bench) startServer(ctx context.Context, dsn string, workers int) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--database-url", dsn, "--data-dir", filepath.Join(b.dir, "data"),
		"--addr", "127.0.0.1:" + port, "--workers", strconv.Itoa(workers), "--log-level", "warn"}
	known, err := b.serveFlags(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range optionalServeFlags {
		if known[f[0]] {
			args = append(args, "--"+f[0], f[1])
		}
	}
	logf := filepath.Join(b.dir, "exportd-"+port+".log")
	lf, err := os.Create(logf)
	if err != nil {
		return nil, fmt.Errorf("create server log: %w", err)
	}
	cmd := exec.Command(b.bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		_ = lf.Close()
		return nil, fmt.Errorf("start exportd: %w", err)
	}
	s := &server{cmd: cmd, url: "http://127.0.0.1:" + port, logf: logf, done: make(chan struct{})}
	go func() { s.err = cmd.Wait(); _ = lf.Close(); close(s.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("exportd exited at start (%v): %s", s.err, s.logTail())
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("exportd did not answer /healthz within a minute: %s", s.logTail())
		}
	}
}

// serveFlags lists the flags `exportd serve` accepts.
func (b *bench) serveFlags(ctx context.Context) (map[string]bool, error) {
	out, _ := exec.CommandContext(ctx, b.bin, "serve", "-h").CombinedOutput()
	known := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "-") {
			name, _, _ := strings.Cut(strings.TrimLeft(line, "-"), " ")
			known[name] = true
		}
	}
	if !known["addr"] {
		return nil, fmt.Errorf("exportd serve -h lists no --addr flag: %s", tail(string(out), 500))
	}
	return known, nil
}

// peakRSS is the process's resident set high-water mark (VmHWM), in bytes.
func (s *server) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("read peak RSS: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				n, err := strconv.ParseInt(f[0], 10, 64)
				return n << 10, err
			}
		}
	}
	return 0, errors.New("read peak RSS: no VmHWM in /proc status")
}

// stop ends the server with SIGTERM (its graceful shutdown), killing it
// after 20 seconds.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	// The exit status says nothing the log does not: it is not looked at.
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.logf)
	return tail(string(b), 2000)
}

// freePort asks the kernel for a free loopback port.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer func() { _ = ln.Close() }()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port, nil
}
