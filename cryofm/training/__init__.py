"""Training: typed YAML configs, the flow-matching loop, EMA, checkpoints, DDP."""

from cryofm.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from cryofm.training.config import DataConfig, OptimConfig, TrainConfig, load_train_config
from cryofm.training.export import export_prior, measure_error_power
from cryofm.training.loop import TrainResult, flow_loss, prepare_store, train

__all__ = [
    "DataConfig",
    "OptimConfig",
    "TrainConfig",
    "TrainResult",
    "export_prior",
    "flow_loss",
    "latest_checkpoint",
    "load_checkpoint",
    "load_train_config",
    "measure_error_power",
    "prepare_store",
    "save_checkpoint",
    "train",
]
