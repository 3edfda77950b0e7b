/*
 * rd_req_bench: MIT krb5_rd_req in a loop, for `cta bench` (host-tools/bench/apreq-bench.ts).
 * Built at run time into a temp directory:
 *   cc -O2 -o rd_req_bench rd_req_bench.c $(pkg-config --cflags --libs krb5)
 * and run with KRB5RCACHETYPE=none (no replay cache) and a minimal KRB5_CONFIG.
 *
 *   rd_req_bench <keytab file> <AP-REQ file> <duration ms>
 *
 * The keytab file is copied into a MEMORY: keytab first, so the loop never reads a file.
 * The AP-REQ file is a sequence of (u32 big-endian length, KRB_AP_REQ DER) records;
 * the loop verifies them round-robin. Every call must succeed.
 * Output: "ok count=N elapsed_ms=T" or "err ..." (exit 1).
 */
#include <krb5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_REQS 100000

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void die(krb5_context ctx, krb5_error_code r, const char *what)
{
    const char *m = ctx && r ? krb5_get_error_message(ctx, r) : "failed";
    printf("err %s: %s\n", what, m);
    exit(1);
}

int main(int argc, char **argv)
{
    krb5_context ctx;
    krb5_keytab fkt, mkt;
    krb5_kt_cursor cur;
    krb5_keytab_entry ent;
    krb5_error_code r;
    static krb5_data reqs[MAX_REQS];
    size_t nreq = 0, i;
    long count = 0;
    double t0, t, dur;
    FILE *f;

    if (argc != 4) {
        fprintf(stderr, "usage: %s <keytab> <ap-req file> <duration ms>\n", argv[0]);
        return 2;
    }
    dur = atof(argv[3]);
    if ((r = krb5_init_context(&ctx))) die(NULL, r, "init_context");
    if ((r = krb5_kt_resolve(ctx, argv[1], &fkt))) die(ctx, r, "kt_resolve file");
    if ((r = krb5_kt_resolve(ctx, "MEMORY:cta-bench", &mkt))) die(ctx, r, "kt_resolve memory");
    if ((r = krb5_kt_start_seq_get(ctx, fkt, &cur))) die(ctx, r, "kt_start_seq_get");
    while ((r = krb5_kt_next_entry(ctx, fkt, &ent, &cur)) == 0) {
        if ((r = krb5_kt_add_entry(ctx, mkt, &ent))) die(ctx, r, "kt_add_entry");
        krb5_free_keytab_entry_contents(ctx, &ent);
    }
    krb5_kt_end_seq_get(ctx, fkt, &cur);

    f = fopen(argv[2], "rb");
    if (!f) die(NULL, 0, "open ap-req file");
    for (;;) {
        unsigned char h[4];
        size_t n;
        if (fread(h, 1, 4, f) != 4) break;
        n = ((size_t)h[0] << 24) | ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
        if (n == 0 || n > 65536 || nreq >= MAX_REQS) die(NULL, 0, "bad ap-req record");
        reqs[nreq].magic = KV5M_DATA;
        reqs[nreq].length = (unsigned int)n;
        reqs[nreq].data = malloc(n);
        if (!reqs[nreq].data || fread(reqs[nreq].data, 1, n, f) != n) die(NULL, 0, "short ap-req record");
        nreq++;
    }
    fclose(f);
    if (nreq == 0) die(NULL, 0, "no ap-req records");

    /* Warm-up: every request once (also checks they all verify). */
    for (i = 0; i < nreq; i++) {
        krb5_auth_context ac = NULL;
        krb5_ticket *tkt = NULL;
        if ((r = krb5_rd_req(ctx, &ac, &reqs[i], NULL, mkt, NULL, &tkt))) die(ctx, r, "rd_req");
        krb5_free_ticket(ctx, tkt);
        krb5_auth_con_free(ctx, ac);
    }

    t0 = now_ms();
    t = t0;
    i = 0;
    while (t - t0 < dur) {
        int k;
        for (k = 0; k < 100; k++) {
            krb5_auth_context ac = NULL;
            krb5_ticket *tkt = NULL;
            if ((r = krb5_rd_req(ctx, &ac, &reqs[i], NULL, mkt, NULL, &tkt))) die(ctx, r, "rd_req");
            krb5_free_ticket(ctx, tkt);
            krb5_auth_con_free(ctx, ac);
            count++;
            if (++i == nreq) i = 0;
        }
        t = now_ms();
    }
    printf("ok count=%ld elapsed_ms=%.3f\n", count, t - t0);
    for (i = 0; i < nreq; i++) free(reqs[i].data);
    krb5_kt_close(ctx, mkt);
    krb5_kt_close(ctx, fkt);
    krb5_free_context(ctx);
    return 0;
}
