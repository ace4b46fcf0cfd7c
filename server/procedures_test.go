package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/exportd/exportd/gen/go/audit/v1" // registers the audit.v1 descriptors
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

// TestEveryProcedureHasARule guards the authorization matrix: every
// procedure of every audit.v1 service (as generated, and as the running
// server announces through reflection) must have an entry in the rules
// table and a matrix row expecting the rule's permission, and a REST route
// in its google.api.http annotation must be a row's REST path. So must
// every plain REST handler the rules table names. A new RPC therefore
// cannot ship unauthorized, unaudited or untested.
func TestEveryProcedureHasARule(t *testing.T) {
	t.Parallel()
	rules := server.RulePermissions()
	ops := matrixOps()

	services := map[protoreflect.FullName]bool{}
	protoregistry.GlobalFiles.RangeFilesByPackage("audit.v1", func(f protoreflect.FileDescriptor) bool {
		for i := range f.Services().Len() {
			services[f.Services().Get(i).FullName()] = true
		}
		return true
	})
	env := servertest.Start(t, "sqlite", servertest.Options{NoWorkers: true})
	stream := grpcreflect.NewClient(env.Client, env.URL, connect.WithGRPC()).NewStream(context.Background())
	served, err := stream.ListServices()
	if err != nil {
		t.Fatalf("list services by reflection: %v", err)
	}
	if _, err := stream.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range served {
		if strings.HasPrefix(string(name), "grpc.") {
			continue // health and reflection: no tenant data, no key
		}
		services[name] = true
	}
	if len(services) < 7 {
		t.Fatalf("found only %d services: %v", len(services), services)
	}

	covered := map[string]bool{} // procedures with a row
	for name := range services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
		if err != nil {
			t.Errorf("service %s is served but not registered: %v", name, err)
			continue
		}
		sd := d.(protoreflect.ServiceDescriptor)
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			proc := fmt.Sprintf("/%s/%s", sd.FullName(), md.Name())
			covered[proc] = true
			perm, ok := rules[proc]
			if !ok {
				t.Errorf("%s has no entry in the rules table (server/interceptor.go)", proc)
			}
			rows := rowsOf(ops, proc)
			if len(rows) == 0 || rows[0].rpc == nil {
				t.Errorf("%s has no RPC row in the authorization matrix (server/matrix_test.go)", proc)
				continue
			}
			if ok && rows[0].perm != perm {
				t.Errorf("matrix row %s expects permission %q, the rules table says %q", rows[0].name, rows[0].perm, perm)
			}
			if method, path := httpRule(md); method != "" {
				if !slices.ContainsFunc(rows, func(o op) bool { return o.method == method && routeMatches(path, o.path) }) {
					t.Errorf("%s is annotated %s %s but no matrix row calls that REST path", proc, method, path)
				}
			}
		}
	}
	// The plain REST handlers and anything else in the rules table.
	for proc, perm := range rules {
		if covered[proc] {
			continue
		}
		method, path, ok := strings.Cut(proc, " ")
		if !ok {
			t.Errorf("rules table names %s, which no service has", proc)
			continue
		}
		var found bool
		for _, o := range ops {
			if o.method == method && routeMatches(path, o.path) {
				found = true
				if o.procedure != proc {
					t.Errorf("matrix row %s calls %s %s but names procedure %q", o.name, method, path, o.procedure)
				}
				want := perm
				if o.permFrom != "" {
					want = rules[o.permFrom]
				}
				if o.perm != want {
					t.Errorf("matrix row %s expects permission %q, the rules table says %q", o.name, o.perm, want)
				}
			}
		}
		if !found {
			t.Errorf("REST handler %s has no row in the authorization matrix", proc)
		}
	}
	// And no row names a procedure that does not exist.
	for _, o := range ops {
		if _, ok := rules[o.procedure]; !ok {
			t.Errorf("matrix row %s names procedure %q, which has no rule", o.name, o.procedure)
		}
	}
}

// rowsOf returns the matrix rows of a procedure, those with an RPC first.
func rowsOf(ops []op, proc string) []op {
	var out []op
	for _, o := range ops {
		if o.procedure == proc && o.permFrom == "" {
			out = append(out, o)
		}
	}
	slices.SortStableFunc(out, func(a, b op) int {
		switch {
		case a.rpc != nil && b.rpc == nil:
			return -1
		case a.rpc == nil && b.rpc != nil:
			return 1
		}
		return 0
	})
	return out
}

// httpRule is the method and path of md's google.api.http annotation.
func httpRule(md protoreflect.MethodDescriptor) (method, path string) {
	r, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return "GET", p.Get
	case *annotations.HttpRule_Post:
		return "POST", p.Post
	case *annotations.HttpRule_Put:
		return "PUT", p.Put
	case *annotations.HttpRule_Patch:
		return "PATCH", p.Patch
	case *annotations.HttpRule_Delete:
		return "DELETE", p.Delete
	}
	return "", ""
}

// routeMatches says whether the matrix's path (with %s for its object,
// or a literal value, and maybe a query) is an instance of route, a path
// template with {variables}.
func routeMatches(route, path string) bool {
	path, _, _ = strings.Cut(path, "?")
	want, got := segments(route), segments(path)
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		variable := strings.HasPrefix(want[i], "{") && strings.HasSuffix(want[i], "}")
		if want[i] != got[i] && !variable {
			return false
		}
	}
	return true
}

// segments splits a path at / and a custom verb (":cancel") off its last
// segment; %s stands for a variable.
func segments(path string) []string {
	parts := strings.Split(strings.ReplaceAll(path, "%s", "{}"), "/")
	last := parts[len(parts)-1]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		parts = append(parts[:len(parts)-1], last[:i], last[i:])
	}
	return parts
}
