#!/bin/bash
# check-layers.sh (make layers): checks every #include in src/ and storage/ against the layer rules of
# docs/architecture.md, "Layers", and prints one line per violation; exits 1 if there is any.
#   base <- storage <- rpc <- api, watch <- gateway <- net <- main
# A file's layer is its folder: src/<layer>/, storage/, or src/ itself for main.c.
cd "$(dirname "$0")/.." || exit 2

# The layers each layer may include (itself first). api and watch sit side by side: neither includes
# the other. The generated protobuf headers (*.pb-c.h, from proto/) belong to rpc.
declare -A USES=(
    [base]="base"
    [storage]="storage base"
    [rpc]="rpc storage base"
    [api]="api rpc storage base"
    [watch]="watch rpc storage base"
    [gateway]="gateway api watch rpc storage base"
    [net]="net gateway api watch rpc storage base"
    [main]="main net gateway api watch rpc storage base"
)
# storage's public headers: the only ones of storage/ that src/ may include. The rest are its own.
STORAGE_PUBLIC="mvcc.h storage_io.h"
# System headers a layer may not include (glob patterns): no event loop, HTTP/2 or protobuf below rpc
# (storage is plain C over storage_io.h), and HTTP/2 nowhere but net and main.
declare -A BANNED=(
    [base]="ev.h nghttp2/* protobuf-c/* *.pb-c.h *http* curl/*"
    [storage]="ev.h nghttp2/* protobuf-c/* *.pb-c.h *http* curl/*"
    [rpc]="nghttp2/*" [api]="nghttp2/*" [watch]="nghttp2/*" [gateway]="nghttp2/*"
)

layer_of() { # path -> layer, or nothing for a file outside the layers
    case "$1" in
        storage/*/*) ;;
        storage/*) echo storage ;;
        src/*/*/*) ;;
        src/*/*) local d=${1#src/}; d=${d%%/*}; [ -n "${USES[$d]}" ] && echo "$d" ;;
        src/*) echo main ;;
    esac
}

bad=0
fail() { echo "$1"; bad=$((bad + 1)); }
mapfile -t files < <(find src storage -name '*.[ch]' | sort)

# header basename -> layer. Layers are compiled with -I per layer, so a name must be unique.
declare -A HEADER
for f in "${files[@]}"; do
    L=$(layer_of "$f")
    [ -z "$L" ] && { fail "$f: not in a layer (a file lives in src/<layer>/, storage/ or is src/main.c)"; continue; }
    case "$f" in *.h) ;; *) continue ;; esac
    h=${f##*/}
    [ -n "${HEADER[$h]}" ] && fail "$f: header name also used in layer ${HEADER[$h]} (names must be unique)"
    HEADER[$h]=$L
done

for f in "${files[@]}"; do
    L=$(layer_of "$f")
    [ -z "$L" ] && continue
    while IFS=: read -r line text; do
        if [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]]; then
            inc=${BASH_REMATCH[1]} kind=local spelled="\"${BASH_REMATCH[1]}\""
        elif [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<([^\>]+)\> ]]; then
            inc=${BASH_REMATCH[1]} kind=system spelled="<${BASH_REMATCH[1]}>"
        else
            continue
        fi
        where="$f:$line" banned=
        for pat in ${BANNED[$L]}; do
            # shellcheck disable=SC2053 # $pat is a glob on purpose
            [[ $inc == $pat ]] && banned=$pat
        done
        [ -n "$banned" ] && { fail "$where: $L may not include $spelled (banned in $L: ${BANNED[$L]})"; continue; }
        [ "$kind" = system ] && continue
        case "$inc" in
            */*) fail "$where: \"$inc\": include by file name only; the layer's -I paths find it"; continue ;;
            *.pb-c.h) H=rpc ;;
            *) H=${HEADER[$inc]} ;;
        esac
        if [ -z "$H" ]; then
            fail "$where: \"$inc\" is not a header of src/ or storage/"
        elif [[ " ${USES[$L]} " != *" $H "* ]]; then
            fail "$where: $L may not include \"$inc\" ($H); $L may use: ${USES[$L]}"
        elif [ "$H" = storage ] && [ "$L" != storage ] && [[ " $STORAGE_PUBLIC " != *" $inc "* ]]; then
            fail "$where: \"$inc\" is private to storage/; src/ may include only $STORAGE_PUBLIC"
        fi
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include' "$f")
done

if [ "$bad" -gt 0 ]; then
    echo "layers: $bad violation(s) in ${#files[@]} files (rules: scripts/check-layers.sh, docs/architecture.md)"
    exit 1
fi
echo "layers: ${#files[@]} files, every include within the rules"
