// Package exec reads a static x86-64 ELF executable into the segments a
// process maps, as Linux's load_elf_binary (fs/binfmt_elf.c) reads one:
// each PT_LOAD at its link address with its p_flags' permissions, the file
// bytes first and zeros up to p_memsz (the bss). It refuses what physmap
// cannot run: other machines and classes, position-independent and
// dynamically linked programs (ET_DYN, PT_INTERP, PT_DYNAMIC), TLS,
// segments outside the allowed range, overlapping, writable and
// executable at once, or larger than the limit.
//
// It is pure (debug/elf over a byte slice), so it is host-tested and
// fuzzed; the kernel maps what it returns.
package exec
