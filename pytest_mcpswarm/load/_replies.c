/* The load engine's reply fast path, in C: optional (setup.py), with the Python path's rules.
 *
 * ``SuccessPath(conn, record, fallback, timeout_ns)`` is what the transports call with each reply
 * (bytes) of one LoadConnection.  It reads the clock, then checks that the reply is exactly a
 * JSON-RPC 2.0 success: one JSON text (RFC 8259, UTF-8) that is an object with the keys
 * "jsonrpc": "2.0", "id": an integer and "result": any JSON value, each once, nothing else.  When
 * the id's request is in flight (``conn.sent[id - conn.base]`` holds its intended send time, not
 * 0) and ``now - intended <= timeout_ns``, it sets the slot to 0 and passes the latency to
 * ``record``.  Every other reply goes to ``fallback(data)`` (LoadConnection.on_message), which
 * decides with orjson, so this file may only accept what that path accepts the same way.  It
 * refuses more on purpose: a \u escape of a surrogate, nesting deeper than MAX_DEPTH, an id of
 * more than 18 digits, an escaped or repeated top-level key all take the fallback.
 * tests/fuzz/test_fuzz_replies.py holds it to orjson.
 *
 * Why C: the Python path costs 880-1,000 ns a reply on top of the WebSocket listener: msgspec's
 * validation about 400, the in-flight table and recording about 350 (docs/PERFORMANCE_TUNING.md).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#define MAX_DEPTH 64

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
} Cursor;

static inline void skip_ws(Cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static inline int hex(unsigned char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    ch |= 0x20;
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    return -1;
}

/* 1 for a byte that may stand for itself in a string: printable ASCII but the quote and backslash. */
static unsigned char PLAIN[256];

static void init_plain(void) {
    for (int ch = 0x20; ch < 0x80; ch++) PLAIN[ch] = ch != '"' && ch != '\\';
}

/* One UTF-8 sequence starting at a byte >= 0x80 (RFC 3629: no overlongs, no surrogates). */
static int utf8_seq(Cursor *c) {
    const unsigned char *p = c->p;
    Py_ssize_t left = c->end - p;
    unsigned char b0 = p[0];
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        if (left < 2 || (p[1] & 0xC0) != 0x80) return 0;
        c->p += 2;
        return 1;
    }
    if (b0 >= 0xE0 && b0 <= 0xEF) {
        if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (b0 == 0xE0 && p[1] < 0xA0) return 0;  /* overlong */
        if (b0 == 0xED && p[1] > 0x9F) return 0;  /* surrogate */
        c->p += 3;
        return 1;
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
        if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (b0 == 0xF0 && p[1] < 0x90) return 0;  /* overlong */
        if (b0 == 0xF4 && p[1] > 0x8F) return 0;  /* beyond U+10FFFF */
        c->p += 4;
        return 1;
    }
    return 0;
}

/* A string; the cursor is on the opening quote.  Sets *start and *len to the raw bytes between
 * the quotes and *escaped when there was a backslash. */
static int string(Cursor *c, const unsigned char **start, Py_ssize_t *len, int *escaped) {
    const unsigned char *p = c->p + 1, *end = c->end;
    const unsigned char *s = p;
    *escaped = 0;
    for (;;) {
        /* A table lookup a byte: scanning 8 bytes at a time (SWAR) measured no faster, as a
         * reply's strings are short. */
        while (p < end && PLAIN[*p]) p++;
        if (p >= end) return 0;
        unsigned char ch = *p;
        if (ch == '"') {
            *start = s;
            *len = p - s;
            c->p = p + 1;
            return 1;
        }
        if (ch == '\\') {
            *escaped = 1;
            if (end - p < 2) return 0;
            switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2;
                break;
            case 'u': {
                if (end - p < 6) return 0;
                int a = hex(p[2]), b = hex(p[3]), d = hex(p[4]), e = hex(p[5]);
                if ((a | b | d | e) < 0) return 0;
                int cp = (a << 12) | (b << 8) | (d << 4) | e;
                if (cp >= 0xD800 && cp <= 0xDFFF) return 0;  /* pairs and lone halves: the slow path decides */
                p += 6;
                break;
            }
            default:
                return 0;
            }
        } else if (ch < 0x20) {
            return 0;
        } else {
            Cursor u = {p, end};
            if (!utf8_seq(&u)) return 0;
            p = u.p;
        }
    }
}

static int number(Cursor *c) {
    const unsigned char *p = c->p, *end = c->end;
    if (p < end && *p == '-') p++;
    if (p >= end) return 0;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') p++;
    } else {
        return 0;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    c->p = p;
    return 1;
}

static int literal(Cursor *c, const char *word, Py_ssize_t n) {
    if (c->end - c->p < n || memcmp(c->p, word, (size_t)n) != 0) return 0;
    c->p += n;
    return 1;
}

static int value(Cursor *c, int depth);

