#!/bin/bash
# A new user's path through the README on a clean clone: make demo, then export the demo's model
# to the WD layout, tag real images with that folder (full install and tag-only venv), and judge
# both side by side. Progress bars removed afterwards.
set -x
cd /work && rm -rf /work/cc1 && git clone -q /work/main /work/cc1 && cd /work/cc1
git log --oneline | head -1
time make demo
ls data/demo/models/
PYTHONPATH=. .venv/bin/python -c 'import json; from bench.common import describe_machine; print(json.dumps(describe_machine()))'
time .venv/bin/python alt_i2v.py --data-dir data/demo --export data/demo/wd14-alt-i2v-tagger; echo "exit $?"
ls -la data/demo/wd14-alt-i2v-tagger
head -8 data/demo/wd14-alt-i2v-tagger/selected_tags.csv
.venv/bin/python alt_i2v.py --data-dir data/demo --export data/demo/wd14-alt-i2v-tagger; echo "exit $?"
time .venv/bin/python alt_i2v.py --data-dir data/demo --pred ../shared/real-images/ --recursive --model data/demo/wd14-alt-i2v-tagger --top-k 5; echo "exit $?"
time .venv/bin/python alt_i2v.py --data-dir data/demo --pred ../shared/real-images/ --recursive --top-k 5; echo "exit $?"
rm -rf /tmp/nu-captions && mkdir -p /tmp/nu-captions && cp ../shared/real-images/*/*.jpg ../shared/real-images/*/*.png /tmp/nu-captions/
.venv/bin/python alt_i2v.py --data-dir data/demo --pred /tmp/nu-captions --model data/demo/wd14-alt-i2v-tagger --format caption --top-k 8 --sheet /tmp/nu-sheet.png; echo "exit $?"
head -n 3 /tmp/nu-captions/*.txt
time make tag-venv
time .venv-tag/bin/python alt_i2v.py --data-dir data/demo --pred ../shared/real-images/ --recursive --model data/demo/wd14-alt-i2v-tagger --top-k 5; echo "exit $?"
.venv-tag/bin/python alt_i2v.py --data-dir data/demo --train; echo "exit $?"
time .venv/bin/python alt_i2v.py --data-dir data/demo --eval --model data/demo/models/$(ls data/demo/models | tail -1) --model data/demo/wd14-alt-i2v-tagger --weights ../shared/weights/vgg16_imagenet_notop.weights.h5; echo "exit $?"
