package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// statement is one SQL statement a client executed, as seen on the wire:
// the text, the bound parameters (text format; nil is NULL) and the rows it
// returned (text format), with their column names.
type statement struct {
	seq     int64
	conn    int64 // which client connection sent it
	SQL     string
	Params  []*string
	Columns []string
	Rows    [][]*string
	results []int16 // result format codes from Bind
}

// wireProxy forwards TCP connections to a PostgreSQL server and, while
// capturing, records every statement the clients execute. It reads the
// frontend and backend protocol streams without altering a byte, so the
// server under test runs exactly as it would against PostgreSQL directly.
// It needs a plain connection (sslmode=disable).
type wireProxy struct {
	ln     net.Listener
	target string

	mu        sync.Mutex
	capturing bool
	next      int64
	nextConn  int64
	captured  []*statement
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
}

func newWireProxy(target string) (*wireProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the capture proxy: %w", err)
	}
	p := &wireProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where clients connect instead of the server.
func (p *wireProxy) Addr() string { return p.ln.Addr().String() }

// Capture starts recording statements, dropping what was recorded before.
func (p *wireProxy) Capture() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.capturing, p.captured = true, nil
}

// Stop stops recording and returns the statements executed since Capture,
// in the order they were sent.
func (p *wireProxy) Stop() []*statement {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.capturing = false
	out := p.captured
	p.captured = nil
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return withoutBackground(out)
}

// background names the tables only exportd's periodic work touches while a
// request runs (role reloads, webhook delivery polls, maintenance leases,
// signing key reloads): statements on them are not the request's.
var background = regexp.MustCompile(`(?i)\b(authz_versions|casbin_rules|webhook_deliveries|maintenance_leases|signing_keys)\b`)

// withoutBackground drops the statements of periodic work, whole
// transactions at a time, per connection, so that what remains is exactly
// what the captured requests sent.
func withoutBackground(sts []*statement) []*statement {
	drop := map[*statement]bool{}
	open := map[int64][]*statement{} // a connection's transaction so far
	tainted := map[int64]bool{}
	for _, st := range sts {
		q := strings.ToUpper(strings.TrimSpace(st.SQL))
		switch {
		case strings.HasPrefix(q, "BEGIN") || strings.HasPrefix(q, "START TRANSACTION"):
			open[st.conn] = []*statement{st}
			tainted[st.conn] = false
			continue
		case open[st.conn] != nil:
			open[st.conn] = append(open[st.conn], st)
			tainted[st.conn] = tainted[st.conn] || background.MatchString(st.SQL)
			if strings.HasPrefix(q, "COMMIT") || strings.HasPrefix(q, "ROLLBACK") || strings.HasPrefix(q, "END") {
				if tainted[st.conn] {
					for _, t := range open[st.conn] {
						drop[t] = true
					}
				}
				delete(open, st.conn)
			}
			continue
		}
		if background.MatchString(st.SQL) {
			drop[st] = true
		}
	}
	out := sts[:0]
	for _, st := range sts {
		if !drop[st] {
			out = append(out, st)
		}
	}
	return out
}

// Close stops accepting and cuts every connection.
func (p *wireProxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *wireProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.mu.Lock()
		p.nextConn++
		pc := &proxyConn{p: p, id: p.nextConn}
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			pc.frontend(io.TeeReader(c, s))
			_ = s.Close()
			p.forget(c, s)
		}()
		go func() {
			defer p.wg.Done()
			pc.backend(io.TeeReader(s, c))
			_ = c.Close()
			p.forget(c, s)
		}()
	}
}

