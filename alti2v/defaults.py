"""Every default of the pipeline, in one place; the CLI's help texts are built from these."""

# Data
DATA_DIR = "data"  # every stage reads and writes under this directory
IMAGE_SIZE = 150  # pixels per side of the square RGB image the model sees (the original's)
RESIZE = "area"  # resize filter at --build; measured against the original's "nearest" (README)
MAX_PIXELS = 100_000_000  # larger images are skipped as oversized (decompression-bomb guard)
EVAL_FRACTION = 0.2  # share of posts held out for evaluation, chosen by a hash of the post id
BUILD_WORKERS = 0  # image-decoding processes at --build; 0 means one per CPU core

# Vocabulary
VOCAB_SIZE = 4096  # the original kept the 4096 most frequent tags
MIN_COUNT = 1  # a tag must be on at least this many posts to enter the vocabulary

# Training
EPOCHS = 100  # the original's
BATCH_SIZE = 16  # images per training step (the original's) and per forward pass at --pred
LEARNING_RATE = 3e-4  # Adam, the new head's; chosen on bench/quality.py (docs/quality.md)
WARMUP_EPOCHS = 1.0  # learning rate rises linearly from 0 over this many epochs
SCHEDULE = "constant"  # after warm-up: "constant" or "cosine" (decays to 0 at the last epoch)
FREEZE = 12  # layers of VGG16 kept frozen: input through block4_conv1 (the original's)
WEIGHTS = "imagenet"  # VGG16 weights: imagenet, none, or a .weights.h5 path
PREPROCESS = "vgg"  # model input: "vgg" (BGR, ImageNet mean removed) or "raw" 0-255 pixels
AUGMENT = "flip"  # training-image changes: none or a comma list of flip, crop, light
DROPOUT = 0.0  # dropout rate before the last Dense; 0 adds no layer (the original's network)
WEIGHT_DECAY = 0.0  # AdamW's decoupled weight decay (times the learning rate per step)
BACKBONE_LR_SCALE = 0.3333  # learning rate of the unfrozen VGG16 blocks / the new head's (1e-4)
HEAD_EPOCHS = 0.0  # epochs at the start in which only the new head learns (the blocks wait)
LOSS = "bce"  # "bce" (binary cross-entropy, the original's) or "asl" (asymmetric loss)
LOSS_CHOICES = ("bce", "asl")  # alti2v.model.losses.LOSSES, named here so --help needs no Keras
BIAS_INIT = "prior"  # last Dense's bias: "prior" (tag log-odds, vocab.json) or "zeros" (Keras')
BIAS_INIT_CHOICES = ("zeros", "prior")
HEAD_INIT = "zero"  # "zero" (last Dense's kernel), "random" (Keras') or "linear-probe" (probe.py)
HEAD_INIT_CHOICES = ("random", "zero", "linear-probe")
# Training posts --head-init linear-probe fits its regressions on, at most (a seeded sample): the
# size of eval's approach-3 baseline, whose fit the probe starts the head from.
PROBE_MAX = 2000
LABEL_SMOOTHING = 0.0  # bce's targets move this far towards 0.5
PATIENCE = 0  # stop after this many epochs without a better eval mAP; 0 trains every epoch
SEED = 0  # shuffling, initialisation and augmentation
CHECKPOINT_MINUTES = 30.0  # also checkpoint inside an epoch after this much training time
READERS = 0  # threads reading training batches; 0 means one per CPU core, at most MAX_READERS
READER_PROCESSES = 0  # processes making training batches; 0: the reader threads make them
MAX_READERS = 16  # more threads contend for the GIL without reading any faster

# Prediction
TOP_K = 30  # tags printed per image (the original's); 0 prints all
THRESHOLD = 0.0  # tags below this probability are not printed (rule "constant")
THRESHOLD_RULE = "constant"  # see alti2v/tag/thresholds.py; the fitted rules need --eval's file
# --precision: "auto" picks bfloat16 on a GPU and on a CPU with fast bfloat16 units
# (alti2v.model.precision), else float32.
PRECISIONS = ("auto", "float32", "bfloat16")
PRECISION = "auto"
# --export: what becomes of copyright, artist, meta and uncategorised tags, for which the WD
# layout has no category: folded into general (the first) or dropped.
EXPORT_OTHER_TAGS = ("general", "drop")
TTA = "flip"  # test-time augmentation at --pred and --eval: "flip" (2 passes) or "none"
DECODE_WORKERS = 0  # image-decoding threads feeding --pred; 0 means one per CPU core
FORMAT = "text"  # --pred output: text (the original's lines), json, csv, caption, sidecar
SORT = "prob"  # tag order: by probability (highest first) or alphabetical
RATING = "inline"  # where the most likely rating goes: inline (ranked), first, last, none
CAPTION_EXT = ".txt"  # caption file: <image stem> + this, beside the image or under --output-dir
CAPTION_SEPARATOR = ", "  # between tags in a caption (sd-scripts' and kohya's convention)
CAPTION_MODE = "skip"  # an existing caption: skip, overwrite, append or prepend
SHEET_COLUMNS = 4  # images per row of --sheet
SHEET_THUMB = 256  # pixels per side of each image on --sheet
SHEET_LINES = 8  # tags shown under each image on --sheet
SHEET_MAX_IMAGES = 64  # --sheet shows the first this many images (a sheet is for looking at)

# Evaluation
EVAL_THRESHOLD = 0.5  # --eval's constant rule: a tag is predicted at this probability or more
BOOTSTRAP = 500  # resamples of the images for the 95% intervals (seeded with --seed)
BASELINE_MAX = 2000  # training posts the logistic-regression baseline fits on, at most
GALLERY_IMAGES = 24  # held-out images in report.html, the worst misses and false alarms first

# Illustration vectors (--vec, --index, --similar, --duplicates)
VECTOR_LAYERS = ("logits", "dense", "block5")  # --layer's choices: alti2v.vectors.layers.LAYERS
VECTOR_LAYER = "logits"  # by measurement: neighbours share the most tags (README, bench/layers.py)
SIMILAR_TOP = 10  # results per --similar query
# Cosine similarity at and above which two posts are near-duplicates, per layer: on the synthetic
# set these find 88% (logits), 98% (dense, block5) of resized, recompressed and cropped copies and
# link 1% of posts to a look-alike (bench/layers.py, README).
DUPLICATE_THRESHOLDS = {"logits": 0.995, "dense": 0.98, "block5": 0.99}
DUPLICATE_NEIGHBOURS = 10  # neighbours searched per post by --duplicates (largest group size)

# Distributed training (--distribute)
DISTRIBUTE_PROCESSES = 1  # processes (machines) training together, unless flags or env say more
