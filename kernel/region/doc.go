// Package region builds the regions of the Linux x86-64 kernel address space
// in physmap's page tables and proves them on the CPU.
//
// Each region is one type in a file named after the Linux source that
// fills it (init_64.go for the direct map, espfix_64.go, cpu_entry_area.go,
// ...), behind one interface: it populates its part of the tables, proves
// it on the live tables, and applies its fault injections. The order, the
// checks each region owes and the injections that must fail them come from
// one list, [selftest.Registry]; [New] pairs every entry with its type.
//
// The package is pure Go: it reaches the processor through the [CPU]
// interface, physical memory through mm.PhysMem, so the kernel runs it on
// the real MMU and host tests on a simulated one.
//
// # Where expectations come from
//
// A proof never takes its expectation from the code that built what it
// checks. It reads the tables the CPU uses (from CR3, not the builder's
// handle), finds the bases there ([Discover]: the leaf that maps physical
// address 0 is page_offset_base, the one that maps _text's frame in the
// kernel text mapping is _text, ...), and holds them to a [Reference]: RAM
// from the PVH start_info memory map (the builder reads fw_cfg's etc/e820),
// mm.rst's documented bases, Linux's rules for KASLR, the image's frames
// from the linker's symbols, the CPU's own registers. Injections change
// page-table entries, CPU state, a TLB flush or memory contents, never a
// plan or an expectation.
package region
