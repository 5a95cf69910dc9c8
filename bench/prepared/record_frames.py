"""Writes the stored JPEG frames of one record of a prepared folder to stdout (for the
PSNR check of run.sh): python record_frames.py PREPARED_DIR ENTRY."""
import json
import struct
import sys

folder, entry = sys.argv[1], int(sys.argv[2])
meta = json.load(open(f"{folder}/prepared.json"))
per = meta["settings"]["videos_per_shard"]
shard = entry // per
index = json.load(open(f"{folder}/shards/shard-{shard:06d}.json"))
rec = next(v for v in index["videos"] if v["entry"] == entry)
data = open(f"{folder}/shards/shard-{shard:06d}.bin", "rb").read()[rec["offset"]:rec["offset"] + rec["len"]]
n = rec["frames"]
table = struct.unpack(f"<{2 * n}I", data[len(data) - 16 - 8 * n:len(data) - 16])
at = 0
for i in range(n):
    sys.stdout.buffer.write(data[at:at + table[2 * i]])
    at += table[2 * i]