static int object(Cursor *c, int depth) {
    const unsigned char *s;
    Py_ssize_t n;
    int escaped;
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return 1;
    }
    for (;;) {
        if (c->p >= c->end || *c->p != '"' || !string(c, &s, &n, &escaped)) return 0;
        skip_ws(c);
        if (c->p >= c->end || *c->p != ':') return 0;
        c->p++;
        if (!value(c, depth)) return 0;
        skip_ws(c);
        if (c->p >= c->end) return 0;
        if (*c->p == '}') {
            c->p++;
            return 1;
        }
        if (*c->p != ',') return 0;
        c->p++;
        skip_ws(c);
    }
}

static int array(Cursor *c, int depth) {
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return 1;
    }
    for (;;) {
        if (!value(c, depth)) return 0;
        skip_ws(c);
        if (c->p >= c->end) return 0;
        if (*c->p == ']') {
            c->p++;
            return 1;
        }
        if (*c->p != ',') return 0;
        c->p++;
    }
}

/* Any JSON value, with the whitespace before it. */
static int value(Cursor *c, int depth) {
    const unsigned char *s;
    Py_ssize_t n;
    int escaped;
    skip_ws(c);
    if (c->p >= c->end) return 0;
    switch (*c->p) {
    case '{':
        return depth < MAX_DEPTH && object(c, depth + 1);
    case '[':
        return depth < MAX_DEPTH && array(c, depth + 1);
    case '"':
        return string(c, &s, &n, &escaped);
    case 't':
        return literal(c, "true", 4);
    case 'f':
        return literal(c, "false", 5);
    case 'n':
        return literal(c, "null", 4);
    default:
        return number(c);
    }
}

/* An integer that fits in int64, nothing else (no fraction, no exponent, no leading zero). */
static int integer(Cursor *c, long long *out) {
    const unsigned char *p = c->p, *end = c->end;
    int negative = 0;
    unsigned long long v = 0;
    if (p < end && *p == '-') {
        negative = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9') return 0;
    if (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9') return 0;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (++digits > 18) return 0;  /* stays far from overflow; longer ids take the slow path */
        v = v * 10 + (unsigned long long)(*p - '0');
        p++;
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) return 0;
    c->p = p;
    *out = negative ? -(long long)v : (long long)v;
    return 1;
}

/* The whole reply: 1 and the id when it is exactly a JSON-RPC 2.0 success, else 0. */
static int success_id(const unsigned char *data, Py_ssize_t size, long long *id) {
    Cursor c = {data, data + size};
    const unsigned char *s;
    Py_ssize_t n;
    int escaped, seen = 0;  /* bits: 1 jsonrpc, 2 id, 4 result */
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{') return 0;
    c.p++;
    for (;;) {
        skip_ws(&c);
        if (c.p >= c.end || *c.p != '"' || !string(&c, &s, &n, &escaped) || escaped) return 0;
        skip_ws(&c);
        if (c.p >= c.end || *c.p != ':') return 0;
        c.p++;
        skip_ws(&c);
        if (n == 7 && memcmp(s, "jsonrpc", 7) == 0 && !(seen & 1)) {
            seen |= 1;
            if (!literal(&c, "\"2.0\"", 5)) return 0;
        } else if (n == 2 && memcmp(s, "id", 2) == 0 && !(seen & 2)) {
            seen |= 2;
            if (!integer(&c, id)) return 0;
        } else if (n == 6 && memcmp(s, "result", 6) == 0 && !(seen & 4)) {
            seen |= 4;
            if (!value(&c, 1)) return 0;
        } else {
            return 0;
        }
        skip_ws(&c);
        if (c.p >= c.end) return 0;
        if (*c.p == '}') {
            c.p++;
            break;
        }
        if (*c.p != ',') return 0;
        c.p++;
    }
    skip_ws(&c);
    return c.p == c.end && seen == 7;
}

/* -- the callable ------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *conn;
    PyObject *record;
    PyObject *fallback;
    long long timeout_ns;
    vectorcallfunc vectorcall;
} SuccessPath;

static PyObject *str_base, *str_sent, *zero;

static inline long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);  /* time.perf_counter_ns's clock on Linux */
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static PyObject *fall_back(SuccessPath *self, PyObject *data) {
    return PyObject_CallOneArg(self->fallback, data);
}

/* Returns 1 when the reply was recorded here, 0 to fall back, -1 on a Python error. */
static int take(SuccessPath *self, long long id, long long now) {
    PyObject *base_obj = PyObject_GetAttr(self->conn, str_base);
    if (base_obj == NULL) return -1;
    long long base = PyLong_AsLongLong(base_obj);
    Py_DECREF(base_obj);
    if (base == -1 && PyErr_Occurred()) return -1;
    PyObject *sent = PyObject_GetAttr(self->conn, str_sent);
    if (sent == NULL) return -1;
    int done = 0;
    long long k = id - base;
    if (PyList_CheckExact(sent) && k >= 0 && k < PyList_GET_SIZE(sent)) {
        long long intended = PyLong_AsLongLong(PyList_GET_ITEM(sent, k));
        if (intended == -1 && PyErr_Occurred()) {
            done = -1;
        } else if (intended != 0 && now - intended <= self->timeout_ns) {
            Py_INCREF(zero);
            PyList_SetItem(sent, k, zero);  /* steals the reference, drops the old int */
            PyObject *latency = PyLong_FromLongLong(now - intended);
            if (latency == NULL) {
                done = -1;
            } else {
                PyObject *r = PyObject_CallOneArg(self->record, latency);
                Py_DECREF(latency);
                done = r == NULL ? -1 : 1;
                Py_XDECREF(r);
            }
        }
    }
    Py_DECREF(sent);
    return done;
}

static PyObject *success_path_call(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    SuccessPath *self = (SuccessPath *)op;
    long long now = now_ns();
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "SuccessPath takes one positional argument (the reply)");
        return NULL;
    }
    PyObject *data = args[0];
    long long id;
    if (!PyBytes_CheckExact(data)
        || !success_id((const unsigned char *)PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), &id))
        return fall_back(self, data);
    int done = take(self, id, now);
    if (done < 0) return NULL;
    if (done == 0) return fall_back(self, data);
    Py_RETURN_NONE;
}

