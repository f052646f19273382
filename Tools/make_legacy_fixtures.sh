#!/usr/bin/env bash
# Writes one small model file of every kind `strata` makes, with the binary given as $1, and the
# outputs that binary gives on them, to Tests/StrataTests/Fixtures/legacy. The committed files
# were made by the binary of commit 5cc32b5 (before the module split), so the tests can check
# that newer code still loads them and gives the same outputs:
#   git worktree add /tmp/old 5cc32b5 && (cd /tmp/old && swift build -c release --product strata)
#   Tools/make_legacy_fixtures.sh /tmp/old/.build/release/strata
set -euo pipefail
S=${1:?usage: $0 PATH-TO-STRATA}
cd "$(dirname "$0")/.."
D=../shared/data
OUT=Tests/StrataTests/Fixtures/legacy
mkdir -p "$OUT"
export STRATA_NUM_THREADS=1
t() { "$S" train --threads 1 --epochs 1 --seed 0 "$@" > /tmp/fx-train.log 2>&1 || { cat /tmp/fx-train.log; exit 1; }; }
t --data fashion-mnist --model mlp --limit 300 --out $OUT/fashion-mlp.safetensors
t --data fashion-mnist --model cnn --limit 300 --out $OUT/fashion-cnn.safetensors
for m in cnn gru lstm transformer; do t --data sentiment --model $m --out $OUT/text-$m.safetensors; done
t --data fsdd --model cnn --out $OUT/audio-cnn.safetensors
t --data cora --model gcn --out $OUT/graph-gcn.safetensors
# Faces: the AT&T network on whole grey photos, and a two-network ensemble on face boxes.
"$S" faces train --data $D/att_faces --epochs 2 --holdout-people 4 --out $OUT/faces-att.safetensors >/dev/null 2>&1
"$S" faces train --data $D/att_faces --crop 0.5,0.5,0.8 --size 32 --crop 0.5,0.45,0.5 --size 24 --blocks "" \
    --widths 8,16,32 --embedding 32 --epochs 1 --holdout-people 4 --out $OUT/faces-ensemble.safetensors >/dev/null 2>&1
# The outputs: summaries, predictions and embeddings on made-up inputs (no data set file is copied).
mkdir -p $OUT/inputs
python3 - "$OUT/inputs" <<'PY'
import math, struct, sys, wave
d = sys.argv[1]
def pgm(name, w, h, f):
    with open(f"{d}/{name}", "wb") as o:
        o.write(b"P5 %d %d 255\n" % (w, h) + bytes(f(x, y) for y in range(h) for x in range(w)))
pgm("blob.pgm", 28, 28, lambda x, y: 255 if (x - 14) ** 2 + (y - 12) ** 2 < 60 else 20)
pgm("stripes.pgm", 28, 28, lambda x, y: 230 if (x // 4) % 2 == 0 else 10)
pgm("face-a.pgm", 92, 112, lambda x, y: (x * 2 + y) % 256)
pgm("face-b.pgm", 92, 112, lambda x, y: int(128 + 100 * math.sin(x / 7.0) * math.cos(y / 9.0)))
with wave.open(f"{d}/tone.wav", "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
    w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000) * math.exp(-i / 3000))) for i in range(4000)))
PY
for m in mlp cnn; do
  "$S" summary --model $OUT/fashion-$m.safetensors > $OUT/fashion-$m.summary.txt 2>&1 || true
  "$S" predict --json --model $OUT/fashion-$m.safetensors $OUT/inputs/blob.pgm $OUT/inputs/stripes.pgm > $OUT/fashion-$m.predict.json
done
for m in cnn gru lstm transformer; do
  "$S" summary --model $OUT/text-$m.safetensors > $OUT/text-$m.summary.txt 2>&1 || true
  "$S" predict --json --model $OUT/text-$m.safetensors --text "A wonderful little film." --text "Terrible service, never again." > $OUT/text-$m.predict.json
done
"$S" summary --model $OUT/audio-cnn.safetensors > $OUT/audio-cnn.summary.txt 2>&1 || true
"$S" predict --json --model $OUT/audio-cnn.safetensors $OUT/inputs/tone.wav > $OUT/audio-cnn.predict.json
"$S" summary --model $OUT/graph-gcn.safetensors > $OUT/graph-gcn.summary.txt 2>&1 || true
for m in att ensemble; do
  "$S" summary --model $OUT/faces-$m.safetensors > $OUT/faces-$m.summary.txt 2>&1 || true
  "$S" faces embed --model $OUT/faces-$m.safetensors $OUT/inputs/face-a.pgm $OUT/inputs/face-b.pgm > $OUT/faces-$m.embed.jsonl
done
ls -la $OUT $OUT/inputs
