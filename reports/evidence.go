package reports

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// evidence collects, per control, the events that are its evidence. Only
// count and first/last occurrence stay in memory; the (occurred_at,
// sequence) pairs go to one temporary file per control, delta-encoded as
// varints, each followed by what a reader needs to recognise the event
// without looking it up (action, outcome, actor, resource), so a report over
// millions of events keeps flat memory and reads the events from the Source
// once.
//
// A report may feed evidence in several passes (HIPAA reads PHI events, then
// access events); each pass is ordered by (occurred_at, sequence) and is
// kept as its own segment of the file, and reading back merges the segments
// so a control's sequences come out in report order.
type evidence struct {
	controls []Control
	match    *matcher
	pass     int
	spools   []spool
}

type spool struct {
	count       int64
	first, last int64 // unix microseconds
	f           *os.File
	w           *bufio.Writer
	written     int64
	segs        []int64 // file offsets where each pass begins
	pass        int
	prevMicro   int64
	prevSeq     int64
	buf         [2 * binary.MaxVarintLen64]byte
}

func newEvidence(controls []Control) *evidence {
	return &evidence{controls: controls, match: newMatcher(controls), spools: make([]spool, len(controls))}
}

// nextPass starts a new segment: events after it are ordered independently
// of those before.
func (ev *evidence) nextPass() { ev.pass++ }

func (ev *evidence) add(e *Event) error {
	for _, i := range ev.match.match(e) {
		if err := ev.spools[i].add(ev.pass, e); err != nil {
			return err
		}
	}
	return nil
}

func (s *spool) add(pass int, e *Event) error {
	if s.f == nil {
		f, err := os.CreateTemp("", "exportd-evidence-*")
		if err != nil {
			return fmt.Errorf("create evidence spool: %w", err)
		}
		s.f, s.w = f, bufio.NewWriterSize(f, 4096)
		s.pass = pass - 1
	}
	if s.pass != pass {
		s.segs = append(s.segs, s.written)
		s.pass, s.prevMicro, s.prevSeq = pass, 0, 0
	}
	micro := e.OccurredAt.UnixMicro()
	n := binary.PutVarint(s.buf[:], micro-s.prevMicro)
	n += binary.PutVarint(s.buf[n:], e.Sequence-s.prevSeq)
	if _, err := s.w.Write(s.buf[:n]); err != nil {
		return fmt.Errorf("write evidence spool: %w", err)
	}
	s.written += int64(n)
	for _, f := range [...]string{e.Action, e.Outcome, e.ActorID, e.ActorType, e.ResourceType, e.ResourceID, ActorName(e)} {
		n := binary.PutUvarint(s.buf[:], uint64(len(f)))
		if _, err := s.w.Write(s.buf[:n]); err != nil {
			return fmt.Errorf("write evidence spool: %w", err)
		}
		if _, err := s.w.WriteString(f); err != nil {
			return fmt.Errorf("write evidence spool: %w", err)
		}
		s.written += int64(n + len(f))
	}
	s.prevMicro, s.prevSeq = micro, e.Sequence
	if s.count == 0 || micro < s.first {
		s.first = micro
	}
	if s.count == 0 || micro > s.last {
		s.last = micro
	}
	s.count++
	return nil
}

// cited is one evidence entry read back: the event's sequence and time and
// the fields that make it readable where it is cited.
type cited struct {
	seq                                                                      int64
	at                                                                       time.Time
	action, outcome, actorID, actorType, resourceType, resourceID, actorName []byte
}

// each calls fn for every evidence entry of control i in (occurred_at,
// sequence) order. The entry's byte slices are reused between calls.
func (ev *evidence) each(i int, fn func(c *cited) error) error {
	s := &ev.spools[i]
	if s.f == nil {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("flush evidence spool: %w", err)
	}
	heads := make([]segReader, len(s.segs))
	for j, start := range s.segs {
		end := s.written
		if j+1 < len(s.segs) {
			end = s.segs[j+1]
		}
		heads[j].r = bufio.NewReaderSize(io.NewSectionReader(s.f, start, end-start), 4096)
		if err := heads[j].next(); err != nil {
			return err
		}
	}
	for {
		best := -1
		for j := range heads {
			h := &heads[j]
			if h.done {
				continue
			}
			if best < 0 || h.micro < heads[best].micro || (h.micro == heads[best].micro && h.seq < heads[best].seq) {
				best = j
			}
		}
		if best < 0 {
			return nil
		}
		h := &heads[best]
		h.c.seq, h.c.at = h.seq, time.UnixMicro(h.micro).UTC()
		if err := fn(&h.c); err != nil {
			return err
		}
		if err := h.next(); err != nil {
			return err
		}
	}
}

type segReader struct {
	r          *bufio.Reader
	micro, seq int64
	done       bool
	c          cited
}

func (h *segReader) next() error {
	dm, err := binary.ReadVarint(h.r)
	if errors.Is(err, io.EOF) {
		h.done = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("read evidence spool: %w", err)
	}
	ds, err := binary.ReadVarint(h.r)
	if err != nil {
		return fmt.Errorf("read evidence spool: %w", err)
	}
	h.micro += dm
	h.seq += ds
	for _, f := range [...]*[]byte{&h.c.action, &h.c.outcome, &h.c.actorID, &h.c.actorType, &h.c.resourceType, &h.c.resourceID, &h.c.actorName} {
		if *f, err = readField(h.r, *f); err != nil {
			return fmt.Errorf("read evidence spool: %w", err)
		}
	}
	return nil
}

// close removes the spool files; it is safe to call more than once.
func (ev *evidence) close() error {
	var errs []error
	for i := range ev.spools {
		s := &ev.spools[i]
		if s.f == nil {
			continue
		}
		name := s.f.Name()
		errs = append(errs, s.f.Close(), os.Remove(name))
		s.f = nil
	}
	return errors.Join(errs...)
}
