"""One rank of an ezpz-style launch: meets the other ranks at MASTER_ADDR:MASTER_PORT over TCP.

Rank 0 listens; every other rank connects and sends its rank, host and GPUs;
rank 0 answers each with the world it saw. This is what torch.distributed's
env:// rendezvous needs from the launcher, without torch.
"""
import os
import socket
import sys
import time

rank = int(os.environ["RANK"])
world = int(os.environ["WORLD_SIZE"])
local = int(os.environ["LOCAL_RANK"])
addr = os.environ["MASTER_ADDR"]
port = int(os.environ["MASTER_PORT"])
host = os.environ.get("SLURMD_NODENAME", socket.gethostname())
gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "")
me = f"rank {rank}/{world} local {local} on {host} gpus {gpus or '-'} python {sys.prefix}"

if rank == 0:
    server = socket.create_server((addr, port), reuse_port=True)
    server.settimeout(120)
    peers = []
    for _ in range(world - 1):
        conn, _ = server.accept()
        with conn:
            peers.append(conn.recv(1024).decode())
            conn.sendall(f"welcome to {world} ranks at {addr}:{port}".encode())
    print(f"{me}: met {len(peers)} ranks at {addr}:{port}: " + "; ".join(sorted(peers)), flush=True)
else:
    deadline = time.time() + 120
    while True:
        try:
            conn = socket.create_connection((addr, port), timeout=5)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    with conn:
        conn.sendall(me.encode())
        print(f"{me}: {conn.recv(1024).decode()}", flush=True)
