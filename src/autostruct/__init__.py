"""autostruct: multi-task structure optimization (pruning and NAS) of CNNs with IMPALA-style RL."""

__version__ = "0.1.0"
