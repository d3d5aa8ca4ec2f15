/*
 * surge.engine.http._conncore: the compiled per-request core of HttpConnection.
 *
 * Why C: a scripted request (`await client.get(...)` and a check) executed ~130k
 * instructions (bench/instructions.py, callgrind), ~13k of them in the
 * connection: a Python send(), arm_timeouts(), data_received(), three httptools
 * callbacks into Python, head_end() and _complete(). This type keeps the
 * connection's per-request state in C fields and does, in C:
 *
 *  - send(request, head_only, read, total): create the response future, reset
 *    the per-request state, arm the timeouts and write the request;
 *  - data_received(data) for a response that arrives whole in one read and is
 *    plainly framed (see simple_response below): complete the future at once.
 *
 * Measured back to back (callgrind, 100/300 req/s): 126-128k -> 109-114k
 * instructions per scripted request with this and the Python trims that came
 * with it; the scripted max req/s on one core rose 12-17 %.
 *
 * Anything else (a response split over reads, chunked or close-delimited
 * bodies, 1xx, HTTP/1.0, an unusual header) goes unchanged to the Python
 * method _data_received_slow, httptools' parser, which stays the authority on
 * what is valid: the fast path accepts only a strict subset of what llhttp
 * accepts, and declines without touching any state.
 *
 * HttpConnection (connection.py) subclasses ConnCore; where this module is not
 * built, a pure-Python ConnCore with the same fields and methods stands in.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>
#include <time.h>

typedef struct {
    PyObject_HEAD
    PyObject *fut;       /* _fut: the in-flight request's future, or None */
    PyObject *transport; /* transport */
    PyObject *loop;      /* loop */
    PyObject *raw;       /* _raw: bytes of a head still incomplete (slow path) */
    PyObject *head;      /* _head: the response's header block */
    PyObject *body;      /* _body: list of body pieces (slow path) */
    long long first_ns, bytes_in, uses, seen;
    double deadline, quiet_since, read_timeout, total;
    int status;
    char got_bytes, head_only, gzip, set_cookie, closed;
} ConnCore;

static PyObject *s_create_future, *s_write, *s_done, *s_set_result, *s_slow, *s_send_closed, *s_close;
static PyObject *empty_bytes;

/* The clock of time.monotonic_ns(): CLOCK_MONOTONIC on Linux, mach_absolute_time
 * (CLOCK_UPTIME_RAW) on macOS, where CLOCK_MONOTONIC also counts sleep. */
static inline long long mono_ns(void) {
#ifdef __APPLE__
    return (long long)clock_gettime_nsec_np(CLOCK_UPTIME_RAW);
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
#endif
}

/* ---- the plain-response recogniser ------------------------------------------ */

typedef struct {
    int status, keep_alive, gzip, set_cookie;
    Py_ssize_t head_end;   /* offset of the CRLF CRLF ending the header block */
    Py_ssize_t body_start; /* offset of the body */
} simple_t;

/* RFC 9110 tchar */
static unsigned char tchar[256];
/* field-value / reason-phrase octets: HTAB, SP, VCHAR, obs-text (no other CTLs) */
static unsigned char vchar[256];

static void init_tables(void) {
    const char *extra = "!#$%&'*+-.^_`|~";
    for (int c = 0; c < 256; c++) {
        tchar[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c && strchr(extra, c) != NULL);
        vchar[c] = c == '\t' || (c >= 0x20 && c != 0x7f);
    }
}

/* s[0:n] equals the lower-case ASCII `want`, ignoring ASCII case (not strncasecmp:
 * it follows the locale, which Python sets from the environment). */
