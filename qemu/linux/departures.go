package linux

// Departures documents every difference physmap-linux expects between
// physmap and Linux 6.1 as Debian builds it (linux-image-amd64), each with
// one line why. A difference no entry matches is unexplained and fails the
// comparison; an entry no difference matches is listed as not seen, so the
// table shrinks as physmap's fidelity work (issue 12) lands.
//
// Keys are REGION:ASPECT[:DETAIL] as Compare and Topics make them: REGION is
// a region's short name (regionIDs) or a topic, ASPECT one of base, mapped,
// size, page:SIZE, perm:PERMISSIONS, or a topic's own.
var Departures = []Departure{
	{Key: "user:*", Kind: Deliberate,
		Why: "physmap runs at its physical address (TamaGo), so its 128 MiB runtime window stays identity mapped in the lower half (README: the low window); Linux's lower half is the current process's, here busybox's"},

	{Key: "directmap:page:1G", Kind: Pending,
		Why: "Linux splits a large direct-map page wherever set_memory_* changes part of it (module text made read-only through cpa_process_alias, a freed module init section reset: arch/x86/mm/pat/set_memory.c), and Linux's module frames, allocated from the top of RAM, lie in its one 1 GiB page with 2 GiB of RAM; physmap seals its modules' aliases the same way, but its frames come from the bottom of RAM, so it splits a 2M page instead"},
	{Key: "directmap:perm:ro GLB x", Kind: LinuxOnly,
		Why: "the real-mode trampoline Linux keeps below 1 MiB to start other CPUs and to resume is executable through the direct map (arch/x86/realmode/init.c: set_real_mode_permissions; see the realmode fact); physmap boots one CPU through PVH and has none"},
	{Key: "directmap:perm:ro x", When: "pti", Kind: LinuxOnly,
		Why: "the real-mode trampoline below 1 MiB, executable through the direct map (arch/x86/realmode/init.c: set_real_mode_permissions), global bit cleared by PTI; physmap has none"},
	{Key: "directmap:perm:RW NX", Kind: LinuxOnly,
		Why: "frames whose direct-map alias went through set_direct_map_invalid_noflush and set_direct_map_default_noflush, which sets P and RW but not G (vm_reset_perms when a VM_FLUSH_RESET_PERMS area such as a module's init section is freed: mm/vmalloc.c, arch/x86/mm/pat/set_memory.c); physmap frees nothing"},
	{Key: "directmap:perm:ro NX", Kind: LinuxOnly,
		Why: "a frame that lost G in a freed VM_FLUSH_RESET_PERMS area (set_direct_map_default_noflush) and was then made read-only as another module's text or rodata alias (cpa_process_alias); physmap frees nothing"},

	{Key: "modules:directmap-alias", Kind: LinuxOnly,
		Why: "a module text frame that had lost G in a freed VM_FLUSH_RESET_PERMS area (set_direct_map_default_noflush sets P and RW, not G) before this module got it, then made read-only through cpa_process_alias: its alias is ro NX without GLB; physmap frees nothing"},
	{Key: "vmalloc:perm:RW PCD NX", When: "pti", Kind: Pending,
		Why: "Linux's ioremaps in the vmalloc area lose the global bit under PTI (see the ioremap fact); physmap has no PTI"},

	{Key: "modules:perm:ro NX", When: "pti", Kind: Pending,
		Why: "a Linux module's rodata is read-only and NX (kernel/module/strict_rwx.c), its global bit cleared by PTI; physmap has no PTI"},

	{Key: "text:directmap-alias", Kind: Pending,
		Why: "Linux's linker script pads text and rodata to 2 MiB boundaries (arch/x86/kernel/vmlinux.lds.S, with mark_rodata_ro freeing the padding), so both keep 2M pages in both aliases; TamaGo's linker packs physmap's 1.6 MB of text against its rodata, so their direct-map aliases, made read-only apart, are split to 4K"},

	{Key: "pti:global", When: "pti", Kind: Pending,
		Why: "with PTI Linux clears G from the kernel half but the entry text and cpu_entry_area the user tables share (arch/x86/mm/pti.c, arch/x86/mm/init.c: probe_page_size_mask); physmap has no PTI"},

	{Key: "meminfo:DirectMap1G:over", Kind: LinuxOwn,
		Why: "phys_pud_init counts an existing 1 GiB page again each time init_memory_mapping walks its range (arch/x86/mm/init_64.c: \"if (!after_bootmem) pages++\"), and a later split subtracts it once, so DirectMap1G can exceed RAM"},
}
