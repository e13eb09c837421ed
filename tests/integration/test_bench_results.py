# test_bench_results.py: bench/bench.py replaces only its own part of bench/RESULTS.md (between its
# markers), keeping the sections other scripts write (Kubernetes, snapshots) byte for byte, and writes
# a well-formed SVG chart of the cetcd:etcd ratios. No server runs: the functions are called on sample
# files and on the checked-in RESULTS.md.
import importlib.util
import os
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lib import ROOT, Tally  # noqa: E402

spec = importlib.util.spec_from_file_location("bench_py", os.path.join(ROOT, "bench", "bench.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
t = Tally()

PART = "# cetcd vs etcd benchmark\n\n| workload | cetcd |\n|---|---|\n| put | 2 |\n\n"
NEW = "# cetcd vs etcd benchmark\n\nnew table\n"
# other scripts' sections, with what a careless rewrite would lose: trailing spaces, no final newline
K8S = "<!-- k8s:begin (written by tests/k8s/bench.sh) -->\n## K8s  \n| a | b |\n<!-- k8s:end -->\n\n"
SNAP = "<!-- snapshot bench (bench/snapshot_bench.sh) -->\n## Snapshot\ttab\n<!-- end snapshot bench -->"


def between(text):
    i = text.index("<!-- bench.py:begin")
    j = text.index(bench.END) + len(bench.END)
    return text[:i], text[i:j], text[j:]


# a file from before the markers: its leading generated part is replaced, the rest kept
old = PART + K8S + SNAP
new = bench.splice_results(old, NEW)
pre, block, post = between(new)
t.eq("unmarked file: nothing before the new part", "", pre)
t.check("unmarked file: the new part between the markers", NEW.rstrip("\n") in block and PART not in new, new)
t.eq("unmarked file: the other sections byte for byte", K8S + SNAP, post.lstrip("\n"))
t.eq("marked file: a second write changes only the part", new.replace(NEW.rstrip("\n"), "x"),
     bench.splice_results(new, "x\n"))
t.eq("the same part twice: the same file", new, bench.splice_results(new, NEW))

# markers in the middle (another script's section first)
mid = K8S + bench.BEGIN + "\nold\n" + bench.END + "\n\n" + SNAP
t.eq("marked part in the middle: both neighbours kept", K8S + bench.BEGIN + "\nfresh\n" + bench.END + "\n\n" + SNAP,
     bench.splice_results(mid, "fresh\n\n"))
t.eq("a file of other sections only: the part goes first", bench.BEGIN + "\nfresh\n" + bench.END + "\n\n" + SNAP,
     bench.splice_results(SNAP, "fresh\n"))
t.eq("no file: just the part", bench.BEGIN + "\nfresh\n" + bench.END + "\n", bench.splice_results(None, "fresh"))
try:
    bench.splice_results(bench.BEGIN + "\nhalf\n" + SNAP, "x")
    t.fail("a begin marker without its end is refused")
except ValueError:
    t.ok("a begin marker without its end is refused")

# the checked-in RESULTS.md: one pair of markers, and a rewrite keeps the rest of it byte for byte
real = open(os.path.join(ROOT, "bench", "RESULTS.md")).read()
t.eq("RESULTS.md has bench.py's markers once", (1, 1), (real.count("<!-- bench.py:begin"), real.count(bench.END)))
rpre, _, rpost = between(real)
out = bench.splice_results(real, NEW)
opre, oblock, opost = between(out)
t.check("RESULTS.md rewrite keeps the Kubernetes and snapshot sections byte for byte",
        (opre, opost) == (rpre, rpost) and "<!-- k8s:begin" in rpost and "<!-- snapshot bench" in rpost)
t.check("RESULTS.md links the ratio chart", "](RESULTS-ratios.svg)" in real and
        os.path.exists(os.path.join(ROOT, "bench", "RESULTS-ratios.svg")))

# the chart: well-formed, one bar per row, coloured by side of 1x, labels escaped
rows = [("put 64/8", 2.87), ("watch <1000> & more", 0.85), ("binary size", 30.3)]
svg = bench.ratio_chart(rows)
try:
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    bars = [r for r in root.iter(ns + "rect") if r.get("x") is not None]
    t.eq("chart: one bar per row", 3, len(bars))
    t.eq("chart: green above 1x, red below", ["#3a7d44", "#c0392b", "#3a7d44"], [b.get("fill") for b in bars])
    texts = [e.text for e in root.iter(ns + "text")]
    t.check("chart: labels and ratios written", "watch <1000> & more" in texts and "0.85x" in texts, texts)
    wide = sorted(bars, key=lambda b: float(b.get("width")))
    t.eq("chart: the longest bar is the largest ratio (log scale)", "binary size",
         rows[bars.index(wide[-1])][0])
except ET.ParseError as e:
    t.fail("chart is well-formed XML", e)
t.check("chart: an empty run still gives a valid SVG", ET.fromstring(bench.ratio_chart([])) is not None)

# the ratios the chart draws are the table's 'cetcd advantage' column
samples = {"put": {"cetcd": [{"rps": 300.0}], "etcd": [{"rps": 100.0}]},
           "RSS": {"cetcd": [{"mib": 2.0}], "etcd": [{"mib": 24.0}]},
           "broken": {"cetcd": [{"error": "x"}], "etcd": [{"rps": 1.0}]}}
t.eq("ratios: higher-is-better and lower-is-better rows, failed rows left out", [("put", 3.0), ("RSS", 12.0)],
     bench.ratios(samples))
t.finish()
