/* verifier._poseidon: circomlib's Poseidon (circomlibjs poseidon_opt.js's algorithm) over a 4x64-bit prime field.
 *
 * Hand-written because no installable circomlib-compatible Poseidon runs the optimized algorithm
 * (sparse partial rounds, about 2.2x fewer multiplications than the textbook permutation that
 * light-poseidon runs). Optional: if it does not build, verifier/poseidon.py runs without it.
 *
 * No constant is typed here: `init(modulus, widths)` takes the modulus and, per width t, the
 * optimized form's tables (C, S, M, P and the round numbers) that verifier/poseidon.py loads and
 * checks from verifier/data/poseidon_constants.json; R^2 mod p and -p^-1 mod 2^64 are computed here.
 * Inside, field elements are in Montgomery form (R = 2^256), always reduced to [0, p). The linear
 * layers sum their 512-bit products unreduced and reduce once per output (as the Python code does).
 *
 * Every entry point holds the GIL (a hash is tens of microseconds), so a second `init` cannot
 * change the tables under a running hash.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;
typedef uint64_t u64;
typedef struct { u64 v[4]; } fe;

#define MAX_INPUTS 16
#define MAX_T (MAX_INPUTS + 1)

typedef struct {
    int t, n_rounds_f, n_rounds_p;
    fe *c;     /* n_rounds_f * t + n_rounds_p round constants */
    fe *s;     /* (2t - 1) * n_rounds_p: the partial rounds' sparse matrices */
    fe *mcol;  /* t x t: mcol[i * t + j] = M_opt[j][i], so new[i] = sum_j mcol[i][j] * old[j] */
    fe *pcol;  /* t x t: the same for P */
} width;

typedef struct {
    int ready;
    fe p;
    u64 n0;   /* -p^-1 mod 2^64 */
    fe r2;    /* 2^512 mod p: multiplying by it enters Montgomery form */
    fe one;   /* the plain 1: multiplying by it leaves Montgomery form */
    width w[MAX_T + 1];  /* indexed by t; t = 2..MAX_T */
} field_state;

static field_state F;
static PyObject *modulus_obj = NULL;  /* p as an int, for error messages */

/* ---- field arithmetic ---- */

static inline int geq(const u64 *a, const u64 *b) {
    for (int i = 3; i >= 0; i--) {
        if (a[i] != b[i]) return a[i] > b[i];
    }
    return 1;
}

static inline u64 sub_raw(u64 *r, const u64 *a, const u64 *b) {
    u64 borrow = 0;
    for (int i = 0; i < 4; i++) {
        u128 d = (u128)a[i] - b[i] - borrow;
        r[i] = (u64)d;
        borrow = (u64)(d >> 64) & 1;
    }
    return borrow;
}

/* r = a + b mod p, a and b < p < 2^254: the sum has no carry out */
static inline void add_mod(fe *r, const fe *a, const fe *b) {
    u64 s[4];
    u128 c = 0;
    for (int i = 0; i < 4; i++) {
        c = (u128)a->v[i] + b->v[i] + (c >> 64);
        s[i] = (u64)c;
    }
    if (geq(s, F.p.v)) sub_raw(s, s, F.p.v);
    memcpy(r->v, s, sizeof s);
}

/* r = a * b / R mod p (CIOS). p < 2^254 leaves the top limb's two high bits free, so the running
 * value stays below 2p and needs no sixth limb (the "no-carry" form of gnark-crypto). The modulus
 * is read into locals: stores through a u64 pointer could alias it and force reloads. */
