package shell

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/physmap/physmap/kernel/selftest"
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
	// Symbols returns the kernel image's and the loaded modules' symbols
	// (the layout's own come from Layout), in any order.
	Symbols() []Symbol
	// Modules prints the loaded modules in /proc/modules' format, newest
	// first (nothing when none is loaded).
	Modules(w io.Writer) error
	// Selftest runs every check of the boot's manifest again on the live
	// machine, printing their lines and the closing line, and returns the
	// tally.
	Selftest(w io.Writer) selftest.Summary
	// Processes returns the processes of the last run, in PID order.
	Processes() []Process
	// ReadIn is Read with CR3 at root, a process's top table whose kernel
	// half is the kernel's (so the kernel runs on under it), with user
	// pages readable where SMAP would refuse them (STAC, as
	// copy_from_user): the CPU's own translation under the process's
	// tables. CR3 is the kernel's again when it returns.
	ReadIn(root mm.PhysAddr, va mm.VirtAddr, p []byte) (n int, err error)
}

// Shell runs commands against a Machine.
type Shell struct {
	m Machine
	// use is the address space walk, aliases, x, dis, ptdump and wx
	// read: the kernel's (PID 0) or a process's, or its PTI user copy.
	use    space
	out    io.Writer
	boot   selftest.Summary // the boot's self-test
	reruns int              // selftest commands run
	failed int              // of which failed
}

// New returns a shell printing to out; boot is the boot's self-test, whose
// verdict exit returns unless a selftest command fails since.
func New(m Machine, out io.Writer, boot selftest.Summary) *Shell {
	return &Shell{m: m, out: out, boot: boot}
}

// Passed is the status exit returns, the worse of the boot's self-test and
// every selftest command since: a failed boot stays failed.
func (s *Shell) Passed() bool { return s.boot.OK() && s.failed == 0 }

// command is one shell command.
type command struct {
	name  string
	args  string // usage after the name
	help  string // one line, for help
	more  func(s *Shell) []string
	min   int // arguments at least
	max   int // at most; -1: any number
	run   func(s *Shell, args []string) error
	final bool // ends the shell
}

// Help texts, each command on one line of at most helpWidth columns.
const (
	helpWidth   = 100
	helpColumn  = 24
	addressHelp = "Addresses: hex (0x optional, _ allowed) or a symbol (sym lists them), then +HEX or -HEX offsets."
	keysHelp    = "Keys: up/down recall history, backspace, ^U erase the line, ^C drop it, ^D on an empty line exits."
)

var commands []command

func init() {
	commands = []command{
		{"help", "[COMMAND]", "the commands, or more on one", nil, 0, 1, (*Shell).help, false},
		{"regions", "", "the layout as built: mm.rst's rows, with what the live tables map", nil, 0, 0, (*Shell).regions, false},
		{"walk", "VA", "each level's table, index and entry for VA, down to the page or the hole", nil, 1, 1, (*Shell).walk, false},
		{"aliases", "PA", "every virtual address mapping PA (a symbol: the frame behind it)", nil, 1, 1, (*Shell).aliases, false},
		{"x", "VA [N]", fmt.Sprintf("hex dump of N bytes (default %d, at most %d) read through VA", defaultDump, maxDump), nil, 1, 2, (*Shell).dump, false},
		{"dis", "VA [N]", fmt.Sprintf("disassemble N instructions (default %d, at most %d) at VA", defaultDis, maxDis), nil, 1, 2, (*Shell).dis, false},
		{"ptdump", "[-phys] [REGION]", "the live tables in ptdump format, all or one region; -phys adds PAs", (*Shell).ptdumpMore, 0, -1, (*Shell).ptdump, false},
		{"lsmod", "", "the loaded modules, as /proc/modules lists them", nil, 0, 0, (*Shell).lsmod, false},
		{"ps", "", "the processes of the last run: top table, system calls, exceptions, state", nil, 0, 0, (*Shell).ps, false},
		{"mm", "PID", "a process's address space: its user half, then the kernel half it shares", nil, 1, 1, (*Shell).mmCmd, false},
		{"use", "kernel|PID [user]", "the tables walk, x, ptdump... read: kernel, a process's, its user copy", nil, 1, 2, (*Shell).useCmd, false},
		{"sym", "[VA]", "the symbols, or the symbol and region of VA", nil, 0, 1, (*Shell).sym, false},
		{"wx", "", "Linux's W+X audit of both canonical halves, with any W+X mappings", nil, 0, 0, (*Shell).wx, false},
		{"selftest", "", "run the boot's checks again (after a failed boot, the shell still fails)", nil, 0, 0, (*Shell).selftest, false},
		{"exit", "", "end with the worse of the boot's and the selftests' status (QEMU exits)", nil, 0, 0, (*Shell).exit, true},
		{"quit", "", "the same as exit", nil, 0, 0, (*Shell).exit, true},
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
		names := make([]string, len(commands))
		for i, c := range commands {
			names[i] = c.name
		}
		if sug := suggest(name, names); sug != "" {
			return errorf(name, name, ErrUnknownCommand, "unknown command %q: did you mean %s? (try help)", name, sug)
		}
		return errorf(name, name, ErrUnknownCommand, "unknown command %q (try help)", name)
	}
	if len(args) < c.min || (c.max >= 0 && len(args) > c.max) {
		return errorf(name, "", ErrUsage, "usage: %s", c.usage())
	}
	return c.run(s, args)
}

