package main

import (
	"bytes"
	"path/filepath"
	"testing"
)

// TestMutantsApply keeps the suite from going stale: every mutant's text
// occurs exactly once in today's source, names are unique, and each says
// what should kill it.
func TestMutantsApply(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if len(mutants) < 20 {
		t.Errorf("%d mutants, want at least 20", len(mutants))
	}
	seen := map[string]bool{}
	for _, m := range mutants {
		if seen[m.Name] || m.Why == "" || m.Old == m.New {
			t.Errorf("mutant %q: duplicate, unexplained or no change", m.Name)
		}
		seen[m.Name] = true
		b, err := apply(root, m)
		if err != nil {
			t.Errorf("%s: %v", m.Name, err)
			continue
		}
		if !bytes.Contains(b, []byte(m.New)) {
			t.Errorf("%s: the mutated file lacks the new text", m.Name)
		}
	}
}
