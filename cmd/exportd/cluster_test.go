package main_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file://
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/reports"
)

// These tests run exportd as real processes on one PostgreSQL and one
// bucket, and kill, pause and resume them.

// binary is the exportd binary TestMain builds.
func binary(t *testing.T) string {
	t.Helper()
	return bins.exportd
}

// cluster is one PostgreSQL schema and one file bucket shared by exportd
// processes.
type cluster struct {
	t       *testing.T
	dsn     string
	blobURL string
	bucket  *blob.Bucket
	store   *store.Store
	tenant  string
	key     string
	flags   []string
}

func newCluster(t *testing.T, events int, flags ...string) *cluster {
	t.Helper()
	dsn := storetest.PostgresDSN(t)
	dir := t.TempDir()
	blobURL := (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir), RawQuery: "no_tmp_dir=true"}).String()
	c := &cluster{t: t, dsn: dsn, blobURL: blobURL, flags: flags}
	c.tenant = c.admin("tenant", "create", "--name", "Acme Health", "--compliance-pack")
	c.key = c.admin("apikey", "create", "--tenant", c.tenant, "--role", "auditor", "--principal", "audrey@example.com")
	c.admin("seed-demo", "--tenant", c.tenant, "--events", fmt.Sprint(events), "--from", "2025-01-01", "--to", "2025-12-31")
	ctx := context.Background()
	st, err := store.Open(ctx, dsn, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c.store = st
	b, err := blob.OpenBucket(ctx, blobURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	c.bucket = b
	return c
}

// admin runs an admin subcommand and returns its output line.
func (c *cluster) admin(args ...string) string {
	c.t.Helper()
	cmd := exec.Command(binary(c.t), append(args, "--database-url", c.dsn)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("exportd %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// proc is a running `exportd serve`.
type proc struct {
	cmd   *exec.Cmd
	addr  string
	owner string
	logs  *logLines
	done  chan struct{}
}

// logLines keeps a process's JSON log lines.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
	raw   []string
}

func (l *logLines) add(line string) {
	var m map[string]any
	_ = json.Unmarshal([]byte(line), &m)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.raw = append(l.raw, line)
	if m != nil {
		l.lines = append(l.lines, m)
	}
}

// messages returns the log entries whose msg is msg.
func (l *logLines) messages(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, m := range l.lines {
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.raw, "\n")
}

// start runs `exportd serve` and waits until it listens.
func (c *cluster) start() *proc {
	c.t.Helper()
	args := append([]string{"serve", "--database-url", c.dsn, "--blob-url", c.blobURL, "--addr", "127.0.0.1:0",
		"--log-format", "json", "--data-dir", c.t.TempDir()}, c.flags...)
	cmd := exec.Command(binary(c.t), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: &logLines{}, done: make(chan struct{})}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.logs.add(line)
			if strings.Contains(line, `"exportd listening"`) {
				var m map[string]any
				_ = json.Unmarshal([]byte(line), &m)
				p.addr, _ = m["addr"].(string)
				p.owner, _ = m["lease_owner"].(string)
				close(listening)
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	c.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		<-p.done
		if c.t.Failed() {
			c.t.Logf("log of %s:\n%s", p.owner, p.logs)
		}
	})
	select {
	case <-listening:
	case <-p.done:
		c.t.Fatalf("exportd exited before listening:\n%s", p.logs)
	case <-time.After(60 * time.Second):
		c.t.Fatalf("exportd did not start:\n%s", p.logs)
	}
	return p
}

// kill ends the process with SIGKILL: no shutdown, no cleanup.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// create queues n exports of the seeded year through the API of p.
func (c *cluster) create(p *proc, n int) []string {
	c.t.Helper()
	client := auditv1connect.NewExportServiceClient(http.DefaultClient, "http://"+p.addr)
	ids := make([]string, 0, n)
	for range n {
		req := connect.NewRequest(&auditv1.CreateExportRequest{
			ReportType: "soc2",
			StartDate:  timestamppb.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)),
			EndDate:    timestamppb.New(time.Date(2025, 12, 30, 23, 59, 59, 0, time.UTC)),
			Format:     "json",
		})
		req.Header().Set("X-API-Key", c.key)
		res, err := client.CreateExport(context.Background(), req)
		if err != nil {
			c.t.Fatalf("CreateExport: %v", err)
		}
		ids = append(ids, res.Msg.GetJobId())
	}
	return ids
}

