#!/usr/bin/python3
# debsrc.py: prints one-line "deb-src" entries derived from this system's own apt sources
# (sources.list and sources.list.d/*.list|*.sources, deb822 or one-line), so the benchmark build
# can fetch etcd's Debian source package without naming any mirror host itself.
import glob, os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 else "/etc/apt"
codename = ""
try:
    for line in open("/etc/os-release"):
        if line.startswith("VERSION_CODENAME="):
            codename = line.split("=", 1)[1].strip().strip('"')
except OSError:
    pass

entries = []  # (options, uri, suite, components)

def add(opts, uri, suites, comps):
    for s in suites:
        # keep only the distribution's own suites (bookworm, bookworm-updates, ...), which
        # drops third-party repos that publish no sources
        if codename and not (s == codename or s.startswith(codename + "-") or s.startswith(codename + "/")):
            continue
        entries.append((opts, uri, s, comps))

def one_line(path):
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^(deb|deb-src)\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)$", line)
        if not m or m.group(1) != "deb":
            continue
        opts = (m.group(2) or "").strip()
        add(opts, m.group(3), [m.group(4)], m.group(5).split())

def deb822(path):
    stanza = {}
    key = None
    def flush():
        if not stanza:
            return
        if "deb" not in stanza.get("types", "").split():
            return
        if stanza.get("enabled", "yes").lower() == "no":
            return
        opts = []
        if "signed-by" in stanza and stanza["signed-by"].strip() and "\n" not in stanza["signed-by"].strip():
            opts.append("signed-by=" + stanza["signed-by"].strip())
        o = "[" + " ".join(opts) + "]" if opts else ""
        for uri in stanza.get("uris", "").split():
            add(o, uri, stanza.get("suites", "").split(), stanza.get("components", "").split())
    for raw in open(path):
        line = raw.rstrip("\n")
        if line.startswith("#"):
            continue
        if not line.strip():
            flush(); stanza = {}; key = None
            continue
        if line[0] in " \t" and key:
            stanza[key] += "\n" + line.strip()
            continue
        if ":" in line:
            key, val = line.split(":", 1)
            key = key.strip().lower()
            stanza[key] = val.strip()
    flush()

if os.path.exists(os.path.join(root, "sources.list")):
    one_line(os.path.join(root, "sources.list"))
for p in sorted(glob.glob(os.path.join(root, "sources.list.d", "*"))):
    if p.endswith(".list"):
        one_line(p)
    elif p.endswith(".sources"):
        deb822(p)

seen = set()
for opts, uri, suite, comps in entries:
    line = " ".join(x for x in ["deb-src", opts, uri, suite] + comps if x)
    if line not in seen:
        seen.add(line)
        print(line)
