/*
 * physmap_module.h: what a physmap module needs from the kernel, written
 * for physmap in the spirit of Linux's include/linux/module.h and
 * include/linux/export.h (6.1), not copied from them.
 *
 * A module is one C file compiled with -DMODULE -DKBUILD_MODNAME='"name"'
 * into a relocatable object (ET_REL, as a .ko is), with no libc and no
 * Linux headers: everything it uses from the kernel is declared here.
 */
#ifndef PHYSMAP_MODULE_H
#define PHYSMAP_MODULE_H

#define __used		__attribute__((__used__))
#define __section(s)	__attribute__((__section__(s)))
#define __aligned(n)	__attribute__((__aligned__(n)))

#define __PM_CAT2(a, b)	a##b
#define __PM_CAT(a, b)	__PM_CAT2(a, b)
#define __PM_UNIQUE(p)	__PM_CAT(p, __COUNTER__)

/*
 * MODULE_INFO(tag, "value") puts the string "tag=value" in .modinfo, the
 * section Linux's get_modinfo reads and the loader drops from the image
 * (kernel/module/main.c: setup_load_info, rewrite_section_headers). Linux's
 * modpost adds name=KBUILD_MODNAME; here this header does.
 */
#define MODULE_INFO(tag, info)						\
	static const char __PM_UNIQUE(__modinfo_)[] __used		\
	__section(".modinfo") __aligned(1) = #tag "=" info

#define MODULE_LICENSE(l)	MODULE_INFO(license, l)
#define MODULE_DESCRIPTION(d)	MODULE_INFO(description, d)

#ifdef KBUILD_MODNAME
MODULE_INFO(name, KBUILD_MODNAME);
#endif

/*
 * EXPORT_SYMBOL(sym) makes sym visible to modules loaded later, as Linux's
 * does: an entry in the section __ksymtab pointing at the symbol and at its
 * name in __ksymtab_strings. Linux 6.1 on x86-64 writes each entry as three
 * 32-bit place-relative offsets (value, name, namespace:
 * CONFIG_HAVE_ARCH_PREL32_RELOCATIONS); physmap's entry is two absolute
 * 64-bit pointers, so each one is an R_X86_64_64 relocation.
 */
struct physmap_ksym {
	unsigned long value;
	const char *name;
};

#define EXPORT_SYMBOL(sym)						\
	static const char __kstrtab_##sym[] __used			\
	__section("__ksymtab_strings") __aligned(1) = #sym;		\
	static const struct physmap_ksym __ksymtab_##sym __used	\
	__section("__ksymtab") __aligned(8) =				\
		{ (unsigned long)&sym, __kstrtab_##sym }

/*
 * module_init(fn) and module_exit(fn) name the functions the kernel calls
 * after loading and before unloading, through the aliases init_module and
 * cleanup_module, as include/linux/module.h defines them for a module.
 * init returns 0 or a negative errno. A module without module_exit cannot
 * be unloaded ("[permanent]" in /proc/modules).
 */
typedef int (*initcall_t)(void);
typedef void (*exitcall_t)(void);

#define module_init(fn)							\
	static inline initcall_t __inittest(void) { return fn; }	\
	int init_module(void) __attribute__((__alias__(#fn)))

#define module_exit(fn)							\
	static inline exitcall_t __exittest(void) { return fn; }	\
	void cleanup_module(void) __attribute__((__alias__(#fn)))

/*
 * __ro_after_init: data written during init and read-only after it, in the
 * section Linux's loader lays out between rodata and data
 * (kernel/module/main.c: layout_sections, SHF_RO_AFTER_INIT).
 */
#define __ro_after_init	__section(".data..ro_after_init")

#define EINVAL	22

/*
 * The kernel's symbols a module may use: physmap's kernel exports them at
 * addresses in its kernel text mapping (__START_KERNEL_map), as Linux
 * exports its own with EXPORT_SYMBOL (page_offset_base:
 * arch/x86/kernel/head64.c).
 */
extern unsigned long page_offset_base;

/* Writes n bytes of s to the console; returns n. physmap's own. */
extern unsigned long physmap_console_write(const char *s, unsigned long n);

#endif /* PHYSMAP_MODULE_H */
