// Package backupstore keeps the platform's backups in any gocloud.dev/blob
// bucket (file:// and s3:// are linked in): one folder per backup holding its
// artefacts and, written last, manifest.json. A folder without manifest.json
// is an incomplete backup: List ignores it and Prune removes it once it is
// old enough not to be a backup still being written.
//
// The store knows nothing of a manifest's shape: callers marshal and
// unmarshal it (workflows/drill.Manifest), so this plumbing stays below the
// feature packages.
package backupstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// URLs
	_ "gocloud.dev/blob/s3blob"   // s3:// URLs (S3 and S3-compatible stores)
	"gocloud.dev/gcerrors"
)

// ManifestName is the object that marks a backup complete.
const ManifestName = "manifest.json"

// ErrNotFound is returned for a backup or artefact the store does not hold.
var ErrNotFound = errors.New("backup not found")

// ErrBadID is returned for an id that is not a backup id.
var ErrBadID = errors.New("not a backup id")

// idPattern is the shape of ids.Backup ids (random or derived). Checking it
// keeps ids that arrive over the API or in workflow input from naming
// anything outside the backup's own folder.
var idPattern = regexp.MustCompile(`^bkp_[0-9a-z]{26}$`)

// artefactPattern is the shape of an artefact name: one plain file name.
var artefactPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidID reports whether id is a well-formed backup id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Store is a bucket of backups.
type Store struct {
	bucket *blob.Bucket
}

// Open opens the bucket at rawURL. For file:// URLs the directory is created
// (mode 0700) when missing, temporary files are written beside the final
// ones (so a store on its own mount works) and no metadata sidecar files are
// written, unless the URL says otherwise.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse backup url: %w", err)
	}
	if u.Scheme == "file" {
		q := u.Query()
		for k, v := range map[string]string{"create_dir": "1", "dir_file_mode": "0700", "no_tmp_dir": "1", "metadata": "skip"} {
			if !q.Has(k) {
				q.Set(k, v)
			}
		}
		u.RawQuery = q.Encode()
	}
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		// The URL may carry credentials in its query: name only the scheme.
		return nil, fmt.Errorf("open backup store (%s://): %w", u.Scheme, err)
	}
	return &Store{bucket: b}, nil
}

// Close releases the bucket.
func (s *Store) Close() error { return s.bucket.Close() }

// Sum is an artefact's size and SHA-256 (lowercase hex).
type Sum struct {
	Size   int64
	SHA256 string
}

func key(id, name string) (string, error) {
	if !ValidID(id) {
		return "", fmt.Errorf("%q: %w", id, ErrBadID)
	}
	if !artefactPattern.MatchString(name) {
		return "", fmt.Errorf("artefact name %q is not a plain file name", name)
	}
	return id + "/" + name, nil
}

