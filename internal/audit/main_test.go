package audit_test

import (
	"testing"

	"github.com/eddy-streams/eddy/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