func (c *cluster) jobs() []*store.Job {
	c.t.Helper()
	var js []*store.Job
	f := store.JobFilter{PageSize: 500}
	for {
		page, next, err := c.store.ListJobs(context.Background(), c.tenant, f)
		if err != nil {
			c.t.Fatal(err)
		}
		js = append(js, page...)
		if next == "" {
			return js
		}
		f.PageToken = next
	}
}

// waitFor polls cond until it holds, failing the test after limit.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting %s for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// blobs lists every key in the bucket.
// waitProgress polls cond until it says done, and fails when the progress
// it reports has not grown for stall.
func waitProgress(t *testing.T, stall time.Duration, what string, cond func() (progress int64, done bool)) {
	t.Helper()
	last, since := int64(-1), time.Now()
	for {
		p, done := cond()
		if done {
			return
		}
		if p != last {
			last, since = p, time.Now()
		} else if time.Since(since) > stall {
			t.Fatalf("no progress for %s waiting for %s", stall, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *cluster) blobs() []string {
	c.t.Helper()
	var keys []string
	it := c.bucket.List(nil)
	for {
		o, err := it.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return keys
		}
		if err != nil {
			c.t.Fatal(err)
		}
		keys = append(keys, o.Key)
	}
}

// verifyArtifacts checks every job COMPLETED with an artifact whose bytes
// hash to the manifest's SHA-256, and, once the sweeper ran, that the bucket
// holds exactly the committed artifacts.
func (c *cluster) verifyArtifacts(ids []string) {
	c.t.Helper()
	ctx := context.Background()
	want := map[string]bool{}
	for _, j := range c.jobs() {
		if j.Status != store.JobCompleted {
			c.t.Errorf("job %s is %s (%s), want COMPLETED", j.ID, j.Status, j.Error)
			continue
		}
		var m reports.Manifest
		if err := json.Unmarshal(j.Manifest, &m); err != nil {
			c.t.Fatalf("manifest of %s: %v", j.ID, err)
		}
		r, err := c.bucket.NewReader(ctx, j.ArtifactKey, nil)
		if err != nil {
			c.t.Fatalf("artifact of %s: %v", j.ID, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, r)
		r.Close()
		if err != nil {
			c.t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != m.ReportSHA256 || got != j.ArtifactSha256 || n != m.ReportSize {
			c.t.Errorf("job %s: artifact SHA-256 %s (%d bytes), manifest %s (%d bytes), row %s", j.ID, got, n, m.ReportSHA256, m.ReportSize, j.ArtifactSha256)
		}
		want[j.ArtifactKey] = true
	}
	if len(want) != len(ids) {
		c.t.Errorf("%d distinct committed artifacts for %d jobs", len(want), len(ids))
	}
	var orphans []string
	waitUntil(c.t, 30*time.Second, "the sweeper to delete orphaned attempts", func() bool {
		orphans = orphans[:0]
		for _, k := range c.blobs() {
			if !want[k] {
				orphans = append(orphans, k)
			}
		}
		return len(orphans) == 0
	})
}

// completions counts "export completed" log lines per job over processes.
func completions(procs []*proc) map[string][]string {
	out := map[string][]string{}
	for _, p := range procs {
		for _, m := range p.logs.messages("export completed") {
			id, _ := m["job_id"].(string)
			out[id] = append(out[id], p.owner)
		}
	}
	return out
}

const faultJobs = 20

// TestFaultInjection kills exportd with SIGKILL in the middle of export jobs
// again and again, restarting it each time, and checks that every job still
// completes exactly once, with an artifact that matches its manifest, and
// that no blob of an abandoned attempt is left.
func TestFaultInjection(t *testing.T) {
	t.Parallel()
	const (
		kills = 10
		lease = 2 * time.Second
	)
	c := newCluster(t, 500000, "--lease", lease.String(), "--workers", "1", "--sweep-interval", "1s", "--retry-base", "100ms")
	var procs []*proc
	p := c.start()
	procs = append(procs, p)
	ids := c.create(p, faultJobs)

	type interrupted struct {
		attempt int
		at      time.Time
	}
	pending := map[string]interrupted{} // jobs killed mid-attempt, not yet taken over
	var longest time.Duration
	takeovers := 0
	observe := func() {
		now := time.Now()
		for _, j := range c.jobs() {
			if in, ok := pending[j.ID]; ok && (j.Attempt > in.attempt || j.Status == store.JobCompleted) {
				longest = max(longest, now.Sub(in.at))
				takeovers++
				delete(pending, j.ID)
			}
		}
	}
	for kill := 1; kill <= kills; kill++ {
		var victims []*store.Job
		waitUntil(t, 90*time.Second, fmt.Sprintf("a job with progress before kill %d", kill), func() bool {
			observe()
			victims = victims[:0]
			progressed := false
			for _, j := range c.jobs() {
				if j.Status == store.JobRunning && j.LeaseOwner == p.owner {
					victims = append(victims, j)
					progressed = progressed || j.RowsDone > 0
				}
			}
			return progressed
		})
		p.kill(t)
		at := time.Now()
		for _, j := range victims {
			pending[j.ID] = interrupted{j.Attempt, at}
		}
		// Restart once the victims' leases lapsed, as a replica would be
		// there to take them: otherwise the new process's workers would be
		// busy with younger jobs claimed while the leases still held.
		time.Sleep(lease)
		p = c.start()
		procs = append(procs, p)
	}
	// Every job completes. How long that takes depends on the machine (20
	// exports of half a million events on one worker), so the test fails
	// only when the jobs stop making progress, not after a fixed time.
	waitProgress(t, 90*time.Second, "every job to complete", func() (int64, bool) {
		observe()
		var progress int64
		all := true
		for _, j := range c.jobs() {
			progress += j.RowsDone
			if j.Status == store.JobCompleted {
				progress += 1 << 40
			} else {
				all = false
			}
		}
		return progress, all
	})
	observe()
	c.verifyArtifacts(ids)

	lost, duplicated := 0, 0
	done := completions(procs)
	for _, j := range c.jobs() {
		switch n := len(done[j.ID]); {
		case j.Status != store.JobCompleted || n == 0:
			lost++
		case n > 1:
			duplicated++
		}
		// A killed worker is no failure of the job: with the default
		// --max-attempts the kills must use up none.
		if j.Failures != 0 {
			t.Errorf("job %s counted %d failed attempts (%q) though its only trouble was killed workers", j.ID, j.Failures, j.Error)
		}
	}
	if len(pending) > 0 {
		t.Errorf("%d interrupted jobs were never taken over", len(pending))
	}
	t.Logf("kills survived: %d, jobs: %d, lost: %d, duplicated: %d, takeovers: %d, longest takeover: %s from the kill (lease %s)",
		kills, len(ids), lost, duplicated, takeovers, longest.Round(time.Millisecond), lease)
	if lost != 0 || duplicated != 0 {
		t.Errorf("lost %d and duplicated %d jobs", lost, duplicated)
	}
}

// TestReplicas runs three exportd processes on one PostgreSQL and one bucket
// and checks that they share 60 jobs, each executed to completion by exactly
// one of them.
func TestReplicas(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2000, "--lease", "5s", "--workers", "2", "--sweep-interval", "1s")
	procs := []*proc{c.start(), c.start(), c.start()}
	var ids []string
	for i := range 6 {
		ids = append(ids, c.create(procs[i%3], 10)...)
	}
	waitUntil(t, 90*time.Second, "60 jobs to complete", func() bool {
		done, _, err := c.store.ListJobs(context.Background(), c.tenant,
			store.JobFilter{Status: string(store.JobCompleted), PageSize: len(ids) + 1})
		return err == nil && len(done) == len(ids)
	})
	c.verifyArtifacts(ids)

	owners := map[string]bool{}
	for _, p := range procs {
		owners[p.owner] = true
	}
	perOwner := map[string]int{}
	done := completions(procs)
	for _, j := range c.jobs() {
		if !owners[j.CompletedBy] {
			t.Errorf("job %s completed by %q, not one of the replicas", j.ID, j.CompletedBy)
		}
		if got := done[j.ID]; len(got) != 1 || got[0] != j.CompletedBy {
			t.Errorf("job %s: completion logged by %v, recorded as %s", j.ID, got, j.CompletedBy)
		}
		perOwner[j.CompletedBy]++
	}
	t.Logf("jobs completed per replica: %v", perOwner)
	if len(perOwner) != 3 {
		t.Errorf("work was not shared: %v", perOwner)
	}
}

var attemptRE = regexp.MustCompile(`/attempt-(\d+)/`)

// TestFencing pauses a worker (SIGSTOP) past its lease in the middle of a
// job, lets another process take the job over, then resumes the first: it
// must not complete the job or overwrite the artifact of the attempt that
// took over.
func TestFencing(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 600000, "--lease", "2s", "--workers", "1", "--sweep-interval", "1s")
	a := c.start()
	ids := c.create(a, 1)
	var first *store.Job
	waitUntil(t, 60*time.Second, "the job to make progress", func() bool {
		js := c.jobs()
		first = js[0]
		return first.Status == store.JobRunning && first.RowsDone > 0
	})
	a.signal(t, syscall.SIGSTOP)
	b := c.start()
	waitUntil(t, 60*time.Second, "the second process to take the job over", func() bool {
		j := c.jobs()[0]
		return j.Attempt > first.Attempt && j.LeaseOwner == b.owner
	})
	a.signal(t, syscall.SIGCONT)
	var fencedAt string
	waitUntil(t, 60*time.Second, "the paused worker to notice it lost the job", func() bool {
		switch {
		case len(a.logs.messages("export stopped: it was cancelled or another attempt took it over")) > 0:
			fencedAt = "its heartbeat"
		case len(a.logs.messages("export finished after another attempt took it over; its artifact is discarded")) > 0:
			fencedAt = "its commit"
		}
		return fencedAt != ""
	})
	waitUntil(t, 60*time.Second, "the job to complete", func() bool {
		return c.jobs()[0].Status == store.JobCompleted
	})
	j := c.jobs()[0]
	if j.CompletedBy != b.owner || j.Attempt != first.Attempt+1 {
		t.Errorf("completed by %s at attempt %d; want %s at attempt %d", j.CompletedBy, j.Attempt, b.owner, first.Attempt+1)
	}
	if m := attemptRE.FindStringSubmatch(j.ArtifactKey); m == nil || m[1] != fmt.Sprint(j.Attempt) {
		t.Errorf("artifact key %s is not the committing attempt's", j.ArtifactKey)
	}
	if n := len(a.logs.messages("export completed")); n != 0 {
		t.Errorf("the paused worker logged %d completions", n)
	}
	c.verifyArtifacts(ids)
	t.Logf("attempt %d by %s was fenced out at %s; attempt %d by %s committed %s", first.Attempt, a.owner, fencedAt, j.Attempt, j.CompletedBy, j.ArtifactKey)
}
