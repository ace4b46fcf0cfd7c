package store

import (
	"bufio"
	"context"
	"net"
	"net/url"
	"strings"
	"time"
)

// pgReadBuffer is how much of the server's output one read from a
// PostgreSQL connection may take.
const pgReadBuffer = 64 << 10

// bufferedDialer dials PostgreSQL connections whose reads go through a
// 64 KiB buffer. lib/pq reads through a 4 KiB bufio.Reader, so a report
// streaming its rows (hundreds of MB for a large period) cost one read
// system call per 4 KiB; the larger buffer takes what the socket holds at
// once. Writes, deadlines and closing go to the connection unchanged.
type bufferedDialer struct{ d net.Dialer }

func (b bufferedDialer) Dial(network, address string) (net.Conn, error) {
	return b.DialContext(context.Background(), network, address)
}

func (b bufferedDialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return b.DialContext(ctx, network, address)
}

func (b bufferedDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := b.d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, pgReadBuffer)}, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// defaultStatementTimeout bounds one statement on the server, unless the
// database URL sets statement_timeout itself. It is far above what any
// statement of exportd needs (a report of ten million events streams in well
// under a minute), and ends what a lost client or a runaway plan would
// otherwise hold forever.
const defaultStatementTimeout = "600000" // ms: 10 minutes

// withSessionDefaults adds exportd's session defaults to a PostgreSQL URL
// or key=value DSN where it does not set them; lib/pq sends unknown
// parameters as session settings.
func withSessionDefaults(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn // pq.NewConnector reports it
		}
		q := u.Query()
		if q.Get("statement_timeout") == "" {
			q.Set("statement_timeout", defaultStatementTimeout)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	if strings.Contains(dsn, "statement_timeout=") {
		return dsn
	}
	return strings.TrimSpace(dsn + " statement_timeout=" + defaultStatementTimeout)
}
