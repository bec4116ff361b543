"""Traffic for the failover suite (tests/vm/suites/failover.sh), run in the client's namespace.

  probe.py echo-server PORT            an echo server (run on each real server)
  probe.py session VIP PORT SECONDS LOG
      one long-lived TCP connection: a line every 200 ms, each echoed back; logs every
      round trip and ends with "DONE rounds=N maxgap=S" or "ERROR …" (the connection broke)
  probe.py first-success VIP PORT SECONDS
      a fresh HTTP request every 100 ms (0.5 s timeout each); prints the wall-clock time
      (Unix seconds) at which the first that succeeded got its answer, or "none"
"""

import socket
import sys
import threading
import time


def echo_server(port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(64)

    def serve(conn):
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def session(vip, port, seconds, log):
    out = open(log, "w", buffering=1)
    # the connection itself may take a few SYN retransmissions on a loaded emulated host
    try:
        sock = socket.create_connection((vip, port), timeout=20)
    except OSError as e:
        print("ERROR connecting at %.3f: %s" % (time.time(), e), file=out)
        return
    print("connected at %.3f" % time.time(), file=out)
    # A failover can take a few retransmissions (RTO doubling): wait long for the echo.
    sock.settimeout(45)
    end = time.monotonic() + seconds
    last = time.monotonic()
    maxgap = 0.0
    rounds = 0
    try:
        while time.monotonic() < end:
            rounds += 1
            sock.sendall(b"%d\n" % rounds)
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(64)
                if not chunk:
                    raise ConnectionError("closed by the peer")
                data += chunk
            now = time.monotonic()
            maxgap = max(maxgap, now - last)
            print("ok %d %.3f %.3f" % (rounds, time.time(), now - last), file=out)
            last = now
            time.sleep(0.2)
    except Exception as e:  # the verdict is in the log
        print("ERROR after %d rounds at %.3f: %s" % (rounds, time.time(), e), file=out)
        return
    print("DONE rounds=%d maxgap=%.3f" % (rounds, maxgap), file=out)


def first_success(vip, port, seconds):
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        t = time.monotonic()
        try:
            with socket.create_connection((vip, port), timeout=0.5) as s:
                s.settimeout(0.5)
                s.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1."):
                    print("%.3f" % time.time())
                    return
        except OSError:
            pass
        time.sleep(max(0.0, 0.1 - (time.monotonic() - t)))
    print("none")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "echo-server":
        echo_server(int(sys.argv[2]))
    elif mode == "session":
        session(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
    elif mode == "first-success":
        first_success(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit("unknown mode " + mode)
