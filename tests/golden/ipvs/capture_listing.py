#!/usr/bin/env python3
"""Capture ipvsadm 1.31's listings of one varied table, with the netlink dump behind them.

Run as root inside the project's VM (it adds names to /etc/hosts, which the VM throws away):

    python3 tests/golden/ipvs/capture_listing.py OUTDIR

It restores TABLE below with `ipvsadm -R`, sends a little traffic through one service so
that some counters are not zero, then writes:

  OUTDIR/listing_dump.txt     the netlink traffic of `ipvsadm -Ln` (annotated like the
                              other golden files): the table exactly as the kernel sent it
  OUTDIR/listing_outputs.txt  for each command in LISTINGS, a line `### ipvsadm ARGS`
                              followed by its standard output, verbatim; listings that
                              print counters, timeouts or daemons are preceded by that
                              very command's netlink messages, one per line: `#> HEX`
                              (request) or `#< HEX` (reply)
  OUTDIR/listing_names.txt    what the system's resolver said for every address and port in
                              the table (`host ADDR NAME`, `service PORT PROTO NAME`), so
                              the name-resolving listings can be rendered off-line

Rates keep moving while the listings run (the kernel's estimator ticks every 2 s), which
is why the counter listings carry their own dump.
"""

import os
import socket
import subprocess
import sys
import threading
import time
import http.server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import capture  # noqa: E402  (same directory)

TABLE = """\
-A -t 10.0.0.100:80 -s wlc
-a -t 10.0.0.100:80 -r 10.0.0.11:80 -m -w 3 -x 100 -y 10
-a -t 10.0.0.100:80 -r 200.0.0.1:80 -g -w 1
-a -t 10.0.0.100:80 -r 10.0.0.2:80 -i -w 0 --tun-type gue --tun-port 6080 --tun-csum
-a -t 10.0.0.100:80 -r 128.0.0.1:80 -i -w 2 --tun-type gre --tun-csum
-a -t 10.0.0.100:80 -r 10.0.0.12:80 -i -w 1 --tun-type ipip
-A -t 200.1.1.1:443 -s rr -p 300 -M 255.255.0.0
-a -t 200.1.1.1:443 -r 10.0.0.11:443 -g -w 1
-A -t 1.2.3.4:22 -s sh -b sh-fallback,sh-port
-A -u 10.0.0.100:53 -s wrr -o
-a -u 10.0.0.100:53 -r 10.0.0.11:5353 -m -w 5
-A -u 10.0.0.100:5060 -s rr -p 60 --pe sip
-A --sctp-service 10.0.0.100:9 -s lc
-A -t [2001:db8::100]:80 -s mh -b mh-fallback
-a -t [2001:db8::100]:80 -r [2001:db8::11]:80 -m -w 1
-a -t [2001:db8::100]:80 -r [2001:db8:0:0:1::]:8080 -m -w 1
-A -u [2001:db8::100]:53 -s rr -p 120 -M 64
-A -f 1 -s rr
-a -f 1 -r 10.0.0.11:0 -g -w 1
-A -f 7 -6 -s wlc
-a -f 7 -6 -r [2001:db8::11]:0 -g -w 1
-A -f 3000000000 -s lc
-A -t 192.168.0.1:8080 -s rr -b flag-1,flag-3
-A -t 192.168.0.1:8081 -s sh -b flag-3
-A -t 127.0.0.100:8000 -s rr
-a -t 127.0.0.100:8000 -r 127.0.0.1:8001 -m -w 1
"""

HOSTS = """\
10.0.0.100 vip.example.test
10.0.0.11 realserver-number-eleven.example.test rs11
200.1.1.1 a-rather-long-virtual-service-hostname.example.test
2001:db8::11 rs11.v6.example.test
"""

# Listings whose own netlink traffic is kept: counters move while the listings run, and
# timeouts and daemons are not in the table dump.
WITH_TRAFFIC = ["--stats", "--rate", "--timeout", "--daemon"]
LISTINGS = [
    ["-L", "-n"],
    ["-L"],
    ["-L", "-n", "--nosort"],
    ["-L", "-n", "--sort"],
    ["-L", "-n", "--stats"],
    ["-L", "-n", "--stats", "--exact"],
    ["-L", "-n", "--rate"],
    ["-L", "-n", "--rate", "--exact"],
    ["-L", "-n", "--thresholds"],
    ["-L", "-n", "--persistent-conn"],
    ["-L", "-n", "--tun-info"],
    ["-L", "-n", "--stats", "--rate"],
    ["-L", "--stats"],
    ["-L", "--thresholds"],
    ["-L", "-n", "-t", "10.0.0.100:80"],
    ["-L", "-n", "-u", "[2001:db8::100]:53"],
    ["-L", "-n", "-f", "1"],
    ["-L", "-n", "-f", "7", "-6", "--persistent-conn"],
    ["-L", "-t", "200.1.1.1:443"],
    ["-L", "--timeout"],
    ["-L", "--daemon"],
    ["-S", "-n"],
    ["-S"],
]


