#!/usr/bin/env python3
"""Capture the generic netlink traffic of the real `ipvsadm` as annotated golden files.

Run as root on a throwaway machine whose kernel has ip_vs (the project's VM), from any
directory:

    python3 tests/golden/ipvs/capture.py OUTDIR

For every step below it runs one ipvsadm command and records each netlink message that
crossed the generic netlink socket (requests and the kernel's replies) from an `nlmon`
tap device, then writes OUTDIR/<step>.txt: a header with the exact command, its exit
status and output, then each message as hex bytes annotated field by field.

File format (read by tests/ipvs_golden.rs):
    # ...            comment
    > DESCRIPTION    a message from user space to the kernel begins
    < DESCRIPTION    a message from the kernel to user space begins
    xx xx xx  ; ...  bytes of the current message (hex), then an annotation

The annotation is produced here, independently of the Rust codec, from the constants of
include/uapi/linux/ip_vs.h and include/uapi/linux/genetlink.h.
"""

import os
import platform
import socket
import struct
import subprocess
import sys
import time

STEPS = [
    # (file name, argv) — order matters: later steps use what earlier ones created.
    ("01_list_empty", ["ipvsadm", "-L", "-n"]),
    ("02_new_service_tcp", ["ipvsadm", "-A", "-t", "10.0.0.100:80", "-s", "wlc"]),
    ("03_new_service_exists", ["ipvsadm", "-A", "-t", "10.0.0.100:80", "-s", "wlc"]),
    ("04_new_service_udp6_persistent",
     ["ipvsadm", "-A", "-u", "[2001:db8::100]:53", "-s", "rr", "-p", "600", "-M", "64"]),
    ("05_new_service_fwmark_sh_flags",
     ["ipvsadm", "-A", "-f", "7", "-s", "sh", "-b", "sh-fallback,sh-port"]),
    ("06_new_service_fwmark6_mh", ["ipvsadm", "-A", "-f", "8", "-6", "-s", "mh", "-b", "mh-port"]),
    ("07_new_service_sip_ops",
     ["ipvsadm", "-A", "-u", "10.0.0.100:5060", "-s", "rr", "-p", "60", "--pe", "sip", "-o"]),
    ("08_new_service_sctp_netmask",
     ["ipvsadm", "-A", "--sctp-service", "10.0.0.100:9", "-s", "lc", "-p", "-M", "255.255.255.0"]),
    ("09_set_service", ["ipvsadm", "-E", "-t", "10.0.0.100:80", "-s", "rr", "-p", "300"]),
    ("10_set_service_missing", ["ipvsadm", "-E", "-t", "10.0.0.200:80", "-s", "rr"]),
    ("11_new_dest_masq_thresholds",
     ["ipvsadm", "-a", "-t", "10.0.0.100:80", "-r", "10.0.0.11:8080", "-m", "-w", "3",
      "-x", "100", "-y", "10"]),
    ("12_new_dest_route", ["ipvsadm", "-a", "-t", "10.0.0.100:80", "-r", "10.0.0.12", "-g"]),
    ("13_new_dest_tunnel_gue",
     ["ipvsadm", "-a", "-t", "10.0.0.100:80", "-r", "10.0.0.13", "-i", "--tun-type", "gue",
      "--tun-port", "6080", "--tun-csum"]),
    ("14_new_dest6", ["ipvsadm", "-a", "-u", "[2001:db8::100]:53", "-r", "[2001:db8::11]:5353", "-m", "-w", "2"]),
    ("15_new_dest_fwmark", ["ipvsadm", "-a", "-f", "7", "-r", "10.0.0.11", "-g", "-w", "5"]),
    ("16_new_dest_exists", ["ipvsadm", "-a", "-t", "10.0.0.100:80", "-r", "10.0.0.12", "-g"]),
    ("17_set_dest", ["ipvsadm", "-e", "-t", "10.0.0.100:80", "-r", "10.0.0.11:8080", "-m", "-w", "0",
                     "-x", "100", "-y", "10"]),
    ("18_set_dest_missing", ["ipvsadm", "-e", "-t", "10.0.0.100:80", "-r", "10.0.0.99", "-g"]),
    ("19_list", ["ipvsadm", "-L", "-n"]),
    ("20_get_service", ["ipvsadm", "-L", "-n", "-t", "10.0.0.100:80"]),
    ("21_zero_service", ["ipvsadm", "-Z", "-t", "10.0.0.100:80"]),
    ("22_zero_all", ["ipvsadm", "-Z"]),
    ("23_set_config", ["ipvsadm", "--set", "1000", "100", "200"]),
    ("24_get_config", ["ipvsadm", "-L", "--timeout"]),
    ("25_del_dest", ["ipvsadm", "-d", "-t", "10.0.0.100:80", "-r", "10.0.0.13"]),
    ("26_del_dest_missing", ["ipvsadm", "-d", "-t", "10.0.0.100:80", "-r", "10.0.0.99"]),
    ("27_new_daemon", ["ipvsadm", "--start-daemon", "master", "--mcast-interface", "lo", "--syncid", "5"]),
    ("28_new_daemon_options",
     ["ipvsadm", "--start-daemon", "backup", "--mcast-interface", "sync0", "--syncid", "6",
      "--sync-maxlen", "1400", "--mcast-group", "224.0.0.100", "--mcast-port", "8849",
      "--mcast-ttl", "2"]),
    ("29_get_daemon", ["ipvsadm", "-L", "--daemon"]),
    ("30_del_daemon", ["ipvsadm", "--stop-daemon", "master"]),
    ("31_del_service", ["ipvsadm", "-D", "-t", "10.0.0.100:80"]),
    ("32_del_service_missing", ["ipvsadm", "-D", "-t", "10.0.0.100:80"]),
    ("33_flush", ["ipvsadm", "-C"]),
    ("34_list_unprivileged",
     ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
      "--bounding-set=-all", "ipvsadm", "-L", "-n"]),
]

