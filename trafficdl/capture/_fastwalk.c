/* The compiled core of the capture walk: pcap records -> biflows/flows -> the paper's inputs.
 *
 * Why C: the pure-Python walk (walk.py) spends ~3 us per packet in the object table and
 * the bare Python record walk alone is ~1.3 us, so no amount of Python reaches 1M
 * packets/s per CPU-second; numpy cannot vectorise the table either, because object
 * boundaries (idle/active timeout, TCP close) and TCP sequence tracking are sequential.
 * This file mirrors walk.py + objects.py line by line for what it covers (biflow and flow
 * segmentation; Ethernet/VLAN, SLL, SLL2, raw IP, BSD null links; IPv4 with options, IPv6
 * with extension headers; TCP, UDP; GTP-U G-PDUs without options, the bulk of mobile-core
 * captures) and answers FALLBACK for everything else (other tunnels, PPPoE, nested GTP),
 * so the caller reruns the capture with walk.py: same objects, same bytes, same counters
 * (tests/unit/capture/test_capture_fastcore.py diffs both on every test capture).
 *
 * Bounds checks sit exactly where Python would raise IndexError/struct.error (a packet
 * counted malformed), and floats are computed in the same order as in Python.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RECORD (1 << 18)
#define HEAD 16
#define CLOSED 8
#define OUT_OF_WINDOW (1u << 24)

enum { P_OK = 0, P_BAD = -1, P_FRAG = -2, P_NONIP = -3, P_OTHER = -4, P_FALLBACK = -5,
       P_LINK = -6 };
enum { ST_DONE = 0, ST_CORRUPT = 1, ST_FALLBACK = 2, ST_ERROR = 3 };

typedef struct {  /* a directional 5-tuple; zero padded so memcmp compares it */
    uint8_t proto, alen;
    uint16_t sport, dport;
    uint8_t addr[32];
    uint8_t pad[2];
} Key;

typedef struct {
    Key key;
    uint32_t seq, teid;
    int flags, win, tun, oalen;
    int64_t ps, end, size;
    uint8_t oaddr[32];
} Pkt;

typedef struct Obj {
    double first, last;
    int64_t npk, nbytes, seqno;
    int open, nrows, have, close, client_first, nkeys;
    uint16_t cport, sport;
    uint8_t proto, alen, addr[32];
    Key keys[2];
    double d[2];         /* each entry's direction */
    uint32_t exp[2];     /* each entry's next expected TCP sequence number */
    int has_exp[2];
    int headlen[2];      /* -1: no payload yet in that direction */
    uint8_t head[2][HEAD];
    int tun, oalen;
    uint32_t teid;
    uint8_t oaddr[32];
    struct Obj *prev, *next;  /* open order (Python dict insertion order) */
    uint8_t *pay;
    float *rows;
} Obj;

typedef struct { Obj *obj; int ent; uint64_t hash; } Slot;  /* obj NULL: empty; TOMB */

static Obj tomb_obj;
#define TOMB (&tomb_obj)

typedef struct {
    PyObject_HEAD
    /* config */
    int nb, npk, tcp_close, flow_mode, gtp_on, vxlan_on, geneve_on, gre_on, ipip_on, mpls_on;
    int64_t min_packets, min_payload;
    double idle, active, period, next_sweep;
    long capture;
    /* table */
    Slot *slots;
    size_t cap, used, tombs;
    Obj *head, *tail, *free_list;
    int64_t seqno;
    /* output */
    uint8_t *out_pay;
    float *out_rows;
    size_t out_n, out_cap;
    PyObject *records, *unknown_links;
    /* stats */
    int64_t packets, non_ip, other, frags, bad, tso, tunnelled;
} Core;

/* ------------------------------------------------------------------ hash table */

static uint64_t key_hash(const Key *k) {
    uint64_t w[5];
    memcpy(w, k, sizeof(w));
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 5; i++) {
        h ^= w[i];
        h *= 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    return h;
}

