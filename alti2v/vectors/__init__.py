"""The --vec, --index, --similar and --duplicates stage: illustration vectors and their index.

- `extract`: --vec, one inner layer of a model read out per image (`VectorExtractor`): a model
  from --train through `layers` (Keras), a WD folder through its embedding output
- `layers`: the layers --layer names, as outputs of a Keras model's graph
- `index`: --index, a nearest-neighbour index of the dataset's posts (`update_index`)
- `similar`: --similar and --duplicates, questions asked of the index

Imports `alti2v.model`, `alti2v.data`, `alti2v.tag` (the contact sheet) and the shared modules.
"""
