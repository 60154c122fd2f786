// Package shell is physmap's serial console: after the self-test the kernel
// can leave the user at a prompt ("physmap> ") to explore the address space
// it built and proved, with commands in the spirit of crash(8):
//
//	help [COMMAND]       the commands, one line each, or more on one
//	regions              the layout as built (mm.rst rows, with what is mapped)
//	walk VA              every level's entry for VA, like crash's vtop, then the PA;
//	                     for an unmapped VA, every level reached and the missing entry
//	aliases PA           every virtual address that maps PA (a symbol: its frame)
//	x VA [N]             hex dump of N bytes read through VA; a fault is reported
//	dis VA [N]           disassembly of N instructions at VA
//	ptdump [-phys] [REGION]  the live tables in Linux's ptdump format
//	lsmod                the loaded modules, as /proc/modules lists them
//	ps                   the processes of the last run
//	mm PID               a process's address space: its user half, the kernel half it shares
//	use kernel|PID [user]  the tables walk, aliases, x, dis, ptdump and wx read: the
//	                     kernel's, a process's (x and dis with CR3 at it), its PTI user copy
//	sym [VA]             the symbols, or the symbol and region of VA
//	wx                   the W+X audit of both canonical halves
//	selftest             run the boot's checks again, with the boot's verdict
//	exit, quit           end, with the worse of the boot's and the selftests' status
//
// An address is hex, with or without 0x and with optional _ separators, or
// a symbol, followed by any number of +HEX and -HEX offsets
// (_stext+0x10, page_offset_base+0x1000-8); wrapping past 2^64 or below 0
// is an error. The symbols are the layout's (page_offset_base,
// __START_KERNEL_map, MODULES_VADDR, ..., and PAGE_OFFSET, VMALLOC_START,
// VMALLOC_END, VMEMMAP_START, MODULES_END), standing for their values, and
// the machine's (Machine.Symbols: the image's _text, _stext, _etext, ...,
// and modules'). A REGION is a short name (direct, vmalloc, vmemmap,
// cpu_entry_area, espfix, fixmap, vsyscall, modules, text, ldt, efi, kasan,
// guard, user), a Linux symbol, a ptdump marker or an mm.rst description,
// in any case, or an address in it. Bad input gets one "error: ..." line,
// naming the valid choices or the nearest one, and the prompt back.
//
// A selftest after a failed boot does not make the shell pass: exit
// returns the boot's failure however the selftests went.
//
// The package is pure Go: the kernel supplies a [Machine] (the live tables,
// reads through the CPU with fault recovery, its symbols and its checks)
// and a byte source for [Lines], the line discipline (history on the
// arrow keys, escape sequences parsed to their end); the host tests use a
// Machine built on mm's simulated memory.
package shell
