package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/exportd/exportd/internal/store"
)

// watchHub polls, for every WatchExport stream of this process, the jobs
// they follow: one query per interval for all of them, instead of one per
// stream. Polling the job rows (not listening to a worker) follows a job on
// whichever replica runs it; sharing the poll keeps hundreds of idle
// watches from holding hundreds of database connections.
type watchHub struct {
	store    JobStore
	interval time.Duration
	log      *slog.Logger
	// kick asks for a poll now, of the jobs not polled yet, so that a new
	// watch does not wait an interval for its first message.
	kick chan struct{}

	mu      sync.Mutex
	jobs    map[store.JobRef]*watchedJob
	running bool // the poller runs; it stops when nothing is watched
}

// watchedJob is the latest state of one job, shared by its watches.
type watchedJob struct {
	subs int // under watchHub.mu

	mu    sync.Mutex
	snap  *jobSnapshot  // nil until the first poll
	fresh chan struct{} // closed when a newer snapshot is published
}

// jobSnapshot is the job as one poll read it, or why it could not be read.
type jobSnapshot struct {
	job *store.Job
	err error
}

func newWatchHub(st JobStore, interval time.Duration, log *slog.Logger) *watchHub {
	return &watchHub{store: st, interval: interval, log: log, kick: make(chan struct{}, 1), jobs: map[store.JobRef]*watchedJob{}}
}

// subscribe starts following ref; call unsubscribe when done.
func (h *watchHub) subscribe(ref store.JobRef) *watchedJob {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.jobs[ref]
	if w == nil {
		w = &watchedJob{fresh: make(chan struct{})}
		h.jobs[ref] = w
	}
	w.subs++
	if !h.running {
		h.running = true
		go h.run()
	}
	if s, _ := w.state(); s == nil {
		select {
		case h.kick <- struct{}{}:
		default:
		}
	}
	return w
}

func (h *watchHub) unsubscribe(ref store.JobRef, w *watchedJob) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w.subs--
	if w.subs == 0 && h.jobs[ref] == w {
		delete(h.jobs, ref)
	}
}

// state returns the latest snapshot (nil before the first poll) and a
// channel closed when a newer one is published.
func (w *watchedJob) state() (*jobSnapshot, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snap, w.fresh
}

func (w *watchedJob) publish(s *jobSnapshot) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.snap = s
	close(w.fresh)
	w.fresh = make(chan struct{})
}

// run polls every interval, and at once when kicked, until nothing is
// watched.
func (h *watchHub) run() {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		onlyNew := false
		select {
		case <-t.C:
		case <-h.kick:
			onlyNew = true
		}
		h.mu.Lock()
		if len(h.jobs) == 0 {
			h.running = false
			h.mu.Unlock()
			return
		}
		due := make(map[store.JobRef]*watchedJob, len(h.jobs))
		for ref, w := range h.jobs {
			if s, _ := w.state(); !onlyNew || s == nil {
				due[ref] = w
			}
		}
		h.mu.Unlock()
		h.poll(due)
	}
}

// poll reads the due jobs and publishes what it read. A job that ended, or
// is not there, is dropped from the hub: its watches end on this snapshot,
// and a later watch polls it afresh.
func (h *watchHub) poll(due map[store.JobRef]*watchedJob) {
	if len(due) == 0 {
		return
	}
	refs := make([]store.JobRef, 0, len(due))
	for ref := range due {
		refs = append(refs, ref)
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(10*time.Second, 4*h.interval))
	defer cancel()
	jobs, err := h.store.JobsOf(ctx, refs)
	if err != nil {
		// The watches keep their last state (and their keepalives) and
		// see the job again at the next poll that works.
		h.log.Warn("poll watched exports", "jobs", len(refs), "err", err)
		return
	}
	var done []store.JobRef
	for ref, w := range due {
		j := jobs[ref]
		if j == nil {
			w.publish(&jobSnapshot{err: store.JobNotFound(ref.ID)})
			done = append(done, ref)
			continue
		}
		w.publish(&jobSnapshot{job: j})
		if terminal(j.Status) {
			done = append(done, ref)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ref := range done {
		if h.jobs[ref] == due[ref] {
			delete(h.jobs, ref)
		}
	}
}
