/*
 * A small stack-VM interpreter: a Forth-like language compiled to bytecode, whose values are
 * integers and heap objects (strings, string builders, arrays, hash tables, pairs) collected by a
 * mark-and-sweep collector (roots: the data stack, the variables and the constants). Arrays,
 * builders and tables grow by realloc; tables rehash into a fresh block. It runs the script below,
 * which builds strings, lists, arrays and tables and lets most of them die, and prints the
 * script's checksum and the collector's counts. Usage: interp [iterations, default 60].
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what, const char *detail) {
  fprintf(stderr, "interp: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(2);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q && n) die("out of memory", NULL);
  return q;
}

/* ---- values and objects --------------------------------------------------------------------- */

/* An integer (low bit 1) or an object pointer (low bit 0; 0 is nil). */
typedef intptr_t Value;
#define INT(v) (((Value)(v) << 1) | 1)
#define IS_INT(v) ((v) & 1)
#define AS_INT(v) ((intptr_t)(v) >> 1)
#define AS_OBJ(v) ((Obj *)(v))

typedef enum { T_STR, T_BUF, T_ARR, T_MAP, T_PAIR } Type;

typedef struct Obj {
  struct Obj *next; /* every object, for the sweep */
  uint8_t type, marked;
} Obj;

typedef struct {
  Obj obj;
  uint32_t hash;
  size_t len;
  char chars[]; /* the string, in the same block */
} Str;

typedef struct {
  Obj obj;
  size_t len, cap;
  char *chars;
} StrBuf;

typedef struct {
  Obj obj;
  size_t len, cap;
  Value *items;
} Arr;

typedef struct {
  Value key, value; /* key 0: empty; key 1 (INT(0) is 1): a tombstone is INT(0) with value -1 */
} Slot;

typedef struct {
  Obj obj;
  size_t count, used, cap; /* used counts tombstones too */
  Slot *slots;
} Map;

typedef struct {
  Obj obj;
  Value car, cdr;
} Pair;

static Obj *all_objects;
static size_t allocated, threshold = 256 * 1024, collections, freed_objects;

/* ---- roots ---------------------------------------------------------------------------------- */

#define STACK_MAX 4096
static Value stack[STACK_MAX];
static int sp;
static Value *variables;
static int nvariables;
static Value *constants;
static int nconstants;

static void push(Value v) {
  if (sp == STACK_MAX) die("stack overflow", NULL);
  stack[sp++] = v;
}
static Value pop(void) {
  if (sp == 0) die("stack underflow", NULL);
  return stack[--sp];
}
static Value *peek(int depth) {
  if (sp <= depth) die("stack underflow", NULL);
  return &stack[sp - 1 - depth];
}

/* ---- the collector -------------------------------------------------------------------------- */

static Obj **gray;
static size_t ngray, gray_cap;

static void mark(Value v) {
  if (IS_INT(v) || v == 0) return;
  Obj *o = AS_OBJ(v);
  if (o->marked) return;
  o->marked = 1;
  if (ngray == gray_cap) {
    gray_cap = gray_cap ? gray_cap * 2 : 64;
    gray = xrealloc(gray, gray_cap * sizeof *gray);
  }
  gray[ngray++] = o;
}

static void trace_object(Obj *o) {
  switch (o->type) {
    case T_ARR: {
      Arr *a = (Arr *)o;
      for (size_t i = 0; i < a->len; i++) mark(a->items[i]);
      break;
    }
    case T_MAP: {
      Map *m = (Map *)o;
      for (size_t i = 0; i < m->cap; i++) {
        mark(m->slots[i].key);
        mark(m->slots[i].value);
      }
      break;
    }
    case T_PAIR:
      mark(((Pair *)o)->car);
      mark(((Pair *)o)->cdr);
      break;
    default: break;
  }
}

static size_t object_bytes(Obj *o) {
  switch (o->type) {
    case T_STR: return sizeof(Str) + ((Str *)o)->len + 1;
    case T_BUF: return sizeof(StrBuf) + ((StrBuf *)o)->cap;
    case T_ARR: return sizeof(Arr) + ((Arr *)o)->cap * sizeof(Value);
    case T_MAP: return sizeof(Map) + ((Map *)o)->cap * sizeof(Slot);
    default: return sizeof(Pair);
  }
}