static Slot *lookup(Core *c, const Key *k, uint64_t h) {
    size_t mask = c->cap - 1, i = h & mask;
    for (;;) {
        Slot *s = &c->slots[i];
        if (s->obj == NULL)
            return NULL;
        if (s->obj != TOMB && s->hash == h && !memcmp(&s->obj->keys[s->ent], k, sizeof(Key)))
            return s;
        i = (i + 1) & mask;
    }
}

static int grow(Core *c) {  /* rebuild (dropping tombstones) at <= 1/4 load */
    size_t ncap = c->cap > 1024 ? c->cap : 1024;
    while ((c->used + 1) * 4 > ncap) ncap *= 2;
    Slot *ns = calloc(ncap, sizeof(Slot));
    if (!ns) return -1;
    for (size_t j = 0; j < c->cap; j++) {
        Slot *s = &c->slots[j];
        if (s->obj == NULL || s->obj == TOMB) continue;
        size_t i = s->hash & (ncap - 1);
        while (ns[i].obj) i = (i + 1) & (ncap - 1);
        ns[i] = *s;
    }
    free(c->slots);
    c->slots = ns;
    c->cap = ncap;
    c->tombs = 0;
    return 0;
}

static int insert(Core *c, Obj *o, int ent) {
    if ((c->used + c->tombs + 1) * 2 > c->cap && grow(c) < 0) return -1;
    uint64_t h = key_hash(&o->keys[ent]);
    Slot *s = lookup(c, &o->keys[ent], h);
    if (s) {  /* overwrite (a host talking to itself on one port) */
        s->obj = o;
        s->ent = ent;
        return 0;
    }
    size_t mask = c->cap - 1, i = h & mask;
    while (c->slots[i].obj != NULL && c->slots[i].obj != TOMB) i = (i + 1) & mask;
    if (c->slots[i].obj == TOMB) c->tombs--;
    c->slots[i].obj = o;
    c->slots[i].ent = ent;
    c->slots[i].hash = h;
    c->used++;
    return 0;
}

static void remove_key(Core *c, const Key *k) {
    Slot *s = lookup(c, k, key_hash(k));
    if (s) {
        s->obj = TOMB;
        c->used--;
        c->tombs++;
    }
}

/* ------------------------------------------------------------------ objects */

static int classify(int proto, const uint8_t *h, int n) {
    if (n < 5) return 0;
    int b0 = h[0];
    if (proto == 6)
        return (b0 >= 20 && b0 <= 23 && h[1] == 3 && h[2] <= 4) ? 1 : 0;
    if (proto == 17) {
        if (b0 >= 20 && b0 <= 23 && h[1] == 0xFE && (h[2] == 0xFF || h[2] == 0xFD || h[2] == 0xFC))
            return 3;
        if ((b0 & 0xC0) == 0xC0) {
            uint32_t v = ((uint32_t)h[1] << 24) | ((uint32_t)h[2] << 16) | (h[3] << 8) | h[4];
            if (v == 1 || v == 0x6B3343CF || (v & 0xFFFFFF00u) == 0xFF000000u ||
                (v & 0x0F0F0F0Fu) == 0x0A0A0A0Au || (v >> 24 == 0x51 && ((v >> 16) & 0xFF) == 0x30))
                return 2;
        }
    }
    return 0;
}

static void ntop(const uint8_t *a, int alen, char *out) {
    out[0] = 0;
    if (alen) inet_ntop(alen == 4 ? AF_INET : AF_INET6, a, out, 64);
}

