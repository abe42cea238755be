/*
 * A small JSON library and a program over it: each round generates a JSON document (records with
 * strings, numbers, nested objects and arrays), parses it into a malloc'd DOM (one block per
 * value, key and string; arrays and objects grow by realloc), edits the DOM (adds, removes, renames
 * and rewrites members, reverses arrays), prints it back into a growing buffer, parses and prints
 * that again to check the round trip, and frees everything. Prints a checksum of every printed
 * document. Usage: json [rounds, default 40] [records per document, default 200].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) {
    fputs("out of memory\n", stderr);
    exit(1);
  }
  return q;
}
static void *xmalloc(size_t n) { return xrealloc(NULL, n); }

/* ---- a growing text buffer ------------------------------------------------------------------ */

typedef struct {
  char *data;
  size_t len, cap;
} Buf;

static void buf_reserve(Buf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1) cap *= 2;
  b->data = xrealloc(b->data, cap);
  b->cap = cap;
}
static void buf_put(Buf *b, const char *s, size_t n) {
  buf_reserve(b, n);
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = 0;
}
static void buf_puts(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }
static void buf_char(Buf *b, char c) { buf_put(b, &c, 1); }
static void buf_long(Buf *b, long long v) {
  char tmp[24];
  int n = snprintf(tmp, sizeof tmp, "%lld", v);
  buf_put(b, tmp, (size_t)n);
}

/* ---- the DOM -------------------------------------------------------------------------------- */

typedef enum { J_NULL, J_FALSE, J_TRUE, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT } Kind;
typedef struct Value Value;
typedef struct {
  char *key;
  Value *value;
} Member;
struct Value {
  Kind kind;
  union {
    double number;
    struct {
      char *chars;
      size_t len;
    } string;
    struct {
      Value **items;
      size_t len, cap;
    } array;
    struct {
      Member *items;
      size_t len, cap;
    } object;
  } u;
};

static Value *new_value(Kind kind) {
  Value *v = xmalloc(sizeof *v);
  memset(v, 0, sizeof *v);
  v->kind = kind;
  return v;
}

static char *copy_string(const char *s, size_t len) {
  char *c = xmalloc(len + 1);
  memcpy(c, s, len);
  c[len] = 0;
  return c;
}

static void free_value(Value *v) {
  if (!v) return;
  switch (v->kind) {
    case J_STRING: free(v->u.string.chars); break;
    case J_ARRAY:
      for (size_t i = 0; i < v->u.array.len; i++) free_value(v->u.array.items[i]);
      free(v->u.array.items);
      break;
    case J_OBJECT:
      for (size_t i = 0; i < v->u.object.len; i++) {
        free(v->u.object.items[i].key);
        free_value(v->u.object.items[i].value);
      }
      free(v->u.object.items);
      break;
    default: break;
  }
  free(v);
}

static void array_push(Value *a, Value *item) {
  if (a->u.array.len == a->u.array.cap) {
    a->u.array.cap = a->u.array.cap ? a->u.array.cap * 2 : 4;
    a->u.array.items = xrealloc(a->u.array.items, a->u.array.cap * sizeof(Value *));
  }
  a->u.array.items[a->u.array.len++] = item;
}

static void object_put(Value *o, char *key, Value *value) {
  if (o->u.object.len == o->u.object.cap) {
    o->u.object.cap = o->u.object.cap ? o->u.object.cap * 2 : 4;
    o->u.object.items = xrealloc(o->u.object.items, o->u.object.cap * sizeof(Member));
  }
  o->u.object.items[o->u.object.len].key = key;
  o->u.object.items[o->u.object.len++].value = value;
}

static Member *object_find(Value *o, const char *key) {
  for (size_t i = 0; i < o->u.object.len; i++)
    if (strcmp(o->u.object.items[i].key, key) == 0) return &o->u.object.items[i];
  return NULL;
}

static void object_remove(Value *o, const char *key) {
  Member *m = object_find(o, key);
  if (!m) return;
  free(m->key);
  free_value(m->value);
  size_t i = (size_t)(m - o->u.object.items);
  memmove(m, m + 1, (o->u.object.len - i - 1) * sizeof(Member));
  o->u.object.len--;
}

