/* config_file.c: --config-file. etcd reads a YAML map whose keys are its flag names (a list value,
 * such as log-outputs, stands for the comma list) and two nested maps for the TLS files; keys it does
 * not know are ignored, as etcd's YAML decoding ignores them. Parsed with libyaml's document API, the
 * library loaded here when a file is given (yaml_lib.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config_file.h"
#include "yaml_lib.h" /* after <yaml.h>: libyaml is loaded for the file alone */

/* The nested TLS maps: a key inside them and the flag it stands for. */
static const struct {
    const char *section, *key, *flag;
} nested[] = {
    {"client-transport-security", "cert-file", "cert-file"},
    {"client-transport-security", "key-file", "key-file"},
    {"client-transport-security", "client-cert-auth", "client-cert-auth"},
    {"client-transport-security", "trusted-ca-file", "trusted-ca-file"},
    {"client-transport-security", "auto-tls", "auto-tls"},
    {"client-transport-security", "crl-file", "client-crl-file"},
    {"peer-transport-security", "cert-file", "peer-cert-file"},
    {"peer-transport-security", "key-file", "peer-key-file"},
    {"peer-transport-security", "client-cert-auth", "peer-client-cert-auth"},
    {"peer-transport-security", "trusted-ca-file", "peer-trusted-ca-file"},
    {"peer-transport-security", "auto-tls", "peer-auto-tls"},
};

/* A scalar's text, or a sequence of scalars joined with commas (malloc'd); NULL for anything else
 * and for null values (etcd leaves the default). */
static char *value_text(yaml_document_t *doc, yaml_node_t *n) {
    if (n->type == YAML_SCALAR_NODE) {
        const char *v = (const char *)n->data.scalar.value;
        if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && (!strcmp(v, "null") || !strcmp(v, "~") || !*v))
            return NULL;
        return strdup(v);
    }
    if (n->type != YAML_SEQUENCE_NODE) return NULL;
    size_t cap = 1, used = 0;
    char *out = calloc(1, cap);
    for (yaml_node_item_t *it = n->data.sequence.items.start; out && it < n->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(doc, *it);
        if (!item || item->type != YAML_SCALAR_NODE) continue;
        size_t len = strlen((const char *)item->data.scalar.value);
        char *grown = realloc(out, cap += len + 1);
        if (!grown) return free(out), NULL;
        out = grown;
        used += (size_t)sprintf(out + used, "%s%s", used ? "," : "", (const char *)item->data.scalar.value);
    }
    return out;
}

static int set_value(config *cfg, yaml_document_t *doc, const char *flag, yaml_node_t *v,
                     int (*set)(config *, const char *, const char *)) {
    char *text = value_text(doc, v);
    if (!text) return -1;
    return set(cfg, flag, text); /* kept for the server's life: config holds the pointer */
}

static int load_section(config *cfg, yaml_document_t *doc, const char *section, yaml_node_t *map,
                        int (*set)(config *, const char *, const char *)) {
    if (map->type != YAML_MAPPING_NODE) return -1;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE) continue;
        for (size_t i = 0; i < sizeof nested / sizeof nested[0]; i++) {
            if (strcmp(nested[i].section, section) != 0 ||
                strcmp(nested[i].key, (char *)k->data.scalar.value) != 0)
                continue;
            int rc = set_value(cfg, doc, nested[i].flag, v, set);
            if (rc >= 0) return rc;
        }
    }
    return -1;
}

int config_file_load(const char *path, config *cfg,
                     int (*set)(config *cfg, const char *name, const char *value)) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cetcd: --config-file %s: %s\n", path, strerror(errno));
        return 2;
    }
    char err[400];
    if (!yaml_lib_load(err, sizeof err)) {
        fprintf(stderr, "cetcd: --config-file %s: %s\n", path, err);
        fclose(f);
        return 2;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        fprintf(stderr, "cetcd: --config-file %s: line %zu: %s\n", path, parser.problem_mark.line + 1,
                parser.problem ? parser.problem : "invalid YAML");
        yaml_parser_delete(&parser);
        fclose(f);
        return 2;
    }
    int rc = -1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && root->type != YAML_MAPPING_NODE) {
        fprintf(stderr, "cetcd: --config-file %s: not a YAML map of etcd's settings\n", path);
        rc = 2;
    }
    for (yaml_node_pair_t *p = root && rc < 0 ? root->data.mapping.pairs.start : NULL;
         p && p < root->data.mapping.pairs.top && rc < 0; p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key), *v = yaml_document_get_node(&doc, p->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE) continue;
        const char *key = (const char *)k->data.scalar.value;
        if (v->type == YAML_MAPPING_NODE)
            rc = load_section(cfg, &doc, key, v, set);
        else if (strcmp(key, "config-file") != 0)
            rc = set_value(cfg, &doc, key, v, set);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}