/* objects.ObjectTable._finish: the object's record and inputs to the output */
static int finish(Core *c, Obj *o) {
    if (o->npk < c->min_packets || o->nbytes < c->min_payload) return 0;
    if (c->out_n == c->out_cap) {
        size_t ncap = c->out_cap ? c->out_cap * 2 : 256;
        uint8_t *p = realloc(c->out_pay, ncap * c->nb);
        if (!p) return -1;
        c->out_pay = p;
        float *r = realloc(c->out_rows, ncap * c->npk * 4 * sizeof(float));
        if (!r) return -1;
        c->out_rows = r;
        c->out_cap = ncap;
    }
    memcpy(c->out_pay + c->out_n * c->nb, o->pay, c->nb);
    memcpy(c->out_rows + c->out_n * c->npk * 4, o->rows, (size_t)c->npk * 4 * sizeof(float));
    c->out_n++;
    char src[64], dst[64], osrc[64], odst[64];
    int cf = o->client_first, al = o->alen, ol = o->tun ? o->oalen : 0;
    ntop(cf ? o->addr : o->addr + al, al, src);
    ntop(cf ? o->addr + al : o->addr, al, dst);
    ntop(cf ? o->oaddr : o->oaddr + ol, ol, osrc);
    ntop(cf ? o->oaddr + ol : o->oaddr, ol, odst);
    int enc = classify(o->proto, o->head[0], o->headlen[0]);
    if (!enc) enc = classify(o->proto, o->head[1], o->headlen[1]);
    PyObject *rec = Py_BuildValue("(lisisiLLddisssk)", c->capture, (int)o->proto, src,
                                  (int)o->cport, dst, (int)o->sport, (long long)o->npk,
                                  (long long)o->nbytes, o->first, o->last - o->first, enc,
                                  o->tun ? "gtp" : "", osrc, odst,
                                  (unsigned long)(o->tun ? o->teid : 0));
    if (!rec) return -1;
    int r = PyList_Append(c->records, rec);
    Py_DECREF(rec);
    return r;
}

static void drop(Core *c, Obj *o) {  /* _drop_state, and back to the free list */
    for (int i = 0; i < o->nkeys; i++) remove_key(c, &o->keys[i]);
    if (o->prev) o->prev->next = o->next; else c->head = o->next;
    if (o->next) o->next->prev = o->prev; else c->tail = o->prev;
    o->next = c->free_list;
    c->free_list = o;
}

static int end_obj(Core *c, Obj *o) {
    int r = finish(c, o);
    drop(c, o);
    return r;
}

static int sweep(Core *c, double now) {
    Obj *o = c->head;
    while (o) {
        Obj *nx = o->next;
        if (now - o->last > c->idle && end_obj(c, o) < 0) return -1;
        o = nx;
    }
    return 0;
}

static Obj *new_obj(Core *c) {
    Obj *o = c->free_list;
    if (o) {
        c->free_list = o->next;
    } else {
        size_t extra = (size_t)c->nb + (size_t)c->npk * 4 * sizeof(float);
        o = malloc(sizeof(Obj) + extra + 8);
        if (!o) return NULL;
        o->rows = (float *)((uint8_t *)o + sizeof(Obj));
        o->pay = (uint8_t *)(o->rows + (size_t)c->npk * 4);
    }
    memset(o->pay, 0, c->nb);
    memset(o->rows, 0, (size_t)c->npk * 4 * sizeof(float));
    return o;
}

static int client_is_receiver(int proto, int flags, int sport, int dport) {
    if (proto == 6) {
        if ((flags & 0x12) == 0x12) return 1;
        if (flags & 0x02) return 0;
    }
    return sport < 1024 && 1024 <= dport;
}

