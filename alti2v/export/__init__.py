"""--export: a trained model in the layouts other tools read.

- `graph`: the network as one ONNX graph fed like the WD taggers (448 BGR 0-255 in);
- `wd`: the WD tagger folder around it: model.onnx, selected_tags.csv, thresholds, model card.

Imports `alti2v.model` and `alti2v.data`; ONNX is imported only here.
"""
