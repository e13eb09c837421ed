/* tls_lib.h: OpenSSL loaded with dlopen when TLS is configured, so that a server without TLS does
 * not map libssl and libcrypto (1.7 MB of idle RSS). tls.c and tls_auto.c include this after the
 * OpenSSL headers: each function they call is a pointer of tls_fn, resolved by tls_lib_load. */
#ifndef CETCD_TLS_LIB_H
#define CETCD_TLS_LIB_H

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stddef.h>

/* Every function called, by the library that defines it. Macros of the headers count by what they
 * expand to: SSL_CTX_set_min/max_proto_version, _set_mode and _set_session_cache_mode are
 * SSL_CTX_ctrl; EVP_EC_gen is EVP_PKEY_Q_keygen. The server links neither library, so a call of a
 * function missing here or in the #defines below does not link. */
#define TLS_LIB_SSL_FUNCS(X)                                                                                 \
    X(SSL_CTX_check_private_key)                                                                             \
    X(SSL_CTX_ctrl)                                                                                          \
    X(SSL_CTX_free)                                                                                          \
    X(SSL_CTX_get_cert_store)                                                                                \
    X(SSL_CTX_load_verify_locations)                                                                         \
    X(SSL_CTX_new)                                                                                           \
    X(SSL_CTX_set_alpn_select_cb)                                                                            \
    X(SSL_CTX_set_cipher_list)                                                                               \
    X(SSL_CTX_set_client_CA_list)                                                                            \
    X(SSL_CTX_set_num_tickets)                                                                               \
    X(SSL_CTX_set_options)                                                                                   \
    X(SSL_CTX_set_verify)                                                                                    \
    X(SSL_CTX_use_PrivateKey)                                                                                \
    X(SSL_CTX_use_PrivateKey_file)                                                                           \
    X(SSL_CTX_use_certificate)                                                                               \
    X(SSL_CTX_use_certificate_chain_file)                                                                    \
    X(SSL_do_handshake)                                                                                      \
    X(SSL_free)                                                                                              \
    X(SSL_get1_peer_certificate)                                                                             \
    X(SSL_get_error)                                                                                         \
    X(SSL_get_verify_result)                                                                                 \
    X(SSL_load_client_CA_file)                                                                               \
    X(SSL_new)                                                                                               \
    X(SSL_pending)                                                                                           \
    X(SSL_read)                                                                                              \
    X(SSL_set_accept_state)                                                                                  \
    X(SSL_set_fd)                                                                                            \
    X(SSL_shutdown)                                                                                          \
    X(SSL_write)                                                                                             \
    X(TLS_server_method)
#define TLS_LIB_CRYPTO_FUNCS(X)                                                                              \
    X(ASN1_INTEGER_set)                                                                                      \
    X(ERR_clear_error)                                                                                       \
    X(ERR_peek_last_error)                                                                                   \
    X(ERR_reason_error_string)                                                                               \
    X(EVP_PKEY_Q_keygen)                                                                                     \
    X(EVP_PKEY_free)                                                                                         \
    X(EVP_sha256)                                                                                            \
    X(X509V3_EXT_conf_nid)                                                                                   \
    X(X509V3_set_ctx)                                                                                        \
    X(X509_EXTENSION_free)                                                                                   \
    X(X509_LOOKUP_file)                                                                                      \
    X(X509_NAME_add_entry_by_txt)                                                                            \
    X(X509_NAME_get_text_by_NID)                                                                             \
    X(X509_STORE_add_lookup)                                                                                 \
    X(X509_STORE_set_flags)                                                                                  \
    X(X509_add_ext)                                                                                          \
    X(X509_free)                                                                                             \
    X(X509_get_serialNumber)                                                                                 \
    X(X509_get_subject_name)                                                                                 \
    X(X509_getm_notAfter)                                                                                    \
    X(X509_getm_notBefore)                                                                                   \
    X(X509_gmtime_adj)                                                                                       \
    X(X509_load_crl_file)                                                                                    \
    X(X509_new)                                                                                              \
    X(X509_set_issuer_name)                                                                                  \
    X(X509_set_pubkey)                                                                                       \
    X(X509_set_version)                                                                                      \
    X(X509_sign)                                                                                             \
    X(X509_verify_cert_error_string)

/* The pointers, typed from the headers' own prototypes. */
#define TLS_LIB_MEMBER(f) __typeof__(f) *f;
typedef struct tls_lib_fns {
    TLS_LIB_SSL_FUNCS(TLS_LIB_MEMBER)
    TLS_LIB_CRYPTO_FUNCS(TLS_LIB_MEMBER)
} tls_lib_fns;
#undef TLS_LIB_MEMBER
extern tls_lib_fns tls_fn;

/* Opens libcrypto.so.3 and libssl.so.3 and fills tls_fn; once, later calls return the first
 * outcome. False with a message naming the library (or the missing function) in err. */
bool tls_lib_load(char *err, size_t errlen);