/* ObjectTable._open: a new (bi)flow for the packet's key; returns its entry index (0) */
static Obj *open_obj(Core *c, const Pkt *p, double ts) {
    Obj *o = new_obj(c);
    if (!o) return NULL;
    const Key *k = &p->key;
    int al = k->alen;
    o->first = o->last = ts;
    o->npk = o->nbytes = 0;
    o->seqno = c->seqno++;
    o->open = 1;
    o->nrows = o->have = o->close = 0;
    o->proto = k->proto;
    o->alen = al;
    memcpy(o->addr, k->addr, 32);
    o->keys[0] = *k;
    o->has_exp[0] = o->has_exp[1] = 0;
    o->headlen[0] = o->headlen[1] = -1;
    o->tun = p->tun;
    o->oalen = p->oalen;
    o->teid = p->teid;
    memcpy(o->oaddr, p->oaddr, 32);
    if (c->flow_mode) {
        o->client_first = 1;
        o->cport = k->sport;
        o->sport = k->dport;
        o->nkeys = 1;
        o->d[0] = 1.0;
    } else {
        Key *r = &o->keys[1];
        memset(r, 0, sizeof(Key));
        r->proto = k->proto;
        r->alen = al;
        r->sport = k->dport;
        r->dport = k->sport;
        memcpy(r->addr, k->addr + al, al);
        memcpy(r->addr + al, k->addr, al);
        int flip = client_is_receiver(k->proto, p->flags, k->sport, k->dport);
        o->client_first = !flip;
        o->cport = flip ? k->dport : k->sport;
        o->sport = flip ? k->sport : k->dport;
        o->d[0] = flip ? -1.0 : 1.0;
        o->d[1] = flip ? 1.0 : -1.0;
        o->nkeys = memcmp(r, k, sizeof(Key)) ? 2 : 1;
    }
    o->prev = c->tail;
    o->next = NULL;
    if (c->tail) c->tail->next = o; else c->head = o;
    c->tail = o;
    if (o->nkeys == 2 && insert(c, o, 1) < 0) return NULL;
    if (insert(c, o, 0) < 0) return NULL;
    return o;
}

/* ------------------------------------------------------------------ decode */

static inline int is_tpid(int et) {
    return et == 0x8100 || et == 0x88A8 || et == 0x9100 || et == 0x9200;
}

static inline int is_v6ext(int p) {
    return p == 0 || p == 43 || p == 60 || p == 135 || p == 139 || p == 140 || p == 253 ||
           p == 254 || p == 44 || p == 51;
}

#define U16(x) ((d[(x)] << 8) | d[(x) + 1])

