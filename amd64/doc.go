// Package amd64 holds physmap's x86-64 instruction stubs and the hardware
// constants they work with: port I/O, control registers, model-specific
// registers, CPUID and TLB invalidation.
//
// Each privileged instruction has one assembly stub named after it, in a
// file paired with the Go declaration by name (port.go/port.s, ...), built
// only for GOOS=tamago. The constants and the CPUID decoding are plain Go so
// the host can test them.
//
// TamaGo's own amd64 package initialises the CPU; this package adds what
// physmap needs beyond it, because TamaGo's register helpers live in an
// internal package that cannot be imported from outside its module.
package amd64
