package server_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/server/servertest"
)

// mountTmpfs mounts a tmpfs of size at a new folder until the test ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CI runs as root)")
	}
	dir := filepath.Join(t.TempDir(), "volume")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestBlobOnOwnVolume: an operator's file:// bucket on a file system of its
// own (here a tmpfs, while temporary files would default to another one)
// gets the default folder's safe options, so exports complete there; on a
// volume that is full, an export fails at once, saying the store is full,
// instead of being retried.
func TestBlobOnOwnVolume(t *testing.T) {
	t.Parallel()
	t.Run("completes", func(t *testing.T) {
		t.Parallel()
		vol := mountTmpfs(t, "64m")
		env := servertest.Start(t, "sqlite", servertest.Options{BlobURL: "file://" + vol + "/artifacts"})
		f := newFixture(t, env)
		j := f.watch(t, f.create(t))
		if j.GetStatus() != auditv1.ExportStatus_COMPLETED {
			t.Fatalf("export on its own volume: %v %s", j.GetStatus(), j.GetError())
		}
		if _, err := f.download(t, j.GetJobId()); err != nil {
			t.Fatal(err)
		}
		if entries, _ := os.ReadDir(filepath.Join(vol, "artifacts")); len(entries) == 0 {
			t.Error("no artifact on the volume")
		}
	})
	t.Run("full", func(t *testing.T) {
		t.Parallel()
		vol := mountTmpfs(t, "16k")
		env := servertest.Start(t, "sqlite", servertest.Options{BlobURL: "file://" + vol})
		f := newFixture(t, env)
		j := f.watch(t, f.create(t))
		if j.GetStatus() != auditv1.ExportStatus_FAILED || j.GetAttempt() != 1 ||
			!strings.Contains(j.GetError(), "artifact store is full") {
			t.Fatalf("export on a full volume: %v, attempt %d: %s", j.GetStatus(), j.GetAttempt(), j.GetError())
		}
	})
}