/* walk.Walker.feed's decode: link layer, IP (through inline GTP-U), TCP/UDP */
static int decode(Core *c, const uint8_t *d, int64_t n, int lt, int64_t orig, Pkt *p) {
    int64_t ip, l4 = 0, end = 0;
    int et, proto = 0, alen = 0;
    p->tun = 0;
    p->oalen = 0;
    p->teid = 0;
    memset(&p->key, 0, sizeof(Key));
    if (lt == 1) {
        if (n < 14) return P_BAD;
        et = U16(12);
        ip = 14;
        while (is_tpid(et)) {
            if (n < ip + 4) return P_BAD;
            et = U16(ip + 2);
            ip += 4;
        }
    } else if (lt == 113) {
        if (n < 16) return P_BAD;
        et = U16(14);
        ip = 16;
    } else if (lt == 276) {
        if (n < 2) return P_BAD;
        et = U16(0);
        ip = 20;
    } else if (lt == 101 || lt == 12 || lt == 14 || lt == 228 || lt == 229) {
        if (n < 1) return P_BAD;
        int v = d[0] >> 4;
        et = v == 4 ? 0x0800 : v == 6 ? 0x86DD : 0;
        ip = 0;
    } else if (lt == 0 || lt == 108) {
        if (n < 4) return P_BAD;
        uint32_t fam = d[0] | (d[1] << 8) | (d[2] << 16) | ((uint32_t)d[3] << 24);
        if (fam > 0xFFFF) fam = ((uint32_t)d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3];
        ip = 4;
        et = fam == 2 ? 0x0800 : (fam == 10 || fam == 24 || fam == 28 || fam == 30) ? 0x86DD : 0;
    } else {
        return P_LINK;
    }
    for (;;) {
        if (et == 0x0800) {
            if (n < ip + 10) return P_BAD;
            int b0 = d[ip], ihl = (b0 & 15) << 2;
            int64_t tot = U16(ip + 2);
            int fragw = U16(ip + 6);
            proto = d[ip + 9];
            int64_t have = n - (ip + 12);
            if (have > 8) have = 8;
            if (have > 0) memcpy(p->key.addr, d + ip + 12, have);
            if (b0 >> 4 != 4 || ihl < 20) return P_BAD;
            if (tot < ihl) {
                if (tot) return P_BAD;
                tot = orig - ip;
                c->tso++;
            }
            if (fragw & 0x1FFF) return P_FRAG;
            alen = 4;
            l4 = ip + ihl;
            end = ip + tot;
        } else if (et == 0x86DD) {
            if (n < ip + 40) return P_BAD;
            if (d[ip] >> 4 != 6) return P_BAD;
            int64_t plen = U16(ip + 4);
            proto = d[ip + 6];
            memcpy(p->key.addr, d + ip + 8, 32);
            alen = 16;
            l4 = ip + 40;
            if (plen) {
                end = l4 + plen;
            } else {
                end = orig;
                c->tso++;
            }
            while (is_v6ext(proto)) {
                if (l4 >= n) return P_BAD;
                int nh = d[l4];
                if (proto == 44) {
                    if (n < l4 + 4) return P_BAD;
                    if (U16(l4 + 2) & 0xFFF8) return P_FRAG;
                    l4 += 8;
                } else if (proto == 51) {
                    if (n < l4 + 2) return P_BAD;
                    l4 += (d[l4 + 1] + 2) << 2;
                } else {
                    if (n < l4 + 2) return P_BAD;
                    l4 += (d[l4 + 1] + 1) << 3;
                }
                proto = nh;
            }
        } else if (et == 0x8864 || (c->mpls_on && (et == 0x8847 || et == 0x8848))) {
            return P_FALLBACK;  /* PPPoE, MPLS: walk.py's decapsulators */
        } else {
            return P_NONIP;
        }
        if (proto == 6) {
            if (n < l4 + 16) return P_BAD;  /* walk.py unpacks 16 bytes ("!HHI4xBBH") */
            p->key.sport = U16(l4);
            p->key.dport = U16(l4 + 2);
            p->seq = ((uint32_t)d[l4 + 4] << 24) | (d[l4 + 5] << 16) | (d[l4 + 6] << 8) | d[l4 + 7];
            p->flags = d[l4 + 13];
            p->win = U16(l4 + 14);
            p->ps = l4 + ((d[l4 + 12] >> 4) << 2);
            if (p->ps - l4 < 20) return P_BAD;
            break;
        }
        if (proto == 17) {
            if (n < l4 + 4) return P_BAD;
            int sport = U16(l4), dport = U16(l4 + 2);
            if ((dport == 2152 && c->gtp_on) || (dport == 4789 && c->vxlan_on) ||
                (dport == 6081 && c->geneve_on)) {
                int64_t u = l4 + 8;
                if (dport != 2152) return P_FALLBACK;
                if (u >= n) return P_BAD;
                if (d[u] != 0x30) return P_FALLBACK;
                if (u + 1 >= n) return P_BAD;
                if (d[u + 1] != 0xFF) return P_FALLBACK;
                ip = u + 8;
                if (ip >= n) return P_BAD;
                int v = d[ip] >> 4;
                et = v == 4 ? 0x0800 : v == 6 ? 0x86DD : 0;
                if (p->tun) return P_FALLBACK;  /* nested: walk.py builds the chain */
                p->tun = 1;
                p->oalen = alen;
                memcpy(p->oaddr, p->key.addr, 32);
                p->teid = ((uint32_t)d[u + 4] << 24) | (d[u + 5] << 16) | (d[u + 6] << 8) | d[u + 7];
                memset(p->key.addr, 0, 32);
                continue;
            }
            p->key.sport = sport;
            p->key.dport = dport;
            p->ps = l4 + 8;
            p->seq = 0;
            p->flags = p->win = 0;
            break;
        }
        if ((proto == 47 && c->gre_on) || ((proto == 4 || proto == 41) && c->ipip_on) ||
            (proto == 137 && c->mpls_on))
            return P_FALLBACK;
        return P_OTHER;
    }
    p->key.proto = proto;
    p->key.alen = alen;
    if (alen == 4) memset(p->key.addr + 8, 0, 24);
    p->end = end;
    p->size = end - p->ps;
    if (p->size < 0) return P_BAD;
    return P_OK;
}