NLMSG_TYPES = {1: "NOOP", 2: "ERROR", 3: "DONE", 4: "OVERRUN", 0x10: "nlctrl"}
NLM_FLAGS = [(0x1, "REQUEST"), (0x2, "MULTI"), (0x4, "ACK"), (0x8, "ECHO"),
             (0x10, "DUMP_INTR"), (0x20, "DUMP_FILTERED")]
GET_FLAGS = [(0x100, "ROOT"), (0x200, "MATCH"), (0x400, "ATOMIC")]
ACK_FLAGS = [(0x100, "CAPPED"), (0x200, "ACK_TLVS")]

IPVS_CMDS = ["UNSPEC", "NEW_SERVICE", "SET_SERVICE", "DEL_SERVICE", "GET_SERVICE", "NEW_DEST",
             "SET_DEST", "DEL_DEST", "GET_DEST", "NEW_DAEMON", "DEL_DAEMON", "GET_DAEMON",
             "SET_CONFIG", "GET_CONFIG", "SET_INFO", "GET_INFO", "ZERO", "FLUSH"]
CTRL_CMDS = {1: "NEWFAMILY", 2: "DELFAMILY", 3: "GETFAMILY"}

# attribute tables: number -> (name, kind); kinds: u8 u16 u32 u64 be16 str addr flags
# netmask ipv4 ipv6 nested:<table> raw
STATS = {1: ("CONNS", "u32"), 2: ("INPKTS", "u32"), 3: ("OUTPKTS", "u32"), 4: ("INBYTES", "u64"),
         5: ("OUTBYTES", "u64"), 6: ("CPS", "u32"), 7: ("INPPS", "u32"), 8: ("OUTPPS", "u32"),
         9: ("INBPS", "u32"), 10: ("OUTBPS", "u32"), 11: ("PAD", "raw")}
STATS64 = {k: (n, "raw" if n == "PAD" else "u64") for k, (n, _) in STATS.items()}
SVC = {1: ("AF", "u16"), 2: ("PROTOCOL", "u16"), 3: ("ADDR", "addr"), 4: ("PORT", "be16"),
       5: ("FWMARK", "u32"), 6: ("SCHED_NAME", "str"), 7: ("FLAGS", "flags"),
       8: ("TIMEOUT", "u32"), 9: ("NETMASK", "netmask"), 10: ("STATS", "nested:STATS"),
       11: ("PE_NAME", "str"), 12: ("STATS64", "nested:STATS64")}