static inline void mont_mul(fe *r, const fe *a, const fe *b) {
    const u64 p0 = F.p.v[0], p1 = F.p.v[1], p2 = F.p.v[2], p3 = F.p.v[3], n0 = F.n0;
    const u64 a0 = a->v[0], a1 = a->v[1], a2 = a->v[2], a3 = a->v[3];
    u64 t0 = 0, t1 = 0, t2 = 0, t3 = 0;
    for (int i = 0; i < 4; i++) {
        const u64 bi = b->v[i];
        u128 c = (u128)a0 * bi + t0;
        t0 = (u64)c;
        c = (u128)a1 * bi + t1 + (u64)(c >> 64);
        t1 = (u64)c;
        c = (u128)a2 * bi + t2 + (u64)(c >> 64);
        t2 = (u64)c;
        c = (u128)a3 * bi + t3 + (u64)(c >> 64);
        t3 = (u64)c;
        const u64 t4 = (u64)(c >> 64);
        const u64 m = t0 * n0;
        c = (u128)m * p0 + t0;
        c = (u128)m * p1 + t1 + (u64)(c >> 64);
        t0 = (u64)c;
        c = (u128)m * p2 + t2 + (u64)(c >> 64);
        t1 = (u64)c;
        c = (u128)m * p3 + t3 + (u64)(c >> 64);
        t2 = (u64)c;
        t3 = t4 + (u64)(c >> 64);
    }
    u64 t[4] = {t0, t1, t2, t3};
    u64 d[4];
    /* one conditional subtraction: the result is below 2p */
    if (!sub_raw(d, t, F.p.v)) memcpy(t, d, sizeof d);
    memcpy(r->v, t, sizeof t);
}

/* A sum of up to MAX_T products of field elements, unreduced: 8 limbs and a carry limb
 * (MAX_T * p^2 < 2^513 for p < 2^254). */
typedef struct { u64 v[9]; } acc;

static inline void acc_mul_add(acc *s, const fe *a, const fe *b) {
    u64 prod[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        u128 c = 0;
        for (int j = 0; j < 4; j++) {
            c = (u128)a->v[i] * b->v[j] + prod[i + j] + (u64)(c >> 64);
            prod[i + j] = (u64)c;
        }
        prod[i + 4] = (u64)(c >> 64);
    }
    u128 c = 0;
    for (int k = 0; k < 8; k++) {
        c = (u128)s->v[k] + prod[k] + (u64)(c >> 64);
        s->v[k] = (u64)c;
    }
    s->v[8] += (u64)(c >> 64);
}

/* r = s / R mod p (Montgomery reduction of the wide sum, then the few subtractions it needs:
 * s / R < MAX_T * p / 4 + p) */
static inline void acc_reduce(fe *r, const acc *s) {
    const u64 p[4] = {F.p.v[0], F.p.v[1], F.p.v[2], F.p.v[3]};
    const u64 n0 = F.n0;
    u64 t[9];
    memcpy(t, s->v, sizeof t);
    for (int i = 0; i < 4; i++) {
        u64 m = t[i] * n0;
        u128 c = (u128)m * p[0] + t[i];
        for (int j = 1; j < 4; j++) {
            c = (u128)m * p[j] + t[i + j] + (u64)(c >> 64);
            t[i + j] = (u64)c;
        }
        for (int k = i + 4; k < 9 && (c >> 64); k++) {
            c = (u128)t[k] + (u64)(c >> 64);
            t[k] = (u64)c;
        }
    }
    u64 *x = t + 4;  /* 5 limbs */
    while (x[4] || geq(x, p)) {
        x[4] -= sub_raw(x, x, p);
    }
    memcpy(r->v, x, 4 * sizeof(u64));
}

/* r = a^2 / R mod p: the cross products once and doubled (10 limb products, not 16) */
static inline void mont_sqr(fe *r, const fe *a) {
    const u64 *x = a->v;
    acc s;
    u64 *w = s.v;
    /* cross products x_i * x_j, i < j */
    u128 c;
    c = (u128)x[0] * x[1]; w[1] = (u64)c;
    c = (u128)x[0] * x[2] + (u64)(c >> 64); w[2] = (u64)c;
    c = (u128)x[0] * x[3] + (u64)(c >> 64); w[3] = (u64)c;
    w[4] = (u64)(c >> 64);
    c = (u128)x[1] * x[2] + w[3]; w[3] = (u64)c;
    c = (u128)x[1] * x[3] + w[4] + (u64)(c >> 64); w[4] = (u64)c;
    w[5] = (u64)(c >> 64);
    c = (u128)x[2] * x[3] + w[5]; w[5] = (u64)c;
    w[6] = (u64)(c >> 64);
    /* doubled */
    w[7] = w[6] >> 63;
    for (int k = 6; k > 1; k--) w[k] = (w[k] << 1) | (w[k - 1] >> 63);
    w[1] <<= 1;
    /* plus the squares x_i^2 at limb 2i */
    w[0] = 0;
    c = 0;
    for (int i = 0; i < 4; i++) {
        u128 sq = (u128)x[i] * x[i];
        c = (u128)w[2 * i] + (u64)sq + (u64)(c >> 64);
        w[2 * i] = (u64)c;
        c = (u128)w[2 * i + 1] + (u64)(sq >> 64) + (u64)(c >> 64);
        w[2 * i + 1] = (u64)c;
    }
    w[8] = 0;
    acc_reduce(r, &s);
}