def run(*argv, stdin=None):
    return subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=True)


def traffic():
    """Some HTTP requests through TCP 127.0.0.100:8000 -> 127.0.0.1:8001 (NAT)."""
    server = http.server.HTTPServer(("127.0.0.1", 8001), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ok = 0
    for _ in range(20):
        try:
            with socket.create_connection(("127.0.0.100", 8000), timeout=2) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                while s.recv(65536):
                    pass
                ok += 1
        except OSError:
            pass
    server.shutdown()
    return ok


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    run("modprobe", "-a", "ip_vs", "nlmon")
    with open("/etc/hosts", "a") as f:
        f.write(HOSTS)
    run("ip", "addr", "add", "127.0.0.100/32", "dev", "lo")
    run("ipvsadm", "-C")
    run("ipvsadm", "-R", stdin=TABLE)
    run("ipvsadm", "--start-daemon", "master", "--mcast-interface", "lo", "--syncid", "9")
    run("ipvsadm", "--set", "1000", "100", "200")
    print(f"traffic: {traffic()} requests answered")
    time.sleep(5)  # let the estimator publish rates

    run("ip", "link", "add", "nlmon0", "type", "nlmon")
    run("ip", "link", "set", "nlmon0", "up")
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    # nlmon copies whole dump buffers; the default receive buffer drops most of them
    sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
    sock.bind(("nlmon0", 0))
    sock.setblocking(False)
    time.sleep(0.2)
    capture.drain(sock)
    listed = subprocess.run(["ipvsadm", "-L", "-n"], capture_output=True, text=True)
    time.sleep(0.3)
    messages = [m for _, d in capture.drain(sock) for m in capture.split(d)]
    ctrl = {m[8:16] for m in messages if m[4:6] == b"\x10\x00"}
    lines = [
        "# Captured by tests/golden/ipvs/capture_listing.py; regenerate, do not edit.",
        f"# ipvsadm: {run('ipvsadm', '--version').stdout.strip()}",
        "# kernel: Linux " + os.uname().release,
        "# command: ipvsadm -L -n",
    ]
    lines += [f"# stdout: {line}" for line in listed.stdout.splitlines()]
    ipvs_id = None
    for m in messages:
        typ, flags = capture.struct.unpack("<HH", m[4:8])
        if typ == 0x10 and not flags & 1 and ipvs_id is None:
            ipvs_id = capture.find_family_id(m)
        if m[8:16] in ctrl:
            continue
        body, title = capture.annotate(m, ipvs_id)
        lines += ["", f"{'>' if flags & 1 else '<'} {title}"] + body
    with open(os.path.join(outdir, "listing_dump.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")

    with open(os.path.join(outdir, "listing_outputs.txt"), "w") as f:
        for args in LISTINGS:
            time.sleep(0.1)
            capture.drain(sock)
            out = subprocess.run(["ipvsadm", *args], capture_output=True, text=True)
            time.sleep(0.3)
            f.write(f"### ipvsadm {' '.join(args)}\n")
            if any(a in WITH_TRAFFIC for a in args):
                msgs = [m for _, d in capture.drain(sock) for m in capture.split(d)]
                ctrl = {m[8:16] for m in msgs if m[4:6] == b"\x10\x00"}
                for m in msgs:
                    if m[8:16] in ctrl:
                        continue
                    flags = capture.struct.unpack("<H", m[6:8])[0]
                    f.write(f"#{'>' if flags & 1 else '<'} {m.hex()}\n")
            f.write(out.stdout)

    names = []
    for line in TABLE.splitlines():
        for word in line.replace("[", " ").replace("]", " ").split():
            host, _, port = word.rpartition(":")
            for candidate in {host, word}:
                try:
                    socket.inet_pton(socket.AF_INET6 if ":" in candidate else socket.AF_INET, candidate)
                except OSError:
                    continue
                try:
                    names.append(f"host {candidate} {socket.gethostbyaddr(candidate)[0]}")
                except OSError:
                    pass
            if port.isdigit() and int(port) < 65536:
                for proto in ("tcp", "udp", "sctp"):
                    try:
                        names.append(f"service {port} {proto} {socket.getservbyport(int(port), proto)}")
                    except OSError:
                        pass
    with open(os.path.join(outdir, "listing_names.txt"), "w") as f:
        f.write("# What gethostbyaddr/getservbyport answered in the VM for the table's addresses and ports.\n")
        f.write("\n".join(sorted(set(names))) + "\n")
    run("ipvsadm", "--stop-daemon", "master")
    run("ipvsadm", "-C")
    run("ipvsadm", "--set", "900", "120", "300")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
