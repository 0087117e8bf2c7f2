"""A run's training phases, as data: where they split and what each trains."""

from mobilenets.config import QatConfig, TrainConfig
from mobilenets.training.phases import Phase, plan


def test_one_phase_when_nothing_changes_and_none_for_no_epochs():
    assert plan(TrainConfig(epochs=5), QatConfig()) == [Phase(0, 5)]
    assert plan(TrainConfig(epochs=0), QatConfig()) == []


def test_fine_tuning_trains_the_head_alone_first():
    assert plan(TrainConfig(epochs=5, freeze_backbone_epochs=2), QatConfig()) == [
        Phase(0, 2, backbone_frozen=True), Phase(2, 5)]


def test_qat_freezes_batch_norm_then_the_ranges():
    qat = QatConfig(enabled=True, freeze_bn_after_epochs=3, freeze_ranges_after_epochs=4)
    assert plan(TrainConfig(epochs=6), qat) == [
        Phase(0, 3), Phase(3, 4, batch_norm_frozen=True),
        Phase(4, 6, batch_norm_frozen=True, ranges_frozen=True)]
    # limits at 0 hold from the start; those past the run never come; off without QAT
    assert plan(TrainConfig(epochs=2), QatConfig(enabled=True, freeze_bn_after_epochs=0,
                                                  freeze_ranges_after_epochs=9)) == [
        Phase(0, 2, batch_norm_frozen=True)]
    assert plan(TrainConfig(epochs=2), QatConfig(freeze_bn_after_epochs=0)) == [Phase(0, 2)]


def test_fine_tuning_and_qat_together_split_at_every_change():
    qat = QatConfig(enabled=True, freeze_ranges_after_epochs=3)
    assert [(p.first, p.end) for p in plan(TrainConfig(epochs=4, freeze_backbone_epochs=1),
                                          qat)] == [(0, 1), (1, 3), (3, 4)]