static inline void sbox(fe *r, const fe *x) {
    fe x2, x4;
    mont_sqr(&x2, x);
    mont_sqr(&x4, &x2);
    mont_mul(r, &x4, x);
}

/* new[i] = sum_j cols[i * t + j] * x[j] */
static inline void mix(fe *out, const fe *x, const fe *cols, int t) {
    for (int i = 0; i < t; i++) {
        acc s;
        memset(&s, 0, sizeof s);
        for (int j = 0; j < t; j++) acc_mul_add(&s, &cols[i * t + j], &x[j]);
        acc_reduce(&out[i], &s);
    }
}

/* poseidon_opt.js (verifier/poseidon.py's poseidon_optimized), on a Montgomery-form state of width t */
static void permute_hash(fe *out, fe *state, const width *w) {
    const int t = w->t, half = w->n_rounds_f / 2;
    const fe *C = w->c, *S = w->s;
    fe b[MAX_T];
    for (int i = 0; i < t; i++) add_mod(&state[i], &state[i], &C[i]);
    for (int rnd = 0; rnd < half - 1; rnd++) {
        for (int i = 0; i < t; i++) {
            sbox(&b[i], &state[i]);
            add_mod(&b[i], &b[i], &C[(rnd + 1) * t + i]);
        }
        mix(state, b, w->mcol, t);
    }
    for (int i = 0; i < t; i++) {
        sbox(&b[i], &state[i]);
        add_mod(&b[i], &b[i], &C[half * t + i]);
    }
    mix(state, b, w->pcol, t);
    int base = (half + 1) * t;
    for (int rnd = 0; rnd < w->n_rounds_p; rnd++) {
        fe s0, prod;
        sbox(&s0, &state[0]);
        add_mod(&s0, &s0, &C[base + rnd]);
        const fe *row = S + (size_t)(2 * t - 1) * rnd;
        acc s;
        memset(&s, 0, sizeof s);
        acc_mul_add(&s, &row[0], &s0);
        for (int j = 1; j < t; j++) acc_mul_add(&s, &row[j], &state[j]);
        for (int j = 1; j < t; j++) {
            mont_mul(&prod, &s0, &row[t + j - 1]);
            add_mod(&state[j], &state[j], &prod);
        }
        acc_reduce(&state[0], &s);
    }
    base += w->n_rounds_p;
    for (int rnd = 0; rnd < half - 1; rnd++) {
        for (int i = 0; i < t; i++) {
            sbox(&b[i], &state[i]);
            add_mod(&b[i], &b[i], &C[base + rnd * t + i]);
        }
        mix(state, b, w->mcol, t);
    }
    for (int i = 0; i < t; i++) sbox(&b[i], &state[i]);
    acc s;
    memset(&s, 0, sizeof s);
    for (int j = 0; j < t; j++) acc_mul_add(&s, &w->mcol[j], &b[j]);
    acc_reduce(out, &s);
}

/* ---- ints in and out ---- */

