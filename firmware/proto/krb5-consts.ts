// Kerberos V5 protocol numbers of krb5.ts as plain exported constants: esbuild inlines
// a constant imported from another module but keeps a module's own `const` as a
// variable (one interpreter variable each on the board). krb5.ts re-exports them all.

export const PVNO = 5;

// Message types (RFC 4120 7.5.7) = their [APPLICATION n] tags.
export const KRB_AS_REQ = 10;
export const KRB_AS_REP = 11;
export const KRB_TGS_REQ = 12;
export const KRB_TGS_REP = 13;
export const KRB_AP_REQ = 14;
export const KRB_AP_REP = 15;
export const KRB_SAFE = 20;
export const KRB_PRIV = 21;
export const KRB_CRED = 22;
export const KRB_ERROR = 30;
// Other [APPLICATION n] tags.
export const APP_TICKET = 1;
export const APP_AUTHENTICATOR = 2;
export const APP_ENC_TICKET_PART = 3;
export const APP_ENC_AS_REP_PART = 25;
export const APP_ENC_TGS_REP_PART = 26;
export const APP_ENC_AP_REP_PART = 27;

// Pre-authentication data types (RFC 4120 7.5.2, RFC 6113, RFC 6806).
export const PA_TGS_REQ = 1;
export const PA_ENC_TIMESTAMP = 2;
export const PA_PW_SALT = 3;
export const PA_ETYPE_INFO = 11;
export const PA_PK_AS_REQ = 16;
export const PA_PK_AS_REP = 17;
export const PA_ETYPE_INFO2 = 19;
export const PA_PAC_REQUEST = 128;
export const PA_FX_COOKIE = 133;
export const PA_FX_FAST = 136;
export const PA_FX_ERROR = 137;
export const PA_ENCRYPTED_CHALLENGE = 138;
export const PA_REQ_ENC_PA_REP = 149;

// Name types (RFC 4120 6.2).
export const NT_UNKNOWN = 0;
export const NT_PRINCIPAL = 1;
export const NT_SRV_INST = 2;
export const NT_SRV_HST = 3;
export const NT_SRV_XHST = 4;
export const NT_UID = 5;
export const NT_X500_PRINCIPAL = 6;
export const NT_SMTP_NAME = 7;
export const NT_ENTERPRISE = 10;

// KDCOptions masks (RFC 4120 5.4.1; canonicalize RFC 6806).
export const KDC_OPT_FORWARDABLE = 0x40000000;
export const KDC_OPT_FORWARDED = 0x20000000;
export const KDC_OPT_PROXIABLE = 0x10000000;
export const KDC_OPT_PROXY = 0x08000000;
export const KDC_OPT_ALLOW_POSTDATE = 0x04000000;
export const KDC_OPT_POSTDATED = 0x02000000;
export const KDC_OPT_RENEWABLE = 0x00800000;
export const KDC_OPT_CANONICALIZE = 0x00010000;
export const KDC_OPT_DISABLE_TRANSITED_CHECK = 0x00000020;
export const KDC_OPT_RENEWABLE_OK = 0x00000010;
export const KDC_OPT_ENC_TKT_IN_SKEY = 0x00000008;
export const KDC_OPT_RENEW = 0x00000002;
export const KDC_OPT_VALIDATE = 0x00000001;

// TicketFlags masks (RFC 4120 5.3; enc-pa-rep RFC 6806).
export const TKT_FLG_FORWARDABLE = 0x40000000;
export const TKT_FLG_FORWARDED = 0x20000000;
export const TKT_FLG_PROXIABLE = 0x10000000;
export const TKT_FLG_PROXY = 0x08000000;
export const TKT_FLG_MAY_POSTDATE = 0x04000000;
export const TKT_FLG_POSTDATED = 0x02000000;
export const TKT_FLG_INVALID = 0x01000000;
export const TKT_FLG_RENEWABLE = 0x00800000;
export const TKT_FLG_INITIAL = 0x00400000;
export const TKT_FLG_PRE_AUTHENT = 0x00200000;
export const TKT_FLG_HW_AUTHENT = 0x00100000;
export const TKT_FLG_TRANSIT_POLICY_CHECKED = 0x00080000;
export const TKT_FLG_OK_AS_DELEGATE = 0x00040000;
export const TKT_FLG_ENC_PA_REP = 0x00010000;

// APOptions masks (RFC 4120 5.5.1).
export const AP_OPT_USE_SESSION_KEY = 0x40000000;
export const AP_OPT_MUTUAL_REQUIRED = 0x20000000;