// Put writes r as artefact name of backup id, replacing any earlier copy,
// and returns what it wrote. Nothing is visible under the name unless the
// whole stream was written.
func (s *Store) Put(ctx context.Context, id, name string, r io.Reader) (Sum, error) {
	k, err := key(id, name)
	if err != nil {
		return Sum{}, err
	}
	// Cancelling the writer's context is what aborts a partial upload.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.bucket.NewWriter(wctx, k, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return Sum{}, fmt.Errorf("write %s: %w", k, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), r)
	if err != nil {
		cancel()
		_ = w.Close()
		return Sum{}, fmt.Errorf("write %s: %w", k, err)
	}
	if err := w.Close(); err != nil {
		return Sum{}, fmt.Errorf("write %s: %w", k, err)
	}
	return Sum{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Open returns a reader of artefact name of backup id; ErrNotFound when it
// is missing.
func (s *Store) Open(ctx context.Context, id, name string) (io.ReadCloser, error) {
	k, err := key(id, name)
	if err != nil {
		return nil, err
	}
	r, err := s.bucket.NewReader(ctx, k, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, fmt.Errorf("%s: %w", k, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k, err)
	}
	return r, nil
}

// Sum reads artefact name of backup id whole and returns its size and
// SHA-256.
func (s *Store) Sum(ctx context.Context, id, name string) (Sum, error) {
	r, err := s.Open(ctx, id, name)
	if err != nil {
		return Sum{}, err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return Sum{}, fmt.Errorf("read %s/%s: %w", id, name, err)
	}
	return Sum{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// PutManifest writes manifest (JSON) as backup id's manifest.json, which
// marks the backup complete: write it after every artefact.
func (s *Store) PutManifest(ctx context.Context, id string, manifest any) error {
	data, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest of %s: %w", id, err)
	}
	k, err := key(id, ManifestName)
	if err != nil {
		return err
	}
	if err := s.bucket.WriteAll(ctx, k, append(data, '\n'), &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("write %s: %w", k, err)
	}
	return nil
}

// Manifest decodes backup id's manifest into v; ErrNotFound when the backup
// is missing or incomplete.
func (s *Store) Manifest(ctx context.Context, id string, v any) error {
	k, err := key(id, ManifestName)
	if err != nil {
		return err
	}
	data, err := s.bucket.ReadAll(ctx, k)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", k, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", k, err)
	}
	return nil
}

// Entry is one backup folder: its id, whether its manifest is there, and
// when it was last written (the manifest's time for a complete backup, the
// newest object's otherwise).
type Entry struct {
	ID       string
	Complete bool
	Time     time.Time
}

// List returns the complete backups, newest first.
func (s *Store) List(ctx context.Context) ([]Entry, error) {
	all, err := s.folders(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(e Entry) bool { return !e.Complete }), nil
}

// folders lists every backup folder, complete or not, newest first.
func (s *Store) folders(ctx context.Context) ([]Entry, error) {
	byID := map[string]*Entry{}
	it := s.bucket.List(nil)
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list backups: %w", err)
		}
		id, name, ok := strings.Cut(obj.Key, "/")
		if !ok || !ValidID(id) {
			continue // not ours
		}
		e := byID[id]
		if e == nil {
			e = &Entry{ID: id}
			byID[id] = e
		}
		switch {
		case name == ManifestName:
			e.Complete, e.Time = true, obj.ModTime
		case !e.Complete && obj.ModTime.After(e.Time):
			e.Time = obj.ModTime
		}
	}
	out := make([]Entry, 0, len(byID))
	for _, e := range byID {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out, nil
}

// Delete removes backup id: its manifest first, so a delete cut short leaves
// an incomplete backup (ignored, pruned later), never a complete-looking one
// with artefacts missing. Deleting a missing backup is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	k, err := key(id, ManifestName)
	if err != nil {
		return err
	}
	if err := s.bucket.Delete(ctx, k); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("delete %s: %w", k, err)
	}
	it := s.bucket.List(&blob.ListOptions{Prefix: id + "/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", id, err)
		}
		if err := s.bucket.Delete(ctx, obj.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return fmt.Errorf("delete %s: %w", obj.Key, err)
		}
	}
}

// Prune keeps the newest keep complete backups and deletes the older ones,
// and deletes incomplete folders untouched for longer than staleAfter (a
// younger one may be a backup being written). It returns the deleted ids.
func (s *Store) Prune(ctx context.Context, keep int, staleAfter time.Duration, now time.Time) ([]string, error) {
	all, err := s.folders(ctx)
	if err != nil {
		return nil, err
	}
	var deleted []string
	complete := 0
	for _, e := range all {
		switch {
		case e.Complete:
			complete++
			if complete <= keep {
				continue
			}
		case now.Sub(e.Time) <= staleAfter:
			continue
		}
		if err := s.Delete(ctx, e.ID); err != nil {
			return deleted, err
		}
		deleted = append(deleted, e.ID)
	}
	return deleted, nil
}
