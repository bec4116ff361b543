#!/usr/bin/env python3
"""bench/report.py RUN OUT — turns bench/measure.sh's raw figures into the report.

Reads RUN/results.tsv (MEASURE, SYSTEM, N, VALUE) and RUN/meta.tsv, writes
OUT/compare-DATE-MODE.md (tables, targets, method), OUT/compare-DATE-MODE.png (start time
vs N, log-log, one line per system) and OUT/compare-DATE-MODE.tsv (the raw figures), and
prints the Markdown. matplotlib is installed (pip, else apt) if missing.

A VALUE of "cap:S" (optionally "cap:S:notrun:M": not run because size M already took
longer) is shown as "> S s" and never replaced by an estimate; ratios against it are
bounds ("> 1,200x").
"""

import csv
import os
import shutil
import statistics
import subprocess
import sys
from collections import defaultdict

SYSTEMS = {"ours": "this ldirectord", "perl": "Perl ldirectord", "ipvsadm": "ipvsadm -R"}


class Cell:
    """The repeats of one figure: numbers, and whether a cap was hit."""

    def __init__(self, raw, measure=""):
        self.measure = measure
        self.values = []
        self.cap = None
        self.notrun = None
        self.notrun_took = None
        self.live = None
        self.fails = []
        self.skipped = False
        for v in raw:
            if v.startswith("skip:"):
                self.skipped = True
            elif v.startswith("cap:"):
                parts = v.split(":")
                self.cap = float(parts[1])
                if len(parts) >= 4 and parts[2] == "live":
                    self.live = int(parts[3])
                if len(parts) >= 4 and parts[2] == "notrun":
                    self.notrun = parts[3]
                    self.notrun_took = float(parts[4]) if len(parts) >= 5 else None
            elif v.startswith("fail:"):
                self.fails.append(v[5:])
            else:
                self.values.append(float(v))

    @property
    def capped(self):
        return self.cap is not None

    @property
    def median(self):
        return statistics.median(self.values) if self.values else None

    def bound(self):
        """(value, is_lower_bound) for ratios: a capped figure is at least its cap."""
        if self.capped:
            return self.cap, True
        return self.median, False


def fmt_s(x):
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:,.0f} s"
    if x >= 10:
        return f"{x:.1f} s"
    if x >= 1:
        return f"{x:.2f} s"
    return f"{x * 1000:.0f} ms" if x >= 0.01 else f"{x * 1000:.1f} ms"


def fmt_cell(cell, fmt=fmt_s):
    if cell is None:
        return "not measured"
    if cell.capped and cell.live is not None and cell.measure != "start" and not cell.values:
        # a session's figures when its start did not finish
        return f"not measured: the start did not finish within {fmt_s(cell.cap)}"
    if cell.capped:
        text = f"> {fmt(cell.cap)}"
        if cell.notrun and cell.notrun_took is not None:
            text += (
                f" (not run: N = {int(cell.notrun):,} took {fmt(cell.notrun_took)}, and the Perl "
                "checks run one real after another)"
            )
        elif cell.notrun:
            text += f" (not run: N = {int(cell.notrun):,} already took longer)"
        elif cell.live is not None:
            text += f" ({cell.live:,} live by then)"
        elif cell.values:
            text += f" ({len(cell.values)} of {len(cell.values) + 1} runs finished)"
        return text
    if cell.fails and not cell.values:
        return "failed: " + ", ".join(sorted(set(cell.fails)))
    if not cell.values:
        return "not measured (time budget)" if cell.skipped else "–"
    if len(cell.values) == 1:
        return fmt(cell.values[0])
    return f"{fmt(cell.median)} [{fmt(min(cell.values))}–{fmt(max(cell.values))}]"


def ratio(num, den):
    """num / den as text, a bound when either is capped."""
    if num is None or den is None:
        return "–"
    (a, a_low), (b, b_low) = num.bound(), den.bound()
    if a is None or b is None or b == 0:
        return "–"
    if a_low and b_low:
        return "–"
    r = a / b
    if a_low:
        return f"> {r:,.0f}×" if r >= 10 else f"> {r:.2f}×"
    if b_low:
        return f"< {r:.2f}×"
    return f"{r:,.0f}×" if r >= 10 else f"{r:.2f}×"


