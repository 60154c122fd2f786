// Package modules holds physmap's loadable modules: C sources in c/,
// compiled as Linux compiles a module for x86-64 (make modules; the flags
// and their sources are in the Makefile) into relocatable objects in obj/,
// which the kernel embeds (embed_tamago.go) and loads with [modload].
//
//   - c/physmap_module.h: the module's side of the kernel interface,
//     physmap's own small form of include/linux/module.h and export.h:
//     MODULE_INFO and name= in .modinfo, EXPORT_SYMBOL with a __ksymtab
//     entry, module_init and module_exit, __ro_after_init, and the kernel
//     symbols a module may use (page_offset_base, physmap_console_write).
//   - c/reloc.c: reaches the kernel through every relocation gcc emits for
//     the kernel code model (R_X86_64_PC32, PLT32, 32S and 64), and
//     exports reloc_add and reloc_calls.
//   - c/deps.c: uses reloc's exports, so it loads after reloc and reloc
//     cannot unload before it.
//
// The modules live apart from the loader for the reason Linux keeps them
// out of kernel/module/: they are its clients, not part of it. Their
// objects land in obj/ below this package because go:embed reaches only
// below a package (not build/); the sources sit in c/ because the go
// command refuses C files in a package directory that does not use cgo.
//
// [modload]: github.com/physmap/physmap/kernel/modload
package modules