// Error codes (RFC 4120 7.5.9).
export const KDC_ERR_NONE = 0;
export const KDC_ERR_NAME_EXP = 1;
export const KDC_ERR_SERVICE_EXP = 2;
export const KDC_ERR_BAD_PVNO = 3;
export const KDC_ERR_C_OLD_MAST_KVNO = 4;
export const KDC_ERR_S_OLD_MAST_KVNO = 5;
export const KDC_ERR_C_PRINCIPAL_UNKNOWN = 6;
export const KDC_ERR_S_PRINCIPAL_UNKNOWN = 7;
export const KDC_ERR_PRINCIPAL_NOT_UNIQUE = 8;
export const KDC_ERR_NULL_KEY = 9;
export const KDC_ERR_CANNOT_POSTDATE = 10;
export const KDC_ERR_NEVER_VALID = 11;
export const KDC_ERR_POLICY = 12;
export const KDC_ERR_BADOPTION = 13;
export const KDC_ERR_ETYPE_NOSUPP = 14;
export const KDC_ERR_SUMTYPE_NOSUPP = 15;
export const KDC_ERR_PADATA_TYPE_NOSUPP = 16;
export const KDC_ERR_TRTYPE_NOSUPP = 17;
export const KDC_ERR_CLIENT_REVOKED = 18;
export const KDC_ERR_SERVICE_REVOKED = 19;
export const KDC_ERR_TGT_REVOKED = 20;
export const KDC_ERR_CLIENT_NOTYET = 21;
export const KDC_ERR_SERVICE_NOTYET = 22;
export const KDC_ERR_KEY_EXPIRED = 23;
export const KDC_ERR_PREAUTH_FAILED = 24;
export const KDC_ERR_PREAUTH_REQUIRED = 25;
export const KDC_ERR_SERVER_NOMATCH = 26;
export const KDC_ERR_MUST_USE_USER2USER = 27;
export const KDC_ERR_PATH_NOT_ACCEPTED = 28;
export const KDC_ERR_SVC_UNAVAILABLE = 29;
export const KRB_AP_ERR_BAD_INTEGRITY = 31;
export const KRB_AP_ERR_TKT_EXPIRED = 32;
export const KRB_AP_ERR_TKT_NYV = 33;
export const KRB_AP_ERR_REPEAT = 34;
export const KRB_AP_ERR_NOT_US = 35;
export const KRB_AP_ERR_BADMATCH = 36;
export const KRB_AP_ERR_SKEW = 37;
export const KRB_AP_ERR_BADADDR = 38;
export const KRB_AP_ERR_BADVERSION = 39;
export const KRB_AP_ERR_MSG_TYPE = 40;
export const KRB_AP_ERR_MODIFIED = 41;
export const KRB_AP_ERR_BADORDER = 42;
export const KRB_AP_ERR_BADKEYVER = 44;
export const KRB_AP_ERR_NOKEY = 45;
export const KRB_AP_ERR_MUT_FAIL = 46;
export const KRB_AP_ERR_BADDIRECTION = 47;
export const KRB_AP_ERR_METHOD = 48;
export const KRB_AP_ERR_BADSEQ = 49;
export const KRB_AP_ERR_INAPP_CKSUM = 50;
export const KRB_ERR_RESPONSE_TOO_BIG = 52;
export const KRB_ERR_GENERIC = 60;
export const KRB_ERR_FIELD_TOOLONG = 61;
export const KDC_ERR_WRONG_REALM = 68;

// Key usages (RFC 4120 7.5.1).
export const KU_AS_REQ_PA_ENC_TIMESTAMP = 1;
export const KU_KDC_REP_TICKET = 2;
export const KU_AS_REP_ENCPART = 3;
export const KU_TGS_REQ_AUTH_DAT_SESSKEY = 4;
export const KU_TGS_REQ_AUTH_DAT_SUBKEY = 5;
export const KU_TGS_REQ_AUTH_CKSUM = 6;
export const KU_TGS_REQ_AUTH = 7;
export const KU_TGS_REP_ENCPART_SESSKEY = 8;
export const KU_TGS_REP_ENCPART_SUBKEY = 9;
export const KU_AP_REQ_AUTH_CKSUM = 10;
export const KU_AP_REQ_AUTH = 11;
export const KU_AP_REP_ENCPART = 12;
export const KU_KRB_PRIV_ENCPART = 13;
export const KU_KRB_CRED_ENCPART = 14;
export const KU_KRB_SAFE_CKSUM = 15;

// Encryption and checksum types used by this project (RFC 3962, RFC 8009).
export const ETYPE_AES128_CTS_HMAC_SHA1_96 = 17;
export const ETYPE_AES256_CTS_HMAC_SHA1_96 = 18;
export const ETYPE_AES128_CTS_HMAC_SHA256_128 = 19;
export const ETYPE_AES256_CTS_HMAC_SHA384_192 = 20;
export const CKSUMTYPE_HMAC_SHA1_96_AES128 = 15;
export const CKSUMTYPE_HMAC_SHA1_96_AES256 = 16;
export const CKSUMTYPE_HMAC_SHA256_128_AES128 = 19;
export const CKSUMTYPE_HMAC_SHA384_192_AES256 = 20;

// Address types (RFC 4120 7.5.3).
export const ADDRTYPE_INET = 2;
export const ADDRTYPE_INET6 = 24;
