"""The --train stage: fit the model on the LevelDB dataset, checkpointing and resuming.

- `loop`: --train from start or checkpoint to the exported model (`train`)
- `epoch`: one epoch through `fit()`, mid-epoch checkpoints, the eval split's scores
- `config`: --train's settings (`TrainConfig`) and its error
- `batches`: shuffled batches streamed from LevelDB (`keras.utils.PyDataset`)
- `readers`: --reader-processes, worker processes that make those batches
- `augment`: flip, crop and light changes of the packed images, seeded per image and epoch
- `cache`: --cache-features, the frozen layers' output computed once per image
- `checkpoints`: checkpoints written atomically, `last` and `best` kept
- `resume`: what a resumed run checks (same dataset, ignored flags)
- `probe`: --head-init linear-probe, the head started from approach 3
- `distribute`: --distribute, data-parallel training on several devices and machines

Imports `alti2v.model`, `alti2v.data` and the shared modules; never `alti2v.evaluate`.
"""
