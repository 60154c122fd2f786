// Package selftest is the protocol physmap's kernel speaks on its serial
// console, and the parser the host harness reads it with.
//
// The kernel prints one line per check and a closing line:
//
//	PASS <check>: <detail>
//	FAIL <check>: <detail>
//	selftest: N passed, M failed
//
// A check name is one word of letters, digits and the characters "._-/".
// After the closing line a kernel booted with physmap.hold=1 prints
// HoldLine and stays halted with its page tables live.
//
// The package is pure Go with no hardware dependency, so the kernel and the
// host tooling share exactly one definition of the format.
package selftest
