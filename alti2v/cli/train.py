"""--train on the command line: the training, speed and --distribute flags, their checks (every
refusal before any work), and the line naming the exported model."""

from __future__ import annotations

import argparse
from dataclasses import replace

from alti2v import defaults
from alti2v.cli.common import (
    FlagModes,
    fraction,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
)
from alti2v.data.images import PREPROCESSORS
from alti2v.progress import Progress
from alti2v.train.augment import parse_augment
from alti2v.train.config import TrainConfig, unsupported

MODES = ("train",)
# VGG16 without its classifier has 19 layers (input, 13 convolutions, 5 poolings).
VGG16_LAYERS = 19
CLUSTER_FLAGS_NEED_DISTRIBUTE = "--coordinator, --num-processes and --process-id need --distribute"


def add_modes(modes: argparse._ArgumentGroup) -> None:
    modes.add_argument("--train", action="store_true", help="train, or resume training")


def add_flags(parser: argparse.ArgumentParser, flags: FlagModes) -> None:
    title = "--train: the recipe (a resumed run keeps its own, but --epochs)"
    train = flags.group(parser, title, MODES)
    train.add_argument(
        "--epochs",
        type=positive_int,
        default=defaults.EPOCHS,
        metavar="N",
        brief=True,
        help="epochs in all",
    )
    train.add_argument(
        "--batch-size",
        type=positive_int,
        default=defaults.BATCH_SIZE,
        metavar="N",
        modes=("train", "eval", "pred", "vec", "index", "similar"),
        brief=True,
        help="images per training step (--train) and per forward pass (the other modes)",
    )
    train.add_argument(
        "--learning-rate",
        type=positive_float,
        default=defaults.LEARNING_RATE,
        help="Adam's learning rate after warm-up, the new head's (the VGG16 blocks' is "
        "--backbone-lr-scale times it)",
    )
    train.add_argument(
        "--warmup-epochs",
        type=non_negative_float,
        default=defaults.WARMUP_EPOCHS,
        help="epochs over which the learning rate rises from 0",
    )
    train.add_argument(
        "--schedule",
        choices=("constant", "cosine"),
        default=defaults.SCHEDULE,
        help="learning rate after warm-up",
    )
    train.add_argument(
        "--freeze",
        type=non_negative_int,
        default=defaults.FREEZE,
        help=f"leading layers kept frozen, 0 to {VGG16_LAYERS} (12: input through block4_conv1)",
    )
    train.add_argument(
        "--weights",
        default=defaults.WEIGHTS,
        modes=("train", "eval"),
        help="VGG16 weights: imagenet (downloads once), none, or a .weights.h5 path "
        "(also --eval's approach-3 baseline)",
    )
    train.add_argument(
        "--preprocess",
        choices=sorted(PREPROCESSORS),
        default=defaults.PREPROCESS,
        help="model input: vgg (BGR, ImageNet mean removed) or raw 0-255 pixels",
    )
    train.add_argument(
        "--augment",
        type=_augment,
        default=defaults.AUGMENT,
        help="change each training image every epoch: none, or a comma list of flip "
        "(mirror), crop (80-100%% of each side) and light (brightness, contrast +-20%%)",
    )
    train.add_argument(
        "--dropout",
        type=fraction,
        default=defaults.DROPOUT,
        help="dropout rate before the last Dense (0: none, the original's network)",
    )
    train.add_argument(
        "--weight-decay",
        type=non_negative_float,
        default=defaults.WEIGHT_DECAY,
        help="AdamW's decoupled weight decay (not on biases or BatchNormalization)",
    )
    train.add_argument(
        "--backbone-lr-scale",
        type=probability,
        default=defaults.BACKBONE_LR_SCALE,
        help="learning rate of the unfrozen VGG16 blocks as a fraction of the new head's",
    )
    train.add_argument(
        "--head-epochs",
        type=non_negative_float,
        default=defaults.HEAD_EPOCHS,
        help="epochs at the start in which only the new head learns; the VGG16 blocks wait",
    )
    train.add_argument(
        "--loss",
        choices=defaults.LOSS_CHOICES,
        default=defaults.LOSS,
        help="bce: binary cross-entropy (the original's); asl: asymmetric loss, which "
        "down-weights the many easy negatives",
    )
    train.add_argument(
        "--label-smoothing",
        type=fraction,
        default=defaults.LABEL_SMOOTHING,
        help="bce's targets move this far towards 0.5",
    )
    train.add_argument(
        "--bias-init",
        choices=defaults.BIAS_INIT_CHOICES,
        default=defaults.BIAS_INIT,
        help="the last layer's starting bias: prior (each tag's log-odds on the posts "
        "--maeshori counted, so training starts from the base rates), or zeros (Keras')",
    )
    train.add_argument(
        "--head-init",
        choices=defaults.HEAD_INIT_CHOICES,
        default=defaults.HEAD_INIT,
        help="the new head's starting weights: zero (the last layer's kernel at zero, as Big "
        "Transfer starts its heads), random (Keras', the original's), or linear-probe (fitted "
        "first as approach 3's logistic regressions on the frozen VGG16 output, on at most "
        f"{defaults.PROBE_MAX} training posts; the network then starts where they are)",
    )
    train.add_argument(
        "--patience",
        type=non_negative_int,
        default=defaults.PATIENCE,
        help="stop after this many epochs without a better eval mAP (0: train every epoch); "
        "the best epoch is exported either way",
    )
    train.add_argument(
        "--seed",
        type=int,
        default=defaults.SEED,
        modes=("train", "eval"),
        help="shuffling and init seed (and --eval's bootstrap and baseline sample)",
    )
    train.add_argument(
        "--checkpoint-minutes",
        type=positive_float,
        default=defaults.CHECKPOINT_MINUTES,
        help="also checkpoint inside an epoch after this many minutes",
    )
    train.add_argument(
        "--fresh", action="store_true", help="discard existing checkpoints instead of resuming"
    )
    train.add_argument(
        "--train-readers",
        type=non_negative_int,
        default=defaults.READERS,
        aliases=("--readers",),
        help=f"threads reading training batches; 0 means one per CPU core, at most "
        f"{defaults.MAX_READERS} (a GPU needs many, a CPU few)",
    )
    train.add_argument(
        "--reader-processes",
        type=non_negative_int,
        default=defaults.READER_PROCESSES,
        help="worker processes that unpack, augment and convert the batches the threads "
        "read, for a GPU host where one process cannot feed the GPU; 0: the threads do it",
    )

    speed = flags.group(parser, "--train: speed (the network is the same either way)", MODES)
    speed.add_argument(
        "--cache-features",
        action="store_true",
        help="--train: compute the frozen layers' output once per image (float16, under "
        "DATA_DIR/features) and train the other layers from it",
    )
    precision = speed.add_argument(
        "--precision",
        choices=defaults.PRECISIONS,
        default=defaults.PRECISION,
        modes=("train", "eval", "pred", "vec", "index", "similar"),
        help="compute in float32, or in bfloat16 with weights and loss in float32 (twice as fast "
        "or more on a GPU and on a CPU with AMX); auto: bfloat16 where the device has fast "
        "bfloat16 units, the start-up line says which and why; a resumed run keeps its own "
        "unless this is given",
    )
    speed.add_alias("--mixed-precision", of=precision, action="store_const", const="bfloat16")

    distribute = flags.group(
        parser,
        "--train --distribute (data parallel with the JAX backend: KERAS_BACKEND=jax)",
        MODES,
    )
    distribute.add_argument(
        "--distribute",
        action="store_true",
        modes=MODES,
        refusal="--distribute distributes --train; add --train",
        help="train on every local device; with --num-processes, on several machines",
    )
    # A pseudo-mode: these serve --distribute, which is a switch, not a mode.
    cluster = {"modes": ("distribute",), "refusal": CLUSTER_FLAGS_NEED_DISTRIBUTE}
    distribute.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        **cluster,
        help="address of process 0, the same on every machine "
        "(default: $KERAS_DISTRIBUTION_JOB_ADDRESSES)",
    )
    distribute.add_argument(
        "--num-processes",
        type=positive_int,
        **cluster,
        help="processes (machines) training together "
        f"(default: $KERAS_DISTRIBUTION_NUM_PROCESSES, else {defaults.DISTRIBUTE_PROCESSES})",
    )
    distribute.add_argument(
        "--process-id",
        type=int,
        **cluster,
        help="this process's number, 0 on the coordinator "
        "(default: $KERAS_DISTRIBUTION_PROCESS_ID, else 0)",
    )


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What --train would refuse later, refused now: before --fresh deletes the checkpoints,
    before the dataset is hashed and the model built."""
    if args.freeze > VGG16_LAYERS:
        parser.error(f"--freeze must be 0 to {VGG16_LAYERS} (VGG16's layers), got {args.freeze}")
    if args.loss != "bce" and args.label_smoothing:
        parser.error("--label-smoothing is for --loss bce")
    if args.train:
        # The process count of the environment is only known once the cluster starts; train()
        # asks again then, still before any work.
        refusal = unsupported(config_from(args), args.distribute, args.num_processes or 1)
        if refusal:
            parser.error(refusal)


def config_from(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        warmup_epochs=args.warmup_epochs, schedule=args.schedule, freeze=args.freeze,
        weights=args.weights, preprocess=args.preprocess, augment=args.augment,
        dropout=args.dropout, weight_decay=args.weight_decay,
        backbone_lr_scale=args.backbone_lr_scale, head_epochs=args.head_epochs, loss=args.loss,
        label_smoothing=args.label_smoothing, bias_init=args.bias_init,
        head_init=args.head_init,
        patience=args.patience, seed=args.seed,
        checkpoint_minutes=args.checkpoint_minutes, cache_features=args.cache_features,
        precision=args.precision,
    )  # fmt: skip


def run(args: argparse.Namespace, given: frozenset[str], data, progress: Progress) -> int:
    """Train (or resume) and print where the model went; nothing here counts as failed inputs."""
    from alti2v.cli.common import model_precision
    from alti2v.train.distribute import ONE_DEVICE, start
    from alti2v.train.loop import train

    cluster = ONE_DEVICE
    if args.distribute:  # before anything asks JAX for its devices
        cluster = start(args.coordinator, args.num_processes, args.process_id)
    config = replace(config_from(args), precision=model_precision(args))
    folder = train(
        data, config, fresh=args.fresh, progress=progress, given=given,
        cluster=cluster, readers=args.train_readers, reader_processes=args.reader_processes,
    )  # fmt: skip
    if cluster.is_first:
        print(f"train: model saved to {folder}")
    else:
        print(f"train: done as process {cluster.process_index}; process 0 saved the model")
    return 0


def _augment(text: str) -> str:
    try:
        names = parse_augment(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--augment: ")) from None
    return ",".join(names) or "none"