DEST = {1: ("ADDR", "addr"), 2: ("PORT", "be16"), 3: ("FWD_METHOD", "u32"), 4: ("WEIGHT", "u32"),
        5: ("U_THRESH", "u32"), 6: ("L_THRESH", "u32"), 7: ("ACTIVE_CONNS", "u32"),
        8: ("INACT_CONNS", "u32"), 9: ("PERSIST_CONNS", "u32"), 10: ("STATS", "nested:STATS"),
        11: ("ADDR_FAMILY", "u16"), 12: ("STATS64", "nested:STATS64"), 13: ("TUN_TYPE", "u8"),
        14: ("TUN_PORT", "be16"), 15: ("TUN_FLAGS", "u16")}
DAEMON = {1: ("STATE", "u32"), 2: ("MCAST_IFN", "str"), 3: ("SYNC_ID", "u32"),
          4: ("SYNC_MAXLEN", "u16"), 5: ("MCAST_GROUP", "ipv4"), 6: ("MCAST_GROUP6", "ipv6"),
          7: ("MCAST_PORT", "u16"), 8: ("MCAST_TTL", "u8")}
CMD_ATTRS = {1: ("SERVICE", "nested:SVC"), 2: ("DEST", "nested:DEST"), 3: ("DAEMON", "nested:DAEMON"),
             4: ("TIMEOUT_TCP", "u32"), 5: ("TIMEOUT_TCP_FIN", "u32"), 6: ("TIMEOUT_UDP", "u32")}
INFO_ATTRS = {1: ("VERSION", "u32"), 2: ("CONN_TAB_SIZE", "u32")}
CTRL_OP = {1: ("ID", "u32"), 2: ("FLAGS", "u32")}
CTRL_MCAST = {1: ("NAME", "str"), 2: ("ID", "u32")}
CTRL_ATTRS = {1: ("FAMILY_ID", "u16"), 2: ("FAMILY_NAME", "str"), 3: ("VERSION", "u32"),
              4: ("HDRSIZE", "u32"), 5: ("MAXATTR", "u32"), 6: ("OPS", "list:CTRL_OP"),
              7: ("MCAST_GROUPS", "list:CTRL_MCAST")}
TABLES = {"STATS": STATS, "STATS64": STATS64, "SVC": SVC, "DEST": DEST, "DAEMON": DAEMON,
          "CTRL_OP": CTRL_OP, "CTRL_MCAST": CTRL_MCAST}


def hexs(b):
    return " ".join(f"{x:02x}" for x in b)


class Out:
    def __init__(self):
        self.lines = []

    def bytes(self, b, note, indent=0):
        # at most 16 bytes per line; the note goes on the first
        for i in range(0, max(len(b), 1), 16):
            chunk = b[i:i + 16]
            if not chunk:
                return
            text = hexs(chunk)
            self.lines.append(f"{'  ' * indent}{text:<47}  ; {note if i == 0 else '  …'}")


def flag_names(value, table):
    names = [n for bit, n in table if value & bit]
    rest = value & ~sum(bit for bit, _ in table)
    if rest:
        names.append(hex(rest))
    return "|".join(names) or "0"


