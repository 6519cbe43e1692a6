#!/bin/bash
# kohya sd-scripts' own tagger, unmodified, at revision fc40a279 (2025-06-15), on the demo's
# --export (new-user-export-20261204.txt), as a kohya user runs it; then alt-i2v's --pred with
# the same folder and threshold (--tta none: kohya feeds each image once; --pred's default flip
# TTA averages two passes); then every probability of both, kohya's preprocess_image imported
# from its script and run through onnxruntime as its run_batch does.
# kohya's venv: python3 -m venv /work/kohya-venv; pip install torch torchvision;
# pip install -r requirements.txt onnx onnxruntime (in the revision's tree, /work/kohya).
set -x
cd /work/kohya
/work/kohya-venv/bin/python -c 'import torch, onnxruntime, cv2, numpy; print("torch", torch.__version__, "onnxruntime", onnxruntime.__version__, "opencv", cv2.__version__, "numpy", numpy.__version__)'
rm -rf /tmp/kohya-models /tmp/kohya-imgs /tmp/alti2v-imgs
mkdir -p /tmp/kohya-models /tmp/kohya-imgs /tmp/alti2v-imgs
cp -r /work/cc1/data/demo/wd14-alt-i2v-tagger /tmp/kohya-models/alt-i2v_wd14-alt-i2v-tagger
cp /work/shared/real-images/*/*.jpg /work/shared/real-images/*/*.png /tmp/kohya-imgs/
cp /tmp/kohya-imgs/* /tmp/alti2v-imgs/
/work/kohya-venv/bin/python finetune/tag_images_by_wd14_tagger.py --onnx --model_dir /tmp/kohya-models --repo_id alt-i2v/wd14-alt-i2v-tagger --thresh 0.5 --batch_size 4 --use_rating_tags /tmp/kohya-imgs; echo "exit $?"
head -n 3 /tmp/kohya-imgs/*.txt
cd /work/main
git log --oneline -1
.venv/bin/python alt_i2v.py --data-dir /work/cc1/data/demo --pred /tmp/alti2v-imgs --model /tmp/kohya-models/alt-i2v_wd14-alt-i2v-tagger --format caption --threshold 0.5 --top-k 0 --rating first --tta none --quiet; echo "exit $?"
head -n 3 /tmp/alti2v-imgs/*.txt
.venv/bin/python alt_i2v.py --data-dir /work/cc1/data/demo --pred /tmp/kohya-imgs/*.jpg /tmp/kohya-imgs/*.png --model /tmp/kohya-models/alt-i2v_wd14-alt-i2v-tagger --json --top-k 0 --tta none --quiet > /tmp/ours.jsonl
cd /work/kohya
/work/kohya-venv/bin/python - 2>/dev/null <<'PY'
import csv, importlib.util, json, sys
from pathlib import Path
import numpy as np, onnxruntime as ort
from PIL import Image
sys.argv = ["tag_images_by_wd14_tagger.py"]
spec = importlib.util.spec_from_file_location("tagger", "finetune/tag_images_by_wd14_tagger.py")
tagger = importlib.util.module_from_spec(spec); spec.loader.exec_module(tagger)
folder = "/tmp/kohya-models/alt-i2v_wd14-alt-i2v-tagger"
session = ort.InferenceSession(f"{folder}/model.onnx")
names = [row["name"] for row in csv.DictReader(open(f"{folder}/selected_tags.csv"))]
for kohya in sorted(Path("/tmp/kohya-imgs").glob("*.txt")):
    theirs = {t.strip() for t in kohya.read_text().split(",") if t.strip()}
    ours = {t.strip().removeprefix("rating:") for t in (Path("/tmp/alti2v-imgs") / kohya.name).read_text().split(",") if t.strip()}
    print(f"captions {kohya.stem}: kohya {len(theirs)} tags, alt-i2v --pred {len(ours)}; both {len(theirs & ours)}; only kohya {sorted(theirs - ours)}; only alt-i2v {sorted(ours - theirs)}")
for line in open("/tmp/ours.jsonl"):
    record = json.loads(line)
    image = Image.open(record["image"]).convert("RGB")
    probabilities = session.run(None, {session.get_inputs()[0].name: tagger.preprocess_image(image)[None]})[0][0]
    kohya = {name.removeprefix("rating:"): float(p) for name, p in zip(names, probabilities)}
    ours = {item["tag"].removeprefix("rating:"): item["prob"] for item in record["tags"]}
    gaps = sorted(((abs(kohya[tag] - p), tag) for tag, p in ours.items()), reverse=True)
    print(f"probabilities {Path(record['image']).name} {image.size[0]}x{image.size[1]}: {len(gaps)} tags, max |kohya - --pred| {gaps[0][0]:.4f} ({gaps[0][1]}), mean {np.mean([g for g, _ in gaps]):.4f}")
PY