def ops_text(results, system, n):
    """The reload's operations, and all those logged in its window when health changes
    (reals flapping on a starved host) added more."""
    caused = cell(results, "reload_ops", system, n)
    if caused is None:
        return "not measured"
    text = fmt_cell(caused, lambda x: f"{x:,.0f}")
    every = cell(results, "reload_ops_all", system, n)
    if every and every.values and caused.values and max(every.values) > max(caused.values):
        text += (
            f" ({fmt_cell(every, lambda x: f'{x:,.0f}')} logged in the window: the others on "
            "reals whose health changed meanwhile)"
        )
    return text


def load(run):
    results = defaultdict(list)
    with open(os.path.join(run, "results.tsv")) as f:
        for row in csv.reader(f, delimiter="\t"):
            if len(row) == 4:
                results[(row[0], row[1], int(row[2]))].append(row[3])
    meta = {}
    with open(os.path.join(run, "meta.tsv")) as f:
        for line in f:
            if "\t" in line:
                k, v = line.rstrip("\n").split("\t", 1)
                meta.setdefault(k, v)
    return results, meta


def cell(results, measure, system, n):
    raw = results.get((measure, system, n))
    return Cell(raw, measure) if raw else None


def sizes(results, measure):
    return sorted({n for (m, _, n) in results if m == measure})


def ensure_matplotlib():
    try:
        import matplotlib  # noqa: F401

        return sys.executable
    except ImportError:
        pass
    print("report: installing matplotlib", file=sys.stderr)
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "matplotlib"], check=False
    )
    if pip.returncode == 0:
        return sys.executable
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "python3-matplotlib"],
        check=False,
        stdout=subprocess.DEVNULL,
    )
    return "/usr/bin/python3"


def chart(results, meta, path):
    """Start time vs N, log-log; a run stopped at its cap is drawn at the cap with an up arrow,
    a size not run is not drawn."""
    python = ensure_matplotlib()
    series = {}
    for system in SYSTEMS:
        points = []
        for n in sizes(results, "start"):
            c = cell(results, "start", system, n)
            if c is None:
                continue
            if c.capped and c.notrun:
                continue  # not run: no point, not even a bound
            if c.capped:
                points.append((n, c.cap, c.cap, c.cap, True))
            elif c.values:
                points.append((n, c.median, min(c.values), max(c.values), False))
        if points:
            series[SYSTEMS[system]] = points
    title = (
        f"Cold start to a fully programmed table ({meta.get('date', '?')}, "
        f"kernel {meta.get('vm_kernel', meta.get('vm_kernel_uname', '?'))}, "
        f"QEMU {meta.get('accel', '?').upper()})"
    )
    script = r"""
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
series, title, path = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
styles = {"this ldirectord": ("o", "tab:blue"), "ipvsadm -R": ("s", "tab:green"),
          "Perl ldirectord": ("^", "tab:red")}
for name, points in series.items():
    marker, color = styles.get(name, ("o", None))
    done = [p for p in points if not p[4]]
    capped = [p for p in points if p[4]]
    if done:
        xs = [p[0] for p in done]; ys = [p[1] for p in done]
        err = [[p[1] - p[2] for p in done], [p[3] - p[1] for p in done]]
        ax.errorbar(xs, ys, yerr=err, marker=marker, color=color, label=name, capsize=3)
    if capped:
        xs = [p[0] for p in capped]; ys = [p[1] for p in capped]
        ax.scatter(xs, ys, marker=marker, facecolors="none", edgecolors=color, s=70,
                   label=f"{name}: > cap (not finished)")
        for x, y in zip(xs, ys):
            ax.annotate("", xy=(x, y * 2.2), xytext=(x, y),
                        arrowprops=dict(arrowstyle="->", color=color))
        if done:
            ax.plot([done[-1][0], xs[0]], [done[-1][1], ys[0]], linestyle=":", color=color)
ax.set_xscale("log"); ax.set_yscale("log")
ax.set_xlabel("real servers N (10 per virtual service, all alive)")
ax.set_ylabel("seconds from start to N live destinations")
ax.set_title(title, fontsize=9)
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(path)
"""
    import json

    subprocess.run(
        [python, "-c", script, json.dumps(series), title, path], check=True
    )