#ifndef TLS_LIB_NO_CALL_MACROS /* tls_lib.c fills the table by these names */
#define SSL_CTX_check_private_key (tls_fn.SSL_CTX_check_private_key)
#define SSL_CTX_ctrl (tls_fn.SSL_CTX_ctrl)
#define SSL_CTX_free (tls_fn.SSL_CTX_free)
#define SSL_CTX_get_cert_store (tls_fn.SSL_CTX_get_cert_store)
#define SSL_CTX_load_verify_locations (tls_fn.SSL_CTX_load_verify_locations)
#define SSL_CTX_new (tls_fn.SSL_CTX_new)
#define SSL_CTX_set_alpn_select_cb (tls_fn.SSL_CTX_set_alpn_select_cb)
#define SSL_CTX_set_cipher_list (tls_fn.SSL_CTX_set_cipher_list)
#define SSL_CTX_set_client_CA_list (tls_fn.SSL_CTX_set_client_CA_list)
#define SSL_CTX_set_num_tickets (tls_fn.SSL_CTX_set_num_tickets)
#define SSL_CTX_set_options (tls_fn.SSL_CTX_set_options)
#define SSL_CTX_set_verify (tls_fn.SSL_CTX_set_verify)
#define SSL_CTX_use_PrivateKey (tls_fn.SSL_CTX_use_PrivateKey)
#define SSL_CTX_use_PrivateKey_file (tls_fn.SSL_CTX_use_PrivateKey_file)
#define SSL_CTX_use_certificate (tls_fn.SSL_CTX_use_certificate)
#define SSL_CTX_use_certificate_chain_file (tls_fn.SSL_CTX_use_certificate_chain_file)
#define SSL_do_handshake (tls_fn.SSL_do_handshake)
#define SSL_free (tls_fn.SSL_free)
#define SSL_get1_peer_certificate (tls_fn.SSL_get1_peer_certificate)
#define SSL_get_error (tls_fn.SSL_get_error)
#define SSL_get_verify_result (tls_fn.SSL_get_verify_result)
#define SSL_load_client_CA_file (tls_fn.SSL_load_client_CA_file)
#define SSL_new (tls_fn.SSL_new)
#define SSL_pending (tls_fn.SSL_pending)
#define SSL_read (tls_fn.SSL_read)
#define SSL_set_accept_state (tls_fn.SSL_set_accept_state)
#define SSL_set_fd (tls_fn.SSL_set_fd)
#define SSL_shutdown (tls_fn.SSL_shutdown)
#define SSL_write (tls_fn.SSL_write)
#define TLS_server_method (tls_fn.TLS_server_method)
#define ASN1_INTEGER_set (tls_fn.ASN1_INTEGER_set)
#define ERR_clear_error (tls_fn.ERR_clear_error)
#define ERR_peek_last_error (tls_fn.ERR_peek_last_error)
#define ERR_reason_error_string (tls_fn.ERR_reason_error_string)
#define EVP_PKEY_Q_keygen (tls_fn.EVP_PKEY_Q_keygen)
#define EVP_PKEY_free (tls_fn.EVP_PKEY_free)
#define EVP_sha256 (tls_fn.EVP_sha256)
#define X509V3_EXT_conf_nid (tls_fn.X509V3_EXT_conf_nid)
#define X509V3_set_ctx (tls_fn.X509V3_set_ctx)
#define X509_EXTENSION_free (tls_fn.X509_EXTENSION_free)
#define X509_LOOKUP_file (tls_fn.X509_LOOKUP_file)
#define X509_NAME_add_entry_by_txt (tls_fn.X509_NAME_add_entry_by_txt)
#define X509_NAME_get_text_by_NID (tls_fn.X509_NAME_get_text_by_NID)
#define X509_STORE_add_lookup (tls_fn.X509_STORE_add_lookup)
#define X509_STORE_set_flags (tls_fn.X509_STORE_set_flags)
#define X509_add_ext (tls_fn.X509_add_ext)
#define X509_free (tls_fn.X509_free)
#define X509_get_serialNumber (tls_fn.X509_get_serialNumber)
#define X509_get_subject_name (tls_fn.X509_get_subject_name)
#define X509_getm_notAfter (tls_fn.X509_getm_notAfter)
#define X509_getm_notBefore (tls_fn.X509_getm_notBefore)
#define X509_gmtime_adj (tls_fn.X509_gmtime_adj)
#define X509_load_crl_file (tls_fn.X509_load_crl_file)
#define X509_new (tls_fn.X509_new)
#define X509_set_issuer_name (tls_fn.X509_set_issuer_name)
#define X509_set_pubkey (tls_fn.X509_set_pubkey)
#define X509_set_version (tls_fn.X509_set_version)
#define X509_sign (tls_fn.X509_sign)
#define X509_verify_cert_error_string (tls_fn.X509_verify_cert_error_string)
#endif

#endif
