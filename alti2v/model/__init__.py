"""The model: the network, its weights, losses, optimizer and metrics, and exported models.

- `network`: the alt-i2v network on VGG16 (`build_model`), no file I/O
- `weights`: VGG16's weights as `--weights` names them
- `losses`: the training losses picked by name (`--loss`)
- `optimizer`: AdamW with a smaller learning rate for the VGG16 blocks (`make_optimizer`)
- `metrics`: mAP, precision, recall, F-beta and cross-entropy of multi-label scores
- `linear`: a logistic regression per tag on fixed features (approach 3)
- `device`: which backend and device run the model
- `precision`: `--precision`, auto's choice (its measured gain kept per machine)
- `saved`: exported models, `models/<time>/` with model.keras, vocab.txt and model.json

Used by every stage; imports only `alti2v.data` and the shared top-level modules.
"""