def percentile(values, p):
    s = sorted(values)
    i = max(1, int(len(s) * p / 100 + 0.999999))
    return s[i - 1]


def report(results, meta, png_name):
    out = []
    w = out.append
    mode = meta.get("mode", "?")
    cap = float(meta.get("perl_cap", "0") or 0)
    timeout = float(meta.get("checktimeout", "3"))
    interval = meta.get("checkinterval", "5")
    w(f"# Benchmark: this ldirectord vs the Perl ldirectord vs `ipvsadm -R` ({mode} run)")
    w("")
    if meta.get("incomplete"):
        w(f"**Incomplete run**: {meta['incomplete']}; the figures below are those measured before.")
        w("")
    w(
        f"Run on {meta.get('date', '?')} (commit {meta.get('commit', '?')}) by `bench/compare"
        f"{' --quick' if mode == 'quick' else ''}`, everything in ONE boot of the IPVS VM:"
    )
    w("")
    w(
        f"* **VM**: Debian kernel {meta.get('vm_kernel', meta.get('vm_kernel_uname', '?'))}, "
        f"QEMU **{meta.get('accel', '?').upper()}**, {meta.get('vcpus', '?')} vCPU, "
        f"{meta.get('vm_mem', '?')} MiB; guest CPU \"{meta.get('vm_cpu', '?')}\""
    )
    w(
        f"* **Host CPU**: {meta.get('host_cpu', '?')}, {meta.get('host_cores', '?')} cores, "
        f"shared (load average {meta.get('host_load', '?')} when the run began)"
    )
    w(
        f"* **Systems**: {meta.get('ldirectord_version', 'this ldirectord')} (release build); "
        f"the Perl ldirectord from Debian's package ({meta.get('perl_version', '?')}); "
        f"{meta.get('ipvsadm_version', 'ipvsadm')}"
    )
    w(
        f"* **Figures**: median of the repeats [min–max] ({meta.get('repeats', '?')} repeats "
        f"unless one figure is shown; Perl: {meta.get('perl_repeats', '?')}); "
        f"\"> {cap:.0f} s\" = did not finish within the cap "
        "and was stopped: a bound, never an estimate (a smaller cap is shown where the run's "
        f"time budget of {meta.get('budget', '?')} s left less). Absolute times are emulated "
        "and noisy; compare ratios within this run."
    )
    w("")

    # --- start times
    w("## Cold start to a fully programmed table")
    w("")
    w(
        "From the start command (`ldirectord CONF start`, the Perl `ldirectord CONF start`, "
        "`ipvsadm -R < rules`) until the kernel holds all N destinations with weight > 0."
    )
    w("")
    w(
        "| N reals (virtuals) | this ldirectord | `ipvsadm -R` | Perl ldirectord "
        "| Perl / ours | ours / `ipvsadm -R` |"
    )
    w("|---|---|---|---|---|---|")
    for n in sizes(results, "start"):
        ours = cell(results, "start", "ours", n)
        ipv = cell(results, "start", "ipvsadm", n)
        perl = cell(results, "start", "perl", n)
        w(
            f"| {n:,} ({n // 10:,}) | {fmt_cell(ours)} | {fmt_cell(ipv)} | "
            f"{fmt_cell(perl) if perl else 'not run'} | {ratio(perl, ours)} | {ratio(ours, ipv)} |"
        )
    w("")
    prev = [
        (n, cell(results, "start", "perl", n))
        for n in sizes(results, "start")
        if cell(results, "start", "perl", n) and cell(results, "start", "perl", n).values
    ]
    if prev:
        n, c = prev[-1]
        w(
            f"The Perl ldirectord checks one real after another: at N = {n:,} its start took "
            f"{fmt_s(c.median)}, {fmt_s(c.median / n)} per real. Where the table says \"> cap\" "
            "it was stopped (or not run); at that rate N = 10,000 would take about "
            f"{fmt_s(c.median / n * 10_000)} — an estimate for orientation, not a measurement, "
            "and not used for any ratio or target above."
        )
        w("")
    w(f"![start time vs N, log-log]({png_name})")
    w("")

    # --- other measures
    w("## Reload, detection, check cycle, resources, listing")
    w("")
    w("| measure | this ldirectord | Perl ldirectord | `ipvsadm` |")
    w("|---|---|---|---|")
    for n in sizes(results, "reload_time"):
        ours = cell(results, "reload_time", "ours", n)
        perl = cell(results, "reload_time", "perl", n)
        w(
            f"| reload adding one real to N = {n:,}: time until it is live | {fmt_cell(ours)} "
            f"| {fmt_cell(perl) if perl else 'not run'} | – |"
        )
        ops_o = cell(results, "reload_ops", "ours", n)
        ops_p = cell(results, "reload_ops", "perl", n)
        fmt_n = lambda x: f"{x:,.0f}"  # noqa: E731
        w(
            f"| … kernel operations it caused (expect 1) | {ops_text(results, 'ours', n)} "
            f"| {ops_text(results, 'perl', n) if ops_p else 'not run'} | – |"
        )
    for n in sizes(results, "detect"):
        row = []
        for system in ("ours", "perl"):
            c = cell(results, "detect", system, n)
            if c is None:
                row.append("not run")
            elif c.values:
                v = c.values
                text = (
                    f"p50 {fmt_s(percentile(v, 50))}, p95 {fmt_s(percentile(v, 95))}, "
                    f"max {fmt_s(max(v))} ({len(v)} trials)"
                )
                if c.capped:
                    text += f"; some trials > {fmt_s(c.cap)}"
                row.append(text)
            else:
                row.append(fmt_cell(c))
        w(
            f"| detection, N = {n:,}: a real's death (connections reset) → its removal "
            f"| {row[0]} | {row[1]} | – |"
        )
    for n in sizes(results, "cycle"):
        w(
            f"| check cycle, N = {n:,} of which {n // 10:,} black holes (checktimeout "
            f"{timeout:g} s) | {fmt_cell(cell(results, 'cycle', 'ours', n))} "
            f"| {fmt_cell(cell(results, 'cycle', 'perl', n)) if cell(results, 'cycle', 'perl', n) else 'not run'} | – |"
        )
    for n in sizes(results, "cpu_per_1k"):
        ours = cell(results, "cpu_per_1k", "ours", n)
        perl = cell(results, "cpu_per_1k", "perl", n)
        fmt_cpu = lambda x: f"{x:.3f} s"  # noqa: E731
        w(
            f"| CPU seconds per 1,000 checks, N = {n:,} (steady state) | "
            f"{fmt_cell(ours, fmt_cpu)} | {fmt_cell(perl, fmt_cpu) if perl else 'not run'} | – |"
        )
        fmt_mib = lambda x: f"{x / 1024:.1f} MiB"  # noqa: E731
        for key, label in (("rss_idle", "idle RSS"), ("rss_peak", "peak RSS")):
            o = cell(results, key, "ours", n)
            p = cell(results, key, "perl", n)
            w(
                f"| {label}, N = {n:,} | {fmt_cell(o, fmt_mib) if o else '–'} "
                f"| {fmt_cell(p, fmt_mib) if p else 'not run'} | – |"
            )
    for n in sizes(results, "list"):
        w(
            f"| `ldirectord list -n` vs `ipvsadm -Ln`, {n:,} destinations "
            f"| {fmt_cell(cell(results, 'list', 'ours', n))} | – "
            f"| {fmt_cell(cell(results, 'list', 'ipvsadm', n))} |"
        )
        same = cell(results, "list_identical", "ours", n)
        if same and same.values:
            w(
                "| … the two listings byte for byte | "
                f"{'identical' if min(same.values) == 1 else '**different**'} | – | – |"
            )
    w("")

    # --- targets
    w("## Targets (issue #8; ratios within this run)")
    w("")
    w("| target | measured | met |")
    w("|---|---|---|")

    def verdict(ok):
        return "yes" if ok else "**no**"

    n10 = 10_000 if (("start", "ours", 10_000) in results) else max(sizes(results, "start"))
    ours10 = cell(results, "start", "ours", n10)
    perl10 = cell(results, "start", "perl", n10)
    ipv10 = cell(results, "start", "ipvsadm", n10)
    note = "" if n10 == 10_000 else f" ({mode} run: at N = {n10:,})"
    if ours10 and perl10:
        (p, p_low), (o, o_low) = perl10.bound(), ours10.bound()
        if p is not None and o:
            if p_low and o_low:
                met, text = "unknown (neither finished)", "–"
            elif p_low and p / o < 100:
                met, text = "unknown (the bound is below 100×)", ratio(perl10, ours10)
            elif o_low and p / o < 100:
                met, text = verdict(False), ratio(perl10, ours10)
            else:
                met, text = verdict(p / o >= 100), ratio(perl10, ours10)
            w(f"| cold start at N = 10,000 ≥ 100× faster than Perl{note} | {text} | {met} |")
    both = [
        n
        for n in sizes(results, "start")
        if (c1 := cell(results, "start", "ours", n)) and c1.values and not c1.capped
        and (c2 := cell(results, "start", "perl", n)) and c2.values and not c2.capped
    ]
    if both and both[-1] != n10:
        n = both[-1]
        r = cell(results, "start", "perl", n).median / cell(results, "start", "ours", n).median
        w(
            f"| … the same ratio at N = {n:,}, the largest size both finished (for orientation) "
            f"| {r:,.0f}× | {verdict(r >= 100)} at that size |"
        )
    if ours10 and ipv10 and ipv10.median:
        (o, o_low) = ours10.bound()
        if o is not None:
            r = o / ipv10.median
            text = f"> {r:.2f}× (ours did not finish)" if o_low else f"{r:.2f}×"
            w(f"| cold start at N = 10,000 ≤ 0.5× `ipvsadm -R`{note} | {text} | {verdict(r <= 0.5)} |")
    o100k = cell(results, "start", "ours", 100_000)
    o10k = cell(results, "start", "ours", 10_000)
    if o100k and o10k and o100k.median and o10k.median:
        r = o100k.median / o10k.median
        w(f"| start grows linearly: N = 100,000 within 12× N = 10,000 | {r:.1f}× | {verdict(r <= 12)} |")
    for n in sizes(results, "reload_ops"):
        c = cell(results, "reload_ops", "ours", n)
        if c and c.values:
            w(
                f"| reload adding one real to N = {n:,} issues 1 kernel operation "
                f"| {fmt_cell(c, lambda x: f'{x:,.0f}')} | {verdict(max(c.values) == 1)} |"
            )
    for n in sizes(results, "cycle"):
        c = cell(results, "cycle", "ours", n)
        if c and c.median is not None:
            w(
                f"| check cycle with {n // 10} black holes ≤ checktimeout + 0.2 s "
                f"({timeout + 0.2:g} s) | {fmt_s(c.median)} | {verdict(c.median <= timeout + 0.2)} |"
            )
    perl_cpu = [(n, cell(results, "cpu_per_1k", "perl", n)) for n in sizes(results, "cpu_per_1k")]
    perl_cpu = [(n, c) for n, c in perl_cpu if c and c.median and c.median > 0]
    for n in sizes(results, "cpu_per_1k"):
        o = cell(results, "cpu_per_1k", "ours", n)
        for pn, p in perl_cpu:
            if o and o.median and o.median > 0:
                r = p.median / o.median
                w(
                    f"| CPU per 1,000 checks ≥ 50× lower than Perl (ours at N = {n:,}, Perl at "
                    f"N = {pn:,}) | {r:,.1f}× | {verdict(r >= 50)} |"
                )
    for n in sizes(results, "rss_peak"):
        o = cell(results, "rss_peak", "ours", n)
        if o and o.median and n == max(sizes(results, "rss_peak")):
            mib = max(o.values) / 1024
            w(
                f"| RSS at N = {n:,} ≤ 64 MiB (largest peak of the run) | {mib:.1f} MiB "
                f"| {verdict(mib <= 64)} |"
            )
    w("")

    # --- method
    w("## Method")
    w("")
    w(
        f"* **Configuration** (the same file for both daemons): N reals, 10 per virtual "
        f"service `192.0.2.1:10001…` (NAT, `masq`, weight 1, `wlc`: only NAT maps the virtual port to the real port 80), `checktype=negotiate`, "
        f"`service=http`, `request=\"check\"`, `receive=\"OK\"`, `checkinterval={interval}`, "
        f"`checktimeout={timeout:g}`, `negotiatetimeout={timeout:g}`, `failurecount=1`, "
        "`quiescent=no`, a `logfile`. The Perl ldirectord runs as Debian ships it (`fork=no`)."
    )
    w(
        "* **Real servers**: every address of 10.64.0.0/14 is local to one network namespace "
        "behind a veth pair; ONE process (`benches/compare_tool.rs serve`, tokio, one "
        "thread) answers `GET /check` with `200 OK` / `OK` on all of them. Every check is a "
        "real TCP connection and HTTP exchange to a distinct address."
    )
    w(
        "* **Programmed**: `compare_tool wait-live` dumps the table over netlink from before the "
        "start command, pausing 3 % of the time waited so far between dumps (a 3 % resolution)."
    )
    w(
        "* **Reload**: the file is replaced by one with an 11th real in the last virtual, then "
        "`ldirectord CONF reload` (Perl: the same command, SIGHUP); time until that real is "
        "live; operations = the daemon's log lines for applied changes (`Added|Deleted|"
        "Changed|Purged|Quiescent|Restored … server`) from the reload until one checkinterval "
        "after the real appeared, on the new real or on reals whose health did not change "
        "meanwhile (all of them are shown too when there were more)."
    )
    w(
        "* **Detection**: a random real (random virtual, random position) is killed: the server "
        "resets its connections from then on (the time it did so is the start); a netlink "
        "poller every 5 ms sees the destination leave. Trials start at a random point of the "
        "check interval."
    )
    w(
        "* **Check cycle**: a tc filter in the reals' namespace drops every packet to real 0 of "
        "each virtual (black holes: no answer, no reset). Ours: the first cycle after start, "
        "from the first check the server saw to the log line of the last black hole declared "
        "down (all checks run concurrently, so one cycle is about one checktimeout). Perl: one "
        "steady-state pass (checks run one after another): the time between two checks of the "
        "same live real, minus the checkinterval Perl sleeps between passes."
    )
    w(
        "* **CPU per 1,000 checks**: user + system CPU of the daemon (and its reaped children) "
        "over a window after start, divided by the checks the server answered in it. RSS: "
        "`VmRSS` at the end of the window (idle), `VmHWM` (peak, includes the start)."
    )
    w(
        "* **Listing**: the table loaded with `ipvsadm -R`, then `ldirectord list -n` and "
        "`ipvsadm -Ln` alternately, output to a file."
    )
    w("")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3:
        print("usage: report.py RUN OUT", file=sys.stderr)
        sys.exit(2)
    run, out = sys.argv[1], sys.argv[2]
    results, meta = load(run)
    base = f"compare-{meta.get('date', 'undated')}-{meta.get('mode', 'run')}"
    png = os.path.join(out, base + ".png")
    chart(results, meta, png)
    text = report(results, meta, base + ".png")
    with open(os.path.join(out, base + ".md"), "w") as f:
        f.write(text)
    shutil.copy(os.path.join(run, "results.tsv"), os.path.join(out, base + ".tsv"))
    print(text)
    print(f"report: {os.path.join(out, base + '.md')}, {png}", file=sys.stderr)
    problems = errors(results, meta.get("mode") != "full")
    for p in problems:
        print(f"report: ERROR: {p}", file=sys.stderr)
    skipped = sorted({f"{m} {s} N={n}" for (m, s, n), raw in results.items() if any(v.startswith("skip:") for v in raw)})
    if skipped:
        print(f"report: not measured for lack of time: {', '.join(skipped)}", file=sys.stderr)
    sys.exit(1 if problems else 0)


def errors(results, strict):
    """What makes the run fail: a measurement that broke, never a missed target or a ratio.

    A Perl figure over its cap is a result. Ours over its cap is a hang in the short runs
    (strict); in the full run it is a result too (the largest sizes may not fit the budget)."""
    out = []
    for (measure, system, n), raw in sorted(results.items()):
        for v in raw:
            if v.startswith("fail:"):
                out.append(f"{measure} {system} N={n}: {v}")
            elif v.startswith("cap:") and system != "perl" and strict:
                out.append(f"{measure} {system} N={n}: did not finish ({v})")
        if measure == "list_identical" and "0" in raw:
            out.append(f"ldirectord list -n differs from ipvsadm -Ln at N={n}")
    return out


if __name__ == "__main__":
    main()
