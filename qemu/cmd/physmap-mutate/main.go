// Command physmap-mutate is make mutate: it applies each mutant of
// mutants.go to a scratch copy of the source tree, one at a time, rebuilds
// the kernel, runs the host tests of the checking code and then the boot
// matrix (stopping at its first failing boot), and prints which test
// killed it. A mutant nothing kills is a check that cannot fail.
//
//	physmap-mutate [-run REGEXP] [-keep] [-no-baseline] [-parallel 2]
//
// It ends with "mutants: K/N killed" and exits 1 if any survived.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/physmap/physmap/qemu"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("physmap-mutate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pattern := fs.String("run", "", "apply only the mutants whose name matches this regexp")
	keep := fs.Bool("keep", false, "keep the scratch trees")
	noBaseline := fs.Bool("no-baseline", false, "skip the run of the unmutated tree")
	parallel := fs.Int("parallel", 2, "boots at a time")
	list := fs.Bool("list", false, "list the mutants and exit")
	if err := fs.Parse(args); err != nil {
		return qemu.ExitUsage
	}
	re, err := regexp.Compile(*pattern)
	if err != nil || fs.NArg() != 0 || *parallel < 1 {
		fmt.Fprintf(stderr, "physmap-mutate: bad -run, -parallel or arguments (%v)\n", err)
		return qemu.ExitUsage
	}
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintf(stderr, "physmap-mutate: %v\n", err)
		return qemu.ExitUsage
	}
	var chosen []mutant
	for _, m := range mutants {
		if re.MatchString(m.Name) {
			chosen = append(chosen, m)
		}
	}
	if *list {
		for _, m := range chosen {
			fmt.Fprintf(stdout, "%-32s %s: %s\n", m.Name, m.File, m.Why)
		}
		return qemu.ExitOK
	}
	if len(chosen) == 0 {
		fmt.Fprintf(stderr, "physmap-mutate: no mutant matches -run %q\n", *pattern)
		return qemu.ExitUsage
	}
	files, err := trackedFiles(root)
	if err != nil {
		fmt.Fprintf(stderr, "physmap-mutate: %v\n", err)
		return qemu.ExitUsage
	}
	// Every mutant must still apply: a stale one is a usage error, not a
	// survivor.
	for _, m := range chosen {
		if _, err := apply(root, m); err != nil {
			fmt.Fprintf(stderr, "physmap-mutate: %s: %v\n", m.Name, err)
			return qemu.ExitUsage
		}
	}
	tr := &trial{root: root, files: files, keep: *keep, parallel: *parallel, log: stdout}
	if !*noBaseline {
		start := time.Now()
		if killer, err := tr.try(nil); err != nil || killer != "" {
			fmt.Fprintf(stderr, "physmap-mutate: the unmutated tree does not pass (%s%v); fix it first\n", killer, errOr(err))
			return qemu.ExitFailed
		}
		fmt.Fprintf(stdout, "baseline: the unmutated tree passes (%.0fs)\n", time.Since(start).Seconds())
	}
	killed := 0
	var survivors []string
	for i, m := range chosen {
		start := time.Now()
		killer, err := tr.try(&m)
		d := time.Since(start).Seconds()
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "physmap-mutate: %s: %v\n", m.Name, err)
			return qemu.ExitUsage
		case killer == "":
			survivors = append(survivors, m.Name)
			fmt.Fprintf(stdout, "[%d/%d] SURVIVED %-32s (%.0fs): %s\n", i+1, len(chosen), m.Name, d, m.Why)
		default:
			killed++
			fmt.Fprintf(stdout, "[%d/%d] killed   %-32s (%.0fs) by %s\n", i+1, len(chosen), m.Name, d, killer)
		}
	}
	fmt.Fprintf(stdout, "mutants: %d/%d killed\n", killed, len(chosen))
	if len(survivors) > 0 {
		fmt.Fprintf(stdout, "survivors: %s\n", strings.Join(survivors, ", "))
		return qemu.ExitFailed
	}
	return qemu.ExitOK
}

func errOr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// repoRoot is the directory holding go.mod, from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside physmap's tree (no go.mod above the working directory)")
		}
		dir = parent
	}
}

// trackedFiles lists the files git tracks, and those it would (untracked
// but not ignored), so that the scratch tree is the working tree as it is.
func trackedFiles(root string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files: %v (physmap-mutate needs a git checkout)", err)
	}
	var files []string
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			files = append(files, f)
		}
	}
	return files, nil
}

// apply returns the mutated content of m's file.
func apply(root string, m mutant) ([]byte, error) {
	src, err := os.ReadFile(filepath.Join(root, m.File))
	if err != nil {
		return nil, err
	}
	if n := bytes.Count(src, []byte(m.Old)); n != 1 {
		return nil, fmt.Errorf("%q occurs %d times in %s, want once: the mutant is stale", m.Old, n, m.File)
	}
	return bytes.Replace(src, []byte(m.Old), []byte(m.New), 1), nil
}

// trial runs the tests on scratch copies of the tree.
type trial struct {
	root     string
	files    []string
	keep     bool
	parallel int
	log      io.Writer
}

// try copies the tree, applies m (nil: none), and returns what killed it:
// "" when everything passed.
func (t *trial) try(m *mutant) (killer string, err error) {
	dir, err := os.MkdirTemp("", "physmap-mutant-")
	if err != nil {
		return "", err
	}
	if !t.keep {
		defer os.RemoveAll(dir)
	}
	for _, f := range t.files {
		b, err := os.ReadFile(filepath.Join(t.root, f))
		if err != nil {
			return "", err
		}
		if m != nil && f == m.File {
			if b, err = apply(t.root, *m); err != nil {
				return "", err
			}
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return "", err
		}
	}
	// A mutant that does not compile is not caught by a check: it is a
	// broken mutant, and says so.
	if out, err := t.cmd(dir, "make", "kernel"); err != nil {
		return "", fmt.Errorf("make kernel: %v\n%s", err, out)
	}
	if out, err := t.cmd(dir, "go", "vet", "./qemu/...", "./kernel/region/", "./kernel/selftest/"); err != nil {
		return "", fmt.Errorf("the mutated tree does not compile: %v\n%s", err, out)
	}
	if out, err := t.cmd(dir, "go", "test", "-count=1", "./kernel/...", "./qemu/", "./qemu/cmd/physmap-test/"); err != nil {
		return "host tests: " + failedTest(out), nil
	}
	out, err := t.cmd(dir, "go", "run", "./qemu/cmd/physmap-test", "-kernel", "build/physmap.elf", "-failfast",
		"-parallel", fmt.Sprint(t.parallel))
	if err != nil {
		return "boot " + failedBoot(out), nil
	}
	return "", nil
}

func (t *trial) cmd(dir, name string, args ...string) (string, error) {
	c := exec.Command(name, args...)
	c.Dir = dir
	out, err := c.CombinedOutput()
	return string(out), err
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "GOOS=") {
			return strings.TrimSpace(l)
		}
	}
	return "failed"
}

// failedTest names the first failing host test.
func failedTest(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "--- FAIL: ") {
			return strings.TrimPrefix(strings.TrimSpace(l), "--- FAIL: ")
		}
	}
	return firstLine(out)
}

// failedBoot names the first failing boot and why.
func failedBoot(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "FAIL ") {
			f := strings.Fields(l)
			why := l
			if i := strings.Index(l, "  "); i > 0 {
				why = strings.TrimSpace(l[strings.LastIndex(l, "  "):])
			}
			if len(why) > 160 {
				why = why[:160] + "..."
			}
			return f[1] + ": " + why
		}
	}
	return firstLine(out)
}
