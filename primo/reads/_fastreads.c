/*
 * primo.reads._fastreads -- the common case of `primo analyze` in compiled code.
 *
 * Two functions, both working on a chunk of FASTQ held in one byte buffer:
 *
 *   parse_fastq(data, starts, lens) -> (n_records, last_header_start)
 *       Record offsets of well-formed 4-line FASTQ. Returns n_records = -1 for anything unusual
 *       (the Python parser then reports the problem with dnaio's message) and -2 when the output
 *       arrays are too small.
 *
 *   assign(data, starts, lens, position, code, ip, rcip, fp, rcfp, sym10, codebook, syn,
 *          rs_status, rs_corr, pool_words, row_by_rank, ints) -> number of reads decided
 *       Places the reads whose IP is found at (or, with mismatches, near) its expected offset in
 *       exactly one orientation and whose barcode decodes by plain Reed-Solomon (exact, one error
 *       or erasures) to a pool document within the distance rules of
 *       primo.barcodes.decode.BarcodeDecoder. Everything else gets code 0 and is handed back to
 *       the vectorised numpy implementation (primo.reads.ReadAssigner), which handles
 *       every case; for the reads decided here both give the same answer (tests check this).
 *
 * The tables come from primo.barcodes.decode (rs_tables, PoolTable); nothing here is specific to
 * one pool or codebook. No Python objects are touched between the argument parsing and the
 * return, so the GIL is released while a chunk is processed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static uint8_t CANON[256];  /* byte -> A C G T (either case) upper case, anything else N */
static uint8_t COMP[256];   /* byte -> complement (either case), anything else N */
static uint8_t CODE2[256];  /* canonical base -> 0..3, N -> 4 */

static void init_tables(void) {
    memset(CANON, 'N', 256);
    memset(COMP, 'N', 256);
    memset(CODE2, 4, 256);
    const char *b = "ACGT", *c = "TGCA";
    for (int i = 0; i < 4; i++) {
        CANON[(uint8_t)b[i]] = b[i];
        CANON[(uint8_t)b[i] + 32] = b[i];
        COMP[(uint8_t)b[i]] = c[i];
        COMP[(uint8_t)b[i] + 32] = c[i];
        CODE2[(uint8_t)b[i]] = (uint8_t)i;
    }
}

/* ---------------------------------------------------------------------------------------------
 * FASTQ records
 * ------------------------------------------------------------------------------------------- */