#if PY_VERSION_HEX >= 0x030D0000
static int long_to_le32(PyObject *x, unsigned char *bytes) {
    Py_ssize_t n = PyLong_AsNativeBytes(x, bytes, 32, Py_ASNATIVEBYTES_LITTLE_ENDIAN | Py_ASNATIVEBYTES_UNSIGNED_BUFFER | Py_ASNATIVEBYTES_REJECT_NEGATIVE);
    if (n < 0) return -1;
    return n > 32 ? 1 : 0;
}
static PyObject *long_from_le32(const unsigned char *bytes) {
    return PyLong_FromUnsignedNativeBytes(bytes, 32, Py_ASNATIVEBYTES_LITTLE_ENDIAN);
}
#else
/* 0: converted; 1: does not fit in 256 bits; -1: a Python error is set */
static int long_to_le32(PyObject *x, unsigned char *bytes) {
    if (_PyLong_AsByteArray((PyLongObject *)x, bytes, 32, 1, 0) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return -1;
        PyErr_Clear();
        return 1;
    }
    return 0;
}
static PyObject *long_from_le32(const unsigned char *bytes) {
    return _PyLong_FromByteArray(bytes, 32, 1, 0);
}
#endif

static void le32_to_fe(fe *r, const unsigned char *bytes) {
    for (int i = 0; i < 4; i++) {
        u64 limb = 0;
        for (int k = 7; k >= 0; k--) limb = (limb << 8) | bytes[8 * i + k];
        r->v[i] = limb;
    }
}

static void fe_to_le32(unsigned char *bytes, const fe *a) {
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < 8; k++) bytes[8 * i + k] = (unsigned char)(a->v[i] >> (8 * k));
    }
}

/* the plain field element x (an int in [0, p)) as a plain fe; what = "input" or a table's name */
static int to_field(PyObject *x, Py_ssize_t index, const char *what, fe *r) {
    unsigned char bytes[32];
    /* bool is an int subclass, but True as a field element is almost surely a mistake */
    if (!PyLong_Check(x) || PyBool_Check(x)) {
        PyErr_Format(PyExc_ValueError, "Poseidon %s %zd must be an int, got %s", what, index, Py_TYPE(x)->tp_name);
        return -1;
    }
    int sign = _PyLong_Sign(x);
    int status = sign < 0 ? 1 : long_to_le32(x, bytes);
    if (status < 0) return -1;
    if (status == 0) le32_to_fe(r, bytes);
    /* no silent reduction: two different ints must not hash alike */
    if (status == 1 || geq(r->v, F.p.v)) {
        PyErr_Format(PyExc_ValueError, "Poseidon %s %zd = %S is not a field element: it must be in [0, r), r = %S", what, index, x, modulus_obj);
        return -1;
    }
    return 0;
}

static void to_mont(fe *r, const fe *a) { mont_mul(r, a, &F.r2); }

/* ---- hashing ---- */

static PyObject *hash_sequence(PyObject *inputs) {
    /* a list or tuple only: a set's order is arbitrary, a str or bytes would be read as characters
     * or small ints (verifier.poseidon passes any other Sequence as a tuple) */
    if (!PyList_Check(inputs) && !PyTuple_Check(inputs)) {
        PyErr_Format(PyExc_ValueError, "Poseidon inputs must be a list or tuple of ints, got %s", Py_TYPE(inputs)->tp_name);
        return NULL;
    }
    PyObject *seq = inputs;
    Py_INCREF(seq);
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    /* circomlib defines Poseidon for 1..16 inputs */
    if (n < 1 || n > MAX_INPUTS) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "Poseidon takes 1 to %d inputs, got %zd", MAX_INPUTS, n);
        return NULL;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    fe state[MAX_T], plain, out;
    memset(&state[0], 0, sizeof(fe));
    for (Py_ssize_t i = 0; i < n; i++) {
        if (to_field(items[i], i, "input", &plain) < 0) {
            Py_DECREF(seq);
            return NULL;
        }
        to_mont(&state[i + 1], &plain);
    }
    Py_DECREF(seq);
    permute_hash(&out, state, &F.w[n + 1]);
    mont_mul(&out, &out, &F.one);
    unsigned char bytes[32];
    fe_to_le32(bytes, &out);
    return long_from_le32(bytes);
}

static int check_ready(void) {
    if (!F.ready) {
        PyErr_SetString(PyExc_RuntimeError, "verifier._poseidon.init has not been called (verifier.poseidon calls it on import)");
        return -1;
    }
    return 0;
}

