package reports

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// eventSpool keeps events read in one pass for a later section, in a
// temporary file, so a report reads each row from the Source once: SOC 2's
// access log is a subset of its audit log, in the same order, and reading
// it again from the database costs a second scan of the whole period.
// Memory stays flat: the file holds the events, varint-framed.
type eventSpool struct {
	f   *os.File
	w   *bufio.Writer
	n   int64
	buf []byte
}

func (s *eventSpool) add(e *Event) error {
	if s.f == nil {
		f, err := os.CreateTemp("", "exportd-spool-*")
		if err != nil {
			return fmt.Errorf("create event spool: %w", err)
		}
		s.f, s.w = f, bufio.NewWriterSize(f, 64<<10)
	}
	b := s.buf[:0]
	b = binary.AppendVarint(b, e.Sequence)
	b = binary.AppendVarint(b, e.OccurredAt.UnixMicro())
	for _, v := range [...]string{e.ActorID, e.ActorType, e.Action, e.ResourceType, e.ResourceID,
		e.Outcome, e.Category, e.IP, e.UserAgent, e.RequestID} {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	phi := byte(0)
	if e.PHI {
		phi = 1
	}
	b = append(b, phi)
	var meta []byte
	if len(e.Metadata) > 0 {
		var err error
		if meta, err = json.Marshal(e.Metadata); err != nil {
			return fmt.Errorf("spool event %d metadata: %w", e.Sequence, err)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(meta)))
	b = append(b, meta...)
	s.buf = b
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("write event spool: %w", err)
	}
	s.n++
	return nil
}

// each calls fn for every spooled event, in the order they were added. The
// *Event is reused between calls.
func (s *eventSpool) each(fn func(*Event) error) error {
	if s.f == nil {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("flush event spool: %w", err)
	}
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, 0, 1<<62), 64<<10)
	var (
		e    Event
		strs [10]string
		raw  []byte
	)
	bad := func(err error) error { return fmt.Errorf("read event spool: %w", err) }
	for range s.n {
		seq, err := binary.ReadVarint(r)
		if err != nil {
			return bad(err)
		}
		micro, err := binary.ReadVarint(r)
		if err != nil {
			return bad(err)
		}
		for i := range strs {
			if raw, err = readField(r, raw); err != nil {
				return bad(err)
			}
			strs[i] = string(raw)
		}
		phi, err := r.ReadByte()
		if err != nil {
			return bad(err)
		}
		if raw, err = readField(r, raw); err != nil {
			return bad(err)
		}
		e = Event{Sequence: seq, OccurredAt: time.UnixMicro(micro).UTC(), ActorID: strs[0], ActorType: strs[1],
			Action: strs[2], ResourceType: strs[3], ResourceID: strs[4], Outcome: strs[5], Category: strs[6],
			IP: strs[7], UserAgent: strs[8], RequestID: strs[9], PHI: phi == 1}
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &e.Metadata); err != nil {
				return bad(err)
			}
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return nil
}

func readField(r *bufio.Reader, buf []byte) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return buf, err
	}
	if n > 1<<30 {
		return buf, errors.New("field too long")
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err = io.ReadFull(r, buf)
	return buf, err
}

// close removes the file; it is safe to call more than once.
func (s *eventSpool) close() error {
	if s.f == nil {
		return nil
	}
	name := s.f.Name()
	err := errors.Join(s.f.Close(), os.Remove(name))
	s.f = nil
	return err
}