def value_note(kind, v):
    if kind == "u8":
        return str(v[0]) if len(v) == 1 else "?"
    if kind == "u16":
        return str(struct.unpack("<H", v)[0]) if len(v) == 2 else "?"
    if kind == "be16":
        return f"{struct.unpack('>H', v)[0]} (network byte order)" if len(v) == 2 else "?"
    if kind == "u32":
        return str(struct.unpack("<I", v)[0]) if len(v) == 4 else "?"
    if kind == "u64":
        return str(struct.unpack("<Q", v)[0]) if len(v) == 8 else "?"
    if kind == "str":
        return repr(v.rstrip(b"\0").decode("latin-1")) + " NUL-terminated"
    if kind == "addr":
        if len(v) == 16 and v[4:] == bytes(12):
            return f"{socket.inet_ntop(socket.AF_INET, v[:4])} (IPv4, padded to 16)"
        if len(v) == 16:
            return socket.inet_ntop(socket.AF_INET6, v)
        return "?"
    if kind == "ipv4":
        return socket.inet_ntop(socket.AF_INET, v) if len(v) == 4 else "?"
    if kind == "ipv6":
        return socket.inet_ntop(socket.AF_INET6, v) if len(v) == 16 else "?"
    if kind == "flags":
        if len(v) == 8:
            f, m = struct.unpack("<II", v)
            return f"flags 0x{f:x} mask 0x{m:x}"
        return "?"
    if kind == "netmask":
        if len(v) == 4:
            return (f"IPv4 mask {socket.inet_ntop(socket.AF_INET, v)} / "
                    f"IPv6 prefix {struct.unpack('<I', v)[0]}")
        return "?"
    return f"{len(v)} bytes"


def attrs(out, data, table, indent):
    pos = 0
    while pos + 4 <= len(data):
        length, typ = struct.unpack("<HH", data[pos:pos + 4])
        if length < 4 or pos + length > len(data):
            out.bytes(data[pos:], "malformed attribute", indent)
            return
        kind_no = typ & 0x3fff
        flags = ("|NESTED" if typ & 0x8000 else "") + ("|NET_BYTEORDER" if typ & 0x4000 else "")
        name, kind = table.get(kind_no, (f"unknown {kind_no}", "raw"))
        out.bytes(data[pos:pos + 4], f"nla_len {length}, nla_type {kind_no}{flags} = {name}", indent)
        value = data[pos + 4:pos + length]
        if kind.startswith("nested:"):
            attrs(out, value, TABLES[kind[7:]], indent + 1)
        elif kind.startswith("list:"):
            items = {i: (f"#{i}", "nested:" + kind[5:]) for i in range(1, 1024)}
            attrs(out, value, items, indent + 1)
        else:
            out.bytes(value, f"{name} = {value_note(kind, value)}", indent + 1)
        padded = (length + 3) & ~3
        if padded > length:
            out.bytes(data[pos + length:pos + padded], "padding", indent)
        pos += padded
    if pos < len(data):
        out.bytes(data[pos:], "trailing bytes", indent)


def header(out, msg, ipvs_id):
    length, typ, flags, seq, pid = struct.unpack("<IHHII", msg[:16])
    if typ == ipvs_id:
        tname = "IPVS family"
    else:
        tname = NLMSG_TYPES.get(typ, "?")
    out.bytes(msg[0:4], f"nlmsg_len {length}")
    out.bytes(msg[4:6], f"nlmsg_type {typ} ({tname})")
    is_request = flags & 1
    table = NLM_FLAGS + (GET_FLAGS if is_request else ACK_FLAGS if typ == 2 else [])
    out.bytes(msg[6:8], f"nlmsg_flags 0x{flags:x} {flag_names(flags, table)}")
    out.bytes(msg[8:12], f"nlmsg_seq {seq}")
    out.bytes(msg[12:16], f"nlmsg_pid {pid}")
    return typ, flags


def annotate(msg, ipvs_id):
    out = Out()
    typ, _ = header(out, msg, ipvs_id)
    body = msg[16:]
    if typ in (2, 3):  # ERROR / DONE
        code = struct.unpack("<i", body[:4])[0]
        out.bytes(body[:4], f"error {code}" + (" (ACK)" if code == 0 and typ == 2 else ""))
        if typ == 2 and len(body) >= 20:
            out.bytes(body[4:20], "the request's header")
            if len(body) > 20:
                out.bytes(body[20:], "the request's payload / extended ACK")
        elif len(body) > 4:
            out.bytes(body[4:], "extended ACK")
        return out.lines, f"{NLMSG_TYPES[typ]} {code}"
    cmd, version = body[0], body[1]
    if typ == 0x10:
        cname, table = CTRL_CMDS.get(cmd, str(cmd)), CTRL_ATTRS
    else:
        cname = IPVS_CMDS[cmd] if cmd < len(IPVS_CMDS) else str(cmd)
        table = INFO_ATTRS if cname == "SET_INFO" else CMD_ATTRS
    out.bytes(body[0:1], f"genl cmd {cmd} = {cname}")
    out.bytes(body[1:2], f"genl version {version}")
    out.bytes(body[2:4], "genl reserved")
    attrs(out, body[4:], table, 0)
    return out.lines, ("nlctrl " if typ == 0x10 else "IPVS ") + cname


