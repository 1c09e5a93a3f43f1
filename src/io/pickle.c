/* Pickle VM: see pickle.h. The stack model is CPython's (Lib/pickle.py, _Unpickler): MARK
 * starts a new frame of the stack, and opcodes such as TUPLE1 or SETITEM may only take items
 * of the current frame, while APPENDS/SETITEMS pop the frame and fill the container just
 * below it. */
#include "io/pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

enum {
  OP_MARK = '(', OP_STOP = '.', OP_POP = '0', OP_POP_MARK = '1', OP_DUP = '2',
  OP_BINFLOAT = 'G', OP_BININT = 'J', OP_BININT1 = 'K', OP_BININT2 = 'M', OP_NONE = 'N',
  OP_BINPERSID = 'Q', OP_REDUCE = 'R', OP_BINSTRING = 'T', OP_SHORT_BINSTRING = 'U',
  OP_BINUNICODE = 'X', OP_APPEND = 'a', OP_BUILD = 'b', OP_GLOBAL = 'c', OP_DICT = 'd',
  OP_EMPTY_DICT = '}', OP_APPENDS = 'e', OP_BINGET = 'h', OP_LONG_BINGET = 'j', OP_LIST = 'l',
  OP_EMPTY_LIST = ']', OP_BINPUT = 'q', OP_LONG_BINPUT = 'r', OP_SETITEM = 's', OP_TUPLE = 't',
  OP_EMPTY_TUPLE = ')', OP_SETITEMS = 'u', OP_BINBYTES = 'B', OP_SHORT_BINBYTES = 'C',
  OP_PROTO = 0x80, OP_NEWOBJ = 0x81, OP_TUPLE1 = 0x85, OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87,
  OP_NEWTRUE = 0x88, OP_NEWFALSE = 0x89, OP_LONG1 = 0x8a, OP_LONG4 = 0x8b,
  OP_SHORT_BINUNICODE = 0x8c, OP_BINUNICODE8 = 0x8d, OP_BINBYTES8 = 0x8e, OP_EMPTY_SET = 0x8f,
  OP_ADDITEMS = 0x90, OP_FROZENSET = 0x91, OP_NEWOBJ_EX = 0x92, OP_STACK_GLOBAL = 0x93,
  OP_MEMOIZE = 0x94, OP_FRAME = 0x95, OP_BYTEARRAY8 = 0x96
};

typedef struct memo_slot {
  pk_val v;
  int used;
} memo_slot;

struct pk_vm {
  pk_host host;
  effnet_error *err;
  const char *label;
  const unsigned char *buf;
  size_t len, pos, op_pos;
  pk_val *stack;
  size_t sp, stack_cap;
  size_t marks[PK_MAX_MARKS];
  size_t nmarks;
  memo_slot *memo;
  size_t memo_cap, memo_count;
  pk_obj *objects;
  pk_obj empty_tuple; /* immutable, so one instance serves every EMPTY_TUPLE */
  size_t charged;
};

