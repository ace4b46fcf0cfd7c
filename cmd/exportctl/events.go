package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
)

func (a *app) eventsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Tail the tenant's audit log and verify its hash chain",
	}
	cmd.AddCommand(a.eventsTailCmd(), a.eventsVerifyCmd())
	return cmd
}

func (a *app) eventsTailCmd() *cobra.Command {
	var (
		filter       auditv1.EventFilter
		limit        int
		all, follow  bool
		pollInterval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "tail [--follow] [--category C] [--action A] [--actor ID] [--outcome O] [--limit N | --all]",
		Short: "Show the latest audit events; with --follow, keep printing new ones",
		Long: `Show the last --limit events of the tenant's audit log that match the
filters, oldest first (--all: every matching event, streamed). With --follow,
keep asking for events past the last sequence shown every --interval and
print them as they arrive, until interrupted (Ctrl-C exits 0).

--output json prints one JSON object per line (JSON Lines), snake_case as the
API speaks. Every read is itself an audit event of the tenant; the tail's own
reads are in the log (request ids exportctl-tail-…) but not printed, so that
following does not echo itself.`,
		Example: `  exportctl events tail --limit 50
  exportctl events tail --follow --category access --outcome denied
  exportctl events tail --all --action record.read --output json > reads.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !all && (limit < 1 || limit > 1000) {
				return usageErr("--limit %d: want 1 to 1000, or --all", limit)
			}
			if pollInterval < 100*time.Millisecond {
				return usageErr("--interval %s: want at least 100ms", pollInterval)
			}
			client, err := a.auditLogClient()
			if err != nil {
				return err
			}
			t := &tail{a: a, client: client, filter: &filter, session: "exportctl-tail-" + randomHex(6)}
			if err := t.start(cmd.Context(), limit, all); err != nil {
				return err
			}
			if !follow {
				return nil
			}
			return t.follow(cmd.Context(), pollInterval)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	f.StringVar(&filter.Category, "category", "", "only this category: api, access or data")
	f.StringVar(&filter.Action, "action", "", "only this action, e.g. record.read")
	f.StringVar(&filter.ActorId, "actor", "", "only this actor id")
	f.StringVar(&filter.Outcome, "outcome", "", "only this outcome: success, failure or denied")
	f.IntVar(&limit, "limit", 20, "show the last N events first (1 to 1000)")
	f.BoolVar(&all, "all", false, "show every matching event first, streamed")
	f.DurationVar(&pollInterval, "interval", 2*time.Second, "with --follow: how often to ask for new events")
	_ = cmd.RegisterFlagCompletionFunc("category", fixedCompletion("api", "access", "data"))
	_ = cmd.RegisterFlagCompletionFunc("outcome", fixedCompletion("success", "failure", "denied"))
	return cmd
}

// tail prints events and remembers the last sequence it has seen.
type tail struct {
	a       *app
	client  auditv1connect.AuditLogServiceClient
	filter  *auditv1.EventFilter
	session string // request id prefix of this tail's own reads
	reads   int
	last    int64
	header  bool
}

// requestID names the next read, so its own audit event can be told apart.
func (t *tail) requestID() string {
	t.reads++
	return fmt.Sprintf("%s-%d", t.session, t.reads)
}

// start prints the last limit matching events, or all of them.
func (t *tail) start(ctx context.Context, limit int, all bool) error {
	if all {
		req := connect.NewRequest(&auditv1.StreamEventsRequest{Filter: t.filter})
		req.Header().Set("X-Request-Id", t.requestID())
		stream, err := t.client.StreamEvents(ctx, req)
		if err != nil {
			return err
		}
		defer func() { _ = stream.Close() }()
		for stream.Receive() {
			if err := t.print(stream.Msg().GetEvents()); err != nil {
				return err
			}
		}
		if err := stream.Err(); err != nil {
			return err
		}
		return t.flushHeader()
	}
	f := proto.CloneOf(t.filter)
	f.Order = "desc"
	req := connect.NewRequest(&auditv1.QueryEventsRequest{Filter: f, PageSize: int32(limit)}) //nolint:gosec // at most 1000
	req.Header().Set("X-Request-Id", t.requestID())
	res, err := t.client.QueryEvents(ctx, req)
	if err != nil {
		return err
	}
	evs := res.Msg.GetEvents()
	slices.Reverse(evs)
	if err := t.print(evs); err != nil {
		return err
	}
	return t.flushHeader()
}

// follow asks for events past the last one seen every interval until ctx
// ends (Ctrl-C), which is a normal way out.
func (t *tail) follow(ctx context.Context, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		f := proto.CloneOf(t.filter)
		f.Order, f.AfterSequence = "asc", t.last
		token := ""
		for {
			req := connect.NewRequest(&auditv1.QueryEventsRequest{Filter: f, PageSize: 1000, PageToken: token})
			req.Header().Set("X-Request-Id", t.requestID())
			res, err := t.client.QueryEvents(ctx, req)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return err
			}
			if err := t.print(res.Msg.GetEvents()); err != nil {
				return err
			}
			if token = res.Msg.GetNextPageToken(); token == "" {
				break
			}
		}
	}
}

const tailFormat = "%-8s %-20s %-8s %-8s %-28s %-24s %s\n"

// flushHeader prints the table header even when nothing matched, so an
// empty tail is visibly empty rather than silent.
func (t *tail) flushHeader() error {
	if t.a.output == "json" || t.header {
		return nil
	}
	t.header = true
	_, err := fmt.Fprintf(t.a.stdout, tailFormat, "SEQ", "OCCURRED (UTC)", "CATEGORY", "OUTCOME", "ACTOR", "ACTION", "RESOURCE")
	return err
}

func (t *tail) print(evs []*auditv1.AuditEvent) error {
	for _, e := range evs {
		t.last = max(t.last, e.GetSequence())
		if strings.HasPrefix(e.GetRequestId(), t.session+"-") {
			continue
		}
		if t.a.output == "json" {
			b, err := stableJSON(e, "")
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintln(t.a.stdout, string(b)); err != nil {
				return err
			}
			continue
		}
		if err := t.flushHeader(); err != nil {
			return err
		}
		resource := e.GetResourceType()
		if e.GetResourceId() != "" {
			resource += "/" + e.GetResourceId()
		}
		if _, err := fmt.Fprintf(t.a.stdout, tailFormat, fmt.Sprint(e.GetSequence()), stamp(e.GetOccurredAt()),
			e.GetCategory(), e.GetOutcome(), e.GetActorId(), e.GetAction(), resource); err != nil {
			return err
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

func (a *app) eventsVerifyCmd() *cobra.Command {
	var from, to int64
	cmd := &cobra.Command{
		Use:   "verify [--from SEQ] [--to SEQ]",
		Short: "Recompute the audit log's hash chain and report the first broken link",
		Long: `Ask the server to recompute the tenant's audit hash chain over
sequences --from .. --to (default: the whole remaining log) and print ok, with
the hash at the last sequence, or the first broken link and why.

Exit 0 when the chain holds, 7 when a link is broken.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from < 0 || to < 0 {
				return usageErr("--from and --to are sequences: 0 or more")
			}
			if to != 0 && to < from {
				return usageErr("--to %d is before --from %d", to, from)
			}
			client, err := a.auditLogClient()
			if err != nil {
				return err
			}
			res, err := client.VerifyChain(cmd.Context(), connect.NewRequest(&auditv1.VerifyChainRequest{FromSequence: from, ToSequence: to}))
			if err != nil {
				return err
			}
			v := res.Msg
			if err := a.printChain(v); err != nil {
				return err
			}
			if !v.GetOk() {
				return &cliError{code: exitVerify, err: fmt.Errorf("audit chain broken at sequence %d: %s", v.GetBrokenSequence(), v.GetReason())}
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&from, "from", 0, "first sequence to check (default: the first remaining event)")
	cmd.Flags().Int64Var(&to, "to", 0, "last sequence to check (default: the last event)")
	return cmd
}

func (a *app) printChain(v *auditv1.VerifyChainResponse) error {
	if a.output == "json" {
		return a.printJSON(v)
	}
	rows := [][]string{
		{"chain", map[bool]string{true: "ok", false: "BROKEN"}[v.GetOk()]},
		{"sequences", fmt.Sprintf("%d .. %d", v.GetFromSequence(), v.GetToSequence())},
		{"checked", fmt.Sprint(v.GetChecked())},
	}
	if v.GetOk() {
		rows = append(rows, []string{"chain_hash", v.GetChainHash()})
	} else {
		rows = append(rows, []string{"broken_sequence", fmt.Sprint(v.GetBrokenSequence())}, []string{"reason", v.GetReason()})
	}
	return a.fields(rows)
}