static void free_object(Obj *o) {
  allocated -= object_bytes(o);
  if (o->type == T_BUF) free(((StrBuf *)o)->chars);
  if (o->type == T_ARR) free(((Arr *)o)->items);
  if (o->type == T_MAP) free(((Map *)o)->slots);
  free(o);
  freed_objects++;
}

static void collect(void) {
  for (int i = 0; i < sp; i++) mark(stack[i]);
  for (int i = 0; i < nvariables; i++) mark(variables[i]);
  for (int i = 0; i < nconstants; i++) mark(constants[i]);
  while (ngray) trace_object(gray[--ngray]);
  Obj **link = &all_objects;
  while (*link) {
    Obj *o = *link;
    if (o->marked) {
      o->marked = 0;
      link = &o->next;
    } else {
      *link = o->next;
      free_object(o);
    }
  }
  collections++;
  threshold = allocated * 2 > 256 * 1024 ? allocated * 2 : 256 * 1024;
}

/* Counts bytes that objects hold (for the collector's pace): deterministic, whatever the allocator. */
static void account(size_t bytes) { allocated += bytes; }

/* A new object: may collect first, so every live value must be on a root (the stack) here. */
static Obj *new_object(Type type, size_t size) {
  if (allocated + size > threshold) collect();
  Obj *o = xrealloc(NULL, size);
  o->type = type;
  o->marked = 0;
  o->next = all_objects;
  all_objects = o;
  account(size);
  return o;
}

static uint32_t hash_bytes(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
  return h;
}

static Value new_string(const char *s, size_t n) {
  Str *str = (Str *)new_object(T_STR, sizeof(Str) + n + 1);
  str->len = n;
  memcpy(str->chars, s, n);
  str->chars[n] = 0;
  str->hash = hash_bytes(s, n);
  return (Value)str;
}

static Str *as_str(Value v, const char *op) {
  if (IS_INT(v) || !v || AS_OBJ(v)->type != T_STR) die("not a string", op);
  return (Str *)v;
}
static intptr_t as_int(Value v, const char *op) {
  if (!IS_INT(v)) die("not an integer", op);
  return AS_INT(v);
}
static Obj *as_obj(Value v, Type type, const char *op) {
  if (IS_INT(v) || !v || AS_OBJ(v)->type != type) die("wrong type", op);
  return AS_OBJ(v);
}

/* ---- tables --------------------------------------------------------------------------------- */

static uint32_t value_hash(Value v) { return IS_INT(v) ? (uint32_t)AS_INT(v) * 2654435761u : as_str(v, "table key")->hash; }

static int value_equal(Value a, Value b) {
  if (a == b) return 1;
  if (IS_INT(a) || IS_INT(b) || !a || !b) return 0;
  Str *x = as_str(a, "table key"), *y = as_str(b, "table key");
  return x->hash == y->hash && x->len == y->len && memcmp(x->chars, y->chars, x->len) == 0;
}

#define TOMBSTONE ((Value)-1)

static Slot *map_slot(Map *m, Value key, int for_insert) {
  size_t mask = m->cap - 1, i = value_hash(key) & mask;
  Slot *grave = NULL;
  for (;;) {
    Slot *s = &m->slots[i];
    if (s->key == 0) return for_insert && grave ? grave : s;
    if (s->key == TOMBSTONE) {
      if (!grave) grave = s;
    } else if (value_equal(s->key, key)) {
      return s;
    }
    i = (i + 1) & mask;
  }
}

static void map_grow(Map *m) {
  size_t old_cap = m->cap, cap = old_cap ? (m->count * 2 > old_cap ? old_cap * 2 : old_cap) : 8;
  Slot *old = m->slots;
  m->slots = xrealloc(NULL, cap * sizeof(Slot));
  memset(m->slots, 0, cap * sizeof(Slot));
  account((cap - old_cap) * sizeof(Slot));
  m->cap = cap;
  m->count = m->used = 0;
  for (size_t i = 0; i < old_cap; i++) {
    if (old[i].key == 0 || old[i].key == TOMBSTONE) continue;
    Slot *s = map_slot(m, old[i].key, 1);
    *s = old[i];
    m->count++;
    m->used++;
  }
  free(old);
}