effnet_status pk_fail(pk_vm *vm, effnet_status status, const char *fmt, ...) {
  if (!vm->err) return status;
  char msg[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return en_fail(vm->err, status, "%s: pickle byte %zu: %s", vm->label ? vm->label : "pickle",
                 vm->op_pos, msg);
}

effnet_status pk_charge(pk_vm *vm, size_t bytes) {
  if (bytes > PK_MAX_BYTES - vm->charged)
    return pk_fail(vm, EFFNET_E_LIMIT, "needs more than %zu MiB of memory",
                   (size_t)PK_MAX_BYTES >> 20);
  vm->charged += bytes;
  return EFFNET_OK;
}

/* Grow *arr (of elem-byte items) to hold at least need, doubling, within the budget. */
static effnet_status grow(pk_vm *vm, void **arr, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return EFFNET_OK;
  size_t want = *cap < 8 ? 8 : *cap;
  while (want < need) want = want > SIZE_MAX / 2 ? need : want * 2;
  if (want > SIZE_MAX / elem) return pk_fail(vm, EFFNET_E_LIMIT, "container too large");
  effnet_status st = pk_charge(vm, (want - *cap) * elem);
  if (st != EFFNET_OK) return st;
  void *p = realloc(*arr, want * elem);
  if (!p) return pk_fail(vm, EFFNET_E_NOMEM, "out of memory");
  *arr = p;
  *cap = want;
  return EFFNET_OK;
}

effnet_status pk_vm_create(pk_vm **out, const pk_host *host, effnet_error *err) {
  *out = NULL;
  pk_vm *vm = calloc(1, sizeof *vm);
  if (!vm) return en_fail(err, EFFNET_E_NOMEM, "pickle: out of memory");
  vm->host = *host;
  vm->err = err;
  *out = vm;
  return EFFNET_OK;
}

void pk_vm_free(pk_vm *vm) {
  if (!vm) return;
  for (pk_obj *o = vm->objects, *next; o; o = next) {
    next = o->next;
    free(o->items);
    free(o);
  }
  free(vm->stack);
  free(vm->memo);
  free(vm);
}

effnet_status pk_new(pk_vm *vm, pk_tag tag, size_t cap, pk_val *out) {
  effnet_status st = pk_charge(vm, sizeof(pk_obj));
  if (st != EFFNET_OK) return st;
  pk_obj *o = calloc(1, sizeof *o);
  if (!o) return pk_fail(vm, EFFNET_E_NOMEM, "out of memory");
  o->next = vm->objects;
  vm->objects = o;
  if (cap && (st = grow(vm, (void **)&o->items, &o->cap, cap, sizeof(pk_val))) != EFFNET_OK)
    return st;
  memset(out, 0, sizeof *out);
  out->tag = tag;
  out->u.o = o;
  return EFFNET_OK;
}

effnet_status pk_push_item(pk_vm *vm, pk_obj *o, const pk_val *v) {
  effnet_status st = grow(vm, (void **)&o->items, &o->cap, o->n + 1, sizeof(pk_val));
  if (st != EFFNET_OK) return st;
  o->items[o->n++] = *v;
  return EFFNET_OK;
}

int pk_str_is(const pk_val *v, const char *lit) {
  size_t n = strlen(lit);
  return v->tag == PK_STR && v->len == n && memcmp(v->u.s, lit, n) == 0;
}

const char *pk_show(const pk_val *v, char *buf, size_t size) {
  if (v->tag != PK_STR && v->tag != PK_BYTES) {
    snprintf(buf, size, "<non-string>");
    return buf;
  }
  size_t n = v->len < size - 1 ? v->len : size - 1, cut = n < v->len && size > 4;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)v->u.s[i];
    buf[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
  }
  if (cut) memcpy(buf + size - 4, "...", 3);
  buf[n] = '\0';
  return buf;
}

/* ------------------------------------------------------------------ stack */

static size_t frame_base(const pk_vm *vm) { return vm->nmarks ? vm->marks[vm->nmarks - 1] : 0; }

static effnet_status push(pk_vm *vm, const pk_val *v) {
  if (vm->sp >= PK_MAX_STACK)
    return pk_fail(vm, EFFNET_E_LIMIT, "stack deeper than %zu", (size_t)PK_MAX_STACK);
  effnet_status st = grow(vm, (void **)&vm->stack, &vm->stack_cap, vm->sp + 1, sizeof(pk_val));
  if (st != EFFNET_OK) return st;
  vm->stack[vm->sp++] = *v;
  return EFFNET_OK;
}

static effnet_status pop(pk_vm *vm, pk_val *v) {
  if (vm->sp <= frame_base(vm)) return pk_fail(vm, EFFNET_E_FORMAT, "stack underflow");
  *v = vm->stack[--vm->sp];
  return EFFNET_OK;
}

static effnet_status top(pk_vm *vm, pk_val **v) {
  if (vm->sp <= frame_base(vm)) return pk_fail(vm, EFFNET_E_FORMAT, "stack underflow");
  *v = &vm->stack[vm->sp - 1];
  return EFFNET_OK;
}