static PyObject *py_hash(PyObject *self, PyObject *inputs) {
    if (check_ready() < 0) return NULL;
    return hash_sequence(inputs);
}

static PyObject *py_hash_many(PyObject *self, PyObject *batch) {
    if (check_ready() < 0) return NULL;
    PyObject *seq = PySequence_Fast(batch, "hash_many takes a sequence of input sequences");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *h = hash_sequence(PySequence_Fast_GET_ITEM(seq, i));
        if (h == NULL) {
            Py_DECREF(seq);
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, h);
    }
    Py_DECREF(seq);
    return out;
}

/* ---- init ---- */

static void free_width(width *w) {
    free(w->c);
    free(w->s);
    free(w->mcol);
    free(w->pcol);
    memset(w, 0, sizeof *w);
}

/* `count` field elements of the sequence `obj` into a new array, in Montgomery form */
static fe *read_table(PyObject *obj, Py_ssize_t count, const char *name, int t) {
    PyObject *seq = PySequence_Fast(obj, "a Poseidon table must be a sequence of ints");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n != count) {
        PyErr_Format(PyExc_ValueError, "t=%d: %s has %zd constants, expected %zd", t, name, n, count);
        Py_DECREF(seq);
        return NULL;
    }
    fe *table = malloc(sizeof(fe) * (count ? count : 1));
    if (table == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        fe plain;
        if (to_field(PySequence_Fast_GET_ITEM(seq, i), i, name, &plain) < 0) {
            free(table);
            Py_DECREF(seq);
            return NULL;
        }
        to_mont(&table[i], &plain);
    }
    Py_DECREF(seq);
    return table;
}

/* a t x t matrix given as t rows, stored transposed (column i contiguous) */
static fe *read_columns(PyObject *obj, const char *name, int t) {
    PyObject *rows = PySequence_Fast(obj, "a Poseidon matrix must be a sequence of rows");
    if (rows == NULL) return NULL;
    if (PySequence_Fast_GET_SIZE(rows) != t) {
        PyErr_Format(PyExc_ValueError, "t=%d: %s is not a %dx%d matrix", t, name, t, t);
        Py_DECREF(rows);
        return NULL;
    }
    fe *cols = malloc(sizeof(fe) * t * t);
    if (cols == NULL) {
        Py_DECREF(rows);
        PyErr_NoMemory();
        return NULL;
    }
    for (int j = 0; j < t; j++) {
        fe *row = read_table(PySequence_Fast_GET_ITEM(rows, j), t, name, t);
        if (row == NULL) {
            free(cols);
            Py_DECREF(rows);
            return NULL;
        }
        for (int i = 0; i < t; i++) cols[i * t + j] = row[i];
        free(row);
    }
    Py_DECREF(rows);
    return cols;
}

/* -p^-1 mod 2^64 by Newton's iteration (each step doubles the correct low bits) */
static u64 neg_inverse(u64 p0) {
    u64 inv = 1;
    for (int i = 0; i < 7; i++) inv *= 2 - p0 * inv;
    return (u64)0 - inv;
}

