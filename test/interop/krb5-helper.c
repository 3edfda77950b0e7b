/*
 * krb5-helper: a tiny MIT libkrb5 peer for the interop tests
 * (test/mit-interop-libkrb5.test.ts). TEST-ONLY: it prints session keys and
 * subkeys so the test can compute the key-management HMACs. Never install it.
 *
 * Built by the test into a temp directory:
 *   cc -o krb5-helper krb5-helper.c $(pkg-config --cflags --libs krb5)
 * and run with the throwaway realm's environment (KRB5_CONFIG, KRB5CCNAME,
 * KRB5RCACHETYPE=none, ...).
 *
 * Line protocol: one command per stdin line, one answer line per command on
 * stdout, "ok key=value ..." or "err code=N msg=text". Byte strings are hex.
 * The process keeps one client and one server auth context, so rd_rep follows
 * mk_req and mk_rep follows rd_req, as in a real application.
 *
 *   mk_req <service principal>
 *       client: credentials for the service from the ccache (KRB5CCNAME),
 *       krb5_mk_req_extended(AP_OPTS_MUTUAL_REQUIRED, no checksum)
 *       -> ap_req session_etype session_key ticket_etype
 *       (krb5_auth_con_getauthenticator cannot be used after mk_req: MIT nulls
 *       the stored authenticator's client, and copying it crashes)
 *   rd_rep <AP-REP hex>
 *       client: krb5_rd_rep on the auth context of the last mk_req
 *       -> ctime cusec subkey_etype subkey (subkey "-" when absent)
 *   rd_req <AP-REQ hex> <keytab>
 *       server: krb5_rd_req (any principal of the keytab)
 *       -> client server ap_options ticket_etype session_etype session_key ctime cusec
 *   mk_rep
 *       server: krb5_mk_rep with a fresh subkey (KRB5_AUTH_CONTEXT_USE_SUBKEY)
 *       on the auth context of the last rd_req -> ap_rep subkey_etype subkey
 *   quit
 */
#include <krb5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE 65536

static krb5_context ctx;
static krb5_auth_context cac; /* client side */
static krb5_auth_context sac; /* server side */

static void put_hex(const char *name, const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i;
    printf(" %s=", name);
    if (n == 0) {
        putchar('-');
        return;
    }
    for (i = 0; i < n; i++)
        printf("%02x", b[i]);
}

static int unhex(const char *s, krb5_data *out)
{
    size_t n = strlen(s), i;
    unsigned char *b;
    if (n == 0 || n % 2 || n / 2 > MAX_LINE)
        return -1;
    b = malloc(n / 2);
    if (!b)
        return -1;
    for (i = 0; i < n / 2; i++) {
        unsigned int v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) {
            free(b);
            return -1;
        }
        b[i] = (unsigned char)v;
    }
    out->magic = KV5M_DATA;
    out->data = (char *)b;
    out->length = (unsigned int)(n / 2);
    return 0;
}

static void fail(krb5_error_code code, const char *what)
{
    const char *m = code ? krb5_get_error_message(ctx, code) : "bad input";
    printf("err code=%ld msg=%s: %s\n", (long)code, what, m);
    if (code)
        krb5_free_error_message(ctx, m);
    fflush(stdout);
}

static void put_name(const char *label, krb5_const_principal p)
{
    char *s = NULL;
    if (krb5_unparse_name(ctx, p, &s) == 0) {
        printf(" %s=%s", label, s);
        krb5_free_unparsed_name(ctx, s);
    }
}

static void cmd_mk_req(const char *service)
{
    krb5_error_code r;
    krb5_ccache cc = NULL;
    krb5_creds in, *out = NULL;
    krb5_data apreq = { 0 };
    krb5_keyblock *kb = NULL;
    krb5_ticket *tkt = NULL;

    memset(&in, 0, sizeof(in));
    if (cac) {
        krb5_auth_con_free(ctx, cac);
        cac = NULL;
    }
    if ((r = krb5_cc_default(ctx, &cc))) { fail(r, "cc_default"); return; }
    if ((r = krb5_cc_get_principal(ctx, cc, &in.client))) { fail(r, "cc_get_principal"); goto out; }
    if ((r = krb5_parse_name(ctx, service, &in.server))) { fail(r, "parse_name"); goto out; }
    if ((r = krb5_get_credentials(ctx, 0, cc, &in, &out))) { fail(r, "get_credentials"); goto out; }
    if ((r = krb5_mk_req_extended(ctx, &cac, AP_OPTS_MUTUAL_REQUIRED, NULL, out, &apreq))) { fail(r, "mk_req_extended"); goto out; }
    if ((r = krb5_auth_con_getkey(ctx, cac, &kb))) { fail(r, "auth_con_getkey"); goto out; }
    if ((r = krb5_decode_ticket(&out->ticket, &tkt))) { fail(r, "decode_ticket"); goto out; }
    printf("ok");
    put_hex("ap_req", apreq.data, apreq.length);
    printf(" session_etype=%d", (int)kb->enctype);
    put_hex("session_key", kb->contents, kb->length);
    printf(" ticket_etype=%d\n", (int)tkt->enc_part.enctype);
    fflush(stdout);
out:
    if (tkt) krb5_free_ticket(ctx, tkt);
    if (kb) krb5_free_keyblock(ctx, kb);
    krb5_free_data_contents(ctx, &apreq);
    if (out) krb5_free_creds(ctx, out);
    krb5_free_cred_contents(ctx, &in);
    if (cc) krb5_cc_close(ctx, cc);
}