func (c *command) usage() string { return strings.TrimSpace(c.name + " " + c.args) }

// Run prints the prompt, reads a line, runs it, until exit, quit or the end
// of input (^D on an empty line), and returns the status exit returns (see
// Passed).
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
			s.exit(nil)
			return s.Passed()
		}
		if err != nil {
			fmt.Fprintf(s.out, "error: %v\n", err)
			continue
		}
		if done, _ := s.Exec(line); done {
			return s.Passed()
		}
	}
}

func (s *Shell) help(args []string) error {
	if len(args) == 1 {
		c := lookup(args[0])
		if c == nil {
			return errorf("help", args[0], ErrUnknownCommand, "unknown command %q (try help)", args[0])
		}
		fmt.Fprintf(s.out, "%s: %s\n", c.usage(), c.help)
		if c.more != nil {
			for _, line := range c.more(s) {
				fmt.Fprintln(s.out, "  "+line)
			}
		}
		return nil
	}
	fmt.Fprintln(s.out, "commands:")
	for _, c := range commands {
		fmt.Fprintf(s.out, "  %-*s %s\n", helpColumn, c.usage(), c.help)
	}
	fmt.Fprintln(s.out, addressHelp)
	fmt.Fprintln(s.out, keysHelp)
	return nil
}

// ptdumpMore lists the names a region answers to, for help ptdump.
func (s *Shell) ptdumpMore() []string {
	out := []string{"REGION, in any case: a short name, a Linux symbol, a ptdump marker, an mm.rst description",
		"(regions lists them), or an address or symbol in the region:"}
	for _, r := range s.m.Layout().Regions {
		short := shortName(r.Kind)
		if short == "" {
			continue
		}
		var names []string
		for _, n := range []string{r.Symbol, r.Marker} {
			if n != "" {
				names = append(names, n)
			}
		}
		out = append(out, fmt.Sprintf("  %-15s %s", short, strings.Join(names, ", ")))
	}
	return out
}

func (s *Shell) regions(args []string) error {
	return s.m.Regions(s.out)
}

// selftest runs the checks again and says, beside their own closing line,
// what the boot's verdict was: a shell after a failed boot never passes.
func (s *Shell) selftest(args []string) error {
	now := s.m.Selftest(s.out)
	s.reruns++
	if !now.OK() {
		s.failed++
	}
	fmt.Fprintf(s.out, "physmap: %s; selftest now: %d passed, %d failed; exit status: %s\n",
		s.bootVerdict(), now.Passed, now.Failed, status(s.Passed()))
	return nil
}

// bootVerdict says how the boot's self-test went.
func (s *Shell) bootVerdict() string {
	b := s.boot
	switch {
	case b.Passed+b.Failed == 0:
		return "the boot ran no checks"
	case b.OK():
		return fmt.Sprintf("the boot passed (%d of %d %s)", b.Passed, b.Passed, plural(b.Passed, "check", "checks"))
	}
	n := b.Passed + b.Failed
	return fmt.Sprintf("the boot failed %d of %d %s", b.Failed, n, plural(n, "check", "checks"))
}

func (s *Shell) exit(args []string) error {
	why := ""
	switch {
	case !s.boot.OK():
		why = " (" + s.bootVerdict() + ")"
	case s.failed > 0:
		why = fmt.Sprintf(" (%d of %d selftest runs failed)", s.failed, s.reruns)
	}
	fmt.Fprintf(s.out, "physmap: exit with the self-test's status: %s%s\n", status(s.Passed()), why)
	return nil
}

func status(ok bool) string {
	if ok {
		return "pass"
	}
	return "fail"
}

// tables returns the tables use names (the live tables by default) or the
// machine's error as a shell error.
func (s *Shell) tables(cmd string) (*mm.AddressSpace, error) {
	if s.use.pid != 0 {
		pr, err := s.usedProcess(cmd)
		if err != nil {
			return nil, err
		}
		if s.use.user {
			return pr.UserCopy, nil
		}
		return pr.Tables, nil
	}
	as, err := s.m.Tables()
	if err != nil {
		return nil, errorf(cmd, "", ErrNoTables, "%v", err)
	}
	return as, nil
}