static PyObject *parse_fastq(PyObject *self, PyObject *args) {
    Py_buffer data, bs, bl;
    if (!PyArg_ParseTuple(args, "y*w*w*", &data, &bs, &bl)) return NULL;
    const uint8_t *a = (const uint8_t *)data.buf;
    Py_ssize_t len = data.len;
    int64_t *starts = (int64_t *)bs.buf, *lens = (int64_t *)bl.buf;
    Py_ssize_t cap = bs.len / 8 < bl.len / 8 ? bs.len / 8 : bl.len / 8;
    Py_ssize_t n = 0, p = 0, last = -1;
    Py_BEGIN_ALLOW_THREADS
    if (len > 0 && a[0] != '@') n = -1;
    while (n >= 0 && p < len) {
        if (a[p] != '@') { n = -1; break; }
        const uint8_t *e1 = memchr(a + p, '\n', len - p);
        if (!e1) { n = -1; break; }
        Py_ssize_t s0 = e1 - a + 1;
        const uint8_t *e2 = s0 < len ? memchr(a + s0, '\n', len - s0) : NULL;
        if (!e2) { n = -1; break; }
        Py_ssize_t s1 = e2 - a;
        if (s1 + 1 >= len || a[s1 + 1] != '+') { n = -1; break; }
        const uint8_t *e3 = memchr(a + s1 + 1, '\n', len - s1 - 1);
        if (!e3) { n = -1; break; }
        Py_ssize_t q0 = e3 - a + 1;
        const uint8_t *e4 = q0 < len ? memchr(a + q0, '\n', len - q0) : NULL;
        Py_ssize_t q1 = e4 ? e4 - a : len;   /* the last line may lack its newline */
        if (s1 - s0 != q1 - q0) { n = -1; break; }
        if ((s1 > s0 && a[s1 - 1] == '\r') || (q1 > q0 && a[q1 - 1] == '\r')) { n = -1; break; }
        if (n >= cap) { n = -2; break; }
        starts[n] = s0;
        lens[n] = s1 - s0;
        last = p;
        n++;
        p = q1 + 1;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyBuffer_Release(&bs);
    PyBuffer_Release(&bl);
    return Py_BuildValue("nn", n, last);
}

/* ---------------------------------------------------------------------------------------------
 * reads -> documents
 * ------------------------------------------------------------------------------------------- */
typedef struct {
    const uint8_t *ip, *rcip, *fp, *rcfp;
    int li, ef, er, shift, max_mm, cap;
    int lf, efp, erp, fp_anchor;   /* FP length, its offsets (forward / reverse), stage d on */
    const uint8_t *sym10;      /* 1024: 5-mer (2 bits per base) -> symbol, 64 = not a word */
    const uint8_t *cb;         /* 64 x 5: codebook words (ASCII) */
    const uint16_t *syn;       /* 6 x syn_stride: syndrome contribution of a symbol */
    Py_ssize_t syn_stride;
    const uint8_t *rs_status;  /* 64 * 4096 */
    const uint8_t *rs_corr;    /* 64 * 4096 x 6 */
    const uint64_t *words;     /* 2^18 x 2: pool membership bitmap over the 2^24 IDs (64 IDs per
                                * word), each word followed by the members in the words before:
                                * one cache line holds both */
    const int32_t *row;        /* rank of a member ID -> pool row (-1: none) */
    Py_ssize_t n_row;
} Params;

enum { H_EXACT = 1, H_CORRECTED = 2 };
/* code of a read: bit 0 decided, bit 1 strand, bits 2-4 IP stage, bits 5-6 how, bit 7 no IP */
#define NO_IP 0x80
#define RS_ACCEPTED 4   /* rs_status codes below this are answers (exact / corrected) */

static inline uint32_t word_id(const uint8_t *cw) {
    return (uint32_t)cw[0] | (uint32_t)cw[1] << 6 | (uint32_t)cw[2] << 12 | (uint32_t)cw[3] << 18;
}

/* bases in which a received 5-mer differs from codebook word v (N differs from everything) */
static inline int dist5(const Params *P, const uint8_t *b, unsigned v) {
    const uint8_t *w = P->cb + 5 * v;
    return (b[0] != w[0]) + (b[1] != w[1]) + (b[2] != w[2]) + (b[3] != w[3]) + (b[4] != w[4]);
}

static inline int member(const Params *P, uint32_t id) {
    return (int)((P->words[2 * (id >> 6)] >> (id & 63)) & 1);
}

/* contribution of symbol v at position p to the ID (check positions 4, 5 contribute nothing) */
static inline uint32_t shifted(unsigned v, int p) { return p < 4 ? (uint32_t)v << (6 * p) : 0; }

/* The decoder's pool rule (BarcodeDecoder._resolve) for one barcode with 0, 1 or 3 erasures whose
 * plain answer was not accepted at once: the pool codewords that keep min(4, 6 - f) readable
 * symbols, the closest accepted when unique and within the cap. 1 and the ID when accepted, 0
 * otherwise (the vectorised decoder then says why). */
static int pool_rule(const Params *P, const uint8_t *bc, const uint8_t *sym, unsigned em,
                     unsigned S, unsigned nN, uint32_t *out) {
    static const int PAIRS[15][2] = {{0, 1}, {0, 2}, {0, 3}, {0, 4}, {0, 5}, {1, 2}, {1, 3},
                                     {1, 4}, {1, 5}, {2, 3}, {2, 4}, {2, 5}, {3, 4}, {3, 5},
                                     {4, 5}};
    uint8_t w[6];
    for (int i = 0; i < 6; i++) w[i] = sym[i] < 64 ? sym[i] : 0;
    uint32_t idw = word_id(w);
    int f = __builtin_popcount(em);
    int e1 = em ? __builtin_ctz(em) : 0;
    unsigned em2 = em & (em - 1);
    int e2 = em2 ? __builtin_ctz(em2) : 0;
    unsigned em3 = em2 & (em2 - 1);
    int e3 = em3 ? __builtin_ctz(em3) : 0;
    int K = f == 0 ? 15 : f == 1 ? 6 : 64;
    int best = 1 << 30;
    uint32_t hi = 0, lo = 0xffffffffu;
    for (int k = 0; k < K; k++) {
        int p, q, v = -1;
        if (f == 0) { p = PAIRS[k][0]; q = PAIRS[k][1]; }
        else if (f == 1) { p = e1; q = k; if (q == e1) continue; }
        else { p = e2; q = e3; v = k; }
        unsigned mask = em | 1u << p | 1u << q;
        unsigned Sc = S ^ P->syn[p * P->syn_stride + w[p]] ^ P->syn[q * P->syn_stride + w[q]];
        uint32_t idk = idw;
        int dk = 0;
        if (v >= 0) {
            Sc ^= P->syn[e1 * P->syn_stride + v];
            mask &= ~(1u << e1);
            idk ^= shifted((unsigned)v, e1);
            dk = dist5(P, bc + 5 * e1, (unsigned)v);
        }
        size_t ri = (size_t)mask * 4096 + Sc;
        if (P->rs_status[ri] >= RS_ACCEPTED) continue;
        unsigned np_ = P->rs_corr[ri * 6 + p], nq = P->rs_corr[ri * 6 + q];
        idk ^= shifted(w[p] ^ np_, p) ^ shifted(w[q] ^ nq, q);
        if (!member(P, idk)) continue;
        int D = dist5(P, bc + 5 * p, np_) + dist5(P, bc + 5 * q, nq) + dk;
        if (D < best) { best = D; hi = lo = idk; }
        else if (D == best) { if (idk > hi) hi = idk; if (idk < lo) lo = idk; }
    }
    if (best == 1 << 30 || best - (int)nN > P->cap || hi != lo) return 0;
    *out = hi;
    return 1;
}

/* A 30-nt barcode (canonical bytes) -> barcode ID and how, or 0 when the vectorised decoder must
 * decide (pool rule, uncorrectable, too distant). Mirrors
 * BarcodeDecoder._decode_chunk / _decode_inexact for the cases it accepts. */
static inline int decode_barcode(const Params *P, const uint8_t *bc, uint32_t *id, int *how) {
    uint8_t sym[6];
    unsigned em = 0, nN = 0;
    for (int i = 0; i < 6; i++) {
        unsigned key = 0, bad = 0;
        for (int t = 0; t < 5; t++) {
            uint8_t c = CODE2[bc[5 * i + t]];
            if (c > 3) { bad = 1; nN++; c = 0; }
            key = (key << 2) | c;
        }
        sym[i] = bad ? 64 : P->sym10[key];
        if (sym[i] >= 64) em |= 1u << i;
    }
    unsigned S = 0;
    for (int i = 0; i < 6; i++)
        if (sym[i] < 64) S ^= P->syn[i * P->syn_stride + sym[i]];
    uint8_t cw[6];
    int f = __builtin_popcount(em);
    if (f == 0 && S == 0) {
        memcpy(cw, sym, 6);
        *how = H_EXACT;
    } else {
        if (f >= 4) return 0;
        *how = H_CORRECTED;
        size_t ri = (size_t)em * 4096 + S;
        if (f < 3 && P->rs_status[ri] < RS_ACCEPTED) {
            for (int i = 0; i < 6; i++) cw[i] = (sym[i] < 64 ? sym[i] : 0) ^ P->rs_corr[ri * 6 + i];
            int D = 0;  /* base differences, N counting as one */
            for (int i = 0; i < 6; i++) D += dist5(P, bc + 5 * i, cw[i]);
            if (f == 2)   /* the plain answer is the only candidate */
                return D - (int)nN <= P->cap ? (*id = word_id(cw), 1) : 0;
            if (D <= 1 && D - (int)nN <= P->cap) {  /* provably the unique best: no enumeration */
                *id = word_id(cw);
                return 1;
            }
        }
        if (f == 2) return 0;
        return pool_rule(P, bc, sym, em, S, nN, id);
    }
    *id = word_id(cw);
    return 1;
}

/* Best offset of pat within `shift` of e (fewest mismatches, then closest, then lowest), comparing
 * canonical bytes; -1 none within max_mm, -2 the window leaves the read (numpy decides). */
static inline int near_search(const Params *P, const uint8_t *r, int64_t L, const uint8_t *pat,
                              int e) {
    int lo = e - P->shift > 0 ? e - P->shift : 0, hi = e + P->shift;
    if ((int64_t)hi + P->li > L) return -2;
    int best = -1, best_key = 1 << 30;
    for (int off = lo; off <= hi; off++) {
        int mm = 0;
        for (int j = 0; j < P->li; j++) {
            mm += CANON[r[off + j]] != pat[j];
            if (mm > P->max_mm) break;
        }
        if (mm > P->max_mm) continue;
        int key = mm * 1024 + (off > e ? off - e : e - off);
        if (key < best_key) { best_key = key; best = off; }
    }
    return best;
}

/* Is there anything stages b and c could take for IP: IP or IP* with at most max_mm mismatches at
 * any offset, positions beyond the end of the read counting as mismatches? */
static inline int ip_anywhere(const Params *P, const uint8_t *r, int64_t L) {
    const int li = P->li, mx = P->max_mm;
    for (int64_t off = 0; off + li <= L + mx; off++) {
        int over = off + li > L ? (int)(off + li - L) : 0, in = li - over;
        for (int s = 0; s < 2; s++) {
            const uint8_t *pat = s ? P->rcip : P->ip;
            int mm = over;
            for (int j = 0; j < in && mm <= mx; j++) mm += CANON[r[off + j]] != pat[j];
            if (mm <= mx) return 1;
        }
    }
    return 0;
}

/* Stage d: best offset of FP (or FP*) within `shift` of e, positions beyond the read counting as
 * mismatches (as the vectorised search's N filling does); -1 none within max_mm. */
static inline int fp_search(const Params *P, const uint8_t *r, int64_t L, const uint8_t *pat,
                            int e) {
    int lo = e - P->shift > 0 ? e - P->shift : 0, hi = e + P->shift;
    int best = -1, best_key = 1 << 30;
    for (int off = lo; off <= hi; off++) {
        int mm = 0;
        for (int j = 0; j < P->lf && mm <= P->max_mm; j++)
            mm += (off + j >= L) ? 1 : CANON[r[off + j]] != pat[j];
        if (mm > P->max_mm) continue;
        int key = mm * 1024 + (off > e ? off - e : e - off);
        if (key < best_key) { best_key = key; best = off; }
    }
    return best;
}

static Py_ssize_t assign_reads(const Params *P, const uint8_t *a, const int64_t *starts,
                               const int64_t *lens, Py_ssize_t n, int64_t *position,
                               uint8_t *code) {
    Py_ssize_t decided = 0;
    const int li = P->li, ef = P->ef, er = P->er;
    uint8_t bc[30];
    for (Py_ssize_t k = 0; k < n; k++) {
        const uint8_t *r = a + starts[k];
        int64_t L = lens[k];
        position[k] = -1;
        code[k] = 0;
        int hf = ef >= 30 && ef + li <= L && memcmp(r + ef, P->ip, li) == 0;
        int hr = er + li <= L && memcmp(r + er, P->rcip, li) == 0;
        int strand, ci, stage = 1;
        if (hf && hr) continue;
        if (hf) { strand = 0; ci = ef; }
        else if (hr) { strand = 1; ci = er; }
        else {
            int bf = near_search(P, r, L, P->ip, ef);
            int br = near_search(P, r, L, P->rcip, er);
            if (bf >= 0 || br >= 0) {
                stage = 2;
                if (bf == -2 || br == -2 || (bf >= 0 && br >= 0)) continue;
                if (bf >= 0) { strand = 0; ci = bf; } else { strand = 1; ci = br; }
            } else {
                /* no IP near its offsets: if none anywhere either, stage d (FP) or no IP */
                if (ip_anywhere(P, r, L)) continue;
                int ff = -1, fr = -1;
                if (P->fp_anchor) {
                    ff = fp_search(P, r, L, P->fp, P->efp);
                    fr = fp_search(P, r, L, P->rcfp, P->erp);
                }
                if (ff < 0 && fr < 0) {
                    code[k] = 1 | NO_IP;
                    decided++;
                    continue;
                }
                if (ff >= 0 && fr >= 0) continue;
                stage = 4;
                int b0 = ff >= 0 ? ff + P->lf : fr - 30;
                if (b0 < 0 || (int64_t)b0 + 30 > L) continue;   /* barcode nt missing */
                strand = ff >= 0 ? 0 : 1;
                ci = strand == 0 ? b0 + 30 : b0 - li;            /* where IP would be */
            }
        }
        if (strand == 0) {
            if (ci < 30) continue;
            for (int i = 0; i < 30; i++) bc[i] = CANON[r[ci - 30 + i]];
        } else {
            if (ci + li < 0 || (int64_t)ci + li + 30 > L) continue;
            const uint8_t *b = r + ci + li;
            for (int i = 0; i < 30; i++) bc[i] = COMP[b[29 - i]];
        }
        uint32_t id;
        int how;
        if (!decode_barcode(P, bc, &id, &how)) continue;
        position[k] = id;   /* the barcode ID for now: looked up in the pool below */
        code[k] = (uint8_t)(1 | strand << 1 | stage << 2 | how << 5);
    }
    /* pool look-ups in passes of their own: the bitmap, prefix and row tables (~10 MB for a
     * 1.6 M-document pool) miss the cache at random; in a short loop with prefetching the
     * misses of many reads overlap instead of stalling one read at a time */
    enum { AHEAD = 16 };
    for (Py_ssize_t k = 0; k < n; k++) {
        if (k + AHEAD < n && (code[k + AHEAD] & (1 | NO_IP)) == 1) {
            uint32_t w = (uint32_t)position[k + AHEAD] >> 6;
            __builtin_prefetch(P->words + 2 * w);
        }
        if ((code[k] & (1 | NO_IP)) != 1) continue;
        uint32_t id = (uint32_t)position[k], w = id >> 6, bit = id & 63;
        uint64_t word = P->words[2 * w];
        if (!((word >> bit) & 1)) { code[k] = 0; position[k] = -1; continue; }
        /* the rank of the ID among the pool's IDs */
        position[k] = (int64_t)P->words[2 * w + 1] +
                      __builtin_popcountll(word & ((((uint64_t)1) << bit) - 1));
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        if (k + AHEAD < n && (code[k + AHEAD] & (1 | NO_IP)) == 1) {
            int64_t rk = position[k + AHEAD];
            if (rk >= 0 && rk < P->n_row) __builtin_prefetch(P->row + rk);
        }
        if ((code[k] & (1 | NO_IP)) != 1) continue;
        int64_t rk = position[k], r = rk >= 0 && rk < P->n_row ? P->row[rk] : -1;
        if (r < 0) { code[k] = 0; position[k] = -1; continue; }
        position[k] = r;
        decided++;
    }
    return decided;
}

/* buffers: data starts lens position code ip rcip fp rcfp sym10 codebook syn rs_status rs_corr
 * words row; then the integers */
enum { B_DATA, B_STARTS, B_LENS, B_POS, B_CODE, B_IP, B_RCIP, B_FP, B_RCFP, B_SYM10, B_CB, B_SYN,
       B_STATUS, B_CORR, B_WORDS, B_ROW, NBUF };

static PyObject *assign(PyObject *self, PyObject *args) {
    Py_buffer b[NBUF];
    int li, ef, er, shift, max_mm, cap, lf, efp, erp, fp_anchor;
    memset(b, 0, sizeof(b));
    if (!PyArg_ParseTuple(args, "y*y*y*w*w*y*y*y*y*y*y*y*y*y*y*y*(iiiiiiiiii)", &b[0], &b[1],
                          &b[2], &b[3], &b[4], &b[5], &b[6], &b[7], &b[8], &b[9], &b[10], &b[11],
                          &b[12], &b[13], &b[14], &b[15], &ef, &er, &shift, &max_mm, &cap, &li,
                          &lf, &efp, &erp, &fp_anchor))
        return NULL;
    Py_ssize_t n = b[B_STARTS].len / 8, decided = -1;
    const char *err = NULL;
    if (b[B_LENS].len / 8 != n || b[B_POS].len / 8 != n || b[B_CODE].len != n)
        err = "output sizes differ";
    else if (b[B_IP].len != li || b[B_RCIP].len != li) err = "IP length mismatch";
    else if (b[B_FP].len != lf || b[B_RCFP].len != lf) err = "FP length mismatch";
    else if (b[B_SYM10].len != 1024 || b[B_CB].len != 64 * 5)
        err = "codebook tables have the wrong size";
    else if (b[B_SYN].len % (6 * 2) != 0 || b[B_SYN].len / 12 < 64)
        err = "syndrome table has the wrong size";
    else if (b[B_STATUS].len != 64 * 4096 || b[B_CORR].len != 64 * 4096 * 6)
        err = "RS tables have the wrong size";
    else if (b[B_WORDS].len != 16 * (1 << 18)) err = "pool bitmap has the wrong size";
    else if (li <= 0 || li > 64 || lf <= 0 || lf > 64 || ef < 0 || er < 0 || shift < 0 ||
             efp < 0 || erp < 0)
        err = "bad read structure";
    if (!err) {
        /* every offset a read's start plus a window can reach must lie in the buffer */
        const int64_t *st = (const int64_t *)b[B_STARTS].buf, *ln = (const int64_t *)b[B_LENS].buf;
        for (Py_ssize_t k = 0; k < n; k++)
            if (st[k] < 0 || ln[k] < 0 || st[k] + ln[k] > b[B_DATA].len) {
                err = "read outside the buffer";
                break;
            }
    }
    if (!err) {
        Params P = {
            .ip = b[B_IP].buf, .rcip = b[B_RCIP].buf, .fp = b[B_FP].buf, .rcfp = b[B_RCFP].buf,
            .li = li, .ef = ef, .er = er, .shift = shift, .max_mm = max_mm, .cap = cap,
            .lf = lf, .efp = efp, .erp = erp, .fp_anchor = fp_anchor,
            .sym10 = b[B_SYM10].buf, .cb = b[B_CB].buf, .syn = b[B_SYN].buf,
            .syn_stride = b[B_SYN].len / 12, .rs_status = b[B_STATUS].buf,
            .rs_corr = b[B_CORR].buf, .words = b[B_WORDS].buf, .row = b[B_ROW].buf,
            .n_row = b[B_ROW].len / 4,
        };
        Py_BEGIN_ALLOW_THREADS
        decided = assign_reads(&P, b[B_DATA].buf, b[B_STARTS].buf, b[B_LENS].buf, n,
                               b[B_POS].buf, b[B_CODE].buf);
        Py_END_ALLOW_THREADS
    }
    for (int i = 0; i < NBUF; i++) PyBuffer_Release(&b[i]);
    if (err) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    return PyLong_FromSsize_t(decided);
}

static PyMethodDef methods[] = {
    {"parse_fastq", parse_fastq, METH_VARARGS, "FASTQ chunk -> (records, last header start)."},
    {"assign", assign, METH_VARARGS, "Place the common-case reads of a chunk."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastreads", NULL, -1, methods};

PyMODINIT_FUNC PyInit__fastreads(void) {
    init_tables();
    return PyModule_Create(&module);
}
