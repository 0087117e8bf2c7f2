"""A run's training phases as data: spans of epochs that train the same way, split where
fine-tuning unfreezes the backbone (`train.freeze_backbone_epochs`) and where QAT freezes
BatchNorm or the quantizer ranges (`qat.freeze_*_after_epochs`). The loop fits one phase at a
time (`loop.fit_phase`); the learning rate follows the schedule across them (which restarts at
the unfreezing with `train.restart_schedule`), and the backbone's rate factor
(`train.backbone_lr_multiplier`) holds for the whole run."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Phase:
    """Epochs [first, end) trained alike."""

    first: int
    end: int
    backbone_frozen: bool = False  # the backbone's layers not trained, its BatchNorm frozen
    batch_norm_frozen: bool = False  # QAT: BatchNorm uses and keeps its moving statistics
    ranges_frozen: bool = False  # QAT: the quantizer ranges are fixed (the model fitted in
    #                              inference mode, gradients flowing through fake quantization)


def plan(train, qat):
    """The phases of a run of `train.epochs` epochs with the `train` and `qat` sections'
    settings (one phase if nothing changes on the way; none for a run of 0 epochs)."""
    epochs = train.epochs
    freezes = {train.freeze_backbone_epochs} if train.freeze_backbone_epochs else set()
    if qat.enabled:
        freezes |= {qat.freeze_bn_after_epochs, qat.freeze_ranges_after_epochs} - {None}
    bounds = sorted({0, epochs} | {e for e in freezes if 0 < e < epochs})

    def since(limit, epoch):
        return limit is not None and epoch >= limit

    return [Phase(first, end,
                  backbone_frozen=epoch_frozen(train, first),
                  batch_norm_frozen=qat.enabled and since(qat.freeze_bn_after_epochs, first),
                  ranges_frozen=qat.enabled and since(qat.freeze_ranges_after_epochs, first))
            for first, end in zip(bounds, bounds[1:])]


def epoch_frozen(train, epoch):
    """Whether fine-tuning keeps the backbone frozen at `epoch`."""
    return bool(train.freeze_backbone_epochs) and epoch < train.freeze_backbone_epochs
