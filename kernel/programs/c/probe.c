/*
 * probe: the program physmap runs as its processes, twice, at the same
 * user addresses over different frames, and a third time as the spinner
 * the LAPIC timer ends (physmap_probe's spin). Static, no libc (-nostdlib): it
 * makes Linux's system calls itself (write 1, getpid 39, exit 60, the
 * numbers of arch/x86/entry/syscalls/syscall_64.tbl) and two of physmap's
 * own, numbered above Linux 6.1's last (450), which exist only in physmap:
 *
 *   1000 report(kind, a, b, c, d): tell the kernel a fact it checks.
 *   1001 trap(handler): where to resume after an exception, in place of
 *        a signal handler: handler(vector, error code, address) runs on
 *        a fresh stack.
 *
 * The kernel passes, in RDI at _start (in place of argc, argv and the
 * auxiliary vector Linux puts on the stack), the addresses to probe.
 */

typedef unsigned long u64;

#define SYS_write		1
#define SYS_getpid		39
#define SYS_exit		60
#define SYS_physmap_report	1000
#define SYS_physmap_trap	1001

/* report kinds, as kernel/region/binfmt_elf.go reads them */
#define REPORT_HELLO	1	/* pid, CS as read in ring 3, &secret */
#define REPORT_FAULT	2	/* stage, vector, error code, address */
#define REPORT_NOFAULT	3	/* stage */
#define REPORT_SECRET	4	/* secret as read back, &secret */
#define REPORT_EFAULT	5	/* what write returned for a kernel buffer */
#define REPORT_SPUN	6	/* the spin loop ran to its end: iterations */

struct physmap_probe {
	u64 direct_own;		/* page_offset_base + pa of this process's stack page */
	u64 kernel_text;	/* _text in the kernel text mapping */
	u64 kernel_data;	/* a kernel data word in the kernel text mapping */
	u64 noncanonical;	/* an address in neither half */
	u64 spin;		/* if not 0: spin this many times, first */
};

static long sys5(long n, long a, long b, long c, long d, long e)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
			 : "rcx", "r11", "memory");
	return ret;
}

static void report(long kind, long a, long b, long c, long d)
{
	sys5(SYS_physmap_report, kind, a, b, c, d);
}

static __attribute__((noreturn)) void sys_exit(long code)
{
	sys5(SYS_exit, code, 0, 0, 0, 0);
	for (;;)
		;
}

/* Data, at the same address in both processes. */
static struct physmap_probe *probe;
static volatile u64 stage;
/* secret has a page of its own: the two processes' differ in frame only. */
static volatile struct {
	u64 value;
	char pad[4096 - sizeof(u64)];
} secret_page __attribute__((aligned(4096)));
#define secret (secret_page.value)
static char greeting[] = "hello from ring 3, pid ?\n";

/*
 * smep_probe is code the kernel calls at its user address, to see SMEP
 * refuse to run it: it takes nothing and returns a constant in RAX.
 */
__attribute__((used, noinline)) long smep_probe(void)
{
	return 0x736d6570;
}

/*
 * payload is what ret2dir plants: code written into the process's own
 * data page (mov $0x72326472, %eax; ret), which the kernel then finds
 * at page_offset_base + its frame.
 */
static volatile unsigned char payload[8];
static const unsigned char payload_code[] = { 0xb8, 0x72, 0x64, 0x32, 0x72, 0xc3 };

enum { STAGE_DIRECT, STAGE_TEXT, STAGE_DATA, STAGE_NONCANONICAL, STAGES };

static __attribute__((noreturn)) void finish(void)
{
	long r;

	report(REPORT_SECRET, secret, (long)&secret, 0, 0);
	/* copy_from_user of a kernel address: -EFAULT, nothing printed. */
	r = sys5(SYS_write, 1, probe->kernel_text, 16, 0, 0);
	report(REPORT_EFAULT, r, 0, 0, 0);
	sys_exit(0);
}

/*
 * run does the stages from the current one on. Each stage moves stage on
 * before its access, so that after a fault on_fault can call run again.
 */
static __attribute__((noreturn)) void run(void)
{
	for (;;) {
		u64 s = stage;

		stage = s + 1;
		switch (s) {
		case STAGE_DIRECT:	/* own page through the direct map */
			(void)*(volatile u64 *)probe->direct_own;
			break;
		case STAGE_TEXT:	/* kernel text */
			(void)*(volatile u64 *)probe->kernel_text;
			break;
		case STAGE_DATA:	/* kernel data, written */
			*(volatile u64 *)probe->kernel_data = 0x7573657221;
			break;
		case STAGE_NONCANONICAL:
			(void)*(volatile u64 *)probe->noncanonical;
			break;
		default:
			finish();
		}
		report(REPORT_NOFAULT, s, 0, 0, 0);
	}
}

void on_fault(u64 vector, u64 code, u64 addr)
{
	report(REPORT_FAULT, stage - 1, vector, code, addr);
	run();
}

__attribute__((noreturn)) void pm_main(struct physmap_probe *p)
{
	unsigned short cs;
	long pid;
	int n;

	if (p->spin) {
		/*
		 * The spinner: no system call, no exception, ring 3 until the
		 * kernel's timer ends it. The loop is finite so that, with no
		 * timer, the process says so instead of never returning.
		 */
		u64 i;

		for (i = 0; i < p->spin; i++)
			__asm__ volatile("");
		report(REPORT_SPUN, i, 0, 0, 0);
		sys_exit(0);
	}
	pid = sys5(SYS_getpid, 0, 0, 0, 0, 0);
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	probe = p;
	secret = 0x5ec2e700 + pid;
	for (n = 0; n < (int)sizeof(payload_code); n++)
		payload[n] = payload_code[n];
	report(REPORT_HELLO, pid, cs, (long)&secret, 0);

	n = sizeof(greeting) - 1;
	greeting[n - 2] = '0' + pid % 10;
	sys5(SYS_write, 1, (long)greeting, n, 0, 0);

	sys5(SYS_physmap_trap, (long)on_fault, 0, 0, 0, 0);
	run();
}

/* The entry point: the stack aligned as at a call, RDI passed on. */
__asm__(".globl _start\n"
	"_start:\n"
	"\txor %ebp, %ebp\n"
	"\tand $-16, %rsp\n"
	"\tcall pm_main\n"
	"\tud2\n");
