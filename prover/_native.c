/* prover._native: the QAP's NTTs over a 4x64-bit prime field, and fixed-base batches through mcl.
 *
 * Hand-written because PyPI has no NTT over BN254's scalar field (docs/backends.md). Optional: if it
 * does not build, prover/native.py reports it missing and the pure-Python code runs instead.
 *
 * No curve constant is typed here: the moduli, Montgomery constants, roots of unity and mcl's
 * function addresses all come from the Python side (py_ecc's values, prover/qap.py's domain).
 * Field elements cross the boundary as 32-byte little-endian canonical integers; inside they are
 * in Montgomery form (R = 2^256), the form mcl also uses.
 *
 * Both entry points release the GIL, so they can run beside other threads (mcl's MSMs via ctypes).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;
typedef struct { uint64_t v[4]; } fe;
typedef struct {
    fe p;        /* the modulus, < 2^255 */
    uint64_t n0; /* -p^-1 mod 2^64 */
    fe r2;       /* 2^512 mod p: to Montgomery form */
} field;

static int geq(const fe *a, const fe *b) {
    for (int i = 3; i >= 0; i--) {
        if (a->v[i] != b->v[i]) return a->v[i] > b->v[i];
    }
    return 1;
}

static void sub_raw(fe *r, const fe *a, const fe *b) {
    uint64_t borrow = 0;
    for (int i = 0; i < 4; i++) {
        u128 d = (u128)a->v[i] - b->v[i] - borrow;
        r->v[i] = (uint64_t)d;
        borrow = (uint64_t)(d >> 64) & 1;
    }
}

static inline void f_add(fe *r, const fe *a, const fe *b, const field *f) {
    uint64_t carry = 0;
    fe s;
    for (int i = 0; i < 4; i++) {
        u128 t = (u128)a->v[i] + b->v[i] + carry;
        s.v[i] = (uint64_t)t;
        carry = (uint64_t)(t >> 64);
    }
    /* p < 2^255, so a + b < 2^256: no carry out of the top limb */
    if (geq(&s, &f->p)) sub_raw(&s, &s, &f->p);
    *r = s;
}

static inline void f_sub(fe *r, const fe *a, const fe *b, const field *f) {
    uint64_t borrow = 0;
    fe s;
    for (int i = 0; i < 4; i++) {
        u128 d = (u128)a->v[i] - b->v[i] - borrow;
        s.v[i] = (uint64_t)d;
        borrow = (uint64_t)(d >> 64) & 1;
    }
    if (borrow) {
        uint64_t carry = 0;
        for (int i = 0; i < 4; i++) {
            u128 t = (u128)s.v[i] + f->p.v[i] + carry;
            s.v[i] = (uint64_t)t;
            carry = (uint64_t)(t >> 64);
        }
    }
    *r = s;
}

/* Montgomery product a b / 2^256 mod p (CIOS) */
static inline void f_mul(fe *r, const fe *a, const fe *b, const field *f) {
    uint64_t t[6] = {0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        u128 c = 0;
        for (int j = 0; j < 4; j++) {
            c += (u128)a->v[j] * b->v[i] + t[j];
            t[j] = (uint64_t)c;
            c >>= 64;
        }
        c += t[4];
        t[4] = (uint64_t)c;
        t[5] = (uint64_t)(c >> 64);
        uint64_t m = t[0] * f->n0;
        c = ((u128)m * f->p.v[0] + t[0]) >> 64;
        for (int j = 1; j < 4; j++) {
            c += (u128)m * f->p.v[j] + t[j];
            t[j - 1] = (uint64_t)c;
            c >>= 64;
        }
        c += t[4];
        t[3] = (uint64_t)c;
        t[4] = t[5] + (uint64_t)(c >> 64);
    }
    fe s = {{t[0], t[1], t[2], t[3]}};
    if (t[4] || geq(&s, &f->p)) sub_raw(&s, &s, &f->p);
    *r = s;
}

static void load_fe(fe *x, const unsigned char *src) { memcpy(x->v, src, 32); } /* little-endian hosts */
static void store_fe(unsigned char *dst, const fe *x) { memcpy(dst, x->v, 32); }

static void to_mont(fe *r, const fe *a, const field *f) { f_mul(r, a, &f->r2, f); }

static void from_mont(fe *r, const fe *a, const field *f) {
    fe one = {{1, 0, 0, 0}};
    f_mul(r, a, &one, f);
}

