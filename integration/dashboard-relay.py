#!/usr/bin/python3
"""make demo's window onto the dashboard: mwand listens on the loopback of
the testbed's router namespace, which the host's browser cannot reach. This
relays each connection to 127.0.0.1:PORT here into that namespace's
127.0.0.1:PORT (setns on the connecting thread only), so mwand sees a
loopback peer, as it would with a browser on the router.

    dashboard-relay.py NETNS PORT
"""
import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
netns, port = sys.argv[1], int(sys.argv[2])


def connect_inside():
    # The network namespace is per thread: only this thread moves.
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
    finally:
        os.close(fd)
    return socket.create_connection(("127.0.0.1", port))


def pump(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(client):
    with client:
        try:
            inside = connect_inside()
        except OSError:
            return
        with inside:
            back = threading.Thread(target=pump, args=(inside, client))
            back.start()
            pump(client, inside)
            back.join()


listener = socket.create_server(("127.0.0.1", port))
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