func (p *wireProxy) forget(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

// proxyConn is the protocol state of one client connection.
type proxyConn struct {
	p        *wireProxy
	id       int64
	mu       sync.Mutex
	prepared map[string]string // statement name → SQL
	bound    map[string]bound  // portal name → statement and parameters
	pending  []*statement      // executed, awaiting CommandComplete
	columns  []string          // last RowDescription: names
	types    []uint32          // and type oids
}

type bound struct {
	sql     string
	params  []*string
	results []int16
}

// frontend reads what the client sends. Everything it reads has already
// been forwarded; it stops at the first error (the connection ended).
func (pc *proxyConn) frontend(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	pc.prepared, pc.bound = map[string]string{}, map[string]bound{}
	// Startup: untyped messages until the StartupMessage proper.
	for {
		body, err := readMessage(br, false)
		if err != nil {
			_, _ = io.Copy(io.Discard, br)
			return
		}
		if len(body) >= 4 {
			code := binary.BigEndian.Uint32(body)
			if code != 80877103 && code != 80877104 { // SSLRequest, GSSENCRequest
				break
			}
		}
	}
	for {
		typ, err := br.ReadByte()
		if err != nil {
			return
		}
		body, err := readMessage(br, true)
		if err != nil {
			_, _ = io.Copy(io.Discard, br)
			return
		}
		m := msg{b: body}
		switch typ {
		case 'P': // Parse
			name, sql := m.cstring(), m.cstring()
			pc.mu.Lock()
			pc.prepared[name] = sql
			pc.mu.Unlock()
		case 'B': // Bind
			portal, name := m.cstring(), m.cstring()
			nf := int(m.int16())
			formats := make([]int16, nf)
			for i := range formats {
				formats[i] = m.int16()
			}
			np := int(m.int16())
			params := make([]*string, np)
			for i := range params {
				v := m.bytes()
				if v == nil {
					continue
				}
				s := string(v)
				if f := formatOf(formats, i); f == 1 {
					s = fmt.Sprintf("\\x%x", v) // binary: bytea is the only case lib/pq sends
				}
				params[i] = &s
			}
			results := make([]int16, max(0, int(m.int16())))
			for i := range results {
				results[i] = m.int16()
			}
			pc.mu.Lock()
			pc.bound[portal] = bound{sql: pc.prepared[name], params: params, results: results}
			pc.mu.Unlock()
		case 'E': // Execute
			portal := m.cstring()
			pc.mu.Lock()
			b := pc.bound[portal]
			pc.mu.Unlock()
			pc.executed(&statement{SQL: b.sql, Params: b.params, results: b.results})
		case 'Q': // simple Query
			pc.executed(&statement{SQL: m.cstring()})
		case 'X': // Terminate
			return
		}
		if m.err != nil {
			return
		}
	}
}

func formatOf(formats []int16, i int) int16 {
	switch len(formats) {
	case 0:
		return 0
	case 1:
		return formats[0]
	}
	if i < len(formats) {
		return formats[i]
	}
	return 0
}

func (pc *proxyConn) executed(st *statement) {
	p := pc.p
	p.mu.Lock()
	st.seq = p.next
	st.conn = pc.id
	p.next++
	if p.capturing {
		p.captured = append(p.captured, st)
	}
	p.mu.Unlock()
	pc.mu.Lock()
	pc.pending = append(pc.pending, st)
	pc.mu.Unlock()
}

// backend reads what the server answers, attaching rows to the statement
// they answer.
func (pc *proxyConn) backend(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		typ, err := br.ReadByte()
		if err != nil {
			return
		}
		body, err := readMessage(br, true)
		if err != nil {
			_, _ = io.Copy(io.Discard, br)
			return
		}
		m := msg{b: body}
		pc.mu.Lock()
		switch typ {
		case 'T': // RowDescription
			n := int(m.int16())
			cols := make([]string, n)
			types := make([]uint32, n)
			for i := range cols {
				cols[i] = m.cstring()
				m.skip(6) // table oid, attribute number
				types[i] = m.uint32()
				m.skip(8) // type size, modifier, format
			}
			pc.columns, pc.types = cols, types
		case 'D': // DataRow
			if len(pc.pending) > 0 {
				st := pc.pending[0]
				n := int(m.int16())
				row := make([]*string, n)
				for i := range row {
					if v := m.bytes(); v != nil {
						s := pc.text(v, i, st.results)
						row[i] = &s
					}
				}
				p := pc.p
				p.mu.Lock() // the capture list shares the statement
				st.Columns = pc.columns
				st.Rows = append(st.Rows, row)
				p.mu.Unlock()
			}
		case 'C', 'I': // CommandComplete, EmptyQueryResponse
			if len(pc.pending) > 0 {
				pc.pending = pc.pending[1:]
			}
		case 'Z': // ReadyForQuery: an error skipped the rest of the batch
			pc.pending = pc.pending[:0]
		}
		pc.mu.Unlock()
	}
}

// text renders column i of a row as PostgreSQL's text format would: lib/pq
// asks for some results in binary.
func (pc *proxyConn) text(v []byte, i int, formats []int16) string {
	if formatOf(formats, i) != 1 {
		return string(v)
	}
	var typ uint32
	if i < len(pc.types) {
		typ = pc.types[i]
	}
	switch {
	case typ == 20 && len(v) == 8: // int8
		return strconv.FormatInt(int64(binary.BigEndian.Uint64(v)), 10)
	case typ == 23 && len(v) == 4: // int4
		return strconv.FormatInt(int64(int32(binary.BigEndian.Uint32(v))), 10)
	case typ == 21 && len(v) == 2: // int2
		return strconv.FormatInt(int64(int16(binary.BigEndian.Uint16(v))), 10)
	case typ == 16 && len(v) == 1: // bool
		if v[0] != 0 {
			return "t"
		}
		return "f"
	}
	return fmt.Sprintf("\\x%x", v)
}

// readMessage reads a length-prefixed message body (the length counts
// itself).
func readMessage(r *bufio.Reader, typed bool) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:])) - 4
	if n < 0 || n > 1<<30 {
		return nil, errors.New("bad message length")
	}
	body := make([]byte, n)
	_, err := io.ReadFull(r, body)
	return body, err
}

// msg decodes the fields of one protocol message.
type msg struct {
	b   []byte
	err error
}

func (m *msg) cstring() string {
	for i, c := range m.b {
		if c == 0 {
			s := string(m.b[:i])
			m.b = m.b[i+1:]
			return s
		}
	}
	m.err = errors.New("unterminated string")
	m.b = nil
	return ""
}

func (m *msg) uint32() uint32 {
	if len(m.b) < 4 {
		m.err = errors.New("short message")
		return 0
	}
	v := binary.BigEndian.Uint32(m.b)
	m.b = m.b[4:]
	return v
}

func (m *msg) int16() int16 {
	if len(m.b) < 2 {
		m.err = errors.New("short message")
		return 0
	}
	v := int16(binary.BigEndian.Uint16(m.b))
	m.b = m.b[2:]
	return v
}

// bytes reads an int32-length-prefixed value; -1 is NULL (nil).
func (m *msg) bytes() []byte {
	if len(m.b) < 4 {
		m.err = errors.New("short message")
		return nil
	}
	n := int32(binary.BigEndian.Uint32(m.b))
	m.b = m.b[4:]
	if n < 0 {
		return nil
	}
	if int(n) > len(m.b) {
		m.err = errors.New("short message")
		return nil
	}
	v := m.b[:n]
	m.b = m.b[n:]
	if v == nil {
		v = []byte{}
	}
	return v
}

func (m *msg) skip(n int) {
	if len(m.b) < n {
		m.err = errors.New("short message")
		m.b = nil
		return
	}
	m.b = m.b[n:]
}
