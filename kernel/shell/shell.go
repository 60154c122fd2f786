package shell

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/physmap/physmap/mm"
)

// Prompt is printed before each command line.
const Prompt = "physmap> "

// Machine is what the shell explores: the kernel implements it over the
// live page tables and the CPU; tests over mm's simulated memory.
type Machine interface {
	// Layout is the Linux layout in force; its Mode is the paging mode.
	Layout() *mm.Layout
	// Tables returns the page tables the CPU translates with (opened from
	// CR3, read-only), or an error wrapping ErrNoTables.
	Tables() (*mm.AddressSpace, error)
	// PhysBits is MAXPHYADDR, the width of a physical address.
	PhysBits() uint
	// Read copies len(p) bytes at va through the CPU's own translation. It
	// returns how many it copied before the first fault and, if one
	// occurred, an error describing it (the fault at va+n).
	//
	// Precondition: va and va+len(p)-1 are canonical.
	Read(va mm.VirtAddr, p []byte) (n int, err error)
	// Regions prints the layout as built: mm.rst's rows with what the live
	// tables map in each.
	Regions(w io.Writer) error
	// Selftest runs the proofs again on the live tables, printing their
	// lines and a closing line, and reports whether they passed.
	Selftest(w io.Writer) bool
}

// Shell runs commands against a Machine.
type Shell struct {
	m      Machine
	out    io.Writer
	passed bool
}

// New returns a shell printing to out; passed is the self-test's status so
// far, which exit returns.
func New(m Machine, out io.Writer, passed bool) *Shell {
	return &Shell{m: m, out: out, passed: passed}
}

// Passed is the status exit returns: the boot's self-test and every re-run
// passed.
func (s *Shell) Passed() bool { return s.passed }

// command is one shell command.
type command struct {
	name  string
	args  string // usage after the name
	help  string
	min   int // arguments at least
	max   int // at most; -1: the rest of the line is one argument
	run   func(s *Shell, args []string) error
	final bool // ends the shell
}

var commands []command

func init() {
	commands = []command{
		{"help", "", "list the commands", 0, 0, (*Shell).help, false},
		{"regions", "", "the layout as built: mm.rst's rows and what the live tables map in each", 0, 0, (*Shell).regions, false},
		{"walk", "VA", "walk the live tables for VA: each level's table, index, entry and flags, then the PA", 1, 1, (*Shell).walk, false},
		{"aliases", "PA", "every virtual address that maps physical address PA", 1, 1, (*Shell).aliases, false},
		{"x", "VA [N]", fmt.Sprintf("hex dump of N bytes (default %d, at most %d) read through VA; a fault is reported", defaultDump, maxDump), 1, 2, (*Shell).dump, false},
		{"dis", "VA [N]", fmt.Sprintf("disassemble N instructions (default %d, at most %d) at VA", defaultDis, maxDis), 1, 2, (*Shell).dis, false},
		{"ptdump", "[-phys] [REGION]", "the live tables in Linux's ptdump format, all or one region (symbol, marker, description or an address in it); -phys adds each run's PA", 0, -1, (*Shell).ptdump, false},
		{"wx", "", "Linux's W+X audit of the kernel half and the lower half, with any W+X mappings", 0, 0, (*Shell).wx, false},
		{"selftest", "", "run the proofs again on the live tables", 0, 0, (*Shell).selftest, false},
		{"exit", "", "end, with the self-test's status (QEMU exits)", 0, 0, (*Shell).exit, true},
	}
}

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// Exec runs one command line and reports whether it ended the shell. An
// error has been printed as one "error: ..." line; it is returned for
// callers and tests.
func (s *Shell) Exec(line string) (done bool, err error) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return false, nil
	}
	err = s.exec(fields)
	if err != nil {
		fmt.Fprintf(s.out, "error: %v\n", err)
	}
	c := lookup(fields[0])
	return c != nil && c.final && err == nil, err
}

func (s *Shell) exec(fields []string) error {
	name, args := fields[0], fields[1:]
	c := lookup(name)
	if c == nil {
		return errorf(name, name, ErrUnknownCommand, "unknown command %q (try help)", name)
	}
	if len(args) < c.min || (c.max >= 0 && len(args) > c.max) {
		return errorf(name, "", ErrUsage, "usage: %s", strings.TrimSpace(c.name+" "+c.args))
	}
	return c.run(s, args)
}

// Run prints the prompt, reads a line, runs it, until exit or the end of
// input, and returns the status exit returns (see Passed).
func (s *Shell) Run(in *Lines) bool {
	fmt.Fprintf(s.out, "physmap: shell ready; type help for the commands\n")
	for {
		io.WriteString(s.out, Prompt)
		line, err := in.ReadLine()
		if err != nil && !errors.Is(err, ErrLineTooLong) {
			if line != "" {
				s.Exec(line)
			}
			fmt.Fprintf(s.out, "\nphysmap: end of input\n")
			return s.passed
		}
		if err != nil {
			fmt.Fprintf(s.out, "error: %v\n", err)
			continue
		}
		if done, _ := s.Exec(line); done {
			return s.passed
		}
	}
}

func (s *Shell) help(args []string) error {
	fmt.Fprintln(s.out, "commands (addresses in hex, or a layout symbol with an optional +hex offset):")
	for _, c := range commands {
		fmt.Fprintf(s.out, "  %-26s %s\n", strings.TrimSpace(c.name+" "+c.args), c.help)
	}
	return nil
}

func (s *Shell) regions(args []string) error {
	return s.m.Regions(s.out)
}

func (s *Shell) selftest(args []string) error {
	if !s.m.Selftest(s.out) {
		s.passed = false
	}
	return nil
}

func (s *Shell) exit(args []string) error {
	fmt.Fprintf(s.out, "physmap: exit with the self-test's status: %s\n", status(s.passed))
	return nil
}

func status(ok bool) string {
	if ok {
		return "pass"
	}
	return "fail"
}

// tables returns the live tables or the machine's error as a shell error.
func (s *Shell) tables(cmd string) (*mm.AddressSpace, error) {
	as, err := s.m.Tables()
	if err != nil {
		return nil, errorf(cmd, "", ErrNoTables, "%v", err)
	}
	return as, nil
}
