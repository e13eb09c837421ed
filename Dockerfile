# Dockerfile: cetcd as an etcd image, on Debian 12 slim. The build stage compiles cetcd and its man page;
# the runtime stage holds the binary, the libraries it links or loads, Debian's etcdctl, and an entrypoint that
# answers to etcd's command line, also as /usr/local/bin/etcd for a Kubernetes etcd static pod
# (README.md, "The Docker image"). Build: docker build -t cetcd .
FROM debian:12-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libev-dev libnghttp2-dev \
    libprotobuf-c-dev protobuf-c-compiler libxxhash-dev libssl-dev libyaml-dev libcrypt-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY proto proto
COPY scripts scripts
COPY src src
COPY storage storage
# what the server needs is installed above: the marker keeps the Makefile from installing the test
# tools (etcd, Go, clang) that scripts/install-deps.sh adds for `make check`
RUN mkdir -p build && touch build/.deps-ok \
 && make -j"$(nproc)" build/cetcd build/cetcd.1 \
 && make install DESTDIR=/out PREFIX=/usr/local

# libnghttp2 is linked (libev and protobuf-c are linked in statically, xxhash compiled in); libssl3 (TLS), libyaml-0-2
# (--config-file) and libcrypt1 (password hashes) are loaded only when needed, so ldd does not list them
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libnghttp2-14 libssl3 libyaml-0-2 libcrypt1 etcd-client \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/local/ /usr/local/
COPY scripts/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN ln -s docker-entrypoint.sh /usr/local/bin/etcd && mkdir -p /var/lib/etcd
EXPOSE 2379
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