/* ---- the parser ----------------------------------------------------------------------------- */

typedef struct {
  const char *p;
} Parser;

static void fail(const char *what, const char *at) {
  fprintf(stderr, "parse error: %s at \"%.20s\"\n", what, at);
  exit(2);
}

static void skip_space(Parser *ps) {
  while (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\t' || *ps->p == '\r') ps->p++;
}

static int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* A string's contents, unescaped, in a block of its exact length (measured first, as cJSON does). */
static char *parse_string(Parser *ps, size_t *len_out) {
  if (*ps->p != '"') fail("expected a string", ps->p);
  const char *start = ++ps->p, *end = start;
  size_t len = 0;
  while (*end != '"') {
    if (!*end) fail("unterminated string", start);
    if (*end == '\\') end += end[1] == 'u' ? 6 : 2;
    else end++;
    len++;
  }
  char *out = xmalloc(len + 1), *o = out;
  for (const char *s = start; s < end;) {
    if (*s != '\\') {
      *o++ = *s++;
      continue;
    }
    char e = s[1];
    s += 2;
    switch (e) {
      case 'n': *o++ = '\n'; break;
      case 't': *o++ = '\t'; break;
      case 'r': *o++ = '\r'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'u': {
        int code = 0;
        for (int i = 0; i < 4; i++) code = code * 16 + hex(s[i]);
        *o++ = (char)(code < 128 ? code : '?');
        s += 4;
        break;
      }
      default: *o++ = e; break;
    }
  }
  *o = 0;
  ps->p = end + 1;
  *len_out = (size_t)(o - out);
  return out;
}

static Value *parse_value(Parser *ps);

static Value *parse_number(Parser *ps) {
  const char *s = ps->p;
  int negative = *s == '-';
  if (negative) s++;
  double v = 0, scale = 1;
  if (*s < '0' || *s > '9') fail("expected a value", ps->p);
  while (*s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0');
  if (*s == '.') {
    s++;
    while (*s >= '0' && *s <= '9') {
      scale /= 10;
      v += (*s++ - '0') * scale;
    }
  }
  ps->p = s;
  Value *n = new_value(J_NUMBER);
  n->u.number = negative ? -v : v;
  return n;
}

static Value *parse_value(Parser *ps) {
  skip_space(ps);
  char c = *ps->p;
  if (c == '{') {
    Value *o = new_value(J_OBJECT);
    ps->p++;
    skip_space(ps);
    if (*ps->p == '}') {
      ps->p++;
      return o;
    }
    for (;;) {
      skip_space(ps);
      size_t len;
      char *key = parse_string(ps, &len);
      skip_space(ps);
      if (*ps->p++ != ':') fail("expected ':'", ps->p - 1);
      object_put(o, key, parse_value(ps));
      skip_space(ps);
      if (*ps->p == ',') {
        ps->p++;
        continue;
      }
      if (*ps->p++ != '}') fail("expected ',' or '}'", ps->p - 1);
      return o;
    }
  }
  if (c == '[') {
    Value *a = new_value(J_ARRAY);
    ps->p++;
    skip_space(ps);
    if (*ps->p == ']') {
      ps->p++;
      return a;
    }
    for (;;) {
      array_push(a, parse_value(ps));
      skip_space(ps);
      if (*ps->p == ',') {
        ps->p++;
        continue;
      }
      if (*ps->p++ != ']') fail("expected ',' or ']'", ps->p - 1);
      return a;
    }
  }
  if (c == '"') {
    Value *s = new_value(J_STRING);
    s->u.string.chars = parse_string(ps, &s->u.string.len);
    return s;
  }
  if (strncmp(ps->p, "true", 4) == 0) return ps->p += 4, new_value(J_TRUE);
  if (strncmp(ps->p, "false", 5) == 0) return ps->p += 5, new_value(J_FALSE);
  if (strncmp(ps->p, "null", 4) == 0) return ps->p += 4, new_value(J_NULL);
  return parse_number(ps);
}

static Value *parse(const char *text) {
  Parser ps = {text};
  Value *v = parse_value(&ps);
  skip_space(&ps);
  if (*ps.p) fail("trailing text", ps.p);
  return v;
}

/* ---- the printer ---------------------------------------------------------------------------- */

static void print_string(Buf *b, const char *s, size_t len) {
  buf_char(b, '"');
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      buf_char(b, '\\');
      buf_char(b, (char)c);
    } else if (c == '\n') {
      buf_puts(b, "\\n");
    } else if (c == '\t') {
      buf_puts(b, "\\t");
    } else if (c < 0x20) {
      char tmp[8];
      snprintf(tmp, sizeof tmp, "\\u%04x", c);
      buf_puts(b, tmp);
    } else {
      buf_char(b, (char)c);
    }
  }
  buf_char(b, '"');
}