def split(packet):
    msgs, pos = [], 0
    while pos + 16 <= len(packet):
        length = struct.unpack("<I", packet[pos:pos + 4])[0]
        if length < 16 or pos + length > len(packet):
            break
        msgs.append(packet[pos:pos + length])
        pos += (length + 3) & ~3
    return msgs


def drain(sock):
    got = []
    while True:
        try:
            data, addr = sock.recvfrom(1 << 20)
        except BlockingIOError:
            return got
        # addr = (ifname, netlink protocol, pkttype, hatype, hwaddr); keep generic netlink
        if addr[1] == 16:
            got.append((addr[2], data))


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    run = lambda *a: subprocess.run(list(a), check=True)
    run("modprobe", "-a", "ip_vs", "nlmon", "dummy")
    run("ip", "link", "add", "nlmon0", "type", "nlmon")
    run("ip", "link", "set", "nlmon0", "up")
    run("ip", "link", "add", "sync0", "type", "dummy")
    run("ip", "link", "set", "sync0", "up")
    run("ipvsadm", "-C")
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    # nlmon copies whole dump buffers; the default receive buffer drops most of them
    sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
    sock.bind(("nlmon0", 0))
    sock.setblocking(False)
    version = subprocess.run(["ipvsadm", "--version"], capture_output=True, text=True).stdout.strip()
    ipvs_id = None
    for index, (name, argv) in enumerate(STEPS):
        time.sleep(0.2)
        drain(sock)
        proc = subprocess.run(argv, capture_output=True, text=True)
        time.sleep(0.3)
        packets = drain(sock)
        lines = [
            "# Captured by tests/golden/ipvs/capture.py; regenerate, do not edit.",
            f"# ipvsadm: {version}",
            f"# kernel: Linux {platform.release()}",
            f"# command: {' '.join(argv)}",
            f"# exit status: {proc.returncode}",
        ]
        for stream, text in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            for line in text.splitlines():
                lines.append(f"# {stream}: {line}")
        messages = [msg for _, data in packets for msg in split(data)]
        # ipvsadm resolves the family again on every socket it opens (four times per
        # command); keep that nlctrl exchange only in the first file
        ctrl = {msg[8:16] for msg in messages if msg[4:6] == b"\x10\x00"}
        if index > 0:
            messages = [msg for msg in messages if msg[8:16] not in ctrl]
        for msg in messages:
            # nlmon gives every message the same packet type here, so the direction
            # comes from the header: only requests carry NLM_F_REQUEST
            typ, flags = struct.unpack("<HH", msg[4:8])
            to_kernel = bool(flags & 1)
            if typ == 0x10 and not to_kernel and ipvs_id is None:
                ipvs_id = find_family_id(msg)
            body, title = annotate(msg, ipvs_id)
            lines.append("")
            lines.append(f"{'>' if to_kernel else '<'} {title}")
            lines.extend(body)
        with open(os.path.join(outdir, name + ".txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
        print(f"{name}: rc {proc.returncode}, {len(packets)} packets")


def find_family_id(msg):
    data, pos = msg[20:], 0
    while pos + 4 <= len(data):
        length, typ = struct.unpack("<HH", data[pos:pos + 4])
        if length < 4:
            break
        if typ & 0x3fff == 1 and length == 6:
            return struct.unpack("<H", data[pos + 4:pos + 6])[0]
        pos += (length + 3) & ~3
    return None


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
