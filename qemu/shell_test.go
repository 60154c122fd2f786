package qemu

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// shellScript is a fake boot that passes and leaves a shell answering two
// lines, the second exit.
var shellScript = "\n" + passPrints + `print physmap: shell ready; type help for the commands
prompt physmap> 
readline walk zz
print error: "zz" is not a hex address
prompt physmap> 
readline exit
print physmap: exit with the self-test's status: pass
exit 1`

func TestRunShell(t *testing.T) {
	for _, tc := range []struct {
		name    string
		script  string
		shell   []Exchange
		want    error
		answers []Answer
		detail  string
	}{
		{"pass", shellScript, []Exchange{{"walk zz", `^error: "zz" is not a hex address\n$`}, {"exit", `status: pass`}}, nil,
			[]Answer{{"walk zz", "error: \"zz\" is not a hex address\n", true}, {"exit", "physmap: exit with the self-test's status: pass\n", true}}, ""},
		{"wrong answer", shellScript, []Exchange{{"walk zz", `is not mapped`}, {"exit", `status: pass`}}, ErrShell,
			[]Answer{{"walk zz", "error: \"zz\" is not a hex address\n", false}, {"exit", "physmap: exit with the self-test's status: pass\n", true}},
			`"walk zz" answered "error: \"zz\" is not a hex address\n", which does not match "is not mapped"`},
		{"console ends early", strings.Replace(shellScript, "prompt physmap> \nreadline exit", "", 1),
			[]Exchange{{"walk zz", `hex`}, {"exit", `pass`}}, ErrShell,
			[]Answer{{"walk zz", "error: \"zz\" is not a hex address\nphysmap: exit with the self-test's status: pass\n", true}},
			`the console ended before "exit" was typed (1 of 2 lines played`},
		{"wrong line typed", shellScript, []Exchange{{"walk 0", `.`}, {"exit", `.`}}, ErrShell, nil, `the console ended before "exit"`},
		{"no prompt", passScript, []Exchange{{"exit", `.`}}, ErrShell, nil, `the console ended before "exit" was typed (0 of 1`},
		{"bad regexp", shellScript, []Exchange{{"exit", `(`}}, ErrShell, nil, `exchange 0 ("exit"): error parsing regexp`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fake(t, tc.script)
			r := &Runner{Shell: tc.shell}
			res, err := r.Run(context.Background(), cfg)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), tc.detail) {
				t.Errorf("err = %v, want it to say %s", err, tc.detail)
			}
			if tc.answers != nil && (len(res.Shell) != len(tc.answers) || !equalAnswers(res.Shell, tc.answers)) {
				t.Errorf("answers %+v, want %+v", res.Shell, tc.answers)
			}
		})
	}
}

func equalAnswers(a, b []Answer) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRunShellNotInteractive(t *testing.T) {
	cfg := fake(t, shellScript)
	cfg.Interactive = true
	_, err := (&Runner{Shell: []Exchange{{"exit", "."}}}).Run(context.Background(), cfg)
	if !errors.Is(err, ErrStart) {
		t.Errorf("err = %v, want ErrStart", err)
	}
}

// typed records what the scripter types.
type typed struct {
	strings.Builder
	closed bool
}

func (t *typed) Close() error { t.closed = true; return nil }

// TestScripterSplitPrompt feeds the console a byte at a time: the prompt
// and the answers arrive in pieces.
func TestScripterSplitPrompt(t *testing.T) {
	in := &typed{}
	sc, err := newScripter([]Exchange{{"help", `commands`}, {"walk 1", `^PA 0x1\n$`}}, in)
	if err != nil {
		t.Fatal(err)
	}
	console := "boot\nphysmap> help\r\ncommands ...\r\nphysmap> walk 1\nPA 0x1\nphysmap> "
	for i := range len(console) {
		sc.Write([]byte{console[i]})
	}
	if in.String() != "help\nwalk 1\n" || !in.closed {
		t.Errorf("typed %q, closed %v", in.String(), in.closed)
	}
	answers, err := sc.finish(nil)
	if err != nil || len(answers) != 2 || !answers[0].OK || !answers[1].OK {
		t.Errorf("answers %+v, err %v", answers, err)
	}
}

func TestWithShell(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "physmap.shell=1",
		"physmap.hold=1":                   "physmap.hold=1 physmap.shell=1",
		"physmap.shell=0 physmap.ptdump=0": "physmap.shell=0 physmap.ptdump=0",
		" physmap.shell=1":                 " physmap.shell=1",
		"xphysmap.shell=0":                 "xphysmap.shell=0 physmap.shell=1",
	} {
		if got := WithShell(in); got != want {
			t.Errorf("WithShell(%q) = %q, want %q", in, got, want)
		}
	}
}