static void print_number(Buf *b, double v) {
  long long whole = (long long)v;
  if ((double)whole == v) {
    buf_long(b, whole);
    return;
  }
  /* Two decimals, enough for the documents generated here (quarters). */
  long long hundredths = (long long)(v * 100 + (v < 0 ? -0.5 : 0.5));
  if (hundredths < 0) {
    buf_char(b, '-');
    hundredths = -hundredths;
  }
  buf_long(b, hundredths / 100);
  char tmp[4] = {'.', (char)('0' + hundredths / 10 % 10), (char)('0' + hundredths % 10), 0};
  buf_puts(b, tmp);
}

static void print_value(Buf *b, const Value *v) {
  switch (v->kind) {
    case J_NULL: buf_puts(b, "null"); break;
    case J_FALSE: buf_puts(b, "false"); break;
    case J_TRUE: buf_puts(b, "true"); break;
    case J_NUMBER: print_number(b, v->u.number); break;
    case J_STRING: print_string(b, v->u.string.chars, v->u.string.len); break;
    case J_ARRAY:
      buf_char(b, '[');
      for (size_t i = 0; i < v->u.array.len; i++) {
        if (i) buf_char(b, ',');
        print_value(b, v->u.array.items[i]);
      }
      buf_char(b, ']');
      break;
    case J_OBJECT:
      buf_char(b, '{');
      for (size_t i = 0; i < v->u.object.len; i++) {
        if (i) buf_char(b, ',');
        print_string(b, v->u.object.items[i].key, strlen(v->u.object.items[i].key));
        buf_char(b, ':');
        print_value(b, v->u.object.items[i].value);
      }
      buf_char(b, '}');
      break;
  }
}

/* ---- the edits ------------------------------------------------------------------------------ */

static void edit(Value *v, int depth) {
  if (v->kind == J_ARRAY) {
    size_t n = v->u.array.len;
    for (size_t i = 0; i < n / 2; i++) {
      Value *t = v->u.array.items[i];
      v->u.array.items[i] = v->u.array.items[n - 1 - i];
      v->u.array.items[n - 1 - i] = t;
    }
    for (size_t i = 0; i < n; i++) edit(v->u.array.items[i], depth + 1);
    return;
  }
  if (v->kind == J_NUMBER) {
    v->u.number = v->u.number * 2 + 1;
    return;
  }
  if (v->kind == J_STRING && v->u.string.len > 12) {
    /* Replace a long string by its upper-case copy with a suffix. */
    size_t len = v->u.string.len;
    char *s = xmalloc(len + 3);
    for (size_t i = 0; i < len; i++) {
      char c = v->u.string.chars[i];
      s[i] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
    }
    memcpy(s + len, "!!", 3);
    free(v->u.string.chars);
    v->u.string.chars = s;
    v->u.string.len = len + 2;
    return;
  }
  if (v->kind != J_OBJECT) return;
  Member *name = object_find(v, "name");
  if (name) {
    free(name->key);
    name->key = copy_string("label", 5);
  }
  Member *tags = object_find(v, "tags");
  if (tags && tags->value->kind == J_ARRAY && tags->value->u.array.len > 4) object_remove(v, "tags");
  for (size_t i = 0; i < v->u.object.len; i++) edit(v->u.object.items[i].value, depth + 1);
  Value *seen = new_value(depth & 1 ? J_TRUE : J_FALSE);
  object_put(v, copy_string("seen", 4), seen);
  Value *path = new_value(J_STRING);
  char tmp[32];
  int n = snprintf(tmp, sizeof tmp, "depth-%d/%zu", depth, v->u.object.len);
  path->u.string.chars = copy_string(tmp, (size_t)n);
  path->u.string.len = (size_t)n;
  object_put(v, copy_string("path", 4), path);
}