static void map_set(Map *m, Value key, Value value) {
  if ((m->used + 1) * 4 > m->cap * 3) map_grow(m);
  Slot *s = map_slot(m, key, 1);
  if (s->key == 0 || s->key == TOMBSTONE) {
    if (s->key == 0) m->used++;
    m->count++;
    s->key = key;
  }
  s->value = value;
}

static Value map_get(Map *m, Value key) {
  if (!m->cap) return INT(0);
  Slot *s = map_slot(m, key, 0);
  return s->key ? s->value : INT(0);
}

static void map_delete(Map *m, Value key) {
  if (!m->cap) return;
  Slot *s = map_slot(m, key, 0);
  if (!s->key) return;
  s->key = TOMBSTONE;
  s->value = 0;
  m->count--;
}

/* ---- the compiler --------------------------------------------------------------------------- */

enum {
  OP_LIT, OP_CONST, OP_GET, OP_SET, OP_CALL, OP_RET, OP_JUMP, OP_JZ, OP_DO, OP_LOOP, OP_I, OP_J, OP_PRIM,
};

typedef enum {
  P_DUP, P_DROP, P_SWAP, P_OVER, P_ROT, P_ADD, P_SUB, P_MUL, P_DIV, P_MOD, P_LT, P_GT, P_EQ, P_XOR,
  P_STR, P_CAT, P_LEN, P_HASH, P_SUBSTR, P_BUF, P_APPEND, P_TOSTR, P_ARR, P_PUSH, P_AT, P_PUT, P_MAP,
  P_SETKEY, P_GETKEY, P_DELKEY, P_COUNT, P_CONS, P_CAR, P_CDR, P_NIL, P_ISNIL, P_PRINT, P_COUNT_OF_PRIMS
} Prim;

static const char *const PRIM_NAMES[] = {
  "dup", "drop", "swap", "over", "rot", "+", "-", "*", "/", "mod", "<", ">", "=", "xor",
  "str", "cat", "len", "hash", "substr", "buf", "append", "tostr", "arr", "push", "at", "put", "map",
  "set", "get", "del", "count", "cons", "car", "cdr", "nil", "nil?", ".",
};

typedef struct {
  char name[32];
  int *code;
  size_t len, cap;
} Word;

static Word *words;
static int nwords;
static char (*variable_names)[32];

static void emit(Word *w, int x) {
  if (w->len == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 16;
    w->code = xrealloc(w->code, w->cap * sizeof(int));
  }
  w->code[w->len++] = x;
}

static int find_word(const char *name) {
  for (int i = 0; i < nwords; i++)
    if (strcmp(words[i].name, name) == 0) return i;
  return -1;
}
static int find_variable(const char *name) {
  for (int i = 0; i < nvariables; i++)
    if (strcmp(variable_names[i], name) == 0) return i;
  return -1;
}
static int find_prim(const char *name) {
  for (int i = 0; i < P_COUNT_OF_PRIMS; i++)
    if (strcmp(PRIM_NAMES[i], name) == 0) return i;
  return -1;
}

static Word *new_word(const char *name) {
  words = xrealloc(words, (size_t)(nwords + 1) * sizeof(Word));
  Word *w = &words[nwords++];
  memset(w, 0, sizeof *w);
  snprintf(w->name, sizeof w->name, "%.31s", name);
  return w;
}

static const char *src;

/* The next token: a word, a number, or a "string" (quotes kept, to tell it apart). */
static int next_token(char *out, size_t size) {
  while (*src == ' ' || *src == '\n' || *src == '\t' || *src == '(') {
    if (*src == '(') /* a comment, up to ')' */
      while (*src && *src++ != ')') {}
    else
      src++;
  }
  if (!*src) return 0;
  size_t n = 0;
  if (*src == '"') {
    out[n++] = *src++;
    while (*src && *src != '"' && n < size - 1) out[n++] = *src++;
    if (*src == '"') src++;
  } else {
    while (*src && *src != ' ' && *src != '\n' && *src != '\t' && n < size - 1) out[n++] = *src++;
  }
  out[n] = 0;
  return 1;
}