/* ------------------------------------------------------------------ one packet */

/* 0: done; 1: needs walk.py; -1: Python error set */
static int packet(Core *c, const uint8_t *d, int64_t n, int lt, int64_t orig, double ts) {
    Pkt p;
    c->packets++;
    int r = decode(c, d, n, lt, orig, &p);
    if (r != P_OK) {
        switch (r) {
        case P_BAD: c->bad++; return 0;
        case P_FRAG: c->frags++; return 0;
        case P_NONIP: c->non_ip++; return 0;
        case P_OTHER: c->other++; return 0;
        case P_FALLBACK: return 1;
        default: {  /* P_LINK */
            PyObject *v = PyLong_FromLong(lt);
            if (!v || PySet_Add(c->unknown_links, v) < 0) { Py_XDECREF(v); return -1; }
            Py_DECREF(v);
            c->non_ip++;
            return 0;
        }
        }
    }
    if (ts > c->next_sweep) {
        if (sweep(c, ts) < 0) return -1;
        c->next_sweep = ts + c->period;
    }
    if (p.tun) c->tunnelled++;
    uint64_t h = key_hash(&p.key);
    Slot *s = lookup(c, &p.key, h);
    Obj *o = NULL;
    int ent = 0;
    double gap = 0.0;
    int flags = p.flags;
    if (s) {
        o = s->obj;
        ent = s->ent;
        gap = ts - o->last;
        if (gap > c->idle || ts - o->first > c->active || ((flags & 2) && o->close >= CLOSED)) {
            if (end_obj(c, o) < 0) return -1;
            o = NULL;
        }
    }
    if (!o) {
        o = open_obj(c, &p, ts);
        if (!o) { PyErr_NoMemory(); return -1; }
        ent = 0;
        gap = 0.0;
    }
    if ((flags & 5) && c->tcp_close) {  /* ObjectTable.tcp_end */
        int bits = o->close | ((flags & 4) ? (CLOSED | 4) : o->d[ent] > 0 ? 1 : 2);
        if ((bits & 3) == 3 || c->flow_mode) bits |= CLOSED;
        o->close = bits;
    }
    o->last = ts;
    o->npk++;
    int64_t size = p.size, ps = p.ps;
    o->nbytes += size;
    if (!o->open) return 0;
    double dir = o->d[ent];
    if (o->nrows < c->npk) {
        float *row = o->rows + (size_t)o->nrows * 4;
        row[0] = (float)(double)size;
        row[1] = (float)dir;
        row[2] = (float)(double)p.win;
        row[3] = (float)(gap > 0 ? gap : 0.0);
        o->nrows++;
    }
    int have = o->have;
    if (have < c->nb) {
        if (p.key.proto == 6 && (size || (flags & 3))) {
            uint32_t seg_end = p.seq + (uint32_t)size + (flags & 1) + ((flags >> 1) & 1);
            if (!o->has_exp[ent]) {
                o->has_exp[ent] = 1;
                o->exp[ent] = seg_end;
            } else {
                uint32_t diff = p.seq - o->exp[ent];
                if (diff >= 0x80000000u) {
                    int64_t overlap = 0x100000000ll - diff;
                    if (overlap >= size) {
                        size = 0;
                    } else {
                        ps += overlap;
                        size -= overlap;
                        o->exp[ent] = seg_end;
                    }
                } else if (diff > OUT_OF_WINDOW) {
                    size = 0;
                } else {
                    o->exp[ent] = seg_end;
                }
            }
        }
        if (size > 0) {
            int64_t stop = p.end < n ? p.end : n;
            if (ps + c->nb - have < stop) stop = ps + c->nb - have;
            if (stop > ps) {
                int hi = dir > 0 ? 0 : 1;
                if (o->headlen[hi] < 0) {
                    int64_t he = ps + HEAD < n ? ps + HEAD : n;
                    o->headlen[hi] = (int)(he - ps);
                    memcpy(o->head[hi], d + ps, he - ps);
                }
                memcpy(o->pay + have, d + ps, stop - ps);
                o->have = have + (int)(stop - ps);
            }
        }
    } else if (o->nrows >= c->npk) {
        o->open = 0;
    }
    return 0;
}

