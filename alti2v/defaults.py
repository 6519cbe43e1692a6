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
BATCH_SIZE = 16  # the original's
LEARNING_RATE = 1e-4  # Adam; chosen by measurement on bench/quality.py (README)
WARMUP_EPOCHS = 1.0  # learning rate rises linearly from 0 over this many epochs
SCHEDULE = "constant"  # after warm-up: "constant" or "cosine" (decays to 0 at the last epoch)
FREEZE = 12  # layers of VGG16 kept frozen: input through block4_conv1 (the original's)
WEIGHTS = "imagenet"  # VGG16 weights: imagenet, none, or a .weights.h5 path
PREPROCESS = "vgg"  # model input: "vgg" (BGR, ImageNet mean removed) or "raw" 0-255 pixels
SEED = 0  # shuffling and initialisation
CHECKPOINT_MINUTES = 30.0  # also checkpoint inside an epoch after this much training time

# Prediction
TOP_K = 30  # tags printed per image (the original's); 0 prints all
THRESHOLD = 0.0  # tags below this probability are not printed
PRED_BATCH_SIZE = 16  # images per forward pass at --pred

# Distributed training (--distribute)
DISTRIBUTE_PROCESSES = 1  # processes (machines) training together, unless flags or env say more