/* Compiles tokens into `w` until ";" (a definition) or the end of the script. */
static void compile(Word *w, int index) {
  char tok[128];
  int control[64], ncontrol = 0;
  while (next_token(tok, sizeof tok)) {
    if (strcmp(tok, ";") == 0) break;
    if (strcmp(tok, ":") == 0) {
      if (!next_token(tok, sizeof tok)) die("a name after ':'", NULL);
      Word *def = new_word(tok);
      int def_index = nwords - 1;
      compile(def, def_index);
      w = &words[index]; /* words may have moved */
      continue;
    }
    if (strcmp(tok, "var") == 0) {
      if (!next_token(tok, sizeof tok)) die("a name after 'var'", NULL);
      variables = xrealloc(variables, (size_t)(nvariables + 1) * sizeof(Value));
      variable_names = xrealloc(variable_names, (size_t)(nvariables + 1) * sizeof *variable_names);
      variables[nvariables] = INT(0);
      snprintf(variable_names[nvariables++], 32, "%.31s", tok);
      continue;
    }
    if (tok[0] == '"') {
      constants = xrealloc(constants, (size_t)(nconstants + 1) * sizeof(Value));
      constants[nconstants] = INT(0); /* a root before the string exists */
      nconstants++;
      constants[nconstants - 1] = new_string(tok + 1, strlen(tok + 1));
      emit(w, OP_CONST);
      emit(w, nconstants - 1);
      continue;
    }
    if ((tok[0] >= '0' && tok[0] <= '9') || (tok[0] == '-' && tok[1] >= '0' && tok[1] <= '9')) {
      emit(w, OP_LIT);
      emit(w, atoi(tok));
      continue;
    }
    if (tok[0] == '>' && tok[1] && find_variable(tok + 1) >= 0) {
      emit(w, OP_SET);
      emit(w, find_variable(tok + 1));
      continue;
    }
    if (strcmp(tok, "if") == 0 || strcmp(tok, "while") == 0) {
      emit(w, OP_JZ);
      control[ncontrol++] = (int)w->len;
      emit(w, 0);
      continue;
    }
    if (strcmp(tok, "else") == 0) {
      emit(w, OP_JUMP);
      emit(w, 0);
      w->code[control[ncontrol - 1]] = (int)w->len;
      control[ncontrol - 1] = (int)w->len - 1;
      continue;
    }
    if (strcmp(tok, "then") == 0) {
      w->code[control[--ncontrol]] = (int)w->len;
      continue;
    }
    if (strcmp(tok, "begin") == 0) {
      control[ncontrol++] = (int)w->len;
      continue;
    }
    if (strcmp(tok, "repeat") == 0) { /* begin ... while ... repeat */
      int exit_slot = control[--ncontrol], start = control[--ncontrol];
      emit(w, OP_JUMP);
      emit(w, start);
      w->code[exit_slot] = (int)w->len;
      continue;
    }
    if (strcmp(tok, "do") == 0) {
      emit(w, OP_DO);
      control[ncontrol++] = (int)w->len;
      continue;
    }
    if (strcmp(tok, "loop") == 0) {
      emit(w, OP_LOOP);
      emit(w, control[--ncontrol]);
      continue;
    }
    if (strcmp(tok, "i") == 0 || strcmp(tok, "j") == 0) {
      emit(w, tok[0] == 'i' ? OP_I : OP_J);
      continue;
    }
    int k;
    if ((k = find_variable(tok)) >= 0) {
      emit(w, OP_GET);
      emit(w, k);
    } else if ((k = find_word(tok)) >= 0) {
      emit(w, OP_CALL);
      emit(w, k);
    } else if ((k = find_prim(tok)) >= 0) {
      emit(w, OP_PRIM);
      emit(w, k);
    } else {
      die("unknown word", tok);
    }
    w = &words[index];
  }
  if (ncontrol) die("unbalanced control words in", w->name);
  emit(w, OP_RET);
}