/* ---- the generator -------------------------------------------------------------------------- */

static unsigned long long rng_state;
static unsigned rnd(unsigned n) {
  rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (unsigned)(rng_state >> 33) % n;
}

static const char *const WORDS[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
                                    "iota", "kappa", "lambda", "mu", "quote\"d", "tab\there", "line\nbreak", "omega"};

static void gen_text(Buf *b) {
  Buf s = {0};
  unsigned words = 1 + rnd(6);
  for (unsigned i = 0; i < words; i++) {
    if (i) buf_char(&s, ' ');
    buf_puts(&s, WORDS[rnd(16)]);
  }
  print_string(b, s.data, s.len);
  free(s.data);
}

static void gen_record(Buf *b, unsigned id, int depth) {
  buf_puts(b, "{\"id\":");
  buf_long(b, id);
  buf_puts(b, ",\"name\":");
  gen_text(b);
  buf_puts(b, ",\"score\":");
  buf_long(b, rnd(1000));
  buf_puts(b, rnd(4) ? ".25" : ".5");
  buf_puts(b, ",\"active\":");
  buf_puts(b, rnd(2) ? "true" : "false");
  buf_puts(b, ",\"tags\":[");
  for (unsigned i = 0, n = rnd(9); i < n; i++) {
    if (i) buf_char(b, ',');
    gen_text(b);
  }
  buf_puts(b, "],\"meta\":{\"owner\":");
  gen_text(b);
  buf_puts(b, ",\"rev\":");
  buf_long(b, rnd(100));
  buf_puts(b, ",\"parent\":null}");
  if (depth < 3 && rnd(3) == 0) {
    buf_puts(b, ",\"children\":[");
    for (unsigned i = 0, n = 1 + rnd(4); i < n; i++) {
      if (i) buf_char(b, ',');
      gen_record(b, id * 10 + i, depth + 1);
    }
    buf_char(b, ']');
  }
  buf_char(b, '}');
}

static char *generate(unsigned records, unsigned seed) {
  Buf b = {0};
  rng_state = seed;
  buf_puts(&b, "{\"version\":3,\"records\":[\n");
  for (unsigned i = 0; i < records; i++) {
    if (i) buf_puts(&b, ",\n");
    gen_record(&b, i, 0);
  }
  buf_puts(&b, "\n]}");
  return b.data;
}

static unsigned long long fnv(const char *s, size_t n, unsigned long long h) {
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return h;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 40;
  unsigned records = argc > 2 ? (unsigned)atoi(argv[2]) : 200;
  unsigned long long checksum = 14695981039346656037ULL;
  size_t total = 0;
  for (int r = 0; r < rounds; r++) {
    char *text = generate(records, (unsigned)r + 1);
    Value *doc = parse(text);
    free(text);
    edit(doc, 0);
    Buf out = {0};
    print_value(&out, doc);
    free_value(doc);
    /* The round trip: what was printed parses and prints to the same text. */
    Value *again = parse(out.data);
    Buf out2 = {0};
    print_value(&out2, again);
    free_value(again);
    if (out.len != out2.len || memcmp(out.data, out2.data, out.len) != 0) {
      fputs("round trip changed the document\n", stderr);
      return 3;
    }
    checksum = fnv(out.data, out.len, checksum);
    total += out.len;
    free(out.data);
    free(out2.data);
  }
  printf("json: %d rounds of %u records, %zu bytes printed, checksum %016llx\n", rounds, records, total, checksum);
  return 0;
}