/* A field from its modulus and 2^512 mod p (32 bytes each); -1 if the modulus is unusable. */
static int init_field(field *f, const Py_buffer *modulus, const Py_buffer *r2) {
    if (modulus->len != 32 || r2->len != 32) return -1;
    load_fe(&f->p, modulus->buf);
    load_fe(&f->r2, r2->buf);
    /* odd (so invertible mod 2^64) and below 2^255 (so sums fit in four limbs) */
    if (!(f->p.v[0] & 1) || (f->p.v[3] >> 63)) return -1;
    uint64_t inv = 1;
    for (int i = 0; i < 7; i++) inv *= 2 - f->p.v[0] * inv; /* Newton: doubles the correct bits */
    f->n0 = (uint64_t)0 - inv;
    return 0;
}

/* ---- NTT ---- */

static void bit_reverse(fe *a, size_t m, int log_m) {
    for (size_t i = 0; i < m; i++) {
        size_t j = 0;
        for (int b = 0; b < log_m; b++) j |= ((i >> b) & 1) << (log_m - 1 - b);
        if (i < j) {
            fe t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
}

/* In place: evaluations at w^0 .. w^(m-1) of the polynomial with coefficients a (tw[j] = w^j, j < m/2). */
static void ntt(fe *a, size_t m, int log_m, const fe *tw, const field *f) {
    bit_reverse(a, m, log_m);
    for (size_t h = 1; h < m; h <<= 1) {
        size_t step = m / (2 * h);
        for (size_t s = 0; s < m; s += 2 * h) {
            for (size_t j = 0; j < h; j++) {
                fe t, u = a[s + j];
                f_mul(&t, &a[s + j + h], &tw[j * step], f);
                f_add(&a[s + j], &u, &t, f);
                f_sub(&a[s + j + h], &u, &t, f);
            }
        }
    }
}

static void powers(fe *out, size_t n, const fe *x, const fe *one, const field *f) {
    if (n == 0) return;
    out[0] = *one;
    for (size_t i = 1; i < n; i++) f_mul(&out[i], &out[i - 1], x, f);
}

/* qap_h(modulus, r2, a, b, c, log_m, omega, omega_inv, shift, shift_inv, m_inv, z_inv) -> bytes
 *
 * h = (A B - C) / Z from the evaluations of A, B, C on H = <omega> (m = 2^log_m values each):
 * each to coefficients (inverse NTT), to the coset shift*H (NTT of the scaled coefficients), the
 * quotient pointwise (Z is the constant z = shift^m - 1 there: z_inv given), back to coefficients.
 * Returns all m coefficients; the caller checks the last is zero (it is for a satisfying witness).
 */
static PyObject *qap_h(PyObject *self, PyObject *args) {
    Py_buffer mod, r2, in[3], om, om_inv, sh, sh_inv, m_inv_b, z_inv_b;
    int log_m;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*iy*y*y*y*y*y*", &mod, &r2, &in[0], &in[1], &in[2], &log_m, &om, &om_inv,
                          &sh, &sh_inv, &m_inv_b, &z_inv_b))
        return NULL;
    Py_buffer *all[] = {&mod, &r2, &in[0], &in[1], &in[2], &om, &om_inv, &sh, &sh_inv, &m_inv_b, &z_inv_b};
    PyObject *result = NULL;
    field f;
    size_t m = (size_t)1 << (log_m > 0 ? log_m : 0);
    fe *buf = NULL, *tw = NULL, *tw_inv = NULL, *shifts = NULL, *shifts_inv = NULL;
    if (init_field(&f, &mod, &r2) != 0) {
        PyErr_SetString(PyExc_ValueError, "modulus must be odd, below 2^255, 32 bytes (and r2 32 bytes)");
        goto done;
    }
    if (log_m < 1 || log_m > 30) {
        PyErr_SetString(PyExc_ValueError, "log_m must be in [1, 30]");
        goto done;
    }
    for (int k = 0; k < 3; k++) {
        if ((size_t)in[k].len != 32 * m) {
            PyErr_Format(PyExc_ValueError, "each of a, b, c must hold 2^%d 32-byte values", log_m);
            goto done;
        }
    }
    for (int k = 5; k < 11; k++) {
        if (all[k]->len != 32) {
            PyErr_SetString(PyExc_ValueError, "constants must be 32 bytes each");
            goto done;
        }
    }
    buf = malloc(3 * m * sizeof(fe));
    tw = malloc(m / 2 * sizeof(fe));
    tw_inv = malloc(m / 2 * sizeof(fe));
    shifts = malloc(m * sizeof(fe));
    shifts_inv = malloc(m * sizeof(fe));
    if (!buf || !tw || !tw_inv || !shifts || !shifts_inv) {
        PyErr_NoMemory();
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(32 * m));
    if (result == NULL) goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);

    Py_BEGIN_ALLOW_THREADS
    fe one, c_om, c_om_inv, c_sh, c_sh_inv, c_m_inv, c_z_inv, raw;
    fe lit_one = {{1, 0, 0, 0}};
    to_mont(&one, &lit_one, &f);
    const Py_buffer *cb[] = {&om, &om_inv, &sh, &sh_inv, &m_inv_b, &z_inv_b};
    fe *cv[] = {&c_om, &c_om_inv, &c_sh, &c_sh_inv, &c_m_inv, &c_z_inv};
    for (int k = 0; k < 6; k++) {
        load_fe(&raw, cb[k]->buf);
        to_mont(cv[k], &raw, &f);
    }
    powers(tw, m / 2, &c_om, &one, &f);
    powers(tw_inv, m / 2, &c_om_inv, &one, &f);
    /* the inverse NTT's 1/m folded into the coset scaling: shift^i / m */
    powers(shifts, m, &c_sh, &c_m_inv, &f);
    powers(shifts_inv, m, &c_sh_inv, &c_m_inv, &f);
    for (int k = 0; k < 3; k++) {
        fe *a = buf + k * m;
        const unsigned char *src = in[k].buf;
        for (size_t i = 0; i < m; i++) {
            load_fe(&raw, src + 32 * i);
            to_mont(&a[i], &raw, &f);
        }
        ntt(a, m, log_m, tw_inv, &f);                        /* m * coefficients */
        for (size_t i = 0; i < m; i++) f_mul(&a[i], &a[i], &shifts[i], &f);
        ntt(a, m, log_m, tw, &f);                            /* evaluations on shift * H */
    }
    fe *qa = buf, *qb = buf + m, *qc = buf + 2 * m;
    for (size_t i = 0; i < m; i++) {
        fe t;
        f_mul(&t, &qa[i], &qb[i], &f);
        f_sub(&t, &t, &qc[i], &f);
        f_mul(&qa[i], &t, &c_z_inv, &f);
    }
    ntt(qa, m, log_m, tw_inv, &f);
    for (size_t i = 0; i < m; i++) {
        fe t;
        f_mul(&t, &qa[i], &shifts_inv[i], &f);
        from_mont(&t, &t, &f);
        store_fe(out + 32 * i, &t);
    }
    Py_END_ALLOW_THREADS

