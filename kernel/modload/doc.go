// Package modload is physmap's module loader: the parts of Linux 6.1's
// (kernel/module/main.c, arch/x86/kernel/module.c) that need no hardware.
// It reads a relocatable ELF object with debug/elf, checks it, lays its
// sections out, resolves its symbols against the kernel's and other
// modules' exports, and applies its RELA relocations for a base address
// the caller chooses, producing the bytes of each page-aligned group. It
// allocates no frame and maps nothing: the kernel does, with the image
// this package gives it. It is plain Go, tested on the host.
//
// # Loading a module
//
//	obj, err := modload.Parse(data)            // check and lay out: no base yet
//	base := ...                                // a free, page-aligned range of obj.Size() in the module area
//	img, err := reg.Link(obj, base, area)      // resolve and relocate for base
//	// only now: allocate img.Groups[g].Pages() frames per group, zero them,
//	// copy img.Groups[g].Page(i) into frame i, map each group at
//	// img.Groups[g].VA with img.Groups[g].Group.Attrs(false); on a failure
//	// here, unmap and free what was taken.
//	mod, err := reg.Add(img)                   // visible to later modules ("Loading")
//	// call init at img.Init(); on 0: mod.MarkLive() and remap ro_after_init
//	// with Attrs(true); otherwise Remove it, unmap and free.
//
// Every check that can refuse the module runs in Parse and Link, before
// the caller takes a frame, so a refused module never needs undoing; Add
// fails only if the registry changed since Link. Unloading is the reverse:
// [Registry.CanRemove], exit at img.Exit(), [Registry.Remove], then unmap
// and free. [Registry.Modules] (newest first) is an order to unload in;
// [LoadOrder] sorts objects into an order to load in.
//
// # What follows Linux
//
//   - checks and messages: elf_validity_check, setup_load_info,
//     module_enforce_rwx_sections, simplify_symbols, verify_exported_symbols
//     and __apply_relocate_add; [Error.Msg] carries Linux's words where
//     Linux checks the same thing ([Error.Linux]), without the "module: "
//     prefix pr_fmt adds to arch/x86/kernel/module.c's lines;
//   - the layout of layout_sections with CONFIG_STRICT_MODULE_RWX (Debian's
//     6.1 config sets it): text (SHF_ALLOC|SHF_EXECINSTR), rodata
//     (SHF_ALLOC without SHF_WRITE), ro_after_init (SHF_RO_AFTER_INIT, set
//     on .data..ro_after_init and __jump_table by name), data
//     (SHF_ALLOC|SHF_WRITE, .bss included), each section at its
//     sh_addralign in section order, each group starting on a page; one
//     range for all four, as module_alloc gives on x86-64;
//   - the relocation arithmetic of R_X86_64_64, 32, 32S, PC32, PLT32 and
//     PC64: S+A, minus P for the PC-relative ones, refused if the field
//     already holds a nonzero value;
//   - symbol resolution: the kernel's exports first, then the loaded
//     modules'; a weak undefined symbol nothing provides is 0; a module's
//     exports come from its __ksymtab;
//   - /proc/modules' format, references held by users, and delete_module's
//     refusals.
//
// # Departures from Linux 6.1
//
//   - physmap refuses a PC32 or PLT32 displacement that does not fit in 32
//     signed bits. Linux 6.1 has that check under #if 0 and stores the
//     truncated displacement, so a module placed out of reach of the kernel
//     would jump or read somewhere else; it is refused only through its
//     32S relocations. [PlacementError.First] is the overflow Linux would
//     report.
//   - No init layout: Linux lays .init* sections out in a second
//     allocation freed after init; physmap refuses them (its modules keep
//     init in .text). No per-CPU sections, no SHT_REL, no livepatch.
//   - No struct module in .gnu.linkonce.this_module (physmap has no
//     modpost): the name comes from name= in .modinfo and init and exit
//     from the symbols init_module and cleanup_module, which module_init
//     and module_exit alias, as include/linux/module.h does. No vermagic,
//     no CRCs (__versions is dropped as Linux drops it), no signature.
//   - __ksymtab entries are physmap's own: two absolute pointers (value,
//     name), where Linux 6.1 on x86-64 uses three 32-bit place-relative
//     offsets (CONFIG_HAVE_ARCH_PREL32_RELOCATIONS) with a namespace.
//   - The module's symbols stay in Go memory ([Image.Symbols]) instead of a
//     symtab copied into the module's data, so a module's size is that of
//     its sections alone.
//   - Checks Linux leaves to the module's signature: a relocation's offset
//     and symbol index in bounds, an alignment that is a power of two up to
//     a page, the ELF class and byte order.
package modload
