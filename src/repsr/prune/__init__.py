"""Global structured pruning and bias removal for Bicubic++ (stages 2 and 3 of its pipeline).

``channels``: prunable channel groups and the surgery (torch-pruning's dependency graph);
``valset``: a cached validation batch and its fast PSNR; ``search``: the global, PSNR-priced
pruning loop; ``finetune``: fine-tuning between rounds, after bias removal and at the end, as Trainer runs;
``pipeline``: the stages in one call and the record of what each cost.
"""

from repsr.prune.channels import GROUPS, ChannelGroup, channel_masked, drop_biases, remove_channels, widths
from repsr.prune.finetune import BICUBIC_PP_RECIPE, Finetuner
from repsr.prune.pipeline import PrunePlan, PruneRecord, prune_stages
from repsr.prune.search import PruneHistory, PruneRound, channel_costs, global_prune
from repsr.prune.valset import ValBatch, batch_psnr, load_val_batch

__all__ = ["BICUBIC_PP_RECIPE", "GROUPS", "ChannelGroup", "Finetuner", "PruneHistory", "PrunePlan", "PruneRecord",
           "PruneRound", "ValBatch", "batch_psnr", "channel_costs", "channel_masked", "drop_biases", "global_prune",
           "load_val_batch", "prune_stages", "remove_channels", "widths"]