/* Pop the current frame: its items are stack[*start .. old sp). */
static effnet_status pop_mark(pk_vm *vm, size_t *start) {
  if (vm->nmarks == 0) return pk_fail(vm, EFFNET_E_FORMAT, "no MARK to pop");
  *start = vm->marks[--vm->nmarks];
  return EFFNET_OK;
}

static effnet_status op_mark(pk_vm *vm) {
  if (vm->nmarks >= PK_MAX_MARKS)
    return pk_fail(vm, EFFNET_E_LIMIT, "MARKs nested deeper than %d", PK_MAX_MARKS);
  vm->marks[vm->nmarks++] = vm->sp;
  return EFFNET_OK;
}

static effnet_status op_pop(pk_vm *vm) {
  if (vm->sp > frame_base(vm)) {
    vm->sp--;
    return EFFNET_OK;
  }
  size_t start = 0; /* CPython: POP on an empty frame discards the frame's MARK */
  return pop_mark(vm, &start);
}

static effnet_status op_pop_mark(pk_vm *vm) {
  size_t start = 0;
  effnet_status st = pop_mark(vm, &start);
  if (st == EFFNET_OK) vm->sp = start;
  return st;
}

static effnet_status op_dup(pk_vm *vm) {
  pk_val *t = NULL, v;
  effnet_status st = top(vm, &t);
  if (st != EFFNET_OK) return st;
  v = *t;
  return push(vm, &v);
}

/* ------------------------------------------------------------------ operands */

static effnet_status need(pk_vm *vm, uint64_t n, const void **p) {
  if (n > vm->len - vm->pos)
    return pk_fail(vm, EFFNET_E_FORMAT, "opcode 0x%02x needs %llu bytes, %zu left",
                   vm->buf[vm->op_pos], (unsigned long long)n, vm->len - vm->pos);
  *p = vm->buf + vm->pos;
  vm->pos += (size_t)n;
  return EFFNET_OK;
}

/* Little-endian unsigned operand of n bytes (1, 2, 4 or 8). */
static effnet_status arg_le(pk_vm *vm, int n, uint64_t *out) {
  const unsigned char *p = NULL;
  effnet_status st = need(vm, (uint64_t)n, (const void **)&p);
  if (st != EFFNET_OK) return st;
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  *out = v;
  return EFFNET_OK;
}

static effnet_status push_int(pk_vm *vm, int64_t i) {
  pk_val v = {.tag = PK_INT, .u.i = i};
  return push(vm, &v);
}

static effnet_status op_binint(pk_vm *vm, int n) {
  uint64_t u = 0;
  effnet_status st = arg_le(vm, n, &u);
  if (st != EFFNET_OK) return st;
  return push_int(vm, n == 4 ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u);
}

