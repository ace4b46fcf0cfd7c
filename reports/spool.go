package reports

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// rowSpool keeps rows encoded in one pass for a later section, in a
// temporary file, so a report reads each event from the Source once and
// encodes it once: SOC 2's access log is a subset of its audit log, in the
// same order and encoded the same way (in CSV, all but the record type), and
// reading it again from the database costs a second scan of the whole
// period. Memory stays flat: the file holds the rows, varint-framed.
type rowSpool struct {
	f   *os.File
	w   *bufio.Writer
	n   int64
	hdr [binary.MaxVarintLen64]byte
}

// add keeps one encoded row.
func (s *rowSpool) add(row []byte) error {
	if s.f == nil {
		f, err := os.CreateTemp("", "exportd-spool-*")
		if err != nil {
			return fmt.Errorf("create row spool: %w", err)
		}
		s.f, s.w = f, bufio.NewWriterSize(f, 64<<10)
	}
	n := binary.PutUvarint(s.hdr[:], uint64(len(row)))
	if _, err := s.w.Write(s.hdr[:n]); err != nil {
		return fmt.Errorf("write row spool: %w", err)
	}
	if _, err := s.w.Write(row); err != nil {
		return fmt.Errorf("write row spool: %w", err)
	}
	s.n++
	return nil
}

// each calls fn for every spooled row, in the order they were added. The
// slice is reused between calls.
func (s *rowSpool) each(fn func(row []byte) error) error {
	if s.f == nil {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("flush row spool: %w", err)
	}
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, 0, 1<<62), 64<<10)
	var raw []byte
	for range s.n {
		var err error
		if raw, err = readField(r, raw); err != nil {
			return fmt.Errorf("read row spool: %w", err)
		}
		if err := fn(raw); err != nil {
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
func (s *rowSpool) close() error {
	if s.f == nil {
		return nil
	}
	name := s.f.Name()
	err := errors.Join(s.f.Close(), os.Remove(name))
	s.f = nil
	return err
}
