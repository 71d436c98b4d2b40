package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/acme/platform/flags"
	"github.com/acme/platform/internal/testenv"
)

func boolFlag(def string) flags.Flag {
	return flags.Flag{State: flags.StateEnabled, DefaultVariant: def,
		Variants: map[string]json.RawMessage{"on": json.RawMessage("true"), "off": json.RawMessage("false")}}
}

var who = Change{Actor: "acme/key_1", Reason: "test"}

func TestStore_CompareAndSetAndAudit(t *testing.T) {
	db, _ := testenv.Postgres(t)
	s := &Store{DB: db}
	ctx := context.Background()

	created, outcome, err := s.Put(ctx, "banner", boolFlag("off"), Cond{MustNotExist: true}, who)
	if err != nil || outcome != Created {
		t.Fatalf("create: %v %v", outcome, err)
	}
	if _, _, err := s.Put(ctx, "banner", boolFlag("on"), Cond{MustNotExist: true}, who); !errors.Is(err, ErrPreconditionFailed) {
		t.Errorf("create over an existing flag: %v, want precondition failed", err)
	}
	if _, _, err := s.Put(ctx, "banner", boolFlag("on"), Cond{IfMatch: []int64{created.Version + 100}}, who); !errors.Is(err, ErrPreconditionFailed) {
		t.Errorf("stale version: %v, want precondition failed", err)
	}
	same, outcome, err := s.Put(ctx, "banner", boolFlag("off"), Cond{}, who)
	if err != nil || outcome != Unchanged || same.Version != created.Version {
		t.Errorf("rewrite of the same definition: %v %v version %d", outcome, err, same.Version)
	}
	updated, outcome, err := s.Put(ctx, "banner", boolFlag("on"), Cond{IfMatch: []int64{created.Version}}, Change{Actor: "rollout:rol_1", Reason: "step 1"})
	if err != nil || outcome != Updated || updated.Version <= created.Version || updated.UpdatedBy != "rollout:rol_1" {
		t.Fatalf("update: %v %v %+v", outcome, err, updated)
	}
	if _, err := s.Delete(ctx, "banner", Cond{IfMatch: []int64{created.Version}}, who); !errors.Is(err, ErrPreconditionFailed) {
		t.Errorf("delete with a stale version: %v", err)
	}
	if _, err := s.Delete(ctx, "banner", Cond{IfMatch: []int64{updated.Version}}, who); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "banner"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
	again, _, err := s.Put(ctx, "banner", boolFlag("off"), Cond{}, who)
	if err != nil || again.Version <= updated.Version {
		t.Errorf("re-created flag has version %d, want more than %d: an old ETag must never match it", again.Version, updated.Version)
	}

	audit, err := s.Audit(ctx, "banner", 10)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range audit {
		actions = append(actions, e.Action+"/"+e.Actor)
	}
	want := []string{"create/acme/key_1", "delete/acme/key_1", "update/rollout:rol_1", "create/acme/key_1"}
	if len(actions) != len(want) {
		t.Fatalf("audit %v, want %v (newest first)", actions, want)
	}
	for i := range want {
		if actions[i] != want[i] {
			t.Errorf("audit %v, want %v", actions, want)
			break
		}
	}
	if audit[1].After != nil || audit[1].Before == nil || audit[2].Reason != "step 1" {
		t.Errorf("delete keeps before only, update keeps its reason: %+v", audit[1:3])
	}
}

func TestStore_InvalidDefinitionIsRefusedAndNothingWritten(t *testing.T) {
	db, _ := testenv.Postgres(t)
	s := &Store{DB: db}
	ctx := context.Background()
	bad := boolFlag("maybe")
	var ve *flags.ValidationError
	if _, _, err := s.Put(ctx, "banner", bad, Cond{}, who); !errors.As(err, &ve) || ve.Errors[0].Pointer != "#/defaultVariant" {
		t.Fatalf("error %v, want a validation error at #/defaultVariant", err)
	}
	rev, err := Revision(ctx, db)
	if err != nil || rev != 0 {
		t.Errorf("revision %d after a refused write (%v), want 0", rev, err)
	}
}

func TestStore_ImportIsAllOrNothing(t *testing.T) {
	db, _ := testenv.Postgres(t)
	s := &Store{DB: db}
	ctx := context.Background()
	if _, err := s.Import(ctx, map[string]flags.Flag{"a": boolFlag("on"), "b": boolFlag("maybe")}, who); err == nil {
		t.Fatal("import of an invalid flag succeeded")
	}
	if all, _ := s.All(ctx); len(all) != 0 {
		t.Fatalf("a failed import left %d flags", len(all))
	}
	n, err := s.Import(ctx, map[string]flags.Flag{"a": boolFlag("on"), "b": boolFlag("off")}, who)
	if err != nil || n != 2 {
		t.Fatalf("import: %d %v", n, err)
	}
	if n, _ := s.Import(ctx, map[string]flags.Flag{"a": boolFlag("on"), "b": boolFlag("off")}, who); n != 0 {
		t.Errorf("re-import changed %d flags, want 0", n)
	}
}

func TestWatcher_ReloadsOnNotifyAndReportsChanges(t *testing.T) {
	db, _ := testenv.Postgres(t)
	s := &Store{DB: db}
	events := make(chan Event, 16)
	w := NewWatcher(db.Config().ConnConfig, WatchOptions{Poll: time.Minute, OnEvent: func(e Event) { events <- e }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-w.Loaded()
	if e := <-events; e.Kind != EventReady {
		t.Fatalf("first event %v, want ready", e.Kind)
	}
	start := time.Now()
	if _, _, err := s.Put(context.Background(), "banner", boolFlag("on"), Cond{}, who); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events:
		if e.Kind != EventChanged || len(e.Changed) != 1 || e.Changed[0] != "banner" {
			t.Errorf("event %+v, want banner changed", e)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no change event within 2s although the poll interval is a minute")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("change seen after %s", d)
	}
	if !w.Current().Has("banner") {
		t.Error("the served set lacks the new flag")
	}
}