/* LONG1/LONG4: little-endian two's complement; wider than 64 bits stays as bytes. */
static effnet_status op_long(pk_vm *vm, int width) {
  uint64_t n = 0;
  const unsigned char *p = NULL;
  effnet_status st = arg_le(vm, width, &n);
  if (st == EFFNET_OK) st = need(vm, n, (const void **)&p);
  if (st != EFFNET_OK) return st;
  if (width == 4 && n > INT32_MAX) return pk_fail(vm, EFFNET_E_FORMAT, "negative LONG4 size");
  if (n > 8) {
    pk_val v = {.tag = PK_BIGINT, .len = (size_t)n, .u.s = (const char *)p};
    return push(vm, &v);
  }
  uint64_t u = 0;
  for (size_t i = n; i-- > 0;) u = u << 8 | p[i];
  if (n > 0 && n < 8 && (p[n - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * n); /* sign-extend */
  return push_int(vm, (int64_t)u);
}

static effnet_status op_binfloat(pk_vm *vm) {
  const unsigned char *p = NULL;
  effnet_status st = need(vm, 8, (const void **)&p);
  if (st != EFFNET_OK) return st;
  uint64_t u = 0;
  for (int i = 0; i < 8; i++) u = u << 8 | p[i]; /* big-endian on disk */
  pk_val v = {.tag = PK_FLOAT};
  memcpy(&v.u.f, &u, sizeof u);
  return push(vm, &v);
}

/* String-like operand: length of width bytes, then the bytes. */
static effnet_status op_counted(pk_vm *vm, int width, pk_tag tag, int is_signed) {
  uint64_t n = 0;
  const void *p = NULL;
  effnet_status st = arg_le(vm, width, &n);
  if (st != EFFNET_OK) return st;
  if (is_signed && n > INT32_MAX) return pk_fail(vm, EFFNET_E_FORMAT, "negative string length");
  if ((st = need(vm, n, &p)) != EFFNET_OK) return st;
  pk_val v = {.tag = tag, .len = (size_t)n, .u.s = p};
  return push(vm, &v);
}

static effnet_status push_simple(pk_vm *vm, pk_tag tag, int64_t i) {
  pk_val v = {.tag = tag, .u.i = i};
  return push(vm, &v);
}

static effnet_status op_proto(pk_vm *vm) {
  uint64_t p = 0;
  effnet_status st = arg_le(vm, 1, &p);
  if (st != EFFNET_OK) return st;
  if (p > 5)
    return pk_fail(vm, EFFNET_E_UNSUPPORTED, "pickle protocol %llu", (unsigned long long)p);
  return EFFNET_OK;
}

/* FRAME only groups opcodes for buffered reading; the whole pickle is in memory already. */
static effnet_status op_frame(pk_vm *vm) {
  uint64_t n = 0;
  effnet_status st = arg_le(vm, 8, &n);
  if (st != EFFNET_OK) return st;
  if (n > vm->len - vm->pos)
    return pk_fail(vm, EFFNET_E_FORMAT, "FRAME of %llu bytes, %zu left", (unsigned long long)n,
                   vm->len - vm->pos);
  return EFFNET_OK;
}

/* ------------------------------------------------------------------ memo */

static effnet_status memo_put(pk_vm *vm, uint64_t idx) {
  pk_val *t = NULL;
  effnet_status st = top(vm, &t);
  if (st != EFFNET_OK) return st;
  /* Picklers number memo entries 0, 1, 2, ... and each PUT takes at least a byte, so a real
   * index is below the pickle's length; the bound keeps the memo linear in the input. */
  if (idx >= PK_MAX_MEMO || idx >= vm->len)
    return pk_fail(vm, EFFNET_E_LIMIT, "memo index %llu over the limit %zu",
                   (unsigned long long)idx, vm->len < PK_MAX_MEMO ? vm->len : PK_MAX_MEMO);
  if (idx >= vm->memo_cap) {
    size_t old = vm->memo_cap;
    if ((st = grow(vm, (void **)&vm->memo, &vm->memo_cap, (size_t)idx + 1, sizeof(memo_slot))) !=
        EFFNET_OK)
      return st;
    memset(vm->memo + old, 0, (vm->memo_cap - old) * sizeof(memo_slot));
  }
  if (!vm->memo[idx].used) vm->memo_count++;
  vm->memo[idx].used = 1;
  vm->memo[idx].v = vm->stack[vm->sp - 1];
  return EFFNET_OK;
}

static effnet_status op_put(pk_vm *vm, int width) {
  uint64_t idx = 0;
  effnet_status st = arg_le(vm, width, &idx);
  return st != EFFNET_OK ? st : memo_put(vm, idx);
}

static effnet_status op_get(pk_vm *vm, int width) {
  uint64_t idx = 0;
  effnet_status st = arg_le(vm, width, &idx);
  if (st != EFFNET_OK) return st;
  if (idx >= vm->memo_cap || !vm->memo[idx].used)
    return pk_fail(vm, EFFNET_E_FORMAT, "memo index %llu never stored", (unsigned long long)idx);
  pk_val v = vm->memo[idx].v;
  return push(vm, &v);
}

/* ------------------------------------------------------------------ containers */

static effnet_status op_empty(pk_vm *vm, pk_tag tag) {
  pk_val v = {.tag = PK_TUPLE, .u.o = &vm->empty_tuple};
  effnet_status st = tag == PK_TUPLE ? EFFNET_OK : pk_new(vm, tag, 0, &v);
  return st != EFFNET_OK ? st : push(vm, &v);
}

/* Replace the top k items of the current frame (or all of it, k = SIZE_MAX, after its MARK)
 * with one container holding them. */
static effnet_status collect(pk_vm *vm, pk_tag tag, size_t k) {
  size_t start = 0;
  effnet_status st = EFFNET_OK;
  if (k == SIZE_MAX) st = pop_mark(vm, &start);
  else if (vm->sp - frame_base(vm) < k) return pk_fail(vm, EFFNET_E_FORMAT, "stack underflow");
  else start = vm->sp - k;
  if (st != EFFNET_OK) return st;
  size_t n = vm->sp - start;
  if (tag == PK_DICT && n % 2) return pk_fail(vm, EFFNET_E_FORMAT, "DICT with odd item count");
  pk_val v = {.tag = PK_TUPLE, .u.o = &vm->empty_tuple};
  if ((n || tag != PK_TUPLE) && (st = pk_new(vm, tag, n, &v)) != EFFNET_OK) return st;
  if (n) memcpy(v.u.o->items, vm->stack + start, n * sizeof(pk_val));
  if (n) v.u.o->n = n;
  vm->sp = start;
  return push(vm, &v);
}

/* APPEND, SETITEM, ADDITEMS, APPENDS, SETITEMS: move items [start, sp) into the container
 * just below them. */
static effnet_status fill(pk_vm *vm, size_t start, pk_tag want) {
  static const char *names[] = {[PK_LIST] = "list", [PK_DICT] = "dict", [PK_SET] = "set"};
  if (start <= frame_base(vm)) return pk_fail(vm, EFFNET_E_FORMAT, "stack underflow");
  pk_val *target = &vm->stack[start - 1];
  if (target->tag != want)
    return pk_fail(vm, EFFNET_E_FORMAT, "items added to a non-%s", names[want]);
  size_t n = vm->sp - start;
  if (want == PK_DICT && n % 2) return pk_fail(vm, EFFNET_E_FORMAT, "SETITEMS with odd count");
  pk_obj *o = target->u.o;
  effnet_status st = grow(vm, (void **)&o->items, &o->cap, o->n + n, sizeof(pk_val));
  if (st != EFFNET_OK) return st;
  if (n) memcpy(o->items + o->n, vm->stack + start, n * sizeof(pk_val));
  o->n += n;
  vm->sp = start;
  return EFFNET_OK;
}

static effnet_status op_fill_marked(pk_vm *vm, pk_tag want) {
  size_t start = 0;
  effnet_status st = pop_mark(vm, &start);
  return st != EFFNET_OK ? st : fill(vm, start, want);
}

static effnet_status op_fill_top(pk_vm *vm, pk_tag want, size_t k) {
  if (vm->sp - frame_base(vm) < k + 1) return pk_fail(vm, EFFNET_E_FORMAT, "stack underflow");
  return fill(vm, vm->sp - k, want);
}

/* ------------------------------------------------------------------ host calls */

static effnet_status find_class(pk_vm *vm, const pk_val *module, const pk_val *name) {
  if (module->tag != PK_STR || name->tag != PK_STR)
    return pk_fail(vm, EFFNET_E_FORMAT, "global name is not a string");
  pk_val v;
  effnet_status st = vm->host.find_class(vm->host.ctx, vm, module, name, &v);
  return st != EFFNET_OK ? st : push(vm, &v);
}

/* GLOBAL: "module\nname\n" inline. */
static effnet_status op_global(pk_vm *vm) {
  pk_val parts[2];
  for (int i = 0; i < 2; i++) {
    const char *p = (const char *)vm->buf + vm->pos;
    const char *nl = memchr(p, '\n', vm->len - vm->pos);
    if (!nl) return pk_fail(vm, EFFNET_E_FORMAT, "GLOBAL name without newline");
    parts[i] = (pk_val){.tag = PK_STR, .len = (size_t)(nl - p), .u.s = p};
    vm->pos += parts[i].len + 1;
  }
  return find_class(vm, &parts[0], &parts[1]);
}

static effnet_status op_stack_global(pk_vm *vm) {
  pk_val module, name;
  effnet_status st = pop(vm, &name);
  if (st == EFFNET_OK) st = pop(vm, &module);
  return st != EFFNET_OK ? st : find_class(vm, &module, &name);
}

static effnet_status call(pk_vm *vm, pk_call_kind kind, const pk_val *fn, const pk_val *args) {
  if (args->tag != PK_TUPLE) return pk_fail(vm, EFFNET_E_FORMAT, "arguments are not a tuple");
  pk_val v;
  effnet_status st = vm->host.call(vm->host.ctx, vm, kind, fn, args, &v);
  return st != EFFNET_OK ? st : push(vm, &v);
}

static effnet_status op_reduce(pk_vm *vm) {
  pk_val fn, args;
  effnet_status st = pop(vm, &args);
  if (st == EFFNET_OK) st = pop(vm, &fn);
  return st != EFFNET_OK ? st : call(vm, PK_CALL_REDUCE, &fn, &args);
}

static effnet_status op_newobj(pk_vm *vm, int with_kwargs) {
  pk_val cls, args, kwargs = {.tag = PK_NONE};
  effnet_status st = with_kwargs ? pop(vm, &kwargs) : EFFNET_OK;
  if (st == EFFNET_OK) st = pop(vm, &args);
  if (st == EFFNET_OK) st = pop(vm, &cls);
  if (st != EFFNET_OK) return st;
  if (with_kwargs && (kwargs.tag != PK_DICT || kwargs.u.o->n))
    return pk_fail(vm, EFFNET_E_UNSUPPORTED, "NEWOBJ_EX with keyword arguments");
  return call(vm, PK_CALL_NEWOBJ, &cls, &args);
}

/* BUILD would set an object's state (e.g. an OrderedDict's _metadata attribute); nothing
 * read here depends on it, and running __setstate__ is exactly what must not happen. */
static effnet_status op_build(pk_vm *vm) {
  pk_val state, *obj = NULL;
  effnet_status st = pop(vm, &state);
  return st != EFFNET_OK ? st : top(vm, &obj);
}

static effnet_status op_persid(pk_vm *vm) {
  pk_val pid, v;
  effnet_status st = pop(vm, &pid);
  if (st == EFFNET_OK) st = vm->host.persistent_load(vm->host.ctx, vm, &pid, &v);
  return st != EFFNET_OK ? st : push(vm, &v);
}

/* ------------------------------------------------------------------ dispatch */

static effnet_status step(pk_vm *vm, unsigned op) {
  switch (op) {
    case OP_PROTO: return op_proto(vm);
    case OP_FRAME: return op_frame(vm);
    case OP_MARK: return op_mark(vm);
    case OP_POP: return op_pop(vm);
    case OP_POP_MARK: return op_pop_mark(vm);
    case OP_DUP: return op_dup(vm);
    case OP_NONE: return push_simple(vm, PK_NONE, 0);
    case OP_NEWTRUE: return push_simple(vm, PK_BOOL, 1);
    case OP_NEWFALSE: return push_simple(vm, PK_BOOL, 0);
    case OP_BININT: return op_binint(vm, 4);
    case OP_BININT1: return op_binint(vm, 1);
    case OP_BININT2: return op_binint(vm, 2);
    case OP_LONG1: return op_long(vm, 1);
    case OP_LONG4: return op_long(vm, 4);
    case OP_BINFLOAT: return op_binfloat(vm);
    case OP_BINUNICODE: return op_counted(vm, 4, PK_STR, 0);
    case OP_SHORT_BINUNICODE: return op_counted(vm, 1, PK_STR, 0);
    case OP_BINUNICODE8: return op_counted(vm, 8, PK_STR, 0);
    case OP_BINSTRING: return op_counted(vm, 4, PK_STR, 1);
    case OP_SHORT_BINSTRING: return op_counted(vm, 1, PK_STR, 0);
    case OP_BINBYTES: return op_counted(vm, 4, PK_BYTES, 0);
    case OP_SHORT_BINBYTES: return op_counted(vm, 1, PK_BYTES, 0);
    case OP_BINBYTES8: return op_counted(vm, 8, PK_BYTES, 0);
    case OP_BYTEARRAY8: return op_counted(vm, 8, PK_BYTES, 0);
    case OP_BINPUT: return op_put(vm, 1);
    case OP_LONG_BINPUT: return op_put(vm, 4);
    case OP_MEMOIZE: return memo_put(vm, vm->memo_count);
    case OP_BINGET: return op_get(vm, 1);
    case OP_LONG_BINGET: return op_get(vm, 4);
    case OP_EMPTY_TUPLE: return op_empty(vm, PK_TUPLE);
    case OP_EMPTY_LIST: return op_empty(vm, PK_LIST);
    case OP_EMPTY_DICT: return op_empty(vm, PK_DICT);
    case OP_EMPTY_SET: return op_empty(vm, PK_SET);
    case OP_TUPLE: return collect(vm, PK_TUPLE, SIZE_MAX);
    case OP_TUPLE1: return collect(vm, PK_TUPLE, 1);
    case OP_TUPLE2: return collect(vm, PK_TUPLE, 2);
    case OP_TUPLE3: return collect(vm, PK_TUPLE, 3);
    case OP_LIST: return collect(vm, PK_LIST, SIZE_MAX);
    case OP_DICT: return collect(vm, PK_DICT, SIZE_MAX);
    case OP_FROZENSET: return collect(vm, PK_SET, SIZE_MAX);
    case OP_APPEND: return op_fill_top(vm, PK_LIST, 1);
    case OP_APPENDS: return op_fill_marked(vm, PK_LIST);
    case OP_SETITEM: return op_fill_top(vm, PK_DICT, 2);
    case OP_SETITEMS: return op_fill_marked(vm, PK_DICT);
    case OP_ADDITEMS: return op_fill_marked(vm, PK_SET);
    case OP_GLOBAL: return op_global(vm);
    case OP_STACK_GLOBAL: return op_stack_global(vm);
    case OP_REDUCE: return op_reduce(vm);
    case OP_NEWOBJ: return op_newobj(vm, 0);
    case OP_NEWOBJ_EX: return op_newobj(vm, 1);
    case OP_BUILD: return op_build(vm);
    case OP_BINPERSID: return op_persid(vm);
  }
  return pk_fail(vm, EFFNET_E_UNSUPPORTED, "opcode 0x%02x not supported (protocol 0/1 text "
                 "opcodes, extension registry and out-of-band buffers are refused)", op);
}

effnet_status pk_run(pk_vm *vm, const void *buf, size_t len, const char *label,
                     size_t *consumed, pk_val *result) {
  vm->buf = buf;
  vm->len = len;
  vm->pos = vm->op_pos = 0;
  vm->label = label;
  vm->sp = vm->nmarks = vm->memo_count = 0;
  if (vm->memo) memset(vm->memo, 0, vm->memo_cap * sizeof(memo_slot));
  if (!vm->host.find_class || !vm->host.call || !vm->host.persistent_load)
    return pk_fail(vm, EFFNET_E_ARGUMENT, "pickle host without callbacks");
  effnet_status st = EFFNET_OK;
  while (st == EFFNET_OK) {
    vm->op_pos = vm->pos;
    if (vm->pos >= vm->len) return pk_fail(vm, EFFNET_E_FORMAT, "ends without STOP");
    unsigned op = vm->buf[vm->pos++];
    if (op == OP_STOP) break;
    st = step(vm, op);
  }
  if (st != EFFNET_OK) return st;
  if ((st = pop(vm, result)) != EFFNET_OK) return st;
  *consumed = vm->pos;
  return EFFNET_OK;
}
