"""alt-i2v: tag anime illustrations with a VGG16 transfer-learning model.

A room (subpackage) per pipeline stage, so the folder list reads as the pipeline:

- `cli`: the command line, one module per mode; the scripts `alt_i2v.py` and
  `danbooru_datasetgenerator.py` only call it
- `scrape`: fill `imgs/` from a Danbooru-compatible site or a local folder
- `data`: the data directory, posts, the vocabulary, images to arrays, the LevelDB build
- `model`: the network, its weights, losses, optimizer, metrics and exported models
- `train`, `evaluate`, `tag`, `vectors`: --train, --eval, --pred, and --vec/--index/--similar
- `defaults`, `errors`, `interrupt`, `progress`, `cpuinfo`: shared by every room

Imports point one way: `cli` -> the stages (`scrape`, `train`, `evaluate`, `tag`, `vectors`) ->
`model` -> `data`, and the shared modules import nothing of alti2v but each other
(tests/test_imports.py checks it).
"""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/alt-i2v/alt-i2v"
