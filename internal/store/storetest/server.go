package storetest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a PostgreSQL server of a test's own: its own data folder and
// port, stopped when the test ends. Tests that freeze, stop or replicate a
// server use one, never the shared one.
type Server struct {
	DSN  string // postgres://…@127.0.0.1:port/postgres
	Dir  string // data folder
	Port int
	bin  string
	as   string // the user the server runs as ("" for the current one)
	opts string // the server's options, for restarts
	log  string
}

// pgBin finds the folder of PostgreSQL's server programs.
func pgBin() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); fileExists(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return "", fmt.Errorf("initdb not found: install PostgreSQL's server package")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// StartServer initialises and starts a PostgreSQL server for t. It needs
// PostgreSQL's server programs; as root it runs them as the postgres user
// (initdb refuses root). It fails the test when they are missing and
// EnvRequire is set, and skips it otherwise.
func StartServer(t testing.TB) *Server {
	t.Helper()
	bin, err := pgBin()
	if err != nil {
		if os.Getenv(EnvRequire) != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	s := &Server{bin: bin}
	dir, err := os.MkdirTemp("", "exportd-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running PostgreSQL as root needs a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		s.as = "postgres"
	}
	s.Dir = filepath.Join(dir, "data")
	s.run(t, filepath.Join(bin, "initdb"), "-D", s.Dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s.opts = fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", s.Port, dir)
	s.log = filepath.Join(dir, "log")
	s.Start(t)
	t.Cleanup(func() {
		s.Continue(t)
		_ = s.command(filepath.Join(bin, "pg_ctl"), "-D", s.Dir, "-m", "immediate", "-w", "stop").Run()
	})
	s.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port)
	return s
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	if s.as == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("runuser", append([]string{"-u", s.as, "--", name}, args...)...)
}

func (s *Server) run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := s.command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", filepath.Base(name), err, out)
	}
}

// Start starts the server (again).
func (s *Server) Start(t testing.TB) {
	t.Helper()
	s.run(t, filepath.Join(s.bin, "pg_ctl"), "-D", s.Dir, "-o", s.opts, "-l", s.log, "-w", "-t", "60", "start")
}

// Stop shuts the server down at once, closing every connection: an outage.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.run(t, filepath.Join(s.bin, "pg_ctl"), "-D", s.Dir, "-m", "immediate", "-w", "stop")
}

// pids lists the server's processes: the postmaster and its children.
func (s *Server) pids(t testing.TB) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir, "postmaster.pid"))
	if err != nil {
		t.Fatalf("read postmaster.pid: %v", err)
	}
	main, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	out := []int{main}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, so read after ')'.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		f := strings.Fields(rest)
		if len(f) > 1 {
			if ppid, _ := strconv.Atoi(f[1]); ppid == main {
				out = append(out, pid)
			}
		}
	}
	return out
}

// Freeze stops every process of the server (SIGSTOP): connections stay
// open and nothing answers, as with a hung host.
func (s *Server) Freeze(t testing.TB) {
	t.Helper()
	for _, pid := range s.pids(t) {
		_ = syscall.Kill(pid, syscall.SIGSTOP)
	}
}

// Continue lets a frozen server run again.
func (s *Server) Continue(t testing.TB) {
	t.Helper()
	if !fileExists(filepath.Join(s.Dir, "postmaster.pid")) {
		return
	}
	for _, pid := range s.pids(t) {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	time.Sleep(10 * time.Millisecond)
}