done:
    free(buf);
    free(tw);
    free(tw_inv);
    free(shifts);
    free(shifts_inv);
    for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++) PyBuffer_Release(all[k]);
    return result;
}

/* ---- fixed-base multiplication through mcl ---- */

typedef void (*point_op2)(void *out, const void *a, const void *b);
typedef void (*point_op1)(void *out, const void *a);
typedef int (*point_pred)(const void *a);

static unsigned window_digit(const unsigned char *scalar, unsigned bit, unsigned w) {
    unsigned d = 0;
    for (unsigned k = 0; k < w; k++) {
        unsigned b = bit + k;
        if (b >= 256) break;
        d |= (unsigned)((scalar[b >> 3] >> (b & 7)) & 1) << k;
    }
    return d;
}

/* fixed_base(add, dbl, normalize, is_zero, point_size, coords, q_modulus, q_r2, base, scalars, bits, window) -> bytes
 *
 * [k * base for k in scalars] as affine coordinates (`coords` canonical 32-byte values per point;
 * all zero for the identity). `base` is one point in mcl's memory form (point_size bytes: 3 * coords
 * / 2 Montgomery Fp values), the functions are mcl's mclBnG{1,2}_{add,dbl,normalize,isZero}, given
 * by address. A table of d * 2^(w j) * base (every w-bit window j, digit d) is built once; each
 * product is then a sum of ceil(bits / w) table points, which mcl adds in mixed coordinates
 * (normalized table entries have z = 1).
 */
