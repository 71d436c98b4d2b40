package tests

import (
	"os"
	"testing"

	"github.com/acme/platform/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
