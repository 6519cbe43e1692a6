"""The --pred stage: tag image files with a trained model and write the tags out.

- `collection`: --pred over a collection, inputs to output format (`tag_collection`)
- `inputs`: what `--pred FILE...` means: files, folders and globs (`find_inputs`)
- `predict`: a model over image files, decoding in parallel with inference (`predict_images`)
- `thresholds`: which probability makes a tag present, by a named rule
- `select`: from probabilities to the tags a user asked for (`select_tags`)
- `outputs`: the output formats, picked by name from `FORMATS`
- `captions`: caption files and JSON sidecars beside images
- `sheet`: contact sheets of images with their tags (`render_sheet`)

Imports `alti2v.model`, `alti2v.data` and the shared modules.
"""