/* ---- the machine ---------------------------------------------------------------------------- */

static void primitive(Prim p) {
  Value a, b;
  switch (p) {
    case P_DUP: push(*peek(0)); break;
    case P_DROP: pop(); break;
    case P_SWAP: a = *peek(0); *peek(0) = *peek(1); *peek(1) = a; break;
    case P_OVER: push(*peek(1)); break;
    case P_ROT: a = *peek(2); *peek(2) = *peek(1); *peek(1) = *peek(0); *peek(0) = a; break;
    case P_ADD: b = pop(); a = pop(); push(INT(as_int(a, "+") + as_int(b, "+"))); break;
    case P_SUB: b = pop(); a = pop(); push(INT(as_int(a, "-") - as_int(b, "-"))); break;
    case P_MUL: b = pop(); a = pop(); push(INT(as_int(a, "*") * as_int(b, "*"))); break;
    case P_DIV: b = pop(); a = pop(); push(INT(as_int(a, "/") / (as_int(b, "/") ? AS_INT(b) : 1))); break;
    case P_MOD: b = pop(); a = pop(); push(INT(as_int(a, "mod") % (as_int(b, "mod") ? AS_INT(b) : 1))); break;
    case P_LT: b = pop(); a = pop(); push(INT(as_int(a, "<") < as_int(b, "<"))); break;
    case P_GT: b = pop(); a = pop(); push(INT(as_int(a, ">") > as_int(b, ">"))); break;
    case P_EQ: b = pop(); a = pop(); push(INT(value_equal(a, b))); break;
    case P_XOR: b = pop(); a = pop(); push(INT((as_int(a, "xor") ^ as_int(b, "xor")) & 0x3fffffff)); break;
    case P_STR: { /* n -- "n" */
      char tmp[24];
      int n = snprintf(tmp, sizeof tmp, "%ld", (long)as_int(*peek(0), "str"));
      Value s = new_string(tmp, (size_t)n);
      *peek(0) = s;
      break;
    }
    case P_CAT: { /* s1 s2 -- s1s2: both stay on the stack while the result is allocated */
      size_t n1 = as_str(*peek(1), "cat")->len, n2 = as_str(*peek(0), "cat")->len;
      Str *r = (Str *)new_object(T_STR, sizeof(Str) + n1 + n2 + 1);
      Str *x = (Str *)*peek(1), *y = (Str *)*peek(0);
      memcpy(r->chars, x->chars, n1);
      memcpy(r->chars + n1, y->chars, n2);
      r->chars[n1 + n2] = 0;
      r->len = n1 + n2;
      r->hash = hash_bytes(r->chars, r->len);
      sp -= 2;
      push((Value)r);
      break;
    }
    case P_LEN: a = pop(); push(INT(IS_INT(a) ? 0 : AS_OBJ(a)->type == T_STR ? ((Str *)a)->len : AS_OBJ(a)->type == T_ARR ? ((Arr *)a)->len : ((StrBuf *)a)->len)); break;
    case P_HASH: a = pop(); push(INT(as_str(a, "hash")->hash & 0xffffff)); break;
    case P_SUBSTR: { /* s start n -- substring */
      intptr_t n = as_int(*peek(0), "substr"), start = as_int(*peek(1), "substr");
      Str *s = as_str(*peek(2), "substr");
      if (start > (intptr_t)s->len) start = (intptr_t)s->len;
      if (n > (intptr_t)s->len - start) n = (intptr_t)s->len - start;
      Value r = new_string(s->chars + start, (size_t)n); /* s is still on the stack */
      sp -= 3;
      push(r);
      break;
    }
    case P_BUF: {
      StrBuf *b = (StrBuf *)new_object(T_BUF, sizeof(StrBuf));
      b->len = b->cap = 0;
      b->chars = NULL;
      push((Value)b);
      break;
    }
    case P_APPEND: { /* buf s -- buf */
      Str *s = as_str(pop(), "append");
      StrBuf *buf = (StrBuf *)as_obj(*peek(0), T_BUF, "append");
      if (buf->len + s->len > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 16;
        while (cap < buf->len + s->len) cap *= 2;
        buf->chars = xrealloc(buf->chars, cap);
        account(cap - buf->cap);
        buf->cap = cap;
      }
      memcpy(buf->chars + buf->len, s->chars, s->len);
      buf->len += s->len;
      break;
    }
    case P_TOSTR: { /* buf -- s */
      StrBuf *buf = (StrBuf *)as_obj(*peek(0), T_BUF, "tostr");
      Value r = new_string(buf->chars ? buf->chars : "", buf->len);
      *peek(0) = r;
      break;
    }
    case P_ARR: {
      Arr *arr = (Arr *)new_object(T_ARR, sizeof(Arr));
      arr->len = arr->cap = 0;
      arr->items = NULL;
      push((Value)arr);
      break;
    }
    case P_PUSH: { /* arr v -- arr */
      Value v = pop();
      Arr *arr = (Arr *)as_obj(*peek(0), T_ARR, "push");
      if (arr->len == arr->cap) {
        size_t cap = arr->cap ? arr->cap * 2 : 4;
        arr->items = xrealloc(arr->items, cap * sizeof(Value));
        account((cap - arr->cap) * sizeof(Value));
        arr->cap = cap;
      }
      arr->items[arr->len++] = v;
      break;
    }
    case P_AT: { /* arr i -- v */
      intptr_t i = as_int(pop(), "at");
      Arr *arr = (Arr *)as_obj(pop(), T_ARR, "at");
      push(i >= 0 && (size_t)i < arr->len ? arr->items[i] : INT(0));
      break;
    }
    case P_PUT: { /* arr i v -- */
      Value v = pop();
      intptr_t i = as_int(pop(), "put");
      Arr *arr = (Arr *)as_obj(pop(), T_ARR, "put");
      if (i >= 0 && (size_t)i < arr->len) arr->items[i] = v;
      break;
    }
    case P_MAP: {
      Map *m = (Map *)new_object(T_MAP, sizeof(Map));
      m->count = m->used = m->cap = 0;
      m->slots = NULL;
      push((Value)m);
      break;
    }
    case P_SETKEY: { /* map key v -- map */
      Value v = pop(), key = pop();
      map_set((Map *)as_obj(*peek(0), T_MAP, "set"), key, v);
      break;
    }
    case P_GETKEY: { /* map key -- v */
      Value key = pop();
      Map *m = (Map *)as_obj(pop(), T_MAP, "get");
      push(map_get(m, key));
      break;
    }
    case P_DELKEY: { /* map key -- map */
      Value key = pop();
      map_delete((Map *)as_obj(*peek(0), T_MAP, "del"), key);
      break;
    }
    case P_COUNT: push(INT(((Map *)as_obj(pop(), T_MAP, "count"))->count)); break;
    case P_CONS: { /* a b -- (a . b) */
      Pair *pair = (Pair *)new_object(T_PAIR, sizeof(Pair));
      pair->cdr = pop();
      pair->car = pop();
      push((Value)pair);
      break;
    }
    case P_CAR: push(((Pair *)as_obj(pop(), T_PAIR, "car"))->car); break;
    case P_CDR: push(((Pair *)as_obj(pop(), T_PAIR, "cdr"))->cdr); break;
    case P_NIL: push(0); break;
    case P_ISNIL: push(INT(pop() == 0)); break;
    case P_PRINT: printf("%ld\n", (long)as_int(pop(), ".")); break;
    default: die("bad primitive", NULL);
  }
}

