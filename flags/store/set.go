package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/platform/flags"
)

// FlagSet is every flag at one revision, compiled for evaluation. It is
// immutable and safe for concurrent use.
type FlagSet struct {
	// Revision is the flag revision the set was read at: it changes with
	// every write, deletes included.
	Revision int64
	// Snapshot evaluates the flags.
	Snapshot *flags.Snapshot
	// Flags describes each flag's state, for gauges and change detection.
	Flags map[string]FlagInfo
	// LoadedAt is when the set was read.
	LoadedAt time.Time
}

// FlagInfo is what a FlagSet knows about one flag besides its definition.
type FlagInfo struct {
	Version int64
	Enabled bool
}

// Has reports whether the set holds flag key. A nil set holds nothing.
func (s *FlagSet) Has(key string) bool {
	if s == nil {
		return false
	}
	_, ok := s.Flags[key]
	return ok
}

// Keys returns the flag keys in order.
func (s *FlagSet) Keys() []string {
	keys := make([]string, 0, len(s.Flags))
	for k := range s.Flags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Changed lists the keys whose version differs between old and s, including
// added and removed flags, in order. A nil old means everything changed.
func (s *FlagSet) Changed(old *FlagSet) []string {
	var out []string
	for k, info := range s.Flags {
		if prev, ok := old.info(k); !ok || prev.Version != info.Version {
			out = append(out, k)
		}
	}
	if old != nil {
		for k := range old.Flags {
			if _, ok := s.Flags[k]; !ok {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

func (s *FlagSet) info(key string) (FlagInfo, bool) {
	if s == nil {
		return FlagInfo{}, false
	}
	info, ok := s.Flags[key]
	return info, ok
}

// NewFlagSet compiles flags into a set at revision, as Load does from the
// store; tests and benchmarks use it to evaluate without a database.
func NewFlagSet(defs map[string]flags.Flag, versions map[string]int64, revision int64) *FlagSet {
	set := &FlagSet{Revision: revision, Flags: make(map[string]FlagInfo, len(defs)), LoadedAt: time.Now()}
	file := flags.File{Flags: make(map[string]flags.Flag, len(defs))}
	for key, def := range defs {
		def.Key = key
		file.Flags[key] = def
		set.Flags[key] = FlagInfo{Version: versions[key], Enabled: def.State == flags.StateEnabled}
	}
	set.Snapshot = flags.NewSnapshot(file)
	return set
}

// TxBeginner is a pool or a connection.
type TxBeginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

const (
	selectRevision = `SELECT revision FROM flag_revision`
	selectSet      = `SELECT key, definition, version FROM flags`
)

// Revision returns the current flag revision.
func Revision(ctx context.Context, db TxBeginner) (int64, error) {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, fmt.Errorf("read flag revision: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var rev int64
	if err := tx.QueryRow(ctx, selectRevision).Scan(&rev); err != nil {
		return 0, fmt.Errorf("read flag revision: %w", err)
	}
	return rev, nil
}

// Load reads every flag and the revision they are at. Both reads share one
// repeatable-read snapshot, so the revision names exactly these flags.
func Load(ctx context.Context, db TxBeginner) (*FlagSet, error) {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("load flags: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var revision int64
	if err := tx.QueryRow(ctx, selectRevision).Scan(&revision); err != nil {
		return nil, fmt.Errorf("load flags: %w", err)
	}
	rows, err := tx.Query(ctx, selectSet)
	if err != nil {
		return nil, fmt.Errorf("load flags: %w", err)
	}
	defs, versions := map[string]flags.Flag{}, map[string]int64{}
	for rows.Next() {
		var key string
		var raw []byte
		var version int64
		if err := rows.Scan(&key, &raw, &version); err != nil {
			return nil, fmt.Errorf("load flags: %w", err)
		}
		var def flags.Flag
		if err := json.Unmarshal(raw, &def); err != nil {
			return nil, fmt.Errorf("load flag %s: %w", key, err)
		}
		defs[key], versions[key] = def, version
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load flags: %w", err)
	}
	return NewFlagSet(defs, versions, revision), nil
}
