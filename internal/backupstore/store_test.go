package backupstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/acme/platform/internal/ids"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "backups") // missing: Open creates it
	s, err := Open(context.Background(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, dir
}

func TestStore_PutSumManifestAndOpen(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	id := ids.New(ids.Backup)
	sum, err := s.Put(ctx, id, "postgres.dump", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte("hello"))
	if diff := cmp.Diff(Sum{Size: 5, SHA256: hex.EncodeToString(want[:])}, sum); diff != "" {
		t.Fatalf("put sum (-want +got):\n%s", diff)
	}
	again, err := s.Sum(ctx, id, "postgres.dump")
	if err != nil || again != sum {
		t.Fatalf("Sum = %+v, %v; want %+v", again, err, sum)
	}
	if got, _ := s.List(ctx); len(got) != 0 {
		t.Fatalf("a backup without manifest is listed: %+v", got)
	}
	if err := s.PutManifest(ctx, id, map[string]string{"id": id}); err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := s.Manifest(ctx, id, &m); err != nil || m["id"] != id {
		t.Fatalf("Manifest = %v, %v", m, err)
	}
	r, err := s.Open(ctx, id, "postgres.dump")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "hello" {
		t.Fatalf("read %q", b)
	}
	if _, err := s.Open(ctx, id, "redis.rdb"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing artefact: %v, want ErrNotFound", err)
	}
	if err := s.Manifest(ctx, ids.New(ids.Backup), &m); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing manifest: %v, want ErrNotFound", err)
	}
}

func TestStore_RefusesIDsAndNamesOutsideABackupFolder(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	for _, id := range []string{"", "../etc", "bkp_../../x", "job_01hzzzzzzzzzzzzzzzzzzzzzzz"} {
		if _, err := s.Put(ctx, id, "x", strings.NewReader("")); !errors.Is(err, ErrBadID) {
			t.Errorf("Put(%q) = %v, want ErrBadID", id, err)
		}
	}
	if _, err := s.Put(ctx, ids.New(ids.Backup), "../x", strings.NewReader("")); err == nil {
		t.Error("Put with a path as artefact name succeeded")
	}
}

func TestStore_ListNewestFirstAndPrune(t *testing.T) {
	ctx := context.Background()
	s, dir := openTemp(t)
	base := time.Now().Add(-10 * time.Hour)
	var complete []string
	for i := range 4 {
		id := ids.New(ids.Backup)
		if _, err := s.Put(ctx, id, "a", strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		if err := s.PutManifest(ctx, id, map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
		at := base.Add(time.Duration(i) * time.Hour)
		for _, name := range []string{"a", ManifestName} {
			if err := os.Chtimes(filepath.Join(dir, id, name), at, at); err != nil {
				t.Fatal(err)
			}
		}
		complete = append([]string{id}, complete...) // newest first
	}
	stale, fresh := ids.New(ids.Backup), ids.New(ids.Backup)
	for _, id := range []string{stale, fresh} {
		if _, err := s.Put(ctx, id, "a", strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(filepath.Join(dir, stale, "a"), old, old); err != nil {
		t.Fatal(err)
	}

	got, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []string
	for _, e := range got {
		gotIDs = append(gotIDs, e.ID)
	}
	if diff := cmp.Diff(complete, gotIDs); diff != "" {
		t.Fatalf("List (-want +got):\n%s", diff)
	}

	deleted, err := s.Prune(ctx, 2, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{complete[2], complete[3], stale}
	sortStrings := cmpopts.SortSlices(func(a, b string) bool { return a < b })
	if diff := cmp.Diff(want, deleted, sortStrings); diff != "" {
		t.Fatalf("Prune deleted (-want +got):\n%s", diff)
	}
	got, _ = s.List(ctx)
	if len(got) != 2 || got[0].ID != complete[0] || got[1].ID != complete[1] {
		t.Fatalf("after prune List = %+v", got)
	}
	if _, err := s.Sum(ctx, fresh, "a"); err != nil {
		t.Fatalf("a fresh incomplete backup was pruned: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, complete[3], "a")); !os.IsNotExist(err) {
		t.Fatalf("artefact of a pruned backup remains: %v", err)
	}
}