static void run(int word) {
  struct Frame {
    int word;
    size_t pc;
  } calls[256];
  intptr_t loops[64][2]; /* index, limit */
  int ncalls = 0, nloops = 0, loop_base[256];
  int *code = words[word].code;
  size_t pc = 0;
  for (;;) {
    int op = code[pc++];
    switch (op) {
      case OP_LIT: push(INT(code[pc++])); break;
      case OP_CONST: push(constants[code[pc++]]); break;
      case OP_GET: push(variables[code[pc++]]); break;
      case OP_SET: variables[code[pc++]] = pop(); break;
      case OP_CALL:
        if (ncalls == 256) die("call stack overflow", NULL);
        loop_base[ncalls] = nloops;
        calls[ncalls].word = word;
        calls[ncalls++].pc = pc + 1;
        word = code[pc];
        code = words[word].code;
        pc = 0;
        break;
      case OP_RET:
        if (ncalls == 0) return;
        ncalls--;
        nloops = loop_base[ncalls];
        word = calls[ncalls].word;
        code = words[word].code;
        pc = calls[ncalls].pc;
        break;
      case OP_JUMP: pc = (size_t)code[pc]; break;
      case OP_JZ: {
        Value v = pop();
        pc = v == INT(0) || v == 0 ? (size_t)code[pc] : pc + 1;
        break;
      }
      case OP_DO: { /* limit start do */
        if (nloops == 64) die("loops nested too deep", NULL);
        intptr_t start = as_int(pop(), "do"), limit = as_int(pop(), "do");
        loops[nloops][0] = start;
        loops[nloops++][1] = limit;
        break;
      }
      case OP_LOOP:
        if (++loops[nloops - 1][0] < loops[nloops - 1][1]) {
          pc = (size_t)code[pc];
        } else {
          nloops--;
          pc++;
        }
        break;
      case OP_I: push(INT(loops[nloops - 1][0])); break;
      case OP_J: push(INT(loops[nloops - 2][0])); break;
      case OP_PRIM: primitive((Prim)code[pc++]); break;
      default: die("bad opcode", NULL);
    }
  }
}

