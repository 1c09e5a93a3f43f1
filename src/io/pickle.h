/* A pickle virtual machine for untrusted input (protocols 2-5, the binary opcodes).
 * It builds plain values (ints, strings, tuples, lists, dicts) and never executes anything:
 * GLOBAL, REDUCE, NEWOBJ and BINPERSID are handed to a host (pk_host) that decides what an
 * allowed name means, so the VM itself knows nothing about torch. Opcode semantics follow
 * CPython's Lib/pickle.py (_Unpickler); the text opcodes of protocols 0/1 are refused.
 * Every length is checked against the bytes left, the memo, mark stack, value stack and the
 * total memory are capped, and nothing recurses, so hostile input costs at most linear time
 * and memory. */
#ifndef EN_PICKLE_H
#define EN_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "effnet.h"

typedef enum pk_tag {
  PK_NONE, PK_BOOL, PK_INT, PK_BIGINT, PK_FLOAT, PK_STR, PK_BYTES, PK_TUPLE, PK_LIST,
  PK_DICT, PK_SET, PK_EXT
} pk_tag;

typedef struct pk_obj pk_obj;

typedef struct pk_val {
  pk_tag tag;
  uint32_t ext;     /* PK_EXT: host-defined kind */
  size_t len;       /* PK_STR, PK_BYTES, PK_BIGINT: byte length of s */
  union {
    int64_t i;      /* PK_BOOL, PK_INT, PK_EXT (host-defined index) */
    double f;
    const char *s;  /* PK_STR (UTF-8 or Python 2 str), PK_BYTES, PK_BIGINT (LE two's
                       complement): points into the pickle, not NUL-terminated */
    pk_obj *o;      /* PK_TUPLE, PK_LIST, PK_SET, PK_DICT */
  } u;
} pk_val;

/* Containers are shared by reference (the memo hands out the same object), so a list filled
 * after it was memoised is seen filled everywhere. A dict stores n/2 key/value pairs as
 * items[2k], items[2k+1] in insertion order; duplicate keys are kept, the caller decides. */
struct pk_obj {
  size_t n, cap;
  pk_val *items;
  pk_obj *next; /* every object of a VM, for freeing without recursion */
};

typedef struct pk_vm pk_vm;

typedef enum pk_call_kind { PK_CALL_REDUCE, PK_CALL_NEWOBJ } pk_call_kind;

/* Callbacks report failures through pk_fail and return its status. */
typedef struct pk_host {
  void *ctx;
  /* GLOBAL / STACK_GLOBAL module.name: set *out (usually a PK_EXT) or fail. */
  effnet_status (*find_class)(void *ctx, pk_vm *vm, const pk_val *module, const pk_val *name,
                              pk_val *out);
  /* REDUCE callable(*args) and NEWOBJ cls.__new__(cls, *args); args is a PK_TUPLE. */
  effnet_status (*call)(void *ctx, pk_vm *vm, pk_call_kind kind, const pk_val *callable,
                        const pk_val *args, pk_val *out);
  /* BINPERSID. */
  effnet_status (*persistent_load)(void *ctx, pk_vm *vm, const pk_val *pid, pk_val *out);
} pk_host;

/* Caps: a real state dict of 100k tensors stays far below them. */
#define PK_MAX_MARKS 1024
#define PK_MAX_STACK ((size_t)1 << 22)
#define PK_MAX_MEMO ((size_t)1 << 22)
#define PK_MAX_BYTES ((size_t)1 << 30) /* everything the VM and its host allocate */

/* err receives the messages of every later call on this VM (it must outlive the VM). */
effnet_status pk_vm_create(pk_vm **out, const pk_host *host, effnet_error *err);
/* Frees the VM and every object it made. NULL is fine. */
void pk_vm_free(pk_vm *vm);

/* Run one pickle at buf[0..len) up to its STOP; *consumed is the byte count through STOP
 * (a legacy torch file is several pickles back to back). The memo and stacks start empty;
 * objects of earlier runs stay valid until pk_vm_free. label names the pickle in messages. */
effnet_status pk_run(pk_vm *vm, const void *buf, size_t len, const char *label,
                     size_t *consumed, pk_val *result);

/* For hosts. pk_fail formats "label: pickle byte N: message" into the VM's error. */
effnet_status pk_fail(pk_vm *vm, effnet_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Account for host allocations against PK_MAX_BYTES (fails with EFFNET_E_LIMIT). */
effnet_status pk_charge(pk_vm *vm, size_t bytes);
/* New empty container (tag PK_TUPLE, PK_LIST, PK_SET or PK_DICT) in *out. */
effnet_status pk_new(pk_vm *vm, pk_tag tag, size_t cap, pk_val *out);
/* Append to a list, set or dict (a dict takes key then value as two appends). */
effnet_status pk_push_item(pk_vm *vm, pk_obj *o, const pk_val *v);

/* Byte-wise string comparison with a NUL-terminated literal. */
int pk_str_is(const pk_val *v, const char *lit);
/* Printable copy of a string value for messages: at most size-1 bytes, non-printable bytes
 * as '?', "..." when cut. */
const char *pk_show(const pk_val *v, char *buf, size_t size);

#endif