static int success_path_init(PyObject *op, PyObject *args, PyObject *kwds) {
    SuccessPath *self = (SuccessPath *)op;
    static char *kwlist[] = {"conn", "record", "fallback", "timeout_ns", NULL};
    PyObject *conn, *record, *fallback;
    long long timeout_ns;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOL", kwlist, &conn, &record, &fallback, &timeout_ns))
        return -1;
    Py_INCREF(conn);
    Py_INCREF(record);
    Py_INCREF(fallback);
    Py_XSETREF(self->conn, conn);
    Py_XSETREF(self->record, record);
    Py_XSETREF(self->fallback, fallback);
    self->timeout_ns = timeout_ns;
    self->vectorcall = success_path_call;
    return 0;
}

static int success_path_traverse(PyObject *op, visitproc visit, void *arg) {
    SuccessPath *self = (SuccessPath *)op;
    Py_VISIT(self->conn);
    Py_VISIT(self->record);
    Py_VISIT(self->fallback);
    return 0;
}

static int success_path_clear(PyObject *op) {
    SuccessPath *self = (SuccessPath *)op;
    Py_CLEAR(self->conn);
    Py_CLEAR(self->record);
    Py_CLEAR(self->fallback);
    return 0;
}

static void success_path_dealloc(PyObject *op) {
    PyObject_GC_UnTrack(op);
    success_path_clear(op);
    Py_TYPE(op)->tp_free(op);
}

static PyTypeObject SuccessPathType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pytest_mcpswarm.load._replies.SuccessPath",
    .tp_basicsize = sizeof(SuccessPath),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "SuccessPath(conn, record, fallback, timeout_ns): the reply fast path (see the module).",
    .tp_new = PyType_GenericNew,
    .tp_init = success_path_init,
    .tp_traverse = success_path_traverse,
    .tp_clear = success_path_clear,
    .tp_dealloc = success_path_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(SuccessPath, vectorcall),
};

/* success_id(data) -> int | None, for tests and for the fuzzer. */
static PyObject *py_success_id(PyObject *module, PyObject *data) {
    Py_buffer view;
    long long id;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return NULL;
    int ok = success_id((const unsigned char *)view.buf, view.len, &id);
    PyBuffer_Release(&view);
    if (!ok) Py_RETURN_NONE;
    return PyLong_FromLongLong(id);
}

/* is_json(data) -> bool: one valid JSON text (with this file's extra strictness), for tests. */
static PyObject *py_is_json(PyObject *module, PyObject *data) {
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return NULL;
    Cursor c = {(const unsigned char *)view.buf, (const unsigned char *)view.buf + view.len};
    int ok = value(&c, 0);
    if (ok) {
        skip_ws(&c);
        ok = c.p == c.end;
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(ok);
}

static PyObject *py_now_ns(PyObject *module, PyObject *unused) {
    return PyLong_FromLongLong(now_ns());
}

static PyMethodDef methods[] = {
    {"success_id", py_success_id, METH_O, "The id of an exact JSON-RPC 2.0 success, else None."},
    {"is_json", py_is_json, METH_O, "Whether the bytes are one JSON text (this module's strictness)."},
    {"now_ns", py_now_ns, METH_NOARGS, "The clock SuccessPath reads (CLOCK_MONOTONIC), in ns."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_replies", "The load engine's reply fast path (optional C accelerator).", -1, methods,
};

PyMODINIT_FUNC PyInit__replies(void) {
    init_plain();
    if (PyType_Ready(&SuccessPathType) < 0) return NULL;
    str_base = PyUnicode_InternFromString("base");
    str_sent = PyUnicode_InternFromString("sent");
    zero = PyLong_FromLong(0);
    if (str_base == NULL || str_sent == NULL || zero == NULL) return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL) return NULL;
    Py_INCREF(&SuccessPathType);
    if (PyModule_AddObject(m, "SuccessPath", (PyObject *)&SuccessPathType) < 0) {
        Py_DECREF(&SuccessPathType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