static int eq_ci(const char *s, Py_ssize_t n, const char *want) {
    Py_ssize_t i = 0;
    for (; i < n && want[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') c |= 0x20;
        if (c != (unsigned char)want[i]) return 0;
    }
    return i == n && want[i] == 0;
}

/* 1 when d[0:n] is exactly one complete HTTP/1.1 response framed by a single
 * Content-Length (or a HEAD response's head), with CRLF line ends, a status of
 * 200-599 other than 204 / 304, token header names, no control characters, no
 * Transfer-Encoding, Upgrade or unusual Connection header; 0 otherwise (the
 * caller hands the bytes to httptools). */
static int simple_response(const char *d, Py_ssize_t n, int head_only, simple_t *out) {
    if (n < 19 || memcmp(d, "HTTP/1.1 ", 9) != 0) return 0;
    if (d[9] < '2' || d[9] > '5' || d[10] < '0' || d[10] > '9' || d[11] < '0' || d[11] > '9') return 0;
    int status = (d[9] - '0') * 100 + (d[10] - '0') * 10 + (d[11] - '0');
    if (status == 204 || status == 304) return 0;
    Py_ssize_t i = 12;
    if (d[i] == ' ') {
        for (i++; i < n && d[i] != '\r'; i++)
            if (!vchar[(unsigned char)d[i]]) return 0;
    }
    if (i + 1 >= n || d[i] != '\r' || d[i + 1] != '\n') return 0;
    i += 2;
    long long clen = -1;
    int keep = 1, gzip = 0, cookie = 0;
    for (;;) {
        if (i + 1 >= n) return 0; /* the head is not complete */
        if (d[i] == '\r') {
            if (d[i + 1] != '\n') return 0;
            out->head_end = i - 2;
            out->body_start = i + 2;
            break;
        }
        const char *name = d + i;
        Py_ssize_t ns = i;
        while (i < n && tchar[(unsigned char)d[i]]) i++;
        Py_ssize_t nlen = i - ns;
        if (nlen == 0 || i >= n || d[i] != ':') return 0; /* obs-fold, a space before the colon, garbage */
        i++;
        while (i < n && (d[i] == ' ' || d[i] == '\t')) i++;
        Py_ssize_t vs = i;
        while (i < n && d[i] != '\r') {
            if (!vchar[(unsigned char)d[i]]) return 0;
            i++;
        }
        if (i + 1 >= n || d[i + 1] != '\n') return 0;
        Py_ssize_t ve = i;
        while (ve > vs && (d[ve - 1] == ' ' || d[ve - 1] == '\t')) ve--;
        i += 2;
        const char *v = d + vs;
        Py_ssize_t vlen = ve - vs;
        switch (name[0] | 0x20) {
        case 'c':
            if (eq_ci(name, nlen, "content-length")) {
                if (clen >= 0 || vlen == 0 || vlen > 15) return 0;
                long long x = 0;
                for (Py_ssize_t k = 0; k < vlen; k++) {
                    if (v[k] < '0' || v[k] > '9') return 0;
                    x = x * 10 + (v[k] - '0');
                }
                clen = x;
            } else if (eq_ci(name, nlen, "connection")) {
                if (eq_ci(v, vlen, "close")) keep = 0;
                else if (!eq_ci(v, vlen, "keep-alive")) return 0; /* upgrade, lists: httptools decides */
            } else if (eq_ci(name, nlen, "content-encoding")) {
                gzip = eq_ci(v, vlen, "gzip"); /* the last one counts, as on the slow path */
            }
            break;
        case 't':
            if (eq_ci(name, nlen, "transfer-encoding")) return 0;
            break;
        case 'u':
            if (eq_ci(name, nlen, "upgrade")) return 0;
            break;
        case 'p':
            if (eq_ci(name, nlen, "proxy-connection")) return 0;
            break;
        case 's':
            if (eq_ci(name, nlen, "set-cookie")) cookie = 1;
            break;
        }
    }
    if (head_only) {
        if (n != out->body_start) return 0;
    } else if (clen < 0 || (long long)(n - out->body_start) != clen) {
        return 0; /* no length, a body still to come, or more bytes than one response */
    }
    out->status = status;
    out->keep_alive = keep;
    out->gzip = gzip;
    out->set_cookie = cookie;
    return 1;
}

/* ---- the type --------------------------------------------------------------- */

static int Core_traverse(ConnCore *self, visitproc visit, void *arg) {
    Py_VISIT(self->fut);
    Py_VISIT(self->transport);
    Py_VISIT(self->loop);
    Py_VISIT(self->raw);
    Py_VISIT(self->head);
    Py_VISIT(self->body);
    return 0;
}

static int Core_clear(ConnCore *self) {
    Py_CLEAR(self->fut);
    Py_CLEAR(self->transport);
    Py_CLEAR(self->loop);
    Py_CLEAR(self->raw);
    Py_CLEAR(self->head);
    Py_CLEAR(self->body);
    return 0;
}

static void Core_dealloc(ConnCore *self) {
    PyObject_GC_UnTrack(self);
    Core_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Core_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    ConnCore *self = (ConnCore *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    self->fut = Py_NewRef(Py_None);
    self->transport = Py_NewRef(Py_None);
    self->loop = Py_NewRef(Py_None);
    self->raw = Py_NewRef(empty_bytes);
    self->head = Py_NewRef(empty_bytes);
    self->body = PyList_New(0);
    if (!self->body) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* Complete the in-flight request from one whole response (the fast path). */
static PyObject *complete_simple(ConnCore *self, PyObject *data, const simple_t *r, long long now) {
    const char *d = PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    PyObject *head = PyBytes_FromStringAndSize(d, r->head_end);
    if (!head) return NULL;
    PyObject *body = r->body_start < n ? PyBytes_FromStringAndSize(d + r->body_start, n - r->body_start)
                                       : Py_NewRef(empty_bytes);
    if (!body) {
        Py_DECREF(head);
        return NULL;
    }
    self->got_bytes = 1;
    self->first_ns = now;
    self->bytes_in += n;
    self->status = r->status;
    self->gzip = (char)r->gzip;
    if (r->set_cookie) self->set_cookie = 1;
    Py_XSETREF(self->head, Py_NewRef(head));
    self->uses++;
    PyObject *fut = self->fut; /* take it: the request is no longer in flight */
    self->fut = Py_NewRef(Py_None);
    PyObject *res = NULL;
    PyObject *done = PyObject_CallMethodNoArgs(fut, s_done);
    if (!done) goto fail;
    int is_done = PyObject_IsTrue(done);
    Py_DECREF(done);
    if (is_done < 0) goto fail;
    if (!is_done) {
        PyObject *tup = Py_BuildValue("(iOOLO)", r->status, head, body, now, r->gzip ? Py_True : Py_False);
        if (!tup) goto fail;
        PyObject *x = PyObject_CallMethodOneArg(fut, s_set_result, tup);
        Py_DECREF(tup);
        if (!x) goto fail;
        Py_DECREF(x);
    }
    if (!r->keep_alive) { /* as _complete: the server said it closes; close our side */
        PyObject *x = PyObject_CallMethodNoArgs((PyObject *)self, s_close);
        if (!x) goto out;
        Py_DECREF(x);
    }
    res = Py_NewRef(Py_None);
    goto out;
fail:
    /* Not resolved: leave it in flight, so the sweeper's timeouts still end it. */
    if (self->fut == Py_None) Py_XSETREF(self->fut, Py_NewRef(fut));
out:
    Py_DECREF(fut);
    Py_DECREF(head);
    Py_DECREF(body);
    return res;
}

static PyObject *Core_data_received(ConnCore *self, PyObject *data) {
    if (self->fut && self->fut != Py_None && !self->got_bytes && PyBytes_CheckExact(data)) {
        simple_t r;
        if (simple_response(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), self->head_only, &r))
            return complete_simple(self, data, &r, mono_ns());
    }
    return PyObject_CallMethodOneArg((PyObject *)self, s_slow, data);
}

static PyObject *Core_send(ConnCore *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "send(request, head_only=False, read=None, total=None, /)");
        return NULL;
    }
    PyObject *request = args[0];
    int head_only = 0;
    if (nargs > 1 && (head_only = PyObject_IsTrue(args[1])) < 0) return NULL;
    /* arm_timeouts(read, total) when both are given, as PyConnCore.send */
    int arm = nargs > 3 && args[2] != Py_None && args[3] != Py_None;
    double read = 0, total = 0;
    if (arm) {
        if ((read = PyFloat_AsDouble(args[2])) == -1 && PyErr_Occurred()) return NULL;
        if ((total = PyFloat_AsDouble(args[3])) == -1 && PyErr_Occurred()) return NULL;
    }
    if (!self->loop || self->loop == Py_None) {
        PyErr_SetString(PyExc_RuntimeError, "send() on a connection that was never connected");
        return NULL;
    }
    PyObject *fut = PyObject_CallMethodNoArgs(self->loop, s_create_future);
    if (!fut) return NULL;
    if (self->closed || !self->transport || self->transport == Py_None) {
        PyObject *x = PyObject_CallMethodOneArg((PyObject *)self, s_send_closed, fut);
        if (!x) {
            Py_DECREF(fut);
            return NULL;
        }
        Py_DECREF(x);
        return fut;
    }
    Py_XSETREF(self->fut, Py_NewRef(fut));
    self->head_only = (char)head_only;
    Py_XSETREF(self->raw, Py_NewRef(empty_bytes));
    Py_XSETREF(self->head, Py_NewRef(empty_bytes));
    if (!self->body || !PyList_CheckExact(self->body) || PyList_GET_SIZE(self->body)) {
        PyObject *fresh = PyList_New(0);
        if (!fresh) {
            Py_DECREF(fut);
            return NULL;
        }
        Py_XSETREF(self->body, fresh);
    }
    self->got_bytes = 0;
    self->status = 0;
    self->gzip = 0;
    self->set_cookie = 0;
    if (arm) { /* arm_timeouts(read, total), see connection.py */
        double now = (double)mono_ns() / 1e9;
        self->deadline = now + total;
        self->total = total;
        self->read_timeout = read;
        self->seen = self->bytes_in;
        self->quiet_since = now;
    }
    PyObject *x = PyObject_CallMethodOneArg(self->transport, s_write, request);
    if (!x) {
        Py_DECREF(fut);
        return NULL;
    }
    Py_DECREF(x);
    return fut;
}