static PyObject *fixed_base(PyObject *self, PyObject *args) {
    unsigned long long add_p, dbl_p, norm_p, zero_p;
    Py_ssize_t ps;
    int coords, bits, w;
    Py_buffer qmod, qr2, base, scalars;
    if (!PyArg_ParseTuple(args, "KKKKniy*y*y*y*ii", &add_p, &dbl_p, &norm_p, &zero_p, &ps, &coords, &qmod, &qr2, &base,
                          &scalars, &bits, &w))
        return NULL;
    PyObject *result = NULL;
    unsigned char *table = NULL, *start = NULL, *acc = NULL;
    field fq;
    if (init_field(&fq, &qmod, &qr2) != 0) {
        PyErr_SetString(PyExc_ValueError, "q modulus must be odd, below 2^255, 32 bytes (and r2 32 bytes)");
        goto done;
    }
    if (!add_p || !dbl_p || !norm_p || !zero_p || (coords != 2 && coords != 4) || ps != 32 * coords * 3 / 2 ||
        base.len != ps || scalars.len % 32 != 0 || bits < 1 || bits > 256 || w < 1 || w > 16) {
        PyErr_SetString(PyExc_ValueError, "fixed_base: inconsistent point size, coordinates, scalars or window");
        goto done;
    }
    point_op2 add = (point_op2)(uintptr_t)add_p;
    point_op1 dbl = (point_op1)(uintptr_t)dbl_p, normalize = (point_op1)(uintptr_t)norm_p;
    point_pred is_zero = (point_pred)(uintptr_t)zero_p;
    size_t n = (size_t)scalars.len / 32, size = (size_t)1 << w, windows = ((size_t)bits + w - 1) / w;
    table = malloc(windows * size * (size_t)ps);
    start = malloc((size_t)ps);
    acc = malloc((size_t)ps);
    if (!table || !start || !acc) {
        PyErr_NoMemory();
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 32 * coords));
    if (result == NULL) goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);

    Py_BEGIN_ALLOW_THREADS
    memcpy(start, base.buf, (size_t)ps);
    for (size_t j = 0; j < windows; j++) {
        unsigned char *row = table + j * size * (size_t)ps;
        memcpy(row + (size_t)ps, start, (size_t)ps);
        for (size_t d = 2; d < size; d++) add(row + d * ps, row + (d - 1) * ps, start);
        for (size_t d = 1; d < size; d++) normalize(row + d * ps, row + d * ps);
        for (int k = 0; k < w; k++) dbl(start, start);
    }
    const unsigned char *sc = scalars.buf;
    for (size_t i = 0; i < n; i++) {
        int empty = 1;
        for (size_t j = 0; j < windows; j++) {
            unsigned d = window_digit(sc + 32 * i, (unsigned)(j * w), (unsigned)w);
            if (!d) continue;
            const unsigned char *entry = table + (j * size + d) * (size_t)ps;
            if (empty) memcpy(acc, entry, (size_t)ps);
            else add(acc, acc, entry);
            empty = 0;
        }
        unsigned char *dst = out + i * 32 * (size_t)coords;
        if (!empty) normalize(acc, acc);
        if (empty || is_zero(acc)) {
            memset(dst, 0, 32 * (size_t)coords);
            continue;
        }
        /* mcl's point: x then y (each coords / 2 Montgomery values), then z */
        for (int k = 0; k < coords; k++) {
            fe x;
            load_fe(&x, acc + 32 * k);
            from_mont(&x, &x, &fq);
            store_fe(dst + 32 * k, &x);
        }
    }
    Py_END_ALLOW_THREADS

done:
    free(table);
    free(start);
    free(acc);
    PyBuffer_Release(&qmod);
    PyBuffer_Release(&qr2);
    PyBuffer_Release(&base);
    PyBuffer_Release(&scalars);
    return result;
}

/* y^2 == x^3 + b over Fq (coords 2: x, y, b in Fq) or Fq2 (coords 4: c0 + c1 u, u^2 = -1); Montgomery form. */
static int on_curve(const fe *c, const fe *b, int coords, const field *f) {
    if (coords == 2) {
        fe y2, x3;
        f_mul(&y2, &c[1], &c[1], f);
        f_mul(&x3, &c[0], &c[0], f);
        f_mul(&x3, &x3, &c[0], f);
        f_add(&x3, &x3, &b[0], f);
        return memcmp(&y2, &x3, sizeof(fe)) == 0;
    }
    /* Fq2 product (a0 + a1 u)(b0 + b1 u) = (a0 b0 - a1 b1) + (a0 b1 + a1 b0) u */
    fe t0, t1, t2, y2[2], x2[2], x3[2];
    const fe *x = c, *y = c + 2;
    f_mul(&t0, &y[0], &y[0], f); f_mul(&t1, &y[1], &y[1], f); f_sub(&y2[0], &t0, &t1, f);
    f_mul(&t2, &y[0], &y[1], f); f_add(&y2[1], &t2, &t2, f);
    f_mul(&t0, &x[0], &x[0], f); f_mul(&t1, &x[1], &x[1], f); f_sub(&x2[0], &t0, &t1, f);
    f_mul(&t2, &x[0], &x[1], f); f_add(&x2[1], &t2, &t2, f);
    f_mul(&t0, &x2[0], &x[0], f); f_mul(&t1, &x2[1], &x[1], f); f_sub(&x3[0], &t0, &t1, f);
    f_mul(&t0, &x2[0], &x[1], f); f_mul(&t1, &x2[1], &x[0], f); f_add(&x3[1], &t0, &t1, f);
    f_add(&x3[0], &x3[0], &b[0], f);
    f_add(&x3[1], &x3[1], &b[1], f);
    return memcmp(&y2[0], &x3[0], sizeof(fe)) == 0 && memcmp(&y2[1], &x3[1], sizeof(fe)) == 0;
}