/* ---- the script ----------------------------------------------------------------------------- */

static const char SCRIPT[] =
  "var n var sum var t var a var l var b var k\n"
  "( mix a value into the checksum ) : mix ( x -- ) sum 31 * xor 1073741823 mod >sum ;\n"
  "( string churn: keys built from pieces, most of them garbage at once )\n"
  ": strings ( count -- ) 0 do \"item-\" i str cat \"-\" cat i 7 * str cat dup hash mix\n"
  "    dup 2 5 substr len mix drop loop ;\n"
  "( a string builder grown by realloc, flattened to a string )\n"
  ": builder ( count -- s ) buf swap 0 do \"<\" append i str append \">\" append loop tostr ;\n"
  "( table churn: a table grows by rehashing, half its keys die, the rest are read back )\n"
  ": tables ( count -- ) map >t dup 0 do t \"key\" i str cat i 3 * set drop loop\n"
  "    dup 0 do i 2 mod 0 = if t \"key\" i str cat del drop then loop\n"
  "    0 do t \"key\" i str cat get mix loop t count mix 0 >t ;\n"
  "( a list of pairs holding strings, walked and dropped )\n"
  ": list ( count -- ) nil >l 0 do i str l cons >l loop\n"
  "    l begin dup nil? 0 = while dup car len mix cdr repeat drop nil >l ;\n"
  "( arrays grown by push, with tables of arrays kept across rounds )\n"
  ": arrays ( count -- ) arr >a 0 do a i i * push drop loop a len mix\n"
  "    k a i 5 mod str swap set drop 0 >a ;\n"
  "( a small tree of pairs, built recursively and summed )\n"
  ": tree ( depth -- t ) dup 0 = if drop nil nil cons else 1 - dup tree swap tree cons then ;\n"
  ": size ( t -- n ) dup car nil? if drop 1 else dup car size swap cdr size + 1 + then ;\n"
  "map >k\n"
  "n 0 do\n"
  "  300 strings\n"
  "  200 builder len mix\n"
  "  i 50 mod 10 * 400 + tables\n"
  "  500 list\n"
  "  i 7 mod 100 * 50 + arrays\n"
  "  i 4 mod 6 + tree size mix\n"
  "loop\n"
  "sum .\n";

int main(int argc, char **argv) {
  int iterations = argc > 1 ? atoi(argv[1]) : 60;
  new_word("main");
  src = SCRIPT;
  compile(&words[0], 0);
  int n = find_variable("n");
  variables[n] = INT(iterations);
  run(0);
  printf("interp: %d iterations, %zu collections, %zu objects freed, %d on the stack\n", iterations, collections, freed_objects, sp);
  return 0;
}
