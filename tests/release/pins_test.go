package release_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

var digestPinned = regexp.MustCompile(`^[a-z0-9./-]+(:[\w.-]+)?@sha256:[0-9a-f]{64}$`)

// baseImages returns the image of every FROM line, stage references
// (FROM build) included.
func baseImages(dockerfile string) []string {
	var images []string
	for _, line := range strings.Split(dockerfile, "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && strings.EqualFold(fields[0], "FROM") {
			images = append(images, fields[1])
		}
	}
	return images
}

func TestDockerfilePinsBaseImagesByDigest(t *testing.T) {
	data, err := os.ReadFile("../../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	images := baseImages(text)
	if len(images) < 2 {
		t.Fatalf("FROM lines: %v", images)
	}
	for _, img := range images {
		if !digestPinned.MatchString(img) {
			t.Errorf("FROM %s is not pinned by digest", img)
		}
	}
	if strings.HasPrefix(text, "# syntax=") || strings.Contains(text, "\n# syntax=") {
		t.Error("a syntax directive pulls an unpinned frontend image")
	}
	// The check itself: a tag alone fails.
	if digestPinned.MatchString("golang:1.26.8-bookworm") || !digestPinned.MatchString("gcr.io/distroless/static-debian12:nonroot@sha256:"+strings.Repeat("a", 64)) {
		t.Error("the digest pattern is wrong")
	}
}

// TestReleaseWorkflowBuildsOnce: the image is built in one step and every
// environment gets that digest by re-tagging, never by a second build.
func TestReleaseWorkflowBuildsOnce(t *testing.T) {
	data, err := os.ReadFile("../../.github/workflows/release.yml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if n := strings.Count(text, "uses: docker/build-push-action@"); n != 1 {
		t.Errorf("%d image builds, want exactly one", n)
	}
	for _, banned := range []string{"docker build ", "docker buildx build", "docker push "} {
		if strings.Contains(text, banned) {
			t.Errorf("the workflow runs %q: promotion must re-tag the pushed digest", banned)
		}
	}
	for _, want := range []string{
		"make test", "make release", "govulncheck", "-mode=binary",
		`imagetools create --tag "${IMAGE}:staging" "${IMAGE}@${DIGEST}"`,
		`"${IMAGE}@${DIGEST}"`, "environment: production", "needs: [build, promote-staging]",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("release.yml lacks %q", want)
		}
	}
}