static PyObject *py_init(PyObject *self, PyObject *args) {
    PyObject *modulus, *widths;
    if (!PyArg_ParseTuple(args, "OO:init", &modulus, &widths)) return NULL;
    unsigned char bytes[32];
    int status = PyLong_Check(modulus) && _PyLong_Sign(modulus) > 0 ? long_to_le32(modulus, bytes) : 1;
    if (status < 0) return NULL;
    fe p;
    if (status == 0) le32_to_fe(&p, bytes);
    /* odd (Montgomery form needs p^-1 mod 2^64), above 2^192 (four limbs used), below 2^254
     * (sums of two elements and of MAX_T products have room in the limbs) */
    if (status == 1 || !(p.v[0] & 1) || p.v[3] == 0 || (p.v[3] >> 62) != 0) {
        PyErr_SetString(PyExc_ValueError, "the modulus must be an odd int in (2^192, 2^254)");
        return NULL;
    }
    /* the new tables are read with the new field, the old ones kept until all of them are read */
    field_state old = F;
    PyObject *old_modulus = modulus_obj;
    Py_INCREF(modulus);
    modulus_obj = modulus;
    memset(&F, 0, sizeof F);
    F.p = p;
    F.n0 = neg_inverse(p.v[0]);
    F.one.v[0] = 1;
    /* 2^512 mod p by doubling 1 512 times (p < 2^254: no carry out of 4 limbs) */
    fe r2 = {{1, 0, 0, 0}};
    for (int i = 0; i < 512; i++) add_mod(&r2, &r2, &r2);
    F.r2 = r2;

    PyObject *seq = PySequence_Fast(widths, "init takes a sequence of (t, n_rounds_f, n_rounds_p, C, S, M, P) tuples");
    if (seq == NULL) goto fail;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t k = 0; k < n; k++) {
        int t, n_f, n_p;
        PyObject *c, *s, *m, *pm;
        PyObject *item = PySequence_Fast_GET_ITEM(seq, k);
        if (!PyTuple_Check(item)) {
            PyErr_Format(PyExc_ValueError, "width %zd must be a tuple (t, n_rounds_f, n_rounds_p, C, S, M, P), got %s", k, Py_TYPE(item)->tp_name);
            goto fail_seq;
        }
        if (!PyArg_ParseTuple(item, "iiiOOOO:init width", &t, &n_f, &n_p, &c, &s, &m, &pm)) goto fail_seq;
        /* the widths circomlib defines, each once, with halves of full rounds around the partial ones */
        if (t < 2 || t > MAX_T || F.w[t].t != 0 || n_f < 2 || n_f % 2 != 0 || n_p < 0) {
            PyErr_Format(PyExc_ValueError, "width %zd: t=%d, n_rounds_f=%d, n_rounds_p=%d is not a width this module takes", k, t, n_f, n_p);
            goto fail_seq;
        }
        width *w = &F.w[t];
        w->t = t;
        w->n_rounds_f = n_f;
        w->n_rounds_p = n_p;
        if ((w->c = read_table(c, (Py_ssize_t)n_f * t + n_p, "C", t)) == NULL) goto fail_seq;
        if ((w->s = read_table(s, (Py_ssize_t)(2 * t - 1) * n_p, "S", t)) == NULL) goto fail_seq;
        if ((w->mcol = read_columns(m, "M", t)) == NULL) goto fail_seq;
        if ((w->pcol = read_columns(pm, "P", t)) == NULL) goto fail_seq;
    }
    Py_DECREF(seq);
    for (int t = 2; t <= MAX_T; t++) {
        /* every input count 1..16 has its width */
        if (F.w[t].t == 0) {
            PyErr_Format(PyExc_ValueError, "no constants for t=%d", t);
            goto fail;
        }
    }
    F.ready = 1;
    for (int t = 0; t <= MAX_T; t++) free_width(&old.w[t]);
    Py_XDECREF(old_modulus);
    Py_RETURN_NONE;

fail_seq:
    Py_DECREF(seq);
fail:
    for (int t = 0; t <= MAX_T; t++) free_width(&F.w[t]);
    F = old;
    Py_DECREF(modulus_obj);
    modulus_obj = old_modulus;
    return NULL;
}

static PyMethodDef methods[] = {
    {"init", py_init, METH_VARARGS,
     "init(modulus, widths): the field and, per width, (t, n_rounds_f, n_rounds_p, C, S, M, P) as "
     "circomlibjs's poseidon_opt.js indexes them (M and P as lists of rows). Replaces any earlier tables."},
    {"hash", py_hash, METH_O, "hash(inputs) -> int: Poseidon of 1..16 ints in [0, p) (ValueError otherwise)."},
    {"hash_many", py_hash_many, METH_O, "hash_many(list of input sequences) -> list of ints, as hash on each."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "verifier._poseidon",
    "circomlib's Poseidon (circomlibjs poseidon_opt.js) in C; constants from verifier.poseidon via init().",
    -1, methods,
};

PyMODINIT_FUNC PyInit__poseidon(void) { return PyModule_Create(&module); }