/* ------------------------------------------------------------------ Python API */

static int Core_init(Core *c, PyObject *args, PyObject *kw) {
    static char *names[] = {"payload_bytes", "packets", "idle", "active", "period", "tcp_close",
                            "flow_mode", "decap", "min_packets", "min_payload", "capture", NULL};
    int gtp = 0;
    const char *decap = "";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iidddppsLLl", names, &c->nb, &c->npk, &c->idle,
                                     &c->active, &c->period, &c->tcp_close, &c->flow_mode, &decap,
                                     &c->min_packets, &c->min_payload, &c->capture))
        return -1;
    if (c->nb < 1 || c->npk < 1) {
        PyErr_SetString(PyExc_ValueError, "payload bytes and packets must be >= 1");
        return -1;
    }
    gtp = strstr(decap, "gtp") != NULL;
    c->gtp_on = gtp;
    c->vxlan_on = strstr(decap, "vxlan") != NULL;
    c->geneve_on = strstr(decap, "geneve") != NULL;
    c->gre_on = strstr(decap, "gre") != NULL;
    c->ipip_on = strstr(decap, "ipip") != NULL;
    c->mpls_on = strstr(decap, "mpls") != NULL;
    c->next_sweep = -HUGE_VAL;
    c->records = PyList_New(0);
    c->unknown_links = PySet_New(NULL);
    if (!c->records || !c->unknown_links) return -1;
    return grow(c);
}

static void free_objs(Obj *o) {
    while (o) {
        Obj *nx = o->next;
        free(o);
        o = nx;
    }
}