/* simple_response(data, head_only=False): called per response by `surge hit`'s
 * Python path, so FASTCALL and no buffer protocol for bytes. */
static PyObject *Core_simple_response(PyObject *unused, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "simple_response(data, head_only=False)");
        return NULL;
    }
    int head_only = 0;
    if (nargs > 1 && (head_only = PyObject_IsTrue(args[1])) < 0) return NULL;
    simple_t r;
    int ok;
    if (PyBytes_CheckExact(args[0])) {
        ok = simple_response(PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]), head_only, &r);
    } else {
        Py_buffer buf;
        if (PyObject_GetBuffer(args[0], &buf, PyBUF_SIMPLE) < 0) return NULL;
        ok = simple_response(buf.buf, buf.len, head_only, &r);
        PyBuffer_Release(&buf);
    }
    if (!ok) Py_RETURN_NONE;
    return Py_BuildValue("(innNN)", r.status, r.head_end, r.body_start, PyBool_FromLong(r.keep_alive),
                         PyBool_FromLong(r.gzip));
}

static PyMethodDef Core_methods[] = {
    {"data_received", (PyCFunction)Core_data_received, METH_O,
     "asyncio.Protocol: complete a whole plain response here, else _data_received_slow(data)."},
    {"send", (PyCFunction)(void (*)(void))Core_send, METH_FASTCALL,
     "send(request, head_only=False, read=None, total=None, /) -> Future: write a request; with read and "
     "total (s) also arm its timeouts. The future resolves to (status, head, body, first_byte_ns, gzipped)."},
    {NULL},
};

