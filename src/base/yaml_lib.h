/* yaml_lib.h: libyaml loaded with dlopen for --config-file alone, so that a server started from flags
 * does not map it (idle RSS, issue 16). config_file.c includes this after <yaml.h>: each libyaml
 * function it calls is a pointer of yaml_fn, filled by yaml_lib_load. */
#ifndef CETCD_YAML_LIB_H
#define CETCD_YAML_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

/* Every function config_file.c calls. The server does not link libyaml, so a call of one missing
 * here or in the #defines below does not link. */
#define YAML_LIB_FUNCS(X)                                                                                    \
    X(yaml_document_delete)                                                                                  \
    X(yaml_document_get_node)                                                                                \
    X(yaml_document_get_root_node)                                                                           \
    X(yaml_parser_delete)                                                                                    \
    X(yaml_parser_initialize)                                                                                \
    X(yaml_parser_load)                                                                                      \
    X(yaml_parser_set_input_file)

/* The pointers, typed from yaml.h's own prototypes. */
#define YAML_LIB_MEMBER(f) __typeof__(f) *f;
typedef struct yaml_lib_fns {
    YAML_LIB_FUNCS(YAML_LIB_MEMBER)
} yaml_lib_fns;
#undef YAML_LIB_MEMBER
extern yaml_lib_fns yaml_fn;

/* Opens libyaml-0.so.2 and fills yaml_fn; once, later calls return the first outcome. False with a
 * message naming the library (or the missing function) in err. */
bool yaml_lib_load(char *err, size_t errlen);

#ifndef YAML_LIB_NO_CALL_MACROS /* yaml_lib.c fills the table by these names */
#define yaml_document_delete (yaml_fn.yaml_document_delete)
#define yaml_document_get_node (yaml_fn.yaml_document_get_node)
#define yaml_document_get_root_node (yaml_fn.yaml_document_get_root_node)
#define yaml_parser_delete (yaml_fn.yaml_parser_delete)
#define yaml_parser_initialize (yaml_fn.yaml_parser_initialize)
#define yaml_parser_load (yaml_fn.yaml_parser_load)
#define yaml_parser_set_input_file (yaml_fn.yaml_parser_set_input_file)
#endif

#endif