static void Core_dealloc(Core *c) {
    free_objs(c->head);
    free_objs(c->free_list);
    free(c->slots);
    free(c->out_pay);
    free(c->out_rows);
    Py_XDECREF(c->records);
    Py_XDECREF(c->unknown_links);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static inline uint32_t rd32(const uint8_t *b, int big) {
    return big ? ((uint32_t)b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]
               : b[0] | (b[1] << 8) | (b[2] << 16) | ((uint32_t)b[3] << 24);
}

/* feed_pcap(buffer, pos, end, big_endian, ts_div, linktype, fcs) -> (status, pos, length):
 * reader.RecordReader._pcap's loop over one buffer. */
static PyObject *Core_feed_pcap(Core *c, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, end;
    int big, lt, fcs;
    double div;
    if (!PyArg_ParseTuple(args, "y*nnpdii", &view, &pos, &end, &big, &div, &lt, &fcs))
        return NULL;
    const uint8_t *b = view.buf;
    if (end > view.len) end = view.len;
    int status = ST_DONE;
    uint32_t incl = 0;
    while (pos + 16 <= end) {
        uint32_t sec = rd32(b + pos, big), frac = rd32(b + pos + 4, big);
        incl = rd32(b + pos + 8, big);
        uint32_t orig = rd32(b + pos + 12, big);
        if (incl > MAX_RECORD) {
            status = ST_CORRUPT;
            break;
        }
        Py_ssize_t nxt = pos + 16 + incl;
        if (nxt > end) break;
        double ts = (double)sec + (double)frac / div;
        int64_t n = (int64_t)incl - fcs;
        int r = packet(c, b + pos + 16, n < 0 ? 0 : n, lt, (int64_t)orig - fcs, ts);
        if (r) {
            status = r > 0 ? ST_FALLBACK : ST_ERROR;
            break;
        }
        pos = nxt;
    }
    PyBuffer_Release(&view);
    if (status == ST_ERROR) return NULL;
    return Py_BuildValue("(inI)", status, pos, incl);
}

/* feed_records(iterable of (ts, linktype, frame, wire length)) -> status (pcapng) */
static PyObject *Core_feed_records(Core *c, PyObject *it_in) {
    PyObject *it = PyObject_GetIter(it_in), *item;
    if (!it) return NULL;
    int status = ST_DONE;
    while ((item = PyIter_Next(it))) {
        double ts;
        int lt;
        long long orig;
        Py_buffer view;
        if (!PyArg_ParseTuple(item, "diy*L", &ts, &lt, &view, &orig)) {
            Py_DECREF(item);
            status = ST_ERROR;
            break;
        }
        int r = packet(c, view.buf, view.len, lt, orig, ts);
        PyBuffer_Release(&view);
        Py_DECREF(item);
        if (r) {
            status = r > 0 ? ST_FALLBACK : ST_ERROR;
            break;
        }
    }
    Py_DECREF(it);
    if (status == ST_ERROR || PyErr_Occurred()) return NULL;
    return PyLong_FromLong(status);
}

static int by_first(const void *a, const void *b) {
    const Obj *x = *(Obj *const *)a, *y = *(Obj *const *)b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    return x->seqno < y->seqno ? -1 : x->seqno > y->seqno;
}

/* close(): ObjectTable.close, every open object finished in start-time order */
static PyObject *Core_close(Core *c, PyObject *Py_UNUSED(unused)) {
    size_t k = 0;
    for (Obj *o = c->head; o; o = o->next) k++;
    Obj **all = malloc((k + 1) * sizeof(Obj *));
    if (!all) return PyErr_NoMemory();
    k = 0;
    for (Obj *o = c->head; o; o = o->next) all[k++] = o;
    qsort(all, k, sizeof(Obj *), by_first);
    for (size_t i = 0; i < k; i++) {
        if (finish(c, all[i]) < 0) {
            free(all);
            return NULL;
        }
    }
    free(all);
    free_objs(c->head);
    c->head = c->tail = NULL;
    memset(c->slots, 0, c->cap * sizeof(Slot));
    c->used = c->tombs = 0;
    Py_RETURN_NONE;
}

/* take() -> (payload bytes, packet rows bytes (float32), records, stats, unknown links) */
static PyObject *Core_take(Core *c, PyObject *Py_UNUSED(unused)) {
    PyObject *pay = PyBytes_FromStringAndSize((char *)c->out_pay, (Py_ssize_t)(c->out_n * c->nb));
    PyObject *rows = PyBytes_FromStringAndSize(
        (char *)c->out_rows, (Py_ssize_t)(c->out_n * c->npk * 4 * sizeof(float)));
    if (!pay || !rows) {
        Py_XDECREF(pay);
        Py_XDECREF(rows);
        return NULL;
    }
    return Py_BuildValue("(NNO(LLLLLLL)O)", pay, rows, c->records, (long long)c->packets,
                         (long long)c->non_ip, (long long)c->other, (long long)c->frags,
                         (long long)c->bad, (long long)c->tso, (long long)c->tunnelled,
                         c->unknown_links);
}

static PyMethodDef Core_methods[] = {
    {"feed_pcap", (PyCFunction)Core_feed_pcap, METH_VARARGS, "walk pcap records of a buffer"},
    {"feed_records", (PyCFunction)Core_feed_records, METH_O, "walk (ts, lt, frame, orig) records"},
    {"close", (PyCFunction)Core_close, METH_NOARGS, "finish every open object"},
    {"take", (PyCFunction)Core_take, METH_NOARGS, "the finished objects and counters"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "trafficdl.capture._fastwalk.Core",
    .tp_basicsize = sizeof(Core),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The compiled walk: biflow/flow objects of pcap records (see fastwalk.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Core_init,
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_methods = Core_methods,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastwalk",
                                    "Compiled capture walk (see fastwalk.py).", -1, NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fastwalk(void) {
    if (PyType_Ready(&CoreType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&CoreType);
    if (PyModule_AddObject(m, "Core", (PyObject *)&CoreType) < 0) {
        Py_DECREF(&CoreType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