#define M(name, type, field) {name, type, offsetof(ConnCore, field), 0, NULL}
static PyMemberDef Core_members[] = {
    M("_fut", T_OBJECT, fut),
    M("transport", T_OBJECT, transport),
    M("loop", T_OBJECT, loop),
    M("_raw", T_OBJECT, raw),
    M("_head", T_OBJECT, head),
    M("_body", T_OBJECT, body),
    M("_first_ns", T_LONGLONG, first_ns),
    M("bytes_in", T_LONGLONG, bytes_in),
    M("uses", T_LONGLONG, uses),
    M("_seen", T_LONGLONG, seen),
    M("_deadline", T_DOUBLE, deadline),
    M("_quiet_since", T_DOUBLE, quiet_since),
    M("_read_timeout", T_DOUBLE, read_timeout),
    M("_total", T_DOUBLE, total),
    M("_status", T_INT, status),
    M("_got_bytes", T_BOOL, got_bytes),
    M("_head_only", T_BOOL, head_only),
    M("_gzip", T_BOOL, gzip),
    M("set_cookie", T_BOOL, set_cookie),
    M("closed", T_BOOL, closed),
    {NULL},
};

static PyTypeObject ConnCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "surge.engine.http._conncore.ConnCore",
    .tp_doc = "Per-request state and hot path of an HTTP/1.1 connection (see connection.py).",
    .tp_basicsize = sizeof(ConnCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = Core_new,
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_traverse = (traverseproc)Core_traverse,
    .tp_clear = (inquiry)Core_clear,
    .tp_methods = Core_methods,
    .tp_members = Core_members,
};

static PyMethodDef module_methods[] = {
    {"simple_response", (PyCFunction)(void (*)(void))Core_simple_response, METH_FASTCALL,
     "simple_response(data, head_only=False) -> (status, head_end, body_start, keep_alive, gzip) when data "
     "is one whole plainly framed response the fast path completes, else None."},
    {NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_conncore", "Compiled core of surge's HTTP/1.1 connection.", -1, module_methods,
};

PyMODINIT_FUNC PyInit__conncore(void) {
    init_tables();
#define INTERN(var, s) if (!(var = PyUnicode_InternFromString(s))) return NULL
    INTERN(s_create_future, "create_future");
    INTERN(s_write, "write");
    INTERN(s_done, "done");
    INTERN(s_set_result, "set_result");
    INTERN(s_slow, "_data_received_slow");
    INTERN(s_send_closed, "_send_closed");
    INTERN(s_close, "close");
    if (!(empty_bytes = PyBytes_FromStringAndSize("", 0))) return NULL;
    if (PyType_Ready(&ConnCoreType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    Py_INCREF(&ConnCoreType);
    if (PyModule_AddObject(m, "ConnCore", (PyObject *)&ConnCoreType) < 0) {
        Py_DECREF(&ConnCoreType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
