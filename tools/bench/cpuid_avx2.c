/* cpuid_avx2.so: makes a process on an AVX-512 x86-64 CPU see an AVX2 + FMA one (issue #4's machine
 * is a Zen2, without AVX-512, and this project's machine has AVX-512). Loaded as an audit library
 * (LD_AUDIT, with LD_BIND_NOW=1 so that auditing adds no cost to PLT calls) into both engines (ONNX
 * Runtime's Python process and effnet), it starts before any object of the program is relocated, so
 * that even ifunc resolvers (GCC's target_clones) already see the masked CPU; as LD_PRELOAD it
 * would start only after them. It turns on the kernel's CPUID faulting (arch_prctl ARCH_SET_CPUID,
 * 0) so that every later CPUID instruction of the process traps; the SIGSEGV handler runs the real
 * CPUID with faulting off for a moment, clears the AVX-512, AMX and AVX-VNNI feature bits of leaf
 * 7, and steps over the instruction. Run-time dispatchers (MLAS, cpuinfo, OpenBLAS, libgcc's
 * __builtin_cpu_supports) then pick their AVX2 kernels. Threads inherit the faulting. Only glibc's
 * own choice of string functions, made before audit libraries load, still sees AVX-512 (it does not
 * matter here). Needs a CPU and kernel with CPUID faulting ("cpuid_fault" in /proc/cpuinfo);
 * without it the library says so on stderr and exits with status 3, so no benchmark silently
 * runs on the wrong kernels. Any other SIGSEGV keeps its default action. A program that installs
 * its own SIGSEGV handler later replaces this one, and its CPUID faults then look like crashes
 * (AddressSanitizer's: run it with ASAN_OPTIONS=handle_segv=0).
 *
 * Build: gcc -O2 -shared -fPIC -o cpuid_avx2.so tools/bench/cpuid_avx2.c */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "cpuid_avx2.c is for x86-64 only"
#endif

/* leaf 7 subleaf 0 EBX: avx512 f, dq, ifma, pf, er, cd, bw, vl */
#define L7_EBX_MASK 0xDC230000u
/* leaf 7 subleaf 0 ECX: avx512 vbmi, vbmi2, vnni, bitalg, vpopcntdq */
#define L7_ECX_MASK 0x00005842u
/* leaf 7 subleaf 0 EDX: avx512 4vnniw, 4fmaps, vp2intersect, amx-bf16, fp16, amx-tile, amx-int8 */
#define L7_EDX_MASK 0x03C0010Cu
/* leaf 7 subleaf 1 EAX: avx-vnni, avx512-bf16 */
#define L71_EAX_MASK 0x00000030u

static long set_cpuid_faulting(int on) {
  return syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1);
}

static void real_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
  __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static void mask_features(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
  if (leaf == 7 && sub == 0) {
    r[1] &= ~L7_EBX_MASK;
    r[2] &= ~L7_ECX_MASK;
    r[3] &= ~L7_EDX_MASK;
  } else if (leaf == 7 && sub == 1) {
    r[0] &= ~L71_EAX_MASK;
  }
}

static void on_segv(int sig, siginfo_t *info, void *ctx_) {
  ucontext_t *ctx = ctx_;
  greg_t *g = ctx->uc_mcontext.gregs;
  const unsigned char *ip = (const unsigned char *)g[REG_RIP];
  (void)info;
  if (ip[0] != 0x0F || ip[1] != 0xA2) { /* not CPUID: let the fault take its course */
    signal(sig, SIG_DFL);
    return;
  }
  uint32_t leaf = (uint32_t)g[REG_RAX], sub = (uint32_t)g[REG_RCX], r[4];
  set_cpuid_faulting(0);
  real_cpuid(leaf, sub, r);
  set_cpuid_faulting(1);
  mask_features(leaf, sub, r);
  g[REG_RAX] = r[0];
  g[REG_RBX] = r[1];
  g[REG_RCX] = r[2];
  g[REG_RDX] = r[3];
  g[REG_RIP] += 2;
}

static void cpuid_avx2_init(void) {
  static int done;
  if (done++) return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, NULL) != 0 || set_cpuid_faulting(1) != 0) {
    fprintf(stderr, "cpuid_avx2: this CPU or kernel has no CPUID faulting; cannot hide AVX-512\n");
    _exit(3);
  }
}

/* the audit interface's entry point: called as the dynamic linker loads this library */
unsigned int la_version(unsigned int version) {
  cpuid_avx2_init();
  return version;
}