static void cmd_rd_rep(const char *hex)
{
    krb5_error_code r;
    krb5_data in;
    krb5_ap_rep_enc_part *rep = NULL;
    krb5_keyblock *sub = NULL;

    if (!cac) { fail(0, "rd_rep without mk_req"); return; }
    if (unhex(hex, &in)) { fail(0, "rd_rep hex"); return; }
    r = krb5_rd_rep(ctx, cac, &in, &rep);
    free(in.data);
    if (r) { fail(r, "rd_rep"); return; }
    printf("ok ctime=%ld cusec=%ld", (long)rep->ctime, (long)rep->cusec);
    if (krb5_auth_con_getrecvsubkey(ctx, cac, &sub) == 0 && sub) {
        printf(" subkey_etype=%d", (int)sub->enctype);
        put_hex("subkey", sub->contents, sub->length);
        krb5_free_keyblock(ctx, sub);
    } else {
        printf(" subkey_etype=0 subkey=-");
    }
    printf("\n");
    fflush(stdout);
    krb5_free_ap_rep_enc_part(ctx, rep);
}

static void cmd_rd_req(const char *hex, const char *ktname)
{
    krb5_error_code r;
    krb5_data in;
    krb5_keytab kt = NULL;
    krb5_flags opts = 0;
    krb5_ticket *tkt = NULL;
    krb5_authenticator *auth = NULL;

    if (sac) {
        krb5_auth_con_free(ctx, sac);
        sac = NULL;
    }
    if (unhex(hex, &in)) { fail(0, "rd_req hex"); return; }
    if ((r = krb5_kt_resolve(ctx, ktname, &kt))) { free(in.data); fail(r, "kt_resolve"); return; }
    r = krb5_rd_req(ctx, &sac, &in, NULL, kt, &opts, &tkt);
    free(in.data);
    if (r) { fail(r, "rd_req"); goto out; }
    if ((r = krb5_auth_con_getauthenticator(ctx, sac, &auth))) { fail(r, "auth_con_getauthenticator"); goto out; }
    printf("ok");
    put_name("client", tkt->enc_part2->client);
    put_name("server", tkt->server);
    printf(" ap_options=%08lx ticket_etype=%d session_etype=%d", (unsigned long)opts, (int)tkt->enc_part.enctype,
           (int)tkt->enc_part2->session->enctype);
    put_hex("session_key", tkt->enc_part2->session->contents, tkt->enc_part2->session->length);
    printf(" ctime=%ld cusec=%ld\n", (long)auth->ctime, (long)auth->cusec);
    fflush(stdout);
out:
    if (auth) krb5_free_authenticator(ctx, auth);
    if (tkt) krb5_free_ticket(ctx, tkt);
    if (kt) krb5_kt_close(ctx, kt);
}

static void cmd_mk_rep(void)
{
    krb5_error_code r;
    krb5_int32 flags = 0;
    krb5_data out = { 0 };
    krb5_keyblock *sub = NULL;

    if (!sac) { fail(0, "mk_rep without rd_req"); return; }
    krb5_auth_con_getflags(ctx, sac, &flags);
    krb5_auth_con_setflags(ctx, sac, flags | KRB5_AUTH_CONTEXT_USE_SUBKEY);
    if ((r = krb5_mk_rep(ctx, sac, &out))) { fail(r, "mk_rep"); return; }
    if ((r = krb5_auth_con_getsendsubkey(ctx, sac, &sub)) || !sub) {
        krb5_free_data_contents(ctx, &out);
        { fail(r, "auth_con_getsendsubkey"); return; }
    }
    printf("ok");
    put_hex("ap_rep", out.data, out.length);
    printf(" subkey_etype=%d", (int)sub->enctype);
    put_hex("subkey", sub->contents, sub->length);
    printf("\n");
    fflush(stdout);
    krb5_free_keyblock(ctx, sub);
    krb5_free_data_contents(ctx, &out);
}

int main(void)
{
    static char line[2 * MAX_LINE + 1024];
    krb5_error_code r = krb5_init_context(&ctx);
    if (r) {
        fprintf(stderr, "krb5_init_context failed: %ld\n", (long)r);
        return 1;
    }
    while (fgets(line, sizeof(line), stdin)) {
        char *cmd, *a1, *a2, *save = NULL;
        line[strcspn(line, "\r\n")] = 0;
        cmd = strtok_r(line, " ", &save);
        if (!cmd) continue;
        a1 = strtok_r(NULL, " ", &save);
        a2 = strtok_r(NULL, " ", &save);
        if (!strcmp(cmd, "quit")) break;
        else if (!strcmp(cmd, "mk_req") && a1) cmd_mk_req(a1);
        else if (!strcmp(cmd, "rd_rep") && a1) cmd_rd_rep(a1);
        else if (!strcmp(cmd, "rd_req") && a1 && a2) cmd_rd_req(a1, a2);
        else if (!strcmp(cmd, "mk_rep")) cmd_mk_rep();
        else fail(0, "unknown command or missing argument");
    }
    if (cac) krb5_auth_con_free(ctx, cac);
    if (sac) krb5_auth_con_free(ctx, sac);
    krb5_free_context(ctx);
    return 0;
}