/* load_points(coords, q_modulus, q_r2, b, data, out) -> int
 *
 * Points of a proving-key file section (`coords` 32-byte big-endian canonical values each; all zero
 * for the identity) written into `out` in mcl's memory form (x, y in Montgomery form, z = 1; the
 * identity all zero). Each coordinate must be below q and each point on the curve y^2 = x^3 + b
 * (`b`: coords / 2 canonical 32-byte little-endian values). Returns -1, or the index of the first
 * invalid point.
 */
static PyObject *load_points(PyObject *self, PyObject *args) {
    int coords;
    Py_buffer qmod, qr2, bbuf, data, outb;
    if (!PyArg_ParseTuple(args, "iy*y*y*y*w*", &coords, &qmod, &qr2, &bbuf, &data, &outb)) return NULL;
    PyObject *result = NULL;
    field fq;
    size_t ps = 32 * (size_t)coords * 3 / 2, width = 32 * (size_t)coords;
    if (init_field(&fq, &qmod, &qr2) != 0 || (coords != 2 && coords != 4) || (size_t)bbuf.len != 16 * (size_t)coords ||
        data.len % width != 0 || (size_t)outb.len != (size_t)data.len / width * ps) {
        PyErr_SetString(PyExc_ValueError, "load_points: inconsistent modulus, coordinates, b or buffer sizes");
        goto done;
    }
    size_t n = (size_t)data.len / width;
    long long bad = -1;
    Py_BEGIN_ALLOW_THREADS
    const unsigned char *src = data.buf;
    unsigned char *dst = outb.buf;
    fe one, b[2], lit_one = {{1, 0, 0, 0}};
    to_mont(&one, &lit_one, &fq);
    for (int k = 0; k < coords / 2; k++) {
        load_fe(&b[k], (const unsigned char *)bbuf.buf + 32 * k);
        to_mont(&b[k], &b[k], &fq);
    }
    for (size_t i = 0; i < n && bad < 0; i++) {
        const unsigned char *p = src + i * width;
        unsigned char *q = dst + i * ps;
        fe c[4];
        int zero = 1;
        for (size_t k = 0; k < width; k++) {
            if (p[k]) {
                zero = 0;
                break;
            }
        }
        memset(q, 0, ps);
        if (zero) continue;
        for (int k = 0; k < coords; k++) {
            for (int limb = 0; limb < 4; limb++) {
                uint64_t v = 0;
                for (int byte = 0; byte < 8; byte++) v = (v << 8) | p[32 * k + 8 * (3 - limb) + byte];
                c[k].v[limb] = v;
            }
            if (geq(&c[k], &fq.p)) bad = (long long)i;
            to_mont(&c[k], &c[k], &fq);
        }
        if (bad >= 0 || !on_curve(c, b, coords, &fq)) {
            bad = (long long)i;
            break;
        }
        for (int k = 0; k < coords; k++) store_fe(q + 32 * k, &c[k]);
        store_fe(q + 32 * coords, &one); /* z = 1 (G2: the real part; the imaginary part stays 0) */
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromLongLong(bad);
done:
    PyBuffer_Release(&qmod);
    PyBuffer_Release(&qr2);
    PyBuffer_Release(&bbuf);
    PyBuffer_Release(&data);
    PyBuffer_Release(&outb);
    return result;
}

static PyMethodDef methods[] = {
    {"load_points", load_points, METH_VARARGS, "A key file's point section into mcl's memory form, validated."},
    {"qap_h", qap_h, METH_VARARGS, "h = (A B - C) / Z from evaluations on a radix-2 domain (7 NTTs)."},
    {"fixed_base", fixed_base, METH_VARARGS, "k * base for many k, through mcl's point functions."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", "NTTs and fixed-base batches (prover/native.py).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
